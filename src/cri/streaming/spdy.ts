/**
 * A minimal SPDY/3.1 server session, written from the SPDY/3.1 draft, for the Kubernetes
 * streaming protocols (client-go's SPDY executor, spdystream): the client opens every stream
 * (SYN_STREAM with headers such as `streamType`), the server answers each with SYN_REPLY and
 * exchanges DATA frames; FIN half-closes, RST_STREAM aborts, PINGs are echoed. Header blocks are
 * zlib-compressed with the SPDY/3 dictionary in one context per direction (the dictionary comes
 * from the spdy-transport package, which the tests also use as an independent client).
 *
 * Flow control: received DATA is acknowledged with WINDOW_UPDATE (stream and session), so
 * clients that enforce windows keep sending; the peer's windows are not enforced on send (as
 * spdystream does not either).
 *
 * spdy-transport itself cannot be the server here: it rejects SYN_STREAMs without `:method` and
 * `:path`, which Kubernetes clients never send.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);
const DICTIONARY = (
  require('spdy-transport/lib/spdy-transport/protocol/spdy/dictionary.js') as Record<number, Buffer>
)[3]!;

const SYN_STREAM = 1;
const SYN_REPLY = 2;
const RST_STREAM = 3;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 9;
const FLAG_FIN = 1;
const MAX_DATA = 16 * 1024;
const DEBUG = (process.env.NSPOD_CRI_DEBUG ?? '') !== '';

/** One client-opened stream: `input` is what the client sends, `write`/`end` send to it. */
export class SpdyStream extends EventEmitter {
  readonly input = new PassThrough();
  private ended = false;
  constructor(
    readonly id: number,
    readonly headers: Record<string, string>,
    private readonly session: SpdySession,
  ) {
    super();
  }
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()];
  }
  write(data: Buffer | string): void {
    if (this.ended) return;
    this.session.sendData(this.id, Buffer.isBuffer(data) ? data : Buffer.from(data), false);
  }
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.session.sendData(this.id, Buffer.alloc(0), true);
  }
  reset(): void {
    this.ended = true;
    this.session.sendRst(this.id);
  }
}

function parseHeaderBlock(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let o = 0;
  const n = b.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < n; i++) {
    const nl = b.readUInt32BE(o);
    o += 4;
    const name = b
      .subarray(o, o + nl)
      .toString('utf8')
      .toLowerCase();
    o += nl;
    const vl = b.readUInt32BE(o);
    o += 4;
    const value = b.subarray(o, o + vl).toString('utf8');
    o += vl;
    // several values are NUL-separated; the first is enough for these protocols
    out[name] = value.split('\0')[0] ?? '';
  }
  return out;
}

function headerBlock(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(Object.keys(h).length);
  parts.push(count);
  for (const [k, v] of Object.entries(h)) {
    for (const s of [k.toLowerCase(), v]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** Runs a zlib stream one block at a time (SYNC_FLUSH), keeping its context across blocks. */
class ZContext {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly z: zlib.Inflate | zlib.Deflate) {
    z.on('error', () => undefined);
  }
  run(block: Buffer): Promise<Buffer> {
    const p = this.chain.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          const onData = (c: Buffer): void => {
            chunks.push(c);
          };
          const onError = (e: Error): void => {
            this.z.off('data', onData);
            reject(e);
          };
          this.z.on('data', onData);
          this.z.once('error', onError);
          this.z.write(block);
          this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            this.z.off('data', onData);
            this.z.off('error', onError);
            resolve(Buffer.concat(chunks));
          });
        }),
    );
    this.chain = p.catch(() => undefined);
    return p;
  }
  close(): void {
    this.z.close();
  }
}

export class SpdySession extends EventEmitter {
  private buf = Buffer.alloc(0);
  private readonly streams = new Map<number, SpdyStream>();
  private readonly inflate = new ZContext(zlib.createInflate({ dictionary: DICTIONARY }));
  private readonly deflate = new ZContext(zlib.createDeflate({ dictionary: DICTIONARY }));
  /** frames go out in order even when a SYN_REPLY waits for compression */
  private out: Promise<unknown> = Promise.resolve();
  private inChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private lastStreamId = 0;

