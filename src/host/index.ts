/**
 * The host adapter: every call that changes the host goes through here (running runc, conmon,
 * unshare, mount/umount), so the logic above it can be unit-tested with the recording fake and
 * integration tests exercise the real one as root.
 */
import { spawn } from 'node:child_process';
import { NspodError } from '../errors/index.js';

export interface RunOptions {
  /** bytes written to the child's stdin, then closed */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** do not throw on a non-zero exit; the caller reads `code` */
  allowFailure?: boolean;
  /** inherit stdio (interactive exec); stdout/stderr are then empty */
  inheritStdio?: boolean;
  /**
   * Give the child a sync pipe as fd 3 (and `_OCI_SYNCPIPE=3`, conmon's protocol) and resolve
   * once the child has exited and written its first line there (or closed it). Daemonising
   * children keep their stdio: it is not waited for.
   */
  syncPipe?: boolean;
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** with `syncPipe`: the first line the child wrote on fd 3 */
  sync?: string;
}

export interface Host {
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

function lastLine(s: string): string {
  const lines = s
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

/** The real host: child_process.spawn, with a one-line error naming the command on failure. */
export const realHost: Host = {
  run(cmd, args, opts = {}) {
    return new Promise((resolve, reject) => {
      const env = opts.env ?? process.env;
      const child = spawn(cmd, args, {
        env: opts.syncPipe ? { ...env, _OCI_SYNCPIPE: '3' } : env,
        cwd: opts.cwd,
        stdio: opts.inheritStdio
          ? 'inherit'
          : opts.syncPipe
            ? ['pipe', 'pipe', 'pipe', 'pipe']
            : ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (b: Buffer) => out.push(b));
      child.stderr?.on('data', (b: Buffer) => err.push(b));
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new NspodError('UNAVAILABLE', `cannot run ${cmd}: ${e.message}`, { cause: e }));
      });
      let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let sync: string | undefined;
      let syncDone = !opts.syncPipe;
      const finish = () => {
        if (!exited || !syncDone) return;
        if (timer) clearTimeout(timer);
        const { code, signal } = exited;
        if (opts.syncPipe) for (const s of child.stdio) s?.destroy();
        const res: RunResult = {
          code: code ?? 128 + (signal ? 9 : 0),
          signal,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
          ...(sync !== undefined ? { sync } : {}),
        };
        if (res.code !== 0 && !opts.allowFailure) {
          const why = lastLine(res.stderr) || lastLine(res.stdout) || `exit status ${res.code}`;
          reject(new NspodError('INTERNAL', `${cmd} ${args[0] ?? ''}: ${why}`.replace(/\s+:/, ':')));
          return;
        }
        resolve(res);
      };
      if (opts.syncPipe) {
        const pipe = child.stdio[3] as NodeJS.ReadableStream;
        let buf = '';
        pipe.on('data', (b: Buffer) => {
          buf += b.toString();
          const nl = buf.indexOf('\n');
          if (nl >= 0 && !syncDone) {
            sync = buf.slice(0, nl);
            syncDone = true;
            finish();
          }
        });
        pipe.on('end', () => {
          if (syncDone) return;
          if (buf) sync = buf;
          syncDone = true;
          finish();
        });
        child.on('exit', (code, signal) => {
          exited = { code, signal };
          finish();
        });
      } else {
        child.on('close', (code, signal) => {
          exited = { code, signal };
          finish();
        });
      }
      if (child.stdin) {
        child.stdin.on('error', () => undefined); // a child that exits without reading its input
        if (opts.input !== undefined) child.stdin.end(opts.input);
        else child.stdin.end();
      }
    });
  },
};

export interface RecordedCall {
  cmd: string;
  args: string[];
  input?: string;
}

/** A fake host that records calls and answers from a handler (default: success, empty output). */
export function recordingHost(
  handler: (call: RecordedCall) => Partial<RunResult> | undefined = () => undefined,
): Host & { calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return {
    calls,
    run(cmd, args, opts = {}) {
      const call: RecordedCall = { cmd, args: [...args] };
      if (opts.input !== undefined) call.input = opts.input.toString();
      calls.push(call);
      const r = handler(call) ?? {};
      const res: RunResult = { code: 0, signal: null, stdout: '', stderr: '', ...r };
      if (res.code !== 0 && !opts.allowFailure) {
        return Promise.reject(new NspodError('INTERNAL', `${cmd} ${args[0] ?? ''}: ${res.stderr || res.code}`));
      }
      return Promise.resolve(res);
    },
  };
}
