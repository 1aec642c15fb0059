/**
 * `localhost/busybox:latest`, built from the host's static busybox as a real OCI image: one gzip
 * layer (bin/busybox, a symlink per applet, /etc/passwd and /etc/group, the usual empty dirs)
 * with fixed mtimes and owners, so the same busybox always gives the same digests.
 */
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Host } from '../host/index.js';
import { failedPrecondition, isNspodError, messageOf } from '../errors/index.js';
import { putTarAsLayer, imageConfig } from './import.js';
import type { ImageStore } from './store.js';
import { tarChunks } from './tar-writer.js';
import type { TarEntry } from './tar-writer.js';
import type { ImageInfo } from './types.js';

export const BUSYBOX_IMAGE = 'localhost/busybox:latest';
/** 2024-01-01T00:00:00Z: every file of the image, and the image itself, date from then */
const EPOCH = 1_704_067_200;
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'www:x:33:33:www:/var/www:/bin/sh',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
].join('\n');
const GROUP = ['root:x:0:', 'www:x:33:', 'nogroup:x:65534:'].join('\n');

export interface EnsureBusyboxOptions {
  /** path of a static busybox; default /bin/busybox */
  busybox?: string;
  /** runs `busybox --list`; default: the store's host */
  host?: Host;
}

async function layerEntries(host: Host, busybox: string): Promise<TarEntry[]> {
  let size: number;
  try {
    size = (await stat(busybox)).size;
  } catch (e) {
    throw failedPrecondition(`cannot build ${BUSYBOX_IMAGE}: ${busybox}: ${messageOf(e)} (install busybox-static)`, e);
  }
  const listed = (await host.run(busybox, ['--list'])).stdout;
  const applets = [...new Set(listed.split('\n').map((l) => l.trim()))]
    .filter((a) => /^[A-Za-z0-9_.[\]-]+$/.test(a) && a !== 'busybox')
    .sort();
  const dir = (p: string, mode = 0o755, owner = 0): TarEntry => ({
    path: p,
    type: 'dir',
    mode,
    uid: owner,
    gid: owner,
  });
  const text = (p: string, s: string): TarEntry => ({
    path: p,
    type: 'file',
    mode: 0o644,
    data: Buffer.from(`${s}\n`),
  });
  const entries: TarEntry[] = [
    dir('bin'),
    { path: 'bin/busybox', type: 'file', mode: 0o755, file: busybox, size },
    ...applets.map((a): TarEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    dir('dev'),
    dir('etc'),
    text('etc/group', GROUP),
    text('etc/passwd', PASSWD),
    dir('home'),
    dir('proc'),
    dir('root', 0o700),
    dir('sys'),
    dir('tmp', 0o1777),
    dir('var'),
    dir('var/www', 0o755, 33),
  ];
  return entries.map((e) => ({ ...e, mtime: EPOCH }));
}

/** Returns `localhost/busybox:latest`, building it first when the store does not have it. */
export async function ensureBusyboxImage(store: ImageStore, opts: EnsureBusyboxOptions = {}): Promise<ImageInfo> {
  try {
    const found = await store.resolve(BUSYBOX_IMAGE);
    if (found.names.includes(BUSYBOX_IMAGE)) return found;
  } catch (e) {
    if (!isNspodError(e, 'NOT_FOUND')) throw e;
  }
  const entries = await layerEntries(opts.host ?? store.host, opts.busybox ?? '/bin/busybox');
  const layer = await putTarAsLayer(store, Readable.from(tarChunks(entries)));
  const created = new Date(EPOCH * 1000).toISOString();
  const config = imageConfig({
    diffIds: [layer.diffId],
    created,
    createdBy: 'nspod: busybox from the host',
    config: { Cmd: ['sh'], Env: [PATH] },
  });
  return store.createImage({ layers: [layer.descriptor], config, name: BUSYBOX_IMAGE });
}
