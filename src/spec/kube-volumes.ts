/**
 * Kubernetes volumes and configuration → spec: `spec.volumes`, a container's `volumeMounts`,
 * `env[].valueFrom`, `envFrom`, and ConfigMap/Secret documents given in the same file.
 * Wrong types and bad values throw naming the field; sources nspod does not support are errors
 * too (a pod that silently lacks a volume would be worse than one that does not start).
 */
import type {
  ConfigObject,
  DownwardAPIItem,
  EnvFromSource,
  EnvVarSource,
  HostPathType,
  KeyToPath,
  MountPropagation,
  PodSpec,
  VolumeMount,
  VolumeSource,
  VolumeSpec,
} from './types.js';
import type { Reader, YamlMap } from './fields.js';
import {
  asMap,
  child,
  describe,
  isMap,
  optBool,
  optInt,
  optList,
  optMap,
  optString,
  reqString,
  warnUnknown,
} from './fields.js';
import { cpuMilli, memoryBytes, parseQuantity } from './quantity.js';
import { checkDnsLabel, checkDnsSubdomain, fail } from './validate.js';

const HOST_PATH_TYPES: readonly HostPathType[] = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];
const SOURCES = ['emptyDir', 'hostPath', 'configMap', 'secret', 'persistentVolumeClaim', 'downwardAPI'] as const;
/** Volume sources of Kubernetes that nspod does not provide: refused by name. */
const UNSUPPORTED_SOURCES = [
  'projected',
  'nfs',
  'iscsi',
  'csi',
  'ephemeral',
  'image',
  'gitRepo',
  'awsElasticBlockStore',
  'gcePersistentDisk',
  'azureDisk',
  'azureFile',
  'cephfs',
  'cinder',
  'fc',
  'flexVolume',
  'flocker',
  'glusterfs',
  'local',
  'photonPersistentDisk',
  'portworxVolume',
  'quobyte',
  'rbd',
  'scaleIO',
  'storageos',
  'vsphereVolume',
];
const MAX_MODE = 0o777;
const KEY_RE = /^[-._a-zA-Z0-9]+$/;
/** The resources a resourceFieldRef may name (ephemeral-storage and hugepages are not tracked by nspod). */
const RESOURCE_FIELDS = ['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory'];
/** fieldRef paths nspod can answer. */
const FIELD_PATHS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];

/** A ConfigMap/Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`. */
export function checkConfigKey(key: string, path: string): void {
  if (key.length === 0 || key.length > 253 || !KEY_RE.test(key) || key === '.' || key === '..') {
    fail(path, `${JSON.stringify(key)} is not a valid key (letters, digits, '-', '_' and '.', at most 253 characters)`);
  }
}

/** A path relative to a volume: no leading '/', no `..` element. */
export function checkRelativePath(p: string, path: string): void {
  if (p === '') fail(path, 'must not be empty');
  if (p.startsWith('/')) fail(path, `${JSON.stringify(p)} must be a relative path`);
  if (p.split('/').includes('..')) fail(path, `${JSON.stringify(p)} must not contain '..'`);
  if (p.includes('\0')) fail(path, 'must not contain NUL');
}

/** No item path may be a directory of another (`a` and `a/b` cannot both be files). */
function checkPathNesting(paths: string[], path: string): void {
  paths.forEach((p, i) => {
    const j = paths.findIndex((q) => q.startsWith(`${p}/`));
    if (j >= 0)
      fail(`${path}.items[${j}].path`, `${JSON.stringify(paths[j])} is inside ${JSON.stringify(p)} (items[${i}])`);
  });
}

function optMode(m: YamlMap, key: string, path: string): number | undefined {
  return optInt(m, key, path, { min: 0, max: MAX_MODE });
}

function readItems(r: Reader, m: YamlMap, path: string): KeyToPath[] | undefined {
  const list = optList(m, 'items', path);
  if (list === undefined) return undefined;
  const seen = new Set<string>();
  const items = list.map((item, i) => {
    const p = `${path}.items[${i}]`;
    const im = asMap(item, p);
    warnUnknown(r, im, ['key', 'path', 'mode'], p);
    const key = reqString(im, 'key', p);
    checkConfigKey(key, `${p}.key`);
    const rel = reqString(im, 'path', p);
    checkRelativePath(rel, `${p}.path`);
    if (seen.has(rel)) fail(`${p}.path`, `duplicate path ${JSON.stringify(rel)}`);
    seen.add(rel);
    const out: KeyToPath = { key, path: rel };
    const mode = optMode(im, 'mode', p);
    if (mode !== undefined) out.mode = mode;
    return out;
  });
  checkPathNesting(
    items.map((x) => x.path),
    path,
  );
  return items;
}

