/**
 * The container options only CRI sets (spec/extras.ts) applied to a built config.json: host
 * mounts with propagation, devices, seccomp, sysctls, masked/readonly paths, supplemental groups,
 * ambient capabilities, raw cgroup resources and oom_score_adj.
 *
 * `prepareExtras` does the host reads (realpath of mount sources, stat of devices, the seccomp
 * profile file) and fails with a one-line error naming the field; `applyExtras` is pure.
 */
import { promises as fs } from 'node:fs';
import { hasErrno, invalidArgument, messageOf } from '../errors/index.js';
import type { ContainerExtras, HostMount } from '../spec/extras.js';
import { normalizeCap } from './caps.js';
import { runtimeDefaultSeccomp } from './seccomp.js';
import type { OciDeviceCgroup, OciLinuxDevice, OciMount, OciSeccomp, OciSpec } from './types.js';

export interface PreparedExtras {
  /** mount sources with symlinks resolved */
  mounts: HostMount[];
  devices: OciLinuxDevice[];
  deviceRules: OciDeviceCgroup[];
  seccomp?: OciSeccomp;
}

/** Linux's major/minor split of a dev_t. */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Directories of /dev whose nodes are never handed to a container (as other runtimes do). */
const SKIP_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', 'hugepages', '.lxc', '.lxd-mounts', '.udev']);

