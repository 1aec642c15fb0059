/**
 * The CRI front door: PodSandboxConfig / ContainerConfig (CRI v1) → nspod's PodSpec /
 * ContainerSpec. Defaults follow the CRI definition (an unset NamespaceMode is POD, an unset
 * seccomp profile is unconfined, 0 means "not specified" for resources). Every error names the
 * CRI field (`config.metadata.name`) and is INVALID_ARGUMENT.
 *
 * Names: kubelet keeps (name, attempt) unique, not name alone: an attempt > 0 is made an nspod
 * name `<name>_<attempt>` (attempt 0 keeps its name). A pod name is a DNS subdomain and may hold
 * dots (pod `a.1` and pod `a` attempt 1 would meet at `a.1`); `_` is in neither a DNS subdomain
 * nor a DNS label (container names), so kubelet's names never collide. The CRI name and attempt
 * are kept in the spec to be reported back; nothing parses the nspod name.
 */
import path from 'node:path';
import { invalidArgument } from '../errors/index.js';
import type { CriContainerConfig, CriLinuxContainerResources, CriPodSandboxConfig, Int64 } from './cri-types.js';
import type { ContainerExtras, MountPropagation, RawResources, SeccompProfile } from './extras.js';
import type { ContainerSpec, NamespaceMode, PodSpec } from './types.js';

const num = (v: Int64 | undefined | null): number => (v === undefined || v === null || v === '' ? 0 : Number(v));

function need(v: string | undefined, field: string): string {
  if (v === undefined || v.trim() === '') throw invalidArgument(`${field}: required, got an empty value`);
  return v;
}

/** The nspod name of a CRI sandbox or container: `<name>` for attempt 0, else `<name>_<attempt>`. */
export function nspodName(name: string, attempt: number | undefined): string {
  return attempt ? `${name}_${attempt}` : name;
}

function podMode(v: string | undefined, field: string): 'pod' | 'node' {
  switch (v ?? 'POD') {
    case 'POD':
    case 'CONTAINER': // a sandbox's own namespace is its pod's
      return 'pod';
    case 'NODE':
      return 'node';
    default:
      throw invalidArgument(`${field}: ${v} is not valid for a pod sandbox (expected POD, CONTAINER or NODE)`);
  }
}

function pidMode(v: string | undefined, field: string): NamespaceMode {
  switch (v ?? 'POD') {
    case 'POD':
      return 'pod';
    case 'CONTAINER':
      return 'container';
    case 'NODE':
      return 'node';
    default:
      throw invalidArgument(`${field}: ${v} is not valid for a pod sandbox (expected POD, CONTAINER or NODE)`);
  }
}

