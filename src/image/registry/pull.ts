/**
 * Pulling an image into the store:
 *   resolve the name (search registries for short names, mirrors first) ▶ manifest (a list or
 *   index picks the platform) ▶ config ▶ layers downloaded in parallel (bounded) to temp files,
 *   sha256 and size checked while streaming, moved into the store, unpacked as they arrive ▶ the
 *   manifest, config and name committed under the store lock.
 * Layers already stored (and unpacked) are not fetched again. On failure the blobs and layers
 * this pull added and no image uses are removed: nothing half-written stays.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import {
  NspodError,
  failedPrecondition,
  invalidArgument,
  isNspodError,
  messageOf,
  notFound,
} from '../../errors/index.js';
import { checkDigest, syncDir } from '../blobs.js';
import { DOCKER_HUB, parseReference, shortPath } from '../reference.js';
import type { Reference } from '../reference.js';
import type { ImageStore } from '../store.js';
import { MediaType, isIndexType, ociArch } from '../types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageInfo, ImageManifest, Platform } from '../types.js';
import { RegistryClient } from './client.js';
import type { RetryOptions } from './client.js';
import { authFilePath, endpointsFor, findCredentials, loadRegistriesConfig } from './config.js';
import type { RegistriesConfig } from './config.js';

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
];

const LAYER_TYPES = new Set<string>([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.dockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export type LayerPhase = 'waiting' | 'downloading' | 'retrying' | 'extracting' | 'done' | 'exists';

export type PullEvent =
  | { kind: 'resolved'; reference: string; manifestDigest: string; layers: Array<{ digest: string; size: number }> }
  | { kind: 'layer'; digest: string; phase: LayerPhase; current: number; total: number }
  | { kind: 'committed'; image: ImageInfo };

export interface PullOptions {
  /** `os/arch[/variant]`; default linux/<this node's arch> */
  platform?: string;
  /** default: loadRegistriesConfig() */
  registries?: RegistriesConfig;
  /** default: authFilePath(store.root) */
  authFile?: string;
  /** parallel layer downloads; default 3 */
  concurrency?: number;
  retry?: RetryOptions;
  onEvent?: (e: PullEvent) => void;
  env?: NodeJS.ProcessEnv;
}