  constructor(private readonly socket: Duplex) {
    super();
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.drain();
    });
    socket.on('close', () => this.teardown());
    socket.on('error', () => this.teardown());
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) {
      s.input.end();
      s.emit('close');
    }
    this.streams.clear();
    this.inflate.close();
    this.deflate.close();
    this.emit('close');
  }

  private send(frame: Buffer | Promise<Buffer>): void {
    this.out = this.out.then(async () => {
      const f = await frame;
      if (!this.closed && this.socket.writable) this.socket.write(f);
    });
    this.out.catch(() => undefined);
  }

  private control(type: number, flags: number, payload: Buffer): Buffer {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8000 | 3, 0);
    h.writeUInt16BE(type, 2);
    h.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
    return Buffer.concat([h, payload]);
  }

  sendData(id: number, data: Buffer, fin: boolean): void {
    if (this.closed) return;
    let off = 0;
    do {
      const chunk = data.subarray(off, off + MAX_DATA);
      off += chunk.length;
      const last = off >= data.length;
      const h = Buffer.alloc(8);
      h.writeUInt32BE(id & 0x7fffffff, 0);
      h.writeUInt32BE((((fin && last ? FLAG_FIN : 0) & 0xff) << 24) | chunk.length, 4);
      this.send(Buffer.concat([h, chunk]));
    } while (off < data.length);
  }

  sendRst(id: number): void {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(id & 0x7fffffff, 0);
    p.writeUInt32BE(5, 4); // CANCEL
    this.send(this.control(RST_STREAM, 0, p));
  }

  private windowUpdate(id: number, delta: number): void {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(id & 0x7fffffff, 0);
    p.writeUInt32BE(delta & 0x7fffffff, 4);
    this.send(this.control(WINDOW_UPDATE, 0, p));
  }

  private reply(id: number): void {
    const idBuf = Buffer.alloc(4);
    idBuf.writeUInt32BE(id & 0x7fffffff);
    this.send(
      this.deflate
        .run(headerBlock({ ':status': '200', ':version': 'HTTP/1.1' }))
        .then((hb) => this.control(SYN_REPLY, 0, Buffer.concat([idBuf, hb]))),
    );
  }

  /** Sends GOAWAY and closes the connection once everything queued is written. */
  close(): void {
    if (this.closed) return;
    const p = Buffer.alloc(8);
    p.writeUInt32BE(this.lastStreamId & 0x7fffffff, 0); // every stream so far was handled
    this.send(this.control(GOAWAY, 0, p));
    this.out = this.out.then(() => {
      this.socket.end();
    });
  }

  private drain(): void {
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (this.buf.length < 8 + len) return;
      const frame = this.buf.subarray(0, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      // header blocks decompress asynchronously: keep frames in order
      this.inChain = this.inChain
        .then(() => this.handle(frame))
        .catch((e: unknown) => {
          this.emit('error', e);
          this.socket.destroy();
        });
    }
  }

  private async handle(f: Buffer): Promise<void> {
    const isControl = (f[0]! & 0x80) !== 0;
    const flags = f[4]!;
    const payload = f.subarray(8);
    if (DEBUG) {
      const type = isControl ? String(f.readUInt16BE(2)) : 'data';
      process.stderr.write(`spdy: frame ${type} flags=${flags} len=${payload.length}\n`);
    }
    if (!isControl) {
      const id = f.readUInt32BE(0) & 0x7fffffff;
      const s = this.streams.get(id);
      if (payload.length > 0) {
        this.windowUpdate(id, payload.length);
        this.windowUpdate(0, payload.length);
      }
      if (!s) return;
      if (payload.length > 0) s.input.write(Buffer.from(payload));
      if (flags & FLAG_FIN) s.input.end();
      return;
    }
    const type = f.readUInt16BE(2);
    switch (type) {
      case SYN_STREAM: {
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = parseHeaderBlock(await this.inflate.run(payload.subarray(10)));
        this.lastStreamId = Math.max(this.lastStreamId, id);
        const s = new SpdyStream(id, headers, this);
        this.streams.set(id, s);
        this.reply(id);
        if (flags & FLAG_FIN) s.input.end();
        this.emit('stream', s);
        return;
      }
      case SYN_REPLY:
        await this.inflate.run(payload.subarray(4)); // keep the compression context in step
        return;
      case 8: // HEADERS
        await this.inflate.run(payload.subarray(4));
        return;
      case RST_STREAM: {
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const s = this.streams.get(id);
        if (s) {
          this.streams.delete(id);
          s.input.end();
          s.emit('close');
        }
        return;
      }
      case PING:
        this.send(this.control(PING, 0, Buffer.from(payload)));
        return;
      case GOAWAY:
        this.socket.end();
        return;
      default:
        return; // SETTINGS, WINDOW_UPDATE: nothing to do
    }
  }
}