function readSource(r: Reader, key: (typeof SOURCES)[number], m: YamlMap, path: string): VolumeSource {
  const p = `${path}.${key}`;
  switch (key) {
    case 'emptyDir': {
      warnUnknown(r, m, ['medium', 'sizeLimit'], p);
      const medium = optString(m, 'medium', p) ?? '';
      if (medium !== '' && medium !== 'Memory') fail(`${p}.medium`, `${JSON.stringify(medium)} is not "" or Memory`);
      const size = m['sizeLimit'];
      const emptyDir: { medium: '' | 'Memory'; sizeLimitBytes?: number } = { medium };
      if (size !== undefined && size !== null) {
        if (typeof size !== 'string' && typeof size !== 'number')
          fail(`${p}.sizeLimit`, `must be a quantity (got ${describe(size)})`);
        const bytes = memoryBytes(size, `${p}.sizeLimit`);
        if (bytes <= 0) fail(`${p}.sizeLimit`, 'must be greater than zero');
        emptyDir.sizeLimitBytes = bytes;
        if (medium === '') r.warnings.push(`${p}.sizeLimit: not enforced for a disk-backed emptyDir`);
      }
      return { emptyDir };
    }
    case 'hostPath': {
      warnUnknown(r, m, ['path', 'type'], p);
      const hp = reqString(m, 'path', p);
      if (!hp.startsWith('/')) fail(`${p}.path`, `${JSON.stringify(hp)} must be an absolute path`);
      if (hp.split('/').includes('..')) fail(`${p}.path`, `${JSON.stringify(hp)} must not contain '..'`);
      const type = optString(m, 'type', p) ?? '';
      if (!(HOST_PATH_TYPES as readonly string[]).includes(type)) {
        fail(`${p}.type`, `${JSON.stringify(type)} is not one of ${HOST_PATH_TYPES.filter(Boolean).join(', ')}`);
      }
      return { hostPath: { path: hp.length > 1 ? hp.replace(/\/+$/, '') : hp, type: type as HostPathType } };
    }
    case 'configMap': {
      warnUnknown(r, m, ['name', 'items', 'defaultMode', 'optional'], p);
      const name = reqString(m, 'name', p);
      checkDnsSubdomain(name, `${p}.name`);
      const items = readItems(r, m, p);
      return {
        configMap: {
          name,
          ...(items ? { items } : {}),
          defaultMode: optMode(m, 'defaultMode', p) ?? 0o644,
          optional: optBool(m, 'optional', p) ?? false,
        },
      };
    }
    case 'secret': {
      warnUnknown(r, m, ['secretName', 'items', 'defaultMode', 'optional'], p);
      const secretName = reqString(m, 'secretName', p);
      checkDnsSubdomain(secretName, `${p}.secretName`);
      const items = readItems(r, m, p);
      return {
        secret: {
          secretName,
          ...(items ? { items } : {}),
          defaultMode: optMode(m, 'defaultMode', p) ?? 0o644,
          optional: optBool(m, 'optional', p) ?? false,
        },
      };
    }
    case 'persistentVolumeClaim': {
      warnUnknown(r, m, ['claimName', 'readOnly'], p);
      const claimName = reqString(m, 'claimName', p);
      checkDnsSubdomain(claimName, `${p}.claimName`);
      return { persistentVolumeClaim: { claimName, readOnly: optBool(m, 'readOnly', p) ?? false } };
    }
    case 'downwardAPI': {
      warnUnknown(r, m, ['items', 'defaultMode'], p);
      return { downwardAPI: { items: readDownwardItems(r, m, p), defaultMode: optMode(m, 'defaultMode', p) ?? 0o644 } };
    }
  }
}

/** Reads `spec.volumes`. */
export function readVolumes(r: Reader, list: unknown[], path: string): VolumeSpec[] {
  const names = new Set<string>();
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    const name = reqString(m, 'name', p);
    checkDnsLabel(name, `${p}.name`);
    if (names.has(name)) fail(`${p}.name`, `duplicate volume name ${JSON.stringify(name)}`);
    names.add(name);
    const given = Object.keys(m).filter((k) => k !== 'name' && m[k] !== undefined && m[k] !== null);
    const unsupported = given.find((k) => UNSUPPORTED_SOURCES.includes(k));
    if (unsupported) fail(child(p, unsupported), 'this volume source is not supported by nspod');
    const known = given.filter((k): k is (typeof SOURCES)[number] => (SOURCES as readonly string[]).includes(k));
    warnUnknown(r, m, ['name', ...SOURCES], p);
    if (known.length === 0) fail(p, `one volume source is required (${SOURCES.join(', ')})`);
    if (known.length > 1) fail(child(p, known[1]!), `may not be specified together with ${known[0]}`);
    const key = known[0]!;
    const v = m[key];
    const source = readSource(r, key, isMap(v) ? v : asMap(v, child(p, key)), p);
    return { name, source };
  });
}

