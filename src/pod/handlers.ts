/**
 * Probe and lifecycle-hook handlers, as kubelet runs them:
 *   exec       `<runtime> exec` in the container; success = exit 0; on timeout the process it
 *              started is killed (by the pid the runtime wrote), not just the runtime client
 *   httpGet    GET inside the pod's network namespace; success = status 200-399
 *   tcpSocket  a TCP connect inside the pod's network namespace
 *   grpc       grpc.health.v1.Health/Check over HTTP/2; success = SERVING
 *   sleep      (hooks only) waits
 * Node cannot enter a network namespace, so connections go through native/netns-connect, which
 * setns()es into the pod's pinned netns, connects, and relays the stream over its stdin/stdout.
 * With hostNetwork the connection is made from the host directly. `localhost` is the pod.
 */
import { checkSocketPath } from '../errors/index.js';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { projectDir } from '../config/index.js';
import type { Context } from './context.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import type { HookHandler, ProbeHandler } from '../spec/probe-types.js';
import { readPidFile } from '../monitor/index.js';
import { driverFor } from './driver.js';

export interface HandlerResult {
  ok: boolean;
  /** kubelet-style: why it failed, or the output of an exec */
  message: string;
}

export interface HandlerTarget {
  pod: PodRecord;
  rec: ContainerRecord;
}

export const netnsConnectPath = (): string =>
  process.env.NSPOD_NETNS_CONNECT ?? path.join(projectDir, 'native', 'netns-connect');

const USER_AGENT = 'kube-probe/1.31';

function resolvePort(rec: ContainerRecord, port: number | string): number {
  if (typeof port === 'number') return port;
  const p = rec.spec.ports.find((x) => x.name === port);
  if (!p) throw new Error(`port "${port}" is not a port of container "${rec.name}"`);
  return p.containerPort;
}

function limitText(s: string, n = 1024): string {
  const t = s.trim();
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

async function runExec(ctx: Context, t: HandlerTarget, command: string[], timeoutMs: number): Promise<HandlerResult> {
  const d = await driverFor(ctx);
  const pidFile = path.join(t.pod.runDir, `exec-${randomBytes(6).toString('hex')}.pid`);
  try {
    const r = await ctx.host.run(
      d.runtime.path,
      ['--root', d.root, 'exec', '--pid-file', pidFile, t.rec.id, ...command],
      {
        allowFailure: true,
        timeoutMs,
      },
    );
    if (r.signal === 'SIGKILL') {
      const pid = await readPidFile(pidFile).catch(() => undefined);
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      return {
        ok: false,
        message: `command ${JSON.stringify(command.join(' '))} timed out after ${timeoutMs / 1000}s`,
      };
    }
    const out = limitText(r.stdout + r.stderr);
    if (r.code === 0) return { ok: true, message: out };
    return {
      ok: false,
      message: `command ${JSON.stringify(command.join(' '))} exited with ${r.code}${out ? `: ${out}` : ''}`,
    };
  } finally {
    await fs.rm(pidFile, { force: true });
  }
}

interface Relay {
  stream: Duplex;
  child?: ChildProcess;
  close(): void;
}

let relayServer: { socket: string; child: ChildProcess } | undefined;

/**
 * Starts one long-lived `netns-connect serve` for this process (the supervisor daemon), so that
 * probes connect through a unix socket instead of spawning a helper each. Returns its stop.
 */
export async function startNetnsRelay(socket: string): Promise<() => void> {
  checkSocketPath(socket, 'netns relay socket (<run-root>/netns-relay.sock)');
  const child = spawn(netnsConnectPath(), ['serve', socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`netns-connect serve exited ${code}`)));
    child.stdout.once('data', () => resolve());
  });
  const server = { socket, child };
  relayServer = server;
  child.once('exit', () => {
    if (relayServer === server) relayServer = undefined;
  });
  return () => {
    if (relayServer === server) relayServer = undefined;
    child.kill('SIGKILL');
  };
}

/** Asks the relay server for a connection: one request line, then `OK` and the stream, or `ERR why`. */
function connectViaRelay(
  socketPath: string,
  netns: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Relay> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = Buffer.alloc(0);
    const fail = (e: Error) => (s.destroy(), reject(e));
    s.once('error', fail);
    s.once('connect', () => s.write(`${netns} ${host} ${port} ${timeoutMs}\n`));
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      s.off('data', onData);
      s.pause();
      s.off('error', fail);
      s.on('error', () => undefined);
      const line = buf.subarray(0, nl).toString();
      const rest = buf.subarray(nl + 1);
      if (line !== 'OK') return fail(new Error(line.replace(/^ERR /, '')));
      if (rest.length) s.unshift(rest);
      resolve({ stream: s, close: () => s.destroy() });
      // The caller attaches its reader in the continuation of this promise; let data flow after that.
      setImmediate(() => s.resume());
    };
    s.on('data', onData);
    s.once('end', () => fail(new Error('the netns relay closed the connection')));
  });
}

