/**
 * One app container of a pod: its overlay rootfs, config.json, and conmon-supervised process.
 *
 *   createContainer: rootfs (overlay over the image's layers) ▶ config.json ▶ conmon (runtime create)
 *   startContainer:  runtime start
 *   removeContainer: runtime delete ▶ unmount + delete rootfs ▶ delete record   (idempotent)
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Context } from './context.js';
import type { Rollback } from './rollback.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import type { ContainerSpec } from '../spec/types.js';
import type { ImageInfo } from '../image/index.js';
import { containerCgroupPath, limitsFromResources } from '../cgroups/index.js';
import { buildConfig, hostBoundingCaps, prepareExtras, resolveUser, userSpecFor } from '../oci/index.js';
import { failedPrecondition, notFound } from '../errors/index.js';
import type { OciNamespace } from '../oci/index.js';
import { readPidFile, startConmon } from '../monitor/index.js';
import { createRootfs, removeRootfs } from '../storage/index.js';
import { hostLimits } from './host-limits.js';
import { driverFor, stopGracefully, waitExited } from './driver.js';
import { runHandler } from './handlers.js';
import { openEventLog } from '../events/index.js';
import { prepareContainer } from './volumes.js';

export interface ContainerParams {
  /** the new container's id, recorded in the pod's `creating` before this is called */
  id: string;
  pod: PodRecord;
  spec: ContainerSpec;
  image: ImageInfo;
  layerDirs: string[];
  warn: (msg: string) => void;
}

/** The pid namespace path of a `target` container (CRI NamespaceMode TARGET). */
async function targetPidNs(ctx: Context, pod: PodRecord, spec: ContainerSpec): Promise<string | undefined> {
  if (spec.pidNamespace?.mode !== 'target') return undefined;
  const id = spec.pidNamespace.targetId ?? '';
  const target = await ctx.state.container(id);
  if (!target || target.podId !== pod.id)
    throw notFound(`pid namespace target container "${id}" not found in pod "${pod.name}"`);
  if (!target.pid) throw failedPrecondition(`pid namespace target container "${target.name}" has no process`);
  return `/proc/${target.pid}/ns/pid`;
}

function namespacesFor(pod: PodRecord, spec: ContainerSpec, cgroupNs: boolean, targetPid?: string): OciNamespace[] {
  const ns: OciNamespace[] = [{ type: 'mount' }];
  const s = pod.spec.namespaces;
  const pid = spec.pidNamespace?.mode ?? s.pid;
  if (pid === 'target') ns.push({ type: 'pid', path: targetPid! });
  else if (pid === 'container') ns.push({ type: 'pid' });
  else if (pid === 'pod') ns.push({ type: 'pid', path: `/proc/${pod.sandbox.pid}/ns/pid` });
  if (pod.sandbox.namespaces.net) ns.push({ type: 'network', path: pod.sandbox.namespaces.net });
  if (pod.sandbox.namespaces.uts) ns.push({ type: 'uts', path: pod.sandbox.namespaces.uts });
  if (pod.sandbox.namespaces.ipc) ns.push({ type: 'ipc', path: pod.sandbox.namespaces.ipc });
  if (cgroupNs) ns.push({ type: 'cgroup' });
  return ns;
}

