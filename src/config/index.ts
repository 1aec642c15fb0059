/**
 * Where nspod keeps things and which external programs it uses. Everything is overridable by
 * options or environment so tests run isolated side by side:
 *   NSPOD_ROOT (default /var/lib/nspod)     persistent: images, layers, records, logs
 *   NSPOD_RUN_ROOT (default /run/nspod)     volatile: pinned namespaces, runtime state, locks
 *   NSPOD_RUNTIME (default: detected)       runc or crun, by name or path
 *   NSPOD_CGROUP_PARENT (default nspod)     the cgroup under which every pod's cgroup is made
 *   NSPOD_CNI_CONFIG_DIR (default /etc/nspod/cni/net.d)   nspod's CNI network configs
 *   NSPOD_CNI_PLUGIN_DIRS (default /usr/lib/cni:/opt/cni/bin)  where CNI plugin binaries are
 *   NSPOD_NETWORK (default: the first config)  the network of pods that name none
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Paths {
  root: string;
  runRoot: string;
}

export interface Config extends Paths {
  /** runtime name or absolute path; undefined = detect */
  runtime?: string;
  conmon: string;
  /** path of the pause binary */
  pause: string;
  cgroupParent: string;
  cniConfigDir: string;
  cniPluginDirs: string[];
  defaultNetwork?: string;
}

export interface ConfigOptions {
  root?: string;
  runRoot?: string;
  runtime?: string;
  cgroupParent?: string;
  /** CNI network configs (default env NSPOD_CNI_CONFIG_DIR, else /etc/nspod/cni/net.d) */
  cniConfigDir?: string;
}

/** The project directory: the nearest ancestor of this file with a package.json (works from dist/ and dist-test/). */
export const projectDir = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

let version: string | undefined;
/** nspod's version, from the project's package.json (read once). */
export function nspodVersion(): string {
  return (version ??= (JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { version: string })
    .version);
}

export function loadConfig(opts: ConfigOptions = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const runtime = opts.runtime ?? env.NSPOD_RUNTIME;
  return {
    root: path.resolve(opts.root ?? env.NSPOD_ROOT ?? '/var/lib/nspod'),
    runRoot: path.resolve(opts.runRoot ?? env.NSPOD_RUN_ROOT ?? '/run/nspod'),
    ...(runtime ? { runtime } : {}),
    conmon: env.NSPOD_CONMON ?? 'conmon',
    pause: env.NSPOD_PAUSE ?? path.join(projectDir, 'native', 'pause'),
    cgroupParent: opts.cgroupParent ?? env.NSPOD_CGROUP_PARENT ?? 'nspod',
    cniConfigDir: path.resolve(opts.cniConfigDir ?? env.NSPOD_CNI_CONFIG_DIR ?? '/etc/nspod/cni/net.d'),
    cniPluginDirs: (env.NSPOD_CNI_PLUGIN_DIRS ?? '/usr/lib/cni:/opt/cni/bin').split(':').filter(Boolean),
    ...(env.NSPOD_NETWORK ? { defaultNetwork: env.NSPOD_NETWORK } : {}),
  };
}
