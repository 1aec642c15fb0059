/**
 * Writing images to an OCI archive: a tar of an image layout (`oci-layout`, `index.json` with one
 * descriptor per name, `blobs/sha256/…`), plus a docker-style `manifest.json` so `docker load`
 * takes it too. Written to a temp file and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalidArgument } from '../errors/index.js';
import type { StoreInternals } from './store.js';
import { tarChunks } from './tar-writer.js';
import type { TarEntry } from './tar-writer.js';
import { REF_NAME } from './types.js';
import type { Descriptor, ImageIndex, ImageManifest } from './types.js';

const hexOf = (digest: string): string => digest.slice('sha256:'.length);

export async function saveArchive(s: StoreInternals, refs: string[], file: string): Promise<void> {
  if (refs.length === 0) throw invalidArgument('save needs at least one image');
  const index: ImageIndex = { schemaVersion: 2, manifests: [] };
  const docker: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const blobs: string[] = [];
  const addBlob = (d: string): void => {
    if (!blobs.includes(d)) blobs.push(d);
  };
  for (const ref of refs) {
    const { record, name } = await s.lookup(ref);
    const names = name !== undefined ? [name] : record.info.names;
    const desc: Descriptor = record.manifest;
    for (const n of names.length > 0 ? names : [undefined]) {
      if (index.manifests.some((d) => d.digest === desc.digest && d.annotations?.[REF_NAME] === n)) continue;
      index.manifests.push({ ...desc, ...(n !== undefined ? { annotations: { [REF_NAME]: n } } : {}) });
    }
    const m = await s.blobs.readJson<ImageManifest>(desc.digest);
    addBlob(desc.digest);
    addBlob(m.config.digest);
    m.layers.forEach((l) => addBlob(l.digest));
    const known = docker.find((d) => d.Config === `blobs/sha256/${hexOf(m.config.digest)}`);
    if (known) known.RepoTags.push(...names.filter((n) => !known.RepoTags.includes(n)));
    else {
      docker.push({
        Config: `blobs/sha256/${hexOf(m.config.digest)}`,
        RepoTags: [...names],
        Layers: m.layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`),
      });
    }
  }
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const entries: TarEntry[] = [
    { path: 'oci-layout', type: 'file', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', type: 'file', mode: 0o644, data: json(index) },
    { path: 'manifest.json', type: 'file', mode: 0o644, data: json(docker) },
    { path: 'blobs', type: 'dir', mode: 0o755 },
    { path: 'blobs/sha256', type: 'dir', mode: 0o755 },
  ];
  for (const d of blobs) {
    const p = s.blobs.blobPath(d);
    entries.push({ path: `blobs/sha256/${hexOf(d)}`, type: 'file', mode: 0o644, file: p, size: (await stat(p)).size });
  }
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await pipeline(Readable.from(tarChunks(entries)), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
