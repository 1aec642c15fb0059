/**
 * One entry of a Kubernetes `spec.containers` list → ContainerSpec. Wrong types and bad values
 * throw (naming the field); fields nspod does not support yet become warnings.
 */
import { isIP } from 'node:net';
import type { ContainerSpec, EnvVar, PortSpec, ResourceList, Resources, SecurityContext } from './types.js';
import type { Reader, YamlMap } from './fields.js';
import {
  asMap,
  child,
  describe,
  optBool,
  optInt,
  optList,
  optMap,
  optString,
  optStringList,
  reqString,
  warnUnknown,
} from './fields.js';
import { cpuMilli, memoryBytes } from './quantity.js';
import { checkDnsLabel, fail, normalizeCapability } from './validate.js';
import { PROBE_CONTAINER_FIELDS, readProbeFields } from './kube-probes.js';
import { readEnvFrom, readEnvSource, readVolumeMounts } from './kube-volumes.js';

const CONTAINER_FIELDS = [
  'name',
  'image',
  'command',
  'args',
  'env',
  'workingDir',
  'ports',
  'resources',
  'securityContext',
  'tty',
  'stdin',
  ...PROBE_CONTAINER_FIELDS,
  'imagePullPolicy',
  'volumeMounts',
  'envFrom',
] as const;
const SECURITY_FIELDS = [
  'runAsUser',
  'runAsGroup',
  'privileged',
  'capabilities',
  'readOnlyRootFilesystem',
  'allowPrivilegeEscalation',
] as const;
const MAX_ID = 2147483647;

function readEnv(r: Reader, list: unknown[], path: string): EnvVar[] {
  const env: EnvVar[] = [];
  list.forEach((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    warnUnknown(r, m, ['name', 'value', 'valueFrom'], p);
    const name = reqString(m, 'name', p);
    if (name.includes('=') || name.includes('\0'))
      fail(`${p}.name`, `${JSON.stringify(name)} is not a valid variable name`);
    const value = optString(m, 'value', p);
    const from = optMap(m, 'valueFrom', p);
    if (from !== undefined) {
      if (value !== undefined && value !== '') fail(`${p}.valueFrom`, 'may not be set together with value');
      env.push({ name, value: '', valueFrom: readEnvSource(r, from, `${p}.valueFrom`) });
      return;
    }
    env.push({ name, value: value ?? '' });
  });
  return env;
}

function readPorts(r: Reader, list: unknown[], path: string): PortSpec[] {
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    warnUnknown(r, m, ['containerPort', 'hostPort', 'hostIP', 'protocol', 'name'], p);
    const containerPort = optInt(m, 'containerPort', p, { min: 1, max: 65535 });
    if (containerPort === undefined) fail(`${p}.containerPort`, 'required');
    const port: PortSpec = { containerPort, protocol: 'TCP' };
    const hostPort = optInt(m, 'hostPort', p, { min: 0, max: 65535 });
    if (hostPort !== undefined && hostPort !== 0) port.hostPort = hostPort; // 0 means "no host port"
    const hostIP = optString(m, 'hostIP', p);
    if (hostIP !== undefined && hostIP !== '') {
      if (isIP(hostIP) === 0) fail(`${p}.hostIP`, `${JSON.stringify(hostIP)} is not an IP address`);
      port.hostIP = hostIP;
    }
    const protocol = optString(m, 'protocol', p);
    if (protocol !== undefined) {
      if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') {
        fail(`${p}.protocol`, `${JSON.stringify(protocol)} is not TCP, UDP or SCTP`);
      }
      port.protocol = protocol;
    }
    const name = optString(m, 'name', p);
    if (name !== undefined) port.name = name;
    return port;
  });
}

function readResourceList(r: Reader, m: YamlMap, path: string): ResourceList {
  const out: ResourceList = {};
  for (const [key, v] of Object.entries(m)) {
    const p = child(path, key);
    if (v === null || v === undefined) continue;
    if (key !== 'memory' && key !== 'cpu') {
      r.warnings.push(`${p}: not supported yet, ignored`);
      continue;
    }
    if (typeof v !== 'string' && typeof v !== 'number') fail(p, `must be a quantity (got ${describe(v)})`);
    if (key === 'memory') out.memoryBytes = memoryBytes(v, p);
    else out.cpuMilli = cpuMilli(v, p);
  }
  return out;
}

function readResources(r: Reader, m: YamlMap | undefined, path: string): Resources {
  if (m === undefined) return { limits: {}, requests: {} };
  warnUnknown(r, m, ['limits', 'requests'], path);
  const lm = optMap(m, 'limits', path);
  const rm = optMap(m, 'requests', path);
  const limits = lm ? readResourceList(r, lm, `${path}.limits`) : {};
  const requests = rm ? readResourceList(r, rm, `${path}.requests`) : {};
  // As Kubernetes: a request left unset defaults to the limit.
  if (requests.memoryBytes === undefined && limits.memoryBytes !== undefined) requests.memoryBytes = limits.memoryBytes;
  if (requests.cpuMilli === undefined && limits.cpuMilli !== undefined) requests.cpuMilli = limits.cpuMilli;
  for (const [k, what] of [
    ['memoryBytes', 'memory'],
    ['cpuMilli', 'cpu'],
  ] as const) {
    const limit = limits[k];
    const request = requests[k];
    if (limit !== undefined && request !== undefined && request > limit) {
      fail(`${path}.requests.${what}`, `must be less than or equal to the ${what} limit`);
    }
  }
  return { limits, requests };
}

