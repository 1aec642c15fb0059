/**
 * A client for one registry endpoint speaking the OCI distribution API (v2): a ping that finds the
 * scheme (HTTPS; plain HTTP only for insecure registries) and the auth challenge, anonymous /
 * basic / bearer auth (the token fetched from the challenge's realm and cached per scope),
 * manifests, blobs (resumed with Range after a cut connection), uploads and retries with backoff
 * on transient failures (5xx, 429, reset or refused connections).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type tls from 'node:tls';
import { httpRequest as request, newAgent } from './http.js';
import type { Agent, HttpMethod, HttpResponse } from './http.js';
import {
  NspodError,
  failedPrecondition,
  invalidArgument,
  messageOf,
  notFound,
  unavailable,
} from '../../errors/index.js';
import { DOCKER_HUB } from '../reference.js';
import { isInsecure } from './config.js';
import type { Credentials, RegistriesConfig } from './config.js';

export interface Challenge {
  /** lowercase: `basic`, `bearer` */
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header (RFC 7235): one or more challenges with their parameters. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === ',' || header[i] === '\t')) i++;
  };
  while (i < n) {
    skip();
    const start = i;
    while (i < n && !' \t,='.includes(header[i]!)) i++;
    const word = header.slice(start, i);
    if (word === '') break;
    let j = i;
    while (j < n && (header[j] === ' ' || header[j] === '\t')) j++;
    const cur = out[out.length - 1];
    if (header[j] === '=' && cur) {
      i = j + 1;
      while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ') i++;
        value = header.slice(vs, i);
      }
      cur.params[word.toLowerCase()] = value;
    } else if (header[j] === '=' && !cur) {
      break; // parameters without a scheme: not a challenge
    } else {
      out.push({ scheme: word.toLowerCase(), params: {} });
      // token68 (e.g. `Negotiate abc==`) is not used by registries: skip it
    }
  }
  return out;
}

