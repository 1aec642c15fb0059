/**
 * The config.json builder: a container's spec, its image config and the pod's shared parts
 * (namespaces, files, cgroup) → an OCI runtime spec. Pure: everything it needs from the host
 * (resolved user, host limits, capability bounding set) comes in the input.
 */
import { invalidArgument } from '../errors/index.js';
import type { ContainerSpec } from '../spec/types.js';
import { computeCaps, ALL_CAPS } from './caps.js';
import type { ResolvedUser } from './user.js';
import { applyExtras } from './extras.js';
import type { PreparedExtras } from './extras.js';
import type {
  ImageConfig,
  OciDeviceCgroup,
  OciLinuxResources,
  OciMount,
  OciNamespace,
  OciProcess,
  OciSpec,
} from './types.js';

export const OCI_VERSION = '1.0.2';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The most open files a container asks for, when the host allows it. */
export const MAX_NOFILE = 1048576;

export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Device cgroup rules: deny all, allow the devices every container gets. */
export const DEFAULT_DEVICE_RULES: OciDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts/*
];

export interface BuildConfigInput {
  containerName: string;
  /** the image config's `.config` */
  image: ImageConfig;
  container: ContainerSpec;
  /** absolute path of the container's root filesystem */
  rootfs: string;
  /** set only when the container has its own UTS namespace (new, no path) */
  hostname?: string;
  /** the namespaces to create (no path) or join (path); a type absent here is the host's */
  namespaces: OciNamespace[];
  cgroupsPath: string;
  /** cgroup limits as OCI resources (cgroups' ociResources); device rules are added here */
  resources?: OciLinuxResources;
  /** host files bind-mounted into the container */
  mounts: { hosts?: string; resolvConf?: string; hostname?: string; shm?: string };
  /** more mounts after the standard ones (the pod's volumes), in order */
  extraMounts?: OciMount[];
  /** linux.rootfsPropagation (rslave / rshared when a volume mount asks for propagation) */
  rootfsPropagation?: string;
  /** the user resolved in the rootfs (resolveUser); runAsUser/runAsGroup still override it */
  user: ResolvedUser;
  /** the host's hard limits (and this process's oom_score_adj): the container asks for no more */
  hostLimits: { nofile: number; nproc: number; oomScoreAdj?: number };
  oomScoreAdj?: number;
  /** default: container.tty */
  terminal?: boolean;
  /** this process's capability bounding set: capabilities outside it are left out with a warning */
  availableCaps?: readonly string[];
  /** host reads for `container.extras` (prepareExtras) */
  preparedExtras?: PreparedExtras;
}

export interface BuildResult {
  spec: OciSpec;
  /** what was asked for but left out, each a short sentence */
  warnings: string[];
}

/** Kubernetes' rule: command replaces Entrypoint and drops Cmd; args alone replace Cmd. */
export function processArgs(image: ImageConfig, c: Pick<ContainerSpec, 'command' | 'args'>): string[] {
  const hasCommand = c.command !== undefined && c.command.length > 0;
  const entry = hasCommand ? c.command! : (image.Entrypoint ?? []);
  const rest = c.args !== undefined && c.args.length > 0 ? c.args : hasCommand ? [] : (image.Cmd ?? []);
  return [...entry, ...rest];
}

/** Image Env, then HOSTNAME, then the container's env (it wins); PATH defaulted when absent. */
export function mergeEnv(imageEnv: readonly string[], containerEnv: ContainerSpec['env'], hostname?: string): string[] {
  const env = new Map<string, string>();
  for (const kv of imageEnv) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    else if (kv !== '') env.set(kv, '');
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (hostname !== undefined) env.set('HOSTNAME', hostname);
  for (const e of containerEnv) env.set(e.name, e.value);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function baseMounts(m: BuildConfigInput['mounts'], privileged: boolean): OciMount[] {
  const ro = privileged ? [] : ['ro'];
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    m.shm !== undefined
      ? {
          destination: '/dev/shm',
          type: 'bind',
          source: m.shm,
          options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'],
        }
      : {
          destination: '/dev/shm',
          type: 'tmpfs',
          source: 'shm',
          options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
        },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...ro] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', ...ro],
    },
  ];
  const bind = (destination: string, source: string | undefined): void => {
    if (source !== undefined) mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  };
  bind('/etc/hosts', m.hosts);
  bind('/etc/resolv.conf', m.resolvConf);
  bind('/etc/hostname', m.hostname);
  return mounts;
}

