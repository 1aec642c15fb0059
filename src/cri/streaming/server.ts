/**
 * nspod's streaming server: the URLs CRI Exec, Attach and PortForward return point here
 * (`http://<addr>:<port>/{exec,attach,portforward}/<token>`). A token is good for one
 * connection within a minute. The connection is upgraded to SPDY/3.1 or to a WebSocket (see
 * io.ts for both protocols) and the session runs (sessions.ts).
 */
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { Runtime } from '../../pod/index.js';
import type { PodRecord } from '../../state/index.js';
import { messageOf } from '../../errors/index.js';
import { SpdySession } from './spdy.js';
import type { SpdyStream } from './spdy.js';
import {
  SPDY_EXEC_PROTOCOLS,
  SPDY_PORTFORWARD_PROTOCOLS,
  WS_EXEC_PROTOCOLS,
  WS_PORTFORWARD_PROTOCOLS,
  spdyIo,
  wsIo,
} from './io.js';
import type { Io } from './io.js';
import { forwardPort, runAttach, runExec } from './sessions.js';
import type { SessionDeps } from './sessions.js';
import type { PortForwardSession, StreamSession, StreamingServer } from './types.js';

export interface StreamingOptions {
  rt: Runtime;
  relay: string;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: a free port */
  port?: number;
  tokenTtlMs?: number;
}

/** The client's protocols in its order, first one the server has. */
export function negotiate(offered: string[], supported: string[]): string | undefined {
  return offered.find((p) => supported.includes(p));
}

