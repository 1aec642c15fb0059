/**
 * What the supervisor knows about a pod beyond the runtime records: restart counts, the last
 * termination of each container, back-off timers, probe results. Kept in `<pod dir>/supervisor.json`;
 * its existence marks the pod as supervised (written by `nspod play`). Only the daemon writes it
 * afterwards; the CLI reads it for `pods` and `describe`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../state/index.js';
import type { PodRecord } from '../state/index.js';
import type { ContainerSpec } from '../spec/types.js';
import { hasErrno } from '../errors/index.js';

export type TerminatedReason = 'Completed' | 'Error' | 'OOMKilled';

export interface Terminated {
  exitCode: number;
  reason: TerminatedReason;
  startedAt?: string;
  finishedAt: string;
  /** why nspod killed it (liveness/startup probe, postStart hook), if it did */
  message?: string;
}

export interface SupContainer {
  restartCount: number;
  /** consecutive back-offs (reset after 10 minutes of running) */
  backoffStep: number;
  /** the conmon pid of the instance whose exit has been handled */
  handledConmonPid?: number;
  /** epoch ms before which it will not be restarted */
  restartAt?: number;
  waiting?: 'CrashLoopBackOff' | 'ContainerCreating' | 'PodInitializing';
  /** set while it is not running */
  terminated?: Terminated;
  lastState?: Terminated;
  ready: boolean;
  /** the startup probe passed (or there is none) */
  started: boolean;
  /** started at least once (sidecars: what lets the next init container go) */
  hasStarted?: boolean;
  /** terminated and will not be restarted (policy) */
  done?: boolean;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface SupPod {
  version: 1;
  podId: string;
  initDone: boolean;
  phase: PodPhase;
  /** sidecars were stopped because every app container finished */
  sidecarsStopped?: boolean;
  containers: Record<string, SupContainer>;
}

export const supFile = (pod: PodRecord): string => path.join(pod.dir, 'supervisor.json');

export const isSidecar = (c: ContainerSpec): boolean => c.restartPolicy === 'Always';

export const newSupPodFor = (pod: PodRecord): SupPod => newSupPod(pod);

export function newSupPod(pod: PodRecord): SupPod {
  return {
    version: 1,
    podId: pod.id,
    initDone: (pod.spec.initContainers ?? []).length === 0,
    phase: 'Pending',
    containers: {},
  };
}

export function newSupContainer(): SupContainer {
  return { restartCount: 0, backoffStep: 0, ready: false, started: false };
}

export async function readSupPod(pod: PodRecord): Promise<SupPod | undefined> {
  try {
    return JSON.parse(await fs.readFile(supFile(pod), 'utf8')) as SupPod;
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || e instanceof SyntaxError) return undefined;
    throw e;
  }
}

export async function writeSupPod(pod: PodRecord, s: SupPod): Promise<void> {
  await writeJsonAtomic(supFile(pod), s);
}

/** Marks a pod as supervised (done by `nspod play` before the daemon looks at it). */
export async function markSupervised(pod: PodRecord): Promise<void> {
  if (!(await readSupPod(pod))) await writeSupPod(pod, newSupPod(pod));
}

/** kubelet's back-off: none for the first restart, then base·2^(n-1) up to max. */
export function backoffDelayMs(step: number, baseMs: number, maxMs: number): number {
  if (step <= 0) return 0;
  return Math.min(baseMs * 2 ** (step - 1), maxMs);
}

export const BACKOFF_RESET_MS = 10 * 60 * 1000;

export function backoffConfig(env: NodeJS.ProcessEnv = process.env): { baseMs: number; maxMs: number } {
  const base = Number(env.NSPOD_BACKOFF_BASE_MS ?? 10_000);
  const baseMs = Number.isFinite(base) && base >= 0 ? base : 10_000;
  return { baseMs, maxMs: baseMs * 30 };
}
