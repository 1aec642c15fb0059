/**
 * What `inspect pod` shows, read from the system the way `lsns` and `systemd-cgls` would:
 * for each namespace type, the inode each process of the pod holds (from /proc/<pid>/ns/<type>),
 * and the pod's cgroup tree with the limits written in the cgroup files.
 */
import { describeVolumes, volumeStores } from './volumes.js';
import type { VolumeRow } from './volumes.js';
import { promises as fs } from 'node:fs';
import type { Runtime } from './runtime.js';
import type { PodStatus } from './status.js';
import type { CgroupLimits } from '../cgroups/index.js';
import { PAUSE_NAME } from './sandbox.js';
import { isMountPoint } from '../network/index.js';
import type { PortMapping } from '../network/cni/index.js';
import type { Host } from '../host/index.js';

export const NAMESPACE_TYPES = ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup', 'user'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

export interface NamespaceRow {
  type: NamespaceType;
  inode: number;
  /** which of the pod's processes (pause, app, sidecar, …) hold it */
  holders: string[];
  /** true when it is the host's own (nspod's) namespace */
  host: boolean;
}

export interface CgroupNode {
  name: string;
  path: string;
  limits: CgroupLimits;
  pids: number[];
  children: CgroupNode[];
}

/** The pod's network as its network namespace has it (`ip addr` / `ip route` inside it). */
export interface NetworkInspect {
  ip?: string;
  networks: string[];
  interfaces: Array<{ name: string; mac?: string; state?: string; addresses: string[] }>;
  routes: Array<{ dst: string; via?: string; dev?: string }>;
  ports: PortMapping[];
}

export interface PodInspect {
  pod: PodStatus;
  hostname: string;
  namespaces: NamespaceRow[];
  cgroups: CgroupNode;
  /** absent for hostNetwork pods and stopped pods */
  network?: NetworkInspect;
  /** the pod's volumes and where each is mounted (absent when it has none) */
  volumes?: VolumeRow[];
}

interface IpAddr {
  ifname: string;
  address?: string;
  operstate?: string;
  addr_info?: Array<{ local: string; prefixlen: number; family: string }>;
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

async function networkInspect(host: Host, netns: string, pod: PodStatus): Promise<NetworkInspect | undefined> {
  if (!(await isMountPoint(netns))) return undefined;
  const run = async (args: string[]) =>
    JSON.parse((await host.run('nsenter', [`--net=${netns}`, 'ip', '-j', ...args])).stdout || '[]') as unknown;
  const addrs = (await run(['addr', 'show'])) as IpAddr[];
  const routes = [
    ...((await run(['-4', 'route', 'show'])) as IpRoute[]),
    ...((await run(['-6', 'route', 'show'])) as IpRoute[]),
  ];
  return {
    ...(pod.ip ? { ip: pod.ip } : {}),
    networks: pod.network?.attachments.map((a) => a.network) ?? [],
    interfaces: addrs.map((a) => ({
      name: a.ifname,
      ...(a.address ? { mac: a.address } : {}),
      ...(a.operstate ? { state: a.operstate } : {}),
      addresses: (a.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`),
    })),
    routes: routes.map((r) => ({
      dst: r.dst,
      ...(r.gateway ? { via: r.gateway } : {}),
      ...(r.dev ? { dev: r.dev } : {}),
    })),
    ports: pod.network?.portMappings ?? [],
  };
}

export async function nsInode(pid: number | 'self', type: NamespaceType): Promise<number | undefined> {
  try {
    const link = await fs.readlink(`/proc/${pid}/ns/${type}`);
    const m = /\[(\d+)\]/.exec(link);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function inspectPod(rt: Runtime, ref: string, namespace?: string): Promise<PodInspect> {
  const record = await rt.podRecord(ref, namespace);
  const pod = await rt.podStatus(record.id);
  const procs: Array<{ name: string; pid: number }> = [];
  if (pod.sandboxRunning && pod.sandboxPid) procs.push({ name: 'pause', pid: pod.sandboxPid });
  for (const c of pod.containers) if (c.state === 'running' && c.pid) procs.push({ name: c.name, pid: c.pid });

  const namespaces: NamespaceRow[] = [];
  for (const type of NAMESPACE_TYPES) {
    const hostIno = await nsInode('self', type);
    const byInode = new Map<number, string[]>();
    for (const p of procs) {
      const ino = await nsInode(p.pid, type);
      if (ino === undefined) continue;
      byInode.set(ino, [...(byInode.get(ino) ?? []), p.name]);
    }
    for (const [inode, holders] of byInode) namespaces.push({ type, inode, holders, host: inode === hostIno });
  }

  const node = async (name: string, path: string): Promise<CgroupNode> => ({
    name,
    path,
    limits: (await rt.cgroups.exists(path)) ? await rt.cgroups.readLimits(path) : {},
    pids: (await rt.cgroups.exists(path)) ? await rt.cgroups.procs(path) : [],
    children: [],
  });
  const root = await node(pod.cgroupPath.split('/').pop() ?? pod.cgroupPath, pod.cgroupPath);
  root.children.push(await node(PAUSE_NAME, record.sandbox.cgroupPath));
  for (const c of pod.containers) root.children.push(await node(c.name, c.cgroupPath));

  let hostname = record.spec.hostname;
  try {
    hostname = (await fs.readFile(record.sandbox.files.hostname, 'utf8')).trim();
  } catch {}
  const netns = record.sandbox.namespaces.net;
  const network = netns && !record.stoppedAt ? await networkInspect(rt.ctx.host, netns, pod) : undefined;
  const volumes = record.spec.volumes?.length ? describeVolumes(volumeStores(rt.ctx), record) : undefined;
  return { pod, hostname, namespaces, cgroups: root, ...(network ? { network } : {}), ...(volumes ? { volumes } : {}) };
}
