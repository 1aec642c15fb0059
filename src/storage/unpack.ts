/**
 * Unpacks one layer blob (tar, gzip'd or zstd'd tar) into its own directory, computing the diffId (sha256
 * of the uncompressed tar) from the same stream. The layer appears at `dest` atomically: it is
 * written to a sibling temp dir (`<dest>.tmp-<pid>-<start>-<hex>`) and renamed, and removed whole on any failure. The blob is read
 * from its file, or from a stream while it downloads (the caller then holds the rename back with
 * `beforeCommit` until the blob itself is verified).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { realHost } from '../host/index.js';
import type { Host } from '../host/index.js';
import { NspodError, hasErrno, internal, invalidArgument, messageOf } from '../errors/index.js';
import { finishLayer, writeEntry } from './entries.js';
import type { LayerWriter } from './entries.js';
import { writerTag } from './leftovers.js';
import { UnsafeEntryError } from './safe-path.js';
import { TarEntryError, readTar } from './tar-read.js';

export interface UnpackLayerOptions {
  /** path of the layer blob (or a name for it, with `stream`) */
  blob: string;
  /** the blob's bytes, instead of reading the file `blob` (e.g. as they download) */
  stream?: AsyncIterable<Buffer>;
  /**
   * awaited once the layer is unpacked and its diffId checked, before it is moved to `dest`;
   * when it rejects, the layer is discarded and the unpack fails with its error
   */
  beforeCommit?: () => Promise<void>;
  /** the descriptor's media type; compression is detected from the bytes, this only sharpens errors */
  mediaType?: string;
  /** the directory to create; must not exist yet (if it appears meanwhile, the existing one wins) */
  dest: string;
  /** when given, a layer whose diffId differs is refused and nothing is left at dest */
  expectedDiffId?: string;
  /** runs mknod (whiteouts, devices) and setfattr (opaque dirs); default: the real host */
  host?: Host;
  /** how errors name the layer; default: `layer sha256:<first 12 hex of the blob name>…` */
  label?: string;
}

export interface UnpackLayerResult {
  /** `sha256:<hex>` of the uncompressed tar */
  diffId: string;
  /** bytes of the uncompressed tar */
  size: number;
}

type Compression = 'gzip' | 'zstd' | 'none';

const STREAM_CHUNK = 1024 * 1024;

function sniffBytes(buf: Buffer): Compression {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

async function sniff(file: string): Promise<Compression> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return sniffBytes(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** Reads the first bytes of `source` to tell its compression; the stream returned has them all. */
async function sniffStream(source: AsyncIterable<Buffer>): Promise<{ compression: Compression; stream: Readable }> {
  const it = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < 4) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    len += r.value.length;
  }
  const first = Buffer.concat(head, len);
  // network reads come in 64 KiB; each chunk costs a decompressor call, a tar parser step and a
  // write, so they are gathered into chunks of about 1 MiB (as a file is read)
  async function* all(): AsyncGenerator<Buffer> {
    let parts: Buffer[] = first.length > 0 ? [first] : [];
    let size = first.length;
    while (!ended) {
      const r = await it.next();
      if (r.done) break;
      parts.push(r.value);
      size += r.value.length;
      if (size >= STREAM_CHUNK) {
        yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
        parts = [];
        size = 0;
      }
    }
    if (size > 0) yield Buffer.concat(parts, size);
  }
  return { compression: sniffBytes(first), stream: Readable.from(all(), { objectMode: false }) };
}

function defaultLabel(blob: string): string {
  const base = path.basename(blob);
  return /^[0-9a-f]{64}$/.test(base) ? `layer sha256:${base.slice(0, 12)}…` : `layer ${base}`;
}

/** Unpacks a layer blob into `dest` (see the module doc). */
export async function unpackLayer(opts: UnpackLayerOptions): Promise<UnpackLayerResult> {
  const label = opts.label ?? defaultLabel(opts.blob);
  let compression: Compression;
  let source: Readable | undefined;
  if (opts.stream) {
    ({ compression, stream: source } = await sniffStream(opts.stream));
  } else {
    try {
      compression = await sniff(opts.blob);
    } catch (e) {
      throw hasErrno(e, 'ENOENT') ? invalidArgument(`${label}: blob ${opts.blob} does not exist`, e) : e;
    }
  }
  if (compression !== 'zstd' && opts.mediaType?.endsWith('+zstd')) {
    source?.destroy();
    throw invalidArgument(`${label}: media type says zstd but the blob is not zstd-compressed`);
  }
  // named for this process, so that GC can tell a killed unpack's leftover (./leftovers.ts)
  const tmp = `${opts.dest}.tmp-${writerTag()}`;
  let zstd: Transform | undefined;
  try {
    // loaded on first use: few layers are zstd, and it costs start-up time
    zstd = compression === 'zstd' ? await zstdStream() : undefined;
    await mkdir(path.dirname(opts.dest), { recursive: true });
    await mkdir(tmp, { mode: 0o755 });
  } catch (e) {
    source?.destroy();
    throw e;
  }
  try {
    // big chunks: every chunk costs a tar parser step and a write
    const src = source ?? createReadStream(opts.blob, { highWaterMark: 1024 * 1024 });
    const stream: Readable =
      compression === 'gzip' ? src.pipe(createGunzip({ chunkSize: 1024 * 1024 })) : zstd ? src.pipe(zstd) : src;
    if (stream !== src) {
      src.on('error', (e: Error) => stream.destroy(e));
      stream.on('close', () => src.destroy());
    }
    const writer: LayerWriter = {
      root: tmp,
      host: opts.host ?? realHost,
      asRoot: process.getuid?.() === 0,
      dirTimes: [],
      opaqueDirs: new Set(),
      dirs: new Map(),
    };
    let result: UnpackLayerResult;
    try {
      const read = await readTar(stream, (entry) => writeEntry(writer, entry), { label });
      result = { diffId: read.digest, size: read.size };
    } catch (e) {
      throw e instanceof TarEntryError ? explain(e.cause, label, e.entry) : e;
    }
    await finishLayer(writer);
    if (opts.expectedDiffId !== undefined && opts.expectedDiffId !== result.diffId) {
      throw invalidArgument(`${label}: diffId is ${result.diffId}, expected ${opts.expectedDiffId}`);
    }
    await opts.beforeCommit?.();
    try {
      await rename(tmp, opts.dest);
    } catch (e) {
      // someone else unpacked the same layer meanwhile: theirs is as good as ours
      if (!hasErrno(e, 'ENOTEMPTY') && !hasErrno(e, 'EEXIST')) throw e;
      await rm(tmp, { recursive: true, force: true });
    }
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** A zstd decompressing Transform over fzstd (pure JavaScript, streaming). */
async function zstdStream(): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  const d = new Decompress();
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        d.push(chunk);
        cb();
      } catch (e) {
        cb(invalidArgument(`not a valid zstd stream: ${messageOf(e)}`, e));
      }
    },
    flush(cb) {
      try {
        d.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(invalidArgument(`not a valid zstd stream: ${messageOf(e)}`, e));
      }
    },
  });
  d.ondata = (chunk) => {
    out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  };
  return out;
}

function explain(e: unknown, label: string, entry: string): NspodError {
  if (e instanceof NspodError) return e;
  if (e instanceof UnsafeEntryError) return invalidArgument(`${label}: entry "${entry}" ${e.detail}`);
  return internal(`${label}: cannot write entry "${entry}": ${messageOf(e)}`, e);
}
