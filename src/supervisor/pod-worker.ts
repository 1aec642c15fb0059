/**
 * One supervised pod, as kubelet's pod worker sees it. `reconcile()` is called on every tick and
 * whenever conmon writes an exit file; calls never overlap. One pass:
 *
 *   observe   each container's live status (conmon's exit file, conmon alive); an exit whose
 *             conmon pid was not handled yet is recorded (lastState, OOMKilled from the cgroup)
 *             and a restart is scheduled per policy with back-off. A container whose conmon is
 *             gone but whose exit file is not written yet is left alone until it is.
 *   init      init containers one at a time to exit 0; native sidecars (restartPolicy Always)
 *             started in order, each started (startup probe passed) before the next
 *   apps      created and started together once init is done; restarted when due
 *   finish    every app container done (will not restart) → sidecars stopped in reverse order
 *
 * Actions that change containers go through the runtime under the state lock and re-check that
 * the pod still exists and was not stopped, so `nspod stop`/`rm` always win.
 */
import { promises as fs, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Runtime } from '../pod/index.js';
import { containerStatus, restartContainer, runHandler, stopContainer } from '../pod/index.js';
import type { ContainerStatus } from '../pod/index.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import type { ContainerSpec } from '../spec/types.js';
import type { EventInput, EventLog } from '../events/index.js';
import { messageOf } from '../errors/index.js';
import { ProbeSet } from './probes.js';
import { oomKilled } from './oom.js';
import { BACKOFF_RESET_MS, backoffDelayMs, isSidecar, newSupContainer, writeSupPod } from './state.js';
import type { SupContainer, SupPod, Terminated } from './state.js';

export interface WorkerEnv {
  rt: Runtime;
  events: EventLog;
  backoff: { baseMs: number; maxMs: number };
  log: (line: string) => void;
  /** write supervisor.json (false: a one-off run by an unsupervised play) */
  persist?: boolean;
}

type Role = 'init' | 'sidecar' | 'app';

interface Instance {
  conmonPid: number;
  probes: ProbeSet;
}

/** how long a container may be without conmon and without an exit file before its exit is taken as unknown */
const UNKNOWN_GRACE_MS = 30_000;

const PROBE_WORD = { livenessProbe: 'Liveness', readinessProbe: 'Readiness', startupProbe: 'Startup' } as const;

export class PodWorker {
  private running = false;
  private again = false;
  private instances = new Map<string, Instance>();
  private killing = new Set<string>();
  private unknownSince = new Map<string, number>();
  private watcher: FSWatcher | undefined;
  private dirty = false;
  private gone = false;
  private timer: NodeJS.Timeout | undefined;
  /** set by the first pass after adoption: exits found then happened while no daemon ran */
  private firstPass = true;

  constructor(
    private env: WorkerEnv,
    private pod: PodRecord,
    private sup: SupPod,
  ) {}

  get id(): string {
    return this.pod.id;
  }

  get isGone(): boolean {
    return this.gone;
  }

  start(): void {
    const exits = path.join(this.pod.runDir, 'exits');
    void fs
      .mkdir(exits, { recursive: true })
      .then(() => {
        if (this.gone) return;
        this.watcher = watch(exits, () => this.kick());
        this.watcher.on('error', () => undefined);
      })
      .catch(() => undefined);
  }

  stop(): void {
    this.gone = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    for (const i of this.instances.values()) i.probes.stop();
    this.instances.clear();
  }

