/**
 * The few functions that touch the cgroup filesystems. Every path they take is relative to a
 * hierarchy's root and must lie under nspod's parent (e.g. `/nspod/pod-…`): nothing outside it is
 * ever created, written or removed. The hierarchies come from a `CgroupLayout`, so tests point
 * them at a tmpdir with fixture files.
 */
import { mkdir, readFile, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition, hasErrno, invalidArgument, messageOf } from '../errors/index.js';
import type { CgroupLayout } from './layout.js';
import { normalizeParent, ociResources, v1Files, v2Files } from './limits.js';
import type { CgroupLimits, OciCgroupResources } from './limits.js';

export interface CgroupStats {
  /** current memory usage (v1 memory.usage_in_bytes, v2 memory.current) */
  memoryBytes: number;
  memoryLimitBytes?: number;
  /** total CPU time of the cgroup's tasks */
  cpuUsageNs: number;
  /** tasks in the cgroup and below (pids.current when the pids controller is there) */
  pids: number;
  oomKills?: number;
}

export interface Cgroups {
  readonly layout: CgroupLayout;
  /** normalized, e.g. `/nspod` */
  readonly parent: string;
  /** creates the pod cgroup in every hierarchy nspod uses and writes its limits */
  createPod(podPath: string, limits: CgroupLimits): Promise<void>;
  /** removes the pod cgroup and every cgroup below it in every hierarchy; gone already = fine */
  removePod(podPath: string): Promise<void>;
  /** removes the parent in every hierarchy when nothing is below it; true if none is left */
  removeParentIfEmpty(): Promise<boolean>;
  readLimits(cgPath: string): Promise<CgroupLimits>;
  stats(cgPath: string): Promise<CgroupStats>;
  /** every pid in the cgroup and below, in any hierarchy, sorted */
  procs(cgPath: string): Promise<number[]>;
  /** true when the cgroup exists in any hierarchy */
  exists(cgPath: string): Promise<boolean>;
  /** the absolute directories of a cgroup path in every mounted hierarchy (existing or not) */
  dirs(cgPath: string): string[];
  ociResources(limits: CgroupLimits): OciCgroupResources;
}

export interface OpenCgroupsOptions {
  layout: CgroupLayout;
  /** the cgroup under which every pod's cgroup is made, e.g. `nspod` */
  parent: string;
  /**
   * Removes one empty cgroup directory (default: rmdir). cgroupfs lets rmdir remove a directory
   * that still shows control files; a test on a plain filesystem passes a function that does too.
   */
  removeDir?: (dir: string) => Promise<void>;
}

/** The v1 hierarchies a pod cgroup is created in (when mounted). */
const V1_USED = ['memory', 'cpu', 'cpuacct', 'pids', 'cpuset', 'devices', 'freezer', 'blkio', 'name=systemd'];
const V2_WANTED = ['memory', 'cpu', 'pids', 'io', 'cpuset'];

async function readText(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/** A number from a cgroup file; `max`, -1 and the v1 "unlimited" page-counter values read as undefined. */
async function readLimitNum(file: string): Promise<number | undefined> {
  const s = await readText(file);
  if (s === undefined || s === '' || s === 'max') return undefined;
  const n = Number(s.split(/\s+/)[0]);
  if (!Number.isFinite(n) || n < 0 || n >= 2 ** 62) return undefined;
  return n;
}

async function readNum(file: string): Promise<number | undefined> {
  const s = await readText(file);
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** `key value` lines (cpu.stat, memory.events, memory.oom_control) → map. */
async function readKeyed(file: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const line of ((await readText(file)) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) m.set(k, Number(v));
  }
  return m;
}

async function writeCg(dir: string, file: string, value: string): Promise<void> {
  try {
    await writeFile(path.join(dir, file), value);
  } catch (e) {
    throw failedPrecondition(
      `cannot write ${JSON.stringify(value)} to cgroup file ${path.join(dir, file)}: ${messageOf(e)}`,
      e,
    );
  }
}

async function mkdirOne(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    if (!hasErrno(e, 'EEXIST')) throw failedPrecondition(`cannot create cgroup ${dir}: ${messageOf(e)}`, e);
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR')) return false;
    throw e;
  }
}

