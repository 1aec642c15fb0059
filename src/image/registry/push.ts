/**
 * Pushing a stored image: for each layer and the config, a HEAD tells whether the registry has
 * the blob already; missing ones are uploaded (monolithic PUT, or PATCH chunks for blobs larger
 * than `chunkSize`), then the manifest is PUT under the tag (its bytes as stored, so the digest
 * stays the same).
 */
import { createReadStream } from 'node:fs';
import { invalidArgument } from '../../errors/index.js';
import { parseReference } from '../reference.js';
import type { ImageStore } from '../store.js';
import { MediaType } from '../types.js';
import type { Descriptor, ImageManifest } from '../types.js';
import { RegistryClient } from './client.js';
import type { RetryOptions } from './client.js';
import { authFilePath, findCredentials, loadRegistriesConfig } from './config.js';
import type { RegistriesConfig } from './config.js';

export type PushEvent =
  | { kind: 'blob'; digest: string; phase: 'exists' | 'uploading' | 'done'; size: number }
  | { kind: 'manifest'; digest: string; reference: string };

export interface PushOptions {
  /** where to push; default: the image reference itself */
  destination?: string;
  registries?: RegistriesConfig;
  authFile?: string;
  /** blobs larger than this are sent in PATCH chunks of this size; default 64 MiB */
  chunkSize?: number;
  concurrency?: number;
  retry?: RetryOptions;
  onEvent?: (e: PushEvent) => void;
  env?: NodeJS.ProcessEnv;
}

export interface PushResult {
  reference: string;
  manifestDigest: string;
  /** blobs uploaded (not already there) */
  uploaded: number;
}

export async function pushImage(store: ImageStore, source: string, opts: PushOptions = {}): Promise<PushResult> {
  const env = opts.env ?? process.env;
  const info = await store.resolve(source);
  const destName = opts.destination ?? (source.includes('/') || info.names.length === 0 ? source : info.names[0]!);
  const dest = parseReference(destName);
  if (dest.digest !== undefined) throw invalidArgument(`push destination "${destName}": cannot push to a digest`);
  const cfg = opts.registries ?? (await loadRegistriesConfig(env));
  const credentials = await findCredentials(opts.authFile ?? authFilePath(store.root, env), dest.domain, env);
  const client = new RegistryClient({
    registry: dest.domain,
    config: cfg,
    ...(credentials ? { credentials } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
  });
  const emit = opts.onEvent ?? (() => undefined);
  try {
    const manifestBytes = await store.readBlob(info.manifestDigest);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
    const blobs: Descriptor[] = [...manifest.layers, manifest.config];
    let uploaded = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < blobs.length) {
        const b = blobs[next++]!;
        if ((await client.headBlob(dest.path, b.digest, true)) !== undefined) {
          emit({ kind: 'blob', digest: b.digest, phase: 'exists', size: b.size });
          continue;
        }
        emit({ kind: 'blob', digest: b.digest, phase: 'uploading', size: b.size });
        const file = store.blobPath(b.digest);
        await client.uploadBlob(
          dest.path,
          b.digest,
          b.size,
          (start, end) => createReadStream(file, { start, end: end - 1 }),
          { chunkSize: opts.chunkSize ?? 64 * 1024 * 1024 },
        );
        uploaded++;
        emit({ kind: 'blob', digest: b.digest, phase: 'done', size: b.size });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 3, blobs.length) }, worker));
    const mediaType = manifest.mediaType ?? MediaType.ociManifest;
    await client.putManifest(dest.path, dest.tag ?? 'latest', manifestBytes, mediaType);
    emit({ kind: 'manifest', digest: info.manifestDigest, reference: dest.full });
    return { reference: dest.full, manifestDigest: info.manifestDigest, uploaded };
  } finally {
    await client.close();
  }
}

/** Checks credentials against a registry (GET /v2/ with them); throws the registry's refusal. */
export async function checkLogin(
  registry: string,
  credentials: { username: string; password: string },
  opts: { registries?: RegistriesConfig; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  const cfg = opts.registries ?? (await loadRegistriesConfig(opts.env ?? process.env));
  const client = new RegistryClient({ registry, config: cfg, credentials });
  try {
    await client.checkAuth();
  } finally {
    await client.close();
  }
}
