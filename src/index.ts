/**
 * The library entry (`import … from 'nspod'`): the Runtime API the CLI and the CRI server use
 * (pods, containers, exec, stop, remove), the Pod YAML front door, pod inspection from /proc and
 * /sys, the image store's registry client, the supervisor, and the error type every call throws.
 * The CRI server is its own entry, `nspod/cri`, so that gRPC loads only for it.
 */
export * from './errors/index.js';
export * from './image/registry/index.js';
export { openRuntime, inspectPod, NAMESPACE_TYPES } from './pod/index.js';
export type {
  Runtime,
  RuntimeOptions,
  PlayOptions,
  PlayResult,
  PodStatus,
  ContainerStatus,
  ContainerState,
  PodState,
  PodInspect,
  NamespaceRow,
  CgroupNode,
  NamespaceType,
  ExecSyncOptions,
  ExecSyncResult,
} from './pod/index.js';
export { parsePodYaml, validatePod, parseQuantity, memoryBytes, cpuMilli } from './spec/index.js';
export type { ParsePodYamlOptions, ParsedPods, PodSpec, ContainerSpec } from './spec/index.js';
export { runSupervisor, ensureSupervisor, podView } from './supervisor/index.js';
export type { SupervisorOptions, PodView, ContainerView } from './supervisor/index.js';
export { openEventLog } from './events/index.js';
