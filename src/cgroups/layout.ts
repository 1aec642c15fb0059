/**
 * Which cgroup hierarchies this host has, read from /proc/self/mountinfo: v1 controller mounts
 * (one per controller or combined like `cpu,cpuacct`), named v1 hierarchies (`name=systemd`) and
 * the cgroup2 mount. Pure v2, pure v1 and hybrid (v1 controllers plus a cgroup2 mount, usually at
 * /sys/fs/cgroup/unified) are all described by one `CgroupLayout`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { failedPrecondition, hasErrno } from '../errors/index.js';

export interface CgroupLayout {
  /** 2 when only cgroup2 carries controllers; 1 when v1 controllers are mounted (hybrid included) */
  version: 1 | 2;
  /** v1 controllers and a cgroup2 mount side by side */
  hybrid: boolean;
  /** v1 controller (or `name=systemd`) → its mount dir */
  v1: Record<string, string>;
  /** the cgroup2 mount dir */
  v2?: string;
  /** controllers available at the cgroup2 root (its cgroup.controllers) */
  v2Controllers: string[];
}

export const V1_CONTROLLERS = [
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'blkio',
  'perf_event',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
] as const;

const KNOWN_V1 = new Set<string>(V1_CONTROLLERS);

export interface MountEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo text (proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 4) continue;
    out.push({
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[sep + 1]!,
      superOptions: fields[sep + 3]!.split(','),
    });
  }
  return out;
}

function readControllers(dir: string): string[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

export interface DetectOptions {
  /** the text of /proc/self/mountinfo (default: read it) */
  mountinfo?: string;
}

/** Detects the cgroup layout; the first mount of each controller wins, mounts of the hierarchy root first. */
export function detectCgroups(opts: DetectOptions = {}): CgroupLayout {
  const text = opts.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
  const entries = parseMountinfo(text).filter((e) => e.fsType === 'cgroup' || e.fsType === 'cgroup2');
  // A mount of the hierarchy's root ("/") is preferred over a mount of a sub-cgroup.
  entries.sort((a, b) => Number(a.root !== '/') - Number(b.root !== '/'));
  const v1: Record<string, string> = {};
  let v2: string | undefined;
  for (const e of entries) {
    if (e.fsType === 'cgroup2') {
      v2 ??= e.mountPoint;
      continue;
    }
    for (const opt of e.superOptions) {
      if (KNOWN_V1.has(opt) || opt.startsWith('name=')) v1[opt] ??= e.mountPoint;
    }
  }
  const hasV1Controllers = Object.keys(v1).some((k) => !k.startsWith('name='));
  if (!hasV1Controllers && v2 === undefined) {
    throw failedPrecondition('no cgroup hierarchy is mounted (neither cgroup v1 controllers nor cgroup2)');
  }
  const layout: CgroupLayout = {
    version: hasV1Controllers ? 1 : 2,
    hybrid: hasV1Controllers && v2 !== undefined,
    v1,
    v2Controllers: v2 === undefined ? [] : readControllers(v2),
  };
  if (v2 !== undefined) layout.v2 = v2;
  return layout;
}