function headerList(req: IncomingMessage, name: string): string[] {
  const v = req.headers[name];
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

function reject(socket: Duplex, code: number, msg: string): void {
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ''}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${msg}\n`,
  );
}

export async function startStreamingServer(o: StreamingOptions): Promise<StreamingServer> {
  const ttl = o.tokenTtlMs ?? 60_000;
  const tokens = new Map<string, { session: StreamSession; expires: number }>();
  const deps: SessionDeps = { rt: o.rt, relay: o.relay };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const live = new Set<Duplex>();

  const take = (kind: string, token: string): StreamSession | undefined => {
    const now = Date.now();
    for (const [k, v] of tokens) if (v.expires < now) tokens.delete(k);
    const t = tokens.get(token);
    if (!t || t.session.kind !== kind) return undefined;
    tokens.delete(token);
    return t.session;
  };

  const server = http.createServer((_req, res) => {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('nspod streaming server: this URL must be opened with Upgrade: SPDY/3.1 or websocket\n');
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    live.add(socket);
    socket.on('close', () => live.delete(socket));
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/(exec|attach|portforward)\/([0-9a-f]+)$/.exec(url.pathname);
    const session = m ? take(m[1]!, m[2]!) : undefined;
    if (!session) return reject(socket, 404, 'unknown or expired streaming session');
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'websocket') {
      const supported = session.kind === 'portforward' ? WS_PORTFORWARD_PROTOCOLS : WS_EXEC_PROTOCOLS;
      const offered = headerList(req, 'sec-websocket-protocol');
      const proto = negotiate(offered, supported);
      if (!proto) return reject(socket, 400, `no supported websocket subprotocol among: ${offered.join(', ')}`);
      wss.handleUpgrade(req, socket, head, (ws) => {
        void runWebSocket(ws, proto, session, url).catch(() => ws.close(1011));
      });
      return;
    }
    if (upgrade === 'spdy/3.1') {
      const supported = session.kind === 'portforward' ? SPDY_PORTFORWARD_PROTOCOLS : SPDY_EXEC_PROTOCOLS;
      const offered = headerList(req, 'x-stream-protocol-version');
      const proto = offered.length === 0 ? supported[supported.length - 1]! : negotiate(offered, supported);
      if (!proto) return reject(socket, 403, `no supported stream protocol among: ${offered.join(', ')}`);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
          `X-Stream-Protocol-Version: ${proto}\r\n\r\n`,
      );
      const spdy = new SpdySession(socket);
      if (head.length > 0) socket.unshift(head);
      spdy.on('error', () => socket.destroy());
      void runSpdy(spdy, proto, session).catch(() => socket.destroy());
      return;
    }
    reject(socket, 400, `unsupported upgrade "${req.headers.upgrade ?? ''}" (expected SPDY/3.1 or websocket)`);
  });

  async function runIo(session: StreamSession, io: Io): Promise<void> {
    try {
      if (session.kind === 'exec') await runExec(deps, session, io);
      else if (session.kind === 'attach') await runAttach(deps, session, io);
    } catch (e) {
      io.finish({ error: messageOf(e) });
    }
  }

  async function runSpdy(spdy: SpdySession, proto: string, session: StreamSession): Promise<void> {
    if (session.kind === 'portforward') return spdyPortForward(spdy, session);
    const io = await spdyIo(spdy, proto, session);
    await runIo(session, io);
  }

  async function runWebSocket(ws: WebSocket, proto: string, session: StreamSession, url: URL): Promise<void> {
    if (session.kind === 'portforward') return wsPortForward(ws, proto, session, url);
    await runIo(session, wsIo(ws, proto, session));
  }

  async function podOf(id: string): Promise<PodRecord> {
    return o.rt.podRecord(id);
  }

  async function spdyPortForward(spdy: SpdySession, session: PortForwardSession): Promise<void> {
    // streams may arrive at once: listen before anything is awaited
    const podP = podOf(session.podId);
    podP.catch(() => spdy.close());
    const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
    spdy.on('stream', (s: SpdyStream) => {
      const id = s.header('requestID') ?? s.header('requestid') ?? String(s.id);
      const type = s.header('streamType');
      const pair = pairs.get(id) ?? {};
      if (type === 'data') pair.data = s;
      else if (type === 'error') pair.error = s;
      else return s.reset();
      pairs.set(id, pair);
      if (!pair.data || !pair.error) return;
      pairs.delete(id);
      const { data, error } = pair;
      const port = Number(data.header('port'));
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        error.write(`invalid port "${data.header('port') ?? ''}"`);
        error.end();
        data.end();
        return;
      }
      if (session.ports.length > 0 && !session.ports.includes(port)) {
        error.write(`port ${port} was not asked for in the PortForward request`);
        error.end();
        data.end();
        return;
      }
      void podP.then((pod) => {
        const fwd = forwardPort(
          deps,
          pod,
          port,
          data.input,
          (b) => data.write(b),
          () => data.end(),
        );
        data.on('close', fwd.cancel);
        void fwd.done.then((msg) => {
          if (msg) error.write(`error forwarding port ${port} to pod ${pod.id}: ${msg}`);
          error.end();
        });
      });
    });
    await new Promise<void>((resolve) => spdy.on('close', resolve));
  }

  async function wsPortForward(ws: WebSocket, proto: string, session: PortForwardSession, url: URL): Promise<void> {
    const qp = url.searchParams.getAll('port').map(Number);
    const ports = qp.length > 0 ? qp : session.ports;
    const base64 = proto.includes('base64');
    const send = (ch: number, b: Buffer): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (base64) ws.send(String.fromCharCode(48 + ch) + b.toString('base64'));
      else ws.send(Buffer.concat([Buffer.from([ch]), b]));
    };
    // listen before anything is awaited: the client may send at once
    const inputs = ports.map(() => new PassThrough());
    const cancels: Array<() => void> = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (buf.length === 0) return;
      let ch: number;
      if (base64 || !isBinary) {
        ch = buf[0]! - 48;
        buf = Buffer.from(buf.subarray(1).toString('utf8'), 'base64');
      } else {
        ch = buf[0]!;
        buf = buf.subarray(1);
      }
      if (ch % 2 === 0) inputs[ch / 2]?.write(buf);
    });
    const closed = new Promise<void>((resolve) =>
      ws.on('close', () => {
        for (const inp of inputs) inp.end();
        for (const c of cancels) c();
        resolve();
      }),
    );
    for (const [i, port] of ports.entries()) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        send(2 * i + 1, Buffer.from(`invalid port "${port}"`));
        ws.close(1000);
        return closed;
      }
    }
    const pod = await podOf(session.podId);
    ports.forEach((port, i) => {
      const p = Buffer.alloc(2);
      p.writeUInt16LE(port);
      send(2 * i, p);
      send(2 * i + 1, p);
      const fwd = forwardPort(
        deps,
        pod,
        port,
        inputs[i]!,
        (b) => send(2 * i, b),
        () => undefined,
      );
      cancels.push(fwd.cancel);
      void fwd.done.then((msg) => {
        if (msg) send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${pod.id}: ${msg}`));
      });
    });
    return closed;
  }

  await new Promise<void>((resolve, rejectP) => {
    server.once('error', rejectP);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const baseUrl = `http://${host}:${addr.port}`;
  return {
    baseUrl,
    urlFor(session) {
      const token = randomBytes(16).toString('hex');
      tokens.set(token, { session, expires: Date.now() + ttl });
      return `${baseUrl}/${session.kind}/${token}`;
    },
    async close() {
      for (const s of live) s.destroy();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
