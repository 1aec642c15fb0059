/**
 * The two transports of the Kubernetes streaming protocols, behind one small interface (`Io`):
 *
 * - SPDY/3.1 (`X-Stream-Protocol-Version: v4.channel.k8s.io`, v3, v2, channel.k8s.io): the client
 *   opens one stream per channel, named by its `streamType` header (error, stdin, stdout, stderr,
 *   resize); the session starts once every expected stream is there.
 * - WebSocket (`Sec-WebSocket-Protocol: v5.channel.k8s.io`, v4, channel.k8s.io, and the base64
 *   variants): every message starts with its channel number (0 stdin, 1 stdout, 2 stderr,
 *   3 error, 4 resize; v5 adds 255 = "close this channel"); base64 protocols send text frames
 *   with the channel as an ASCII digit.
 *
 * The error channel ends a session with a metav1.Status in JSON (v4/v5) or a plain message
 * (older versions); resize messages are JSON `{"Width":…,"Height":…}` one after the other.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { SpdySession, SpdyStream } from './spdy.js';

export const SPDY_EXEC_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
export const WS_EXEC_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'base64.channel.k8s.io',
  'channel.k8s.io',
];
export const SPDY_PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'];
export const WS_PORTFORWARD_PROTOCOLS = [
  'v4.channel.k8s.io',
  'portforward.k8s.io',
  'v4.base64.channel.k8s.io',
  'base64.channel.k8s.io',
  'channel.k8s.io',
];

export interface ExecResult {
  exitCode?: number;
  error?: string;
  cmd?: string[];
}

/** One exec/attach session as the handlers see it. */
export interface Io {
  stdin?: Readable;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
  /** emits 'resize' (width, height) and 'close' (the client went away) */
  readonly events: EventEmitter;
  /** the last size the client sent (resizes may come before the command starts) */
  size?: { width: number; height: number };
  finish(r: ExecResult): void;
}

/** The metav1.Status the v4+ error channel carries. */
export function statusJson(r: ExecResult): string {
  if (r.error !== undefined)
    return JSON.stringify({ metadata: {}, status: 'Failure', message: r.error, reason: 'InternalError' });
  if ((r.exitCode ?? 0) === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command ${JSON.stringify(r.cmd ?? [])}, exit code ${r.exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(r.exitCode) }] },
  });
}

function legacyStatus(r: ExecResult): string {
  if (r.error !== undefined) return r.error;
  if ((r.exitCode ?? 0) === 0) return '';
  return `command terminated with non-zero exit code: exit code ${r.exitCode}`;
}

/** Splits a byte stream of back-to-back JSON resize objects. */
export function resizeParser(emit: (w: number, h: number) => void): (b: Buffer) => void {
  let text = '';
  return (b) => {
    text += b.toString('utf8');
    for (;;) {
      const start = text.indexOf('{');
      const end = text.indexOf('}', start);
      if (start < 0 || end < 0) return;
      const obj = text.slice(start, end + 1);
      text = text.slice(end + 1);
      try {
        const m = JSON.parse(obj) as { Width?: number; Height?: number };
        if (typeof m.Width === 'number' && typeof m.Height === 'number') emit(m.Width, m.Height);
      } catch {}
    }
  };
}

export interface Wanted {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/**
 * Waits for the client's SPDY streams (error, and stdin/stdout/stderr/resize as wanted) and
 * returns the session's Io; rejects after `timeoutMs` if some never came.
 */
export function spdyIo(session: SpdySession, protocol: string, want: Wanted, timeoutMs = 30_000): Promise<Io> {
  const v =
    protocol === 'v4.channel.k8s.io'
      ? 4
      : protocol === 'v3.channel.k8s.io'
        ? 3
        : protocol === 'v2.channel.k8s.io'
          ? 2
          : 1;
  const expected = new Set<string>(['error']);
  if (want.stdin) expected.add('stdin');
  if (want.stdout) expected.add('stdout');
  if (want.stderr && !want.tty) expected.add('stderr');
  if (want.tty && v >= 3) expected.add('resize');
  const got = new Map<string, SpdyStream>();
  return new Promise<Io>((resolve, reject) => {
    const timer = setTimeout(() => {
      session.off('stream', onStream);
      reject(new Error(`timed out waiting for streams (${[...expected].filter((e) => !got.has(e)).join(', ')})`));
    }, timeoutMs);
    const onStream = (s: SpdyStream): void => {
      const type = s.header('streamType') ?? '';
      got.set(type, s);
      if (![...expected].every((e) => got.has(e))) return;
      clearTimeout(timer);
      session.off('stream', onStream);
      const events = new EventEmitter();
      session.on('close', () => events.emit('close'));
      const resize = got.get('resize');
      if (resize) {
        resize.input.on(
          'data',
          resizeParser((w, h) => {
            io.size = { width: w, height: h };
            events.emit('resize', w, h);
          }),
        );
      }
      const out = got.get('stdout');
      const err = got.get('stderr');
      let done = false;
      const io: Io = {
        ...(got.get('stdin') ? { stdin: got.get('stdin')!.input } : {}),
        ...(out ? { stdout: (b: Buffer) => out.write(b) } : {}),
        ...(err ? { stderr: (b: Buffer) => err.write(b) } : {}),
        events,
        finish(r) {
          if (done) return;
          done = true;
          const e = got.get('error')!;
          const msg = v >= 4 ? statusJson(r) : legacyStatus(r);
          if (msg !== '') e.write(msg);
          for (const s of got.values()) s.end();
          session.close();
        },
      };
      resolve(io);
    };
    session.on('stream', onStream);
  });
}

/** The Io of a WebSocket exec/attach session. */
export function wsIo(ws: WebSocket, protocol: string, want: Wanted): Io {
  const base64 = protocol.includes('base64');
  const v5 = protocol === 'v5.channel.k8s.io';
  const structured = protocol.startsWith('v4.') || v5;
  const events = new EventEmitter();
  const stdin = want.stdin ? new PassThrough() : undefined;
  const onResize = resizeParser((w, h) => {
    io.size = { width: w, height: h };
    events.emit('resize', w, h);
  });
  const send = (ch: number, b: Buffer): void => {
    if (ws.readyState !== ws.OPEN) return;
    if (base64) ws.send(String.fromCharCode(48 + ch) + b.toString('base64'));
    else ws.send(Buffer.concat([Buffer.from([ch]), b]));
  };
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    let buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (buf.length === 0) return;
    let ch: number;
    if (base64 || !isBinary) {
      ch = buf[0]! - 48;
      buf = Buffer.from(buf.subarray(1).toString('utf8'), 'base64');
    } else {
      ch = buf[0]!;
      buf = buf.subarray(1);
    }
    if (ch === 255 && v5) {
      if (buf[0] === 0) stdin?.end();
      return;
    }
    if (ch === 0) stdin?.write(buf);
    else if (ch === 4) onResize(buf);
  });
  ws.on('close', () => {
    stdin?.end();
    events.emit('close');
  });
  let done = false;
  const io: Io = {
    ...(stdin ? { stdin } : {}),
    ...(want.stdout ? { stdout: (b: Buffer) => send(1, b) } : {}),
    ...(want.stderr && !want.tty ? { stderr: (b: Buffer) => send(2, b) } : {}),
    events,
    finish(r) {
      if (done) return;
      done = true;
      const msg = structured ? statusJson(r) : legacyStatus(r);
      if (msg !== '') send(3, Buffer.from(msg));
      ws.close(1000);
    },
  };
  return io;
}
