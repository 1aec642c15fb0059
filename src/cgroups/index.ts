/**
 * cgroups: one cgroup per pod under nspod's parent, a child per container.
 *
 * Vocabulary
 * - A *layout* (`detectCgroups`) says which hierarchies the host has: cgroup v1 controller mounts
 *   (`/sys/fs/cgroup/memory`, possibly combined as `cpu,cpuacct`), named v1 hierarchies
 *   (`name=systemd`), and the cgroup2 mount. *Pure v2*: only cgroup2 carries controllers.
 *   *Hybrid*: v1 controllers plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`) with few or no
 *   controllers. Limits go to v1 files on v1 and hybrid hosts, to v2 files on pure v2 hosts.
 * - A *cgroup path* is relative to each hierarchy's root and the same in every hierarchy:
 *   `/nspod/pod-<id>` for a pod (`podCgroupPath`), `/nspod/pod-<id>/<name>` for a container
 *   (`containerCgroupPath`), which is also the OCI `linux.cgroupsPath` the runtime creates.
 * - *Limits* (`CgroupLimits`) are in kernel units; `limitsFromResources` derives a container's from
 *   its spec resources, `sumLimits` the pod's from its containers'.
 *
 * Lifecycle: `openCgroups({ layout, parent })` → `createPod(podPath, limits)` (the pod cgroup in
 * every hierarchy nspod uses, limits written) → the runtime creates each container's cgroup
 * below it → `stats`/`readLimits`/`procs` while it runs → the caller kills every process →
 * `removePod(podPath)` (deepest first, in every hierarchy; refuses while processes remain, naming
 * them) → `removeParentIfEmpty()` when the last pod is gone.
 *
 * Nothing outside the parent is ever written or removed. The pure computation (limits.ts) is
 * apart from the few functions that touch the filesystem (fs.ts); the hierarchy mount dirs come
 * from the layout, so tests run against a tmpdir and a fake mountinfo.
 */
export { detectCgroups, parseMountinfo, V1_CONTROLLERS } from './layout.js';
export type { CgroupLayout, DetectOptions, MountEntry } from './layout.js';
export {
  containerCgroupPath,
  DEFAULT_CPU_PERIOD_US,
  limitsFromResources,
  milliToQuota,
  milliToShares,
  normalizeParent,
  ociResources,
  podCgroupPath,
  sharesToWeight,
  sumLimits,
  v1Files,
  v2Files,
} from './limits.js';
export type { CgroupFile, CgroupLimits, OciCgroupResources } from './limits.js';
export { openCgroups } from './fs.js';
export type { Cgroups, CgroupStats, OpenCgroupsOptions } from './fs.js';
