/**
 * A container's root filesystem: `<root>/containers/<id>/{upper,work,rootfs}` with the image's
 * unpacked layers as overlay lower dirs.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../host/index.js';
import { failedPrecondition, invalidArgument, messageOf } from '../errors/index.js';
import { mountOverlay, mountsUnder, unmountAll } from './overlay.js';

export interface CreateRootfsOptions {
  /** the nspod root (persistent state dir) */
  root: string;
  containerId: string;
  /** unpacked layer dirs, BOTTOM-most first (as the image lists them) */
  layerDirs: string[];
}

export interface Rootfs {
  /** the mounted, merged view: the container's `/` */
  rootfs: string;
  /** the container's writes */
  upper: string;
  work: string;
  /** `<root>/containers/<id>`, removed whole by removeRootfs */
  dir: string;
}

export interface Storage {
  /** Makes the dirs and mounts the overlay; on failure nothing is left behind. */
  createRootfs(opts: CreateRootfsOptions): Promise<Rootfs>;
  /** Unmounts and deletes the container's dir; succeeds when it is already gone. */
  removeRootfs(root: string, containerId: string): Promise<void>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function containerDir(root: string, containerId: string): string {
  if (!ID.test(containerId)) throw invalidArgument(`container id "${containerId}" is not a valid directory name`);
  return path.join(root, 'containers', containerId);
}

export function createStorage(host: Host): Storage {
  async function removeRootfs(root: string, containerId: string): Promise<void> {
    const dir = containerDir(root, containerId);
    await unmountAll(host, dir);
    const left = await mountsUnder(dir);
    if (left.length > 0) {
      throw failedPrecondition(`cannot remove rootfs of container "${containerId}": ${left[0]} is still mounted`);
    }
    await rm(dir, { recursive: true, force: true });
  }

  async function createRootfs(opts: CreateRootfsOptions): Promise<Rootfs> {
    const dir = containerDir(opts.root, opts.containerId);
    const fs: Rootfs = {
      dir,
      rootfs: path.join(dir, 'rootfs'),
      upper: path.join(dir, 'upper'),
      work: path.join(dir, 'work'),
    };
    try {
      await mkdir(path.dirname(dir), { recursive: true });
      await mkdir(dir);
    } catch (e) {
      throw failedPrecondition(`rootfs of container "${opts.containerId}" already exists at ${dir}`, e);
    }
    try {
      await Promise.all([mkdir(fs.rootfs), mkdir(fs.upper, { mode: 0o755 }), mkdir(fs.work, { mode: 0o700 })]);
      let lower = [...opts.layerDirs].reverse();
      if (lower.length === 0) {
        // an image with no layers (scratch import): overlayfs still wants a lower dir
        const empty = path.join(dir, 'empty');
        await mkdir(empty);
        lower = [empty];
      }
      await mountOverlay(host, { lowerDirs: lower, upperDir: fs.upper, workDir: fs.work, target: fs.rootfs });
      return fs;
    } catch (e) {
      const cause = messageOf(e);
      await removeRootfs(opts.root, opts.containerId).catch(() => undefined);
      throw failedPrecondition(`cannot mount overlay for container "${opts.containerId}": ${cause}`, e);
    }
  }

  return { createRootfs, removeRootfs };
}

/** `createStorage(host).createRootfs(opts)`, as a plain function. */
export function createRootfs(host: Host, opts: CreateRootfsOptions): Promise<Rootfs> {
  return createStorage(host).createRootfs(opts);
}

/** `createStorage(host).removeRootfs(root, containerId)`, as a plain function. */
export function removeRootfs(host: Host, root: string, containerId: string): Promise<void> {
  return createStorage(host).removeRootfs(root, containerId);
}