  /** Schedules a pass soon (coalesced). */
  kick(): void {
    if (this.timer || this.gone) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reconcile();
    }, 20);
  }

  async reconcile(): Promise<void> {
    if (this.gone) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.pass();
        this.firstPass = false;
      } while (this.again && !this.gone);
    } catch (e) {
      this.env.log(`pod ${this.pod.name}: ${messageOf(e)}`);
    } finally {
      this.running = false;
    }
    await this.save();
  }

  private emit(e: Omit<EventInput, 'pod'>): void {
    void this.env.events.emit({ ...e, pod: this.pod }).catch(() => undefined);
  }

  private c(name: string): SupContainer {
    return (this.sup.containers[name] ??= newSupContainer());
  }

  private async save(): Promise<void> {
    if (!this.dirty || this.gone || this.env.persist === false) return;
    this.dirty = false;
    if (!(await this.rt.ctx.state.pod(this.pod.id))) return;
    await writeSupPod(this.pod, this.sup).catch((e: unknown) => this.env.log(`save ${this.pod.name}: ${messageOf(e)}`));
  }

  private get rt(): Runtime {
    return this.env.rt;
  }

  private role(spec: ContainerSpec, init: boolean): Role {
    return init ? (isSidecar(spec) ? 'sidecar' : 'init') : 'app';
  }

  private policyFor(role: Role): 'Always' | 'OnFailure' | 'Never' {
    if (role === 'sidecar') return 'Always';
    const p = this.pod.spec.restartPolicy;
    if (role === 'init') return p === 'Never' ? 'Never' : 'OnFailure';
    return p;
  }

  private async pass(): Promise<void> {
    const fresh = await this.rt.ctx.state.pod(this.pod.id);
    if (!fresh) {
      this.stop();
      return;
    }
    this.pod = fresh;
    if (fresh.stoppedAt) {
      for (const i of this.instances.values()) i.probes.stop();
      this.instances.clear();
      return;
    }
    // By id from the pod record: listing every container record of the host per pod per tick
    // would cost O(pods²).
    const list = await Promise.all(fresh.containerIds.map((id) => this.rt.ctx.state.container(id)));
    let recs = new Map(list.filter((r): r is ContainerRecord => r !== undefined).map((r) => [r.name, r]));
    const expected = (fresh.spec.initContainers ?? []).length + fresh.spec.containers.length;
    if (recs.size < expected) {
      // Some not made yet, or made by a run cut short before the pod record listed them.
      recs = new Map((await this.rt.ctx.state.containers(fresh.id)).map((r) => [r.name, r]));
    }
    const inits = fresh.spec.initContainers ?? [];
    const apps = fresh.spec.containers;
    const statuses = new Map<string, ContainerStatus>();
    for (const [list, init] of [
      [inits, true],
      [apps, false],
    ] as const) {
      for (const spec of list) {
        const rec = recs.get(spec.name);
        if (!rec) continue;
        let st = await containerStatus(rec, fresh);
        if (st.state === 'created') {
          // A pass never leaves a container created: this one was cut short by a daemon's death.
          await this.rt
            .startContainer(rec.id)
            .catch((e: unknown) => this.env.log(`start ${rec.name}: ${messageOf(e)}`));
          st = await containerStatus((await this.rt.ctx.state.container(rec.id)) ?? rec, fresh);
        }
        statuses.set(spec.name, st);
        await this.observe(rec, st, this.role(spec, init));
      }
    }

    if (!this.sup.initDone) {
      for (const spec of inits) {
        const role = this.role(spec, true);
        const rec = recs.get(spec.name);
        const st = statuses.get(spec.name);
        const c = this.c(spec.name);
        if (!rec) {
          this.setPhase('Pending');
          await this.createAndStart(spec);
          this.again = true;
          return;
        }
        // A native sidecar unblocks the next init container once it has started (its startup
        // probe passed, or it was started when it has none), whether or not it has crashed since.
        if (role === 'sidecar' && (c.hasStarted || (!spec.startupProbe && rec.startedAt))) continue;
        if (!st || st.state === 'created') return;
        if (st.state === 'unknown') {
          if (c.handledConmonPid === rec.conmonPid) await this.restartIfDue(rec, c);
          return;
        }
        if (st.state === 'running') return;
        // exited
        if (role === 'init' && st.exitCode === 0) continue;
        if (c.done) {
          this.setPhase('Failed');
          return;
        }
        await this.restartIfDue(rec, c);
        return;
      }
      this.sup.initDone = true;
      this.dirty = true;
      this.emit({ reason: 'Initialized', message: 'init containers completed' });
    }

    for (const spec of apps) {
      if (!recs.get(spec.name)) await this.createAndStart(spec);
    }
    for (const [list, init] of [
      [inits, true],
      [apps, false],
    ] as const) {
      for (const spec of list) {
        const role = this.role(spec, init);
        if (role === 'init') continue;
        const rec = recs.get(spec.name);
        const st = statuses.get(spec.name);
        const c = this.c(spec.name);
        if (rec && (st?.state === 'exited' || st?.state === 'unknown') && !c.done) await this.restartIfDue(rec, c);
      }
    }

    // Every app container done for good: stop the sidecars, newest first.
    const appDone = apps.every((s) => this.c(s.name).done);
    if (appDone) {
      const ok = apps.every((s) => this.c(s.name).terminated?.exitCode === 0);
      this.setPhase(ok ? 'Succeeded' : 'Failed');
      if (!this.sup.sidecarsStopped) {
        this.sup.sidecarsStopped = true;
        this.dirty = true;
        const sidecars = inits.filter(isSidecar).reverse();
        for (const s of sidecars) {
          const rec = recs.get(s.name);
          if (!rec) continue;
          this.c(s.name).done = true;
          this.emit({
            reason: 'Killing',
            container: s.name,
            message: `Stopping sidecar ${s.name}: the app containers finished`,
          });
          await stopContainer(this.rt.ctx, rec, this.pod.spec.terminationGracePeriodSeconds * 1000);
        }
      }
    } else if (this.sup.initDone) {
      this.setPhase('Running');
    }
    this.scheduleBackoffWake();
  }

  private setPhase(p: SupPod['phase']): void {
    if (this.sup.phase !== p) {
      this.sup.phase = p;
      this.dirty = true;
    }
  }

  private scheduleBackoffWake(): void {
    const next = Object.values(this.sup.containers)
      .map((c) => (c.done || c.terminated === undefined ? undefined : c.restartAt))
      .filter((t): t is number => t !== undefined)
      .sort((a, b) => a - b)[0];
    if (next === undefined || this.gone) return;
    const ms = next - Date.now();
    if (ms <= 0) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reconcile();
    }, ms);
  }

  /** Records what a container is doing now; handles an exit seen for the first time. */
  private async observe(rec: ContainerRecord, st: ContainerStatus, role: Role): Promise<void> {
    const c = this.c(rec.name);
    if (st.state === 'running' && rec.conmonPid) {
      if (c.handledConmonPid === rec.conmonPid) return; // an exit of this instance was handled: stale view
      const inst = this.instances.get(rec.name);
      if (inst && inst.conmonPid === rec.conmonPid) return;
      inst?.probes.stop();
      if (c.terminated || c.waiting) {
        c.terminated = undefined;
        c.waiting = undefined;
        this.dirty = true;
      }
      this.watchInstance(rec, role);
      return;
    }
    if (st.state === 'unknown' && rec.conmonPid && c.handledConmonPid !== rec.conmonPid) {
      // conmon is gone and its exit file not (yet) written: wait for it. Only when it never comes
      // (conmon itself was killed) is the exit taken as unknown, as kubelet's ContainerStatusUnknown.
      const since = this.unknownSince.get(rec.id) ?? Date.now();
      this.unknownSince.set(rec.id, since);
      if (Date.now() - since < UNKNOWN_GRACE_MS) return;
      st = { ...st, state: 'exited', exitCode: 137 };
    } else {
      this.unknownSince.delete(rec.id);
    }
    if (st.state !== 'exited' || !rec.conmonPid || c.handledConmonPid === rec.conmonPid) return;
    this.instances.get(rec.name)?.probes.stop();
    this.instances.delete(rec.name);
    const code = st.exitCode ?? 0;
    const oom = await oomKilled(this.rt.cgroupLayout, rec.cgroupPath, code);
    const term: Terminated = {
      exitCode: code,
      reason: oom ? 'OOMKilled' : code === 0 ? 'Completed' : 'Error',
      finishedAt: st.finishedAt ?? new Date().toISOString(),
      ...(rec.startedAt ? { startedAt: rec.startedAt } : {}),
    };
    c.handledConmonPid = rec.conmonPid;
    c.terminated = term;
    c.ready = false;
    c.started = false;
    c.waiting = undefined;
    this.dirty = true;
    const away = this.firstPass ? ' while no supervisor was running' : '';
    if (oom) {
      this.emit({
        type: 'Warning',
        reason: 'OOMKilled',
        container: rec.name,
        message: `Container ${rec.name} was killed by the OOM killer (exit code ${code})${away}`,
      });
    } else {
      this.emit({
        type: code === 0 ? 'Normal' : 'Warning',
        reason: away ? 'ExitedWhileAway' : code === 0 ? 'Completed' : 'Failed',
        container: rec.name,
        message: `Container ${rec.name} exited with code ${code}${away}`,
      });
    }
    const policy = this.policyFor(role);
    if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) {
      c.done = true;
      c.restartAt = undefined;
      await this.save();
      return;
    }
    const ran = rec.startedAt ? Date.parse(term.finishedAt) - Date.parse(rec.startedAt) : 0;
    if (ran >= BACKOFF_RESET_MS) c.backoffStep = 0;
    const delay = backoffDelayMs(c.backoffStep, this.env.backoff.baseMs, this.env.backoff.maxMs);
    c.backoffStep++;
    c.restartAt = Date.now() + delay;
    if (delay > 0) {
      c.waiting = 'CrashLoopBackOff';
      this.emit({
        type: 'Warning',
        reason: 'BackOff',
        container: rec.name,
        message: `Back-off ${formatMs(delay)} restarting failed container ${rec.name}`,
      });
    }
    // Written before any restart: a daemon killed during the restart finds the exit handled and
    // the restart still due (the exit file may be gone by then).
    await this.save();
  }

  private async restartIfDue(rec: ContainerRecord, c: SupContainer): Promise<void> {
    if (c.done || c.restartAt === undefined || c.restartAt > Date.now()) return;
    const restarted = await this.rt.withPodLock(this.pod.id, async () => {
      const pod = await this.rt.ctx.state.pod(this.pod.id);
      const cur = await this.rt.ctx.state.container(rec.id);
      if (!pod || pod.stoppedAt || !cur) return undefined;
      const st = await containerStatus(cur, pod);
      // exited, or (a restart cut short by the daemon's death) conmon gone with the exit file removed
      if (st.state === 'running' || st.state === 'created' || cur.conmonPid !== c.handledConmonPid) return undefined;
      return restartContainer(this.rt.ctx, pod, cur);
    });
    if (!restarted) return;
    c.restartCount++;
    c.lastState = c.terminated;
    c.terminated = undefined;
    c.waiting = undefined;
    c.restartAt = undefined;
    this.dirty = true;
    this.emit({
      reason: 'Started',
      container: rec.name,
      message: `Restarted container ${rec.name} (restart ${c.restartCount})`,
    });
    await this.afterStart(restarted);
  }

  private async createAndStart(spec: ContainerSpec): Promise<void> {
    const c = this.c(spec.name);
    c.waiting = 'ContainerCreating';
    this.dirty = true;
    let created;
    try {
      created = await this.rt.createContainer(this.pod.id, spec);
    } catch (e) {
      this.emit({ type: 'Warning', reason: 'Failed', container: spec.name, message: `Error: ${messageOf(e)}` });
      throw e;
    }
    this.emit({
      reason: 'Pulled',
      container: spec.name,
      message: `Container image "${spec.image}" already present on machine`,
    });
    this.emit({ reason: 'Created', container: spec.name, message: `Created container ${spec.name}` });
    await this.rt.startContainer(created.id);
    c.waiting = undefined;
    this.emit({ reason: 'Started', container: spec.name, message: `Started container ${spec.name}` });
    const rec = await this.rt.ctx.state.container(created.id);
    if (rec) await this.afterStart(rec);
  }

  /** postStart hook: a failure kills the container (kubelet's FailedPostStartHook). */
  private async afterStart(rec: ContainerRecord): Promise<void> {
    const hook = rec.spec.lifecycle?.postStart;
    if (!hook) return;
    const r = await runHandler(
      this.rt.ctx,
      { pod: this.pod, rec },
      hook,
      Math.max(this.pod.spec.terminationGracePeriodSeconds, 30) * 1000,
    );
    if (r.ok) return;
    this.emit({ type: 'Warning', reason: 'FailedPostStartHook', container: rec.name, message: r.message });
    await this.kill(rec, `PostStartHook failed: ${r.message}`);
  }

  private watchInstance(rec: ContainerRecord, role: Role): void {
    const c = this.c(rec.name);
    const name = rec.name;
    const started = rec.startedAt ? Date.parse(rec.startedAt) : Date.now();
    const probes = new ProbeSet(
      rec.spec,
      {
        run: async (_kind, p) => {
          const pod = this.pod;
          const timeoutMs = p.timeoutSeconds * 1000;
          return runHandler(this.rt.ctx, { pod, rec }, p.handler, timeoutMs);
        },
        onStarted: () => {
          if (!c.started) {
            c.started = true;
            c.hasStarted = true;
            this.dirty = true;
            void this.save();
            if (role === 'sidecar') this.kick();
          }
        },
        onReady: (ready) => {
          if (c.ready !== ready) {
            c.ready = ready;
            this.dirty = true;
            void this.save();
          }
        },
        onProbeFailure: (kind, message) => {
          this.emit({
            type: 'Warning',
            reason: 'Unhealthy',
            container: name,
            message: `${PROBE_WORD[kind]} probe failed: ${message}`,
          });
        },
        onFailed: (kind, message) => {
          this.emit({
            type: 'Normal',
            reason: 'Killing',
            container: name,
            message: `Container ${name} failed ${kind === 'livenessProbe' ? 'liveness' : 'startup'} probe, will be restarted`,
          });
          void this.kill(rec, `${PROBE_WORD[kind]} probe failed: ${message}`);
        },
      },
      started,
    );
    this.instances.set(name, { conmonPid: rec.conmonPid!, probes });
    probes.start();
  }

  private async kill(rec: ContainerRecord, why: string): Promise<void> {
    if (this.killing.has(rec.id)) return;
    this.killing.add(rec.id);
    try {
      this.instances.get(rec.name)?.probes.stop();
      this.env.log(`pod ${this.pod.name}: killing ${rec.name}: ${why}`);
      await stopContainer(this.rt.ctx, rec, this.pod.spec.terminationGracePeriodSeconds * 1000);
    } catch (e) {
      this.env.log(`pod ${this.pod.name}: kill ${rec.name}: ${messageOf(e)}`);
    } finally {
      this.killing.delete(rec.id);
      this.kick();
    }
  }
}

export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m0s`;
  return `${Number((ms / 1000).toFixed(1))}s`;
}