/** Reads a container's `volumeMounts` (volume names are checked against the pod by checkVolumeMounts). */
export function readVolumeMounts(r: Reader, list: unknown[], path: string): VolumeMount[] {
  const paths = new Set<string>();
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    warnUnknown(r, m, ['name', 'mountPath', 'readOnly', 'subPath', 'mountPropagation', 'subPathExpr'], p);
    if (m['subPathExpr'] !== undefined && m['subPathExpr'] !== null)
      fail(`${p}.subPathExpr`, 'not supported by nspod (use subPath)');
    const name = reqString(m, 'name', p);
    const mountPath = reqString(m, 'mountPath', p);
    if (!mountPath.startsWith('/')) fail(`${p}.mountPath`, `${JSON.stringify(mountPath)} must be an absolute path`);
    if (mountPath.split('/').includes('..'))
      fail(`${p}.mountPath`, `${JSON.stringify(mountPath)} must not contain '..'`);
    const clean = mountPath.length > 1 ? mountPath.replace(/\/+$/, '').replace(/\/+/g, '/') : mountPath;
    if (clean === '/') fail(`${p}.mountPath`, 'must not be "/"');
    if (paths.has(clean)) fail(`${p}.mountPath`, `${JSON.stringify(clean)} is mounted twice`);
    paths.add(clean);
    const vm: VolumeMount = {
      name,
      mountPath: clean,
      readOnly: optBool(m, 'readOnly', p) ?? false,
      propagation: 'None',
    };
    const subPath = optString(m, 'subPath', p);
    if (subPath !== undefined && subPath !== '') {
      checkRelativePath(subPath, `${p}.subPath`);
      vm.subPath = subPath;
    }
    const prop = optString(m, 'mountPropagation', p);
    if (prop !== undefined) {
      if (prop !== 'None' && prop !== 'HostToContainer' && prop !== 'Bidirectional') {
        fail(`${p}.mountPropagation`, `${JSON.stringify(prop)} is not None, HostToContainer or Bidirectional`);
      }
      vm.propagation = prop satisfies MountPropagation;
    }
    return vm;
  });
}

function readKeyRef(r: Reader, m: YamlMap, path: string): { name: string; key: string; optional: boolean } {
  warnUnknown(r, m, ['name', 'key', 'optional'], path);
  const name = reqString(m, 'name', path);
  checkDnsSubdomain(name, `${path}.name`);
  const key = reqString(m, 'key', path);
  checkConfigKey(key, `${path}.key`);
  return { name, key, optional: optBool(m, 'optional', path) ?? false };
}