/** PodSandboxConfig → PodSpec (no containers: CRI adds them one by one). */
export function podSpecFromCri(c: CriPodSandboxConfig | null | undefined): PodSpec {
  if (!c) throw invalidArgument('config: required, got none');
  const md = c.metadata;
  if (!md) throw invalidArgument('config.metadata: required, got none');
  const name = need(md.name, 'config.metadata.name');
  const namespace = need(md.namespace, 'config.metadata.namespace');
  const ns = c.linux?.security_context?.namespace_options ?? undefined;
  const network = podMode(ns?.network, 'config.linux.security_context.namespace_options.network');
  const ipc = podMode(ns?.ipc, 'config.linux.security_context.namespace_options.ipc');
  const pid = pidMode(ns?.pid, 'config.linux.security_context.namespace_options.pid');
  const logDirectory = c.log_directory ?? '';
  if (logDirectory !== '' && !path.isAbsolute(logDirectory))
    throw invalidArgument(`config.log_directory: expected an absolute path, got "${logDirectory}"`);
  const hostname = c.hostname && c.hostname !== '' ? c.hostname : name;
  const spec: PodSpec = {
    name: nspodName(name, md.attempt),
    namespace,
    ...(md.uid ? { uid: md.uid } : {}),
    labels: { ...(c.labels ?? {}) },
    annotations: { ...(c.annotations ?? {}) },
    hostname,
    namespaces: { network, ipc, pid },
    // kubelet restarts containers itself: nothing below may do it too
    restartPolicy: 'Never',
    terminationGracePeriodSeconds: 30,
    containers: [],
    criName: name,
    attempt: md.attempt ?? 0,
    ...(logDirectory !== '' ? { logDirectory } : {}),
  };
  const ports = (c.port_mappings ?? [])
    .filter((m) => (m.host_port ?? 0) > 0)
    .map((m, i) => {
      const f = `config.port_mappings[${i}]`;
      const containerPort = m.container_port ?? 0;
      if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535)
        throw invalidArgument(`${f}.container_port: expected 1..65535, got ${containerPort}`);
      if (m.host_port! > 65535) throw invalidArgument(`${f}.host_port: expected 1..65535, got ${m.host_port}`);
      const protocol = (m.protocol ?? 'TCP') as 'TCP' | 'UDP' | 'SCTP';
      return { containerPort, hostPort: m.host_port!, protocol, ...(m.host_ip ? { hostIP: m.host_ip } : {}) };
    });
  if (ports.length > 0) spec.portMappings = ports;
  const sysctls = c.linux?.sysctls ?? {};
  if (Object.keys(sysctls).length > 0) spec.sysctls = { ...sysctls };
  const dns = c.dns_config;
  if (dns && ((dns.servers?.length ?? 0) > 0 || (dns.searches?.length ?? 0) > 0 || (dns.options?.length ?? 0) > 0)) {
    // kubelet has already resolved the pod's dnsPolicy into this config: use it as it is
    spec.dns = {
      policy: 'None',
      nameservers: [...(dns.servers ?? [])],
      searches: [...(dns.searches ?? [])],
      options: (dns.options ?? []).map((o) => {
        const i = o.indexOf(':');
        return i < 0 ? { name: o } : { name: o.slice(0, i), value: o.slice(i + 1) };
      }),
    };
  }
  return spec;
}

/** LinuxContainerResources → raw resources (0 = not specified) and oom_score_adj. */
export function rawResourcesFromCri(r: CriLinuxContainerResources | null | undefined): {
  resources: RawResources;
  oomScoreAdj?: number;
} {
  const out: RawResources = {};
  if (!r) return { resources: out };
  const set = <K extends keyof RawResources>(k: K, v: RawResources[K] | 0 | ''): void => {
    if (v !== 0 && v !== '' && v !== undefined) out[k] = v as RawResources[K];
  };
  set('cpuPeriod', num(r.cpu_period));
  set('cpuQuota', num(r.cpu_quota));
  set('cpuShares', num(r.cpu_shares));
  set('memoryLimitBytes', num(r.memory_limit_in_bytes));
  set('memorySwapLimitBytes', num(r.memory_swap_limit_in_bytes));
  set('cpusetCpus', r.cpuset_cpus ?? '');
  set('cpusetMems', r.cpuset_mems ?? '');
  for (const [k, v] of Object.entries({
    cpu_period: num(r.cpu_period),
    cpu_shares: num(r.cpu_shares),
    memory_limit_in_bytes: num(r.memory_limit_in_bytes),
  })) {
    if (v < 0) throw invalidArgument(`linux.resources.${k}: expected >= 0, got ${v}`);
  }
  const huge = (r.hugepage_limits ?? []).map((h) => ({ pageSize: h.page_size, limit: num(h.limit) }));
  if (huge.length > 0) out.hugepageLimits = huge;
  if (r.unified && Object.keys(r.unified).length > 0) out.unified = { ...r.unified };
  const oom = num(r.oom_score_adj);
  if (oom < -1000 || oom > 1000)
    throw invalidArgument(`linux.resources.oom_score_adj: expected -1000..1000, got ${oom}`);
  return { resources: out, ...(oom !== 0 ? { oomScoreAdj: oom } : {}) };
}