/** `dir` and every cgroup directory below it, deepest first; [] when `dir` is absent. */
async function treeDeepestFirst(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR')) return [];
    throw e;
  }
  const out: string[] = [];
  for (const ent of entries) if (ent.isDirectory()) out.push(...(await treeDeepestFirst(path.join(dir, ent.name))));
  out.push(dir);
  return out;
}

/** Path prefixes from the top: `/a/b/c` → [`/a`, `/a/b`, `/a/b/c`]. */
function levels(cgPath: string): string[] {
  const segs = cgPath.split('/').filter(Boolean);
  return segs.map((_, i) => '/' + segs.slice(0, i + 1).join('/'));
}

export function openCgroups(opts: OpenCgroupsOptions): Cgroups {
  const { layout } = opts;
  const parent = normalizeParent(opts.parent);
  const removeDir = opts.removeDir ?? ((dir: string) => rmdir(dir));

  /** Refuses any path that is not strictly below the parent (or the parent itself when allowed). */
  function checkPath(cgPath: string, allowParent = false): string {
    const segs = cgPath.split('/').filter(Boolean);
    if (segs.some((s) => s === '.' || s === '..'))
      throw invalidArgument(`invalid cgroup path ${JSON.stringify(cgPath)}`);
    const norm = '/' + segs.join('/');
    if (!(norm.startsWith(parent + '/') || (allowParent && norm === parent))) {
      throw invalidArgument(`cgroup path ${JSON.stringify(cgPath)} is not under nspod's parent ${parent}`);
    }
    return norm;
  }

  /** Every mount dir of the layout, each once (combined v1 mounts appear under several keys). */
  function allMounts(): string[] {
    const set = new Set(Object.values(layout.v1));
    if (layout.v2 !== undefined) set.add(layout.v2);
    return [...set];
  }

  /** Mount dirs a pod cgroup is created in: the v1 ones nspod uses (+ unified in hybrid), or the v2 one. */
  function usedMounts(): string[] {
    if (layout.version === 2) return layout.v2 === undefined ? [] : [layout.v2];
    const set = new Set<string>();
    for (const c of V1_USED) if (layout.v1[c] !== undefined) set.add(layout.v1[c]);
    if (layout.hybrid && layout.v2 !== undefined) set.add(layout.v2);
    return [...set];
  }

  const at = (mount: string, cgPath: string): string => path.join(mount, cgPath);

  /** v1 cpuset: an empty cpuset.cpus/mems takes its parent's, else the cgroup cannot take tasks. */
  async function fillCpuset(dir: string): Promise<void> {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const own = await readText(path.join(dir, f));
      if (own !== undefined && own !== '') continue;
      const up = await readText(path.join(path.dirname(dir), f));
      if (up !== undefined && up !== '') await writeCg(dir, f, up);
    }
  }

  async function createV1(podPath: string, limits: CgroupLimits): Promise<void> {
    const cpusetMount = layout.v1['cpuset'];
    for (const mount of usedMounts()) {
      for (const lvl of levels(podPath)) {
        await mkdirOne(at(mount, lvl));
        if (mount === cpusetMount) await fillCpuset(at(mount, lvl));
      }
    }
    for (const [file, value] of v1Files(limits)) {
      const controller = file.split('.')[0]!;
      const mount = layout.v1[controller];
      if (mount === undefined) {
        throw failedPrecondition(`cannot limit cgroup ${podPath}: the ${controller} controller is not mounted`);
      }
      await writeCg(at(mount, podPath), file, value);
    }
  }

  async function createV2(podPath: string, limits: CgroupLimits): Promise<void> {
    const mount = layout.v2!;
    const top = levels(parent).length - 1;
    let have: string[] = [];
    let podControllers: string[] = [];
    for (const [i, lvl] of levels(podPath).entries()) {
      const dir = at(mount, lvl);
      await mkdirOne(dir);
      // Levels above the parent are only created; the parent and the pod enable controllers below them.
      if (i < top) continue;
      if (i === top) have = ((await readText(path.join(dir, 'cgroup.controllers'))) ?? '').split(/\s+/);
      const want = V2_WANTED.filter((c) => have.includes(c));
      const current = ((await readText(path.join(dir, 'cgroup.subtree_control'))) ?? '').split(/\s+/);
      const missing = want.filter((c) => !current.includes(c));
      if (missing.length > 0) await writeCg(dir, 'cgroup.subtree_control', missing.map((c) => '+' + c).join(' '));
      podControllers = have;
      have = want;
    }
    for (const [file, value] of v2Files(limits)) {
      const controller = file.split('.')[0]!;
      if (!podControllers.includes(controller)) {
        throw failedPrecondition(
          `cannot limit cgroup ${podPath}: the ${controller} controller is not available on cgroup2`,
        );
      }
      await writeCg(at(mount, podPath), file, value);
    }
  }

  async function procsOf(cgPath: string): Promise<number[]> {
    const pids = new Set<number>();
    for (const mount of allMounts()) {
      for (const dir of await treeDeepestFirst(at(mount, cgPath))) {
        for (const s of ((await readText(path.join(dir, 'cgroup.procs'))) ?? '').split('\n')) {
          if (/^\d+$/.test(s.trim())) pids.add(Number(s.trim()));
        }
      }
    }
    return [...pids].sort((a, b) => a - b);
  }

  async function removeTree(cgPath: string): Promise<void> {
    const busy = await procsOf(cgPath);
    if (busy.length > 0) {
      throw failedPrecondition(`cannot remove cgroup ${cgPath}: processes still in it: ${busy.join(', ')}`);
    }
    for (const mount of allMounts()) {
      for (const dir of await treeDeepestFirst(at(mount, cgPath))) {
        try {
          await removeDir(dir);
        } catch (e) {
          if (hasErrno(e, 'ENOENT')) continue;
          const pids = await procsOf(cgPath);
          const why = pids.length > 0 ? `processes still in it: ${pids.join(', ')}` : messageOf(e);
          throw failedPrecondition(`cannot remove cgroup ${dir}: ${why}`, e);
        }
      }
    }
  }

  const cg: Cgroups = {
    layout,
    parent,

    async createPod(podPath, limits) {
      const p = checkPath(podPath);
      // The parent may be removed under us by the removal of the last other pod (it removes the
      // parent when no pod is recorded, and ours may be recorded just after it looked): again.
      for (let attempt = 0; ; attempt++) {
        try {
          if (layout.version === 2) await createV2(p, limits);
          else await createV1(p, limits);
          return;
        } catch (e) {
          if (attempt >= 3 || !(e instanceof Error && hasErrno(e.cause, 'ENOENT'))) throw e;
        }
      }
    },

    async removePod(podPath) {
      await removeTree(checkPath(podPath));
    },

    async removeParentIfEmpty() {
      let left = false;
      for (const mount of allMounts()) {
        try {
          await removeDir(at(mount, parent));
        } catch (e) {
          if (hasErrno(e, 'ENOENT')) continue;
          if (hasErrno(e, 'ENOTEMPTY') || hasErrno(e, 'EBUSY') || hasErrno(e, 'EEXIST')) left = true;
          else throw failedPrecondition(`cannot remove cgroup ${at(mount, parent)}: ${messageOf(e)}`, e);
        }
      }
      return !left;
    },

    async readLimits(cgPath) {
      const p = checkPath(cgPath, true);
      const out: CgroupLimits = {};
      const set = <K extends keyof CgroupLimits>(k: K, v: number | undefined): void => {
        if (v !== undefined) out[k] = v;
      };
      if (layout.version === 2) {
        const dir = at(layout.v2!, p);
        set('memoryBytes', await readLimitNum(path.join(dir, 'memory.max')));
        const cpuMax = (await readText(path.join(dir, 'cpu.max')))?.split(/\s+/);
        if (cpuMax && cpuMax[0] !== 'max' && cpuMax[0] !== undefined) {
          set('cpuQuotaUs', Number(cpuMax[0]));
          set('cpuPeriodUs', Number(cpuMax[1]));
        }
        set('cpuWeight', await readNum(path.join(dir, 'cpu.weight')));
        set('pidsMax', await readLimitNum(path.join(dir, 'pids.max')));
        return out;
      }
      const v1 = (c: string, f: string): string | undefined =>
        layout.v1[c] === undefined ? undefined : path.join(at(layout.v1[c], p), f);
      const num = async (f: string | undefined, limit = true): Promise<number | undefined> =>
        f === undefined ? undefined : limit ? readLimitNum(f) : readNum(f);
      set('memoryBytes', await num(v1('memory', 'memory.limit_in_bytes')));
      const quota = await num(v1('cpu', 'cpu.cfs_quota_us'));
      if (quota !== undefined) {
        set('cpuQuotaUs', quota);
        set('cpuPeriodUs', await num(v1('cpu', 'cpu.cfs_period_us')));
      }
      set('cpuShares', await num(v1('cpu', 'cpu.shares'), false));
      set('pidsMax', await num(v1('pids', 'pids.max')));
      return out;
    },

    async stats(cgPath) {
      const p = checkPath(cgPath, true);
      let memoryBytes: number | undefined;
      let memoryLimitBytes: number | undefined;
      let cpuUsageNs: number | undefined;
      let pidsCurrent: number | undefined;
      let oomKills: number | undefined;
      if (layout.version === 2) {
        const dir = at(layout.v2!, p);
        memoryBytes = await readNum(path.join(dir, 'memory.current'));
        memoryLimitBytes = await readLimitNum(path.join(dir, 'memory.max'));
        const usec = (await readKeyed(path.join(dir, 'cpu.stat'))).get('usage_usec');
        if (usec !== undefined) cpuUsageNs = usec * 1000;
        pidsCurrent = await readNum(path.join(dir, 'pids.current'));
        oomKills = (await readKeyed(path.join(dir, 'memory.events'))).get('oom_kill');
      } else {
        const mem = layout.v1['memory'] === undefined ? undefined : at(layout.v1['memory'], p);
        if (mem !== undefined) {
          memoryBytes = await readNum(path.join(mem, 'memory.usage_in_bytes'));
          memoryLimitBytes = await readLimitNum(path.join(mem, 'memory.limit_in_bytes'));
          oomKills = (await readKeyed(path.join(mem, 'memory.oom_control'))).get('oom_kill');
        }
        if (layout.v1['cpuacct'] !== undefined)
          cpuUsageNs = await readNum(path.join(at(layout.v1['cpuacct'], p), 'cpuacct.usage'));
        if (layout.v1['pids'] !== undefined)
          pidsCurrent = await readNum(path.join(at(layout.v1['pids'], p), 'pids.current'));
      }
      const out: CgroupStats = {
        memoryBytes: memoryBytes ?? 0,
        cpuUsageNs: cpuUsageNs ?? 0,
        pids: pidsCurrent ?? (await procsOf(p)).length,
      };
      if (memoryLimitBytes !== undefined) out.memoryLimitBytes = memoryLimitBytes;
      if (oomKills !== undefined) out.oomKills = oomKills;
      return out;
    },

    async procs(cgPath) {
      return procsOf(checkPath(cgPath, true));
    },

    async exists(cgPath) {
      const p = checkPath(cgPath, true);
      for (const mount of allMounts()) if (await isDir(at(mount, p))) return true;
      return false;
    },

    dirs(cgPath) {
      const p = checkPath(cgPath, true);
      return allMounts().map((m) => at(m, p));
    },

    ociResources,
  };
  return cg;
}
