import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { detectRuntime, runtimeDriver, runtimeGlobalArgs, runtimeMessage } from '../../../src/oci/index.js';
import { recordingHost } from '../../../src/host/index.js';
import type { RecordedCall } from '../../../src/host/index.js';
import { isNspodError } from '../../../src/errors/index.js';

const RUNC = { name: 'runc', path: '/usr/sbin/runc', version: '1.1.5' };

test('runtimeGlobalArgs and runtimeMessage', () => {
  assert.deepEqual(runtimeGlobalArgs('/run/nspod/runtime'), ['--root', '/run/nspod/runtime']);
  assert.equal(
    runtimeMessage('time="2024-01-01T00:00:00Z" level=error msg="container \\"x\\" does not exist"\n'),
    'container "x" does not exist',
  );
  assert.equal(
    runtimeMessage('crun: cgroups in hybrid mode not supported\n'),
    'crun: cgroups in hybrid mode not supported',
  );
});

test('driver: every verb carries --root; state parses; delete of a missing container is fine', async () => {
  const host = recordingHost((c: RecordedCall) => {
    const verb = c.args[2];
    if (verb === 'state' && c.args[3] === 'c1')
      return { stdout: JSON.stringify({ id: 'c1', status: 'running', pid: 42 }) };
    if (verb === 'state' || verb === 'delete' || (verb === 'kill' && c.args.includes('gone'))) {
      return { code: 1, stderr: `time="x" level=error msg="container does not exist"\n` };
    }
    if (verb === 'kill' && c.args.includes('idle')) return { code: 1, stderr: 'container not running\n' };
    if (verb === 'exec') return { code: 3 };
    return undefined;
  });
  const d = runtimeDriver({ host, runtime: RUNC, root: '/run/nspod/runtime' });
  await d.start('c1');
  assert.deepEqual(await d.state('c1'), { id: 'c1', status: 'running', pid: 42 });
  await assert.rejects(d.state('nope'), (e) => isNspodError(e, 'NOT_FOUND'));
  await d.kill('c1', 'SIGTERM');
  await d.kill('c1', 'KILL', { all: true });
  await assert.rejects(d.kill('gone'), (e) => isNspodError(e, 'NOT_FOUND'));
  await assert.rejects(d.kill('idle'), (e) => isNspodError(e, 'FAILED_PRECONDITION'));
  await d.delete('gone', { force: true });
  assert.equal(await d.exec('c1', { args: ['ls', '/'], tty: true, env: ['A=1'], cwd: '/tmp', interactive: true }), 3);
  const args = host.calls.map((c) => c.args);
  for (const a of args) assert.deepEqual(a.slice(0, 2), ['--root', '/run/nspod/runtime']);
  assert.deepEqual(args[0], ['--root', '/run/nspod/runtime', 'start', 'c1']);
  assert.ok(args.some((a) => a.join(' ') === '--root /run/nspod/runtime kill c1 TERM'));
  assert.ok(args.some((a) => a.join(' ') === '--root /run/nspod/runtime kill --all c1 KILL'));
  assert.ok(args.some((a) => a.join(' ') === '--root /run/nspod/runtime delete --force gone'));
  assert.deepEqual(args[args.length - 1], [
    '--root',
    '/run/nspod/runtime',
    'exec',
    '--tty',
    '--env',
    'A=1',
    '--cwd',
    '/tmp',
    'c1',
    'ls',
    '/',
  ]);
});

test('driver: create runs the runtime with files for the container stdio', async () => {
  const host = recordingHost();
  const d = runtimeDriver({ host, runtime: RUNC, root: '/r' });
  await d.create({ id: 'c1', bundle: '/b', pidFile: '/b/pid', consoleSocket: '/b/sock' });
  const call = host.calls[0]!;
  assert.equal(call.cmd, '/bin/sh');
  assert.deepEqual(call.args.slice(2), [
    '/usr/sbin/runc',
    '--root',
    '/r',
    'create',
    '--bundle',
    '/b',
    '--pid-file',
    '/b/pid',
    '--console-socket',
    '/b/sock',
    'c1',
  ]);
});

function fakeBin(dir: string, name: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, '#!/bin/sh\nexit 0\n');
  chmodSync(p, 0o755);
  return p;
}

test('detectRuntime: skips a runtime that fails the probe, caches the verdict per path+mtime', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nspod-detect-'));
  try {
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const crun = fakeBin(bin, 'crun');
    const runc = fakeBin(bin, 'runc');
    const answer = (c: RecordedCall) => {
      if (c.args[0] === '--version') return { stdout: `${path.basename(c.cmd)} version 9.9\nspec: 1.0.2\n` };
      if (c.cmd === crun && c.args[2] === 'run') return { code: 1, stderr: 'cgroups in hybrid mode not supported\n' };
      return undefined;
    };
    const opts = {
      probeDir: path.join(dir, 'probe'),
      pathEnv: bin,
      cgroupMounts: [],
      cacheFile: path.join(dir, 'runtime.json'),
    };
    let host = recordingHost(answer);
    const r = await detectRuntime(host, opts);
    assert.deepEqual(r, {
      name: 'runc',
      path: runc,
      version: '9.9',
      skipped: [{ name: 'crun', reason: 'cgroups in hybrid mode not supported' }],
    });
    const runCall = host.calls.find((c) => c.cmd === runc && c.args[2] === 'run')!;
    assert.ok(runCall, 'runc really ran a probe container');
    assert.ok(
      host.calls.some((c) => c.cmd === runc && c.args[2] === 'delete'),
      'probe container deleted',
    );
    assert.deepEqual(readdirSync(opts.probeDir), [], 'probe bundle removed');
    const cache = JSON.parse(readFileSync(opts.cacheFile, 'utf8')) as Record<string, { ok: boolean }>;
    assert.equal(cache[crun]!.ok, false);
    assert.equal(cache[runc]!.ok, true);

    // Second time: no probe at all.
    host = recordingHost(answer);
    assert.equal((await detectRuntime(host, opts)).path, runc);
    assert.deepEqual(host.calls, []);

    // A new crun binary (other mtime) is probed again; now it works.
    utimesSync(crun, new Date(), new Date(Date.now() + 5000));
    host = recordingHost((c) => (c.args[0] === '--version' ? { stdout: 'crun version 2.0\n' } : undefined));
    assert.equal((await detectRuntime(host, opts)).name, 'crun');
    assert.equal(host.calls.filter((c) => c.args[2] === 'run').length, 1);

    // A preferred runtime that fails is an error quoting the runtime.
    utimesSync(runc, new Date(), new Date(Date.now() + 9000));
    host = recordingHost((c) =>
      c.args[2] === 'run' ? { code: 1, stderr: 'level=error msg="no cgroup for you"' } : undefined,
    );
    await assert.rejects(detectRuntime(host, { ...opts, preferred: 'runc' }), (e) => {
      assert.ok(isNspodError(e, 'FAILED_PRECONDITION'));
      assert.match(e.message, /runtime runc does not work on this host: no cgroup for you/);
      return true;
    });
    await assert.rejects(detectRuntime(host, { ...opts, preferred: 'youki' }), (e) => isNspodError(e, 'NOT_FOUND'));
    await assert.rejects(detectRuntime(host, { ...opts, candidates: ['nothing'] }), (e) =>
      isNspodError(e, 'FAILED_PRECONDITION'),
    );
    assert.ok(!existsSync(path.join(opts.probeDir, 'bundle')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
