/**
 * spec/: nspod's own model of a pod (PodSpec, ContainerSpec, … in types.ts) and the front doors
 * that convert into it.
 *
 * Vocabulary:
 * - a *PodSpec* is what nspod runs: names, images, commands, env, resources in base units
 *   (bytes, milli-CPUs), namespace modes (`pod` | `container` | `node`), security, restart policy.
 * - a *field path* names a place in the Kubernetes spelling of a pod
 *   (`spec.containers[1].resources.limits.memory`); every validation error starts with one.
 * - a *warning* is a field or document nspod understood but does not act on yet; it never stops
 *   a pod from being accepted. A wrong type or bad value is an error (INVALID_ARGUMENT), and only
 *   the first one found is reported.
 *
 * Lifecycle: a front door (`parsePodYaml` today, the CRI converter later) reads its input, fills
 * defaults the way Kubernetes does (namespace `default`, restartPolicy Always, a 30 s grace
 * period, hostname = pod name, requests = limits when unset), and ends with `validatePod`, the
 * invariants every PodSpec holds whatever door it came through.
 */
export * from './types.js';
export { parseQuantity, memoryBytes, cpuMilli } from './quantity.js';
export { parsePodYaml } from './kube.js';
export type { ParsePodYamlOptions, ParsedPods } from './kube.js';
export { validatePod, normalizeCapability, isDnsLabel, isDnsSubdomain, LINUX_CAPABILITIES } from './validate.js';
export { podSpecFromCri, containerSpecFromCri, rawResourcesFromCri, nspodName } from './cri.js';
export type * from './cri-types.js';
