/**
 * Model-level invariants of a PodSpec, shared by every front door (Kubernetes YAML, CRI). Errors
 * are INVALID_ARGUMENT and start with the field path in Kubernetes spelling
 * (`spec.containers[1].name: duplicate name "app"`), so a user of either door can find the field.
 */
import { isIP } from 'node:net';
import { invalidArgument } from '../errors/index.js';
import type { ContainerSpec, PodSpec, ResourceList } from './types.js';

const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PORT_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Linux capabilities by their name without `CAP_`, as of Linux 6.x (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40). */
export const LINUX_CAPABILITIES: readonly string[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
];
const CAPS = new Set(LINUX_CAPABILITIES);

/** Throws INVALID_ARGUMENT `<path>: <message>`. */
export function fail(path: string, message: string): never {
  throw invalidArgument(`${path}: ${message}`);
}

/** A DNS-1123 label: container names, hostnames, namespaces. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL_RE.test(s);
}

/** A DNS-1123 subdomain: pod names. */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && SUBDOMAIN_RE.test(s);
}

export function checkDnsLabel(s: string, path: string): void {
  if (!isDnsLabel(s)) {
    fail(
      path,
      `${JSON.stringify(s)} is not a valid name (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`,
    );
  }
}

export function checkDnsSubdomain(s: string, path: string): void {
  if (!isDnsSubdomain(s)) {
    fail(
      path,
      `${JSON.stringify(s)} is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)`,
    );
  }
}

/** A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
export function checkMetadataKey(key: string, path: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if ((prefix !== undefined && !isDnsSubdomain(prefix)) || name.length > 63 || !LABEL_NAME_RE.test(name)) {
    fail(
      path,
      `${JSON.stringify(key)} is not a valid key (an optional DNS prefix and '/', then letters, digits, '-', '_' and '.')`,
    );
  }
}

/** A label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit. */
export function checkLabelValue(value: string, path: string): void {
  if (value !== '' && (value.length > 63 || !LABEL_NAME_RE.test(value))) {
    fail(path, `${JSON.stringify(value)} is not a valid label value (at most 63 letters, digits, '-', '_' and '.')`);
  }
}

/**
 * A capability name normalised as nspod stores it: upper case, without `CAP_` (`cap_net_admin` →
 * `NET_ADMIN`). `ALL` is kept as is. Throws for names Linux does not know.
 */
export function normalizeCapability(name: string, path: string): string {
  const upper = name.trim().toUpperCase();
  const bare = upper.startsWith('CAP_') ? upper.slice(4) : upper;
  if (bare !== 'ALL' && !CAPS.has(bare)) fail(path, `unknown capability ${JSON.stringify(name)}`);
  return bare;
}

function checkPortNumber(n: number, path: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(path, `${n} is not a valid port (1-65535)`);
}

function checkResources(c: ContainerSpec, path: string): void {
  const kinds: (keyof ResourceList)[] = ['memoryBytes', 'cpuMilli'];
  for (const side of ['limits', 'requests'] as const) {
    for (const k of kinds) {
      const v = c.resources[side][k];
      const field = `${path}.resources.${side}.${k === 'memoryBytes' ? 'memory' : 'cpu'}`;
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) fail(field, `must be a non-negative integer`);
    }
  }
  for (const k of kinds) {
    const limit = c.resources.limits[k];
    const request = c.resources.requests[k];
    if (limit !== undefined && request !== undefined && request > limit) {
      const what = k === 'memoryBytes' ? 'memory' : 'cpu';
      fail(`${path}.resources.requests.${what}`, `must be less than or equal to the ${what} limit`);
    }
  }
}

