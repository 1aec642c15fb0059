/**
 * Kubernetes probes (`livenessProbe`, `readinessProbe`, `startupProbe`), `lifecycle` hooks
 * (postStart, preStop), a container's `restartPolicy` (native sidecars) and `initContainers` →
 * nspod's model, with Kubernetes' defaults (period 10 s, timeout 1 s, success 1, failure 3) and
 * its validation (exactly one handler; liveness and startup need successThreshold 1; a named port
 * must be one of the container's ports).
 */
import type { ContainerSpec } from './types.js';
import type { HookHandler, HttpHeader, Lifecycle, Probe, ProbeHandler } from './probe-types.js';
import type { Reader, YamlMap } from './fields.js';
import {
  asMap,
  child,
  describe,
  optInt,
  optList,
  optMap,
  optString,
  optStringList,
  reqString,
  warnUnknown,
} from './fields.js';
import { fail, isDnsLabel } from './validate.js';

export const PROBE_KINDS = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];
/** The container fields this module reads (added to the known container fields). */
export const PROBE_CONTAINER_FIELDS = [...PROBE_KINDS, 'lifecycle', 'restartPolicy'] as const;

const PROBE_FIELDS = [
  'exec',
  'httpGet',
  'tcpSocket',
  'grpc',
  'initialDelaySeconds',
  'periodSeconds',
  'timeoutSeconds',
  'successThreshold',
  'failureThreshold',
  'terminationGracePeriodSeconds',
] as const;
const HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc', 'sleep'] as const;
const MAX = 2147483647;

function readPort(m: YamlMap, path: string): number | string {
  const v = m['port'];
  const p = child(path, 'port');
  if (v === undefined || v === null) fail(p, 'required');
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 65535) fail(p, `${v} is not a port number (1-65535)`);
    return v;
  }
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return readPort({ port: Number(v) }, path);
    if (v.length > 15 || !isDnsLabel(v) || !/[a-z]/.test(v))
      fail(p, `${JSON.stringify(v)} is not a port number or an IANA port name`);
    return v;
  }
  fail(p, `must be a port number or name (got ${describe(v)})`);
}

function readHeaders(r: Reader, list: unknown[], path: string): HttpHeader[] {
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const m = asMap(item, p);
    warnUnknown(r, m, ['name', 'value'], p);
    const name = reqString(m, 'name', p);
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) fail(`${p}.name`, `${JSON.stringify(name)} is not a header name`);
    return { name, value: optString(m, 'value', p) ?? '' };
  });
}

function readHandler(
  r: Reader,
  m: YamlMap,
  path: string,
  allowed: readonly (typeof HANDLERS)[number][],
): ProbeHandler | HookHandler {
  const present = HANDLERS.filter((h) => m[h] !== undefined && m[h] !== null);
  if (present.length === 0) fail(path, `must have one handler (${allowed.join(', ')})`);
  if (present.length > 1) fail(path, `must have exactly one handler, got ${present.join(' and ')}`);
  const kind = present[0]!;
  const p = child(path, kind);
  if (!allowed.includes(kind)) fail(p, `is not allowed here (expected ${allowed.join(', ')})`);
  const h = asMap(m[kind], p);
  switch (kind) {
    case 'exec': {
      warnUnknown(r, h, ['command'], p);
      const command = optStringList(h, 'command', p);
      if (!command || command.length === 0) fail(`${p}.command`, 'required');
      return { kind, command };
    }
    case 'httpGet': {
      warnUnknown(r, h, ['path', 'port', 'host', 'scheme', 'httpHeaders'], p);
      const reqPath = optString(h, 'path', p) || '/';
      const scheme = optString(h, 'scheme', p) ?? 'HTTP';
      if (scheme !== 'HTTP' && scheme !== 'HTTPS')
        fail(`${p}.scheme`, `${JSON.stringify(scheme)} is not HTTP or HTTPS`);
      const out: ProbeHandler = {
        kind,
        path: reqPath.startsWith('/') ? reqPath : `/${reqPath}`,
        port: readPort(h, p),
        scheme,
        headers: readHeaders(r, optList(h, 'httpHeaders', p) ?? [], `${p}.httpHeaders`),
      };
      const host = optString(h, 'host', p);
      if (host) out.host = host;
      return out;
    }
    case 'tcpSocket': {
      warnUnknown(r, h, ['port', 'host'], p);
      const out: ProbeHandler = { kind, port: readPort(h, p) };
      const host = optString(h, 'host', p);
      if (host) out.host = host;
      return out;
    }
    case 'grpc': {
      warnUnknown(r, h, ['port', 'service'], p);
      const port = optInt(h, 'port', p, { min: 1, max: 65535 });
      if (port === undefined) fail(`${p}.port`, 'required (a number)');
      const service = optString(h, 'service', p);
      return service ? { kind, port, service } : { kind, port };
    }
    case 'sleep': {
      warnUnknown(r, h, ['seconds'], p);
      const seconds = optInt(h, 'seconds', p, { min: 0, max: MAX });
      if (seconds === undefined) fail(`${p}.seconds`, 'required');
      return { kind, seconds };
    }
  }
}

