/**
 * The runc/crun command line. Every call carries `--root <runtimeRoot>`: nspod keeps its own
 * runtime state directory (`<runRoot>/runtime`), never the system default.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition, internal, isNspodError, messageOf, notFound } from '../errors/index.js';
import type { Host, RunResult } from '../host/index.js';
import type { OciState } from './types.js';

export interface RuntimeInfo {
  name: 'runc' | 'crun' | string;
  path: string;
  version: string;
}

/** The runtime state directory under nspod's run root. */
export function runtimeRootFor(runRoot: string): string {
  return path.join(runRoot, 'runtime');
}

/** Arguments that precede every runtime verb. */
export function runtimeGlobalArgs(runtimeRoot: string): string[] {
  return ['--root', runtimeRoot];
}

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  /**
   * Files for the container's stdio when no conmon stands between (default: /dev/null in and
   * out, `<bundle>/runtime.log` for stderr, which also gets the runtime's own error message).
   */
  stdio?: { stdin?: string; stdout?: string; stderr?: string };
}

export interface ExecOptions {
  args: string[];
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  cwd?: string;
  user?: { uid: number; gid: number };
}

export interface RuntimeDriver {
  readonly runtime: RuntimeInfo;
  readonly root: string;
  create(opts: CreateOptions): Promise<void>;
  start(id: string): Promise<void>;
  /** NOT_FOUND when the runtime does not know the container */
  state(id: string): Promise<OciState>;
  /** NOT_FOUND when unknown, FAILED_PRECONDITION when it is not running */
  kill(id: string, signal?: string, opts?: { all?: boolean }): Promise<void>;
  /** succeeds when the container is already gone */
  delete(id: string, opts?: { force?: boolean }): Promise<void>;
  /** runs a process in the container with nspod's stdio; returns its exit code */
  exec(id: string, opts: ExecOptions): Promise<number>;
  /** runs a process in the container and captures its output */
  execOutput(id: string, opts: ExecOptions): Promise<RunResult>;
}

const NOT_FOUND_RE = /does not exist|not exist|no such file|not found/i;
const NOT_RUNNING_RE = /not running|container not running|is not running|stopped/i;

function lastLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

/** runc logs errors as `time="…" level=error msg="…"`; crun as `crun: …`. Keep the message. */
export function runtimeMessage(stderr: string): string {
  const line = lastLine(stderr);
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return (m ? m[1]!.replace(/\\"/g, '"') : line).trim();
}

function execArgs(id: string, o: ExecOptions): string[] {
  const a = ['exec'];
  if (o.tty) a.push('--tty');
  for (const e of o.env ?? []) a.push('--env', e);
  if (o.cwd) a.push('--cwd', o.cwd);
  if (o.user) a.push('--user', `${o.user.uid}:${o.user.gid}`);
  a.push(id, ...o.args);
  return a;
}

export function runtimeDriver(opts: { host: Host; runtime: RuntimeInfo; root: string }): RuntimeDriver {
  const { host, runtime, root } = opts;
  const name = `${runtime.name}`;
  const run = (args: string[], extra: { inheritStdio?: boolean } = {}): Promise<RunResult> =>
    host.run(runtime.path, [...runtimeGlobalArgs(root), ...args], { allowFailure: true, ...extra });
  const fail = (verb: string, id: string, r: RunResult): never => {
    const msg = runtimeMessage(r.stderr) || runtimeMessage(r.stdout) || `exit status ${r.code}`;
    if (NOT_FOUND_RE.test(msg)) throw notFound(`${name} ${verb} container ${id}: ${msg}`);
    throw failedPrecondition(`${name} ${verb} container ${id}: ${msg}`);
  };

  return {
    runtime,
    root,

    async create(o) {
      const stdin = o.stdio?.stdin ?? '/dev/null';
      const stdout = o.stdio?.stdout ?? '/dev/null';
      const stderr = o.stdio?.stderr ?? path.join(o.bundle, 'runtime.log');
      const args = [...runtimeGlobalArgs(root), 'create', '--bundle', o.bundle, '--pid-file', o.pidFile];
      if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
      args.push(o.id);
      // The container inherits the runtime's stdio: give it files, not our pipes, or the call
      // would wait for the container to exit.
      const script = 'exec "$0" "$@" <"$NSPOD_STDIN" >>"$NSPOD_STDOUT" 2>"$NSPOD_STDERR"';
      const r = await host.run('/bin/sh', ['-c', script, runtime.path, ...args], {
        allowFailure: true,
        env: { ...process.env, NSPOD_STDIN: stdin, NSPOD_STDOUT: stdout, NSPOD_STDERR: stderr },
      });
      if (r.code !== 0) {
        let text = r.stderr;
        try {
          text = (await readFile(stderr, 'utf8')) || text;
        } catch {}
        const msg = runtimeMessage(text) || `exit status ${r.code}`;
        throw failedPrecondition(`${name} create container ${o.id}: ${msg}`);
      }
    },

    async start(id) {
      const r = await run(['start', id]);
      if (r.code !== 0) fail('start', id, r);
    },

    async state(id) {
      const r = await run(['state', id]);
      if (r.code !== 0) fail('state', id, r);
      try {
        const s = JSON.parse(r.stdout) as OciState;
        if (typeof s.status !== 'string' || typeof s.pid !== 'number') throw new Error('missing status or pid');
        return s;
      } catch (e) {
        throw internal(`${name} state container ${id}: unreadable answer: ${messageOf(e)}`, e);
      }
    },

    async kill(id, signal = 'SIGTERM', o = {}) {
      const r = await run(['kill', ...(o.all ? ['--all'] : []), id, signal.replace(/^SIG/, '')]);
      if (r.code === 0) return;
      const msg = runtimeMessage(r.stderr);
      if (NOT_RUNNING_RE.test(msg) && !NOT_FOUND_RE.test(msg)) {
        throw failedPrecondition(`${name} kill container ${id}: ${msg}`);
      }
      fail('kill', id, r);
    },

    async delete(id, o = {}) {
      const r = await run(['delete', ...(o.force ? ['--force'] : []), id]);
      if (r.code === 0) return;
      try {
        fail('delete', id, r);
      } catch (e) {
        if (isNspodError(e, 'NOT_FOUND')) return;
        throw e;
      }
    },

    async exec(id, o) {
      const r = await run(execArgs(id, o), { inheritStdio: true });
      return r.code;
    },

    async execOutput(id, o) {
      return run(execArgs(id, { ...o, tty: false }));
    },
  };
}
