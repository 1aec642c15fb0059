/**
 * The network facts the CRI server reports: the NetworkReady condition and a pod's IPs. Kept in
 * one place so the CNI networking can rewire them.
 *
 * In this build a pod gets a private network namespace with loopback only and nspod runs no CNI
 * plugin, so NetworkReady is false (NetworkPluginNotReady), whatever CNI configurations other
 * tools installed on the host. A pod's IPs are read from inside its pinned network namespace
 * (global-scope addresses), so whatever gives the pod an address is reported truthfully.
 */
import type { Host } from '../host/index.js';
import type { PodRecord } from '../state/index.js';

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export function networkCondition(): Promise<RuntimeCondition> {
  return Promise.resolve({
    type: 'NetworkReady',
    status: false,
    reason: 'NetworkPluginNotReady',
    message: 'nspod runs no CNI plugin in this build: pods get a private network namespace with loopback only',
  });
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
