/**
 * The pod sandbox: the pod's cgroup, its pinned net/ipc/uts namespaces, its /dev/shm, its name
 * files, and the pause container that is PID 1 of the sandbox's pid namespace.
 *
 *   createSandbox: cgroup ▶ pin namespaces ▶ CNI ADD (in parallel with shm and pause) ▶ name files
 *   stopSandbox:   pause stopped ▶ CNI DEL (Kubernetes tears the network down on StopPodSandbox)
 *   removeSandbox: the same in reverse; every step is idempotent, so it also cleans up after a
 *                  crash half-way through create.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Context } from './context.js';
import type { Rollback } from './rollback.js';
import type { PodRecord, SandboxRecord } from '../state/index.js';
import type { ContainerSpec, PodSpec } from '../spec/types.js';
import { containerCgroupPath, limitsFromResources, podCgroupPath, sumLimits } from '../cgroups/index.js';
import { isMountPoint, pinNamespaces, unpinNamespaces, mountShm, unmountShm, writePodFiles } from '../network/index.js';
import { bandwidthOf, podNetworkNames, portMappingsOf } from '../network/cni/index.js';
import type { PodNetworkStatus } from '../network/cni/index.js';
import type { PinnedNamespaces, PinnedType } from '../network/index.js';
import { buildConfig } from '../oci/index.js';
import { startConmon } from '../monitor/index.js';
import { hostLimits } from './host-limits.js';
import { driverFor, stopGracefully } from './driver.js';
import { teardownVolumes } from './volumes.js';

export const PAUSE_NAME = '_pause';

async function pauseRootfs(ctx: Context): Promise<string> {
  const dir = path.join(ctx.config.root, 'pause', 'rootfs');
  const target = path.join(dir, 'pause');
  const src = await fs.stat(ctx.config.pause).catch(() => undefined);
  if (!src) throw new Error(`pause binary ${ctx.config.pause} is missing: run npm run build`);
  const have = await fs.stat(target).catch(() => undefined);
  if (!have || have.size !== src.size || have.mtimeMs < src.mtimeMs) {
    for (const d of ['proc', 'dev', 'sys', 'etc']) await fs.mkdir(path.join(dir, d), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}`;
    await fs.copyFile(ctx.config.pause, tmp);
    await fs.chmod(tmp, 0o755);
    await fs.rename(tmp, target);
  }
  return dir;
}

function pauseSpec(sysctls?: Record<string, string>): ContainerSpec {
  return {
    ...(sysctls && Object.keys(sysctls).length > 0 ? { extras: { sysctls } } : {}),
    name: PAUSE_NAME,
    image: '',
    command: ['/pause'],
    env: [],
    ports: [],
    resources: { limits: {}, requests: {} },
    securityContext: {
      privileged: false,
      capabilities: { add: [], drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    },
    tty: false,
    stdin: false,
  };
}

export interface SandboxParams {
  id: string;
  spec: PodSpec;
  podDir: string;
  runDir: string;
}

function pinnedTypes(spec: PodSpec): PinnedType[] {
  const types: PinnedType[] = [];
  if (spec.namespaces.network === 'pod') types.push('net', 'uts');
  if (spec.namespaces.ipc === 'pod') types.push('ipc');
  return types;
}

/**
 * Where every part of the sandbox will be, before any is made. It is recorded first, so that a
 * pod whose creation was cut short (nspod killed) can still be removed: removeSandbox is
 * idempotent over these paths.
 */
export function plannedSandbox(ctx: Context, p: SandboxParams): SandboxRecord {
  const parent = ctx.config.cgroupParent;
  const nsDir = path.join(p.runDir, 'ns');
  const id = `${p.id}-pause`;
  return {
    id,
    bundle: path.join(p.podDir, 'pause'),
    cgroupPath: containerCgroupPath(parent, p.id, PAUSE_NAME),
    podCgroupPath: podCgroupPath(parent, p.id),
    namespaces: Object.fromEntries(pinnedTypes(p.spec).map((t) => [t, path.join(nsDir, t)])),
    ...(p.spec.namespaces.ipc === 'pod' ? { shm: path.join(p.runDir, 'shm') } : {}),
    files: {
      hosts: path.join(p.podDir, 'hosts'),
      resolvConf: path.join(p.podDir, 'resolv.conf'),
      hostname: path.join(p.podDir, 'hostname'),
    },
    exitFile: path.join(p.runDir, 'exits', id),
    logPath: path.join(p.podDir, 'logs', `${PAUSE_NAME}.log`),
  };
}

/**
 * A sandbox being made. `sandbox` already has its cgroup, pinned namespaces, shm and name files
 * (without the pod IP yet): enough to create containers that join it. `pause` settles when the
 * pause process runs (`sandbox.pid` set: what a shared pid namespace needs), `done` when the
 * networks are attached and the name files hold the pod IP too (`sandbox.network` set).
 */
