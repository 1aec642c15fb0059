/**
 * The supervisor daemon's files under the run root, and starting a daemon in the background: what
 * a short command (`nspod play`) needs of the daemon, without the daemon's own code.
 *
 *   <runRoot>/supervisor.pid    the daemon's pid, created exclusively (one daemon per run root)
 *   <runRoot>/supervisor.ready  the pid again, once every pod was adopted and reconciled
 *   <runRoot>/supervisor.log    the daemon's output when `nspod play` started it
 */
import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import { unavailable } from '../errors/index.js';

export interface SupervisorFiles {
  pid: string;
  ready: string;
  log: string;
}

export function supervisorFiles(runRoot: string): SupervisorFiles {
  return {
    pid: path.join(runRoot, 'supervisor.pid'),
    ready: path.join(runRoot, 'supervisor.ready'),
    log: path.join(runRoot, 'supervisor.log'),
  };
}

export async function isDaemon(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false;
    const cmd = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmd.includes('serve');
  } catch {
    return false;
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the live daemon of this run root, if one runs. */
export async function supervisorPid(runRoot: string): Promise<number | undefined> {
  const pid = await readPid(supervisorFiles(runRoot).pid);
  return pid !== undefined && (await isDaemon(pid)) ? pid : undefined;
}

/** The pid of the live daemon once it is ready (every pod adopted). */
export async function readySupervisorPid(runRoot: string): Promise<number | undefined> {
  const f = supervisorFiles(runRoot);
  const pid = await supervisorPid(runRoot);
  return pid !== undefined && (await readPid(f.ready)) === pid ? pid : undefined;
}

/**
 * The CLI entry this code belongs to: the bundle this module is part of (dist/bin/nspod.js), or
 * the tsc output's cli/main.js next to this module's directory when it runs unbundled.
 */
export const cliMainPath = (): string => {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const bundle = path.join(dir, 'nspod.js');
  return existsSync(bundle) ? bundle : path.join(dir, '..', 'cli', 'main.js');
};

/**
 * Makes sure a daemon runs for this configuration: returns the running one's pid, or starts
 * `nspod serve` detached (own session, no terminal, output to supervisor.log) and waits until it
 * is ready.
 */
export async function ensureSupervisor(
  config: Config,
  timeoutMs = 60_000,
): Promise<{ pid: number; started: boolean; log: string }> {
  const files = supervisorFiles(config.runRoot);
  const running = await readySupervisorPid(config.runRoot);
  if (running !== undefined) return { pid: running, started: false, log: files.log };
  await fs.mkdir(config.runRoot, { recursive: true });
  let pid = await supervisorPid(config.runRoot);
  if (pid === undefined) {
    const fd = openSync(files.log, 'a', 0o600);
    try {
      const child = spawn(process.execPath, [cliMainPath(), 'serve'], {
        detached: true,
        cwd: '/',
        stdio: ['ignore', fd, fd],
        env: {
          ...process.env,
          NSPOD_ROOT: config.root,
          NSPOD_RUN_ROOT: config.runRoot,
          NSPOD_CGROUP_PARENT: config.cgroupParent,
          ...(config.runtime ? { NSPOD_RUNTIME: config.runtime } : {}),
        },
      });
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(fd);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await readySupervisorPid(config.runRoot);
    if (ready !== undefined) return { pid: ready, started: true, log: files.log };
    if (Date.now() > deadline) {
      throw unavailable(`the supervisor (pid ${pid}) did not become ready in ${timeoutMs / 1000}s; see ${files.log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
