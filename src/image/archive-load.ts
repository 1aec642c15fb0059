/**
 * Loading archives into the store: an OCI archive (a tar of an image layout, nested indexes
 * resolved to this platform's manifest) or a `docker save` archive (`manifest.json` with
 * `<id>/layer.tar` files, or the blobs/ layout of newer docker), optionally gzip'd. Every file
 * is streamed into the blob store once; docker archives get an OCI manifest written for them.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { invalidArgument, messageOf, unavailable } from '../errors/index.js';
import { TarEntryError, readTar } from '../storage/index.js';
import type { ReadEntry } from '../storage/index.js';
import { setName } from './layout.js';
import { parseReference } from './reference.js';
import type { StoreInternals } from './store.js';
import { CONTAINERD_NAME, MediaType, REF_NAME, isIndexType, isManifestType, ociArch } from './types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageInfo, ImageManifest } from './types.js';

const MAX_JSON = 32 * 1024 * 1024;
const BLOB_PATH = /^blobs\/sha256\/([0-9a-f]{64})$/;

interface Contents {
  /** regular files stored as blobs, by archive path */
  files: Map<string, { digest: string; size: number }>;
  /** small JSON files kept in memory */
  json: Map<string, Buffer>;
  /** symlinks and hard links: archive path → archive path of the target */
  links: Map<string, string>;
}

const clean = (p: string): string =>
  path.posix
    .normalize(p)
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '');

async function readArchive(s: StoreInternals, file: string): Promise<Contents> {
  const fh = await open(file, 'r').catch((e: unknown) => {
    throw invalidArgument(`archive ${file} cannot be opened: ${messageOf(e)}`, e);
  });
  const magic = Buffer.alloc(4);
  try {
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (magic.readUInt32LE(0) === 0xfd2fb528)
    throw unavailable(`archive ${file}: zstd is not supported (this node has no zstd)`);
  const raw = createReadStream(file);
  let stream: Readable = raw;
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    stream = raw.pipe(createGunzip());
    raw.on('error', (e) => stream.destroy(e));
  }
  const c: Contents = { files: new Map(), json: new Map(), links: new Map() };
  const onEntry = async (e: ReadEntry): Promise<void> => {
    const p = clean(e.path);
    if (e.type === 'SymbolicLink') {
      c.links.set(p, clean(path.posix.join(path.posix.dirname(p), e.linkpath ?? '')));
    } else if (e.type === 'Link') {
      c.links.set(p, clean(e.linkpath ?? ''));
    } else if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
      const blob = BLOB_PATH.exec(p);
      if (blob) {
        c.files.set(p, await s.blobs.putBlob(e, `sha256:${blob[1]}`));
      } else if ((p.endsWith('.json') || p === 'oci-layout' || p === 'repositories') && e.size <= MAX_JSON) {
        const parts: Buffer[] = [];
        for await (const chunk of e as AsyncIterable<Buffer>) parts.push(chunk);
        const buf = Buffer.concat(parts);
        c.json.set(p, buf);
        c.files.set(p, await s.blobs.putBlob(buf)); // a docker config is a blob too
      } else {
        c.files.set(p, await s.blobs.putBlob(e));
      }
    }
  };
  try {
    await readTar(stream, onEntry, { label: `archive ${file}` });
  } catch (e) {
    if (e instanceof TarEntryError)
      throw invalidArgument(`archive ${file}: entry "${e.entry}": ${messageOf(e.cause)}`, e.cause);
    throw e;
  }
  return c;
}

function parseJson<T>(c: Contents, p: string, file: string): T {
  try {
    return JSON.parse(c.json.get(p)!.toString('utf8')) as T;
  } catch (e) {
    throw invalidArgument(`archive ${file}: ${p} is not valid JSON`, e);
  }
}

/** The name an OCI index descriptor carries, normalized, if it is a usable reference. */
function descriptorName(d: Descriptor): string | undefined {
  const raw = d.annotations?.[CONTAINERD_NAME] ?? d.annotations?.[REF_NAME];
  if (raw === undefined) return undefined;
  try {
    return parseReference(raw).full;
  } catch {
    return undefined;
  }
}

/** Follows nested indexes down to the image manifest for linux on this architecture. */
async function platformManifest(s: StoreInternals, d: Descriptor, file: string): Promise<Descriptor> {
  if (isManifestType(d.mediaType)) return d;
  if (!isIndexType(d.mediaType))
    throw invalidArgument(`archive ${file}: descriptor ${d.digest} has media type ${d.mediaType}`);
  const index = await s.blobs.readJson<ImageIndex>(d.digest);
  const arch = ociArch();
  const pick =
    index.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ??
    (index.manifests.length === 1 ? index.manifests[0] : undefined) ??
    index.manifests.find((m) => isIndexType(m.mediaType));
  if (!pick) throw invalidArgument(`archive ${file}: index ${d.digest} has no linux/${arch} image`);
  return platformManifest(s, pick, file);
}

