/**
 * supervisor/: what kubelet does for a pod, for pods run with `nspod play`: restart policies with
 * back-off, probes, init containers and native sidecars, OOM reasons, events. `runSupervisor` is
 * the daemon's loop (`nspod serve`); `ensureSupervisor` starts one in the background;
 * `podView` computes kubectl's view of a pod (READY, STATUS, RESTARTS) for the CLI.
 */
export {
  runSupervisor,
  ensureSupervisor,
  supervisorPid,
  readySupervisorPid,
  supervisorFiles,
  cliMainPath,
} from './daemon.js';
export type { SupervisorOptions, SupervisorFiles } from './daemon.js';
export { PodWorker } from './pod-worker.js';
export type { WorkerEnv } from './pod-worker.js';
export { markSupervised, newSupPodFor, readSupPod, backoffDelayMs, backoffConfig, isSidecar } from './state.js';
export type { SupPod, SupContainer, Terminated } from './state.js';
export { podView } from './view.js';
export type { PodView, ContainerView } from './view.js';
