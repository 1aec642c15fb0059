/**
 * The network part of the Runtime API: CNI networks (list, inspect, create, remove), CHECK of a
 * pod's attachments, and pruning of attachments whose pod is gone (an nspod killed mid-start).
 */
import { isMountPoint } from '../network/index.js';
import {
  bridgeConfList,
  findNetwork,
  loadNetworks,
  removeNetworkFile,
  writeNetwork,
  ensureDefaultNetwork,
} from '../network/cni/index.js';
import type { ConfList } from '../network/cni/index.js';
import { failedPrecondition } from '../errors/index.js';
import type { Context } from './context.js';

export interface NetworkSummary {
  name: string;
  file: string;
  cniVersion: string;
  plugins: string[];
  bridge?: string;
  subnets: string[];
  /** names of the pods attached now */
  pods: string[];
}

export interface NetworkDetails extends NetworkSummary {
  config: ConfList;
  /** problems found by asking each plugin for VERSION (missing binary, unsupported cniVersion) */
  problems: string[];
}

function subnetsOf(conf: ConfList): string[] {
  const ipam = conf.plugins[0]?.['ipam'] as { ranges?: Array<Array<{ subnet?: string }>>; subnet?: string } | undefined;
  const out: string[] = [];
  for (const set of ipam?.ranges ?? []) for (const r of set) if (r.subnet) out.push(r.subnet);
  if (ipam?.subnet) out.push(ipam.subnet);
  return out;
}

export function makeNetworkApi(ctx: Context) {
  const dir = ctx.config.cniConfigDir;

  async function podsOn(): Promise<Map<string, string[]>> {
    const m = new Map<string, string[]>();
    for (const p of await ctx.state.pods()) {
      if (p.stoppedAt) continue;
      for (const a of p.sandbox.network?.attachments ?? []) m.set(a.network, [...(m.get(a.network) ?? []), p.name]);
    }
    return m;
  }

  const api = {
    /** Every network in nspod's config dir (the default one is written first if there is none). */
    async list(): Promise<NetworkSummary[]> {
      await ensureDefaultNetwork(dir);
      const used = await podsOn();
      return (await loadNetworks(dir)).map((n) => ({
        name: n.name,
        file: n.file,
        cniVersion: n.conf.cniVersion,
        plugins: n.conf.plugins.map((p) => p.type),
        ...(typeof n.conf.plugins[0]?.['bridge'] === 'string' ? { bridge: n.conf.plugins[0]['bridge'] } : {}),
        subnets: subnetsOf(n.conf),
        pods: used.get(n.name) ?? [],
      }));
    },

    async inspect(name: string): Promise<NetworkDetails> {
      const n = await findNetwork(dir, name);
      const summary = (await api.list()).find((x) => x.name === name)!;
      return { ...summary, config: n.conf, problems: await ctx.networks.client.validate(n.conf) };
    },

    /** A new bridge network (bridge + host-local + portmap + firewall + bandwidth). */
    async create(o: { name: string; subnet: string; bridge?: string; gateway?: string; masquerade?: boolean }) {
      const conf = bridgeConfList({
        name: o.name,
        bridge: o.bridge ?? `nspod-${o.name}`.slice(0, 15),
        subnet: o.subnet,
        ...(o.gateway ? { gateway: o.gateway } : {}),
        ...(o.masquerade === false ? { masquerade: false } : {}),
      });
      const clash = (await loadNetworks(dir)).find((n) => subnetsOf(n.conf).includes(o.subnet));
      if (clash) throw failedPrecondition(`--subnet: ${o.subnet} is already the subnet of network "${clash.name}"`);
      const file = await writeNetwork(dir, conf);
      return { name: o.name, file };
    },

    /** Removes a network's config (refused while pods use it). Its bridge stays: the bridge plugin never deletes one. */
    async remove(name: string): Promise<void> {
      await removeNetworkFile(dir, name, (await podsOn()).get(name) ?? []);
    },

    /** CNI CHECK of a pod's attachments; resolves to how many were checked. */
    async check(podRef: string): Promise<number> {
      const pod = await ctx.state.findPod(podRef);
      const ns = pod.sandbox.namespaces.net;
      if (!ns || pod.stoppedAt || !(await isMountPoint(ns))) {
        throw failedPrecondition(`pod "${pod.name}" has no network namespace of its own attached`);
      }
      return ctx.networks.check(pod.sandbox.id, ns);
    },

    /**
     * DEL of every cached attachment whose pod no longer exists (its IP, veth, iptables rules):
     * what an nspod killed between ADD and recording the pod leaves. Resolves to their ids.
     */
    async prune(): Promise<string[]> {
      return ctx.state.withLock(async () => {
        // Attachments first, then the pods: a pod records itself before its first ADD (and pods
        // are made without this lock), so every attachment read here has its pod in `live`.
        const cached = await ctx.networks.client.cached();
        const live = new Set((await ctx.state.pods()).map((p) => p.sandbox.id));
        const stale = cached.filter((c) => !live.has(c.containerId));
        const ids = [...new Set(stale.map((c) => c.containerId))];
        for (const id of ids) await ctx.networks.detach(id, '');
        return ids;
      });
    },
  };
  return api;
}