function seccompFrom(
  p: { profile_type?: string; localhost_ref?: string } | null | undefined,
  legacy: string | undefined,
  field: string,
): SeccompProfile {
  if (p) {
    switch (p.profile_type ?? 'RuntimeDefault') {
      case 'RuntimeDefault':
        return { type: 'RuntimeDefault' };
      case 'Unconfined':
        return { type: 'Unconfined' };
      case 'Localhost': {
        const ref = p.localhost_ref ?? '';
        if (!path.isAbsolute(ref))
          throw invalidArgument(`${field}.localhost_ref: expected an absolute path for Localhost, got "${ref}"`);
        return { type: 'Localhost', path: ref };
      }
      default:
        throw invalidArgument(`${field}.profile_type: unknown profile type ${p.profile_type}`);
    }
  }
  const s = legacy ?? '';
  if (s === '' || s === 'unconfined') return { type: 'Unconfined' };
  if (s === 'runtime/default' || s === 'docker/default') return { type: 'RuntimeDefault' };
  if (s.startsWith('localhost/')) return { type: 'Localhost', path: s.slice('localhost/'.length) };
  throw invalidArgument(`${field}_profile_path: unknown seccomp profile "${s}"`);
}

const PROPAGATION: Record<string, MountPropagation> = {
  PROPAGATION_PRIVATE: 'private',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};

