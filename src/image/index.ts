/**
 * Image: the content-addressed image store.
 *
 * Vocabulary:
 * - a *blob* is immutable content named by its digest (`sha256:<hex>`): layers, configs,
 *   manifests. `putBlob` makes it visible only once its bytes are verified (temp + fsync + rename);
 * - the store IS an OCI image layout at `<root>/images` (`oci-layout`, `index.json`,
 *   `blobs/sha256/<hex>`); `index.json` has one manifest descriptor per *name*, the name in the
 *   `org.opencontainers.image.ref.name` annotation as a full normalized reference
 *   (`localhost/busybox:latest`); an image that lost its last name stays as an unnamed descriptor;
 * - an *image* is what a manifest points at; its *id* is its config digest. A *reference* is a
 *   docker-style name (`busybox` = `docker.io/library/busybox:latest`); `resolve` also takes an id,
 *   an id prefix (≥ 3 hex) and, podman-style, a short name found under `localhost/`;
 * - an *unpacked layer* is `<root>/layers/<diffId hex>/`, made by storage's `unpackLayer` the first
 *   time a container needs it (`layerDirs`), checked against the config's `rootfs.diff_ids`.
 *
 * Lifecycle: load/import/ensureBusyboxImage/createImage put blobs then name the manifest in
 * index.json → resolve/config/layerDirs while containers run → remove untags, and once no name is
 * left deletes the image and garbage-collects blobs and unpacked layers no other image uses
 * (refused with FAILED_PRECONDITION while a container uses it, unless forced).
 * Mutations hold one store lock (cross-process); readers need none (index.json is replaced
 * atomically). Blobs put outside the lock are protected from GC for a grace period. Temp dirs
 * and downloads a killed process left (named with their writer's pid and start time) are removed
 * by GC and by a store's first unpack or load once that process is gone (storage/leftovers.ts).
 */
export { openImageStore } from './store.js';
export type {
  CreateImageOptions,
  GcResult,
  ImageStore,
  OpenImageStoreOptions,
  RemoveOptions,
  RemoveResult,
} from './store.js';
export { normalizeReference, parseReference } from './reference.js';
export type { Reference } from './reference.js';
export { BUSYBOX_IMAGE, ensureBusyboxImage } from './busybox.js';
export type { EnsureBusyboxOptions } from './busybox.js';
export type { ImportOptions } from './import.js';
export type { PutResult } from './blobs.js';
export { MediaType, REF_NAME, ociArch } from './types.js';
export type {
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageInfo,
  ImageManifest,
  ImageRuntimeConfig,
  Platform,
} from './types.js';
