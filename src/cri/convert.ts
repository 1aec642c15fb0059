/**
 * nspod's records and live statuses → CRI v1 messages (PodSandbox, Container, ContainerStatus …).
 * Timestamps are nanoseconds as decimal strings; ids are nspod's ids.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import type { ContainerStatus, PodStatus } from '../pod/index.js';
import type { RawResources } from '../spec/index.js';

/** ISO time → nanoseconds since the epoch, as a decimal string ("0" when unset). */
export function isoToNs(iso: string | undefined): string {
  if (!iso) return '0';
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? (BigInt(ms) * 1_000_000n).toString() : '0';
}

export function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

export function podMetadata(pod: PodRecord): Record<string, unknown> {
  return {
    name: pod.spec.criName ?? pod.name,
    uid: pod.uid,
    namespace: pod.namespace,
    attempt: pod.spec.attempt ?? 0,
  };
}

export function containerMetadata(rec: ContainerRecord): Record<string, unknown> {
  return { name: rec.spec.criName ?? rec.name, attempt: rec.spec.attempt ?? 0 };
}

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export function sandboxState(pod: PodRecord, st: PodStatus): SandboxState {
  return st.sandboxRunning && !pod.stoppedAt ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

export function podSandbox(pod: PodRecord, st: PodStatus): Record<string, unknown> {
  return {
    id: pod.id,
    metadata: podMetadata(pod),
    state: sandboxState(pod, st),
    created_at: isoToNs(pod.createdAt),
    labels: pod.spec.labels,
    annotations: pod.spec.annotations,
    runtime_handler: pod.spec.runtimeHandler ?? '',
  };
}

export type CriContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export function containerState(st: ContainerStatus): CriContainerState {
  switch (st.state) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
      return 'CONTAINER_RUNNING';
    case 'exited':
      return 'CONTAINER_EXITED';
    default:
      return 'CONTAINER_UNKNOWN';
  }
}

export function criContainer(rec: ContainerRecord, st: ContainerStatus): Record<string, unknown> {
  return {
    id: rec.id,
    pod_sandbox_id: rec.podId,
    metadata: containerMetadata(rec),
    image: { image: rec.spec.image, annotations: {}, user_specified_image: rec.spec.image },
    image_ref: rec.image.id,
    image_id: rec.image.id,
    state: containerState(st),
    created_at: isoToNs(rec.createdAt),
    labels: rec.spec.labels ?? {},
    annotations: rec.spec.annotations ?? {},
  };
}

export function criResources(r: RawResources | undefined, oomScoreAdj?: number): Record<string, unknown> {
  return {
    cpu_period: String(r?.cpuPeriod ?? 0),
    cpu_quota: String(r?.cpuQuota ?? 0),
    cpu_shares: String(r?.cpuShares ?? 0),
    memory_limit_in_bytes: String(r?.memoryLimitBytes ?? 0),
    oom_score_adj: String(oomScoreAdj ?? 0),
    cpuset_cpus: r?.cpusetCpus ?? '',
    cpuset_mems: r?.cpusetMems ?? '',
    hugepage_limits: (r?.hugepageLimits ?? []).map((h) => ({ page_size: h.pageSize, limit: String(h.limit) })),
    unified: r?.unified ?? {},
    memory_swap_limit_in_bytes: String(r?.memorySwapLimitBytes ?? 0),
  };
}

const PROPAGATION = {
  private: 'PROPAGATION_PRIVATE',
  rslave: 'PROPAGATION_HOST_TO_CONTAINER',
  rshared: 'PROPAGATION_BIDIRECTIONAL',
} as const;

const SIGNALS = new Set(
  'SIGABRT SIGALRM SIGBUS SIGCHLD SIGCLD SIGCONT SIGFPE SIGHUP SIGILL SIGINT SIGIO SIGIOT SIGKILL SIGPIPE SIGPOLL SIGPROF SIGPWR SIGQUIT SIGSEGV SIGSTKFLT SIGSTOP SIGSYS SIGTERM SIGTRAP SIGTSTP SIGTTIN SIGTTOU SIGURG SIGUSR1 SIGUSR2 SIGVTALRM SIGWINCH SIGXCPU SIGXFSZ'.split(
    ' ',
  ),
);

/** The user the container's process was started as, from its config.json. */
async function processUser(rec: ContainerRecord): Promise<{ uid: number; gid: number; additionalGids: number[] }> {
  try {
    const spec = JSON.parse(await fs.readFile(path.join(rec.bundle, 'config.json'), 'utf8')) as {
      process?: { user?: { uid?: number; gid?: number; additionalGids?: number[] } };
    };
    const u = spec.process?.user ?? {};
    return { uid: u.uid ?? 0, gid: u.gid ?? 0, additionalGids: u.additionalGids ?? [] };
  } catch {
    return { uid: 0, gid: 0, additionalGids: [] };
  }
}

/** Why a container is in its state: Completed, Error or OOMKilled once it exited. */
export function exitReason(st: ContainerStatus, oomKilled: boolean): string {
  if (st.state !== 'exited') return '';
  if (oomKilled) return 'OOMKilled';
  return st.exitCode === 0 ? 'Completed' : 'Error';
}

export async function criContainerStatus(
  rec: ContainerRecord,
  st: ContainerStatus,
  oomKilled: boolean,
): Promise<Record<string, unknown>> {
  const user = await processUser(rec);
  const reason = exitReason(st, oomKilled);
  // The exit time is the exit file's mtime, from the kernel's coarse clock, which can read a few
  // ms behind the start time taken when the runtime was asked to start: never report an exit
  // before the start.
  const started = isoToNs(st.startedAt);
  let finished = isoToNs(st.finishedAt);
  if (finished !== '0' && BigInt(finished) < BigInt(started)) finished = started;
  return {
    id: rec.id,
    metadata: containerMetadata(rec),
    state: containerState(st),
    created_at: isoToNs(rec.createdAt),
    started_at: started,
    finished_at: finished,
    exit_code: st.exitCode ?? 0,
    image: { image: rec.spec.image, annotations: {}, user_specified_image: rec.spec.image },
    image_ref: rec.image.id,
    image_id: rec.image.id,
    reason,
    message:
      reason === 'OOMKilled'
        ? 'the container was killed by the out-of-memory killer of its cgroup'
        : st.state === 'unknown'
          ? 'its monitor (conmon) is gone and no exit code was recorded'
          : '',
    labels: rec.spec.labels ?? {},
    annotations: rec.spec.annotations ?? {},
    mounts: (rec.spec.extras?.mounts ?? []).map((m) => ({
      container_path: m.containerPath,
      host_path: m.hostPath,
      readonly: m.readonly,
      selinux_relabel: false,
      propagation: PROPAGATION[m.propagation],
    })),
    log_path: rec.logPath,
    resources: { linux: criResources(rec.spec.extras?.resources, rec.spec.extras?.oomScoreAdj) },
    user: {
      linux: {
        uid: String(user.uid),
        gid: String(user.gid),
        supplemental_groups: user.additionalGids.map(String),
      },
    },
    stop_signal: SIGNALS.has(rec.stopSignal) ? rec.stopSignal : 'RUNTIME_DEFAULT',
  };
}

/** Label selector match (AND of equalities). */
export function matchLabels(
  labels: Record<string, string> | undefined,
  sel: Record<string, string> | undefined,
): boolean {
  for (const [k, v] of Object.entries(sel ?? {})) if ((labels ?? {})[k] !== v) return false;
  return true;
}
