/**
 * A CNI runtime (the "libcni" side of the CNI spec, 1.0.0 and 0.4.0): runs plugin binaries with
 * CNI_COMMAND ADD / CHECK / DEL / VERSION, the network config on stdin (name, cniVersion,
 * prevResult, and runtimeConfig for the capabilities a plugin declares), and reads its result or
 * error from stdout.
 *
 * Every attachment is cached under `<cacheDir>/results/` *before* ADD runs (with the config that
 * will be used) and updated with the result after: DEL then works after a crash half-way through
 * ADD, after nspod restarts, and after the network's config file was removed.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import { NspodError, hasErrno, internal, unavailable } from '../../errors/index.js';
import { realHost } from '../../host/index.js';
import type { Host } from '../../host/index.js';
import { errorSchema, resultSchema, versionSchema } from './types.js';
import type { Attachment, CapabilityArgs, CniResult, ConfList, PluginConf } from './types.js';

export interface CniClientOptions {
  pluginDirs: string[];
  cacheDir: string;
  /** per-plugin timeout (default 60 s) */
  timeoutMs?: number;
  /** runs the plugins (default: from this process) */
  host?: Host;
}

export interface CachedAttachment {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  netns: string;
  config: ConfList;
  cniArgs: Array<[string, string]>;
  capabilityArgs: CapabilityArgs;
  /** absent while ADD has not finished */
  result?: CniResult;
}

type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

export class CniClient {
  readonly pluginDirs: string[];
  readonly cacheDir: string;
  private readonly timeoutMs: number;
  private readonly found = new Map<string, string>();
  private readonly host: Host;

  constructor(o: CniClientOptions) {
    this.host = o.host ?? realHost;
    this.pluginDirs = o.pluginDirs;
    this.cacheDir = o.cacheDir;
    this.timeoutMs = o.timeoutMs ?? 60_000;
  }

  /** The plugin binary's path in the first plugin dir that has it. */
  async findPlugin(type: string): Promise<string> {
    const hit = this.found.get(type);
    if (hit) return hit;
    for (const d of this.pluginDirs) {
      const p = path.join(d, type);
      try {
        await fs.access(p, fsc.X_OK);
        this.found.set(type, p);
        return p;
      } catch {}
    }
    throw unavailable(
      `CNI plugin "${type}" not found in ${this.pluginDirs.join(', ')} (install containernetworking-plugins)`,
    );
  }

