/**
 * The image store: an OCI image layout at `<root>/images` plus unpacked layers at
 * `<root>/layers/<diffId hex>`. See index.ts for the vocabulary and lifecycle.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../host/index.js';
import { failedPrecondition, hasErrno, invalidArgument, isNspodError } from '../errors/index.js';
import { unpackLayer } from '../storage/index.js';
import { removeTree, writerGone, writerOf } from '../storage/leftovers.js';
import { checkDigest, openBlobStore, syncDir } from './blobs.js';
import type { PutResult } from './blobs.js';
import { openCatalog } from './catalog.js';
import type { ImageRecord } from './catalog.js';
import { nameOf, openLayout, setName } from './layout.js';
import { parseReference } from './reference.js';
import { MediaType, isIndexType } from './types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageInfo, ImageManifest } from './types.js';
import { loadArchive } from './archive-load.js';
import { saveArchive } from './archive-save.js';
import { importRootfs } from './import.js';
import { markInflight, mountedLayers, readInflight } from './inflight.js';
import type { ImportOptions } from './import.js';

export interface OpenImageStoreOptions {
  /** the nspod root: the store is `<root>/images`, unpacked layers `<root>/layers` */
  root: string;
  host: Host;
  /** unreferenced blobs younger than this are kept by GC (someone may be about to index them); default 10 min */
  gcGraceMs?: number;
}

/**
 * A layer temp dir named before writers tagged their names (`<hex>.tmp-<12 hex>`) is stale once
 * its ctime is this old: an unpack changes its top dir as it starts and as it ends.
 */
const UNTAGGED_TMP_MS = 24 * 3600_000;

export interface CreateImageOptions {
  /** layer blobs already in the store, bottom-most first */
  layers: Descriptor[];
  config: ImageConfig;
  name?: string;
}

export interface RemoveOptions {
  /** remove even when a container uses the image */
  force?: boolean;
  /** tells whether a container uses the image (by id) */
  inUse?: (id: string) => boolean;
}

export interface RemoveResult {
  untagged: string[];
  /** the id of the image when it was deleted (not only untagged) */
  deleted?: string;
}

export interface GcResult {
  blobs: string[];
  layers: string[];
}

export interface GcOptions {
  /** unpacked layers to keep even if no image needs them */
  keepDiffIds?: Iterable<string>;
}

export interface PruneOptions {
  /** remove every image no container uses, not only unnamed (dangling) ones */
  all?: boolean;
  /** tells whether a container uses the image (by id) */
  inUse?: (id: string) => boolean;
}

export interface PruneResult extends GcResult {
  /** ids of the images removed */
  images: string[];
  /** bytes freed (blobs) */
  bytes: number;
}

export interface CommitImageOptions {
  /** the manifest as fetched (its digest is the image's manifest digest) */
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
  config: Buffer;
  configDigest: string;
  /** layer blobs that must already be in the store */
  layers: Descriptor[];
  /** full normalized reference to point at the image; none for a by-digest pull */
  name?: string;
}

