/**
 * Pulling an image into the store:
 *   resolve the name (search registries for short names, mirrors first) ▶ manifest (a list or
 *   index picks the platform) ▶ config ▶ layers downloaded in parallel (bounded) to temp files,
 *   sha256 and size checked while streaming, and unpacked from the same bytes as they arrive
 *   (the layer dir is put in place only once its blob is verified and stored) ▶ the manifest,
 *   config and name committed under the store lock.
 * Layers already stored (and unpacked) are not fetched again. On failure the blobs and layers
 * this pull added and no image uses are removed: nothing half-written stays.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import {
  NspodError,
  failedPrecondition,
  invalidArgument,
  isNspodError,
  messageOf,
  notFound,
} from '../../errors/index.js';
import { writerTag } from '../../storage/leftovers.js';
import { checkDigest } from '../blobs.js';
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

/**
 * Runs `fn` over `items` with at most `limit` at a time; waits for all, rethrows the first error
 * that is not a cancellation (those follow the error that caused them).
 */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors.find((e) => !isCancel(e)) ?? errors[0];
}

class Cancelled extends Error {}

/** Size of the pieces a download is written in, and how much may be queued for writing. */
const WRITE_CHUNK = 1024 * 1024;
const WRITE_AHEAD = 8 * 1024 * 1024;

/** A Cancelled, or an error made of one (the client wraps what a sink throws). */
const isCancel = (e: unknown): boolean =>
  e instanceof Cancelled || (e instanceof Error && e.cause instanceof Cancelled);