/** Every character and block device under /dev (not symlinks), for privileged containers. */
export async function hostDeviceNodes(dir = '/dev'): Promise<OciLinuxDevice[]> {
  const out: OciLinuxDevice[] = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!SKIP_DEV_DIRS.has(e.name)) out.push(...(await hostDeviceNodes(p)));
      continue;
    }
    if (!e.isCharacterDevice() && !e.isBlockDevice()) continue;
    if (p === '/dev/console') continue;
    const st = await fs.lstat(p, { bigint: true }).catch(() => undefined);
    if (!st) continue;
    const { major, minor } = splitDev(st.rdev);
    out.push({
      path: p,
      type: e.isCharacterDevice() ? 'c' : 'b',
      major,
      minor,
      fileMode: Number(st.mode & 0o777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
  }
  return out;
}

export async function prepareExtras(x: ContainerExtras | undefined): Promise<PreparedExtras | undefined> {
  if (!x) return undefined;
  const mounts: HostMount[] = [];
  for (const [i, m] of (x.mounts ?? []).entries()) {
    try {
      mounts.push({ ...m, hostPath: await fs.realpath(m.hostPath) });
    } catch (e) {
      if (hasErrno(e, 'ENOENT'))
        throw invalidArgument(`mounts[${i}].host_path: "${m.hostPath}" does not exist on the host`, e);
      throw e;
    }
  }
  const devices: OciLinuxDevice[] = [];
  const deviceRules: OciDeviceCgroup[] = [];
  for (const [i, d] of (x.devices ?? []).entries()) {
    let st;
    try {
      st = await fs.stat(d.hostPath, { bigint: true });
    } catch (e) {
      throw invalidArgument(`devices[${i}].host_path: cannot stat "${d.hostPath}": ${messageOf(e)}`, e);
    }
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
    if (!type) throw invalidArgument(`devices[${i}].host_path: "${d.hostPath}" is not a character or block device`);
    const perms = d.permissions === '' ? 'rwm' : d.permissions;
    if (!/^[rwm]{1,3}$/.test(perms))
      throw invalidArgument(`devices[${i}].permissions: expected a subset of "rwm", got "${d.permissions}"`);
    const { major, minor } = splitDev(st.rdev);
    devices.push({
      path: d.containerPath,
      type,
      major,
      minor,
      fileMode: Number(st.mode & 0o777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
    deviceRules.push({ allow: true, type, major, minor, access: perms });
  }
  if (x.hostDevices) {
    const asked = new Set(devices.map((d) => d.path));
    devices.push(...(await hostDeviceNodes()).filter((d) => !asked.has(d.path)));
  }
  let seccomp: OciSeccomp | undefined;
  if (x.seccomp?.type === 'RuntimeDefault') seccomp = runtimeDefaultSeccomp();
  else if (x.seccomp?.type === 'Localhost') {
    const file = x.seccomp.path;
    try {
      seccomp = JSON.parse(await fs.readFile(file, 'utf8')) as OciSeccomp;
    } catch (e) {
      throw invalidArgument(`seccomp: cannot read the Localhost profile "${file}": ${messageOf(e)}`, e);
    }
    if (typeof seccomp.defaultAction !== 'string')
      throw invalidArgument(`seccomp: the Localhost profile "${file}" has no defaultAction`);
  }
  return { mounts, devices, deviceRules, ...(seccomp ? { seccomp } : {}) };
}

const depth = (p: string): number => p.split('/').filter(Boolean).length;

function hostMount(m: HostMount): OciMount {
  const prop = m.propagation === 'private' ? 'rprivate' : m.propagation;
  return {
    destination: m.containerPath,
    type: 'bind',
    source: m.hostPath,
    options: ['rbind', prop, ...(m.readonly ? ['ro'] : [])],
  };
}

export interface ApplyExtrasOptions {
  privileged: boolean;
  /** nspod's own oom_score_adj: a lower one needs CAP_SYS_RESOURCE */
  hostOomScoreAdj?: number;
  warnings: string[];
}

/** Applies the extras to `spec` in place. */
export function applyExtras(
  spec: OciSpec,
  x: ContainerExtras,
  prepared: PreparedExtras | undefined,
  o: ApplyExtrasOptions,
): void {
  const linux = spec.linux;
  const proc = spec.process;
  if (prepared && prepared.mounts.length > 0) {
    const ours = prepared.mounts.map(hostMount).sort((a, b) => depth(a.destination) - depth(b.destination));
    const dests = new Set(ours.map((m) => m.destination));
    spec.mounts = [...spec.mounts.filter((m) => !dests.has(m.destination)), ...ours];
    if (prepared.mounts.some((m) => m.propagation === 'rshared')) linux.rootfsPropagation = 'rshared';
    else if (prepared.mounts.some((m) => m.propagation === 'rslave')) linux.rootfsPropagation = 'rslave';
  }
  if (prepared && prepared.devices.length > 0) {
    linux.devices = [...(linux.devices ?? []), ...prepared.devices];
    if (!o.privileged) {
      linux.resources = { ...linux.resources, devices: [...(linux.resources?.devices ?? []), ...prepared.deviceRules] };
    }
  }
  if (x.supplementalGroups && x.supplementalGroups.length > 0) {
    proc.user.additionalGids = [...new Set([...(proc.user.additionalGids ?? []), ...x.supplementalGroups])];
  }
  if (!o.privileged) {
    if (x.maskedPaths && x.maskedPaths.length > 0) linux.maskedPaths = [...x.maskedPaths];
    if (x.readonlyPaths && x.readonlyPaths.length > 0) linux.readonlyPaths = [...x.readonlyPaths];
    if (prepared?.seccomp) linux.seccomp = prepared.seccomp;
  }
  if (x.sysctls && Object.keys(x.sysctls).length > 0) linux.sysctl = { ...linux.sysctl, ...x.sysctls };
  if (x.ambientCapabilities && x.ambientCapabilities.length > 0 && proc.capabilities) {
    const caps = proc.capabilities;
    const amb = x.ambientCapabilities.map(normalizeCap).filter((c) => caps.permitted.includes(c));
    caps.ambient = [...new Set([...caps.ambient, ...amb])];
    caps.inheritable = [...new Set([...caps.inheritable, ...amb])];
  }
  const r = x.resources;
  if (r) {
    const res = { ...linux.resources };
    const cpu = { ...res.cpu };
    if (r.cpuShares) cpu.shares = r.cpuShares;
    if (r.cpuQuota) cpu.quota = r.cpuQuota;
    if (r.cpuPeriod) cpu.period = r.cpuPeriod;
    if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
    if (r.cpusetMems) cpu.mems = r.cpusetMems;
    if (Object.keys(cpu).length > 0) res.cpu = cpu;
    if (r.memoryLimitBytes) {
      res.memory = { ...res.memory, limit: r.memoryLimitBytes };
      if (r.memorySwapLimitBytes) res.memory.swap = r.memorySwapLimitBytes;
    }
    if (r.hugepageLimits && r.hugepageLimits.length > 0) res.hugepageLimits = r.hugepageLimits.map((h) => ({ ...h }));
    if (r.unified && Object.keys(r.unified).length > 0) res.unified = { ...r.unified };
    linux.resources = res;
  }
  if (x.oomScoreAdj !== undefined) {
    const own = o.hostOomScoreAdj ?? 0;
    if (x.oomScoreAdj < own) {
      o.warnings.push(
        `oom_score_adj ${x.oomScoreAdj} is below nspod's own (${own}), which needs CAP_SYS_RESOURCE; left out`,
      );
    } else proc.oomScoreAdj = x.oomScoreAdj;
  }
}