/** The registry's own message from an error body (`{"errors":[{"code","message"}]}`). */
export function registryMessage(body: string): string | undefined {
  try {
    const v = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    const msgs = (v.errors ?? []).map((e) => [e.code?.toLowerCase().replace(/_/g, ' '), e.message].filter(Boolean));
    const parts = msgs.map((m) => (m.length === 2 && m[0] === m[1] ? m[0] : m.join(': ')));
    return parts.length > 0 ? parts.join('; ') : undefined;
  } catch {
    const t = body.trim();
    return t !== '' && t.length < 300 && !t.startsWith('<') ? t : undefined;
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * A network failure worth another try (as opposed to a refusal by the registry). A refused
 * connection is not: nothing listens there, and mirrors and search registries move on at once.
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof TransientStatus) return true;
  if (e instanceof ShortBody) return true;
  let cur: unknown = e;
  for (let k = 0; k < 4 && cur; k++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

class TransientStatus extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
class ShortBody extends Error {}

export interface RetryOptions {
  attempts?: number;
  /** first backoff; doubles each time */
  baseDelayMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RegistryClientOptions {
  /** `host[:port]` as in references: `docker.io`, `127.0.0.1:5000` */
  registry: string;
  config: RegistriesConfig;
  credentials?: Credentials;
  retry?: RetryOptions;
  /** called before a retry, for progress output */
  onRetry?: (what: string, attempt: number, error: unknown) => void;
}

export interface Fetched {
  body: Buffer;
  mediaType: string;
  /** `Docker-Content-Digest` when the registry sent one */
  digest?: string;
}

export interface BlobSink {
  write(chunk: Buffer): Promise<void>;
  /** the server could not resume: start again from byte 0 */
  reset(): Promise<void>;
}

interface SendOptions {
  method: HttpMethod;
  path: string;
  /** `repository:<name>:pull` … for bearer tokens */
  scope?: string;
  headers?: Record<string, string>;
  body?: Buffer | (() => NodeJS.ReadableStream);
}

type Response = HttpResponse;

const USER_AGENT = 'nspod/0.1';
/** manifests and indexes are small; a registry sending more is refused (as containerd does) */
const MAX_MANIFEST = 4 * 1024 * 1024;

export class RegistryClient {
  readonly registry: string;
  private readonly opts: RegistryClientOptions;
  private readonly dispatcher: Agent;
  private base?: string;
  private challenge?: Challenge;
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private pinging?: Promise<void>;

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.registry = opts.registry;
    const entry = opts.config.registries[opts.registry];
    const insecure = isInsecure(opts.config, opts.registry);
    let ca: string[] | undefined;
    if (entry?.caFile) {
      try {
        // tls is loaded only here: a plain registry never needs it
        const { rootCertificates } = createRequire(import.meta.url)('node:tls') as typeof tls;
        ca = [...rootCertificates, readFileSync(entry.caFile, 'utf8')];
      } catch (e) {
        throw invalidArgument(`registry ${opts.registry}: cannot read caFile ${entry.caFile}: ${messageOf(e)}`, e);
      }
    }
    this.dispatcher = newAgent({
      connections: 8,
      keepAliveTimeout: 10_000,
      idleTimeout: 60_000,
      ...(ca ? { ca } : {}),
      ...(insecure ? { rejectUnauthorized: false } : {}),
    });
  }

  /** The host the API is served from (docker.io's is registry-1.docker.io). */
  private get apiHost(): string {
    return this.registry === DOCKER_HUB ? 'registry-1.docker.io' : this.registry;
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  private async retry<T>(
    what: string,
    maxAttempts: number | undefined,
    fn: () => Promise<T>,
    onRetry?: (attempt: number, error: unknown) => void,
  ): Promise<T> {
    const attempts = maxAttempts ?? this.opts.retry?.attempts ?? 4;
    const base = this.opts.retry?.baseDelayMs ?? 300;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) || attempt >= attempts) throw this.wrap(e, what);
        this.opts.onRetry?.(what, attempt, e);
        onRetry?.(attempt, e);
        await sleep(base * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5));
      }
    }
  }

  private wrap(e: unknown, what: string): unknown {
    if (e instanceof NspodError) return e;
    if (e instanceof TransientStatus) return unavailable(`${what}: ${e.message}`, e);
    const code = (e as { code?: string }).code;
    const detail = code && !messageOf(e).includes(code) ? `${messageOf(e)} (${code})` : messageOf(e);
    return unavailable(`${what}: ${detail}`, e);
  }

  /**
   * Finds the scheme (and the auth challenge) with `GET /v2/`: HTTPS, and for an insecure
   * registry plain HTTP when HTTPS fails. When the insecure registry names its port, plain HTTP
   * is probed first: one port speaks one of the two, so the answer is the same, and a plain
   * server is found without the cost of a TLS handshake that fails (~20 ms of CPU). The probe
   * carries no credentials.
   */
  ping(): Promise<void> {
    return (this.pinging ??= this.doPing().catch((e: unknown) => {
      this.pinging = undefined;
      throw e;
    }));
  }

  private async doPing(): Promise<void> {
    const insecure = isInsecure(this.opts.config, this.registry);
    const schemes = !insecure ? ['https'] : /:\d+$/.test(this.apiHost) ? ['http', 'https'] : ['https', 'http'];
    let last: unknown;
    for (const [i, scheme] of schemes.entries()) {
      const base = `${scheme}://${this.apiHost}`;
      // a first probe with a fallback gets no retries: a server of the other scheme fails it at once
      const probe = i < schemes.length - 1;
      try {
        const res = await this.retry(`registry ${this.registry}`, probe ? 1 : undefined, async () => {
          const r = await request(`${base}/v2/`, {
            method: 'GET',
            headers: { 'user-agent': USER_AGENT },
            dispatcher: this.dispatcher,
          });
          if (r.statusCode >= 500) {
            await r.body.dump();
            throw new TransientStatus(r.statusCode, `HTTP ${r.statusCode}`);
          }
          return r;
        });
        await res.body.dump();
        if (res.statusCode === 401) {
          const h = res.headers['www-authenticate'];
          const list = parseWwwAuthenticate(Array.isArray(h) ? h.join(', ') : (h ?? ''));
          this.challenge = list.find((c) => c.scheme === 'bearer') ?? list.find((c) => c.scheme === 'basic');
        } else if (res.statusCode !== 200) {
          throw unavailable(`registry ${this.registry}: GET /v2/ answered HTTP ${res.statusCode}: not a registry`);
        }
        this.base = base;
        return;
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof NspodError ? last : unavailable(`registry ${this.registry}: ${messageOf(last)}`, last);
  }

  private basic(): string | undefined {
    const c = this.opts.credentials;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private async token(challenge: Challenge, scope: string | undefined, fresh: boolean): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw failedPrecondition(`registry ${this.registry}: bearer challenge without a realm`);
    const scopes = [scope, challenge.params.scope].filter((s): s is string => !!s);
    const key = `${realm}|${challenge.params.service ?? ''}|${[...new Set(scopes)].join(' ')}`;
    const hit = this.tokens.get(key);
    if (!fresh && hit && hit.expires > Date.now()) return hit.token;
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of new Set(scopes)) url.searchParams.append('scope', s);
    const basic = this.basic();
    const res = await this.retry(`registry ${this.registry}: token from ${url.host}`, undefined, async () => {
      const r = await request(url, {
        method: 'GET',
        headers: { 'user-agent': USER_AGENT, ...(basic ? { authorization: basic } : {}) },
        dispatcher: this.dispatcher,
      });
      if (r.statusCode >= 500) {
        await r.body.dump();
        throw new TransientStatus(r.statusCode, `HTTP ${r.statusCode}`);
      }
      return r;
    });
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw failedPrecondition(
        `registry ${this.registry}: authentication failed${this.opts.credentials ? ` for user "${this.opts.credentials.username}"` : ''}: ${registryMessage(text) ?? `HTTP ${res.statusCode}`}`,
      );
    }
    if (res.statusCode !== 200) {
      throw unavailable(`registry ${this.registry}: token endpoint answered HTTP ${res.statusCode}`);
    }
    let v: { token?: string; access_token?: string; expires_in?: number };
    try {
      v = JSON.parse(text) as typeof v;
    } catch (e) {
      throw unavailable(`registry ${this.registry}: token endpoint sent invalid JSON`, e);
    }
    const token = v.token ?? v.access_token;
    if (!token) throw unavailable(`registry ${this.registry}: token endpoint sent no token`);
    // tokens live 60 s unless told otherwise; renew a little early
    this.tokens.set(key, { token, expires: Date.now() + Math.max((v.expires_in ?? 60) - 10, 5) * 1000 });
    return token;
  }

  private async authorization(scope: string | undefined, fresh: boolean): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.basic();
    if (ch.scheme === 'bearer') return `Bearer ${await this.token(ch, scope, fresh)}`;
    return undefined;
  }

  /**
   * One request with auth, redirects (Authorization dropped off-host) and no retry. A 401 renews
   * the token once (with the scope the registry asks for); 5xx/429 throw TransientStatus.
   */
  private async sendOnce(o: SendOptions): Promise<Response> {
    await this.ping();
    let fresh = false;
    for (let round = 0; ; round++) {
      const auth = await this.authorization(o.scope, fresh);
      let url = new URL(o.path.startsWith('http') ? o.path : `${this.base}${o.path}`);
      const origin = new URL(this.base!).host;
      let method = o.method;
      let res: Response;
      for (let hops = 0; ; hops++) {
        const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(o.headers ?? {}) };
        if (auth && url.host === origin) headers.authorization = auth;
        const body = typeof o.body === 'function' ? o.body() : o.body;
        res = await request(url, {
          method,
          headers,
          ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
          dispatcher: this.dispatcher,
        });
        const loc = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(res.statusCode) && loc && (method === 'GET' || method === 'HEAD')) {
          await res.body.dump();
          if (hops >= 5) throw unavailable(`registry ${this.registry}: too many redirects for ${o.path}`);
          url = new URL(Array.isArray(loc) ? loc[0]! : loc, url);
          if (res.statusCode === 303) method = 'GET';
          continue;
        }
        break;
      }
      if (res.statusCode === 401 && round === 0) {
        const h = res.headers['www-authenticate'];
        const list = parseWwwAuthenticate(Array.isArray(h) ? h.join(', ') : (h ?? ''));
        const ch = list.find((c) => c.scheme === 'bearer') ?? list.find((c) => c.scheme === 'basic');
        if (ch && (ch.scheme === 'bearer' || this.opts.credentials) && (!this.challenge || ch.scheme === 'bearer')) {
          await res.body.dump();
          this.challenge = ch;
          fresh = true;
          continue;
        }
      }
      if (res.statusCode >= 500 || res.statusCode === 429) {
        const text = await res.body.text().catch(() => '');
        throw new TransientStatus(res.statusCode, registryMessage(text) ?? `HTTP ${res.statusCode}`);
      }
      return res;
    }
  }

  private send(what: string, o: SendOptions): Promise<Response> {
    return this.retry(what, undefined, () => this.sendOnce(o));
  }

  /** Checks the credentials the way `docker login` does: GET /v2/ (basic) or a token (bearer). */
  async checkAuth(): Promise<void> {
    await this.ping();
    const ch = this.challenge;
    if (!ch) return; // the registry asks for no authentication
    if (ch.scheme === 'bearer') {
      await this.token(ch, undefined, true);
      return;
    }
    const res = await this.send(`registry ${this.registry}`, { method: 'GET', path: '/v2/' });
    if (res.statusCode === 200) return void (await res.body.dump());
    if (res.statusCode === 401) {
      const text = await res.body.text().catch(() => '');
      throw failedPrecondition(
        `registry ${this.registry}: authentication failed${this.opts.credentials ? ` for user "${this.opts.credentials.username}"` : ''}: ${registryMessage(text) ?? 'unauthorized'}`,
      );
    }
    return this.fail(res, `registry ${this.registry}`);
  }

  /** An error for an unexpected answer, with the registry's own message. */
  async fail(res: Response, what: string): Promise<never> {
    const text = await res.body.text().catch(() => '');
    const msg = registryMessage(text) ?? `HTTP ${res.statusCode}`;
    if (res.statusCode === 401 || res.statusCode === 403) {
      const who = this.opts.credentials ? ` as user "${this.opts.credentials.username}"` : ' (not logged in)';
      throw failedPrecondition(`${what}: access denied${who}: ${msg}`);
    }
    if (res.statusCode === 404) throw notFound(`${what}: ${msg}`);
    if (res.statusCode === 400) throw invalidArgument(`${what}: ${msg}`);
    throw unavailable(`${what}: HTTP ${res.statusCode}: ${msg}`);
  }

  /** GET (or HEAD) a manifest by tag or digest; NOT_FOUND with the registry's message. */
  async getManifest(repo: string, ref: string, accept: string[]): Promise<Fetched> {
    const what = `image "${this.registry}/${repo}${ref.startsWith('sha256:') ? '@' : ':'}${ref}"`;
    const res = await this.send(what, {
      method: 'GET',
      path: `/v2/${repo}/manifests/${ref}`,
      scope: `repository:${repo}:pull`,
      headers: { accept: accept.join(', ') },
    });
    if (res.statusCode !== 200) return this.fail(res, what);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_MANIFEST) {
        res.body.destroy();
        throw invalidArgument(`${what}: manifest larger than ${MAX_MANIFEST} bytes`);
      }
      chunks.push(c);
    }
    const body = Buffer.concat(chunks, size);
    const ct = res.headers['content-type'];
    const dg = res.headers['docker-content-digest'];
    return {
      body,
      mediaType: (Array.isArray(ct) ? ct[0] : ct)?.split(';')[0]?.trim() ?? '',
      ...(typeof dg === 'string' ? { digest: dg } : {}),
    };
  }

  async putManifest(repo: string, ref: string, body: Buffer, mediaType: string): Promise<string | undefined> {
    const what = `push manifest ${this.registry}/${repo}:${ref}`;
    const res = await this.send(what, {
      method: 'PUT',
      path: `/v2/${repo}/manifests/${ref}`,
      scope: `repository:${repo}:pull,push`,
      headers: { 'content-type': mediaType, 'content-length': String(body.length) },
      body,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) return this.fail(res, what);
    await res.body.dump();
    const dg = res.headers['docker-content-digest'];
    return typeof dg === 'string' ? dg : undefined;
  }

  /** Size of a blob when the registry has it, undefined when not. */
  async headBlob(repo: string, digest: string, push = false): Promise<number | undefined> {
    const what = `${this.registry}/${repo}: blob ${digest}`;
    const res = await this.send(what, {
      method: 'HEAD',
      path: `/v2/${repo}/blobs/${digest}`,
      scope: `repository:${repo}:${push ? 'pull,push' : 'pull'}`,
    });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) return this.fail(res, what);
    return Number(res.headers['content-length'] ?? NaN);
  }

  /** A small blob (a config) in memory; the caller verifies it. */
  async getBlob(repo: string, digest: string, maxSize: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    await this.fetchBlob(repo, digest, maxSize, {
      write: async (c) => {
        chunks.push(c);
        size += c.length;
      },
      reset: async () => {
        chunks.length = 0;
        size = 0;
      },
    });
    return Buffer.concat(chunks, size);
  }

  /**
   * Streams a blob of `size` bytes into `sink`. A connection cut mid-way is retried, resuming
   * with a Range request when the server supports it and starting over (sink.reset) otherwise.
   * More bytes than `size` is an error at once.
   */
  async fetchBlob(
    repo: string,
    digest: string,
    size: number,
    sink: BlobSink,
    onBytes?: (received: number) => void,
    onRetry?: (attempt: number, error: unknown) => void,
  ): Promise<void> {
    const what = `${this.registry}/${repo}: blob ${digest.slice(0, 19)}…`;
    let received = 0;
    await this.retry(
      what,
      undefined,
      async () => {
        const headers: Record<string, string> = {};
        if (received > 0) headers.range = `bytes=${received}-`;
        const res = await this.sendOnce({
          method: 'GET',
          path: `/v2/${repo}/blobs/${digest}`,
          scope: `repository:${repo}:pull`,
          headers,
        });
        if (res.statusCode === 206 && received > 0) {
          const cr = String(res.headers['content-range'] ?? '');
          if (!cr.startsWith(`bytes ${received}-`)) {
            await res.body.dump();
            received = 0;
            await sink.reset();
            throw new ShortBody(`server resumed at the wrong offset (${cr})`);
          }
        } else if (res.statusCode === 200) {
          if (received > 0) {
            received = 0;
            await sink.reset();
          }
        } else {
          return this.fail(res, what);
        }
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (received > size) {
            res.body.destroy();
            throw invalidArgument(`${what}: the registry sent more than the ${size} bytes the manifest declares`);
          }
          await sink.write(chunk);
          onBytes?.(received);
        }
        if (received < size) throw new ShortBody(`connection ended after ${received} of ${size} bytes`);
      },
      onRetry,
    );
  }

  /**
   * Uploads a blob: POST to open a session, then either one PUT with the whole content
   * (monolithic) or PATCH chunks of `chunkSize` and a closing PUT. `open(start, end)` gives the
   * bytes [start, end). The whole session is retried on transient failure.
   */
  async uploadBlob(
    repo: string,
    digest: string,
    size: number,
    open: (start: number, end: number) => NodeJS.ReadableStream,
    opts: { chunkSize?: number } = {},
  ): Promise<void> {
    const what = `push ${this.registry}/${repo}: blob ${digest.slice(0, 19)}…`;
    const scope = `repository:${repo}:pull,push`;
    await this.retry(what, undefined, async () => {
      const start = await this.sendOnce({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, scope });
      if (start.statusCode !== 202) return this.fail(start, what);
      await start.body.dump();
      let location = this.locationOf(start, what);
      const chunk = opts.chunkSize;
      if (chunk !== undefined && chunk > 0 && size > chunk) {
        for (let off = 0; off < size; off += chunk) {
          const end = Math.min(size, off + chunk);
          const res = await this.sendOnce({
            method: 'PATCH',
            path: location,
            scope,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(end - off),
              'content-range': `${off}-${end - 1}`,
            },
            body: () => open(off, end),
          });
          if (res.statusCode !== 202) return this.fail(res, what);
          await res.body.dump();
          location = this.locationOf(res, what);
        }
        const done = await this.sendOnce({
          method: 'PUT',
          path: withDigest(location, digest),
          scope,
          headers: { 'content-length': '0' },
          body: Buffer.alloc(0),
        });
        if (done.statusCode !== 201) return this.fail(done, what);
        await done.body.dump();
        return;
      }
      const res = await this.sendOnce({
        method: 'PUT',
        path: withDigest(location, digest),
        scope,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: () => open(0, size),
      });
      if (res.statusCode !== 201) return this.fail(res, what);
      await res.body.dump();
    });
  }

  private locationOf(res: Response, what: string): string {
    const loc = res.headers.location;
    const l = Array.isArray(loc) ? loc[0] : loc;
    if (!l) throw unavailable(`${what}: the registry sent no upload location`);
    return new URL(l, this.base).toString();
  }
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}