/** `metadata.labels['k']` / `metadata.annotations['k']` (either quote) → [which, key]. */
export function parseMetaFieldPath(fp: string): ['labels' | 'annotations', string] | undefined {
  const m = /^metadata\.(labels|annotations)\[(['"])(.+)\2\]$/.exec(fp);
  return m ? [m[1] as 'labels' | 'annotations', m[3]!] : undefined;
}

/** Reads `env[i].valueFrom`. */
export function readEnvSource(r: Reader, m: YamlMap, path: string): EnvVarSource {
  const kinds = ['configMapKeyRef', 'secretKeyRef', 'fieldRef', 'resourceFieldRef'].filter(
    (k) => m[k] !== undefined && m[k] !== null,
  );
  warnUnknown(r, m, ['configMapKeyRef', 'secretKeyRef', 'fieldRef', 'resourceFieldRef'], path);
  if (kinds.length === 0) fail(path, 'one of configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef is required');
  if (kinds.length > 1) fail(`${path}.${kinds[1]}`, `may not be specified together with ${kinds[0]}`);
  const kind = kinds[0]!;
  const p = `${path}.${kind}`;
  const sm = asMap(m[kind], p);
  if (kind === 'configMapKeyRef') return { configMapKeyRef: readKeyRef(r, sm, p) };
  if (kind === 'secretKeyRef') return { secretKeyRef: readKeyRef(r, sm, p) };
  if (kind === 'fieldRef') return { fieldRef: readFieldRef(r, sm, p, FIELD_PATHS) };
  return { resourceFieldRef: readResourceFieldRef(r, sm, p) };
}

/** Reads a fieldRef whose fieldPath is one of `allowed` or a single label/annotation. */
function readFieldRef(r: Reader, sm: YamlMap, p: string, allowed: readonly string[]): { fieldPath: string } {
  warnUnknown(r, sm, ['fieldPath', 'apiVersion'], p);
  const apiVersion = optString(sm, 'apiVersion', p);
  if (apiVersion !== undefined && apiVersion !== 'v1')
    fail(`${p}.apiVersion`, `${JSON.stringify(apiVersion)} is not v1`);
  const fieldPath = reqString(sm, 'fieldPath', p);
  if (!allowed.includes(fieldPath) && !parseMetaFieldPath(fieldPath)) {
    fail(
      `${p}.fieldPath`,
      `${JSON.stringify(fieldPath)} is not supported (expected ${allowed.join(', ')}, metadata.labels['…'] or metadata.annotations['…'])`,
    );
  }
  return { fieldPath };
}

function readResourceFieldRef(
  r: Reader,
  sm: YamlMap,
  p: string,
): { containerName?: string; resource: string; divisor: number } {
  warnUnknown(r, sm, ['containerName', 'resource', 'divisor'], p);
  const resource = reqString(sm, 'resource', p);
  if (!RESOURCE_FIELDS.includes(resource)) {
    fail(`${p}.resource`, `${JSON.stringify(resource)} is not supported (expected ${RESOURCE_FIELDS.join(', ')})`);
  }
  const dv = sm['divisor'];
  let divisor = 1;
  if (dv !== undefined && dv !== null) {
    if (typeof dv !== 'string' && typeof dv !== 'number')
      fail(`${p}.divisor`, `must be a quantity (got ${describe(dv)})`);
    // cpu divisors are kept in milli-CPUs, memory ones in bytes
    divisor = resource.endsWith('.cpu') ? cpuMilli(dv, `${p}.divisor`) : parseQuantity(dv, `${p}.divisor`);
    if (!(divisor > 0)) fail(`${p}.divisor`, 'must be greater than zero');
  } else if (resource.endsWith('.cpu')) divisor = 1000;
  const containerName = optString(sm, 'containerName', p);
  return { ...(containerName ? { containerName } : {}), resource, divisor };
}

/** fieldRef paths a downwardAPI volume may project (whole label and annotation maps too; no IPs). */
const DOWNWARD_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'metadata.labels',
  'metadata.annotations',
];

function readDownwardItems(r: Reader, m: YamlMap, path: string): DownwardAPIItem[] {
  const seen = new Set<string>();
  const items = (optList(m, 'items', path) ?? []).map((item, i) => {
    const p = `${path}.items[${i}]`;
    const im = asMap(item, p);
    warnUnknown(r, im, ['path', 'fieldRef', 'resourceFieldRef', 'mode'], p);
    const rel = reqString(im, 'path', p);
    checkRelativePath(rel, `${p}.path`);
    if (seen.has(rel)) fail(`${p}.path`, `duplicate path ${JSON.stringify(rel)}`);
    seen.add(rel);
    const fm = optMap(im, 'fieldRef', p);
    const rm = optMap(im, 'resourceFieldRef', p);
    if (fm && rm) fail(`${p}.resourceFieldRef`, 'may not be specified together with fieldRef');
    if (!fm && !rm) fail(p, 'one of fieldRef or resourceFieldRef is required');
    const out: DownwardAPIItem = { path: rel };
    if (fm) out.fieldRef = readFieldRef(r, fm, `${p}.fieldRef`, DOWNWARD_FIELDS);
    if (rm) {
      const ref = readResourceFieldRef(r, rm, `${p}.resourceFieldRef`);
      if (ref.containerName === undefined) fail(`${p}.resourceFieldRef.containerName`, 'required in a volume');
      out.resourceFieldRef = { ...ref, containerName: ref.containerName };
    }
    const mode = optMode(im, 'mode', p);
    if (mode !== undefined) out.mode = mode;
    return out;
  });
  checkPathNesting(
    items.map((x) => x.path),
    path,
  );
  return items;
}

/** Reads a container's `envFrom`. */
export function readEnvFrom(r: Reader, list: unknown[], path: string): EnvFromSource[] {
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    warnUnknown(r, m, ['prefix', 'configMapRef', 'secretRef'], p);
    const prefix = optString(m, 'prefix', p) ?? '';
    if (prefix.includes('=')) fail(`${p}.prefix`, `${JSON.stringify(prefix)} must not contain '='`);
    const cm = optMap(m, 'configMapRef', p);
    const sec = optMap(m, 'secretRef', p);
    if (cm && sec) fail(`${p}.secretRef`, 'may not be specified together with configMapRef');
    const src = cm ?? sec;
    if (!src) fail(p, 'one of configMapRef or secretRef is required');
    const sp = `${p}.${cm ? 'configMapRef' : 'secretRef'}`;
    warnUnknown(r, src, ['name', 'optional'], sp);
    const name = reqString(src, 'name', sp);
    checkDnsSubdomain(name, `${sp}.name`);
    return { kind: cm ? 'configMap' : 'secret', name, prefix, optional: optBool(src, 'optional', sp) ?? false };
  });
}

