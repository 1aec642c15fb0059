/**
 * A container's environment as Kubernetes builds it, and `$(VAR)` expansion.
 *
 * Order (kubelet's): every `envFrom` source in turn (`<prefix><key>` for each key), then `env` in
 * order; a later variable of the same name replaces an earlier one. A literal `value` is expanded
 * against the variables defined before it; `command` and `args` are expanded against the final
 * list. Expansion: `$(NAME)` becomes the variable's value, or stays as written when NAME is not
 * defined; `$$` becomes `$`, so `$$(NAME)` is the literal text `$(NAME)`.
 *
 * ConfigMaps and Secrets are looked up first among those that came with the pod (same YAML file),
 * then among those stored with `nspod configmap|secret create`. A missing object or key fails the
 * container (naming the field) unless the reference says `optional: true`.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { ConfigObject, ContainerSpec, EnvVar, PodSpec } from '../spec/types.js';
import { parseMetaFieldPath } from '../spec/kube-volumes.js';
import type { ConfigObjectStore } from '../volume/index.js';
import { invalidArgument, notFound } from '../errors/index.js';

export type ConfigLookup = (kind: 'ConfigMap' | 'Secret', name: string) => Promise<ConfigObject | undefined>;

/** Finds ConfigMaps/Secrets for a pod: the ones given with it first, then the stored ones of its namespace. */
export function configLookup(spec: PodSpec, store: ConfigObjectStore): ConfigLookup {
  return async (kind, name) =>
    spec.configObjects?.find((o) => o.kind === kind && o.name === name) ??
    (await store.get(kind, spec.namespace, name));
}

/** Expands `$(VAR)` references in `input` from `vars`; see the module comment. */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i += 2;
      } else {
        const name = input.slice(i + 2, close);
        const v = vars.get(name);
        out += v !== undefined ? v : `$(${name})`;
        i = close + 1;
      }
    } else {
      out += '$' + next;
      i += 2;
    }
  }
  return out;
}

/** What fieldRef may read about the pod and the node. */
export interface PodFacts {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccountName?: string;
  /** the pod's first IP (the host's with hostNetwork); empty when it has none */
  podIP: string;
  /** every IP of the pod, comma-separated (status.podIPs) */
  podIPs: string;
  nodeName: string;
  hostIP: string;
}

/**
 * The host's address for status.hostIP: the IPv4 address of the interface of the default route
 * (not a bridge that pods hang off), else the first non-internal address, else empty.
 */
export function hostIP(): string {
  const ifaces = os.networkInterfaces();
  let dev: string | undefined;
  try {
    // /proc/net/route: Iface Destination Gateway …, destination 00000000 = default
    dev = readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === '00000000')?.[0];
  } catch {
    dev = undefined;
  }
  const onDev = dev ? (ifaces[dev] ?? []).find((a) => a.family === 'IPv4') : undefined;
  if (onDev) return onDev.address;
  const ext = Object.values(ifaces)
    .flatMap((l) => l ?? [])
    .filter((a) => !a.internal);
  return (ext.find((a) => a.family === 'IPv4') ?? ext[0])?.address ?? '';
}

export function podFacts(p: { spec: PodSpec; uid: string; podIPs?: string[] }): PodFacts {
  const host = hostIP();
  const ips = p.spec.namespaces.network === 'node' ? [host] : (p.podIPs ?? []);
  return {
    name: p.spec.name,
    namespace: p.spec.namespace,
    uid: p.uid,
    labels: p.spec.labels,
    annotations: p.spec.annotations,
    ...(p.spec.serviceAccountName ? { serviceAccountName: p.spec.serviceAccountName } : {}),
    podIP: ips[0] ?? '',
    podIPs: ips.join(','),
    nodeName: os.hostname(),
    hostIP: host,
  };
}

function fieldValue(fieldPath: string, f: PodFacts, where: string): string {
  switch (fieldPath) {
    case 'metadata.name':
      return f.name;
    case 'metadata.namespace':
      return f.namespace;
    case 'metadata.uid':
      return f.uid;
    case 'spec.nodeName':
      return f.nodeName;
    case 'spec.serviceAccountName':
      return f.serviceAccountName ?? 'default';
    case 'status.hostIP':
    case 'status.hostIPs':
      return f.hostIP;
    case 'status.podIP':
      return f.podIP;
    case 'status.podIPs':
      return f.podIPs;
  }
  const meta = parseMetaFieldPath(fieldPath);
  if (!meta) throw invalidArgument(`${where}: fieldPath ${JSON.stringify(fieldPath)} is not supported`);
  return (meta[0] === 'labels' ? f.labels : f.annotations)[meta[1]] ?? '';
}

