/**
 * Making sure a container's image is in the store before its sandbox is made, by its
 * `imagePullPolicy`: Always pulls, IfNotPresent pulls what is missing, Never only looks. Unset
 * means IfNotPresent for every tag (Kubernetes would pull `:latest` always; nspod runs offline
 * from local images as often as not). `busybox` is built locally from busybox-static when absent.
 */
import { ensureBusyboxImage, parseReference } from '../image/index.js';
import type { ImageInfo, ImageStore } from '../image/index.js';
import { NspodError, failedPrecondition, isNspodError, messageOf, notFound } from '../errors/index.js';
import type { PullOptions } from '../image/registry/pull.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

const BUSYBOX = 'localhost/busybox:latest';

export interface EnsureImageOptions {
  policy?: PullPolicy;
  /** names the spec field in errors, e.g. `spec.containers[0].image` */
  field: string;
  pull?: Omit<PullOptions, 'onEvent'>;
  onPull?: (ref: string) => void;
}

function isBusybox(ref: string): boolean {
  if (ref === 'busybox' || ref === 'busybox:latest') return true;
  try {
    return parseReference(ref).full === BUSYBOX;
  } catch {
    return false;
  }
}

async function pull(images: ImageStore, ref: string, o: EnsureImageOptions, missing: boolean): Promise<ImageInfo> {
  o.onPull?.(ref);
  const { pullImage } = await import('../image/registry/pull.js');
  try {
    return (await pullImage(images, ref, o.pull ?? {})).image;
  } catch (e) {
    const code = e instanceof NspodError ? e.code : 'UNAVAILABLE';
    const what = missing ? 'is not present and cannot be pulled' : 'cannot be pulled';
    throw new NspodError(code, `${o.field}: image "${ref}" ${what}: ${messageOf(e)}`, { cause: e });
  }
}

/** The image for `ref`, pulled first when the policy says so (see the module doc). */
export async function ensureImage(images: ImageStore, ref: string, o: EnsureImageOptions): Promise<ImageInfo> {
  const policy = o.policy ?? 'IfNotPresent';
  if (policy === 'Always' && !isBusybox(ref)) return pull(images, ref, o, false);
  try {
    return await images.resolve(ref);
  } catch (e) {
    if (!isNspodError(e, 'NOT_FOUND')) throw e;
    if (isBusybox(ref)) {
      await ensureBusyboxImage(images);
      return images.resolve(BUSYBOX);
    }
    if (policy === 'Never') {
      throw failedPrecondition(`${o.field}: image "${ref}" is not present and imagePullPolicy is Never`, e);
    }
    try {
      parseReference(ref);
    } catch {
      throw notFound(`${o.field}: image "${ref}" is not in the local store`, e);
    }
    return pull(images, ref, o, true);
  }
}