/** A stream connected to host:port inside the pod's network namespace (or the host's, with hostNetwork). */
function connect(pod: PodRecord, host: string, port: number, timeoutMs: number): Promise<Relay> {
  const netns = pod.sandbox.namespaces.net;
  if (netns && relayServer) return connectViaRelay(relayServer.socket, netns, host, port, timeoutMs);
  if (!netns) {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, timeout: timeoutMs });
      s.once('connect', () => resolve({ stream: s, close: () => s.destroy() }));
      s.once('timeout', () => (s.destroy(), reject(new Error(`dial tcp ${host}:${port}: i/o timeout`))));
      s.once('error', (e) => reject(new Error(`dial tcp ${host}:${port}: ${e.message}`)));
    });
  }
  const child = spawn(netnsConnectPath(), [netns, host, String(port), String(timeoutMs)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on('error', () => undefined);
  child.stdin.on('error', () => undefined);
  // http/http2/tls call socket methods a plain Duplex lacks
  Object.assign(stream, {
    setTimeout: () => stream,
    setNoDelay: () => stream,
    setKeepAlive: () => stream,
    unref: () => stream,
    ref: () => stream,
  });
  const relay: Relay = { stream, child, close: () => (child.kill('SIGKILL'), stream.destroy()) };
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', (e) => reject(new Error(`cannot run ${netnsConnectPath()}: ${e.message}`)));
    // The helper exits non-zero when it cannot connect; otherwise the connection is ready as soon
    // as it runs (data written before the connect completes waits in the pipe).
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(err.trim().replace(/^netns-connect: /, '') || `connect exited ${code}`));
    });
    child.once('spawn', () => resolve(relay));
  });
}

