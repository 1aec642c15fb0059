/**
 * monitor/: every container runs under conmon, so it outlives the nspod process that started
 * it. conmon calls `<runtime> create`, keeps the container's stdio, writes it to the log file
 * in the CRI format (`<RFC3339Nano> stdout|stderr F|P <line>`), and when the container's init
 * exits writes its exit code to `<exitDir>/<id>`. nspod then calls `<runtime> start`.
 *
 * Lifecycle of one container: startConmon (runtime state "created") → runtime start ("running")
 * → the process exits → conmon writes the exit file and exits ("stopped").
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/index.js';
import { hasErrno, internal } from '../errors/index.js';
import { runtimeMessage } from '../oci/index.js';

export interface ConmonOptions {
  conmon: string;
  /** container id, also the runtime's id */
  id: string;
  /** a human name for conmon's logs */
  name: string;
  bundle: string;
  runtimePath: string;
  /** the runtime's --root */
  runtimeRoot: string;
  logPath: string;
  exitDir: string;
  /** where the container's init pid and conmon's pid are written */
  pidFile: string;
  conmonPidFile: string;
  socketDir: string;
}

export interface ConmonStarted {
  pid: number;
  conmonPid: number;
}

export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/**
 * Starts conmon for a container and returns once the runtime has created it (conmon's parent
 * returns after `create`; its daemonised child stays). Throws with the runtime's own message when
 * create failed, as conmon reports it on its stderr or in the log file.
 */
export async function startConmon(host: Host, o: ConmonOptions): Promise<ConmonStarted> {
  await Promise.all([
    fs.mkdir(o.exitDir, { recursive: true }),
    fs.mkdir(o.socketDir, { recursive: true }),
    fs.mkdir(path.dirname(o.logPath), { recursive: true }),
  ]);
  await fs.rm(path.join(o.exitDir, o.id), { force: true });
  const args = [
    '--api-version',
    '1',
    '-c',
    o.id,
    '-u',
    o.id,
    '-n',
    o.name,
    '-r',
    o.runtimePath,
    '-b',
    o.bundle,
    '-p',
    o.pidFile,
    '-P',
    o.conmonPidFile,
    '-l',
    `k8s-file:${o.logPath}`,
    '--exit-dir',
    o.exitDir,
    '--socket-dir-path',
    o.socketDir,
    '--runtime-arg',
    `--root=${o.runtimeRoot}`,
    '--log-level',
    process.env.NSPOD_CONMON_LOG ?? 'error',
  ];
  // conmon reports on the sync pipe once the runtime's create is done: {"data": <pid>} or
  // {"data": -1, "message": "<the runtime's error>"}.
  // cwd = the bundle: conmon drops files there (an `oom` marker when the cgroup hits its limit),
  // which would otherwise land in whatever directory nspod was started from.
  const res = await host.run(o.conmon, args, { allowFailure: true, syncPipe: true, timeoutMs: 60_000, cwd: o.bundle });
  let reported: { data?: number; message?: string } = {};
  try {
    reported = JSON.parse(res.sync ?? '{}') as typeof reported;
  } catch {}
  const pid = typeof reported.data === 'number' && reported.data > 0 ? reported.data : undefined;
  const conmonPid = await readPidFile(o.conmonPidFile);
  if (res.code !== 0 || pid === undefined || conmonPid === undefined) {
    const why =
      reported.message?.trim() ||
      (res.stderr + '\n' + res.stdout)
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.includes('oom_score_adj'))
        .pop();
    throw internal(
      `cannot create container "${o.name}": ${runtimeMessage(why ?? '') || `conmon exited with status ${res.code}`}`,
    );
  }
  return { pid, conmonPid };
}

/** The exit code conmon recorded for a container, or undefined while it has not exited. */
export async function readExitCode(exitFile: string): Promise<number | undefined> {
  try {
    const s = (await fs.readFile(exitFile, 'utf8')).trim();
    if (s === '') return undefined;
    const n = Number.parseInt(s, 10);
    return Number.isFinite(n) ? n : undefined;
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export { parseLogLine, readLog, followLog } from './logs.js';
export type { LogEntry } from './logs.js';
