/**
 * Reading the store: index.json descriptors → manifests → configs, grouped into images (one per
 * config digest), and reference lookup the way docker and podman do it.
 */
import { failedPrecondition, invalidArgument, isNspodError, notFound } from '../errors/index.js';
import type { BlobStore } from './blobs.js';
import { nameOf } from './layout.js';
import type { Layout } from './layout.js';
import { parseReference, shortPath } from './reference.js';
import type { Reference } from './reference.js';
import { isIndexType } from './types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageInfo, ImageManifest } from './types.js';

/** An image plus what the store needs to write it out again. */
export interface ImageRecord {
  info: ImageInfo;
  /** the index.json descriptor of its manifest */
  manifest: Descriptor;
}

export interface Catalog {
  records(): Promise<ImageRecord[]>;
  manifest(digest: string): Promise<ImageManifest>;
  config(digest: string): Promise<ImageConfig>;
  /** finds an image; `name` is set when the reference matched one of its names */
  lookup(ref: string): Promise<{ record: ImageRecord; name?: string }>;
}

export function openCatalog(layout: Layout, blobs: BlobStore): Catalog {
  // blobs are immutable: what was parsed once stays true
  const cache = new Map<string, unknown>();
  async function json<T>(digest: string): Promise<T> {
    if (!cache.has(digest)) cache.set(digest, await blobs.readJson<T>(digest));
    return cache.get(digest) as T;
  }
  const manifest = (digest: string): Promise<ImageManifest> => json<ImageManifest>(digest);
  const config = (digest: string): Promise<ImageConfig> => json<ImageConfig>(digest);

  async function records(): Promise<ImageRecord[]> {
    const index: ImageIndex = await layout.readIndex();
    const byId = new Map<string, ImageRecord>();
    for (const d of index.manifests) {
      if (isIndexType(d.mediaType)) continue; // the store keeps platform manifests only
      let m: ImageManifest;
      let c: ImageConfig;
      try {
        m = await manifest(d.digest);
        c = await config(m.config.digest);
      } catch (e) {
        if (isNspodError(e, 'NOT_FOUND')) continue; // a damaged entry must not hide the others
        throw e;
      }
      const id = m.config.digest;
      const name = nameOf(d);
      const known = byId.get(id);
      if (known) {
        if (name !== undefined && !known.info.names.includes(name)) known.info.names.push(name);
        continue;
      }
      const info: ImageInfo = {
        id,
        names: name !== undefined ? [name] : [],
        manifestDigest: d.digest,
        ...(c.created !== undefined ? { created: c.created } : {}),
        size: m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
        diffIds: c.rootfs?.diff_ids ?? [],
        layers: m.layers,
      };
      byId.set(id, { info, manifest: { mediaType: d.mediaType, digest: d.digest, size: d.size } });
    }
    return [...byId.values()];
  }

  function byName(all: ImageRecord[], name: string): ImageRecord | undefined {
    return all.find((r) => r.info.names.includes(name));
  }

  /** podman's short-name rule: `busybox` also finds `localhost/busybox:latest`, then any registry's */
  function byShortName(all: ImageRecord[], ref: Reference): { record: ImageRecord; name: string } | undefined {
    const short = shortPath(ref);
    const suffix = `/${short}:${ref.tag ?? 'latest'}`;
    const local = `localhost${suffix}`;
    const hit = byName(all, local);
    if (hit) return { record: hit, name: local };
    const matches = all.flatMap((r) =>
      r.info.names.filter((n) => n.endsWith(suffix)).map((name) => ({ record: r, name })),
    );
    const ids = new Set(matches.map((m) => m.record.info.id));
    if (ids.size > 1) {
      throw failedPrecondition(
        `short name "${short}" matches several images (${matches.map((m) => m.name).join(', ')}): use a full name`,
      );
    }
    return matches[0];
  }

  async function lookup(ref: string): Promise<{ record: ImageRecord; name?: string }> {
    const all = await records();
    const s = ref.trim();
    const hex = /^(?:sha256:)?([0-9a-f]{3,64})$/.exec(s)?.[1];
    if (hex?.length === 64) {
      const r = all.find((x) => x.info.id === `sha256:${hex}`);
      if (r) return { record: r };
    }
    let parsed: Reference | undefined;
    let parseError: unknown;
    try {
      parsed = parseReference(s);
    } catch (e) {
      parseError = e;
    }
    if (parsed) {
      if (parsed.digest !== undefined) {
        const r = all.find((x) => x.info.manifestDigest === parsed.digest || x.info.id === parsed.digest);
        if (r) return { record: r };
      } else {
        const r = byName(all, parsed.full);
        if (r) return { record: r, name: parsed.full };
        if (!parsed.explicitDomain) {
          const short = byShortName(all, parsed);
          if (short) return short;
        }
      }
    }
    if (hex !== undefined) {
      const hits = all.filter((x) => x.info.id.startsWith(`sha256:${hex}`));
      if (hits.length === 1) return { record: hits[0]! };
      if (hits.length > 1)
        throw invalidArgument(`image id prefix "${s}" is ambiguous: it matches ${hits.length} images`);
    }
    if (!parsed && parseError) throw parseError;
    throw notFound(`image "${ref}" not found`);
  }

  return { records, manifest, config, lookup };
}
