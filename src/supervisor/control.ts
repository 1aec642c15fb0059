/**
 * The daemon's control socket, `<runRoot>/control.sock` (0600): `nspod play` hands its work to the
 * running daemon here instead of doing it in its own short-lived process, so a pod starts in a
 * process whose modules are loaded and whose code is already compiled (as `docker run` asks
 * dockerd). The protocol is one JSON object per line:
 *
 *   client → daemon   {"op":"play","identity":…,"env":{…},"config":{…},"play":{…}}
 *   daemon → client   {"t":"accepted"}, then {"t":"out","line":…} | {"t":"err","line":…} | {"t":"timings","timings":{…}}
 *                     … then {"t":"done"} or {"t":"error","code":…,"message":…,"stack":…}
 *                     or, at once, {"t":"declined","why":…}
 *
 * The daemon declines a request from another build of nspod (identity: version and the bundle's
 * path, size and mtime) or from a client whose configuration or NSPOD_* / PATH / HOME environment
 * differs from its own: the client then does the work itself, so forwarding never changes what a
 * command does, only where it runs.
 */
import net from 'node:net';
import path from 'node:path';
import { promises as fs, statSync } from 'node:fs';
import { NspodError, checkSocketPath } from '../errors/index.js';
import type { ErrorCode } from '../errors/index.js';

export interface PlayRequest {
  /** the YAML text (the client reads the file or stdin) */
  text: string;
  /** the file name as given, for error messages */
  source: string;
  replace: boolean;
  supervise: boolean;
}

/** Where a play's output goes: the terminal, or the control socket. */
export interface PlayIo {
  out(line: string): void;
  err(line: string): void;
  timings(t: Record<string, number>): void;
}

export interface ControlRequest {
  op: 'play';
  identity: string;
  env: Record<string, string>;
  config: unknown;
  play: PlayRequest;
}

type Message =
  | { t: 'accepted' }
  | { t: 'out' | 'err'; line: string }
  | { t: 'timings'; timings: Record<string, number> }
  | { t: 'done' }
  | { t: 'declined'; why: string }
  | { t: 'error'; code: ErrorCode; message: string; stack?: string };

export const controlSocketPath = (runRoot: string): string => path.join(runRoot, 'control.sock');

/** This build of nspod: the version and the file the code runs from (a rebuilt bundle differs). */
export function buildIdentity(version: string, mainFile: string): string {
  try {
    const st = statSync(mainFile);
    return `${version}:${mainFile}:${st.size}:${Math.trunc(st.mtimeMs)}`;
  } catch {
    return `${version}:${mainFile}`;
  }
}

/** Compared as the resolved configuration instead (a flag and its env var give the same one). */
const CONFIG_ENV = new Set(['NSPOD_ROOT', 'NSPOD_RUN_ROOT', 'NSPOD_CGROUP_PARENT', 'NSPOD_RUNTIME', 'NSPOD_SUPERVISE']);

/** The environment that changes what a play does (conmon, CNI, registries, credentials, PATH). */
export function relevantEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(env).sort()) {
    if ((k.startsWith('NSPOD_') && !CONFIG_ENV.has(k)) || k === 'PATH' || k === 'HOME') out[k] = env[k]!;
  }
  return out;
}

/** Why the daemon must not serve `req`, or undefined when it may. */
export function declineReason(
  req: ControlRequest,
  mine: { identity: string; env: Record<string, string>; config: unknown },
): string | undefined {
  if (req.op !== 'play') return `unknown operation ${String(req.op)}`;
  if (req.identity !== mine.identity) return `another build of nspod (daemon ${mine.identity})`;
  const a = JSON.stringify(req.env);
  const b = JSON.stringify(mine.env);
  if (a !== b) {
    const keys = new Set([...Object.keys(req.env), ...Object.keys(mine.env)]);
    const diff = [...keys].filter((k) => req.env[k] !== mine.env[k]).sort();
    return `environment differs (${diff.join(', ')})`;
  }
  if (JSON.stringify(req.config) !== JSON.stringify(mine.config)) return 'configuration differs';
  return undefined;
}

export interface ControlServer {
  close(): Promise<void>;
}

