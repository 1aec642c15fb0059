import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { acquireLock, isLockHeld, withLockKey } from '../../../src/state/lock.js';

const lockModule = fileURLToPath(new URL('../../../src/state/lock.js', import.meta.url));

/** A child process that takes the lock, prints "held", and keeps it until killed or stdin closes. */
function holder(key: string): Promise<{ kill: () => void; exited: Promise<void> }> {
  const code = `import(${JSON.stringify(lockModule)}).then(async (m) => {
    const l = await m.acquireLock(${JSON.stringify(key)});
    process.stdout.write('held\\n');
    process.stdin.on('end', async () => { await l.release(); process.exit(0); });
    process.stdin.resume();
  });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve) => {
    child.stdout.once('data', () => resolve({ kill: () => child.kill('SIGKILL'), exited }));
  });
}

describe('process lock', () => {
  it('serialises callers in one process, in order', async () => {
    const key = `t-${randomBytes(4).toString('hex')}`;
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((n) =>
        withLockKey(key, async () => {
          order.push(`${n}+`);
          await new Promise((r) => setTimeout(r, 5));
          order.push(`${n}-`);
        }),
      ),
    );
    assert.deepEqual(order, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });

  it('a process that waited for the lock exits as soon as its work is done', async () => {
    const key = `t-${randomBytes(4).toString('hex')}`;
    const mine = await acquireLock(key);
    const code = `import(${JSON.stringify(lockModule)}).then(async (m) => {
      process.stdout.write('waiting\\n');
      await m.withLockKey(${JSON.stringify(key)}, async () => undefined);
    });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    await new Promise((r) => child.stdout.once('data', r));
    for (let i = 0; i < 2000 && mine.waiters() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(mine.waiters(), 1, 'the child waits for the lock');
    await mine.release();
    // Nothing may keep it alive (the wait's timeout timer once did, for up to two minutes).
    const code2 = await Promise.race([
      exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 30_000).unref()),
    ]);
    if (code2 === 'still running') child.kill('SIGKILL');
    assert.equal(code2, 0);
  });

  it('is released by the kernel when its holder is killed with SIGKILL', async () => {
    const key = `t-${randomBytes(4).toString('hex')}`;
    const h = await holder(key);
    await assert.rejects(acquireLock(key, 200), /timed out/);
    let got = false;
    const waiting = acquireLock(key, 10_000).then((l) => {
      got = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got, false, 'still held');
    h.kill();
    await h.exited;
    const l = await waiting;
    await l.release();
  });

  it('tells whether another process holds it, without taking it', async () => {
    const key = `t-${randomBytes(4).toString('hex')}`;
    assert.equal(await isLockHeld(key), false);
    assert.equal(await isLockHeld(key), false, 'asking did not leave it taken');
    const h = await holder(key);
    assert.equal(await isLockHeld(key), true);
    h.kill();
    await h.exited;
    assert.equal(await isLockHeld(key), false, 'free once its holder died');
  });
});
