/**
 * oci: the OCI runtime-spec `config.json` builder and the runc/crun driver.
 *
 * Vocabulary
 * - A *bundle* is a directory with `config.json` and (usually) the rootfs; `buildConfig` makes
 *   the config from a container's spec, its image config and the pod's shared parts: namespaces
 *   to create (no path) or join (a pinned path), the cgroup path, the pod's hosts/resolv.conf/
 *   hostname files and /dev/shm. It is pure: the user is resolved beforehand (`resolveUser` in
 *   the rootfs's /etc/passwd and /etc/group, or `buildConfigFor` which does it), and the host's
 *   limits come in the input. What the host would refuse (an oom_score_adj below nspod's own, a
 *   capability outside its bounding set) is left out and reported in `warnings`.
 * - The *runtime* is runc or crun; `detectRuntime` picks the first candidate that really runs a
 *   trivial container here and caches the verdict per binary (path + mtime) for the boot.
 * - The *runtime root* (`<runRoot>/runtime`) is nspod's own state dir for the runtime, passed as
 *   `--root` on every call (`runtimeGlobalArgs`).
 *
 * Lifecycle of a container through the driver: `create` (the runtime sets up namespaces, mounts
 * and cgroup and waits) → `start` (the process runs) → `state` / `exec` / `kill` → `delete`
 * (idempotent; `force` kills what still runs). conmon usually calls `create` itself.
 */
import { hostBoundingCaps } from './caps.js';
import { buildConfig } from './config.js';
import type { BuildConfigInput, BuildResult } from './config.js';
import { resolveUser, userSpecFor } from './user.js';
import type { ResolvedUser } from './user.js';

export { ALL_CAPS, DEFAULT_CAPS, capsFromMask, computeCaps, hostBoundingCaps, normalizeCap } from './caps.js';
export {
  buildConfig,
  DEFAULT_DEVICE_RULES,
  DEFAULT_PATH,
  MASKED_PATHS,
  MAX_NOFILE,
  mergeEnv,
  OCI_VERSION,
  processArgs,
  READONLY_PATHS,
} from './config.js';
export type { BuildConfigInput, BuildResult } from './config.js';
export { parseGroup, parsePasswd, resolveInRoot, resolveUser, resolveUserIn, userSpecFor } from './user.js';
export type { GroupEntry, PasswdEntry, ResolvedUser } from './user.js';
export { runtimeDriver, runtimeGlobalArgs, runtimeMessage, runtimeRootFor } from './runtime.js';
export type { CreateOptions, ExecOptions, RuntimeDriver, RuntimeInfo } from './runtime.js';
export { DEFAULT_CANDIDATES, cachedRuntime, detectRuntime } from './detect.js';
export { applyExtras, hostDeviceNodes, prepareExtras, splitDev } from './extras.js';
export type { ApplyExtrasOptions, PreparedExtras } from './extras.js';
export { DENIED_SYSCALLS, runtimeDefaultSeccomp } from './seccomp.js';
export type { DetectedRuntime, DetectRuntimeOptions } from './detect.js';
export type * from './types.js';

/**
 * `buildConfig` with the user resolved in the rootfs (runAsUser/runAsGroup over the image's
 * User) and the capability set limited to this process's bounding set, unless given.
 */
export async function buildConfigFor(
  input: Omit<BuildConfigInput, 'user'> & { user?: ResolvedUser },
): Promise<BuildResult> {
  const user =
    input.user ?? (await resolveUser(input.rootfs, userSpecFor(input.image.User, input.container.securityContext)));
  return buildConfig({ ...input, user, availableCaps: input.availableCaps ?? hostBoundingCaps() });
}