async function requireBlobs(s: StoreInternals, m: ImageManifest, file: string): Promise<void> {
  for (const d of [m.config, ...m.layers]) {
    if (!(await s.blobs.hasBlob(d.digest))) throw invalidArgument(`archive ${file}: blob ${d.digest} is missing`);
  }
}

interface Loaded {
  manifest: Descriptor;
  names: string[];
}

async function fromOci(s: StoreInternals, c: Contents, file: string): Promise<Loaded[]> {
  const index = parseJson<ImageIndex>(c, 'index.json', file);
  const out: Loaded[] = [];
  for (const d of index.manifests ?? []) {
    const manifest = await platformManifest(s, d, file);
    await requireBlobs(s, await s.blobs.readJson<ImageManifest>(manifest.digest), file);
    const name = descriptorName(d);
    const known = out.find((l) => l.manifest.digest === manifest.digest);
    if (known) {
      if (name !== undefined) known.names.push(name);
    } else {
      out.push({
        manifest: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size },
        names: name ? [name] : [],
      });
    }
  }
  return out;
}

interface DockerItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function fromDocker(s: StoreInternals, c: Contents, file: string): Promise<Loaded[]> {
  const items = parseJson<DockerItem[]>(c, 'manifest.json', file);
  if (!Array.isArray(items)) throw invalidArgument(`archive ${file}: manifest.json is not a list`);
  const blobOf = (p: string): { digest: string; size: number } => {
    let q = clean(p);
    for (let i = 0; i < 40 && c.links.has(q); i++) q = c.links.get(q)!;
    const f = c.files.get(q);
    if (!f) throw invalidArgument(`archive ${file}: manifest.json names ${p}, which is not in the archive`);
    return f;
  };
  const out: Loaded[] = [];
  for (const item of items) {
    const cfg = blobOf(item.Config);
    const config = await s.blobs.readJson<ImageConfig>(cfg.digest);
    if ((config.rootfs?.diff_ids ?? []).length !== item.Layers.length) {
      throw invalidArgument(
        `archive ${file}: config ${item.Config} lists ${config.rootfs?.diff_ids?.length ?? 0} diff_ids for ${item.Layers.length} layers`,
      );
    }
    const layers: Descriptor[] = [];
    for (const l of item.Layers) {
      const b = blobOf(l);
      layers.push({ mediaType: await layerMediaType(s, b.digest), digest: b.digest, size: b.size });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const put = await s.blobs.putJson(manifest);
    const names: string[] = [];
    for (const t of item.RepoTags ?? []) {
      try {
        names.push(parseReference(t).full);
      } catch (e) {
        throw invalidArgument(`archive ${file}: repo tag "${t}" is not a valid reference`, e);
      }
    }
    out.push({ manifest: { mediaType: MediaType.ociManifest, digest: put.digest, size: put.size }, names });
  }
  return out;
}

/** docker stores layers as given: mostly plain tar, gzip'd in some archives */
async function layerMediaType(s: StoreInternals, digest: string): Promise<string> {
  const fh = await open(s.blobs.blobPath(digest), 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return MediaType.ociLayerGzip;
    if (bytesRead === 4 && b.readUInt32LE(0) === 0xfd2fb528) return MediaType.ociLayerZstd;
    return MediaType.ociLayer;
  } finally {
    await fh.close();
  }
}

/** Loads every image of the archive; the caller holds the store lock. */
export async function loadArchive(s: StoreInternals, file: string): Promise<ImageInfo[]> {
  const c = await readArchive(s, file);
  let loaded: Loaded[];
  if (c.json.has('index.json')) loaded = await fromOci(s, c, file);
  else if (c.json.has('manifest.json')) loaded = await fromDocker(s, c, file);
  else
    throw invalidArgument(
      `archive ${file} is neither an OCI archive (index.json) nor a docker archive (manifest.json)`,
    );
  if (loaded.length === 0) throw invalidArgument(`archive ${file} holds no image`);
  let index = await s.readIndex();
  for (const l of loaded) {
    if (l.names.length === 0) index = setName(index, l.manifest);
    for (const n of l.names) index = setName(index, l.manifest, n);
  }
  await s.writeIndex(index);
  const out: ImageInfo[] = [];
  for (const l of loaded) {
    const info = await s.infoOfManifest(l.manifest.digest);
    if (!out.some((i) => i.id === info.id)) out.push(info);
  }
  return out;
}