/** Resolves when `s` may take more (or is gone). */
function drained(s: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const go = (): void => {
      s.off('drain', go);
      s.off('close', go);
      resolve();
    };
    s.on('drain', go);
    s.on('close', go);
  });
}

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

    // one task per distinct blob: an image may list the same layer twice
    const tasks: Array<{ layer: Descriptor; diffId: string }> = [];
    m.layers.forEach((l, i) => {
      const twin = tasks.find((t) => t.layer.digest === l.digest);
      if (!twin) return void tasks.push({ layer: l, diffId: diffIds[i]! });
      if (twin.diffId !== diffIds[i]) {
        throw invalidArgument(`${what}: layer ${l.digest} is listed twice with different diff_ids`);
      }
    });

    const release = await store.markInflight(
      [r.manifestDigest, m.config.digest, ...m.layers.map((l) => l.digest)],
      diffIds,
    );
    const addedBlobs: string[] = [];
    const addedLayers: string[] = [];
    let downloaded = 0;
    let failed = false;
    // unpacks still running once their download is done (or of blobs already stored)
    const unpacks: Array<Promise<void>> = [];
    const track = (p: Promise<void>): void => {
      p.catch(() => (failed = true));
      unpacks.push(p);
    };
    try {
      await mkdir(store.ingestDir, { recursive: true });
      for (const l of m.layers) emit({ kind: 'layer', digest: l.digest, phase: 'waiting', current: 0, total: l.size });
      const done = (l: Descriptor): void =>
        emit({ kind: 'layer', digest: l.digest, phase: 'done', current: l.size, total: l.size });
      await pool(tasks, opts.concurrency ?? 3, async ({ layer: l, diffId }) => {
        if (failed) throw new Cancelled('cancelled');
        const needLayer = !(await store.hasLayer(diffId));
        if (needLayer) addedLayers.push(diffId);
        if (await store.hasBlob(l.digest)) {
          const now = new Date();
          await utimes(store.blobPath(l.digest), now, now).catch(() => undefined);
          if (!needLayer) {
            emit({ kind: 'layer', digest: l.digest, phase: 'exists', current: l.size, total: l.size });
            return;
          }
          emit({ kind: 'layer', digest: l.digest, phase: 'extracting', current: l.size, total: l.size });
          track(store.unpackLayer(l, diffId).then(() => done(l)));
          return;
        }
        // the layer unpacks from the download itself; it waits in the pool only for the bytes
        const { unpacked } = await download(r, l, needLayer ? diffId : undefined, (phase, current) =>
          emit({ kind: 'layer', digest: l.digest, phase, current, total: l.size }),
        );
        addedBlobs.push(l.digest);
        downloaded += l.size;
        if (!needLayer) return done(l);
        emit({ kind: 'layer', digest: l.digest, phase: 'extracting', current: l.size, total: l.size });
        track(unpacked.then(() => done(l)));
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
      // an unpack still running would leave its layer behind
      const settled = await Promise.allSettled(unpacks);
      await release(); // so that discard may remove what this pull added
      await store.discard(addedBlobs, addedLayers).catch(() => undefined);
      if (!isCancel(e)) throw e;
      // the download was stopped because an unpack failed: that is the error to tell
      const cause = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected' && !isCancel(x.reason));
      throw cause ? cause.reason : failedPrecondition(`${what}: pull cancelled`);
    } finally {
      await release();
    }

    /**
     * Downloads a layer blob to a temp file, hashing it as it comes, and moves it into the store
     * once its digest and size match. With `diffId`, the bytes also feed an unpack of the layer
     * as they arrive (held back from its final place until the blob is stored, discarded when
     * anything fails); `unpacked` settles with that unpack. A blob whose unpack failed is not
     * stored. Should the registry be unable to resume a cut download, the unpack starts over
     * from the stored blob instead.
     */
    async function download(
      res: Resolved,
      l: Descriptor,
      diffId: string | undefined,
      progress: (phase: LayerPhase, current: number) => void,
    ): Promise<{ unpacked: Promise<void> }> {
      // tagged with this process, so that GC can tell a killed pull's leftover
      const tmp = path.join(store.ingestDir, `pull-${writerTag()}`);
      const fh = await open(tmp, 'w', 0o644);
      let hash = createHash('sha256');
      let size = 0;
      let stored!: { resolve: () => void; reject: (e: unknown) => void };
      const blobStored = new Promise<void>((resolve, reject) => (stored = { resolve, reject }));
      blobStored.catch(() => undefined);
      let tee: PassThrough | undefined;
      let unpacking: Promise<unknown> | undefined;
      // set when the unpack failed by itself (not stopped by this download)
      let unpackError: { e: unknown } | undefined;
      let stopping = false;
      if (diffId !== undefined) {
        const t = new PassThrough({ highWaterMark: 1024 * 1024 });
        t.on('error', () => undefined); // the unpack reports its own failure
        tee = t;
        unpacking = store.unpackLayerStream(l, diffId, t, () => blobStored);
        unpacking.catch((e: unknown) => {
          if (!stopping) unpackError ??= { e };
          t.destroy();
        });
      }
      const stopUnpack = async (why: unknown): Promise<void> => {
        stopping = true;
        tee?.destroy(why instanceof Error ? why : new Error(String(why)));
        await unpacking?.catch(() => undefined);
        tee = undefined;
        unpacking = undefined;
      };
      // network reads come in 64 KiB: they are written (and fed to the unpack) in ~1 MiB
      // pieces, queued ahead up to WRITE_AHEAD so the download does not wait for each write
      let pending: Buffer[] = [];
      let pendingSize = 0;
      let writes: Promise<void> = Promise.resolve();
      let queued = 0;
      let writeError: { e: unknown } | undefined;
      const flush = async (): Promise<void> => {
        if (pendingSize === 0) return;
        const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingSize);
        const at = size - pendingSize;
        pending = [];
        pendingSize = 0;
        queued += buf.length;
        // at explicit offsets: after a reset, the file position is not back at 0
        writes = writes
          .then(() => fh.write(buf, 0, buf.length, at))
          .then(
            () => void (queued -= buf.length),
            (e: unknown) => void (writeError ??= { e }),
          );
        // an unpack that failed gets no more, but the blob is still checked: altered bytes
        // are the error to tell, and they would break the unpack first
        if (tee && !unpackError && !tee.write(buf)) await drained(tee);
        if (queued > WRITE_AHEAD) await writes;
        if (writeError) throw writeError.e;
      };
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
                pending.push(chunk);
                pendingSize += chunk.length;
                if (pendingSize >= WRITE_CHUNK) await flush();
              },
              reset: async () => {
                await writes;
                writeError = undefined;
                hash = createHash('sha256');
                size = 0;
                pending = [];
                pendingSize = 0;
                await fh.truncate(0);
                // the unpack has seen bytes that come again: it starts over from the blob
                await stopUnpack(new Error('download restarted'));
              },
            },
            (received) => progress('downloading', received),
            () => progress('retrying', size),
          );
          await flush();
          await writes;
          if (writeError) throw writeError.e;
          if (!unpackError) tee?.end();
          await fh.sync();
        } finally {
          await writes;
          await fh.close();
        }
        const digest = `sha256:${hash.digest('hex')}`;
        if (digest !== l.digest || size !== l.size) {
          throw invalidArgument(
            `${what}: layer ${l.digest} has digest ${digest} (${size} bytes), expected ${l.digest} (${l.size}): content was altered`,
          );
        }
        if (unpackError) throw unpackError.e;
        await mkdir(path.dirname(store.blobPath(l.digest)), { recursive: true });
        // the data is synced, so the name shows a whole blob or none after a crash; the
        // directory itself is synced once, before the index refers to it (commitImage)
        await rename(tmp, store.blobPath(l.digest));
      } catch (e) {
        await rm(tmp, { force: true });
        stored.reject(e);
        await stopUnpack(e);
        throw e;
      }
      stored.resolve();
      if (unpacking) return { unpacked: unpacking.then(() => undefined) };
      if (diffId === undefined) return { unpacked: Promise.resolve() };
      return { unpacked: store.unpackLayer(l, diffId).then(() => undefined) };
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
