/**
 * `nspod serve` when one of its parts cannot start: the CRI server cannot bind its streaming
 * address or its unix socket, or another daemon already holds the run root. The whole command
 * stops (the supervisor as well as the CRI server), exits non-zero with a one-line error printed
 * after everything has stopped, and leaves no pid, ready file or socket behind. Checked from the
 * child's exit and the run root's files.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeSandbox, destroySandbox, cliPath, alive } from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import { readPid, startDaemon } from './sup-helpers.js';

/** Long enough for a daemon that starts and stops; a daemon left running fails the test. */
const EXIT_TIMEOUT = 30_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs `nspod serve <args>` and waits for it to exit on its own (SIGKILLed and failed if it does not). */
function serve(sb: Sandbox, args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'serve', ...args], {
      env: sb.env,
      cwd: '/',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nspod serve ${args.join(' ')} still runs after ${EXIT_TIMEOUT} ms; stderr:\n${stderr}`));
    }, EXIT_TIMEOUT);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stderr });
    });
  });
}

/** Exited non-zero by itself, with exactly one error line (no stack), the last thing it printed. */
function assertFailedCleanly(r: Exit, cause: RegExp): void {
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(r.signal, null, r.stderr);
  assert.notEqual(r.code, 0, r.stderr);
  const errors = lines.filter((l) => l.startsWith('Error: '));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, cause);
  assert.equal(lines.at(-1), errors[0], `the error is printed once everything stopped:\n${r.stderr}`);
  assert.ok(!lines.some((l) => /^\s+at |uncaught:|unhandled:/.test(l)), r.stderr);
}

function assertNoDaemonFiles(sb: Sandbox): void {
  for (const f of ['supervisor.pid', 'supervisor.ready', 'control.sock', 'netns-relay.sock', 'nspod.sock']) {
    assert.ok(!existsSync(path.join(sb.runRoot, f)), `${f} left in the run root`);
  }
}

describe('nspod serve: a part that cannot start stops the daemon', () => {
  let sb: Sandbox;
  let taken: net.Server;
  let takenPort: number;
  before(async () => {
    sb = await makeSandbox();
    taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    takenPort = (taken.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => taken.close(r));
    await destroySandbox(sb);
  });

  it('exits when the streaming address is in use', async () => {
    const r = await serve(sb, ['--stream-addr', `127.0.0.1:${takenPort}`]);
    assertFailedCleanly(r, /EADDRINUSE/);
    assertNoDaemonFiles(sb);
  });

  it('exits when the CRI socket cannot be bound (and closes the streaming server it had started)', async () => {
    // /proc takes no socket: bind(2) fails with EACCES even for root.
    const socket = `/proc/nspod-test-${randomBytes(4).toString('hex')}.sock`;
    const r = await serve(sb, ['--socket', socket]);
    assertFailedCleanly(r, /EACCES/);
    assert.ok(!existsSync(socket));
    assertNoDaemonFiles(sb);
  });

  it('exits when the CRI socket path is a directory', async () => {
    const dir = path.join(sb.runRoot, 'a-directory');
    mkdirSync(dir);
    const r = await serve(sb, ['--socket', dir]);
    assertFailedCleanly(r, /EISDIR|directory/);
    assertNoDaemonFiles(sb);
  });

  it('exits, CRI server included, when another daemon runs for the run root; that daemon is untouched', async () => {
    const first = await startDaemon(sb);
    try {
      const socket = path.join(sb.runRoot, 'second.sock');
      const r = await serve(sb, ['--socket', socket]);
      assertFailedCleanly(r, /a supervisor already runs/);
      assert.ok(!existsSync(socket), 'the second CRI socket is closed');
      assert.ok(alive(first));
      assert.equal(readPid(path.join(sb.runRoot, 'supervisor.pid')), first);
      assert.equal(readPid(path.join(sb.runRoot, 'supervisor.ready')), first);
      assert.ok(existsSync(path.join(sb.runRoot, 'control.sock')));
      assert.ok(existsSync(path.join(sb.runRoot, 'nspod.sock')));
    } finally {
      process.kill(first, 'SIGTERM');
      for (let i = 0; i < 400 && alive(first); i++) await new Promise((r) => setTimeout(r, 25));
    }
    assertNoDaemonFiles(sb);
  });
});
