/**
 * network/: the pod's shared namespaces and name files.
 *
 * *Pinning*: the pod's net, ipc and uts namespaces are created by `unshare(1)` with persistent
 * bind mounts under the pod's run dir (`<runDir>/ns/{net,ipc,uts}`), so they exist
 * independently of any process; the pause container and every app container join them by
 * path. Inside the new net namespace loopback is brought up; inside the new uts namespace the
 * pod's hostname is set. *Unpinning* unmounts the bind mounts; the kernel frees each namespace
 * when its last process has gone too.
 *
 * The pod's /dev/shm is one tmpfs mounted at `<runDir>/shm` and bind-mounted into every
 * container, so POSIX shm and semaphores are shared like the SysV IPC of the ipc namespace.
 *
 * Name files (`hosts`, `resolv.conf`, `hostname`) are written into the pod dir and bind-mounted
 * into every container.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/index.js';
import type { DnsSpec, HostAlias } from '../spec/types.js';
import { resolvConfFor } from '../spec/kube-network.js';
import { hasErrno } from '../errors/index.js';

export type PinnedType = 'net' | 'ipc' | 'uts';

export interface PinnedNamespaces {
  net?: string;
  ipc?: string;
  uts?: string;
}

/** Mount points under `dir` according to /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(prefix)))
    .map((m) => m.replace(/\\040/g, ' '));
}

export async function isMountPoint(p: string): Promise<boolean> {
  return (await mountsUnder(p)).includes(p);
}

/** Unmounts p if it is mounted (lazily if busy); missing or unmounted is fine. */
export async function unmountIfMounted(host: Host, p: string): Promise<void> {
  while (await isMountPoint(p)) {
    const r = await host.run('umount', [p], { allowFailure: true });
    if (r.code !== 0) await host.run('umount', ['-l', p]);
  }
}

export async function pinNamespaces(
  host: Host,
  opts: { dir: string; types: PinnedType[]; hostname?: string },
): Promise<PinnedNamespaces> {
  const pinned: PinnedNamespaces = {};
  if (opts.types.length === 0) return pinned;
  await fs.mkdir(opts.dir, { recursive: true });
  const args: string[] = [];
  for (const t of opts.types) {
    const p = path.join(opts.dir, t);
    await fs.writeFile(p, '');
    args.push(`--${t}=${p}`);
    pinned[t] = p;
  }
  const steps: string[] = [];
  if (pinned.uts && opts.hostname) steps.push('hostname "$1"');
  if (pinned.net) steps.push('ip link set lo up');
  if (steps.length === 0) steps.push('true');
  try {
    await host.run('unshare', [...args, 'sh', '-c', steps.join(' && '), 'sh', opts.hostname ?? '']);
  } catch (e) {
    await unpinNamespaces(host, pinned);
    throw e;
  }
  return pinned;
}

export async function unpinNamespaces(host: Host, pinned: PinnedNamespaces): Promise<void> {
  for (const p of [pinned.net, pinned.ipc, pinned.uts]) {
    if (!p) continue;
    await unmountIfMounted(host, p);
    await fs.rm(p, { force: true });
  }
}

export async function mountShm(host: Host, dir: string, sizeBytes = 64 * 1024 * 1024): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  await host.run('mount', ['-t', 'tmpfs', '-o', `nosuid,nodev,noexec,mode=1777,size=${sizeBytes}`, 'shm', dir]);
  return dir;
}

export async function unmountShm(host: Host, dir: string): Promise<void> {
  await unmountIfMounted(host, dir);
  await fs.rm(dir, { recursive: true, force: true });
}

export interface PodFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

export function podHosts(opts: { hostname: string; ip?: string; hostAliases?: HostAlias[] }): string {
  const lines = [
    '# Kubernetes-style hosts file written by nspod',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    `${opts.ip ?? '127.0.1.1'}\t${opts.hostname}`,
  ];
  if (opts.hostAliases?.length) {
    lines.push('', '# Entries added by HostAliases.');
    for (const e of opts.hostAliases) lines.push(`${e.ip}\t${e.hostnames.join('\t')}`);
  }
  return lines.join('\n') + '\n';
}

export async function writePodFiles(opts: {
  dir: string;
  hostname: string;
  hostNetwork: boolean;
  ip?: string;
  hostAliases?: HostAlias[];
  dns?: DnsSpec;
}): Promise<PodFiles> {
  await fs.mkdir(opts.dir, { recursive: true });
  const files: PodFiles = {
    hosts: path.join(opts.dir, 'hosts'),
    resolvConf: path.join(opts.dir, 'resolv.conf'),
    hostname: path.join(opts.dir, 'hostname'),
  };
  let hostResolv = '';
  try {
    hostResolv = await fs.readFile('/etc/resolv.conf', 'utf8');
  } catch (e) {
    if (!hasErrno(e, 'ENOENT')) throw e;
  }
  let hostsText = opts.hostNetwork
    ? await fs.readFile('/etc/hosts', 'utf8').catch(() => podHosts({ hostname: opts.hostname }))
    : podHosts({
        hostname: opts.hostname,
        ...(opts.ip ? { ip: opts.ip } : {}),
        ...(opts.hostAliases ? { hostAliases: opts.hostAliases } : {}),
      });
  if (opts.hostNetwork && opts.hostAliases?.length) {
    hostsText = hostsText.trimEnd() + '\n\n# Entries added by HostAliases.\n';
    for (const e of opts.hostAliases) hostsText += `${e.ip}\t${e.hostnames.join('\t')}\n`;
  }
  await fs.writeFile(files.hosts, hostsText, { mode: 0o644 });
  await fs.writeFile(files.resolvConf, resolvConfFor(opts.dns, hostResolv, opts.hostNetwork), { mode: 0o644 });
  await fs.writeFile(files.hostname, opts.hostname + '\n', { mode: 0o644 });
  return files;
}
