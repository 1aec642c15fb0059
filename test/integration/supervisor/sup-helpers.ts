/** Helpers for the supervisor's integration tests: a daemon per sandbox, describe as JSON, log timestamps. */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { cliPath, nspodOk, waitFor, alive } from '../helpers.js';
import type { Sandbox } from '../helpers.js';

export interface ContainerJson {
  name: string;
  id?: string;
  role: string;
  state: string;
  reason?: string;
  exitCode?: number;
  ready: boolean;
  restartCount: number;
  pid?: number;
  lastState?: { exitCode: number; reason: string };
}

export interface DescribeJson {
  id: string;
  status: string;
  ready: string;
  restarts: number;
  supervised: boolean;
  containers: ContainerJson[];
  events: Array<{ reason: string; message: string; container?: string; type: string }>;
}

export function supervisedEnv(sb: Sandbox, extra: Record<string, string> = {}): Sandbox {
  return { ...sb, env: { ...sb.env, NSPOD_SUPERVISE: '1', NSPOD_BACKOFF_BASE_MS: '1000', ...extra } };
}

export async function describePod(sb: Sandbox, name: string): Promise<DescribeJson> {
  return JSON.parse(await nspodOk(sb, ['describe', 'pod', name, '-o', 'json'])) as DescribeJson;
}

export function container(d: DescribeJson, name: string): ContainerJson {
  const c = d.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${JSON.stringify(d.containers.map((x) => x.name))}`);
  return c;
}

/** Starts `nspod serve` for the sandbox (detached, no TTY, output to a file); resolves with its pid once it is ready. */
export async function startDaemon(sb: Sandbox): Promise<number> {
  const fd = openSync(path.join(sb.runRoot, 'supervisor-test.log'), 'a');
  let pid: number | undefined;
  try {
    const child = spawn(process.execPath, [cliPath, 'serve'], {
      env: sb.env,
      cwd: '/',
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(fd);
  }
  if (!pid) throw new Error('cannot spawn nspod serve');
  await waitFor(
    `the supervisor (pid ${pid}) to be ready`,
    () => {
      if (!alive(pid))
        throw new Error(`nspod serve exited: ${readFileSync(path.join(sb.runRoot, 'supervisor-test.log'), 'utf8')}`);
      return (
        readPid(path.join(sb.runRoot, 'supervisor.ready')) === pid &&
        readPid(path.join(sb.runRoot, 'supervisor.pid')) === pid
      );
    },
    60_000,
  );
  return pid;
}

export function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  return Number.isFinite(n) ? n : undefined;
}

/** The lines of a container's log with conmon's timestamps (ms since the epoch). */
export function logLines(sb: Sandbox, podId: string, name: string): Array<{ t: number; line: string }> {
  const file = path.join(sb.root, 'pods', podId, 'logs', `${name}.log`);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [ts, , , ...rest] = l.split(' ');
      // RFC3339Nano: keep milliseconds for Date.parse
      const iso = (ts ?? '').replace(/(\.\d{3})\d*/, '$1');
      return { t: Date.parse(iso), line: rest.join(' ') };
    });
}

export function firstTime(lines: Array<{ t: number; line: string }>, text: string): number {
  const l = lines.find((x) => x.line === text);
  if (!l) throw new Error(`no log line "${text}" in ${JSON.stringify(lines.map((x) => x.line))}`);
  return l.t;
}

/** /proc/<pid>/stat start time (clock ticks since boot): the same pid with the same start time is the same process. */
export function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}
