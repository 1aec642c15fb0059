/**
 * The supervisor daemon (`nspod serve`): one per run root. It adopts every supervised pod (those
 * with a supervisor.json), reconciles each on a tick and on conmon's exit files, and survives
 * its own death: pods keep running under conmon, and a new daemon learns what happened from the
 * records and exit files. Its pid, ready and log files are in ./files.ts (a pid file left by a
 * dead daemon is taken over); `nspod play` hands its work over on <runRoot>/control.sock
 * (./control.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Runtime } from '../pod/index.js';
import { startNetnsRelay } from '../pod/index.js';
import { alreadyExists, hasErrno, messageOf, unavailable } from '../errors/index.js';
import { openEventLog } from '../events/index.js';
import { PodWorker } from './pod-worker.js';
import { backoffConfig, readSupPod } from './state.js';
import { controlSocketPath, startControlServer } from './control.js';
import { isDaemon, readPid, supervisorFiles } from './files.js';
import type { ControlServer, PlayIo, PlayRequest } from './control.js';

/** Takes the pid file exclusively; takes over one left by a dead daemon. */
async function claimPidFile(file: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (let i = 0; i < 5; i++) {
    try {
      const fh = await fs.open(file, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (e) {
      if (!hasErrno(e, 'EEXIST')) throw e;
    }
    const other = await readPid(file);
    if (other !== undefined && other !== process.pid && (await isDaemon(other))) {
      throw alreadyExists(`a supervisor already runs for ${path.dirname(file)} (pid ${other})`);
    }
    // Stale: move it aside atomically so two starting daemons can't both take it.
    const aside = `${file}.stale-${process.pid}`;
    try {
      await fs.rename(file, aside);
      await fs.rm(aside, { force: true });
    } catch (e) {
      if (!hasErrno(e, 'ENOENT')) throw e;
    }
  }
  throw unavailable(`cannot take the supervisor pid file ${file}`);
}

export interface SupervisorOptions {
  rt: Runtime;
  /** stop when aborted (SIGTERM/SIGINT are handled by the caller) */
  signal: AbortSignal;
  log?: (line: string) => void;
  /** how often every pod is reconciled (default 1000 ms; exits are seen at once through inotify) */
  tickMs?: number;
  /** serve `nspod play` on the control socket (listening before the daemon says it is ready) */
  control?: ControlOptions;
}

export interface ControlOptions {
  /** what a client must match to be served: its build, environment and configuration */
  mine: { identity: string; env: Record<string, string>; config: unknown };
  play: (req: PlayRequest, io: PlayIo) => Promise<void>;
}

/**
 * Runs the supervisor until `signal` aborts. Resolves after the pid and ready files are removed.
 * Pods are left running: the daemon's end is not the pods' end.
 */
export async function runSupervisor(o: SupervisorOptions): Promise<void> {
  const { rt } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(`${new Date().toISOString()} ${l}\n`));
  const files = supervisorFiles(rt.config.runRoot);
  await claimPidFile(files.pid);
  await fs.rm(files.ready, { force: true });
  const events = openEventLog(rt.config.root);
  const env = { rt, events, backoff: backoffConfig(), log };
  const workers = new Map<string, PodWorker>();
  await rt.runtime();
  // One helper process for every network probe (a spawn per probe would cost more than the probe).
  const relaySocket = path.join(rt.config.runRoot, 'netns-relay.sock');
  const stopRelay = await startNetnsRelay(relaySocket).catch((e: unknown) => {
    log(`netns relay unavailable, probes spawn a helper each: ${messageOf(e)}`);
    return () => undefined;
  });

  const scan = async (): Promise<void> => {
    const pods = await rt.ctx.state.pods();
    const seen = new Set<string>();
    for (const pod of pods) {
      seen.add(pod.id);
      if (workers.has(pod.id)) continue;
      const sup = await readSupPod(pod);
      if (!sup) continue; // not supervised (CRI, --no-supervise)
      const w = new PodWorker(env, pod, sup);
      workers.set(pod.id, w);
      w.start();
      log(`adopted pod ${pod.name} (${pod.id.slice(0, 12)})`);
    }
    for (const [id, w] of workers) {
      if (!seen.has(id) || w.isGone) {
        w.stop();
        workers.delete(id);
      }
    }
    await Promise.all([...workers.values()].map((w) => w.reconcile()));
  };

  // One scan at a time: the tick's and the one after a play over the control socket must not
  // both adopt the same pod.
  let scanning: Promise<void> = Promise.resolve();
  const scanNow = (): Promise<void> =>
    (scanning = scanning.then(scan).catch((e: unknown) => log(`scan: ${messageOf(e)}`)));
  let control: ControlServer | undefined;
  try {
    await scan();
    if (o.control) {
      const c = o.control;
      control = await startControlServer({
        socket: controlSocketPath(rt.config.runRoot),
        mine: c.mine,
        log,
        // A pod played here is adopted at once (not on the next tick), once the client has its answer.
        play: async (req, io) => {
          await c.play(req, io);
          if (req.supervise) setImmediate(() => void scanNow());
        },
      }).catch((e: unknown) => {
        log(`control socket unavailable, nspod play works in its own process: ${messageOf(e)}`);
        return undefined;
      });
    }
    await fs.writeFile(files.ready, `${process.pid}\n`);
    log(`supervisor ready (pid ${process.pid}, ${workers.size} pods)`);
    await events.emit({
      reason: 'SupervisorStarted',
      message: `supervisor pid ${process.pid} watching ${workers.size} pods`,
    });
    const tickMs = o.tickMs ?? 1000;
    while (!o.signal.aborted) {
      await new Promise<void>((r) => {
        const onAbort = () => (clearTimeout(t), r());
        const t = setTimeout(() => (o.signal.removeEventListener('abort', onAbort), r()), tickMs);
        o.signal.addEventListener('abort', onAbort, { once: true });
      });
      if (o.signal.aborted) break;
      await scanNow();
    }
  } finally {
    await control?.close();
    stopRelay();
    await fs.rm(relaySocket, { force: true });
    for (const w of workers.values()) w.stop();
    if ((await readPid(files.pid)) === process.pid) {
      await fs.rm(files.ready, { force: true });
      await fs.rm(files.pid, { force: true });
    }
    log('supervisor stopped');
  }
}

export { messageOf };
export { supervisorFiles, supervisorPid, readySupervisorPid, ensureSupervisor, cliMainPath } from './files.js';
export type { SupervisorFiles } from './files.js';
