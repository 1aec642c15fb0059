/**
 * The network-facing fields of a Pod spec: `hostAliases`, `dnsPolicy` and `dnsConfig`, read into
 * the model's `hostAliases` and `dns` (see spec/types.ts). Kubernetes' rules apply:
 *   - dnsPolicy is ClusterFirst (default), ClusterFirstWithHostNet, Default or None. nspod runs no
 *     cluster DNS, so the ClusterFirst policies use the host's resolvers, as `Default` does.
 *   - dnsPolicy None needs a dnsConfig with at least one nameserver.
 *   - at most 3 nameservers, 32 search domains, hostAliases only with an IP address.
 */
import { isIP } from 'node:net';
import type { DnsSpec, HostAlias } from './types.js';
import type { Reader, YamlMap } from './fields.js';
import { asMap, asString, child, optList, optMap, optString, optStringList, warnUnknown } from './fields.js';
import { fail, isDnsSubdomain } from './validate.js';

export const DNS_POLICIES = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'] as const;
export type DnsPolicy = (typeof DNS_POLICIES)[number];

export function readHostAliases(s: YamlMap, path: string): HostAlias[] {
  const list = optList(s, 'hostAliases', path) ?? [];
  return list.map((v, i) => {
    const p = `${path}.hostAliases[${i}]`;
    const m = asMap(v, p);
    const ip = asString(m['ip'], child(p, 'ip'));
    if (!isIP(ip)) fail(child(p, 'ip'), `${JSON.stringify(ip)} is not an IP address`);
    const hostnames = optStringList(m, 'hostnames', p) ?? [];
    if (hostnames.length === 0) fail(child(p, 'hostnames'), 'at least one hostname is required');
    hostnames.forEach((h, j) => {
      if (!isDnsSubdomain(h)) fail(`${p}.hostnames[${j}]`, `${JSON.stringify(h)} is not a valid host name`);
    });
    return { ip, hostnames };
  });
}

export function readDns(r: Reader, s: YamlMap, path: string): DnsSpec {
  const policy = (optString(s, 'dnsPolicy', path) ?? 'ClusterFirst') as DnsPolicy;
  if (!DNS_POLICIES.includes(policy)) {
    fail(child(path, 'dnsPolicy'), `${JSON.stringify(policy)} is not one of ${DNS_POLICIES.join(', ')}`);
  }
  const dns: DnsSpec = { policy, nameservers: [], searches: [], options: [] };
  const cfg = optMap(s, 'dnsConfig', path);
  const cp = child(path, 'dnsConfig');
  if (cfg) {
    warnUnknown(r, cfg, ['nameservers', 'searches', 'options'], cp);
    dns.nameservers = optStringList(cfg, 'nameservers', cp) ?? [];
    dns.nameservers.forEach((n, i) => {
      if (!isIP(n)) fail(`${cp}.nameservers[${i}]`, `${JSON.stringify(n)} is not an IP address`);
    });
    if (dns.nameservers.length > 3) fail(`${cp}.nameservers`, `at most 3 nameservers (got ${dns.nameservers.length})`);
    dns.searches = optStringList(cfg, 'searches', cp) ?? [];
    dns.searches.forEach((d, i) => {
      if (!isDnsSubdomain(d.replace(/\.$/, '').toLowerCase()))
        fail(`${cp}.searches[${i}]`, `${JSON.stringify(d)} is not a valid domain`);
    });
    if (dns.searches.length > 32) fail(`${cp}.searches`, `at most 32 search domains (got ${dns.searches.length})`);
    dns.options = (optList(cfg, 'options', cp) ?? []).map((v, i) => {
      const op = `${cp}.options[${i}]`;
      const m = asMap(v, op);
      const name = asString(m['name'], child(op, 'name'));
      if (!/^[A-Za-z0-9_-]+$/.test(name)) fail(child(op, 'name'), `${JSON.stringify(name)} is not a resolver option`);
      const value = optString(m, 'value', op);
      return value === undefined ? { name } : { name, value };
    });
  }
  if (policy === 'None' && dns.nameservers.length === 0) {
    fail(cp, 'dnsPolicy None needs dnsConfig.nameservers (at least one)');
  }
  return dns;
}

/** The pod's resolv.conf text for `dns`, given the host's resolv.conf. */
export function resolvConfFor(dns: DnsSpec | undefined, hostResolv: string, hostNetwork: boolean): string {
  const host = parseResolvConf(hostResolv);
  // Loopback resolvers of the host (systemd-resolved, dnsmasq) are unreachable from a pod netns.
  const usable = hostNetwork ? host.nameservers : host.nameservers.filter((n) => !n.startsWith('127.') && n !== '::1');
  const base =
    !dns || dns.policy !== 'None' ? { ...host, nameservers: usable } : { nameservers: [], searches: [], options: [] };
  const nameservers = dedupe([...base.nameservers, ...(dns?.nameservers ?? [])]).slice(0, 3);
  const searches = dedupe([...(dns?.searches ?? []), ...base.searches]).slice(0, 32);
  const options = new Map<string, string | undefined>();
  for (const o of base.options) options.set(o.name, o.value);
  for (const o of dns?.options ?? []) options.set(o.name, o.value);
  const lines = ['# resolv.conf written by nspod'];
  if (searches.length) lines.push(`search ${searches.join(' ')}`);
  for (const n of nameservers) lines.push(`nameserver ${n}`);
  if (options.size)
    lines.push(`options ${[...options].map(([k, v]) => (v === undefined ? k : `${k}:${v}`)).join(' ')}`);
  return lines.join('\n') + '\n';
}

export function parseResolvConf(text: string): {
  nameservers: string[];
  searches: string[];
  options: Array<{ name: string; value?: string }>;
} {
  const out = {
    nameservers: [] as string[],
    searches: [] as string[],
    options: [] as Array<{ name: string; value?: string }>,
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') out.searches = rest.filter(Boolean);
    else if (key === 'options') {
      for (const o of rest) {
        const [name, value] = o.split(':', 2) as [string, string | undefined];
        out.options.push(value === undefined ? { name } : { name, value });
      }
    }
  }
  return out;
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