export function readProbe(r: Reader, m: YamlMap, path: string, kind: ProbeKind): Probe {
  warnUnknown(r, m, PROBE_FIELDS, path);
  if (m['terminationGracePeriodSeconds'] !== undefined)
    r.warnings.push(`${path}.terminationGracePeriodSeconds: not supported yet, the pod's grace period applies`);
  const num = (key: string, min: number, def: number): number => optInt(m, key, path, { min, max: MAX }) ?? def;
  const probe: Probe = {
    handler: readHandler(r, m, path, ['exec', 'httpGet', 'tcpSocket', 'grpc']) as ProbeHandler,
    initialDelaySeconds: num('initialDelaySeconds', 0, 0),
    periodSeconds: num('periodSeconds', 1, 10),
    timeoutSeconds: num('timeoutSeconds', 1, 1),
    successThreshold: num('successThreshold', 1, 1),
    failureThreshold: num('failureThreshold', 1, 3),
  };
  if (kind !== 'readinessProbe' && probe.successThreshold !== 1)
    fail(`${path}.successThreshold`, `must be 1 for a ${kind} (got ${probe.successThreshold})`);
  return probe;
}

export function readLifecycle(r: Reader, m: YamlMap, path: string): Lifecycle {
  warnUnknown(r, m, ['postStart', 'preStop'], path);
  const out: Lifecycle = {};
  for (const k of ['postStart', 'preStop'] as const) {
    const h = optMap(m, k, path);
    if (h) out[k] = readHandler(r, h, child(path, k), ['exec', 'httpGet', 'tcpSocket', 'sleep']) as HookHandler;
  }
  return out;
}

/** Checks a named probe/hook port against the container's ports. */
function checkNamedPort(c: ContainerSpec, port: number | string, path: string): void {
  if (typeof port === 'string' && !c.ports.some((p) => p.name === port))
    fail(`${path}.port`, `${JSON.stringify(port)} is not the name of one of the container's ports`);
}

/**
 * Reads the probe, lifecycle and restartPolicy fields of a container map into `c`. `init` is true
 * for `spec.initContainers[i]`: only those may set restartPolicy (Always = native sidecar), and
 * plain init containers may have no probes (as Kubernetes).
 */
export function readProbeFields(r: Reader, m: YamlMap, path: string, c: ContainerSpec, init: boolean): void {
  const rp = optString(m, 'restartPolicy', path);
  if (rp !== undefined) {
    if (!init) fail(`${path}.restartPolicy`, 'may only be set on init containers');
    if (rp !== 'Always') fail(`${path}.restartPolicy`, `${JSON.stringify(rp)} is not supported (expected Always)`);
    c.restartPolicy = 'Always';
  }
  for (const kind of PROBE_KINDS) {
    const pm = optMap(m, kind, path);
    if (!pm) continue;
    const p = child(path, kind);
    if (init && c.restartPolicy !== 'Always')
      fail(p, 'may not be set for init containers without restartPolicy: Always');
    const probe = readProbe(r, pm, p, kind);
    const h = probe.handler;
    const hp = child(p, h.kind);
    if (h.kind === 'httpGet' || h.kind === 'tcpSocket') checkNamedPort(c, h.port, hp);
    c[kind] = probe;
  }
  const lm = optMap(m, 'lifecycle', path);
  if (lm) {
    const lp = child(path, 'lifecycle');
    if (init && c.restartPolicy !== 'Always')
      fail(lp, 'may not be set for init containers without restartPolicy: Always');
    const l = readLifecycle(r, lm, lp);
    for (const k of ['postStart', 'preStop'] as const) {
      const h = l[k];
      if (h && (h.kind === 'httpGet' || h.kind === 'tcpSocket')) checkNamedPort(c, h.port, `${lp}.${k}.${h.kind}`);
    }
    c.lifecycle = l;
  }
}
