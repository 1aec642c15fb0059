/**
 * The network facts the CRI server reports: the NetworkReady condition and a pod's IPs, in one
 * place.
 *
 * NetworkReady is true when nspod's CNI networks (the Runtime API's `network`) exist and every
 * plugin they name answers (no problems found by `network.inspect`). A pod's IPs are read from
 * inside its pinned network namespace (global-scope addresses), so whatever gave the pod its
 * address is reported truthfully.
 */
import type { Host } from '../host/index.js';
import type { Runtime } from '../pod/index.js';
import type { PodRecord } from '../state/index.js';
import { messageOf } from '../errors/index.js';

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export async function networkCondition(rt: Runtime): Promise<RuntimeCondition> {
  const notReady = (message: string): RuntimeCondition => ({
    type: 'NetworkReady',
    status: false,
    reason: 'NetworkPluginNotReady',
    message,
  });
  try {
    const nets = await rt.network.list();
    if (nets.length === 0) return notReady(`no CNI network in ${rt.config.cniConfigDir}`);
    const problems: string[] = [];
    for (const n of nets) for (const p of (await rt.network.inspect(n.name)).problems) problems.push(`${n.name}: ${p}`);
    if (problems.length > 0) return notReady(problems.join('; '));
    return { type: 'NetworkReady', status: true, reason: '', message: nets.map((n) => n.name).join(', ') };
  } catch (e) {
    return notReady(`cannot load the CNI networks: ${messageOf(e)}`);
  }
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