export interface PullResult {
  image: ImageInfo;
  /** the full reference pulled, e.g. `docker.io/library/busybox:latest` */
  reference: string;
  manifestDigest: string;
  /** bytes downloaded for layers (0 when every layer was present) */
  downloaded: number;
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(s: string | undefined): Platform {
  if (s === undefined || s === '') return { os: 'linux', architecture: ociArch() };
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw invalidArgument(`--platform "${s}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

export const platformString = (p: Partial<Platform> | undefined): string =>
  p ? [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].join('/') : 'unknown';

/** Picks the manifest for `want` from a manifest list / index; the error names the platforms present. */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter(
    (d) => d.platform?.os === want.os && d.platform.architecture === want.architecture,
  );
  const exact = want.variant ? candidates.filter((d) => d.platform?.variant === want.variant) : candidates;
  // arm64 without a variant means v8
  const pick =
    exact[0] ??
    (want.variant === 'v8' && want.architecture === 'arm64' ? candidates.find((d) => !d.platform?.variant) : undefined);
  if (!pick) {
    const present = [
      ...new Set(
        index.manifests
          .filter((d) => d.platform && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest')
          .map((d) => platformString(d.platform)),
      ),
    ];
    throw notFound(
      `${what}: no image for ${platformString(want)} in the manifest list (platforms present: ${present.join(', ') || 'none'})`,
    );
  }
  return pick;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function parseJson<T>(b: Buffer, what: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch (e) {
    throw invalidArgument(`${what}: not valid JSON: ${messageOf(e)}`, e);
  }
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const x = d as Partial<Descriptor> | undefined;
  if (!x || typeof x.digest !== 'string' || typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0)
    throw invalidArgument(`${what}: malformed descriptor`);
  if (!/^sha256:[0-9a-f]{64}$/.test(x.digest))
    throw invalidArgument(`${what}: digest "${x.digest}" is not supported (sha256 only)`);
  return x as Descriptor;
}

interface Candidate {
  registry: string;
  repo: string;
  /** full normalized name of the result (without digest) */
  name: string;
}

/** Where a reference may be found: the named registry, or each search registry for a short name. */
export function candidatesFor(ref: Reference, cfg: RegistriesConfig): Candidate[] {
  const tag = ref.tag !== undefined ? `:${ref.tag}` : '';
  if (ref.explicitDomain) return [{ registry: ref.domain, repo: ref.path, name: `${ref.repository}${tag}` }];
  const short = shortPath(ref);
  return cfg.search.map((registry) => {
    const repo = registry === DOCKER_HUB && !short.includes('/') ? `library/${short}` : short;
    return { registry, repo, name: `${registry}/${repo}${tag}` };
  });
}

interface Resolved {
  client: RegistryClient;
  candidate: Candidate;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  mediaType: string;
}

async function fetchManifest(
  client: RegistryClient,
  c: Candidate,
  ref: Reference,
  platform: Platform,
): Promise<Omit<Resolved, 'client' | 'candidate'>> {
  const what = `image "${c.name}${ref.digest ? `@${ref.digest}` : ''}"`;
  const first = await client.getManifest(c.repo, ref.digest ?? ref.tag ?? 'latest', MANIFEST_ACCEPT);
  let bytes = first.body;
  let digest = sha256(bytes);
  const check = (expected: string | undefined, got: string, whatDigest: string): void => {
    if (expected !== undefined && expected !== got)
      throw invalidArgument(`${what}: ${whatDigest} has digest ${got}, expected ${expected}: content was altered`);
  };
  check(ref.digest, digest, 'the manifest');
  if (first.digest?.startsWith('sha256:')) check(first.digest, digest, 'the manifest');
  let doc = parseJson<{ schemaVersion?: number; mediaType?: string; manifests?: unknown }>(bytes, `${what} manifest`);
  let mediaType = doc.mediaType ?? first.mediaType;
  if (doc.schemaVersion === 1) throw invalidArgument(`${what}: docker schema 1 manifests are not supported`);
  if (isIndexType(mediaType) || (mediaType === '' && Array.isArray(doc.manifests))) {
    const index = doc as ImageIndex;
    if (!Array.isArray(index.manifests)) throw invalidArgument(`${what}: manifest list without manifests`);
    index.manifests.forEach((d, i) => checkDescriptor(d, `${what} manifest list entry ${i}`));
    const pick = selectPlatform(index, platform, what);
    const child = await client.getManifest(c.repo, pick.digest, MANIFEST_ACCEPT);
    bytes = child.body;
    digest = sha256(bytes);
    check(pick.digest, digest, `the ${platformString(platform)} manifest`);
    if (bytes.length !== pick.size)
      throw invalidArgument(`${what}: manifest size ${bytes.length}, expected ${pick.size}`);
    doc = parseJson(bytes, `${what} manifest`);
    mediaType = doc.mediaType ?? child.mediaType;
    if (isIndexType(mediaType)) throw invalidArgument(`${what}: nested manifest lists are not supported`);
  }
  if (mediaType !== MediaType.ociManifest && mediaType !== MediaType.dockerManifest) {
    throw invalidArgument(`${what}: unsupported manifest type "${mediaType}"`);
  }
  const m = doc as ImageManifest;
  checkDescriptor(m.config, `${what} config`);
  if (!Array.isArray(m.layers)) throw invalidArgument(`${what}: manifest has no layers list`);
  m.layers.forEach((l, i) => {
    checkDescriptor(l, `${what} layer ${i}`);
    if (!LAYER_TYPES.has(l.mediaType))
      throw invalidArgument(`${what}: layer ${i} has unsupported type "${l.mediaType}"`);
  });
  return { manifest: m, manifestBytes: bytes, manifestDigest: digest, mediaType };
}

async function resolve(
  typed: string,
  ref: Reference,
  cfg: RegistriesConfig,
  platform: Platform,
  clientFor: (registry: string) => Promise<RegistryClient>,
): Promise<Resolved> {
  const candidates = candidatesFor(ref, cfg);
  const failures: Array<{ where: string; error: unknown }> = [];
  for (const c of candidates) {
    for (const endpoint of endpointsFor(cfg, c.registry)) {
      const client = await clientFor(endpoint);
      try {
        return { client, candidate: c, ...(await fetchManifest(client, c, ref, platform)) };
      } catch (e) {
        // wrong content or platform is final; "not here" and "cannot reach" try the next place
        if (isNspodError(e, 'INVALID_ARGUMENT')) throw e;
        if (isNspodError(e, 'NOT_FOUND') && messageOf(e).includes('platforms present')) throw e;
        failures.push({ where: endpoint, error: e });
      }
    }
  }
  if (failures.length === 1) throw failures[0]!.error;
  const allMissing = failures.every((f) => isNspodError(f.error, 'NOT_FOUND'));
  const detail = failures.map((f) => `${f.where}: ${messageOf(f.error)}`).join('; ');
  const msg = `image "${typed}" not found in ${failures.length} places: ${detail}`;
  if (allMissing) throw notFound(msg);
  const firstOther = failures.find((f) => !isNspodError(f.error, 'NOT_FOUND'))!.error;
  throw new NspodError(firstOther instanceof NspodError ? firstOther.code : 'UNAVAILABLE', msg, { cause: firstOther });
}

/** Runs `fn` over `items` with at most `limit` at a time; waits for all, rethrows the first error. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let first: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (e) {
        first ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (first) throw first.e;
}

class Cancelled extends Error {}

/** Pulls `reference` into `store` (see the module doc). */
export async function pullImage(store: ImageStore, reference: string, opts: PullOptions = {}): Promise<PullResult> {
  const env = opts.env ?? process.env;
  const ref = parseReference(reference);
  const platform = parsePlatform(opts.platform);
  const cfg = opts.registries ?? (await loadRegistriesConfig(env));
  const authFile = opts.authFile ?? authFilePath(store.root, env);
  const emit = opts.onEvent ?? (() => undefined);
  const clients: RegistryClient[] = [];
  const clientFor = async (registry: string): Promise<RegistryClient> => {
    const credentials = await findCredentials(authFile, registry, env);
    const c = new RegistryClient({
      registry,
      config: cfg,
      ...(credentials ? { credentials } : {}),
      ...(opts.retry ? { retry: opts.retry } : {}),
    });
    clients.push(c);
    return c;
  };
  try {
    const r = await resolve(reference, ref, cfg, platform, clientFor);
    const what = `image "${r.candidate.name}"`;
    const m = r.manifest;
    emit({
      kind: 'resolved',
      reference: r.candidate.name,
      manifestDigest: r.manifestDigest,
      layers: m.layers.map((l) => ({ digest: l.digest, size: l.size })),
    });

    if (m.config.size > 16 * 1024 * 1024) throw invalidArgument(`${what}: config of ${m.config.size} bytes is too big`);
    // a config already stored was verified when it was stored
    const configBytes = (await store.hasBlob(m.config.digest))
      ? await store.readBlob(m.config.digest)
      : await r.client.getBlob(r.candidate.repo, m.config.digest, m.config.size);
    const configDigest = sha256(configBytes);
    if (configDigest !== m.config.digest || configBytes.length !== m.config.size) {
      throw invalidArgument(
        `${what}: config blob has digest ${configDigest} (${configBytes.length} bytes), expected ${m.config.digest} (${m.config.size}): content was altered`,
      );
    }
    const config = parseJson<ImageConfig>(configBytes, `${what} config`);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== m.layers.length) {
      throw invalidArgument(`${what}: config lists ${diffIds.length} diff_ids for ${m.layers.length} layers`);
    }
    diffIds.forEach((d) => checkDigest(d));

    const release = await store.markInflight(
      [r.manifestDigest, m.config.digest, ...m.layers.map((l) => l.digest)],
      diffIds,
    );
    const addedBlobs: string[] = [];
    const addedLayers: string[] = [];
    let downloaded = 0;
    let failed = false;
    // each layer: download (bounded) then unpack without holding a download slot
    const unpacks: Array<Promise<void>> = [];
    try {
      await mkdir(store.ingestDir, { recursive: true });
      const unpack = async (l: Descriptor, diffId: string): Promise<void> => {
        if (await store.hasLayer(diffId)) {
          emit({ kind: 'layer', digest: l.digest, phase: 'done', current: l.size, total: l.size });
          return;
        }
        emit({ kind: 'layer', digest: l.digest, phase: 'extracting', current: l.size, total: l.size });
        addedLayers.push(diffId);
        await store.unpackLayer(l, diffId);
        emit({ kind: 'layer', digest: l.digest, phase: 'done', current: l.size, total: l.size });
      };
      for (const l of m.layers) emit({ kind: 'layer', digest: l.digest, phase: 'waiting', current: 0, total: l.size });
      await pool(m.layers, opts.concurrency ?? 3, async (l, i) => {
        const diffId = diffIds[i]!;
        if (failed) throw new Cancelled('cancelled');
        if (await store.hasBlob(l.digest)) {
          const now = new Date();
          await utimes(store.blobPath(l.digest), now, now).catch(() => undefined);
          if (await store.hasLayer(diffId)) {
            emit({ kind: 'layer', digest: l.digest, phase: 'exists', current: l.size, total: l.size });
            return;
          }
        } else {
          await download(r, l, (phase, current) =>
            emit({ kind: 'layer', digest: l.digest, phase, current, total: l.size }),
          );
          addedBlobs.push(l.digest);
          downloaded += l.size;
        }
        const p = unpack(l, diffId);
        p.catch(() => (failed = true));
        unpacks.push(p);
      }).catch((e: unknown) => {
        failed = true;
        throw e;
      });
      const settled = await Promise.allSettled(unpacks);
      const bad = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (bad) throw bad.reason;
      const image = await store.commitImage({
        manifest: r.manifestBytes,
        manifestDigest: r.manifestDigest,
        manifestMediaType: r.mediaType,
        config: configBytes,
        configDigest,
        layers: m.layers,
        ...(ref.digest === undefined ? { name: r.candidate.name } : {}),
      });
      emit({ kind: 'committed', image });
      return { image, reference: r.candidate.name, manifestDigest: r.manifestDigest, downloaded };
    } catch (e) {
      failed = true;
      await Promise.allSettled(unpacks); // an unpack still running would leave its layer behind
      await release(); // so that discard may remove what this pull added
      await store.discard(addedBlobs, addedLayers).catch(() => undefined);
      throw e instanceof Cancelled ? failedPrecondition(`${what}: pull cancelled`) : e;
    } finally {
      await release();
    }

    async function download(
      res: Resolved,
      l: Descriptor,
      progress: (phase: LayerPhase, current: number) => void,
    ): Promise<void> {
      const tmp = path.join(store.ingestDir, `pull-${randomBytes(8).toString('hex')}`);
      const fh = await open(tmp, 'w', 0o644);
      let hash = createHash('sha256');
      let size = 0;
      try {
        try {
          await res.client.fetchBlob(
            res.candidate.repo,
            l.digest,
            l.size,
            {
              write: async (chunk) => {
                if (failed) throw new Cancelled('cancelled');
                hash.update(chunk);
                size += chunk.length;
                await fh.write(chunk);
              },
              reset: async () => {
                hash = createHash('sha256');
                size = 0;
                await fh.truncate(0);
              },
            },
            (received) => progress('downloading', received),
            () => progress('retrying', size),
          );
          await fh.sync();
        } finally {
          await fh.close();
        }
        const digest = `sha256:${hash.digest('hex')}`;
        if (digest !== l.digest || size !== l.size) {
          throw invalidArgument(
            `${what}: layer ${l.digest} has digest ${digest} (${size} bytes), expected ${l.digest} (${l.size}): content was altered`,
          );
        }
        await mkdir(path.dirname(store.blobPath(l.digest)), { recursive: true });
        await rename(tmp, store.blobPath(l.digest));
        await syncDir(path.dirname(store.blobPath(l.digest)));
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
