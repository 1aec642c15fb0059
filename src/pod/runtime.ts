/**
 * The Runtime API: the one door the CLI, the CRI server and library users go through.
 *
 *   playPod   resolve images ▶ unpack layers ▶ sandbox ▶ create each container ▶ start each
 *   stopPod   containers in reverse start order (stop signal, SIGKILL after the grace period), then pause
 *   removePod stop if forced ▶ containers ▶ sandbox ▶ records
 *
 * Locks: a new pod takes its own lock (a fresh id, never waits) and claims its name with an
 * atomically linked file (see reservePod); only a pod that publishes host ports or uses named
 * volumes is recorded under the global state lock (held for milliseconds). Everything else that
 * changes one pod (its sandbox, containers, stop, removal) runs under that pod's own lock, so pods
 * are made and removed in parallel. Lock order is pod, then global — never the reverse. A failure
 * anywhere in playPod unwinds what was made.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/index.js';
import type { ConfigOptions } from '../config/index.js';
import { realHost } from '../host/index.js';
import type { Host } from '../host/index.js';
import { openState, newId } from '../state/index.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import { openImageStore } from '../image/index.js';
import type { ImageInfo } from '../image/index.js';
import { detectCgroups, openCgroups } from '../cgroups/index.js';
import { cachedRuntime, detectRuntime } from '../oci/index.js';
import type { RuntimeInfo } from '../oci/index.js';
import type { ContainerSpec, PodSpec } from '../spec/types.js';
import { alreadyExists, failedPrecondition, invalidArgument, isNspodError, notFound } from '../errors/index.js';
import type { Context } from './context.js';
import { Rollback } from './rollback.js';
import { beginSandbox, createSandbox, plannedSandbox, podIp, removeSandbox, stopSandbox } from './sandbox.js';
import { createContainer, removeContainer, removeCutShort, startContainer, stopContainer } from './container.js';
import { containerStatus, podState, processIs } from './status.js';
import type { ContainerStatus, PodStatus } from './status.js';
import { driverFor } from './driver.js';
import { ensureImage } from './images.js';
import type { PullPolicy } from './images.js';
import { makeNetworkApi } from './network-api.js';
import { acquireLock, isLockHeld, withLockKey } from '../state/lock.js';
import type { HeldLock } from '../state/lock.js';
import { PodNetworks, checkHostPorts, portMappingsOf } from '../network/cni/index.js';
import { checkPodVolumes, setupVolumes } from './volumes.js';
import { volumeApi } from './volume-api.js';
import { execSync } from './exec-sync.js';
import type { ExecSyncOptions, ExecSyncResult } from './exec-sync.js';
import { updateResources } from './update.js';
import type { RawResources } from '../spec/extras.js';

export interface RuntimeOptions extends ConfigOptions {
  host?: Host;
  onProgress?: (step: string, detail: string) => void;
}

export interface PlayOptions {
  replace?: boolean;
  /** warnings that don't stop the pod (rlimits clamped, …) */
  onWarning?: (msg: string) => void;
}

export interface PlayResult {
  pod: PodStatus;
  /** the containers whose image was pulled from its registry for this play */
  pulled: string[];
  /**
   * milliseconds per step, one after another: images, (replace), reserve, sandbox, containers,
   * network, start; and, timed from the start of the sandbox step because they run in parallel
   * with each other: pause (running), cni (ADD done), container:<name> (created).
   */
  timings: Record<string, number>;
}

interface PreparedImage {
  image: ImageInfo;
  layerDirs: string[];
  /** pulled from its registry for this play (else it was in the store) */
  pulled: boolean;
}

/** Like Promise.all, but waits for every promise to settle before rejecting with the first error. */
async function settleAll<T>(ps: Array<Promise<T>>): Promise<T[]> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * What of the sandbox a container's creation must wait for: the pause process when it joins the
 * pod's pid namespace, the network when its env or args use the pod IP; else nothing beyond the
 * pinned namespaces.
 */