/** `key="value"` lines sorted by key, as kubelet writes a whole label or annotation map. */
export function formatMap(m: Record<string, string>): string {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${JSON.stringify(m[k])}`)
    .join('\n');
}

/** The content of a downwardAPI volume file for a fieldRef. */
export function downwardFieldValue(fieldPath: string, f: PodFacts, where: string): string {
  if (fieldPath === 'metadata.labels') return formatMap(f.labels);
  if (fieldPath === 'metadata.annotations') return formatMap(f.annotations);
  return fieldValue(fieldPath, f, where);
}

/**
 * resourceFieldRef: the container's limit or request divided by `divisor` (milli-CPUs for cpu,
 * bytes for memory), rounded up. An unset limit is the node's capacity (CPUs, memory), as
 * kubelet uses node allocatable; an unset request is 0.
 */
export function resourceValue(c: ContainerSpec, resource: string, divisor: number): string {
  const [which, what] = resource.split('.') as ['limits' | 'requests', 'cpu' | 'memory'];
  const list = c.resources[which];
  let v = what === 'cpu' ? list.cpuMilli : list.memoryBytes;
  if (v === undefined) v = which === 'limits' ? (what === 'cpu' ? os.cpus().length * 1000 : os.totalmem()) : 0;
  return String(Math.ceil(v / divisor));
}

function decode(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}

export interface ResolveEnvInput {
  pod: PodSpec;
  container: ContainerSpec;
  /** field path of the container, e.g. `spec.containers[0]` */
  path: string;
  facts: PodFacts;
  lookup: ConfigLookup;
  /** told about envFrom keys that are not valid variable names (skipped, as kubelet does) */
  warn?: (msg: string) => void;
}

/** The container's final variables in order (envFrom, then env), each resolved and expanded. */
export async function resolveEnv(input: ResolveEnvInput): Promise<EnvVar[]> {
  const { container: c, path: cp, lookup } = input;
  const vars = new Map<string, string>();
  for (const [i, src] of (c.envFrom ?? []).entries()) {
    const kind = src.kind === 'configMap' ? 'ConfigMap' : 'Secret';
    const obj = await lookup(kind, src.name);
    if (!obj) {
      if (src.optional) continue;
      throw notFound(
        `${cp}.envFrom[${i}].${src.kind}Ref.name: ${kind.toLowerCase()} ${JSON.stringify(src.name)} not found in namespace ${JSON.stringify(input.pod.namespace)}`,
      );
    }
    for (const [k, b64] of Object.entries(obj.data)) {
      const name = src.prefix + k;
      if (name.includes('=') || name === '') {
        input.warn?.(`${cp}.envFrom[${i}]: key ${JSON.stringify(k)} is not a valid variable name, skipped`);
        continue;
      }
      vars.set(name, decode(b64));
    }
  }
  for (const [i, e] of c.env.entries()) {
    const ep = `${cp}.env[${i}].valueFrom`;
    const from = e.valueFrom;
    if (!from) {
      vars.set(e.name, expand(e.value, vars));
      continue;
    }
    if ('configMapKeyRef' in from || 'secretKeyRef' in from) {
      const cm = 'configMapKeyRef' in from;
      const ref = cm ? from.configMapKeyRef : from.secretKeyRef;
      const kind = cm ? 'ConfigMap' : 'Secret';
      const field = `${ep}.${cm ? 'configMapKeyRef' : 'secretKeyRef'}`;
      const obj = await lookup(kind, ref.name);
      const b64 = obj?.data[ref.key];
      if (b64 === undefined) {
        if (ref.optional) continue;
        throw notFound(
          obj
            ? `${field}.key: ${kind.toLowerCase()} ${JSON.stringify(ref.name)} has no key ${JSON.stringify(ref.key)}`
            : `${field}.name: ${kind.toLowerCase()} ${JSON.stringify(ref.name)} not found in namespace ${JSON.stringify(input.pod.namespace)}`,
        );
      }
      vars.set(e.name, decode(b64));
    } else if ('fieldRef' in from) {
      vars.set(e.name, fieldValue(from.fieldRef.fieldPath, input.facts, `${ep}.fieldRef`));
    } else {
      const ref = from.resourceFieldRef;
      const target = ref.containerName ? input.pod.containers.find((x) => x.name === ref.containerName) : c;
      if (!target) {
        throw invalidArgument(
          `${ep}.resourceFieldRef.containerName: no container named ${JSON.stringify(ref.containerName)}`,
        );
      }
      vars.set(e.name, resourceValue(target, ref.resource, ref.divisor));
    }
  }
  return [...vars].map(([name, value]) => ({ name, value }));
}

/** The container with its env resolved and `$(VAR)` expanded in command and args. */
export async function resolveContainer(input: ResolveEnvInput): Promise<ContainerSpec> {
  const env = await resolveEnv(input);
  const vars = new Map(env.map((e) => [e.name, e.value]));
  const rest: ContainerSpec = { ...input.container };
  delete rest.envFrom;
  const out: ContainerSpec = { ...rest, env };
  if (rest.command) out.command = rest.command.map((a) => expand(a, vars));
  if (rest.args) out.args = rest.args.map((a) => expand(a, vars));
  return out;
}
