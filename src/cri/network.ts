/**
 * The network facts the CRI server reports: the NetworkReady condition and a pod's IPs. Kept in
 * one place so the CNI networking can rewire them.
 *
 * Today a pod gets a private network namespace with loopback only; NetworkReady is true only when
 * a CNI network configuration is installed (NSPOD_CNI_CONF_DIR, default /etc/cni/net.d). A pod's
 * IPs are read from inside its pinned network namespace (global-scope addresses), so whatever
 * gives the pod an address is reported truthfully.
 */
import { promises as fs } from 'node:fs';
import type { Host } from '../host/index.js';
import type { PodRecord } from '../state/index.js';

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export async function networkCondition(env: NodeJS.ProcessEnv = process.env): Promise<RuntimeCondition> {
  const dir = env.NSPOD_CNI_CONF_DIR ?? '/etc/cni/net.d';
  const confs = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /\.(conf|conflist|json)$/.test(n));
  if (confs.length > 0) return { type: 'NetworkReady', status: true, reason: '', message: '' };
  return {
    type: 'NetworkReady',
    status: false,
    reason: 'NetworkPluginNotReady',
    message: `no CNI network configuration in ${dir}: pods get a private network namespace with loopback only`,
  };
}

/** The pod's global-scope IPv4 then IPv6 addresses, read inside its network namespace. */
export async function podIps(host: Host, pod: PodRecord): Promise<string[]> {
  const net = pod.sandbox.namespaces.net;
  if (!net) return [];
  const r = await host.run('nsenter', [`--net=${net}`, 'ip', '-j', 'addr', 'show', 'scope', 'global'], {
    allowFailure: true,
  });
  if (r.code !== 0) return [];
  try {
    const links = JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ family?: string; local?: string }> }>;
    const addrs = links.flatMap((l) => l.addr_info ?? []);
    const v4 = addrs.filter((a) => a.family === 'inet').map((a) => a.local!);
    const v6 = addrs.filter((a) => a.family === 'inet6').map((a) => a.local!);
    return [...v4, ...v6].filter(Boolean);
  } catch {
    return [];
  }
}