async function tcpCheck(pod: PodRecord, host: string, port: number, timeoutMs: number): Promise<HandlerResult> {
  const netns = pod.sandbox.namespaces.net;
  if (!netns || relayServer) {
    try {
      const r = await connect(pod, host, port, timeoutMs);
      r.close();
      return { ok: true, message: '' };
    } catch (e) {
      return { ok: false, message: (e as Error).message };
    }
  }
  return new Promise((resolve) => {
    const child = spawn(netnsConnectPath(), [netns, host, String(port), String(timeoutMs), 'check'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', (e) => resolve({ ok: false, message: e.message }));
    child.once('close', (code) =>
      resolve(
        code === 0
          ? { ok: true, message: '' }
          : { ok: false, message: `dial tcp ${host}:${port}: ${err.trim().replace(/^netns-connect: /, '')}` },
      ),
    );
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: context deadline exceeded (timeout ${ms / 1000}s)`));
    }, ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

async function httpGet(
  t: HandlerTarget,
  h: {
    path: string;
    port: number | string;
    host?: string;
    scheme: 'HTTP' | 'HTTPS';
    headers: Array<{ name: string; value: string }>;
  },
  timeoutMs: number,
): Promise<HandlerResult> {
  const host = h.host ?? '127.0.0.1';
  const port = resolvePort(t.rec, h.port);
  const url = `${h.scheme.toLowerCase()}://${net.isIPv6(host) ? `[${host}]` : host}:${port}${h.path}`;
  let relay: Relay | undefined;
  try {
    const status = await withTimeout(
      (async () => {
        // Loaded here: most commands that load this module never probe (start-up time).
        const [http, tls] = await Promise.all([import('node:http'), import('node:tls')]);
        relay = await connect(t.pod, host, port, timeoutMs);
        let socket: Duplex = relay.stream;
        if (h.scheme === 'HTTPS') {
          socket = tls.connect({
            socket: relay.stream,
            rejectUnauthorized: false,
            ...(net.isIP(host) ? {} : { servername: host }),
          });
        }
        const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: '*/*', Connection: 'close' };
        for (const x of h.headers) headers[x.name] = x.value;
        return new Promise<number>((resolve, reject) => {
          const req = http.request(
            {
              method: 'GET',
              host,
              port,
              path: h.path,
              headers,
              createConnection: () => socket as unknown as net.Socket,
            },
            (res) => {
              res.resume();
              res.once('end', () => resolve(res.statusCode ?? 0));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end();
        });
      })(),
      timeoutMs,
      `Get "${url}"`,
      () => relay?.close(),
    );
    if (status >= 200 && status < 400) return { ok: true, message: `HTTP probe succeeded with statuscode: ${status}` };
    return { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
  } catch (e) {
    const m = (e as Error).message;
    return { ok: false, message: m.startsWith('Get "') ? m : `Get "${url}": ${m}` };
  } finally {
    relay?.close();
  }
}

/** protobuf HealthCheckRequest { string service = 1; } in a gRPC length-prefixed frame */
function healthRequest(service: string): Buffer {
  const s = Buffer.from(service, 'utf8');
  const msg = s.length ? Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]) : Buffer.alloc(0);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckResponse { ServingStatus status = 1; } → the status number (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN) */
function healthStatus(body: Buffer): number {
  if (body.length < 5) return 0;
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  for (let i = 0; i < msg.length;) {
    const key = msg[i++]!;
    if (key === 0x08) return msg[i] ?? 0;
    const wire = key & 7;
    if (wire === 0) while ((msg[i++] ?? 0) & 0x80);
    else if (wire === 2) i += (msg[i] ?? 0) + 1;
    else break;
  }
  return 0;
}

const SERVING_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

async function grpcCheck(t: HandlerTarget, port: number, service: string, timeoutMs: number): Promise<HandlerResult> {
  const host = '127.0.0.1';
  let relay: Relay | undefined;
  let session: http2.ClientHttp2Session | undefined;
  try {
    const { status, grpcStatus, grpcMessage } = await withTimeout(
      (async () => {
        const { connect: h2connect } = await import('node:http2');
        relay = await connect(t.pod, host, port, timeoutMs);
        const stream = relay.stream;
        const sess = h2connect(`http://${host}:${port}`, {
          createConnection: () => stream as unknown as net.Socket,
        });
        session = sess;
        return new Promise<{ status: number; grpcStatus: string; grpcMessage: string }>((resolve, reject) => {
          sess.on('error', reject);
          const req = sess.request({
            ':method': 'POST',
            ':path': '/grpc.health.v1.Health/Check',
            'content-type': 'application/grpc',
            te: 'trailers',
            'user-agent': USER_AGENT,
          });
          const chunks: Buffer[] = [];
          let grpcStatus = '';
          let grpcMessage = '';
          const take = (hs: http2.IncomingHttpHeaders) => {
            if (hs['grpc-status'] !== undefined) grpcStatus = String(hs['grpc-status']);
            if (hs['grpc-message'] !== undefined) grpcMessage = String(hs['grpc-message']);
          };
          req.on('response', take);
          req.on('trailers', take);
          req.on('data', (b: Buffer) => chunks.push(b));
          req.on('error', reject);
          req.once('end', () => resolve({ status: healthStatus(Buffer.concat(chunks)), grpcStatus, grpcMessage }));
          req.end(healthRequest(service));
        });
      })(),
      timeoutMs,
      `gRPC health check of 127.0.0.1:${port}`,
      () => relay?.close(),
    );
    if (grpcStatus !== '0')
      return {
        ok: false,
        message: `rpc error: code = ${grpcStatus || 'unknown'} desc = ${grpcMessage || 'no status'}`,
      };
    if (status !== 1)
      return { ok: false, message: `service unhealthy (responded with "${SERVING_NAMES[status] ?? status}")` };
    return { ok: true, message: '' };
  } catch (e) {
    return { ok: false, message: `timeout: failed to connect service "127.0.0.1:${port}": ${(e as Error).message}` };
  } finally {
    session?.destroy();
    relay?.close();
  }
}

/** Runs a probe or hook handler against a container; never throws. */
export async function runHandler(
  ctx: Context,
  t: HandlerTarget,
  h: ProbeHandler | HookHandler,
  timeoutMs: number,
): Promise<HandlerResult> {
  try {
    switch (h.kind) {
      case 'exec':
        return await runExec(ctx, t, h.command, timeoutMs);
      case 'httpGet':
        return await httpGet(t, h, timeoutMs);
      case 'tcpSocket':
        return await tcpCheck(t.pod, h.host ?? '127.0.0.1', resolvePort(t.rec, h.port), timeoutMs);
      case 'grpc':
        return await grpcCheck(t, h.port, h.service ?? '', timeoutMs);
      case 'sleep':
        await new Promise((r) => setTimeout(r, Math.min(h.seconds * 1000, timeoutMs)));
        return { ok: true, message: '' };
    }
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}
