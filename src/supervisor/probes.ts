/**
 * Probe workers for one running container instance, with kubelet's semantics:
 * - the startup probe runs first; until it succeeds neither liveness nor readiness runs and the
 *   container is not ready; failureThreshold failures in a row kill the container;
 * - liveness: failureThreshold failures in a row kill the container (restarted per policy);
 * - readiness: successThreshold successes make it ready, failureThreshold failures unready.
 * Delays count from the container's start. Each probe waits for the previous run to finish.
 */
import type { Probe } from '../spec/probe-types.js';
import type { ProbeKind } from '../spec/kube-probes.js';
import type { HandlerResult } from '../pod/index.js';

export interface ProbeHost {
  run(kind: ProbeKind, p: Probe): Promise<HandlerResult>;
  /** the startup probe passed (or there is none) */
  onStarted(): void;
  onReady(ready: boolean): void;
  /** liveness or startup failed failureThreshold times: kill the container */
  onFailed(kind: ProbeKind, message: string): void;
  /** one failed run (for events) */
  onProbeFailure(kind: ProbeKind, message: string): void;
}

export interface ProbeSpecs {
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export class ProbeSet {
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private startedAt: number;

  constructor(
    private specs: ProbeSpecs,
    private host: ProbeHost,
    startedAtMs: number,
  ) {
    this.startedAt = startedAtMs;
  }

  start(): void {
    if (this.specs.startupProbe) this.loop('startupProbe', this.specs.startupProbe);
    else this.afterStartup();
    if (!this.specs.readinessProbe && !this.specs.startupProbe) this.host.onReady(true);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private afterStartup(): void {
    this.host.onStarted();
    if (this.specs.livenessProbe) this.loop('livenessProbe', this.specs.livenessProbe);
    if (this.specs.readinessProbe) this.loop('readinessProbe', this.specs.readinessProbe);
    else this.host.onReady(true);
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (!this.stopped) fn();
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
  }

  private loop(kind: ProbeKind, p: Probe): void {
    let successes = 0;
    let failures = 0;
    let ready: boolean | undefined;
    const first = this.startedAt + p.initialDelaySeconds * 1000 - Date.now();
    const tick = async (): Promise<void> => {
      const t0 = Date.now();
      const r = await this.host.run(kind, p);
      if (this.stopped) return;
      if (r.ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
        this.host.onProbeFailure(kind, r.message);
      }
      if (kind === 'startupProbe') {
        if (r.ok) return this.afterStartup();
        if (failures >= p.failureThreshold) return this.host.onFailed(kind, r.message);
      } else if (kind === 'livenessProbe') {
        if (failures >= p.failureThreshold) return this.host.onFailed(kind, r.message);
      } else {
        if (successes >= p.successThreshold && ready !== true) this.host.onReady((ready = true));
        if (failures >= p.failureThreshold && ready !== false) this.host.onReady((ready = false));
      }
      this.later(p.periodSeconds * 1000 - (Date.now() - t0), () => void tick());
    };
    this.later(first, () => void tick());
  }
}
