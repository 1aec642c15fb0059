/**
 * Live status of containers and pods, read from the system rather than trusted from records.
 *
 *   container:  created ──start──▶ running ──exit──▶ exited(code)
 *                  │                                   ▲
 *                  └────────────── (never started) ────┘ removed with the pod
 *
 * A container is `running` while its conmon lives and no exit file exists; `exited` once conmon
 * wrote the exit file; `unknown` if its conmon vanished without writing one (host reboot, kill -9).
 * A pod is Running when every container runs, Exited when none does, Degraded in between,
 * Created before start.
 */
import { promises as fs } from 'node:fs';
import { readExitCode } from '../monitor/index.js';
import type { ContainerRecord, PodRecord, SandboxRecord } from '../state/index.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerStatus {
  id: string;
  name: string;
  podId: string;
  podName: string;
  image: string;
  imageId: string;
  state: ContainerState;
  exitCode?: number;
  pid?: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  logPath: string;
  cgroupPath: string;
}

export type PodState = 'Created' | 'Running' | 'Degraded' | 'Exited' | 'Stopped';

export interface PodStatus {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  state: PodState;
  createdAt: string;
  sandboxPid?: number;
  sandboxRunning: boolean;
  /** the pod's IP on its first network (absent with hostNetwork or when stopped) */
  ip?: string;
  /** CNI attachments and port mappings */
  network?: SandboxRecord['network'];
  cgroupPath: string;
  containers: ContainerStatus[];
  labels: Record<string, string>;
}

/** True if `pid` is alive and is the program `comm` (guards against pid reuse). */
export async function processIs(pid: number | undefined, comm: string): Promise<boolean> {
  if (!pid) return false;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return name === comm.slice(0, 15) && state !== 'Z';
  } catch {
    return false;
  }
}

async function mtimeIso(file: string): Promise<string | undefined> {
  try {
    return (await fs.stat(file)).mtime.toISOString();
  } catch {
    return undefined;
  }
}

export async function containerStatus(c: ContainerRecord, pod: PodRecord): Promise<ContainerStatus> {
  const base: ContainerStatus = {
    id: c.id,
    name: c.name,
    podId: pod.id,
    podName: pod.name,
    image: c.image.name,
    imageId: c.image.id,
    state: 'created',
    createdAt: c.createdAt,
    logPath: c.logPath,
    cgroupPath: c.cgroupPath,
  };
  if (c.startedAt) base.startedAt = c.startedAt;
  const code = await readExitCode(c.exitFile);
  if (code !== undefined) {
    base.state = 'exited';
    base.exitCode = code;
    const at = await mtimeIso(c.exitFile);
    if (at) base.finishedAt = at;
    return base;
  }
  if (!c.conmonPid) return base;
  if (await processIs(c.conmonPid, 'conmon')) {
    base.state = c.startedAt ? 'running' : 'created';
    if (c.pid) base.pid = c.pid;
    return base;
  }
  base.state = 'unknown';
  return base;
}

export function podState(pod: PodRecord, containers: ContainerStatus[]): PodState {
  if (containers.length === 0) return pod.stoppedAt ? 'Stopped' : 'Created';
  const running = containers.filter((c) => c.state === 'running').length;
  if (containers.every((c) => c.state === 'created')) return 'Created';
  if (running === containers.length) return 'Running';
  if (running === 0) return pod.stoppedAt ? 'Stopped' : 'Exited';
  return 'Degraded';
}