export interface SandboxBuild {
  sandbox: SandboxRecord;
  pause: Promise<void>;
  /** settles when CNI ADD is done (at once without a pod network) */
  network: Promise<unknown>;
  done: Promise<SandboxRecord>;
}

/** Creates the planned sandbox; pushes an undo for every step onto `rb`. */
export async function createSandbox(ctx: Context, p: SandboxParams, rb: Rollback): Promise<SandboxRecord> {
  return (await beginSandbox(ctx, p, rb)).done;
}

/**
 * Starts making the planned sandbox: returns once containers may be created in it, while the
 * pause container starts and CNI ADD runs. Every step pushes its undo onto `rb` as it completes;
 * wait for `done` to settle before unwinding `rb`.
 */
export async function beginSandbox(ctx: Context, p: SandboxParams, rb: Rollback): Promise<SandboxBuild> {
  const { spec } = p;
  const sandbox = plannedSandbox(ctx, p);
  const podCg = sandbox.podCgroupPath;
  const limits = sumLimits(spec.containers.map((c) => limitsFromResources(c.resources)));
  const nsDir = path.join(p.runDir, 'ns');
  // The pod cgroup and the pinned namespaces do not depend on each other.
  const [cg, pinnedR] = await Promise.allSettled([
    ctx.cgroups.createPod(podCg, limits),
    pinNamespaces(ctx.host, { dir: nsDir, types: pinnedTypes(spec), hostname: spec.hostname }),
  ]);
  if (cg.status === 'fulfilled') rb.push(`remove cgroup ${podCg}`, () => ctx.cgroups.removePod(podCg));
  if (pinnedR.status === 'fulfilled') {
    const pinned = pinnedR.value;
    rb.push(`unpin namespaces in ${nsDir}`, () => unpinNamespaces(ctx.host, pinned));
  }
  if (cg.status === 'rejected') throw cg.reason;
  if (pinnedR.status === 'rejected') throw pinnedR.reason;
  const pinned = pinnedR.value;

  // CNI ADD runs while shm, name files, pause (and the caller's containers) are made: it only
  // needs the pinned netns.
  let netP: Promise<PodNetworkStatus> | undefined;
  if (pinned.net) {
    const netns = pinned.net;
    netP = (async () =>
      ctx.networks.attach({
        sandboxId: sandbox.id,
        podName: spec.criName ?? spec.name, // K8S_POD_NAME: the name Kubernetes knows
        namespace: spec.namespace,
        netns,
        networks: await podNetworkNames(ctx.networks.settings, spec),
        portMappings: portMappingsOf(spec.containers, spec.portMappings),
        ...(bandwidthOf(spec.annotations) ? { bandwidth: bandwidthOf(spec.annotations)! } : {}),
      }))();
    netP.catch(() => undefined); // awaited in `done`; a failure meanwhile is handled by the rollback
    rb.push(`detach pod networks of ${sandbox.id}`, async () => {
      await netP?.catch(() => undefined);
      await ctx.networks.detach(sandbox.id, netns);
    });
  }

  const filesReady = (async () => {
    if (sandbox.shm) {
      const shm = await mountShm(ctx.host, sandbox.shm);
      rb.push(`unmount ${shm}`, () => unmountShm(ctx.host, shm));
    }
    // The files exist before any container bind-mounts them; they are rewritten in place (same
    // inode) with the pod IP once the network is attached, before any container starts.
    await writeNameFiles(spec, p.podDir);
  })();
  const pauseRunning = filesReady.then(() => startPause(ctx, p, sandbox, pinned, rb));
  pauseRunning.catch(() => undefined); // awaited by the caller or in `done`
  const done = (async () => {
    // Both settle before `done` does, so every undo is on `rb` when the caller unwinds.
    const [pr, nr] = await Promise.allSettled([pauseRunning, netP]);
    if (pr.status === 'rejected') throw pr.reason;
    if (nr.status === 'rejected') throw nr.reason;
    if (nr.value) {
      ctx.onProgress?.('network', 'attached');
      sandbox.network = nr.value;
      await writeNameFiles(spec, p.podDir, podIp(sandbox));
    }
    return sandbox;
  })();
  done.catch(() => undefined); // the caller awaits it
  await filesReady; // shm and name files: what a container's config.json points at
  return { sandbox, pause: pauseRunning, network: netP ?? Promise.resolve(), done };
}

async function writeNameFiles(spec: PodSpec, dir: string, ip?: string): Promise<void> {
  await writePodFiles({
    dir,
    hostname:
      spec.namespaces.network === 'node'
        ? (await fs.readFile('/proc/sys/kernel/hostname', 'utf8')).trim()
        : spec.hostname,
    hostNetwork: spec.namespaces.network === 'node',
    ...(ip ? { ip } : {}),
    ...(spec.hostAliases ? { hostAliases: spec.hostAliases } : {}),
    ...(spec.dns ? { dns: spec.dns } : {}),
  });
}

