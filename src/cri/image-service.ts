/**
 * The CRI ImageService over nspod's image store. An image's CRI id is its config digest (also
 * what Container.image_id and PullImageResponse.image_ref report); ImageStatus answers the same
 * image for a name (untagged = `:latest`), a short name under `localhost/`, an id, an id prefix
 * or a `repo@sha256:` digest, and an empty image (not an error) when there is none.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Runtime } from '../pod/index.js';
import { ensureBusyboxImage, parseReference, BUSYBOX_IMAGE } from '../image/index.js';
import type { ImageInfo } from '../image/index.js';
import { randomBytes } from 'node:crypto';
import { invalidArgument, isNspodError } from '../errors/index.js';
import { decodeAuth } from '../image/registry/config.js';
import { nowNs } from './convert.js';
import { serverStream, unary } from './status.js';

interface ImageSpecMsg {
  image?: string;
}

function refOf(spec: ImageSpecMsg | null | undefined, field: string): string {
  const ref = spec?.image ?? '';
  if (ref.trim() === '') throw invalidArgument(`${field}.image: required, got an empty value`);
  return ref.trim();
}

/** The image, or undefined when the store has none by that reference. */
export async function findImage(rt: Runtime, ref: string): Promise<ImageInfo | undefined> {
  try {
    return await rt.images.resolve(ref);
  } catch (e) {
    if (isNspodError(e, 'NOT_FOUND') || isNspodError(e, 'INVALID_ARGUMENT')) return undefined;
    throw e;
  }
}

function repoOf(name: string): string {
  const r = parseReference(name);
  return r.repository;
}

export async function criImage(rt: Runtime, info: ImageInfo): Promise<Record<string, unknown>> {
  const cfg = (await rt.images.config(info)).config ?? {};
  const user = (cfg.User ?? '').split(':')[0] ?? '';
  const numeric = /^\d+$/.test(user);
  return {
    id: info.id,
    repo_tags: [...info.names],
    repo_digests: [...new Set(info.names.map((n) => `${repoOf(n)}@${info.manifestDigest}`))],
    size: String(info.size),
    uid: numeric ? { value: user } : user === '' ? { value: '0' } : null,
    username: numeric ? '' : user,
    spec: { image: info.id, annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: info.id },
    pinned: false,
  };
}

export interface CriAuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

/**
 * PullImage: pulls `ref` from its registry with nspod's registry client (the built-in busybox is
 * made locally instead). The request's AuthConfig (username/password or `auth`) is used for this
 * pull only, through a private auth file that is removed afterwards; without one, nspod's auth
 * file and docker's are used as for `nspod pull`. Identity and registry tokens are refused.
 */
export async function pullImage(rt: Runtime, ref: string, auth?: CriAuthConfig | null): Promise<ImageInfo> {
  let parsed;
  try {
    parsed = parseReference(ref);
  } catch (e) {
    throw invalidArgument(`image.image: ${(e as Error).message}`, e);
  }
  // `busybox` is nspod's own (made from busybox-static), as for `nspod play`
  if (parsed.full === BUSYBOX_IMAGE || ref === 'busybox' || ref === 'busybox:latest') {
    await ensureBusyboxImage(rt.images);
    return rt.images.resolve(BUSYBOX_IMAGE);
  }
  if (auth?.identity_token || auth?.registry_token)
    throw invalidArgument('auth: identity_token and registry_token are not supported; give username and password');
  const creds = auth
    ? decodeAuth({
        ...(auth.auth ? { auth: auth.auth } : {}),
        ...(auth.username ? { username: auth.username, password: auth.password ?? '' } : {}),
      })
    : undefined;
  const { pullImage: pull, saveCredentials } = await import('../image/registry/index.js');
  let authFile: string | undefined;
  if (creds) {
    const dir = path.join(rt.config.runRoot, 'cri', 'auth');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    authFile = path.join(dir, `${randomBytes(8).toString('hex')}.json`);
    await saveCredentials(authFile, parsed.domain, creds);
  }
  try {
    // an auth file of our own only: NSPOD_AUTH_FILE keeps docker's config out of it
    const env = authFile ? { ...process.env, NSPOD_AUTH_FILE: authFile } : process.env;
    return (await pull(rt.images, parsed.full, { ...(authFile ? { authFile } : {}), env })).image;
  } finally {
    if (authFile) await fs.rm(authFile, { force: true });
  }
}

