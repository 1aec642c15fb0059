/**
 * The index half of the image layout: `oci-layout` and `index.json` (one descriptor per name),
 * rewritten atomically under one lock shared by processes and calls in this process
 * (state/lock.ts: in-process queue, then a kernel-released lock between processes).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { withLockKey } from '../state/lock.js';
import { hasErrno, internal, messageOf } from '../errors/index.js';
import { writeFileAtomic } from './blobs.js';
import { MediaType, REF_NAME } from './types.js';
import type { Descriptor, ImageIndex } from './types.js';

export interface Layout {
  dir: string;
  /** makes the layout files when missing */
  init(): Promise<void>;
  readIndex(): Promise<ImageIndex>;
  writeIndex(index: ImageIndex): Promise<void>;
  /** runs `fn` holding the store lock (not reentrant) */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
}

const emptyIndex = (): ImageIndex => ({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });

export function openLayout(dir: string): Layout {
  const indexFile = path.join(dir, 'index.json');
  let ready: Promise<void> | undefined;

  async function doInit(): Promise<void> {
    await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    const layoutFile = path.join(dir, 'oci-layout');
    try {
      await readFile(layoutFile);
    } catch (e) {
      if (!hasErrno(e, 'ENOENT')) throw e;
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    }
    try {
      await readFile(indexFile);
    } catch (e) {
      if (!hasErrno(e, 'ENOENT')) throw e;
      await writeFileAtomic(indexFile, JSON.stringify(emptyIndex()));
    }
  }
  const init = (): Promise<void> =>
    (ready ??= doInit().catch((e: unknown) => {
      ready = undefined;
      throw e;
    }));

  async function readIndex(): Promise<ImageIndex> {
    await init();
    const text = await readFile(indexFile, 'utf8');
    try {
      const idx = JSON.parse(text) as ImageIndex;
      if (!Array.isArray(idx.manifests)) throw new Error('no manifests array');
      return idx;
    } catch (e) {
      throw internal(`image index ${indexFile} is corrupt: ${messageOf(e)}`, e);
    }
  }

  async function writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(indexFile, `${JSON.stringify(index, null, 2)}\n`);
  }

  /** Serialised within this process (in order) and between processes (a kernel-released lock). */
  async function withLock<T>(fn: () => Promise<T>): Promise<T> {
    await init();
    return withLockKey(`images:${path.resolve(dir)}`, fn);
  }

  return { dir, init, readIndex, writeIndex, withLock };
}

/** The name a descriptor of index.json gives, if any. */
export const nameOf = (d: Descriptor): string | undefined => d.annotations?.[REF_NAME];

/**
 * Points `name` at `manifest` in the index: the name leaves whatever image had it (an image left
 * without names stays as one unnamed descriptor), and an unnamed descriptor of the same manifest
 * is dropped. With no name, adds an unnamed descriptor unless the manifest is already there.
 */
export function setName(index: ImageIndex, manifest: Descriptor, name?: string): ImageIndex {
  const base: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  let manifests = index.manifests;
  if (name === undefined) {
    if (manifests.some((d) => d.digest === manifest.digest)) return index;
    return { ...index, manifests: [...manifests, base] };
  }
  const loser = manifests.find((d) => nameOf(d) === name && d.digest !== manifest.digest);
  manifests = manifests.filter((d) => nameOf(d) !== name && !(d.digest === manifest.digest && nameOf(d) === undefined));
  if (loser && !manifests.some((d) => d.digest === loser.digest)) {
    manifests.push({ mediaType: loser.mediaType, digest: loser.digest, size: loser.size });
  }
  manifests.push({ ...base, annotations: { [REF_NAME]: name } });
  return { ...index, manifests };
}
