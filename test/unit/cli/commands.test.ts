import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { Runtime } from '../../../src/pod/index.js';
import { registerPodCommands } from '../../../src/cli/pods.js';
import { registerImageCommands } from '../../../src/cli/images.js';
import { registerRegistryCommands } from '../../../src/cli/registry.js';
import { registerSupervisorCommands } from '../../../src/cli/supervisor.js';
import { registerNetworkCommands } from '../../../src/cli/network.js';
import { registerVolumeCommands } from '../../../src/cli/volumes.js';
import { registerCriCommands } from '../../../src/cli/cri.js';
import { parseStreamAddr } from '../../../src/cri/server.js';
import { isNspodError } from '../../../src/errors/index.js';

/** Every command of the CLI (as main.ts registers them), with help output captured. */
function program(): { program: Command; out: () => string } {
  let text = '';
  const p = new Command().name('nspod').exitOverride();
  p.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  const open = (): Promise<Runtime> => Promise.reject(new Error('the runtime must not be opened'));
  for (const register of [
    registerPodCommands,
    registerImageCommands,
    registerRegistryCommands,
    registerSupervisorCommands,
    registerNetworkCommands,
    registerVolumeCommands,
    registerCriCommands,
  ])
    register(p, open);
  return {
    program: p,
    out: () => {
      const t = text;
      text = '';
      return t;
    },
  };
}

function leaves(c: Command, prefix = ''): Array<[string, Command]> {
  return c.commands.flatMap((s) => {
    const name = `${prefix}${s.name()}`;
    return s.commands.length ? leaves(s, `${name} `) : [[name, s] as [string, Command]];
  });
}

describe('cli commands', () => {
  it('every command has --help with examples (as the README says)', () => {
    const { program: p, out } = program();
    const missing: string[] = [];
    for (const [name, cmd] of leaves(p)) {
      cmd.outputHelp();
      if (!out().includes('Examples:')) missing.push(name);
    }
    assert.deepEqual(missing, []);
  });

  it('describe refuses a kind other than pod as an invalid argument', async () => {
    const { program: p } = program();
    await assert.rejects(p.parseAsync(['node', 'nspod', 'describe', 'deployment', 'foo']), (e) =>
      isNspodError(e, 'INVALID_ARGUMENT'),
    );
  });

  it('--stream-addr is host:port; anything else is an invalid argument', () => {
    assert.deepEqual(parseStreamAddr(undefined), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseStreamAddr('0.0.0.0:10010'), { host: '0.0.0.0', port: 10010 });
    assert.deepEqual(parseStreamAddr(':10010'), { host: '127.0.0.1', port: 10010 });
    assert.deepEqual(parseStreamAddr('[::1]:8080'), { host: '::1', port: 8080 });
    for (const bad of ['bogus', '127.0.0.1', '127.0.0.1:x', '127.0.0.1:70000'])
      assert.throws(
        () => parseStreamAddr(bad),
        (e) => isNspodError(e, 'INVALID_ARGUMENT'),
        bad,
      );
  });
});
