/**
 * Kubernetes `v1.Pod` YAML → PodSpec. A file may hold several documents (`---`); each Pod becomes
 * one PodSpec, other kinds are skipped with a warning, empty documents are ignored.
 */
import { parseAllDocuments } from 'yaml';
import type { NspodError } from '../errors/index.js';
import { invalidArgument, isNspodError } from '../errors/index.js';
import type { PodNamespaces, PodSpec, RestartPolicy } from './types.js';
import type { Reader, YamlMap } from './fields.js';
import {
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
import { readContainer } from './kube-container.js';
import { readDns, readHostAliases } from './kube-network.js';
import type { ConfigObject } from './types.js';
import { checkPodReferences, readConfigObject, readVolumes } from './kube-volumes.js';
import { yaml11Octal } from './yaml-octal.js';
import { checkDnsLabel, checkDnsSubdomain, checkLabelValue, checkMetadataKey, fail, validatePod } from './validate.js';

export interface ParsePodYamlOptions {
  /** where the text came from (a file name), for messages */
  source?: string;
}

export interface ParsedPods {
  pods: PodSpec[];
  warnings: string[];
}

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const METADATA_FIELDS = ['name', 'namespace', 'labels', 'annotations', 'uid'] as const;
const POD_FIELDS = [
  'containers',
  'shareProcessNamespace',
  'hostPID',
  'hostNetwork',
  'hostIPC',
  'hostname',
  'subdomain',
  'restartPolicy',
  'terminationGracePeriodSeconds',
  'hostAliases',
  'dnsPolicy',
  'dnsConfig',
  'volumes',
  'serviceAccountName',
  'serviceAccount',
] as const;
const DEFAULT_GRACE_SECONDS = 30;

function readStringMap(m: YamlMap, key: 'labels' | 'annotations', path: string): Record<string, string> {
  const map = optMap(m, key, path);
  const out: Record<string, string> = {};
  if (map === undefined) return out;
  const p = child(path, key);
  for (const [k, v] of Object.entries(map)) {
    const kp = child(p, k);
    checkMetadataKey(k, kp);
    if (typeof v !== 'string') fail(kp, `must be a string (got ${describe(v)}; quote it in YAML)`);
    if (key === 'labels') checkLabelValue(v, kp);
    out[k] = v;
  }
  return out;
}

function readMetadata(r: Reader, m: YamlMap): Pick<PodSpec, 'name' | 'namespace' | 'uid' | 'labels' | 'annotations'> {
  warnUnknown(r, m, METADATA_FIELDS, 'metadata');
  const name = reqString(m, 'name', 'metadata');
  checkDnsSubdomain(name, 'metadata.name');
  const namespace = optString(m, 'namespace', 'metadata') || 'default';
  checkDnsLabel(namespace, 'metadata.namespace');
  const meta: ReturnType<typeof readMetadata> = {
    name,
    namespace,
    labels: readStringMap(m, 'labels', 'metadata'),
    annotations: readStringMap(m, 'annotations', 'metadata'),
  };
  const uid = optString(m, 'uid', 'metadata');
  if (uid !== undefined && uid !== '') meta.uid = uid;
  return meta;
}

function readNamespaces(s: YamlMap): PodNamespaces {
  const share = optBool(s, 'shareProcessNamespace', 'spec') ?? false;
  const hostPID = optBool(s, 'hostPID', 'spec') ?? false;
  if (share && hostPID) fail('spec.shareProcessNamespace', 'cannot be true together with hostPID');
  return {
    network: optBool(s, 'hostNetwork', 'spec') ? 'node' : 'pod',
    ipc: optBool(s, 'hostIPC', 'spec') ? 'node' : 'pod',
    pid: hostPID ? 'node' : share ? 'pod' : 'container',
  };
}

/** Kubernetes' default hostname: the pod name cut to 63 characters, without a trailing '-' or '.'. */
function defaultHostname(podName: string): string {
  return podName.slice(0, 63).replace(/[-.]+$/, '');
}

/** Reads one Pod document (already known to be `kind: Pod`). */
function readPod(r: Reader, doc: YamlMap): PodSpec {
  warnUnknown(
    r,
    Object.fromEntries(Object.entries(doc).filter(([k]) => k !== 'status')), // status is output, not input
    TOP_FIELDS,
    '',
  );
  if (doc['apiVersion'] === undefined || doc['apiVersion'] === null) fail('apiVersion', 'required');
  if (doc['apiVersion'] !== 'v1') fail('apiVersion', `${describe(doc['apiVersion'])} is not supported (expected v1)`);
  const metaValue = doc['metadata'];
  if (metaValue === undefined || metaValue === null) fail('metadata.name', 'required');
  const meta = readMetadata(
    r,
    isMap(metaValue) ? metaValue : fail('metadata', `must be a mapping (got ${describe(metaValue)})`),
  );
  const specValue = doc['spec'];
  if (specValue === undefined || specValue === null) fail('spec.containers', 'at least one container is required');
  if (!isMap(specValue)) fail('spec', `must be a mapping (got ${describe(specValue)})`);
  const s = specValue;
  warnUnknown(r, s, POD_FIELDS, 'spec');

  const list = optList(s, 'containers', 'spec') ?? [];
  if (list.length === 0) fail('spec.containers', 'at least one container is required');
  const names = new Set<string>();
  const containers = list.map((item, i) => {
    const c = readContainer(r, item, `spec.containers[${i}]`);
    if (names.has(c.name)) fail(`spec.containers[${i}].name`, `duplicate name ${JSON.stringify(c.name)}`);
    names.add(c.name);
    return c;
  });

  const namespaces = readNamespaces(s);
  const hostname = optString(s, 'hostname', 'spec');
  if (hostname !== undefined && hostname !== '') checkDnsLabel(hostname, 'spec.hostname');
  const subdomain = optString(s, 'subdomain', 'spec');
  if (subdomain !== undefined) r.warnings.push('spec.subdomain: not supported yet, ignored');
  const restartPolicy = optString(s, 'restartPolicy', 'spec') ?? 'Always';
  if (restartPolicy !== 'Always' && restartPolicy !== 'OnFailure' && restartPolicy !== 'Never') {
    fail('spec.restartPolicy', `${JSON.stringify(restartPolicy)} is not Always, OnFailure or Never`);
  }
  const grace = optInt(s, 'terminationGracePeriodSeconds', 'spec', { min: 0, max: Number.MAX_SAFE_INTEGER });

  const pod: PodSpec = {
    ...meta,
    hostname: hostname || defaultHostname(meta.name),
    namespaces,
    restartPolicy: restartPolicy satisfies RestartPolicy,
    terminationGracePeriodSeconds: grace ?? DEFAULT_GRACE_SECONDS,
    containers,
  };
  const hostAliases = readHostAliases(s, 'spec');
  if (hostAliases.length) pod.hostAliases = hostAliases;
  const dns = readDns(r, s, 'spec');
  if (dns.policy !== 'ClusterFirst' || dns.nameservers.length || dns.searches.length || dns.options.length)
    pod.dns = dns;
  const volumes = optList(s, 'volumes', 'spec');
  if (volumes !== undefined) pod.volumes = readVolumes(r, volumes, 'spec.volumes');
  const sa = optString(s, 'serviceAccountName', 'spec') ?? optString(s, 'serviceAccount', 'spec');
  if (sa !== undefined && sa !== '') pod.serviceAccountName = sa;
  checkPodReferences(pod);
  validatePod(pod);
  return pod;
}

function yamlSyntaxError(message: string, source: string | undefined): NspodError {
  const first = (message.split('\n')[0] ?? message).replace(/:$/, '');
  return invalidArgument(`invalid YAML${source ? ` in ${source}` : ''}: ${first}`);
}

/**
 * Parses Kubernetes Pod YAML (one or more documents) into PodSpecs. Throws the first problem as
 * INVALID_ARGUMENT naming the field (`spec.containers[0].image: required`), prefixed with
 * `document N: ` when the text holds several documents. Unsupported fields and kinds are warnings.
 */
export function parsePodYaml(text: string, opts: ParsePodYamlOptions = {}): ParsedPods {
  // kubectl reads YAML 1.1 integers: `defaultMode: 0644` is octal.
  const parsed = parseAllDocuments(text, { customTags: (tags) => [yaml11Octal, ...tags] });
  const docs = Array.isArray(parsed) ? parsed : [parsed]; // an empty stream gives an EmptyStream, not an array
  for (const d of docs) {
    const err = d.errors[0];
    if (err) throw yamlSyntaxError(err.message, opts.source);
  }
  const values = docs.map((d) => (d.contents === null ? null : (d.toJS({ maxAliasCount: 100 }) as unknown)));
  const several = values.filter((v) => v !== null && v !== undefined).length > 1;
  const pods: PodSpec[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  const configObjects: ConfigObject[] = [];

  values.forEach((value, i) => {
    if (value === null || value === undefined) return;
    const label = `document ${i + 1}`;
    const prefix = several ? `${label}: ` : '';
    const r: Reader = { warnings: [] };
    try {
      if (!isMap(value))
        fail(label, `must be a mapping with apiVersion, kind, metadata and spec (got ${describe(value)})`);
      const kind = value['kind'];
      if (kind === undefined || kind === null) fail('kind', 'required (expected Pod)');
      if (kind === 'ConfigMap' || kind === 'Secret') {
        const obj = readConfigObject(r, value, kind);
        if (configObjects.some((o) => o.kind === kind && o.name === obj.name && o.namespace === obj.namespace))
          fail('metadata.name', `duplicate ${kind} ${JSON.stringify(`${obj.namespace}/${obj.name}`)}`);
        configObjects.push(obj);
        warnings.push(...r.warnings.map((w) => prefix + w));
        return;
      }
      if (kind !== 'Pod') {
        warnings.push(
          `${label}: kind ${typeof kind === 'string' ? kind : describe(kind)} is not supported yet, skipped`,
        );
        return;
      }
      const pod = readPod(r, value);
      const key = `${pod.namespace}/${pod.name}`;
      if (seen.has(key)) fail('metadata.name', `duplicate pod ${JSON.stringify(key)}`);
      seen.add(key);
      pods.push(pod);
      warnings.push(...r.warnings.map((w) => prefix + w));
    } catch (e) {
      if (!isNspodError(e, 'INVALID_ARGUMENT') || !prefix || e.message.startsWith(`${label}:`)) throw e;
      throw invalidArgument(prefix + e.message, e.cause);
    }
  });
  if (pods.length === 0)
    throw invalidArgument(`no Pod found${opts.source ? ` in ${opts.source}` : ''} (expected kind: Pod)`);
  // ConfigMaps and Secrets of the file go with every pod of their namespace.
  for (const pod of pods) {
    const mine = configObjects.filter((o) => o.namespace === pod.namespace);
    if (mine.length > 0) pod.configObjects = mine;
  }
  return { pods, warnings };
}
