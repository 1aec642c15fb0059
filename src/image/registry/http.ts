/**
 * The HTTP layer of the registry client, over node:http and node:https (keep-alive agents, at
 * most `connections` sockets per host), with the small response API the client uses: status,
 * headers, and a body to iterate, read as text or dump.
 *
 * Not undici: its HTTP parser is WebAssembly, compiled on every run, and V8 optimises that code
 * on background threads that the process waits for before it may exit (≈ 0.1 s after the last
 * byte of every pull), on top of loading the library. node:http's parser is native.
 */
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';

// node:https (and tls) load only for an HTTPS registry: a plain loopback one never needs them
const require = createRequire(import.meta.url);
let httpsModule: typeof https | undefined;
const httpsLib = (): typeof https => (httpsModule ??= require('node:https') as typeof https);

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface AgentOptions {
  /** sockets per host at most */
  connections?: number;
  /** how long an idle kept-alive socket stays open */
  keepAliveTimeout?: number;
  /** a socket silent this long (waiting for headers or body bytes) fails with ETIMEDOUT */
  idleTimeout?: number;
  /** extra CA certificates (PEM) trusted for HTTPS, besides the system's */
  ca?: string[];
  /** false: accept any certificate (insecure registries) */
  rejectUnauthorized?: boolean;
}

export interface Agent {
  readonly http: http.Agent;
  /** made on first use */
  readonly https: https.Agent;
  readonly idleTimeout: number;
  close(): Promise<void>;
}

export function newAgent(o: AgentOptions = {}): Agent {
  const common = {
    keepAlive: true,
    keepAliveMsecs: o.keepAliveTimeout ?? 10_000,
    maxSockets: o.connections ?? 8,
    // idle sockets in the pool close after this (and never keep the process alive)
    timeout: o.keepAliveTimeout ?? 10_000,
  };
  const h = new http.Agent(common);
  let s: https.Agent | undefined;
  return {
    http: h,
    get https() {
      return (s ??= new (httpsLib().Agent)({
        ...common,
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
      }));
    },
    idleTimeout: o.idleTimeout ?? 60_000,
    close: async () => {
      h.destroy();
      s?.destroy();
    },
  };
}

/** A response body: iterate it, read it whole as text, or dump it (read and discard). */
export interface HttpBody extends AsyncIterable<Buffer> {
  text(): Promise<string>;
  dump(): Promise<void>;
  destroy(error?: Error): void;
}

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: HttpBody;
}

export interface HttpRequestOptions {
  method: HttpMethod;
  headers?: Record<string, string>;
  /** a Buffer, or a stream piped as the body */
  body?: Buffer | NodeJS.ReadableStream;
  dispatcher: Agent;
}

const timeoutError = (ms: number): Error =>
  Object.assign(new Error(`no data for ${ms / 1000} s`), { code: 'ETIMEDOUT' });

function wrapBody(res: http.IncomingMessage): HttpBody {
  const body = res as Readable;
  return {
    [Symbol.asyncIterator]: () => body[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
    text: async () => {
      const chunks: Buffer[] = [];
      for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
      return Buffer.concat(chunks).toString('utf8');
    },
    dump: () =>
      new Promise<void>((resolve) => {
        if (body.readableEnded || body.destroyed) return resolve();
        body.once('end', () => resolve());
        body.once('close', () => resolve());
        body.once('error', () => resolve());
        body.resume();
      }),
    destroy: (e) => void body.destroy(e),
  };
}

/** One request on the agent's pool; resolves once the status line and headers are in. */
export function httpRequest(url: string | URL, o: HttpRequestOptions): Promise<HttpResponse> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(new Error(`unsupported URL scheme in ${u.href}`));
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = (secure ? httpsLib() : http).request(u, {
      method: o.method,
      headers: o.headers ?? {},
      agent: secure ? o.dispatcher.https : o.dispatcher.http,
    });
    const idle = o.dispatcher.idleTimeout;
    req.setTimeout(idle, () => req.destroy(timeoutError(idle)));
    req.once('error', reject);
    req.once('response', (res) => {
      res.once('error', () => undefined); // seen by whoever reads the body
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: wrapBody(res) });
    });
    const b = o.body;
    if (b === undefined || Buffer.isBuffer(b)) {
      req.end(b);
    } else {
      b.on('error', (e: Error) => req.destroy(e));
      b.pipe(req);
    }
  });
}
