/**
 * Pod networking over CNI: which networks a pod joins, the port mappings and bandwidth it asks
 * for, attaching and detaching its pinned network namespace, and the host-port checks done before
 * anything is made.
 *
 *   attach: ensure the default network exists ▶ ADD each network (eth0, eth1, …) ▶ on failure DEL
 *           every attachment made so far, including the one that failed half-way
 *   detach: wait for plugins still running for this sandbox (an nspod killed mid-ADD leaves them
 *           orphaned) ▶ DEL every cached attachment of the sandbox
 */
import type { Host } from '../../host/index.js';
import { promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import { alreadyExists, invalidArgument } from '../../errors/index.js';
import type { ContainerSpec, PodSpec, PortSpec } from '../../spec/types.js';
import { parseQuantity } from '../../spec/quantity.js';
import { CniClient } from './client.js';
import { ensureDefaultNetwork, findNetwork, loadNetworks } from './config.js';
import type { Attachment, Bandwidth, CniResult, PortMapping } from './types.js';

export { CniClient } from './client.js';
export type { CachedAttachment } from './client.js';
export * from './config.js';
export type { Attachment, Bandwidth, CniResult, ConfList, PortMapping } from './types.js';

export const NETWORKS_ANNOTATION = 'nspod.io/networks';
export const INGRESS_ANNOTATION = 'kubernetes.io/ingress-bandwidth';
export const EGRESS_ANNOTATION = 'kubernetes.io/egress-bandwidth';

export interface NetworkSettings {
  configDir: string;
  pluginDirs: string[];
  /** CNI result cache (and nothing else) */
  cacheDir: string;
  /** network for pods that name none; default: the first in configDir */
  defaultNetwork?: string;
  /** runs the plugins (default: from this process) */
  host?: Host;
}

/** One network a pod is attached to, as recorded on the sandbox and shown by inspect. */
export interface PodAttachment {
  network: string;
  ifName: string;
  /** the pod's address on it (CIDR) */
  address?: string;
  ip?: string;
  gateway?: string;
  mac?: string;
  routes: Array<{ dst: string; gw?: string }>;
  dns?: CniResult['dns'];
}

export interface PodNetworkStatus {
  attachments: PodAttachment[];
  portMappings: PortMapping[];
  bandwidth?: Bandwidth;
}

/** hostPort mappings of every container of the pod, in the portMappings capability's shape. */
export function portMappingsOf(containers: ContainerSpec[], podPorts: PortSpec[] = []): PortMapping[] {
  const out: PortMapping[] = [];
  for (const ports of [...containers.map((c) => c.ports), podPorts]) {
    for (const p of ports) {
      if (!p.hostPort) continue;
      out.push({
        hostPort: p.hostPort,
        containerPort: p.containerPort,
        protocol: p.protocol.toLowerCase() as PortMapping['protocol'],
        ...(p.hostIP ? { hostIP: p.hostIP } : {}),
      });
    }
  }
  return out;
}

/** Two mappings conflict when port and protocol match and their host IPs overlap (unset = all). */
export function mappingsConflict(a: PortMapping, b: PortMapping): boolean {
  if (a.hostPort !== b.hostPort || a.protocol !== b.protocol) return false;
  const any = (ip?: string) => !ip || ip === '0.0.0.0' || ip === '::';
  return any(a.hostIP) || any(b.hostIP) || a.hostIP === b.hostIP;
}

function describeMapping(m: PortMapping): string {
  return `${m.hostIP ? `${m.hostIP}:` : ''}${m.hostPort}/${m.protocol}`;
}

/**
 * Refuses host ports the pod asks for twice, ports another pod holds (`others`: pod name →
 * mappings) and ports a host process listens on.
 */
export async function checkHostPorts(
  mine: PortMapping[],
  others: Array<{ pod: string; mappings: PortMapping[] }>,
  listeners: Array<{ protocol: 'tcp' | 'udp'; ip: string; port: number }> | undefined = undefined,
): Promise<void> {
  for (let i = 0; i < mine.length; i++) {
    for (let j = 0; j < i; j++) {
      if (mappingsConflict(mine[i]!, mine[j]!)) {
        throw invalidArgument(`hostPort ${describeMapping(mine[i]!)} is asked for twice in the pod`);
      }
    }
  }
  for (const m of mine) {
    for (const o of others) {
      if (o.mappings.some((x) => mappingsConflict(m, x))) {
        throw alreadyExists(`hostPort ${describeMapping(m)} is already published by pod "${o.pod}"`);
      }
    }
  }
  const ls = listeners ?? (await hostListeners());
  for (const m of mine) {
    const l = ls.find(
      (x) =>
        x.port === m.hostPort &&
        x.protocol === m.protocol &&
        mappingsConflict(m, { hostPort: x.port, containerPort: 0, protocol: x.protocol, hostIP: x.ip }),
    );
    if (l)
      throw alreadyExists(
        `hostPort ${describeMapping(m)} is in use on the host (a process listens on ${l.ip}:${l.port})`,
      );
  }
}

function hexIp(h: string): string {
  if (h.length === 8) {
    const n = parseInt(h, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  }
  if (/^0+$/.test(h)) return '::';
  return h; // other IPv6 addresses: only compared for equality with '::'/unset
}

/** TCP listeners and bound UDP sockets of the host's network namespace (from /proc/net). */
export async function hostListeners(): Promise<Array<{ protocol: 'tcp' | 'udp'; ip: string; port: number }>> {
  const out: Array<{ protocol: 'tcp' | 'udp'; ip: string; port: number }> = [];
  for (const [file, protocol] of [
    ['/proc/net/tcp', 'tcp'],
    ['/proc/net/tcp6', 'tcp'],
    ['/proc/net/udp', 'udp'],
    ['/proc/net/udp6', 'udp'],
  ] as const) {
    let text = '';
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const [addr, port] = f[1]!.split(':') as [string, string];
      if (protocol === 'tcp' && f[3] !== '0A') continue; // LISTEN only
      out.push({ protocol, ip: hexIp(addr), port: parseInt(port, 16) });
    }
  }
  return out;
}

/** The bandwidth capability from the Kubernetes annotations (bits per second, no burst limit). */
export function bandwidthOf(annotations: Record<string, string>): Bandwidth | undefined {
  const bw: Bandwidth = {};
  for (const [key, dir] of [
    [INGRESS_ANNOTATION, 'ingress'],
    [EGRESS_ANNOTATION, 'egress'],
  ] as const) {
    const v = annotations[key];
    if (v === undefined) continue;
    let rate: number;
    try {
      rate = parseQuantity(v, `metadata.annotations["${key}"]`);
    } catch {
      throw invalidArgument(
        `metadata.annotations["${key}"]: expected a rate like 10M (bits per second), got ${JSON.stringify(v)}`,
      );
    }
    if (!(rate >= 1000)) {
      throw invalidArgument(
        `metadata.annotations["${key}"]: rate must be at least 1k bits per second, got ${JSON.stringify(v)}`,
      );
    }
    bw[`${dir}Rate`] = Math.round(rate);
    bw[`${dir}Burst`] = 2147483647; // no burst limit, as kubelet
  }
  return Object.keys(bw).length ? bw : undefined;
}

/** The networks a pod joins: the annotation's list, else the default network. */
export async function podNetworkNames(s: NetworkSettings, spec: PodSpec): Promise<string[]> {
  const ann = spec.annotations[NETWORKS_ANNOTATION];
  if (ann !== undefined) {
    const names = ann
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    if (names.length === 0) throw invalidArgument(`metadata.annotations["${NETWORKS_ANNOTATION}"]: names no network`);
    for (const n of names) await findNetwork(s.configDir, n);
    return names;
  }
  if (s.defaultNetwork) {
    await findNetwork(s.configDir, s.defaultNetwork);
    return [s.defaultNetwork];
  }
  await ensureDefaultNetwork(s.configDir);
  const first = (await loadNetworks(s.configDir))[0];
  return first ? [first.name] : [];
}

function attachmentOf(network: string, ifName: string, r: CniResult): PodAttachment {
  const ifaces = r.interfaces ?? [];
  const idx = ifaces.findIndex((i) => i.name === ifName && i.sandbox);
  const ips = r.ips ?? [];
  const mine = ips.find((x) => x.interface === undefined || x.interface === idx) ?? ips[0];
  const ip = mine?.address.split('/')[0];
  return {
    network,
    ifName,
    ...(mine ? { address: mine.address } : {}),
    ...(ip && isIP(ip) ? { ip } : {}),
    ...(mine?.gateway ? { gateway: mine.gateway } : {}),
    ...(idx >= 0 && ifaces[idx]!.mac ? { mac: ifaces[idx]!.mac } : {}),
    routes: (r.routes ?? []).map((x) => ({ dst: x.dst, ...(x.gw ? { gw: x.gw } : {}) })),
    ...(r.dns && Object.keys(r.dns).length ? { dns: r.dns } : {}),
  };
}

export class PodNetworks {
  readonly client: CniClient;
  constructor(readonly settings: NetworkSettings) {
    this.client = new CniClient({
      pluginDirs: settings.pluginDirs,
      cacheDir: settings.cacheDir,
      ...(settings.host ? { host: settings.host } : {}),
    });
  }

  private attachmentArgs(o: {
    sandboxId: string;
    podName: string;
    namespace: string;
    netns: string;
    ifName: string;
    portMappings: PortMapping[];
    bandwidth?: Bandwidth;
  }): Attachment {
    return {
      containerId: o.sandboxId,
      netns: o.netns,
      ifName: o.ifName,
      args: [
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAMESPACE', o.namespace],
        ['K8S_POD_NAME', o.podName],
        ['K8S_POD_INFRA_CONTAINER_ID', o.sandboxId],
      ],
      capabilityArgs: {
        ...(o.portMappings.length ? { portMappings: o.portMappings } : {}),
        ...(o.bandwidth ? { bandwidth: o.bandwidth } : {}),
      },
    };
  }

  /** Attaches the pod's netns to `networks` (eth0, eth1, …). All or nothing. */
  async attach(o: {
    sandboxId: string;
    podName: string;
    namespace: string;
    netns: string;
    networks: string[];
    portMappings: PortMapping[];
    bandwidth?: Bandwidth;
  }): Promise<PodNetworkStatus> {
    const attachments: PodAttachment[] = [];
    try {
      for (const [i, name] of o.networks.entries()) {
        const { conf } = await findNetwork(this.settings.configDir, name);
        const ifName = `eth${i}`;
        // Port mappings and bandwidth apply on the first network only, as kubelet and podman do.
        const a = this.attachmentArgs({
          ...o,
          ifName,
          portMappings: i === 0 ? o.portMappings : [],
          ...(i === 0 && o.bandwidth ? { bandwidth: o.bandwidth } : {}),
        });
        attachments.push({ network: name, ifName, routes: [] });
        const r = await this.client.add(conf, a);
        attachments[attachments.length - 1] = attachmentOf(name, ifName, r);
      }
    } catch (e) {
      await this.detach(o.sandboxId, o.netns).catch(() => undefined);
      throw e;
    }
    return {
      attachments,
      portMappings: o.portMappings,
      ...(o.bandwidth ? { bandwidth: o.bandwidth } : {}),
    };
  }

  /**
   * Detaches every network of the sandbox known to the cache. `netns` may be gone already ('' or
   * a path that is no longer a namespace): plugins then only release what lives outside it.
   */
  async detach(sandboxId: string, netns: string): Promise<void> {
    await waitForPlugins(sandboxId);
    const entries = await this.client.cached(sandboxId);
    let first: unknown;
    for (const c of entries.reverse()) {
      try {
        await this.client.del(c.networkName, {
          containerId: sandboxId,
          netns,
          ifName: c.ifName,
          args: c.cniArgs,
          capabilityArgs: c.capabilityArgs,
        });
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  /** CHECK of every attachment of the sandbox; throws the plugin's message on a problem. */
  async check(sandboxId: string, netns: string): Promise<number> {
    const entries = await this.client.cached(sandboxId);
    for (const c of entries) {
      await this.client.check(c.networkName, {
        containerId: sandboxId,
        netns,
        ifName: c.ifName,
        args: c.cniArgs,
        capabilityArgs: c.capabilityArgs,
      });
    }
    return entries.length;
  }
}

/**
 * Waits (up to `timeoutMs`) until no process runs with CNI_CONTAINERID=<id> in its environment:
 * plugins (and the iptables they run) orphaned by an nspod killed during ADD would otherwise add
 * rules after our DEL removed them.
 */
export async function waitForPlugins(containerId: string, timeoutMs = 30_000): Promise<void> {
  const needle = Buffer.from(`CNI_CONTAINERID=${containerId}\0`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let busy = false;
    for (const p of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
      try {
        if ((await fs.readFile(`/proc/${p}/environ`)).includes(needle)) {
          busy = true;
          break;
        }
      } catch {}
    }
    if (!busy || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}
