/**
 * A lock between nspod processes that the kernel releases when its holder dies: a listening
 * unix socket in the abstract namespace (`\0nspod:<key>`). Binding it is taking the lock; a second
 * bind fails with EADDRINUSE. A waiter connects to the holder and is woken the moment that
 * connection closes (release, exit or SIGKILL), then tries again — no polling, no stale files.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { unavailable } from '../errors/index.js';

export interface HeldLock {
  release(): Promise<void>;
  /** how many waiters are connected now */
  waiters(): number;
}

/** The abstract socket name for `key` (hashed: names are limited to 107 bytes). */
export function lockAddress(key: string): string {
  return `\0nspod:${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

function tryBind(addr: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const conns = new Set<net.Socket>();
    const server = net.createServer((s) => {
      conns.add(s);
      s.on('error', () => undefined);
      s.on('close', () => conns.delete(s));
    });
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve(undefined);
      else reject(e);
    });
    server.listen({ path: addr }, () => {
      (server as net.Server & { conns?: Set<net.Socket> }).conns = conns;
      resolve(server);
    });
  });
}

/** Resolves when the holder of `addr` goes (or at once if nobody holds it any more). */
function waitForRelease(addr: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ path: addr });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('data', () => undefined);
  });
}

export async function acquireLock(key: string, timeoutMs = 120_000): Promise<HeldLock> {
  const addr = lockAddress(key);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const server = await tryBind(addr);
    if (server) {
      server.unref();
      return {
        waiters: () => (server as net.Server & { conns?: Set<net.Socket> }).conns?.size ?? 0,
        release: () =>
          new Promise<void>((resolve) => {
            for (const c of (server as net.Server & { conns?: Set<net.Socket> }).conns ?? []) c.destroy();
            server.close(() => resolve());
          }),
      };
    }
    if (Date.now() > deadline)
      throw unavailable(`timed out after ${timeoutMs / 1000} s waiting for the lock on ${key}`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      waitForRelease(addr),
      new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer); // a pending timer would keep the process alive after its work is done
  }
}

/** Whether some process (this one included) holds the lock `key` now. */
export async function isLockHeld(key: string): Promise<boolean> {
  const server = await tryBind(lockAddress(key));
  if (!server) return true;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return false;
}

/**
 * Runs fn holding the lock `key`: first in this process (callers queue in order), then between
 * processes. Not re-entrant: fn must not take the same lock again.
 */
const queues = new Map<string, Promise<void>>();
export async function withLockKey<T>(key: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const tail = prev.then(() => mine);
  queues.set(key, tail);
  await prev;
  try {
    const lock = await acquireLock(key, timeoutMs);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  } finally {
    done();
    if (queues.get(key) === tail) queues.delete(key);
  }
}
