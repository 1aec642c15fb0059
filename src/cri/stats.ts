/**
 * CRI stats from cgroups (cpu time, memory usage and working set, process count) and, for a pod,
 * its network interfaces as the kernel counts them inside its network namespace
 * (/proc/<sandbox pid>/net/dev).
 */
import { promises as fs } from 'node:fs';
import type { Runtime } from '../pod/index.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import { containerMetadata, nowNs, podMetadata } from './convert.js';

const u64 = (n: number): { value: string } => ({ value: String(Math.max(0, Math.round(n))) });

async function cgroupUsage(rt: Runtime, cgPath: string): Promise<{ cpu: object; memory: object; pids: number }> {
  const s = await rt.cgroups
    .stats(cgPath)
    .catch(() => ({ memoryBytes: 0, cpuUsageNs: 0, pids: 0, memoryLimitBytes: undefined }));
  const ts = nowNs();
  const mem: Record<string, unknown> = {
    timestamp: ts,
    working_set_bytes: u64(s.memoryBytes),
    usage_bytes: u64(s.memoryBytes),
  };
  if (s.memoryLimitBytes !== undefined) mem.available_bytes = u64(s.memoryLimitBytes - s.memoryBytes);
  return {
    cpu: { timestamp: ts, usage_core_nano_seconds: u64(s.cpuUsageNs) },
    memory: mem,
    pids: s.pids,
  };
}

export async function containerStats(rt: Runtime, rec: ContainerRecord): Promise<Record<string, unknown>> {
  const u = await cgroupUsage(rt, rec.cgroupPath);
  return {
    attributes: {
      id: rec.id,
      metadata: containerMetadata(rec),
      labels: rec.spec.labels ?? {},
      annotations: rec.spec.annotations ?? {},
    },
    cpu: u.cpu,
    memory: u.memory,
  };
}

/** /proc/net/dev of a process: bytes and errors per interface. */
export function parseNetDev(
  text: string,
): Array<{ name: string; rxBytes: number; rxErrors: number; txBytes: number; txErrors: number }> {
  return text
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':'))
    .map((l) => {
      const [name, rest] = l.split(':');
      const f = (rest ?? '').trim().split(/\s+/).map(Number);
      return {
        name: (name ?? '').trim(),
        rxBytes: f[0] ?? 0,
        rxErrors: f[2] ?? 0,
        txBytes: f[8] ?? 0,
        txErrors: f[10] ?? 0,
      };
    });
}

export async function podSandboxStats(rt: Runtime, pod: PodRecord): Promise<Record<string, unknown>> {
  const u = await cgroupUsage(rt, pod.sandbox.podCgroupPath);
  const containers = await Promise.all((await rt.containerRecords(pod.id)).map((r) => containerStats(rt, r)));
  let network: Record<string, unknown> | null = null;
  if (pod.sandbox.pid && pod.spec.namespaces.network === 'pod') {
    const text = await fs.readFile(`/proc/${pod.sandbox.pid}/net/dev`, 'utf8').catch(() => '');
    const ifs = parseNetDev(text)
      .filter((i) => i.name !== 'lo')
      .map((i) => ({
        name: i.name,
        rx_bytes: u64(i.rxBytes),
        rx_errors: u64(i.rxErrors),
        tx_bytes: u64(i.txBytes),
        tx_errors: u64(i.txErrors),
      }));
    const def = ifs.find((i) => i.name === 'eth0') ?? ifs[0] ?? null;
    network = { timestamp: nowNs(), default_interface: def, interfaces: ifs.filter((i) => i !== def) };
  }
  return {
    attributes: {
      id: pod.id,
      metadata: podMetadata(pod),
      labels: pod.spec.labels,
      annotations: pod.spec.annotations,
    },
    linux: {
      cpu: u.cpu,
      memory: u.memory,
      network,
      process: { timestamp: nowNs(), process_count: u64(u.pids) },
      containers,
    },
  };
}
