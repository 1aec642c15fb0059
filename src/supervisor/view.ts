/**
 * kubectl's view of a pod, computed from the live runtime status and the supervisor's state:
 * READY (ready app containers and sidecars / all of them), STATUS (the reason kubectl shows:
 * Running, Init:1/2, Init:CrashLoopBackOff, CrashLoopBackOff, Completed, Error, OOMKilled,
 * ContainerCreating, Stopped), RESTARTS, and per container state / last state for describe.
 */
import type { PodStatus } from '../pod/index.js';
import type { PodRecord } from '../state/index.js';
import type { ContainerSpec } from '../spec/types.js';
import { isSidecar, readSupPod } from './state.js';
import type { SupContainer, Terminated } from './state.js';

export interface ContainerView {
  name: string;
  role: 'init' | 'sidecar' | 'app';
  id?: string;
  pid?: number;
  image: string;
  state: 'waiting' | 'running' | 'terminated';
  reason?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  lastState?: Terminated;
  spec: ContainerSpec;
}

export interface PodView {
  name: string;
  namespace: string;
  id: string;
  createdAt: string;
  supervised: boolean;
  phase: string;
  status: string;
  ready: string;
  restarts: number;
  conditions: Array<{ type: string; status: 'True' | 'False' }>;
  containers: ContainerView[];
}

function containerView(
  spec: ContainerSpec,
  role: ContainerView['role'],
  st: PodStatus['containers'][number] | undefined,
  sc: SupContainer | undefined,
  supervised: boolean,
): ContainerView {
  const v: ContainerView = {
    name: spec.name,
    role,
    image: spec.image,
    state: 'waiting',
    ready: false,
    started: false,
    restartCount: sc?.restartCount ?? 0,
    spec,
  };
  if (sc?.lastState) v.lastState = sc.lastState;
  if (st) {
    v.id = st.id;
    if (st.startedAt) v.startedAt = st.startedAt;
  }
  if (!st) {
    v.reason = sc?.waiting ?? (role === 'app' ? 'PodInitializing' : 'Waiting');
    return v;
  }
  if (st.state === 'running') {
    v.state = 'running';
    if (st.pid) v.pid = st.pid;
    v.started = supervised ? (sc?.started ?? false) : true;
    v.ready = supervised ? (sc?.ready ?? false) : true;
    return v;
  }
  if (st.state === 'exited') {
    const t = sc?.terminated;
    if (sc?.waiting === 'CrashLoopBackOff' && !sc.done) {
      v.state = 'waiting';
      v.reason = 'CrashLoopBackOff';
      if (t) v.lastState = t;
      return v;
    }
    v.state = 'terminated';
    v.exitCode = st.exitCode ?? t?.exitCode ?? 0;
    v.reason = t?.reason ?? (v.exitCode === 0 ? 'Completed' : 'Error');
    if (st.finishedAt) v.finishedAt = st.finishedAt;
    return v;
  }
  v.reason = st.state === 'created' ? 'ContainerCreating' : 'Unknown';
  return v;
}

export async function podView(status: PodStatus, pod: PodRecord): Promise<PodView> {
  const sup = await readSupPod(pod);
  const supervised = sup !== undefined;
  const byName = new Map(status.containers.map((c) => [c.name, c]));
  const inits = (pod.spec.initContainers ?? []).map((s) =>
    containerView(s, isSidecar(s) ? 'sidecar' : 'init', byName.get(s.name), sup?.containers[s.name], supervised),
  );
  const apps = pod.spec.containers.map((s) =>
    containerView(s, 'app', byName.get(s.name), sup?.containers[s.name], supervised),
  );
  const containers = [...inits, ...apps];
  const counted = containers.filter((c) => c.role !== 'init');
  const ready = counted.filter((c) => c.ready).length;
  const initDone = sup ? sup.initDone : inits.every((c) => c.role === 'sidecar' || c.exitCode === 0);
  let statusText: string;
  if (pod.stoppedAt) statusText = 'Stopped';
  else if (!initDone) {
    // As kubectl: Init:<done>/<all> counting sidecars once started, or the blocking one's reason.
    const i = inits.findIndex((c) =>
      c.role === 'sidecar' ? !(c.state === 'running' && c.started) : !(c.state === 'terminated' && c.exitCode === 0),
    );
    const c = inits[i];
    if (c && c.state === 'waiting' && c.reason === 'CrashLoopBackOff') statusText = 'Init:CrashLoopBackOff';
    else if (c && c.state === 'terminated' && c.exitCode !== 0) statusText = `Init:${c.reason ?? 'Error'}`;
    else statusText = `Init:${i < 0 ? inits.length : i}/${inits.length}`;
  } else {
    statusText = 'Running';
    const appsDone = apps.every((c) => c.state === 'terminated');
    if (appsDone) {
      statusText = apps.every((c) => c.exitCode === 0)
        ? 'Completed'
        : (apps.find((c) => c.exitCode !== 0)?.reason ?? 'Error');
    } else {
      // As kubectl: the first container (in order) that is not running gives the reason.
      for (const c of [...inits.filter((x) => x.role === 'sidecar'), ...apps].reverse()) {
        if (c.state === 'waiting' && c.reason) statusText = c.reason;
        else if (c.state === 'terminated') statusText = c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error');
      }
      if (statusText === 'Running' && status.state === 'Degraded' && !supervised) statusText = 'Degraded';
    }
  }
  const allReady = counted.length > 0 && ready === counted.length;
  return {
    name: pod.name,
    namespace: pod.namespace,
    id: pod.id,
    createdAt: pod.createdAt,
    supervised,
    phase: sup?.phase ?? status.state,
    status: statusText,
    ready: `${ready}/${counted.length}`,
    restarts: containers.reduce((n, c) => n + c.restartCount, 0),
    conditions: [
      { type: 'Initialized', status: initDone ? 'True' : 'False' },
      { type: 'Ready', status: allReady && !pod.stoppedAt ? 'True' : 'False' },
      { type: 'ContainersReady', status: allReady && !pod.stoppedAt ? 'True' : 'False' },
      { type: 'PodScheduled', status: 'True' },
    ],
    containers,
  };
}
