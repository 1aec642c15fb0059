/**
 * Network configuration lists on disk (CNI "conflist" files) and nspod's default network.
 *
 * nspod reads only its own config dir (default /etc/nspod/cni/net.d, `NSPOD_CNI_CONFIG_DIR`), so
 * it never picks up podman's or kubelet's networks unless pointed at their dir. Files are read in
 * lexical order; `*.conflist` files are lists, `*.conf`/`*.json` single-plugin networks. The
 * default network is `NSPOD_NETWORK` if set, else the first file's network (the CNI convention).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod/v3';
import { alreadyExists, failedPrecondition, hasErrno, invalidArgument, notFound } from '../../errors/index.js';
import { NETWORK_NAME_RE, confListSchema, singleConfSchema } from './types.js';
import type { ConfList } from './types.js';

export const DEFAULT_NETWORK = 'nspod';
export const DEFAULT_BRIDGE = 'nspod0';
/** Unlikely to clash: not Docker's 172.17/16, podman's 10.88/16, nor common home/office ranges. */
export const DEFAULT_SUBNET = '10.89.213.0/24';

export interface LoadedNetwork {
  name: string;
  file: string;
  conf: ConfList;
}

function zodMessage(e: z.ZodError): string {
  const i = e.issues[0];
  if (!i) return 'invalid';
  return `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`;
}

/** Parses one config file's text; throws INVALID_ARGUMENT naming the file and field. */
export function parseNetworkFile(file: string, text: string): ConfList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (file.endsWith('.conflist')) {
    const r = confListSchema.safeParse(raw);
    if (!r.success) throw invalidArgument(`${file}: ${zodMessage(r.error)}`);
    return r.data;
  }
  const r = singleConfSchema.safeParse(raw);
  if (!r.success) throw invalidArgument(`${file}: ${zodMessage(r.error)}`);
  const { cniVersion, name, ...plugin } = r.data;
  return { cniVersion, name, plugins: [plugin] };
}

/** Every network in `dir`, in file order. A broken file is an error (named), not silently skipped. */
export async function loadNetworks(dir: string): Promise<LoadedNetwork[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return [];
    throw e;
  }
  const out: LoadedNetwork[] = [];
  const seen = new Set<string>();
  for (const f of names) {
    const file = path.join(dir, f);
    const conf = parseNetworkFile(file, await fs.readFile(file, 'utf8'));
    if (seen.has(conf.name)) continue; // the first file of a name wins, as in libcni
    seen.add(conf.name);
    out.push({ name: conf.name, file, conf });
  }
  return out;
}

export async function findNetwork(dir: string, name: string): Promise<LoadedNetwork> {
  const nets = await loadNetworks(dir);
  const n = nets.find((x) => x.name === name);
  if (!n) {
    throw notFound(
      `network "${name}" not found in ${dir}${nets.length ? ` (networks: ${nets.map((x) => x.name).join(', ')})` : ''}`,
    );
  }
  return n;
}

export interface BridgeNetworkOptions {
  name: string;
  bridge: string;
  subnet: string;
  gateway?: string;
  /** host-local's store; default /var/lib/cni/networks */
  ipamDataDir?: string;
  /** masquerade traffic leaving the subnet (default true) */
  masquerade?: boolean;
}

/** IPv4 CIDR check: a.b.c.d/n with the host bits zero. */
export function checkSubnet(subnet: string, field = '--subnet'): void {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits < 8 || bits > 30) {
    throw invalidArgument(
      `${field}: expected an IPv4 subnet like 10.89.213.0/24 (prefix 8 to 30), got ${JSON.stringify(subnet)}`,
    );
  }
  const n = octets.reduce((a, o) => a * 256 + o, 0);
  if (n % 2 ** (32 - bits) !== 0) throw invalidArgument(`${field}: ${subnet} has host bits set`);
}

/** A bridge network: bridge + host-local, then portmap, firewall, bandwidth and tuning-free defaults. */
export function bridgeConfList(o: BridgeNetworkOptions): ConfList {
  if (!NETWORK_NAME_RE.test(o.name))
    throw invalidArgument(`network name: ${JSON.stringify(o.name)} is not valid (letters, digits, _ . -)`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(o.bridge))
    throw invalidArgument(
      `--bridge: ${JSON.stringify(o.bridge)} is not a valid interface name (at most 15 characters)`,
    );
  checkSubnet(o.subnet);
  const range: Record<string, string> = { subnet: o.subnet };
  if (o.gateway) range['gateway'] = o.gateway;
  return {
    cniVersion: '1.0.0',
    name: o.name,
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge,
        isGateway: true,
        ipMasq: o.masquerade ?? true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[range]],
          routes: [{ dst: '0.0.0.0/0' }],
          ...(o.ipamDataDir ? { dataDir: o.ipamDataDir } : {}),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall', backend: 'iptables' },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
}

/** Writes a network's conflist into `dir` atomically; refuses a name that exists. */
export async function writeNetwork(dir: string, conf: ConfList, prefix = '87'): Promise<string> {
  const nets = await loadNetworks(dir);
  if (nets.some((n) => n.name === conf.name)) throw alreadyExists(`network "${conf.name}" already exists`);
  const bridge = conf.plugins[0]?.['bridge'];
  const clash = nets.find((n) => bridge !== undefined && n.conf.plugins[0]?.['bridge'] === bridge);
  if (clash) throw alreadyExists(`bridge "${String(bridge)}" is already used by network "${clash.name}"`);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, `${prefix}-${conf.name}.conflist`);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(conf, null, 2) + '\n', { mode: 0o644 });
  await fs.rename(tmp, file);
  return file;
}

/**
 * The default network, written when the config dir holds none (first pod, or bootstrap):
 * bridge `nspod0` on 10.89.213.0/24, host-local IPAM, portmap, firewall (with masquerade by the
 * bridge plugin) and bandwidth.
 */
export async function ensureDefaultNetwork(dir: string): Promise<void> {
  if ((await loadNetworks(dir)).length > 0) return;
  try {
    await writeNetwork(
      dir,
      bridgeConfList({
        name: DEFAULT_NETWORK,
        bridge: DEFAULT_BRIDGE,
        subnet: process.env.NSPOD_SUBNET ?? DEFAULT_SUBNET,
      }),
    );
  } catch (e) {
    if (!(e instanceof Error && /already exists/.test(e.message))) throw e; // a concurrent first pod wrote it
  }
}

export async function removeNetworkFile(dir: string, name: string, inUseBy: string[]): Promise<void> {
  const n = await findNetwork(dir, name);
  if (inUseBy.length) throw failedPrecondition(`network "${name}" is used by pod(s) ${inUseBy.join(', ')}`);
  await fs.rm(n.file, { force: true });
}