export async function createContainer(ctx: Context, p: ContainerParams, rb: Rollback): Promise<ContainerRecord> {
  const { id, pod, spec } = p;
  const rootfs = await createRootfs(ctx.host, { root: ctx.config.root, containerId: id, layerDirs: p.layerDirs });
  rb.push(`remove rootfs of container "${spec.name}"`, () => removeRootfs(ctx.host, ctx.config.root, id));

  const imageConfig = (await ctx.images.config(p.image)).config ?? {};
  const user = await resolveUser(
    rootfs.rootfs,
    spec.extras?.user ?? userSpecFor(imageConfig.User, spec.securityContext),
  );
  const targetPid = await targetPidNs(ctx, pod, spec);
  const preparedExtras = await prepareExtras(spec.extras);
  const cgroupsPath = containerCgroupPath(ctx.config.cgroupParent, pod.id, spec.name);
  const limits = limitsFromResources(spec.resources);
  // env resolved from ConfigMaps/Secrets/fields, $(VAR) expanded, volumeMounts → mounts
  const prepared = await prepareContainer(ctx, pod, spec, p.warn, rb);
  const built = buildConfig({
    containerName: spec.name,
    image: imageConfig,
    container: prepared.spec,
    extraMounts: prepared.mounts,
    ...(prepared.rootfsPropagation ? { rootfsPropagation: prepared.rootfsPropagation } : {}),
    rootfs: rootfs.rootfs,
    hostname: pod.spec.hostname,
    namespaces: namespacesFor(pod, spec, ctx.cgroupLayout.version === 2, targetPid),
    cgroupsPath,
    resources: ctx.cgroups.ociResources(limits),
    mounts: {
      hosts: pod.sandbox.files.hosts,
      resolvConf: pod.sandbox.files.resolvConf,
      hostname: pod.sandbox.files.hostname,
      ...(pod.sandbox.shm ? { shm: pod.sandbox.shm } : {}),
    },
    user,
    hostLimits: hostLimits(),
    terminal: false,
    availableCaps: hostBoundingCaps(),
    ...(preparedExtras ? { preparedExtras } : {}),
  });
  for (const w of built.warnings) p.warn(`container "${spec.name}": ${w}`);
  const bundle = rootfs.dir;
  // 0600: the env may hold secrets
  await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(built.spec, null, 2), { mode: 0o600 });

  const rec: ContainerRecord = {
    id,
    podId: pod.id,
    name: spec.name,
    spec,
    image: { id: p.image.id, name: p.image.names[0] ?? spec.image },
    createdAt: new Date().toISOString(),
    bundle,
    rootfs: rootfs.rootfs,
    cgroupPath: cgroupsPath,
    logPath: spec.logPath ?? path.join(pod.dir, 'logs', `${spec.name}.log`),
    exitFile: path.join(pod.runDir, 'exits', id),
    stopSignal: spec.stopSignal ?? imageConfig.StopSignal ?? 'SIGTERM',
  };
  const rt = await ctx.runtime();
  const started = await startConmon(ctx.host, {
    conmon: ctx.config.conmon,
    id,
    name: `${pod.name}/${spec.name}`,
    bundle,
    runtimePath: rt.path,
    runtimeRoot: ctx.runtimeRoot,
    logPath: rec.logPath,
    exitDir: path.dirname(rec.exitFile),
    pidFile: path.join(pod.runDir, `${id}.pid`),
    conmonPidFile: path.join(pod.runDir, `${id}.conmon.pid`),
    socketDir: path.join(pod.runDir, 'sock'),
  });
  rb.push(`delete container "${spec.name}"`, async () => (await driverFor(ctx)).delete(id, { force: true }));
  rec.pid = started.pid;
  rec.conmonPid = started.conmonPid;
  await ctx.state.saveContainer(rec);
  rb.push(`forget container "${spec.name}"`, () => ctx.state.deleteContainer(id));
  return rec;
}

export async function startContainer(ctx: Context, rec: ContainerRecord): Promise<ContainerRecord> {
  await (await driverFor(ctx)).start(rec.id);
  const updated = { ...rec, startedAt: new Date().toISOString() };
  await ctx.state.saveContainer(updated);
  return updated;
}

/**
 * Stops a container as kubelet does: its preStop hook (when it has one and a grace period is
 * given), then the stop signal, SIGKILL once the grace period (hook included) has run out.
 */
export async function stopContainer(ctx: Context, rec: ContainerRecord, timeoutMs: number): Promise<void> {
  const preStop = rec.spec.lifecycle?.preStop;
  if (preStop && timeoutMs > 0 && !(await waitExited(rec, 0))) {
    const pod = await ctx.state.pod(rec.podId);
    if (pod) {
      const t0 = Date.now();
      const r = await runHandler(ctx, { pod, rec }, preStop, timeoutMs);
      if (!r.ok) {
        await openEventLog(ctx.config.root)
          .emit({ type: 'Warning', reason: 'FailedPreStopHook', pod, container: rec.name, message: r.message })
          .catch(() => undefined);
      }
      // As kubelet: whatever the hook used, the stop signal still gets at least 2 s.
      timeoutMs = Math.max(timeoutMs - (Date.now() - t0), 2000);
    }
  }
  await stopGracefully(ctx, {
    id: rec.id,
    exitFile: rec.exitFile,
    conmonPid: rec.conmonPid,
    signal: rec.stopSignal,
    timeoutMs,
  });
}

/**
 * Cleans up after a container of `pod` whose creation was cut short (nspod killed before its
 * record was saved): waits for a conmon still running the runtime's create for it (its conmon pid
 * file is written first, the container's pid file when create is done), then deletes it in the
 * runtime, waits for that conmon to go, and removes its rootfs. Idempotent.
 */
export async function removeCutShort(ctx: Context, pod: PodRecord, id: string): Promise<void> {
  const conmonPid = await readPidFile(path.join(pod.runDir, `${id}.conmon.pid`));
  const exitFile = path.join(pod.runDir, 'exits', id);
  if (conmonPid) {
    const pidFile = path.join(pod.runDir, `${id}.pid`);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !(await readPidFile(pidFile)) && !(await waitExited({ exitFile, conmonPid }, 0))) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  await (await driverFor(ctx)).delete(id, { force: true });
  if (conmonPid) await waitExited({ exitFile, conmonPid }, 5000);
  await removeRootfs(ctx.host, ctx.config.root, id);
}

export async function removeContainer(ctx: Context, rec: ContainerRecord): Promise<void> {
  await (await driverFor(ctx)).delete(rec.id, { force: true });
  await removeRootfs(ctx.host, ctx.config.root, rec.id);
  await ctx.state.deleteContainer(rec.id);
}