/** Every volumeMount names a volume of the pod; resourceFieldRef names a container of the pod. */
export function checkPodReferences(pod: PodSpec): void {
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  const containers = new Set(pod.containers.map((c) => c.name));
  (pod.volumes ?? []).forEach((v, i) => {
    if (!('downwardAPI' in v.source)) return;
    v.source.downwardAPI.items.forEach((it, j) => {
      const name = it.resourceFieldRef?.containerName;
      if (name !== undefined && !containers.has(name)) {
        fail(
          `spec.volumes[${i}].downwardAPI.items[${j}].resourceFieldRef.containerName`,
          `no container named ${JSON.stringify(name)} in the pod`,
        );
      }
    });
  });
  pod.containers.forEach((c, i) => {
    (c.volumeMounts ?? []).forEach((vm, j) => {
      const p = `spec.containers[${i}].volumeMounts[${j}]`;
      const v = volumes.get(vm.name);
      if (!v) fail(`${p}.name`, `no volume named ${JSON.stringify(vm.name)} in spec.volumes`);
      if (vm.propagation === 'Bidirectional' && !c.securityContext.privileged) {
        fail(`${p}.mountPropagation`, 'Bidirectional is only allowed in privileged containers');
      }
    });
    c.env.forEach((e, j) => {
      const ref = e.valueFrom && 'resourceFieldRef' in e.valueFrom ? e.valueFrom.resourceFieldRef : undefined;
      if (ref?.containerName !== undefined && !containers.has(ref.containerName)) {
        fail(
          `spec.containers[${i}].env[${j}].valueFrom.resourceFieldRef.containerName`,
          `no container named ${JSON.stringify(ref.containerName)} in the pod`,
        );
      }
    });
  });
}

function readDataMap(m: YamlMap, key: string, path: string, base64: boolean): Record<string, string> {
  const dm = optMap(m, key, path);
  const out: Record<string, string> = {};
  if (!dm) return out;
  for (const [k, v] of Object.entries(dm)) {
    const kp = child(child(path, key), k);
    checkConfigKey(k, kp);
    if (v === null || v === undefined) {
      out[k] = '';
      continue;
    }
    if (typeof v !== 'string') fail(kp, `must be a string (got ${describe(v)}; quote it in YAML)`);
    if (base64) {
      const clean = v.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) fail(kp, 'is not valid base64');
      out[k] = clean;
    } else out[k] = Buffer.from(v, 'utf8').toString('base64');
  }
  return out;
}

/** Reads a `kind: ConfigMap` or `kind: Secret` document into a ConfigObject. */
export function readConfigObject(r: Reader, doc: YamlMap, kind: 'ConfigMap' | 'Secret'): ConfigObject {
  const fields =
    kind === 'ConfigMap'
      ? ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable']
      : ['apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'];
  warnUnknown(r, doc, fields, '');
  if (doc['apiVersion'] !== 'v1') fail('apiVersion', `${describe(doc['apiVersion'])} is not supported (expected v1)`);
  const meta = optMap(doc, 'metadata', '');
  if (!meta) fail('metadata.name', 'required');
  const name = reqString(meta, 'name', 'metadata');
  checkDnsSubdomain(name, 'metadata.name');
  const namespace = optString(meta, 'namespace', 'metadata') || 'default';
  checkDnsLabel(namespace, 'metadata.namespace');
  let data: Record<string, string>;
  if (kind === 'ConfigMap') {
    const text = readDataMap(doc, 'data', '', false);
    const bin = readDataMap(doc, 'binaryData', '', true);
    for (const k of Object.keys(bin)) if (k in text) fail(child('binaryData', k), 'duplicates a key of data');
    data = { ...text, ...bin };
  } else {
    const type = optString(doc, 'type', '');
    if (type !== undefined && type !== 'Opaque' && type !== '')
      r.warnings.push(`type: ${JSON.stringify(type)} is treated as Opaque`);
    // As the API server: stringData is merged into data and wins.
    data = { ...readDataMap(doc, 'data', '', true), ...readDataMap(doc, 'stringData', '', false) };
  }
  return { kind, name, namespace, data };
}