export interface ImageStore {
  readonly root: string;
  readonly host: Host;
  list(): Promise<ImageInfo[]>;
  /** by full or short name, id, or unique id prefix (≥ 3 hex); NOT_FOUND `image "x" not found` */
  resolve(ref: string): Promise<ImageInfo>;
  config(info: ImageInfo): Promise<ImageConfig>;
  manifest(info: ImageInfo): Promise<ImageManifest>;
  /** unpacked layer dirs, bottom-most first; unpacks missing ones (once, even when called concurrently) */
  layerDirs(info: ImageInfo): Promise<string[]>;
  loadArchive(file: string): Promise<ImageInfo[]>;
  importRootfs(tarFile: string, name: string, opts?: ImportOptions): Promise<ImageInfo>;
  tag(ref: string, newName: string): Promise<void>;
  remove(ref: string, opts?: RemoveOptions): Promise<RemoveResult>;
  saveArchive(refs: string[], file: string): Promise<void>;
  /** writes config + manifest for layers already stored, and names the image */
  createImage(opts: CreateImageOptions): Promise<ImageInfo>;
  putBlob(data: AsyncIterable<Buffer> | Buffer | string, expectedDigest?: string): Promise<PutResult>;
  hasBlob(digest: string): Promise<boolean>;
  blobPath(digest: string): string;
  /** deletes blobs and unpacked layers no image, mounted container or pull in flight uses */
  gc(opts?: GcOptions): Promise<GcResult>;
  /** removes unused images (dangling ones, or all with `all`), then collects garbage */
  prune(opts?: PruneOptions): Promise<PruneResult>;
  /** whether the layer with this diffId is unpacked */
  hasLayer(diffId: string): Promise<boolean>;
  /** unpacks one stored layer blob (once, even when called concurrently); returns its dir */
  unpackLayer(layer: Descriptor, diffId: string): Promise<string>;
  /**
   * unpacks a layer from its blob's bytes as they arrive (a download); the layer is moved into
   * place only once `beforeCommit` resolves (the blob verified and stored); returns its dir
   */
  unpackLayerStream(
    layer: Descriptor,
    diffId: string,
    stream: AsyncIterable<Buffer>,
    beforeCommit: () => Promise<void>,
  ): Promise<string>;
  /** stores a fetched manifest and config for layers already stored, and names it (under the lock) */
  commitImage(opts: CommitImageOptions): Promise<ImageInfo>;
  readBlob(digest: string): Promise<Buffer>;
  /** where downloads are written before they are verified and moved into the store */
  readonly ingestDir: string;
  /** protects blobs and layers from GC while a pull works on them; returns the release */
  markInflight(digests: string[], diffIds: string[]): Promise<() => Promise<void>>;
  /** deletes blobs and unpacked layers (given) that no indexed image references, under the lock */
  discard(digests: string[], diffIds: string[]): Promise<void>;
  /** runs `fn` holding the store's lock (for put-then-index sequences) */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
}

/** What the archive and import modules use from the store, lock-free (the caller holds the lock). */
export interface StoreInternals {
  store: ImageStore;
  blobs: ReturnType<typeof openBlobStore>;
  readIndex(): Promise<ImageIndex>;
  writeIndex(index: ImageIndex): Promise<void>;
  records(): Promise<ImageRecord[]>;
  lookup(ref: string): Promise<{ record: ImageRecord; name?: string }>;
  createImageLocked(opts: CreateImageOptions): Promise<ImageInfo>;
  infoOfManifest(digest: string): Promise<ImageInfo>;
}

