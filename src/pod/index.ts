/**
 * pod/: the pod and container lifecycle over the layers below (image, storage, network,
 * cgroups, oci, monitor, state). `openRuntime` builds the Runtime API that the CLI, the CRI
 * server and library users share.
 */
export { openRuntime } from './runtime.js';
export type { Runtime, RuntimeOptions, PlayOptions, PlayResult } from './runtime.js';
export type { PodStatus, ContainerStatus, ContainerState, PodState } from './status.js';
export { inspectPod, NAMESPACE_TYPES } from './inspect.js';
export type { PodInspect, NamespaceRow, CgroupNode, NamespaceType } from './inspect.js';
export { Rollback } from './rollback.js';
export { restartContainer } from './restart.js';
export { runHandler, netnsConnectPath, startNetnsRelay } from './handlers.js';
export type { HandlerResult, HandlerTarget } from './handlers.js';
export { stopContainer } from './container.js';
export { containerStatus, processIs } from './status.js';
export { descendants, MAX_EXEC_OUTPUT } from './exec-sync.js';
export type { ExecSyncOptions, ExecSyncResult } from './exec-sync.js';
