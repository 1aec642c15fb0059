/**
 * Pure cgroup computation: paths, limits from a container's resources, the pod parent's sum, and
 * the files that express limits on v1 and on v2. No I/O here.
 */
import { invalidArgument } from '../errors/index.js';
import type { Resources } from '../spec/types.js';

/** Limits in kernel units. An absent field means "not limited" (the kernel default stays). */
export interface CgroupLimits {
  memoryBytes?: number;
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  /** v1 cpu.shares (2..262144); converted to cpu.weight on v2 */
  cpuShares?: number;
  /** v2 cpu.weight as read back from a v2 cgroup by readLimits; when writing, it wins over cpuShares */
  cpuWeight?: number;
  pidsMax?: number;
}

/** The OCI runtime-spec `linux.resources` parts that cgroup limits map to. */
export interface OciCgroupResources {
  memory?: { limit?: number };
  cpu?: { shares?: number; quota?: number; period?: number };
  pids?: { limit: number };
}

export const DEFAULT_CPU_PERIOD_US = 100_000;
/** Kubernetes' floor for a CFS quota (1ms). */
export const MIN_CPU_QUOTA_US = 1_000;
export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262_144;

function checkSegment(what: string, s: string): void {
  if (s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\0') || s.includes('\n')) {
    throw invalidArgument(`invalid cgroup ${what} ${JSON.stringify(s)}`);
  }
}

/** `nspod`, `/nspod/`, `a/b` → `/nspod`, `/a/b` (every segment checked). */
export function normalizeParent(parent: string): string {
  const segs = parent.split('/').filter((s) => s !== '');
  if (segs.length === 0) throw invalidArgument(`invalid cgroup parent ${JSON.stringify(parent)}`);
  for (const s of segs) checkSegment('parent segment', s);
  return '/' + segs.join('/');
}

/** The pod's cgroup path, relative to each hierarchy's root: `/nspod/pod-<id>`. */
export function podCgroupPath(parent: string, podId: string): string {
  checkSegment('pod id', podId);
  return `${normalizeParent(parent)}/pod-${podId}`;
}

/** A container's cgroup path under its pod: `/nspod/pod-<id>/<name>`. */
export function containerCgroupPath(parent: string, podId: string, containerName: string): string {
  checkSegment('container name', containerName);
  return `${podCgroupPath(parent, podId)}/${containerName}`;
}

/** CPU shares from milli-CPUs as Kubernetes computes them (milli*1024/1000, at least 2). */
export function milliToShares(milli: number): number {
  const shares = Math.floor((milli * 1024) / 1000);
  return Math.min(MAX_CPU_SHARES, Math.max(MIN_CPU_SHARES, shares));
}

/** CFS quota for a milli-CPU limit over a period (at least 1ms, as Kubernetes). */
export function milliToQuota(milli: number, periodUs = DEFAULT_CPU_PERIOD_US): number {
  return Math.max(MIN_CPU_QUOTA_US, Math.floor((milli * periodUs) / 1000));
}

/** A container's cgroup limits: memory and CPU limits from `limits`, shares from `requests.cpu`. */
export function limitsFromResources(r: Resources): CgroupLimits {
  const out: CgroupLimits = {};
  if (r.limits.memoryBytes !== undefined && r.limits.memoryBytes > 0) out.memoryBytes = r.limits.memoryBytes;
  if (r.limits.cpuMilli !== undefined && r.limits.cpuMilli > 0) {
    out.cpuPeriodUs = DEFAULT_CPU_PERIOD_US;
    out.cpuQuotaUs = milliToQuota(r.limits.cpuMilli);
  }
  if (r.requests.cpuMilli !== undefined) out.cpuShares = milliToShares(r.requests.cpuMilli);
  return out;
}

/**
 * The pod parent's limits: a field is set only when every container sets it (one unlimited
 * container makes the pod unlimited for that resource). Quotas are summed over a common period.
 */
export function sumLimits(list: readonly CgroupLimits[]): CgroupLimits {
  if (list.length === 0) return {};
  const all = <K extends keyof CgroupLimits>(k: K): boolean => list.every((l) => l[k] !== undefined);
  const sum = (f: (l: CgroupLimits) => number): number => list.reduce((acc, l) => acc + f(l), 0);
  const out: CgroupLimits = {};
  if (all('memoryBytes')) out.memoryBytes = sum((l) => l.memoryBytes!);
  if (all('cpuQuotaUs')) {
    const periods = new Set(list.map((l) => l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US));
    const period = periods.size === 1 ? [...periods][0]! : DEFAULT_CPU_PERIOD_US;
    out.cpuPeriodUs = period;
    out.cpuQuotaUs = Math.round(sum((l) => (l.cpuQuotaUs! * period) / (l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US)));
  }
  if (all('cpuShares'))
    out.cpuShares = Math.min(
      MAX_CPU_SHARES,
      sum((l) => l.cpuShares!),
    );
  if (all('pidsMax')) out.pidsMax = sum((l) => l.pidsMax!);
  return out;
}

/** v1 cpu.shares → v2 cpu.weight, the conversion runc and Kubernetes use (0 stays 0 = unset). */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export type CgroupFile = [file: string, value: string];

/** The v1 files that express these limits (period before quota, as the kernel checks the ratio). */
export function v1Files(l: CgroupLimits): CgroupFile[] {
  const out: CgroupFile[] = [];
  if (l.memoryBytes !== undefined) out.push(['memory.limit_in_bytes', String(l.memoryBytes)]);
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
    out.push(['cpu.cfs_period_us', String(l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US)]);
  }
  if (l.cpuQuotaUs !== undefined) out.push(['cpu.cfs_quota_us', String(l.cpuQuotaUs)]);
  if (l.cpuShares !== undefined) out.push(['cpu.shares', String(l.cpuShares)]);
  if (l.pidsMax !== undefined) out.push(['pids.max', String(l.pidsMax)]);
  return out;
}

/** The v2 files that express these limits. */
export function v2Files(l: CgroupLimits): CgroupFile[] {
  const out: CgroupFile[] = [];
  if (l.memoryBytes !== undefined) out.push(['memory.max', String(l.memoryBytes)]);
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
    const quota = l.cpuQuotaUs === undefined ? 'max' : String(l.cpuQuotaUs);
    out.push(['cpu.max', `${quota} ${l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US}`]);
  }
  const weight = l.cpuWeight ?? (l.cpuShares !== undefined ? sharesToWeight(l.cpuShares) : undefined);
  if (weight !== undefined && weight > 0) out.push(['cpu.weight', String(weight)]);
  if (l.pidsMax !== undefined) out.push(['pids.max', String(l.pidsMax)]);
  return out;
}

/** The OCI `linux.resources` for a container (runc/crun convert shares to weight on v2 themselves). */
export function ociResources(l: CgroupLimits): OciCgroupResources {
  const out: OciCgroupResources = {};
  if (l.memoryBytes !== undefined) out.memory = { limit: l.memoryBytes };
  const cpu: NonNullable<OciCgroupResources['cpu']> = {};
  if (l.cpuShares !== undefined) cpu.shares = l.cpuShares;
  if (l.cpuQuotaUs !== undefined) cpu.quota = l.cpuQuotaUs;
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) cpu.period = l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (l.pidsMax !== undefined) out.pids = { limit: l.pidsMax };
  return out;
}
