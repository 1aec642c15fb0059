/**
 * Storage: turns image layers into directories and a container's root filesystem into an overlay.
 *
 * Vocabulary:
 * - a *layer blob* is a (possibly gzip'd) tar as stored in the image store; its *diffId* is the
 *   sha256 of the uncompressed tar, the name the image config gives it (`rootfs.diff_ids`);
 * - an *unpacked layer* is the directory a layer blob becomes, unpacked once and shared by every
 *   container whose image has it. OCI whiteouts inside it are already in overlayfs form: `.wh.x`
 *   becomes a 0/0 character device `x`, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on
 *   its directory (set with `setfattr` from the `attr` package, through the host adapter);
 * - a container's *rootfs* is `<root>/containers/<id>/rootfs`, an overlay whose lower dirs are the
 *   unpacked layers and whose `upper/` and `work/` beside it receive the container's writes.
 *
 * Lifecycle: `unpackLayer` (atomic: the layer dir appears whole or not at all; an entry that would
 * land outside it is refused and nothing is kept) → `createRootfs` (mkdir + mount; rolled back on
 * failure) → … → `removeRootfs` (unmount everything below the container dir, then delete it;
 * idempotent). Mounts go through the Host adapter; mount state is read from /proc/self/mountinfo.
 */
export { unpackLayer } from './unpack.js';
export type { UnpackLayerOptions, UnpackLayerResult } from './unpack.js';
export { isMounted, mountOverlay, mountsUnder, parseMountInfo, readMounts, unmount, unmountAll } from './overlay.js';
export type { MountInfo, MountOverlayOptions } from './overlay.js';
export { containerDir, createRootfs, createStorage, removeRootfs } from './rootfs.js';
export type { CreateRootfsOptions, Rootfs, Storage } from './rootfs.js';
export { TarEntryError, readTar } from './tar-read.js';
export type { ReadEntry, ReadTarResult } from './tar-read.js';