function checkNamespaces(list: readonly OciNamespace[]): void {
  const seen = new Set<string>();
  for (const ns of list) {
    if (seen.has(ns.type)) throw invalidArgument(`namespace ${ns.type} given twice`);
    seen.add(ns.type);
  }
}

/** Builds the config.json for one container; warnings name what the host would refuse and was left out. */
export function buildConfig(input: BuildConfigInput): BuildResult {
  const c = input.container;
  const sc = c.securityContext;
  const warnings: string[] = [];
  const privileged = sc.privileged;

  const args = processArgs(input.image, c);
  if (args.length === 0) {
    throw invalidArgument(
      `container "${input.containerName}" has no command: neither command/args nor the image's Entrypoint/Cmd`,
    );
  }
  checkNamespaces(input.namespaces);
  const ownUts = input.namespaces.some((n) => n.type === 'uts' && n.path === undefined);

  let caps = privileged ? [...ALL_CAPS] : computeCaps(sc.capabilities.add, sc.capabilities.drop);
  if (input.availableCaps !== undefined) {
    const avail = new Set(input.availableCaps);
    const missing = caps.filter((x) => !avail.has(x));
    caps = caps.filter((x) => avail.has(x));
    // Leaving out caps the host lacks is expected for privileged containers; say so only when asked for by name.
    const asked = new Set(sc.capabilities.add.map((x) => x.toUpperCase().replace(/^(?!CAP_)/, 'CAP_')));
    for (const m of missing)
      if (asked.has(m)) warnings.push(`capability ${m} is not in the host's bounding set; left out`);
  }

  const user = {
    uid: sc.runAsUser ?? input.user.uid,
    gid: sc.runAsGroup ?? input.user.gid,
    ...(input.user.additionalGids.length > 0 ? { additionalGids: [...input.user.additionalGids] } : {}),
  };

  const nofile = Math.min(MAX_NOFILE, input.hostLimits.nofile);
  const proc: OciProcess = {
    terminal: input.terminal ?? c.tty,
    user,
    args,
    env: mergeEnv(input.image.Env ?? [], c.env, input.hostname),
    cwd: c.workingDir || input.image.WorkingDir || '/',
    capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: nofile, hard: nofile }],
    noNewPrivileges: !(privileged || sc.allowPrivilegeEscalation === true),
  };
  if (input.oomScoreAdj !== undefined) {
    const own = input.hostLimits.oomScoreAdj ?? 0;
    if (input.oomScoreAdj < own) {
      warnings.push(
        `oom_score_adj ${input.oomScoreAdj} is below nspod's own (${own}), which needs CAP_SYS_RESOURCE; left out`,
      );
    } else proc.oomScoreAdj = input.oomScoreAdj;
  }

  const resources: OciLinuxResources = {
    ...input.resources,
    devices: privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((d) => ({ ...d })),
  };

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: proc,
    root: { path: input.rootfs, readonly: sc.readOnlyRootFilesystem },
    mounts: [...baseMounts(input.mounts, privileged), ...(input.extraMounts ?? [])],
    linux: {
      namespaces: input.namespaces.map((n) =>
        n.path !== undefined ? { type: n.type, path: n.path } : { type: n.type },
      ),
      cgroupsPath: input.cgroupsPath,
      resources,
      ...(privileged ? {} : { maskedPaths: [...MASKED_PATHS], readonlyPaths: [...READONLY_PATHS] }),
      ...(input.rootfsPropagation ? { rootfsPropagation: input.rootfsPropagation } : {}),
    },
  };
  if (ownUts && input.hostname !== undefined) spec.hostname = input.hostname;
  if (c.extras) {
    applyExtras(spec, c.extras, input.preparedExtras, {
      privileged,
      ...(input.hostLimits.oomScoreAdj !== undefined ? { hostOomScoreAdj: input.hostLimits.oomScoreAdj } : {}),
      warnings,
    });
  }
  return { spec, warnings };
}