/** The pause container, created and started under conmon; sets `sandbox.pid` and `conmonPid`. */
async function startPause(
  ctx: Context,
  p: SandboxParams,
  sandbox: SandboxRecord,
  pinned: PinnedNamespaces,
  rb: Rollback,
): Promise<void> {
  const { spec } = p;
  const { id, bundle } = sandbox;
  const rootfs = await pauseRootfs(ctx);
  const namespaces: Array<{ type: 'pid' | 'network' | 'ipc' | 'uts' | 'mount'; path?: string }> = [{ type: 'mount' }];
  if (spec.namespaces.pid !== 'node') namespaces.push({ type: 'pid' });
  if (pinned.net) namespaces.push({ type: 'network', path: pinned.net });
  if (pinned.uts) namespaces.push({ type: 'uts', path: pinned.uts });
  if (pinned.ipc) namespaces.push({ type: 'ipc', path: pinned.ipc });
  const built = buildConfig({
    containerName: PAUSE_NAME,
    image: {},
    container: pauseSpec(spec.sysctls),
    rootfs,
    namespaces,
    cgroupsPath: sandbox.cgroupPath,
    mounts: {},
    user: { uid: 65535, gid: 65535, additionalGids: [] },
    hostLimits: hostLimits(),
  });
  await fs.mkdir(bundle, { recursive: true });
  await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(built.spec, null, 2));
  const rt = await ctx.runtime();
  const driver = await driverFor(ctx);
  const started = await startConmon(ctx.host, {
    conmon: ctx.config.conmon,
    id,
    name: `${spec.name}/${PAUSE_NAME}`,
    bundle,
    runtimePath: rt.path,
    runtimeRoot: ctx.runtimeRoot,
    logPath: sandbox.logPath,
    exitDir: path.dirname(sandbox.exitFile),
    pidFile: path.join(p.runDir, `${id}.pid`),
    conmonPidFile: path.join(p.runDir, `${id}.conmon.pid`),
    socketDir: path.join(p.runDir, 'sock'),
  });
  rb.push(`delete pause container ${id}`, () => driver.delete(id, { force: true }));
  await driver.start(id);
  sandbox.pid = started.pid;
  sandbox.conmonPid = started.conmonPid;
}

/** The pod's IP: the first address of its first network. */
export function podIp(sandbox: SandboxRecord): string | undefined {
  return sandbox.network?.attachments.find((a) => a.ip)?.ip;
}

/** Detaches the pod's networks (idempotent); the netns may already be gone. */
export async function detachNetworks(ctx: Context, sandbox: SandboxRecord): Promise<void> {
  const ns = sandbox.namespaces.net;
  if (!ns) return;
  await ctx.networks.detach(sandbox.id, (await isMountPoint(ns)) ? ns : '');
}

/** Stops the pause container (SIGTERM, then SIGKILL after `timeoutMs`) and detaches its networks. */
export async function stopSandbox(ctx: Context, pod: PodRecord, timeoutMs: number): Promise<void> {
  await stopGracefully(ctx, {
    id: pod.sandbox.id,
    exitFile: pod.sandbox.exitFile,
    conmonPid: pod.sandbox.conmonPid,
    signal: 'SIGTERM',
    timeoutMs,
  });
  await detachNetworks(ctx, pod.sandbox);
}

/** Removes every part of the sandbox that exists. Idempotent. */
export async function removeSandbox(ctx: Context, pod: PodRecord): Promise<void> {
  await (await driverFor(ctx)).delete(pod.sandbox.id, { force: true });
  await detachNetworks(ctx, pod.sandbox);
  await unpinNamespaces(ctx.host, pod.sandbox.namespaces);
  if (pod.sandbox.shm) await unmountShm(ctx.host, pod.sandbox.shm);
  await teardownVolumes(ctx.host, pod);
  await killLeftovers(ctx, pod.sandbox.podCgroupPath);
  await ctx.cgroups.removePod(pod.sandbox.podCgroupPath);
  await fs.rm(pod.runDir, { recursive: true, force: true });
}

/**
 * Every container of the pod has been stopped and deleted by now; a process still in the pod's
 * cgroup is one a start cut short left behind (a runtime create that finished after nspod was
 * killed). Everything in the pod's cgroup is the pod's: it is killed, as kubelet does.
 */
async function killLeftovers(ctx: Context, podCg: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let pids = await ctx.cgroups.procs(podCg); pids.length > 0; pids = await ctx.cgroups.procs(podCg)) {
    if (Date.now() > deadline) return; // removePod says which processes remain
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {} // gone meanwhile
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