function readCapabilities(r: Reader, m: YamlMap | undefined, path: string): { add: string[]; drop: string[] } {
  if (m === undefined) return { add: [], drop: [] };
  warnUnknown(r, m, ['add', 'drop'], path);
  const read = (key: 'add' | 'drop'): string[] => {
    const names = (optStringList(m, key, path) ?? []).map((c, i) => normalizeCapability(c, `${path}.${key}[${i}]`));
    return [...new Set(names)];
  };
  return { add: read('add'), drop: read('drop') };
}

function readSecurity(r: Reader, m: YamlMap | undefined, path: string): SecurityContext {
  const sc: SecurityContext = {
    privileged: false,
    capabilities: { add: [], drop: [] },
    readOnlyRootFilesystem: false,
  };
  if (m === undefined) return sc;
  warnUnknown(r, m, SECURITY_FIELDS, path);
  const runAsUser = optInt(m, 'runAsUser', path, { min: 0, max: MAX_ID });
  if (runAsUser !== undefined) sc.runAsUser = runAsUser;
  const runAsGroup = optInt(m, 'runAsGroup', path, { min: 0, max: MAX_ID });
  if (runAsGroup !== undefined) sc.runAsGroup = runAsGroup;
  sc.privileged = optBool(m, 'privileged', path) ?? false;
  sc.capabilities = readCapabilities(r, optMap(m, 'capabilities', path), `${path}.capabilities`);
  sc.readOnlyRootFilesystem = optBool(m, 'readOnlyRootFilesystem', path) ?? false;
  const ape = optBool(m, 'allowPrivilegeEscalation', path);
  if (ape !== undefined) {
    if (ape === false && sc.privileged)
      fail(`${path}.allowPrivilegeEscalation`, 'cannot be false when privileged is true');
    sc.allowPrivilegeEscalation = ape;
  }
  return sc;
}

/** Reads `spec.containers[i]` (path is that prefix), or `spec.initContainers[i]` with `init`. */
export function readContainer(r: Reader, item: unknown, path: string, init = false): ContainerSpec {
  const m = asMap(item, path);
  warnUnknown(r, m, CONTAINER_FIELDS, path);
  const name = reqString(m, 'name', path);
  checkDnsLabel(name, `${path}.name`);
  const image = reqString(m, 'image', path);
  if (/\s/.test(image)) fail(`${path}.image`, `${JSON.stringify(image)} must not contain whitespace`);
  const c: ContainerSpec = {
    name,
    image,
    env: [],
    ports: [],
    resources: { limits: {}, requests: {} },
    securityContext: readSecurity(r, undefined, path),
    tty: false,
    stdin: false,
  };
  const command = optStringList(m, 'command', path);
  if (command !== undefined) c.command = command;
  const args = optStringList(m, 'args', path);
  if (args !== undefined) c.args = args;
  c.env = readEnv(r, optList(m, 'env', path) ?? [], `${path}.env`);
  const workingDir = optString(m, 'workingDir', path);
  if (workingDir !== undefined && workingDir !== '') {
    if (!workingDir.startsWith('/'))
      fail(`${path}.workingDir`, `${JSON.stringify(workingDir)} must be an absolute path`);
    c.workingDir = workingDir;
  }
  c.ports = readPorts(r, optList(m, 'ports', path) ?? [], `${path}.ports`);
  c.resources = readResources(r, optMap(m, 'resources', path), `${path}.resources`);
  c.securityContext = readSecurity(r, optMap(m, 'securityContext', path), `${path}.securityContext`);
  c.tty = optBool(m, 'tty', path) ?? false;
  c.stdin = optBool(m, 'stdin', path) ?? false;
  readProbeFields(r, m, path, c, init);
  const policy = optString(m, 'imagePullPolicy', path);
  if (policy !== undefined) {
    if (policy !== 'Always' && policy !== 'IfNotPresent' && policy !== 'Never')
      fail(`${path}.imagePullPolicy`, `${JSON.stringify(policy)} must be Always, IfNotPresent or Never`);
    c.imagePullPolicy = policy;
  }
  const mounts = optList(m, 'volumeMounts', path);
  if (mounts !== undefined) c.volumeMounts = readVolumeMounts(r, mounts, `${path}.volumeMounts`);
  const envFrom = optList(m, 'envFrom', path);
  if (envFrom !== undefined) c.envFrom = readEnvFrom(r, envFrom, `${path}.envFrom`);
  return c;
}
