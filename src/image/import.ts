/**
 * `docker import`: one rootfs tarball becomes a one-layer image (the layer stored gzip'd).
 * Also the layer-building helper shared with the busybox image.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, createGunzip } from 'node:zlib';
import { hasErrno, invalidArgument, unavailable } from '../errors/index.js';
import type { BlobStore } from './blobs.js';
import { parseReference } from './reference.js';
import type { StoreInternals } from './store.js';
import { MediaType, ociArch } from './types.js';
import type { Descriptor, ImageConfig, ImageRuntimeConfig, ImageInfo } from './types.js';

export interface ImportOptions {
  /** the runtime config of the new image (Cmd, Env, …) */
  config?: Partial<ImageRuntimeConfig>;
  /** RFC 3339 creation time; default now */
  created?: string;
}

export interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
}

/** Gzips an uncompressed tar stream into a layer blob; the diffId is hashed on the way. */
export async function putTarAsLayer(blobs: Pick<BlobStore, 'putBlob'>, tar: Readable): Promise<BuiltLayer> {
  const hash = createHash('sha256');
  const gz = createGzip();
  const tee = new PassThrough();
  tee.on('data', (c: Buffer) => hash.update(c));
  const feeding = pipeline(tar, tee, gz);
  const [put] = await Promise.all([blobs.putBlob(gz), feeding]);
  return {
    descriptor: { mediaType: MediaType.ociLayerGzip, digest: put.digest, size: put.size },
    diffId: `sha256:${hash.digest('hex')}`,
  };
}

async function sniff(file: string): Promise<'gzip' | 'zstd' | 'none'> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) throw invalidArgument(`rootfs tarball ${file} does not exist`, e);
    throw e;
  }
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of stream as AsyncIterable<Buffer>) hash.update(c);
  return `sha256:${hash.digest('hex')}`;
}

export function imageConfig(o: {
  diffIds: string[];
  created: string;
  config?: Partial<ImageRuntimeConfig>;
  createdBy: string;
}): ImageConfig {
  return {
    created: o.created,
    architecture: ociArch(),
    os: 'linux',
    config: { ...o.config },
    rootfs: { type: 'layers', diff_ids: o.diffIds },
    history: [{ created: o.created, created_by: o.createdBy }],
  };
}

export async function importRootfs(
  s: StoreInternals,
  o: ImportOptions & { tarFile: string; name: string },
): Promise<ImageInfo> {
  const name = parseReference(o.name).full;
  const kind = await sniff(o.tarFile);
  if (kind === 'zstd') throw unavailable(`rootfs tarball ${o.tarFile}: zstd is not supported (this node has no zstd)`);
  let layer: BuiltLayer;
  if (kind === 'gzip') {
    const put = await s.blobs.putBlob(createReadStream(o.tarFile));
    const diffId = await sha256Of(createReadStream(o.tarFile).pipe(createGunzip()));
    layer = { descriptor: { mediaType: MediaType.ociLayerGzip, digest: put.digest, size: put.size }, diffId };
  } else {
    layer = await putTarAsLayer(s.blobs, createReadStream(o.tarFile));
  }
  const created = o.created ?? new Date().toISOString();
  const config = imageConfig({
    diffIds: [layer.diffId],
    created,
    createdBy: `nspod import ${o.tarFile}`,
    ...(o.config ? { config: o.config } : {}),
  });
  return s.createImageLocked({ layers: [layer.descriptor], config, name });
}