  /** Runs one plugin; resolves to its parsed stdout (undefined for an empty one). */
  async exec(cmd: Command, plugin: PluginConf, netconf: Record<string, unknown>, a?: Attachment): Promise<unknown> {
    const bin = await this.findPlugin(plugin.type);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: cmd,
      CNI_PATH: this.pluginDirs.join(':'),
    };
    if (a) {
      env.CNI_CONTAINERID = a.containerId;
      env.CNI_NETNS = a.netns;
      env.CNI_IFNAME = a.ifName;
      env.CNI_ARGS = a.args.map(([k, v]) => `${k}=${v}`).join(';');
    }
    const { code, stdout, stderr } = await this.host.run(bin, [], {
      env,
      input: JSON.stringify(netconf),
      allowFailure: true,
      timeoutMs: this.timeoutMs,
    });
    const network = typeof netconf['name'] === 'string' ? ` (network "${netconf['name']}")` : '';
    if (code !== 0) {
      let msg = stderr.trim().split('\n').pop() || `exit status ${code}`;
      try {
        const e = errorSchema.parse(JSON.parse(stdout));
        msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
      } catch {}
      throw new NspodError('INTERNAL', `CNI plugin ${plugin.type} ${cmd} failed${network}: ${msg}`);
    }
    if (stdout.trim() === '') return undefined;
    try {
      return JSON.parse(stdout);
    } catch {
      throw internal(`CNI plugin ${plugin.type} ${cmd}${network}: output is not JSON: ${stdout.slice(0, 200)}`);
    }
  }

  /** The config one plugin of `list` gets on stdin. */
  pluginNetconf(
    list: ConfList,
    plugin: PluginConf,
    caps: CapabilityArgs,
    prevResult?: unknown,
  ): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on && caps[cap] !== undefined) runtimeConfig[cap] = caps[cap];
    }
    if (Object.keys(runtimeConfig).length) conf['runtimeConfig'] = runtimeConfig;
    if (prevResult !== undefined) conf['prevResult'] = prevResult;
    return conf;
  }

  private cacheFile(network: string, containerId: string, ifName: string): string {
    return path.join(this.cacheDir, 'results', `${network}-${containerId}-${ifName}`);
  }

  private async writeCache(c: CachedAttachment): Promise<void> {
    const file = this.cacheFile(c.networkName, c.containerId, c.ifName);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    await fs.writeFile(tmp, JSON.stringify(c), { mode: 0o600 });
    await fs.rename(tmp, file);
  }

  async readCache(network: string, containerId: string, ifName: string): Promise<CachedAttachment | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.cacheFile(network, containerId, ifName), 'utf8')) as CachedAttachment;
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  /** Every cached attachment (of one container when `containerId` is given). */
  async cached(containerId?: string): Promise<CachedAttachment[]> {
    let names: string[];
    try {
      names = await fs.readdir(path.join(this.cacheDir, 'results'));
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) return [];
      throw e;
    }
    const out: CachedAttachment[] = [];
    for (const n of names) {
      if (n.includes('.tmp-')) continue;
      if (containerId && !n.includes(`-${containerId}-`)) continue;
      try {
        const c = JSON.parse(await fs.readFile(path.join(this.cacheDir, 'results', n), 'utf8')) as CachedAttachment;
        if (!containerId || c.containerId === containerId) out.push(c);
      } catch {}
    }
    return out;
  }

  /** ADD: the plugins in order, each given the previous one's result. Cached before and after. */
  async add(list: ConfList, a: Attachment): Promise<CniResult> {
    const entry: CachedAttachment = {
      kind: 'cniCacheV1',
      containerId: a.containerId,
      ifName: a.ifName,
      networkName: list.name,
      netns: a.netns,
      config: list,
      cniArgs: a.args,
      capabilityArgs: a.capabilityArgs,
    };
    await this.writeCache(entry);
    let prev: unknown;
    for (const p of list.plugins) {
      prev = await this.exec('ADD', p, this.pluginNetconf(list, p, a.capabilityArgs, prev), a);
    }
    const parsed = resultSchema.safeParse(prev ?? {});
    if (!parsed.success) throw internal(`CNI network "${list.name}": the result of ADD is malformed`);
    entry.result = parsed.data;
    await this.writeCache(entry);
    return parsed.data;
  }

  /**
   * DEL: the plugins in reverse order with the cached result as prevResult, from the cached config
   * when there is one (else `list`). Every plugin runs even if one fails; the first error is thrown
   * after and the cache entry is kept so DEL can be retried.
   */
  async del(network: string, a: Attachment, list?: ConfList): Promise<void> {
    const cached = await this.readCache(network, a.containerId, a.ifName);
    const conf = cached?.config ?? list;
    if (!conf) return; // never attached and no config: nothing to undo
    const att: Attachment = cached ? { ...a, args: cached.cniArgs, capabilityArgs: cached.capabilityArgs } : a;
    let first: unknown;
    for (const p of [...conf.plugins].reverse()) {
      try {
        await this.exec('DEL', p, this.pluginNetconf(conf, p, att.capabilityArgs, cached?.result), att);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
    await fs.rm(this.cacheFile(network, a.containerId, a.ifName), { force: true });
  }

  /** CHECK (CNI ≥ 0.4.0): every plugin in order with the cached result. */
  async check(network: string, a: Attachment): Promise<void> {
    const cached = await this.readCache(network, a.containerId, a.ifName);
    if (!cached?.result) throw internal(`network "${network}": no cached ADD result for ${a.containerId}`);
    const conf = cached.config;
    if (conf.disableCheck || compareVersions(conf.cniVersion, '0.4.0') < 0) return;
    for (const p of conf.plugins) {
      // The bandwidth plugin of containernetworking-plugins ≤ 1.1 dereferences a nil config on
      // CHECK when no bandwidth was asked for (it panics); with nothing to check, skip it.
      if (p.type === 'bandwidth' && cached.capabilityArgs.bandwidth === undefined) continue;
      try {
        await this.exec('CHECK', p, this.pluginNetconf(conf, p, cached.capabilityArgs, cached.result), {
          ...a,
          args: cached.cniArgs,
          capabilityArgs: cached.capabilityArgs,
        });
      } catch (e) {
        // portmap ≤ 1.1 checks its IPv6 chain whenever ip6tables exists, even for a pod without an
        // IPv6 address, after it checked the IPv4 chain (containernetworking/plugins#819).
        const v6 = (cached.result.ips ?? []).some((x) => x.address.includes(':'));
        if (p.type === 'portmap' && !v6 && /could not check ipv6 dnat/.test((e as Error).message)) continue;
        throw e;
      }
    }
  }

  /** VERSION of one plugin: the spec versions it supports. */
  async version(type: string, cniVersion = '1.0.0'): Promise<string[]> {
    const out = await this.exec('VERSION', { type }, { cniVersion });
    const v = versionSchema.safeParse(out);
    if (!v.success) throw internal(`CNI plugin ${type}: VERSION printed no supportedVersions`);
    return v.data.supportedVersions;
  }

  /** Checks every plugin of `list` exists and supports the list's cniVersion; one line per problem. */
  async validate(list: ConfList): Promise<string[]> {
    const problems: string[] = [];
    for (const p of list.plugins) {
      try {
        const vs = await this.version(p.type, list.cniVersion);
        if (!vs.includes(list.cniVersion)) {
          problems.push(`plugin ${p.type} does not support cniVersion ${list.cniVersion} (supports ${vs.join(', ')})`);
        }
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    return problems;
  }
}