/**
 * Listens on `socket` (mode 0600, root's) and runs `play` for each accepted request, streaming
 * its output back. A client that goes away does not stop the play: it runs to its end (or its
 * rollback) as it would have in the client's own process.
 */
export async function startControlServer(o: {
  socket: string;
  mine: { identity: string; env: Record<string, string>; config: unknown };
  play: (req: PlayRequest, io: PlayIo) => Promise<void>;
  log: (line: string) => void;
}): Promise<ControlServer> {
  checkSocketPath(o.socket, 'control socket (<run-root>/control.sock)');
  await fs.rm(o.socket, { force: true });
  const server = net.createServer((conn) => {
    let buf = '';
    let started = false;
    const send = (m: Message): void => {
      if (!conn.destroyed) conn.write(JSON.stringify(m) + '\n');
    };
    conn.on('error', () => undefined); // a client gone meanwhile
    conn.on('data', (chunk: Buffer) => {
      if (started) return;
      buf += chunk.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      started = true;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        send({ t: 'declined', why: 'unreadable request' });
        conn.end();
        return;
      }
      const why = declineReason(req, o.mine);
      if (why) {
        send({ t: 'declined', why });
        conn.end();
        return;
      }
      send({ t: 'accepted' });
      const io: PlayIo = {
        out: (line) => send({ t: 'out', line }),
        err: (line) => send({ t: 'err', line }),
        timings: (timings) => send({ t: 'timings', timings }),
      };
      o.play(req.play, io).then(
        () => {
          send({ t: 'done' });
          conn.end();
        },
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          const code: ErrorCode = e instanceof NspodError ? e.code : 'INTERNAL';
          if (!(e instanceof NspodError)) o.log(`play from ${req.play.source}: ${err.stack ?? err.message}`);
          send({ t: 'error', code, message: err.message, ...(err.stack ? { stack: err.stack } : {}) });
          conn.end();
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fs.chmod(o.socket, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        void fs.rm(o.socket, { force: true }).catch(() => undefined);
      }),
  };
}

/**
 * Hands a play to the daemon listening on `socket`. Resolves to 'declined' (with the reason) when
 * no daemon listens there or it will not serve this client, so the caller does the work itself;
 * to 'done' once the daemon finished it; rejects with the daemon's error (same code and message)
 * when the play failed there. Output arrives through `io` as the daemon makes it.
 */
export function forwardPlay(
  socket: string,
  req: ControlRequest,
  io: PlayIo,
): Promise<{ result: 'done' } | { result: 'declined'; why: string }> {
  return new Promise((resolve, reject) => {
    let accepted = false;
    let settled = false;
    let buf = '';
    const conn = net.createConnection(socket);
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      f();
    };
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'));
    conn.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        let m: Message;
        try {
          m = JSON.parse(buf.slice(0, nl)) as Message;
        } catch {
          settle(() => reject(new NspodError('UNAVAILABLE', `unreadable answer from the nspod daemon on ${socket}`)));
          conn.destroy();
          return;
        }
        buf = buf.slice(nl + 1);
        if (m.t === 'declined') settle(() => resolve({ result: 'declined', why: m.why }));
        else if (m.t === 'accepted') accepted = true;
        else if (m.t === 'out') io.out(m.line);
        else if (m.t === 'err') io.err(m.line);
        else if (m.t === 'timings') io.timings(m.timings);
        else if (m.t === 'done') settle(() => resolve({ result: 'done' }));
        else if (m.t === 'error') {
          const e = new NspodError(m.code, m.message);
          if (m.stack) e.stack = m.stack;
          settle(() => reject(e));
        }
      }
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      if (!accepted)
        settle(() => resolve({ result: 'declined', why: `no daemon on ${socket} (${e.code ?? e.message})` }));
      else settle(() => reject(new NspodError('UNAVAILABLE', `the nspod daemon went away: ${e.message}`)));
    });
    conn.on('close', () => {
      if (!accepted) settle(() => resolve({ result: 'declined', why: 'the daemon closed the connection' }));
      else settle(() => reject(new NspodError('UNAVAILABLE', 'the nspod daemon went away before the play finished')));
    });
  });
}
