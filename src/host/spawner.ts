/**
 * A spawner: a small helper process (./spawner-main.ts) that starts commands on behalf of a
 * long-lived nspod process (the daemon). Node starts a child by fork()ing itself and blocking
 * until the child has exec()ed; a daemon with a big heap pays for that in page-table copies and
 * copy-on-write faults on its one thread, about 3 ms per command under load, and a pod start runs
 * fourteen. The helper is a bare Node process, so its forks are cheap, and they happen on its own
 * thread, while the daemon goes on. Results are what `realHost.run` gives; a command with
 * inherited stdio (an interactive exec) still runs from the caller's own process.
 *
 * If the helper dies, calls in flight fail (UNAVAILABLE: whether the command ran is unknown) and
 * later calls run from the caller's process.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NspodError } from '../errors/index.js';
import type { ErrorCode } from '../errors/index.js';
import { realHost } from './index.js';
import type { Host, RunOptions, RunResult } from './index.js';

/** What the helper is sent: one command, its options minus inherited stdio. */
export interface SpawnRequest {
  id: number;
  cmd: string;
  args: string[];
  opts: Omit<RunOptions, 'inheritStdio'>;
}

export type SpawnReply =
  { id: number; result: RunResult } | { id: number; error: { code: ErrorCode; message: string } };

/** The helper's script: next to this module in the bundle (spawner.js), or the tsc output's. */
export function spawnerMainPath(): string {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const bundled = path.join(dir, 'spawner.js');
  return existsSync(bundled) && path.basename(dir) === 'bin' ? bundled : path.join(dir, 'spawner-main.js');
}

export interface Spawner extends Host {
  /** the helper's pid, while it runs */
  readonly pid: number | undefined;
  close(): void;
}

export function startSpawner(o: { log?: (line: string) => void } = {}): Spawner {
  let child: ChildProcess | undefined = fork(spawnerMainPath(), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Not a debugger's or profiler's target, whatever the parent was started with.
    execArgv: [],
  });
  let next = 1;
  const pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void }>();
  const gone = (why: string): void => {
    if (!child) return;
    child = undefined;
    o.log?.(`spawner helper ${why}; commands now start from this process`);
    for (const p of pending.values()) p.reject(new NspodError('UNAVAILABLE', `the spawner helper ${why}`));
    pending.clear();
  };
  child.on('message', (m: SpawnReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ('result' in m) p.resolve(m.result);
    else p.reject(new NspodError(m.error.code, m.error.message));
  });
  child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
  child.on('error', (e) => gone(`failed: ${e.message}`));
  // The helper does not keep the caller alive; it exits when the caller's channel closes.
  child.unref();
  child.channel?.unref();
  // …but while a command is in flight, the caller waits for its answer or for the helper's end.
  const refs = (): void => {
    if (pending.size !== 1) return;
    child?.ref();
    child?.channel?.ref();
  };
  const unrefs = (): void => {
    if (pending.size !== 0) return;
    child?.unref();
    child?.channel?.unref();
  };

  return {
    get pid() {
      return child?.pid;
    },
    run(cmd, args, opts = {}) {
      const c = child;
      if (!c || !c.connected || opts.inheritStdio) return realHost.run(cmd, args, opts);
      const id = next++;
      const rest: SpawnRequest['opts'] = { ...opts, env: opts.env ?? process.env };
      delete (rest as RunOptions).inheritStdio;
      const req: SpawnRequest = { id, cmd, args: [...args], opts: rest };
      return new Promise<RunResult>((resolve, reject) => {
        pending.set(id, {
          resolve: (r) => (pending.delete(id), unrefs(), resolve(r)),
          reject: (e) => (pending.delete(id), unrefs(), reject(e)),
        });
        refs();
        c.send(req, (err) => {
          if (err && pending.has(id)) pending.get(id)!.reject(new NspodError('UNAVAILABLE', err.message));
        });
      });
    },
    close() {
      const c = child;
      child = undefined;
      c?.disconnect();
    },
  };
}
