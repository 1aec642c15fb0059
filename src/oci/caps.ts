/** Linux capabilities: the full list, Docker's default set, and add/drop as Kubernetes applies them. */
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../errors/index.js';

/** Every capability by number (capability.h), CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40. */
export const ALL_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** Docker's (and containerd's) default capability set. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const KNOWN = new Set<string>(ALL_CAPS);

/** `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` → `CAP_NET_ADMIN`; `ALL` stays `ALL`. */
export function normalizeCap(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return up;
  const cap = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN.has(cap)) throw invalidArgument(`unknown capability ${JSON.stringify(name)}`);
  return cap;
}

/**
 * The capability set: the defaults, `ALL` in add → every capability, `ALL` in drop → none, then
 * the named adds, then the named drops. Result in capability-number order.
 */
export function computeCaps(add: readonly string[], drop: readonly string[]): string[] {
  const a = add.map(normalizeCap);
  const d = drop.map(normalizeCap);
  let set = new Set<string>(DEFAULT_CAPS);
  if (a.includes('ALL')) set = new Set(ALL_CAPS);
  if (d.includes('ALL')) set = new Set();
  for (const c of a) if (c !== 'ALL') set.add(c);
  for (const c of d) if (c !== 'ALL') set.delete(c);
  return ALL_CAPS.filter((c) => set.has(c));
}

/** Capabilities named by a hex mask as in /proc/<pid>/status (`CapBnd: 000001fffeffffff`). */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt('0x' + hex.trim());
  return ALL_CAPS.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/** This process's bounding set: a container cannot be given more than this. */
export function hostBoundingCaps(statusText?: string): string[] {
  const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('CapBnd:'));
  return line ? capsFromMask(line.slice('CapBnd:'.length)) : [...ALL_CAPS];
}
