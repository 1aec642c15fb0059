/**
 * ExecSync: run a command in a running container (`runc exec`), capture stdout and stderr (each
 * capped, the rest discarded), and on timeout kill what was started: the exec'd process and every
 * descendant it made inside the container, then the runtime process.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Context } from './context.js';
import type { ContainerRecord } from '../state/index.js';
import { runtimeGlobalArgs } from '../oci/index.js';
import { unavailable } from '../errors/index.js';

export const MAX_EXEC_OUTPUT = 16 * 1024 * 1024;

export interface ExecSyncOptions {
  args: string[];
  /** 0 or absent: no timeout */
  timeoutMs?: number;
  maxOutputBytes?: number;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  timedOut: boolean;
}

/** Every descendant of `pid` (children first found, deepest last), from /proc. */
export async function descendants(pid: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {}
  }
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [child, ppid] of parent) if (frontier.includes(ppid)) next.push(child);
    out.push(...next);
    frontier = next;
  }
  return out;
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    if (this.size >= this.max) return;
    const take = b.subarray(0, this.max - this.size);
    this.chunks.push(take);
    this.size += take.length;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export async function execSync(ctx: Context, rec: ContainerRecord, o: ExecSyncOptions): Promise<ExecSyncResult> {
  const rt = await ctx.runtime();
  const dir = path.join(ctx.config.runRoot, 'exec');
  await fs.mkdir(dir, { recursive: true });
  const pidFile = path.join(dir, `${rec.id.slice(0, 12)}-${randomBytes(6).toString('hex')}.pid`);
  const args = [...runtimeGlobalArgs(ctx.runtimeRoot), 'exec', '--pid-file', pidFile, rec.id, ...o.args];
  const max = o.maxOutputBytes ?? MAX_EXEC_OUTPUT;
  const out = new Capped(max);
  const err = new Capped(max);
  try {
    return await new Promise<ExecSyncResult>((resolve, reject) => {
      const child = spawn(rt.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      // The exec'd process and everything it started (its pid is in the pid file once runc made it).
      const killStarted = async (): Promise<void> => {
        const pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
        if (pid > 0) {
          const kids = await descendants(pid);
          killQuiet(pid);
          for (const k of kids) killQuiet(k);
        }
      };
      if (o.timeoutMs && o.timeoutMs > 0) {
        timer = setTimeout(() => {
          timedOut = true;
          void killStarted().then(() => child.kill('SIGKILL'));
        }, o.timeoutMs);
      }
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(unavailable(`cannot run ${rt.path} exec: ${e.message}`, e));
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        const done = (): void =>
          resolve({
            stdout: out.buffer,
            stderr: err.buffer,
            exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15),
            timedOut,
          });
        // a process runc made just as it was killed: its pid file is there now
        if (timedOut) void killStarted().then(done, done);
        else done();
      });
    });
  } finally {
    await fs.rm(pidFile, { force: true });
  }
}