/** ContainerConfig (+ the sandbox's PodSpec) → ContainerSpec. */
export function containerSpecFromCri(c: CriContainerConfig | null | undefined, pod: PodSpec): ContainerSpec {
  if (!c) throw invalidArgument('config: required, got none');
  if (!c.metadata) throw invalidArgument('config.metadata: required, got none');
  const criName = need(c.metadata.name, 'config.metadata.name');
  const image = need(c.image?.image, 'config.image.image');
  const sc = c.linux?.security_context ?? undefined;
  const extras: ContainerExtras = {};
  const runAsUser = sc?.run_as_user ? num(sc.run_as_user.value) : undefined;
  const runAsGroup = sc?.run_as_group ? num(sc.run_as_group.value) : undefined;
  const username = sc?.run_as_username ?? '';
  if (runAsUser !== undefined && username !== '')
    throw invalidArgument('config.linux.security_context: run_as_user and run_as_username are mutually exclusive');
  if (runAsGroup !== undefined && runAsUser === undefined && username === '')
    throw invalidArgument(
      'config.linux.security_context.run_as_group: only valid together with run_as_user or run_as_username',
    );
  if (username !== '') extras.user = runAsGroup !== undefined ? `${username}:${runAsGroup}` : username;
  const groups = (sc?.supplemental_groups ?? []).map(num);
  if (groups.length > 0) extras.supplementalGroups = groups;
  if ((sc?.masked_paths ?? []).length > 0) extras.maskedPaths = [...sc!.masked_paths!];
  if ((sc?.readonly_paths ?? []).length > 0) extras.readonlyPaths = [...sc!.readonly_paths!];
  extras.seccomp = seccompFrom(sc?.seccomp, sc?.seccomp_profile_path, 'config.linux.security_context.seccomp');
  const ambient = sc?.capabilities?.add_ambient_capabilities ?? [];
  if (ambient.length > 0) extras.ambientCapabilities = [...ambient];
  if (pod.sysctls) extras.sysctls = { ...pod.sysctls };
  const { resources, oomScoreAdj } = rawResourcesFromCri(c.linux?.resources);
  if (Object.keys(resources).length > 0) extras.resources = resources;
  if (oomScoreAdj !== undefined) extras.oomScoreAdj = oomScoreAdj;
  const mounts = (c.mounts ?? []).map((m, i) => {
    const f = `config.mounts[${i}]`;
    if (m.image?.image) throw invalidArgument(`${f}.image: image volume mounts are not supported by nspod`);
    const containerPath = need(m.container_path, `${f}.container_path`);
    if (!path.isAbsolute(containerPath))
      throw invalidArgument(`${f}.container_path: expected an absolute path, got "${containerPath}"`);
    const hostPath = need(m.host_path, `${f}.host_path`);
    const propagation = PROPAGATION[m.propagation ?? 'PROPAGATION_PRIVATE'];
    if (!propagation) throw invalidArgument(`${f}.propagation: unknown mode ${m.propagation}`);
    return { containerPath, hostPath, readonly: m.readonly ?? false, propagation };
  });
  if (mounts.length > 0) extras.mounts = mounts;
  const devices = (c.devices ?? []).map((d, i) => ({
    containerPath: need(d.container_path, `config.devices[${i}].container_path`),
    hostPath: need(d.host_path, `config.devices[${i}].host_path`),
    permissions: d.permissions ?? 'rwm',
  }));
  if (devices.length > 0) extras.devices = devices;
  // privileged: every host device, as the CRI definition asks
  if (sc?.privileged) extras.hostDevices = true;

  const nsOpt = sc?.namespace_options ?? undefined;
  let pidNamespace: ContainerSpec['pidNamespace'];
  if (nsOpt) {
    switch (nsOpt.pid ?? 'POD') {
      case 'POD':
        pidNamespace = { mode: 'pod' };
        break;
      case 'CONTAINER':
        pidNamespace = { mode: 'container' };
        break;
      case 'NODE':
        pidNamespace = { mode: 'node' };
        break;
      case 'TARGET': {
        const targetId = need(nsOpt.target_id, 'config.linux.security_context.namespace_options.target_id');
        pidNamespace = { mode: 'target', targetId };
        break;
      }
      default:
        throw invalidArgument(`config.linux.security_context.namespace_options.pid: unknown mode ${nsOpt.pid}`);
    }
  }
  const logPath =
    c.log_path && c.log_path !== ''
      ? pod.logDirectory
        ? path.join(pod.logDirectory, c.log_path)
        : path.isAbsolute(c.log_path)
          ? c.log_path
          : undefined
      : undefined;
  if (c.log_path && logPath === undefined)
    throw invalidArgument(`config.log_path: "${c.log_path}" is relative but the sandbox has no log_directory`);
  const stop = c.stop_signal && c.stop_signal !== 'RUNTIME_DEFAULT' ? c.stop_signal : undefined;
  const spec: ContainerSpec = {
    name: nspodName(criName, c.metadata.attempt),
    image,
    ...((c.command ?? []).length > 0 ? { command: [...c.command!] } : {}),
    ...((c.args ?? []).length > 0 ? { args: [...c.args!] } : {}),
    env: (c.envs ?? []).map((e) => ({ name: e.key, value: e.value })),
    ...(c.working_dir ? { workingDir: c.working_dir } : {}),
    ports: [],
    resources: { limits: {}, requests: {} },
    securityContext: {
      ...(runAsUser !== undefined ? { runAsUser } : {}),
      ...(runAsGroup !== undefined && username === '' ? { runAsGroup } : {}),
      privileged: sc?.privileged ?? false,
      capabilities: {
        add: [...(sc?.capabilities?.add_capabilities ?? []), ...ambient],
        drop: [...(sc?.capabilities?.drop_capabilities ?? [])],
      },
      readOnlyRootFilesystem: sc?.readonly_rootfs ?? false,
      allowPrivilegeEscalation: !(sc?.no_new_privs ?? false),
    },
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
    labels: { ...(c.labels ?? {}) },
    annotations: { ...(c.annotations ?? {}) },
    criName,
    attempt: c.metadata.attempt ?? 0,
    ...(logPath ? { logPath } : {}),
    ...(pidNamespace ? { pidNamespace } : {}),
    ...(stop ? { stopSignal: stop } : {}),
    extras,
  };
  return spec;
}
