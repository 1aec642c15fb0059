/**
 * The blob half of the image layout: `blobs/sha256/<hex>`, written through an ingest dir and
 * visible only once their digest is verified (temp file + fsync + rename), never half-written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { hasErrno, invalidArgument, notFound } from '../errors/index.js';
import { writerTag } from '../storage/leftovers.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface PutResult {
  digest: string;
  size: number;
}

export interface BlobStore {
  /** the layout dir (`<root>/images`) */
  dir: string;
  /** Stores bytes; with `expectedDigest`, bytes that hash otherwise are refused and nothing stays. */
  putBlob(data: AsyncIterable<Buffer> | Buffer | string, expectedDigest?: string): Promise<PutResult>;
  hasBlob(digest: string): Promise<boolean>;
  /** where the blob is (or would be); throws INVALID_ARGUMENT for a malformed digest */
  blobPath(digest: string): string;
  readBlob(digest: string): Promise<Buffer>;
  readJson<T>(digest: string): Promise<T>;
  /** serializes `value` as a JSON blob */
  putJson(value: unknown): Promise<PutResult>;
}

export function checkDigest(digest: string): string {
  if (!DIGEST.test(digest)) throw invalidArgument(`digest "${digest}" is not sha256:<64 lowercase hex>`);
  return digest;
}

/** Writes a file atomically: temp file beside it, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(path.dirname(file));
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function openBlobStore(dir: string): BlobStore {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  const ingestDir = path.join(dir, 'ingest');
  const blobPath = (digest: string): string => path.join(blobsDir, checkDigest(digest).slice('sha256:'.length));

  async function putBlob(data: AsyncIterable<Buffer> | Buffer | string, expectedDigest?: string): Promise<PutResult> {
    if (expectedDigest !== undefined) {
      checkDigest(expectedDigest);
      const have = await stat(blobPath(expectedDigest)).catch(() => undefined);
      if (have) {
        // already stored (and verified then): read the input through and keep ours
        if (typeof data !== 'string' && !Buffer.isBuffer(data)) for await (const chunk of data) void chunk;
        const now = new Date();
        await utimes(blobPath(expectedDigest), now, now); // fresh again for GC's grace period
        return { digest: expectedDigest, size: have.size };
      }
    }
    await mkdir(blobsDir, { recursive: true });
    await mkdir(ingestDir, { recursive: true });
    // tagged with this process, so that GC can tell a killed writer's leftover
    const tmp = path.join(ingestDir, writerTag());
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      try {
        const source = typeof data === 'string' || Buffer.isBuffer(data) ? [Buffer.from(data)] : data;
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          await fh.write(chunk);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (expectedDigest !== undefined && digest !== expectedDigest) {
        throw invalidArgument(`blob ${expectedDigest}: content does not match its digest (got ${digest})`);
      }
      await rename(tmp, blobPath(digest));
      await syncDir(blobsDir);
      return { digest, size };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async function hasBlob(digest: string): Promise<boolean> {
    try {
      await stat(blobPath(digest));
      return true;
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) return false;
      throw e;
    }
  }

  async function readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(blobPath(digest));
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) throw notFound(`blob ${digest} not found in the image store`, e);
      throw e;
    }
  }

  async function readJson<T>(digest: string): Promise<T> {
    const buf = await readBlob(digest);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw invalidArgument(`blob ${digest} is not valid JSON`, e);
    }
  }

  return {
    dir,
    putBlob,
    hasBlob,
    blobPath,
    readBlob,
    readJson,
    putJson: (value) => putBlob(Buffer.from(JSON.stringify(value))),
  };
}

/** A read stream of a stored blob, for copying it out. */
export function blobStream(store: BlobStore, digest: string): Readable {
  return createReadStream(store.blobPath(digest));
}