export function openImageStore(opts: OpenImageStoreOptions): ImageStore {
  const imagesDir = path.join(opts.root, 'images');
  const layersDir = path.join(opts.root, 'layers');
  const ingestDir = path.join(imagesDir, 'ingest');
  const graceMs = opts.gcGraceMs ?? 10 * 60_000;
  const layout = openLayout(imagesDir);
  const blobs = openBlobStore(imagesDir);
  const catalog = openCatalog(layout, blobs);
  const unpacking = new Map<string, Promise<string>>();
  let swept: Promise<void> | undefined;

  const list = async (): Promise<ImageInfo[]> => (await catalog.records()).map((r) => r.info);
  const resolve = async (ref: string): Promise<ImageInfo> => (await catalog.lookup(ref)).record.info;
  const config = (info: ImageInfo): Promise<ImageConfig> => catalog.config(info.id);

  async function infoOfManifest(digest: string): Promise<ImageInfo> {
    const m = await catalog.manifest(digest);
    const hit = (await list()).find((i) => i.id === m.config.digest);
    if (!hit) throw failedPrecondition(`manifest ${digest} is not in the image index`);
    return hit;
  }

  async function createImageLocked(o: CreateImageOptions): Promise<ImageInfo> {
    const name = o.name === undefined ? undefined : parseReference(o.name).full;
    if (o.config.rootfs.diff_ids.length !== o.layers.length) {
      throw invalidArgument(
        `image config lists ${o.config.rootfs.diff_ids.length} diff_ids for ${o.layers.length} layers`,
      );
    }
    for (const l of o.layers) {
      if (!(await blobs.hasBlob(l.digest))) throw failedPrecondition(`layer blob ${l.digest} is not in the store`);
    }
    const cfg = await blobs.putJson(o.config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers: o.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const m = await blobs.putJson(manifest);
    const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: m.digest, size: m.size };
    await layout.writeIndex(setName(await layout.readIndex(), desc, name));
    return infoOfManifest(m.digest);
  }

  function unpackOne(layer: Descriptor, diffId: string): Promise<string> {
    const dest = path.join(layersDir, checkDigest(diffId).slice('sha256:'.length));
    let p = unpacking.get(diffId);
    if (!p) {
      p = (async () => {
        try {
          await stat(dest);
          return dest;
        } catch (e) {
          if (!hasErrno(e, 'ENOENT')) throw e;
        }
        await sweepOnce();
        await unpackLayer({
          blob: blobs.blobPath(layer.digest),
          mediaType: layer.mediaType,
          dest,
          expectedDiffId: diffId,
          host: opts.host,
          label: `layer ${layer.digest.slice(0, 19)}…`,
        });
        return dest;
      })().finally(() => unpacking.delete(diffId));
      unpacking.set(diffId, p);
    }
    return p;
  }

  function unpackStream(
    layer: Descriptor,
    diffId: string,
    stream: AsyncIterable<Buffer>,
    beforeCommit: () => Promise<void>,
  ): Promise<string> {
    const dest = path.join(layersDir, checkDigest(diffId).slice('sha256:'.length));
    const p = sweepOnce()
      .then(() =>
        unpackLayer({
          blob: blobs.blobPath(layer.digest),
          stream,
          beforeCommit,
          mediaType: layer.mediaType,
          dest,
          expectedDiffId: diffId,
          host: opts.host,
          label: `layer ${layer.digest.slice(0, 19)}…`,
        }),
      )
      .then(() => dest);
    // whoever asks for this layer meanwhile waits for this unpack rather than start another
    if (!unpacking.has(diffId)) {
      const mine = p.finally(() => unpacking.delete(diffId));
      mine.catch(() => undefined);
      unpacking.set(diffId, mine);
    }
    return p;
  }

  async function layerDirs(info: ImageInfo): Promise<string[]> {
    const diffIds = (await config(info)).rootfs?.diff_ids ?? [];
    if (diffIds.length !== info.layers.length) {
      throw failedPrecondition(
        `image ${info.id}: config lists ${diffIds.length} diff_ids but the manifest ${info.layers.length} layers`,
      );
    }
    return Promise.all(info.layers.map((l, i) => unpackOne(l, diffIds[i]!)));
  }

  /** Blob digests and diffIds every indexed image reaches. */
  async function referenced(): Promise<{ reachable: Set<string>; needed: Set<string> }> {
    const index = await layout.readIndex();
    const reachable = new Set<string>();
    const needed = new Set<string>();
    const walk = async (d: Descriptor): Promise<void> => {
      reachable.add(d.digest);
      if (isIndexType(d.mediaType)) {
        for (const c of (await blobs.readJson<ImageIndex>(d.digest)).manifests) await walk(c);
        return;
      }
      const m = await catalog.manifest(d.digest);
      reachable.add(m.config.digest);
      for (const l of m.layers) reachable.add(l.digest);
      for (const id of (await catalog.config(m.config.digest)).rootfs?.diff_ids ?? []) needed.add(id);
    };
    for (const d of index.manifests) {
      try {
        await walk(d);
      } catch (e) {
        if (!isNspodError(e, 'NOT_FOUND')) throw e; // a damaged entry: keep what it still reaches
      }
    }
    return { reachable, needed };
  }

  async function gcLocked(removed: Set<string>, keepDiffIds: Set<string>): Promise<GcResult> {
    const { reachable, needed } = await referenced();
    for (const d of keepDiffIds) needed.add(d);
    const inflight = await readInflight(imagesDir);
    for (const d of inflight.digests) reachable.add(d);
    for (const d of inflight.diffIds) needed.add(d);
    for (const d of await mountedLayers(opts.root)) needed.add(d);
    const result: GcResult = { blobs: [], layers: [] };
    const blobDir = path.join(imagesDir, 'blobs', 'sha256');
    for (const f of await readdir(blobDir)) {
      const digest = `sha256:${f}`;
      if (!/^[0-9a-f]{64}$/.test(f) || reachable.has(digest)) continue;
      const age = Date.now() - (await stat(path.join(blobDir, f))).mtimeMs;
      if (!removed.has(digest) && age < graceMs) continue;
      await rm(path.join(blobDir, f), { force: true });
      result.blobs.push(digest);
    }
    const layerNames = await readdir(layersDir).catch((e: unknown) => {
      if (hasErrno(e, 'ENOENT')) return [] as string[];
      throw e;
    });
    for (const f of layerNames) {
      if (!/^[0-9a-f]{64}$/.test(f) || needed.has(`sha256:${f}`)) continue;
      await rm(path.join(layersDir, f), { recursive: true, force: true });
      result.layers.push(`sha256:${f}`);
    }
    await sweepLeftovers();
    return result;
  }

  /**
   * Removes what a killed process left while unpacking (`layers/<hex>.tmp-<tag>`) or downloading
   * (`images/ingest/…<tag>`): an entry whose tag names a writer that is gone (storage/leftovers.ts)
   * and whose ctime is older than the grace period (ctime, unlike mtime, cannot be set back by the
   * unpack). A live writer's entry is never touched, so this needs no lock. Best effort.
   */
  async function sweepLeftovers(): Promise<void> {
    const now = Date.now();
    const entries = (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);
    const stale = async (file: string, untaggedStale: (st: Stats) => boolean): Promise<boolean> => {
      const st = await lstat(file).catch(() => undefined);
      if (!st) return false;
      const w = writerOf(path.basename(file));
      if (w) return now - st.ctimeMs >= graceMs && (await writerGone(w));
      return untaggedStale(st);
    };
    for (const f of await entries(layersDir)) {
      if (!/^[0-9a-f]{64}\.tmp-/.test(f)) continue;
      // untagged: the exact form an nspod from before tags wrote, after a day without change
      const legacy = /^[0-9a-f]{64}\.tmp-[0-9a-f]{12}$/.test(f);
      const p = path.join(layersDir, f);
      if (await stale(p, (st) => legacy && now - st.ctimeMs >= UNTAGGED_TMP_MS)) {
        await removeTree(p).catch(() => undefined);
      }
    }
    for (const f of await entries(ingestDir)) {
      const p = path.join(ingestDir, f);
      // untagged (from before tags): after the grace period without a write, as it always was
      if (await stale(p, (st) => now - st.mtimeMs >= graceMs)) await removeTree(p).catch(() => undefined);
    }
  }

  /** sweepLeftovers once per store handle, when it first has a layer to unpack or an archive to load */
  function sweepOnce(): Promise<void> {
    swept ??= sweepLeftovers().catch(() => undefined);
    return swept;
  }

  async function discardLocked(digests: string[], diffIds: string[]): Promise<void> {
    const { reachable, needed } = await referenced();
    const inflight = await readInflight(imagesDir);
    for (const d of digests) {
      if (!reachable.has(d) && !inflight.digests.includes(d)) await rm(blobs.blobPath(d), { force: true });
    }
    for (const d of diffIds) {
      if (!needed.has(d) && !inflight.diffIds.includes(d)) {
        await rm(path.join(layersDir, checkDigest(d).slice('sha256:'.length)), { recursive: true, force: true });
      }
    }
  }

  async function pruneLocked(o: PruneOptions): Promise<PruneResult> {
    const images: string[] = [];
    const removed = new Set<string>();
    for (const r of await catalog.records()) {
      const info = r.info;
      if (o.inUse?.(info.id)) continue;
      if (!o.all && info.names.length > 0) continue;
      const index = await layout.readIndex();
      const kept: Descriptor[] = [];
      removed.add(info.id);
      for (const l of info.layers) removed.add(l.digest);
      for (const d of index.manifests) {
        if (!isIndexType(d.mediaType) && (await catalog.manifest(d.digest)).config.digest === info.id) {
          removed.add(d.digest);
          continue;
        }
        kept.push(d);
      }
      await layout.writeIndex({ ...index, manifests: kept });
      images.push(info.id);
    }
    const sizes = new Map<string, number>();
    const blobDir = path.join(imagesDir, 'blobs', 'sha256');
    for (const f of await readdir(blobDir)) {
      const st = await stat(path.join(blobDir, f)).catch(() => undefined);
      if (st) sizes.set(`sha256:${f}`, st.size);
    }
    // what pruned images referenced goes now, whatever its age; other strays after the grace period
    const gc = await gcLocked(removed, new Set());
    return { ...gc, images, bytes: gc.blobs.reduce((n, d) => n + (sizes.get(d) ?? 0), 0) };
  }

  async function commitImageLocked(o: CommitImageOptions): Promise<ImageInfo> {
    const name = o.name === undefined ? undefined : parseReference(o.name).full;
    for (const l of o.layers) {
      if (!(await blobs.hasBlob(l.digest))) throw failedPrecondition(`layer blob ${l.digest} is not in the store`);
    }
    await blobs.putBlob(o.config, o.configDigest);
    await blobs.putBlob(o.manifest, o.manifestDigest);
    const desc: Descriptor = { mediaType: o.manifestMediaType, digest: o.manifestDigest, size: o.manifest.length };
    const before = await layout.readIndex();
    const after = setName(before, desc, name);
    // a pull of what is already there and named so changes nothing: no rewrite, no fsync
    const same = (i: ImageIndex): string => JSON.stringify([...i.manifests].map((d) => JSON.stringify(d)).sort());
    if (same(after) !== same(before)) {
      // a pull renames its layer blobs in without syncing the directory each time: once here,
      // before the index refers to them
      await syncDir(path.join(imagesDir, 'blobs', 'sha256'));
      await layout.writeIndex(after);
    }
    return infoOfManifest(o.manifestDigest);
  }

  async function removeLocked(ref: string, o: RemoveOptions): Promise<RemoveResult> {
    const { record, name } = await catalog.lookup(ref);
    const info = record.info;
    const index = await layout.readIndex();
    if (name !== undefined && info.names.length > 1) {
      await layout.writeIndex({ ...index, manifests: index.manifests.filter((d) => nameOf(d) !== name) });
      return { untagged: [name] };
    }
    const used = o.inUse?.(info.id) ?? false;
    if (used && !o.force) {
      throw failedPrecondition(`image "${ref}" (${info.id.slice(7, 19)}) is in use by a container`);
    }
    const removed = new Set<string>([info.id, ...info.layers.map((l) => l.digest)]);
    const kept: Descriptor[] = [];
    for (const d of index.manifests) {
      if (!isIndexType(d.mediaType) && (await catalog.manifest(d.digest)).config.digest === info.id) {
        removed.add(d.digest);
      } else {
        kept.push(d);
      }
    }
    await layout.writeIndex({ ...index, manifests: kept });
    // a container still running on a force-removed image keeps its unpacked layers
    await gcLocked(removed, new Set(used ? info.diffIds : []));
    return { untagged: info.names, deleted: info.id };
  }

  async function tagLocked(ref: string, newName: string): Promise<void> {
    const parsed = parseReference(newName);
    if (parsed.digest !== undefined) throw invalidArgument(`cannot tag with a digest reference "${newName}"`);
    const { record } = await catalog.lookup(ref);
    await layout.writeIndex(setName(await layout.readIndex(), record.manifest, parsed.full));
  }

  const withLock = <T>(fn: () => Promise<T>): Promise<T> => layout.withLock(fn);
  const store: ImageStore = {
    root: opts.root,
    host: opts.host,
    list,
    resolve,
    config,
    manifest: (info) => catalog.manifest(info.manifestDigest),
    layerDirs,
    loadArchive: (file) =>
      withLock(async () => {
        await sweepOnce();
        return loadArchive(internals, file);
      }),
    importRootfs: (tarFile, name, o) => withLock(() => importRootfs(internals, { tarFile, name, ...o })),
    tag: (ref, newName) => withLock(() => tagLocked(ref, newName)),
    remove: (ref, o = {}) => withLock(() => removeLocked(ref, o)),
    saveArchive: (refs, file) => saveArchive(internals, refs, file),
    createImage: (o) => withLock(() => createImageLocked(o)),
    putBlob: (data, expected) => blobs.putBlob(data, expected),
    hasBlob: (d) => blobs.hasBlob(d),
    blobPath: (d) => blobs.blobPath(d),
    gc: (o = {}) => withLock(() => gcLocked(new Set(), new Set(o.keepDiffIds ?? []))),
    prune: (o = {}) => withLock(() => pruneLocked(o)),
    hasLayer: async (diffId) =>
      stat(path.join(layersDir, checkDigest(diffId).slice('sha256:'.length))).then(
        () => true,
        (e: unknown) => {
          if (hasErrno(e, 'ENOENT')) return false;
          throw e;
        },
      ),
    unpackLayer: (layer, diffId) => unpackOne(layer, diffId),
    unpackLayerStream: unpackStream,
    commitImage: (o) => withLock(() => commitImageLocked(o)),
    readBlob: (d) => blobs.readBlob(d),
    ingestDir,
    markInflight: (digests, diffIds) => markInflight(imagesDir, { digests, diffIds }),
    discard: (digests, diffIds) => withLock(() => discardLocked(digests, diffIds)),
    withLock,
  };
  const internals: StoreInternals = {
    store,
    blobs,
    readIndex: () => layout.readIndex(),
    writeIndex: (i) => layout.writeIndex(i),
    records: () => catalog.records(),
    lookup: (ref) => catalog.lookup(ref),
    createImageLocked,
    infoOfManifest,
  };
  return store;
}