function sandboxNeeds(spec: PodSpec, c: ContainerSpec): 'network' | 'pause' | 'none' {
  if (JSON.stringify([c, spec.volumes ?? []]).includes('status.podIP')) return 'network';
  const pid = c.pidNamespace?.mode ?? spec.namespaces.pid;
  return pid === 'pod' ? 'pause' : 'none';
}

/** A UUID-shaped uid from a hex id, for pods whose YAML gives none. */
function uuidFrom(id: string): string {
  return [id.slice(0, 8), id.slice(8, 12), id.slice(12, 16), id.slice(16, 20), id.slice(20, 32)].join('-');
}

export async function openRuntime(opts: RuntimeOptions = {}) {
  const config = loadConfig(opts);
  const host = opts.host ?? realHost;
  const state = openState(config);
  const images = openImageStore({ root: config.root, host });
  const cgroupLayout = detectCgroups();
  const cgroups = openCgroups({ layout: cgroupLayout, parent: config.cgroupParent });
  let rt: Promise<RuntimeInfo> | undefined;
  const runtimeRoot = path.join(config.runRoot, 'runtime');
  const networks = new PodNetworks({
    configDir: config.cniConfigDir,
    pluginDirs: config.cniPluginDirs,
    cacheDir: path.join(config.root, 'cni'),
    ...(config.defaultNetwork ? { defaultNetwork: config.defaultNetwork } : {}),
    host,
  });
  const ctx: Context = {
    config,
    host,
    state,
    images,
    cgroupLayout,
    cgroups,
    networks,
    runtimeRoot,
    // One probe at a time per run root: nspod processes started together wait for the first one's
    // verdict (cached in runtime.json) instead of all probing. The probe's cgroup is a leaf at the
    // hierarchy root, so it never races with pod cgroups under the shared parent.
    // A cached verdict needs no lock (the usual case: one probe per boot).
    runtime: () =>
      (rt ??= (async () => {
        const o = {
          ...(config.runtime ? { preferred: config.runtime } : {}),
          probeDir: path.join(config.runRoot, 'probe'),
          cacheFile: path.join(config.runRoot, 'runtime.json'),
        };
        return (await cachedRuntime(host, o)) ?? withLockKey(`detect:${config.runRoot}`, () => detectRuntime(host, o));
      })()),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  };

  async function resolveImage(
    ref: string,
    field: string,
    policy?: PullPolicy,
    onPulled?: () => void,
  ): Promise<ImageInfo> {
    return ensureImage(images, ref, {
      field,
      ...(policy ? { policy } : {}),
      onPull: (r: string) => {
        onPulled?.();
        opts.onProgress?.('pull', r);
      },
    });
  }

  async function podStatusOf(pod: PodRecord): Promise<PodStatus> {
    const recs = await state.containers(pod.id);
    const order = new Map(pod.containerIds.map((id, i) => [id, i]));
    recs.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
    const containers = await Promise.all(recs.map((c) => containerStatus(c, pod)));
    return {
      id: pod.id,
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid,
      state: podState(pod, containers),
      createdAt: pod.createdAt,
      ...(pod.sandbox.pid ? { sandboxPid: pod.sandbox.pid } : {}),
      sandboxRunning: await processIs(pod.sandbox.conmonPid, 'conmon'),
      ...(!pod.stoppedAt && podIp(pod.sandbox) ? { ip: podIp(pod.sandbox)! } : {}),
      ...(!pod.stoppedAt && pod.sandbox.network ? { network: pod.sandbox.network } : {}),
      cgroupPath: pod.sandbox.podCgroupPath,
      containers,
      labels: pod.spec.labels,
    };
  }

  async function stopLocked(pod: PodRecord, timeoutMs: number): Promise<void> {
    const recs = await state.containers(pod.id);
    const order = new Map(pod.containerIds.map((id, i) => [id, i]));
    recs.sort((a, b) => (order.get(b.id) ?? 0) - (order.get(a.id) ?? 0));
    for (const c of recs) await stopContainer(ctx, c, timeoutMs);
    await stopSandbox(ctx, pod, Math.min(timeoutMs, 2000));
    if (!pod.stoppedAt) await state.savePod({ ...pod, stoppedAt: new Date().toISOString() });
  }

  /** Records in the pod that containers `ids` are about to be made (see `PodRecord.creating`). */
  async function beginCreating(pod: PodRecord, ids: string[], rb: Rollback): Promise<void> {
    pod.creating = [...(pod.creating ?? []), ...ids];
    await state.savePod(pod);
    rb.push(`forget the creation of ${ids.length} container(s)`, async () => {
      pod.creating = pod.creating?.filter((id) => !ids.includes(id));
      if (await state.pod(pod.id)) await state.savePod(pod);
    });
  }

  async function removeLocked(pod: PodRecord, force: boolean): Promise<void> {
    const status = await podStatusOf(pod);
    const running = status.containers.filter((c) => c.state === 'running');
    if (running.length > 0 && !force) {
      throw failedPrecondition(
        `pod "${pod.name}" has running containers (${running.map((c) => c.name).join(', ')}): stop it first or use rm -f`,
      );
    }
    await stopLocked(pod, 0);
    const recs = await state.containers(pod.id);
    for (const c of recs) await removeContainer(ctx, c);
    for (const id of pod.creating ?? []) if (!recs.some((r) => r.id === id)) await removeCutShort(ctx, pod, id);
    await removeSandbox(ctx, pod);
    await fs.rm(pod.dir, { recursive: true, force: true });
    // The last pod gone: leave no empty nspod cgroup behind (a pod recorded just after this looked
    // makes the parent again: see cgroups' createPod).
    await state.withLock(async () => {
      await state.deletePod(pod.id);
      await state.releaseName(pod.namespace, pod.name, pod.id);
      if ((await state.podIds()).length === 0) await cgroups.removeParentIfEmpty();
    });
  }

  const podLockKey = (id: string) => `pod:${config.runRoot}:${id}`;

  /** Runs fn holding pod `id`'s own lock. */
  function withPod<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withLockKey(podLockKey(id), fn);
  }

  /** Builds a reserved pod with its lock held, then releases the lock. */
  async function building<T>(r: { pod: PodRecord; lock: HeldLock }, fn: (pod: PodRecord) => Promise<T>): Promise<T> {
    try {
      return await fn(r.pod);
    } finally {
      await r.lock.release();
    }
  }

  /** Under the pod's lock, with its record read again (it may have gone while we waited). */
  async function lockedPod<T>(
    ref: string,
    namespace: string | undefined,
    fn: (pod: PodRecord) => Promise<T>,
  ): Promise<T> {
    const found = await state.findPod(ref, namespace);
    return withPod(found.id, async () => {
      const pod = await state.pod(found.id);
      if (!pod) throw notFound(`pod "${ref}" not found`);
      return fn(pod);
    });
  }

  async function findByName(spec: PodSpec): Promise<PodRecord | undefined> {
    return (await state.pods()).find((p) => p.name === spec.name && p.namespace === spec.namespace);
  }

  async function findContainer(ref: string): Promise<{ pod: PodRecord; rec: ContainerRecord }> {
    let rec: ContainerRecord | undefined;
    const slash = ref.indexOf('/');
    if (slash > 0) {
      const pod = await state.findPod(ref.slice(0, slash));
      rec = (await state.containers(pod.id)).find((c) => c.name === ref.slice(slash + 1));
    } else {
      rec = await state.container(ref);
      if (!rec && ref.length >= 3) {
        const matches = (await state.containers()).filter((c) => c.id.startsWith(ref));
        if (matches.length === 1) rec = matches[0];
      }
    }
    if (!rec) throw notFound(`container "${ref}" not found`);
    const pod = await state.pod(rec.podId);
    if (!pod) throw notFound(`pod ${rec.podId} of container "${ref}" not found`);
    return { pod, rec };
  }

  async function prepareImage(ref: string, field: string, policy?: PullPolicy): Promise<PreparedImage> {
    let pulled = false;
    const image = await resolveImage(ref, field, policy, () => (pulled = true));
    return { image, layerDirs: await images.layerDirs(image), pulled };
  }

  /** Host ports the pod asks for must be free: not published by a running pod nor bound on the host. */
  async function checkPorts(spec: PodSpec): Promise<void> {
    const mine = portMappingsOf(spec.containers, spec.portMappings);
    if (mine.length === 0 || spec.namespaces.network === 'node') return;
    // From the specs of pods not stopped: a pod being created holds its ports from its first record.
    const others = (await state.pods())
      .filter((p) => !p.stoppedAt && p.spec.namespaces.network === 'pod')
      .map((p) => ({ pod: p.name, mappings: portMappingsOf(p.spec.containers, p.spec.portMappings) }))
      .filter((o) => o.mappings.length > 0);
    await checkHostPorts(mine, others);
  }

  /**
   * Reserves a new pod: its own lock (a fresh id, so that never waits), the claim on its name
   * (made atomically, see `claimPodName`), the check that its host ports are free and its record,
   * which holds the name and ports from then on. Most pods never take the global lock to start;
   * see below for those that do. Undo steps go on `rb`.
   */
  async function reservePod(
    spec: PodSpec,
    rb: Rollback,
    o: { replaceable?: boolean } = {},
  ): Promise<{ pod: PodRecord; lock: HeldLock }> {
    const taken = () =>
      alreadyExists(
        `pod "${spec.name}" already exists in namespace "${spec.namespace}"${o.replaceable ? ' (use --replace)' : ''}`,
      );
    // Early: the usual case of a name in use fails here without making anything (this also sees
    // pods recorded before names were claimed).
    if (await findByName(spec)) throw taken();
    const id = newId();
    const lock = await acquireLock(podLockKey(id));
    try {
      if (!(await claimPodName(spec, id))) throw taken();
      rb.push(`release the name of pod "${spec.name}"`, () =>
        state.withLock(() => state.releaseName(spec.namespace, spec.name, id)),
      );
      const pod = newPodRecord(id, spec);
      // Recorded before anything is made, so `rm -f` can clean up after a creation cut short.
      // A pod that publishes host ports or uses named volumes is recorded under the global lock:
      // the port check and `volume rm` read every pod under it, so they see it or it sees them.
      const hostPorts =
        portMappingsOf(spec.containers, spec.portMappings).length > 0 && spec.namespaces.network !== 'node';
      if (hostPorts || (spec.volumes ?? []).some((v) => 'persistentVolumeClaim' in v.source)) {
        await state.withLock(async () => {
          await checkPorts(spec);
          await state.savePod(pod);
        });
      } else {
        await state.savePod(pod);
      }
      rb.push(`forget pod "${spec.name}"`, () => state.deletePod(id));
      await fs.mkdir(pod.dir, { recursive: true, mode: 0o700 });
      rb.push(`remove ${pod.dir}`, () => fs.rm(pod.dir, { recursive: true, force: true }));
      await fs.mkdir(pod.runDir, { recursive: true, mode: 0o700 });
      rb.push(`remove ${pod.runDir}`, () => fs.rm(pod.runDir, { recursive: true, force: true }));
      return { pod, lock };
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /**
   * Claims the pod's name for `id` (whose pod lock the caller holds); false when another pod has
   * it. A claim names its pod's id: that pod holds the name while its record exists or while it
   * is being made (its pod lock is held). A claim with neither is left by a start cut short, and
   * is dropped under the global lock (so two claimants cannot both drop it) before trying again.
   */
  async function claimPodName(spec: PodSpec, id: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const holder = await state.claimName(spec.namespace, spec.name, id);
      if (holder === undefined) return true;
      // An unreadable (empty) claim names no pod: it is stale too.
      const holds = async () =>
        holder !== '' && ((await state.pod(holder)) !== undefined || (await isLockHeld(podLockKey(holder))));
      if (await holds()) return false;
      await state.withLock(async () => {
        if (!(await holds())) await state.releaseName(spec.namespace, spec.name, holder); // still stale
      });
    }
    return false;
  }

  /** The record of a new pod, with its sandbox planned (nothing made, nothing saved). */
  function newPodRecord(id: string, spec: PodSpec): PodRecord {
    const pod: PodRecord = {
      id,
      name: spec.name,
      namespace: spec.namespace,
      uid: spec.uid ?? uuidFrom(id),
      spec,
      createdAt: new Date().toISOString(),
      dir: path.join(config.root, 'pods', id),
      runDir: path.join(config.runRoot, 'pods', id),
      sandbox: undefined as unknown as PodRecord['sandbox'],
      containerIds: [],
    };
    pod.sandbox = plannedSandbox(ctx, { id, spec, podDir: pod.dir, runDir: pod.runDir });
    return pod;
  }

  /** Under the pod's lock: the sandbox and volumes of a reserved pod. */
  async function buildSandbox(pod: PodRecord, rb: Rollback): Promise<PodRecord> {
    const params = { id: pod.id, spec: pod.spec, podDir: pod.dir, runDir: pod.runDir };
    pod.sandbox = await createSandbox(ctx, params, rb);
    await state.savePod(pod);
    await setupVolumes(ctx, pod, rb);
    return pod;
  }

  /**
   * Creates container `id` (already in `pod.creating`, saved) in `pod` and records it in the pod
   * (mutates `pod.containerIds`).
   */
  async function createContainerLocked(
    pod: PodRecord,
    id: string,
    c: ContainerSpec,
    prepared: PreparedImage,
    warn: (msg: string) => void,
    rb: Rollback,
  ): Promise<ContainerRecord> {
    const rec = await createContainer(
      ctx,
      { id, pod, spec: c, image: prepared.image, layerDirs: prepared.layerDirs, warn },
      rb,
    );
    pod.containerIds.push(rec.id);
    pod.creating = pod.creating?.filter((x) => x !== rec.id); // recorded: no longer cut short
    await state.savePod(pod);
    rb.push(`drop container "${c.name}" from pod "${pod.name}"`, async () => {
      pod.containerIds = pod.containerIds.filter((id) => id !== rec.id);
      if (await state.pod(pod.id)) await state.savePod(pod);
    });
    return rec;
  }

  const api = {
    ...volumeApi(ctx),
    config,
    images,
    cgroupLayout,
    cgroups,
    /** CNI networks: list, inspect, create, remove, check a pod, prune stale attachments. */
    network: makeNetworkApi(ctx),
    /** The image `ref`, pulled first when the policy asks for it (default IfNotPresent). */
    ensureImage: (ref: string, field: string, policy?: PullPolicy): Promise<ImageInfo> =>
      resolveImage(ref, field, policy),
    /** Runs fn holding the pod's own lock (what stop, rm and container changes of that pod take). */
    withPodLock: <T>(podId: string, fn: () => Promise<T>): Promise<T> => withPod(podId, fn),
    /** The detected OCI runtime (runc or crun). */
    runtime: () => ctx.runtime(),

    /**
     * Creates and starts a pod: sandbox, then every container, then starts them in order. With
     * `replace`, an existing pod of the same name is removed first. All or nothing.
     */
    async playPod(spec: PodSpec, o: PlayOptions = {}): Promise<PlayResult> {
      const warn = o.onWarning ?? (() => undefined);
      const timings: Record<string, number> = {};
      let t = performance.now();
      const lap = (k: string) => {
        const now = performance.now();
        timings[k] = now - t;
        t = now;
      };
      // Everything that can fail on bad input is checked before anything is made.
      const resolved = await Promise.all(
        spec.containers.map((c, i) => prepareImage(c.image, `spec.containers[${i}].image`, c.imagePullPolicy)),
      );
      await checkPodVolumes(ctx, spec);
      lap('images');
      await ctx.runtime();
      // Without --replace, reservePod finds a pod of the same name itself: no second read here.
      const existing = o.replace ? await findByName(spec) : undefined;
      if (existing) {
        await lockedPod(existing.id, undefined, (p) => removeLocked(p, true)).catch((e: unknown) => {
          if (!isNspodError(e, 'NOT_FOUND')) throw e; // removed meanwhile: fine
        });
        lap('replace');
      }
      const rb = new Rollback();
      let reserved: { pod: PodRecord; lock: HeldLock };
      try {
        reserved = await reservePod(spec, rb, { replaceable: true });
      } catch (e) {
        return rb.unwind(e);
      }
      lap('reserve');
      return building(reserved, async (pod) => {
        let sandboxDone: Promise<unknown> = Promise.resolve();
        try {
          // Containers are created while the pause container starts and CNI ADD runs: they only
          // need the pinned namespaces, shm and name files. They start once the network is up.
          // What runs in parallel is timed from here: pause, cni, container:<name>.
          const t0 = t;
          const since = (k: string) => () => void (timings[k] = performance.now() - t0);
          const build = await beginSandbox(ctx, { id: pod.id, spec, podDir: pod.dir, runDir: pod.runDir }, rb);
          build.pause.then(since('pause'), () => undefined);
          build.network.then(since('cni'), () => undefined);
          sandboxDone = build.done;
          pod.sandbox = build.sandbox;
          await setupVolumes(ctx, pod, rb);
          lap('sandbox');
          const ids = spec.containers.map(() => newId());
          await beginCreating(pod, ids, rb);
          const recs = await settleAll(
            spec.containers.map(async (c, i) => {
              const need = sandboxNeeds(spec, c);
              if (need === 'network') await build.done;
              else if (need === 'pause') await build.pause;
              const rec = await createContainerLocked(pod, ids[i]!, c, resolved[i]!, warn, rb);
              since(`container:${c.name}`)();
              return rec;
            }),
          );
          pod.containerIds = recs.map((r) => r.id); // the spec's order, whatever order they finished in
          lap('containers');
          await build.done;
          await state.savePod(pod);
          lap('network');
          await settleAll(recs.map((r) => startContainer(ctx, r)));
          lap('start');
          rb.commit();
          const pulled = spec.containers.filter((_, i) => resolved[i]!.pulled).map((c) => c.name);
          return { pod: await podStatusOf(pod), timings, pulled };
        } catch (e) {
          await sandboxDone.catch(() => undefined); // every undo of the sandbox is on rb
          return rb.unwind(e);
        }
      });
    },

    /**
     * Creates a pod's sandbox only (cgroup, pinned namespaces, shm, name files, pause), with no
     * containers: CRI's RunPodSandbox. `spec.containers` may be empty.
     */
    async createPodSandbox(spec: PodSpec): Promise<PodStatus> {
      await ctx.runtime();
      const rb = new Rollback();
      let reserved: { pod: PodRecord; lock: HeldLock };
      try {
        reserved = await reservePod(spec, rb);
      } catch (e) {
        return rb.unwind(e);
      }
      return building(reserved, async (planned) => {
        try {
          const pod = await buildSandbox(planned, rb);
          rb.commit();
          return podStatusOf(pod);
        } catch (e) {
          return rb.unwind(e);
        }
      });
    },

    /** Creates (but does not start) one container in an existing pod: CRI's CreateContainer. */
    async createContainer(
      podRef: string,
      c: ContainerSpec,
      o: { onWarning?: (msg: string) => void } = {},
    ): Promise<ContainerStatus> {
      const prepared = await prepareImage(c.image, 'image', c.imagePullPolicy);
      return lockedPod(podRef, undefined, async (pod) => {
        if (pod.stoppedAt)
          throw failedPrecondition(`pod "${pod.name}" is stopped: cannot create container "${c.name}" in it`);
        const others = await state.containers(pod.id);
        if (others.some((r) => r.name === c.name)) {
          throw alreadyExists(`container "${c.name}" already exists in pod "${pod.name}"`);
        }
        const rb = new Rollback();
        try {
          const id = newId();
          await beginCreating(pod, [id], rb);
          const rec = await createContainerLocked(pod, id, c, prepared, o.onWarning ?? (() => undefined), rb);
          rb.commit();
          return containerStatus(rec, pod);
        } catch (e) {
          return rb.unwind(e);
        }
      });
    },

    /** Starts a created container: CRI's StartContainer. */
    async startContainer(ref: string): Promise<ContainerStatus> {
      const found = await findContainer(ref);
      return withPod(found.pod.id, async () => {
        const { pod, rec } = await findContainer(found.rec.id);
        const st = await containerStatus(rec, pod);
        if (st.state !== 'created') throw failedPrecondition(`container "${rec.name}" is ${st.state}, not created`);
        return containerStatus(await startContainer(ctx, rec), pod);
      });
    },

    /** Stops one container: its stop signal, SIGKILL after `timeoutSeconds`. Stopped already = fine. */
    async stopContainer(ref: string, o: { timeoutSeconds?: number } = {}): Promise<ContainerStatus> {
      const { pod, rec } = await findContainer(ref);
      await stopContainer(ctx, rec, (o.timeoutSeconds ?? pod.spec.terminationGracePeriodSeconds) * 1000);
      return containerStatus(rec, pod);
    },

    /** Removes one container (killing it first when `force`). */
    async removeContainer(ref: string, o: { force?: boolean } = {}): Promise<void> {
      const found = await findContainer(ref);
      await withPod(found.pod.id, async () => {
        const { pod, rec } = await findContainer(found.rec.id);
        const st = await containerStatus(rec, pod);
        if (st.state === 'running') {
          if (!o.force)
            throw failedPrecondition(`container "${rec.name}" is running: stop it first or force the removal`);
          await stopContainer(ctx, rec, 0);
        }
        await removeContainer(ctx, rec);
        await state.savePod({ ...pod, containerIds: pod.containerIds.filter((id) => id !== rec.id) });
      });
    },

    /** A container's live status, by id (or unique prefix) or `pod/name`. */
    async containerStatus(ref: string): Promise<ContainerStatus> {
      const { pod, rec } = await findContainer(ref);
      return containerStatus(rec, pod);
    },

    /** A container's record (bundle, log path, pids …), by id (or unique prefix) or `pod/name`. */
    async containerRecord(ref: string): Promise<ContainerRecord> {
      return (await findContainer(ref)).rec;
    },

    async listPods(): Promise<PodStatus[]> {
      const pods = await state.pods();
      return Promise.all(pods.map(podStatusOf));
    },

    async podStatus(ref: string, namespace?: string): Promise<PodStatus> {
      return podStatusOf(await state.findPod(ref, namespace));
    },

    async podRecord(ref: string, namespace?: string): Promise<PodRecord> {
      return state.findPod(ref, namespace);
    },

    async listContainers(o: { all?: boolean } = {}): Promise<ContainerStatus[]> {
      const pods = await api.listPods();
      const all = pods.flatMap((p) => p.containers);
      return o.all ? all : all.filter((c) => c.state === 'running');
    },

    /** Stops every container of the pod (reverse order), then its sandbox. */
    async stopPod(ref: string, o: { timeoutSeconds?: number; namespace?: string } = {}): Promise<PodStatus> {
      return lockedPod(ref, o.namespace, async (pod) => {
        const secs = o.timeoutSeconds ?? pod.spec.terminationGracePeriodSeconds;
        if (!Number.isFinite(secs) || secs < 0) throw invalidArgument(`--time: expected seconds >= 0, got ${secs}`);
        await stopLocked(pod, secs * 1000);
        return podStatusOf((await state.pod(pod.id)) ?? pod);
      });
    },

    /** Removes the pod and everything it made. `force` kills running containers first. */
    async removePod(ref: string, o: { force?: boolean; namespace?: string } = {}): Promise<void> {
      await lockedPod(ref, o.namespace, (pod) => removeLocked(pod, o.force ?? false));
    },

    /** Runs a command in a running container of the pod; resolves to its exit code. */
    async exec(
      ref: string,
      o: { container?: string; args: string[]; tty?: boolean; interactive?: boolean; namespace?: string },
    ): Promise<number> {
      const pod = await state.findPod(ref, o.namespace);
      const c = await api.pickContainer(pod, o.container);
      const st = await containerStatus(c, pod);
      if (st.state !== 'running')
        throw failedPrecondition(`container "${c.name}" of pod "${pod.name}" is not running (${st.state})`);
      if (o.args.length === 0) throw invalidArgument('exec: a command is required after --');
      return (await driverFor(ctx)).exec(c.id, {
        args: o.args,
        tty: o.tty ?? false,
        interactive: o.interactive ?? false,
      });
    },

    /** Pod records as stored (the CRI server reads specs, labels and metadata from them). */
    podRecords: (): Promise<PodRecord[]> => state.pods(),
    /** Container records as stored, of one pod or of all. */
    containerRecords: (podId?: string): Promise<ContainerRecord[]> => state.containers(podId),
    /** The live status of a pod record. */
    statusOfPod: (pod: PodRecord): Promise<PodStatus> => podStatusOf(pod),
    /** The live status of a container record. */
    statusOfContainer: (rec: ContainerRecord, pod: PodRecord): Promise<ContainerStatus> => containerStatus(rec, pod),

    /**
     * Runs a command in a running container and captures its output (CRI ExecSync). On timeout
     * the command and everything it started are killed and `timedOut` is set.
     */
    async execSync(ref: string, o: ExecSyncOptions): Promise<ExecSyncResult> {
      const { pod, rec } = await findContainer(ref);
      const st = await containerStatus(rec, pod);
      if (st.state !== 'running') throw failedPrecondition(`container "${rec.name}" is not running (${st.state})`);
      if (o.args.length === 0) throw invalidArgument('cmd: a command is required');
      return execSync(ctx, rec, o);
    },

    /** Changes a container's cgroup limits (written now if it runs) and records them. */
    async updateContainerResources(ref: string, r: RawResources): Promise<ContainerRecord> {
      const found = await findContainer(ref);
      return withPod(found.pod.id, async () => {
        const { pod, rec } = await findContainer(found.rec.id);
        const st = await containerStatus(rec, pod);
        return updateResources(ctx, rec, r, st.state === 'running' || st.state === 'created');
      });
    },

    /** The container named `name`, or the pod's default container (first one) when unnamed. */
    async pickContainer(pod: PodRecord, name?: string): Promise<ContainerRecord> {
      const recs = await state.containers(pod.id);
      if (name === undefined) {
        const def = pod.spec.annotations['kubectl.kubernetes.io/default-container'] ?? pod.spec.containers[0]?.name;
        const c = recs.find((r) => r.name === def) ?? recs[0];
        if (!c) throw notFound(`pod "${pod.name}" has no containers`);
        return c;
      }
      const c = recs.find((r) => r.name === name);
      if (!c) {
        throw notFound(
          `container "${name}" not found in pod "${pod.name}" (containers: ${recs.map((r) => r.name).join(', ')})`,
        );
      }
      return c;
    },
  };
  return Object.assign(api, { ctx });
}

export type Runtime = Awaited<ReturnType<typeof openRuntime>>;