/** Bytes and inodes under a directory (hard links counted once). */
async function usage(dir: string): Promise<{ bytes: number; inodes: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await fs.lstat(p).catch(() => undefined);
      if (!st) continue;
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        inodes++;
        bytes += st.blocks * 512;
      }
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}

export function makeImageService(rt: Runtime): grpc.UntypedServiceImplementation {
  async function list(
    filter: { image?: ImageSpecMsg | null } | null | undefined,
  ): Promise<Array<Record<string, unknown>>> {
    const want = filter?.image?.image ?? '';
    let infos = await rt.images.list();
    if (want !== '') {
      const one = await findImage(rt, want);
      infos = one ? infos.filter((i) => i.id === one.id) : [];
    }
    return Promise.all(infos.map((i) => criImage(rt, i)));
  }

  return {
    ListImages: unary('ListImages', async (req: { filter?: { image?: ImageSpecMsg | null } | null }) => ({
      images: await list(req.filter),
    })),

    StreamImages: serverStream(
      'StreamImages',
      async function* (req: { filter?: { image?: ImageSpecMsg | null } | null }) {
        yield { images: await list(req.filter) };
      },
    ),

    ImageStatus: unary('ImageStatus', async (req: { image?: ImageSpecMsg | null; verbose?: boolean }) => {
      const info = await findImage(rt, refOf(req.image, 'image'));
      if (!info) return { image: null, info: {} };
      const out: Record<string, string> = {};
      if (req.verbose) {
        const cfg = await rt.images.config(info);
        out.info = JSON.stringify({
          imageSpec: cfg,
          manifestDigest: info.manifestDigest,
          layers: info.layers.map((l) => l.digest),
          created: info.created ?? '',
        });
      }
      return { image: await criImage(rt, info), info: out };
    }),

    PullImage: unary('PullImage', async (req: { image?: ImageSpecMsg | null; auth?: CriAuthConfig | null }) => {
      const info = await pullImage(rt, refOf(req.image, 'image'), req.auth);
      return { image_ref: info.id };
    }),

    RemoveImage: unary('RemoveImage', async (req: { image?: ImageSpecMsg | null }) => {
      const info = await findImage(rt, refOf(req.image, 'image'));
      if (!info) return {};
      const used = new Set((await rt.containerRecords()).map((c) => c.image.id));
      try {
        await rt.images.remove(info.id, { inUse: (id) => used.has(id) });
      } catch (e) {
        if (!isNspodError(e, 'NOT_FOUND')) throw e;
      }
      return {};
    }),

    ImageFsInfo: unary('ImageFsInfo', async () => {
      const root = rt.config.root;
      const dirs = [path.join(root, 'images'), path.join(root, 'layers')];
      let bytes = 0;
      let inodes = 0;
      for (const d of dirs) {
        const u = await usage(d);
        bytes += u.bytes;
        inodes += u.inodes;
      }
      // containers' writable layers only (their merged rootfs would count the image layers again)
      const ctr = { bytes: 0, inodes: 0 };
      for (const c of await rt.containerRecords()) {
        const u = await usage(path.join(root, 'containers', c.id, 'upper'));
        ctr.bytes += u.bytes;
        ctr.inodes += u.inodes;
      }
      return {
        image_filesystems: [
          {
            timestamp: nowNs(),
            fs_id: { mountpoint: path.join(root, 'images') },
            used_bytes: { value: String(bytes) },
            inodes_used: { value: String(inodes) },
          },
        ],
        container_filesystems: [
          {
            timestamp: nowNs(),
            fs_id: { mountpoint: root },
            used_bytes: { value: String(ctr.bytes) },
            inodes_used: { value: String(ctr.inodes) },
          },
        ],
      };
    }),
  };
}