function checkContainer(c: ContainerSpec, path: string, pod: PodSpec): void {
  checkDnsLabel(c.name, `${path}.name`);
  if (c.image.trim() === '') fail(`${path}.image`, 'required');
  if (/\s/.test(c.image)) fail(`${path}.image`, `${JSON.stringify(c.image)} must not contain whitespace`);
  if (c.workingDir !== undefined && !c.workingDir.startsWith('/')) {
    fail(`${path}.workingDir`, `${JSON.stringify(c.workingDir)} must be an absolute path`);
  }
  c.env.forEach((e, i) => {
    if (e.name === '' || e.name.includes('=') || e.name.includes('\0')) {
      fail(`${path}.env[${i}].name`, `${JSON.stringify(e.name)} is not a valid variable name`);
    }
  });
  const portNames = new Set<string>();
  c.ports.forEach((p, i) => {
    const pp = `${path}.ports[${i}]`;
    checkPortNumber(p.containerPort, `${pp}.containerPort`);
    if (p.hostPort !== undefined) {
      checkPortNumber(p.hostPort, `${pp}.hostPort`);
      if (pod.namespaces.network === 'node' && p.hostPort !== p.containerPort) {
        fail(`${pp}.hostPort`, `must equal containerPort (${p.containerPort}) with hostNetwork`);
      }
    }
    if (p.hostIP !== undefined && isIP(p.hostIP) === 0)
      fail(`${pp}.hostIP`, `${JSON.stringify(p.hostIP)} is not an IP address`);
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol))
      fail(`${pp}.protocol`, `${JSON.stringify(p.protocol)} is not TCP, UDP or SCTP`);
    if (p.name !== undefined) {
      if (p.name.length > 15 || !PORT_NAME_RE.test(p.name) || !/[a-z]/.test(p.name) || p.name.includes('--')) {
        fail(
          `${pp}.name`,
          `${JSON.stringify(p.name)} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)`,
        );
      }
      if (portNames.has(p.name)) fail(`${pp}.name`, `duplicate port name ${JSON.stringify(p.name)}`);
      portNames.add(p.name);
    }
  });
  checkResources(c, path);
  const sc = c.securityContext;
  for (const k of ['runAsUser', 'runAsGroup'] as const) {
    const v = sc[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 2147483647)) {
      fail(`${path}.securityContext.${k}`, `${v} is not a valid id (0-2147483647)`);
    }
  }
  for (const k of ['add', 'drop'] as const) {
    sc.capabilities[k].forEach((cap, i) => {
      if (normalizeCapability(cap, `${path}.securityContext.capabilities.${k}[${i}]`) !== cap) {
        fail(
          `${path}.securityContext.capabilities.${k}[${i}]`,
          `${JSON.stringify(cap)} must be upper case without CAP_`,
        );
      }
    });
  }
}

/**
 * Checks the invariants every PodSpec must hold, whatever door it came through: valid names,
 * unique container names, non-empty images, port numbers, resources, capabilities. Throws the
 * first problem found as INVALID_ARGUMENT with the field path.
 */
export function validatePod(pod: PodSpec): void {
  checkDnsSubdomain(pod.name, 'metadata.name');
  checkDnsLabel(pod.namespace, 'metadata.namespace');
  if (pod.uid !== undefined && pod.uid.trim() === '') fail('metadata.uid', 'must not be empty');
  if (pod.hostname.length > 63 || !isDnsSubdomain(pod.hostname)) checkDnsLabel(pod.hostname, 'spec.hostname');
  if (!['Always', 'OnFailure', 'Never'].includes(pod.restartPolicy)) {
    fail('spec.restartPolicy', `${JSON.stringify(pod.restartPolicy)} is not Always, OnFailure or Never`);
  }
  const grace = pod.terminationGracePeriodSeconds;
  if (!Number.isSafeInteger(grace) || grace < 0)
    fail('spec.terminationGracePeriodSeconds', 'must be a non-negative integer');
  if (pod.containers.length === 0) fail('spec.containers', 'at least one container is required');
  const names = new Set<string>();
  (pod.initContainers ?? []).forEach((c, i) => {
    checkContainer(c, `spec.initContainers[${i}]`, pod);
    if (names.has(c.name)) fail(`spec.initContainers[${i}].name`, `duplicate name ${JSON.stringify(c.name)}`);
    names.add(c.name);
  });
  const hostPorts = new Set<string>();
  pod.containers.forEach((c, i) => {
    const path = `spec.containers[${i}]`;
    checkContainer(c, path, pod);
    if (names.has(c.name)) fail(`${path}.name`, `duplicate name ${JSON.stringify(c.name)}`);
    names.add(c.name);
    c.ports.forEach((p, j) => {
      if (p.hostPort === undefined) return;
      const key = `${p.hostIP ?? ''}/${p.hostPort}/${p.protocol}`;
      if (hostPorts.has(key)) fail(`${path}.ports[${j}].hostPort`, `duplicate host port ${p.hostPort}/${p.protocol}`);
      hostPorts.add(key);
    });
  });
}
