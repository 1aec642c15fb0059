/**
 * The CRI RuntimeService over nspod's Runtime API: a translation layer. Requests are converted
 * into nspod's spec model (spec/cri.ts), handed to the Runtime API, and records and live statuses
 * are converted back (convert.ts). Stop and Remove succeed when the thing is already gone;
 * unknown ids are NOT_FOUND; malformed requests INVALID_ARGUMENT naming the field.
 */
import { promises as fs } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Runtime } from '../pod/index.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import { containerSpecFromCri, podSpecFromCri, rawResourcesFromCri } from '../spec/index.js';
import type { CriContainerConfig, CriLinuxContainerResources, CriPodSandboxConfig } from '../spec/index.js';
import { invalidArgument, isNspodError, failedPrecondition, notFound } from '../errors/index.js';
import { GrpcError, serverStream, unary, unimplemented } from './status.js';
import {
  containerState,
  criContainer,
  criContainerStatus,
  isoToNs,
  matchLabels,
  nowNs,
  podSandbox,
  sandboxState,
} from './convert.js';
import type { EventHub } from './events.js';
import type { StreamingServer } from './streaming/types.js';
import { networkCondition, podIps } from './network.js';
import type { RuntimeCondition } from './network.js';
import { containerStats, podSandboxStats } from './stats.js';

export const CRI_API_VERSION = 'v1';

export interface RuntimeServiceDeps {
  rt: Runtime;
  version: string;
  streaming: StreamingServer;
  events: EventHub;
  /** where UpdateRuntimeConfig's pod CIDR is kept */
  runtimeConfigFile: string;
}

type Req = Record<string, unknown>;

/** A pod by exact id or unique id prefix (CRI ids, never names). */
export async function findPodById(rt: Runtime, id: string): Promise<PodRecord> {
  if (typeof id !== 'string' || id === '') throw invalidArgument('pod_sandbox_id: required, got an empty value');
  const pods = await rt.podRecords();
  const exact = pods.find((p) => p.id === id);
  if (exact) return exact;
  const pre = pods.filter((p) => p.id.startsWith(id));
  if (pre.length === 1) return pre[0]!;
  throw notFound(`pod sandbox "${id}" not found`);
}

export async function findContainerById(rt: Runtime, id: string): Promise<{ rec: ContainerRecord; pod: PodRecord }> {
  if (typeof id !== 'string' || id === '') throw invalidArgument('container_id: required, got an empty value');
  const all = await rt.containerRecords();
  let rec = all.find((c) => c.id === id);
  if (!rec) {
    const pre = all.filter((c) => c.id.startsWith(id));
    if (pre.length === 1) rec = pre[0];
  }
  if (!rec) throw notFound(`container "${id}" not found`);
  const pod = (await rt.podRecords()).find((p) => p.id === rec.podId);
  if (!pod) throw notFound(`container "${id}" not found (its pod sandbox is gone)`);
  return { rec, pod };
}

/** Runs `fn`, treating NOT_FOUND as done (idempotent Stop/Remove). */
async function ignoreNotFound(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!isNspodError(e, 'NOT_FOUND')) throw e;
  }
}

async function oomKilled(rt: Runtime, rec: ContainerRecord): Promise<boolean> {
  try {
    return ((await rt.cgroups.stats(rec.cgroupPath)).oomKills ?? 0) > 0;
  } catch {
    return false;
  }
}

export async function runtimeCondition(rt: Runtime): Promise<RuntimeCondition> {
  try {
    const info = await rt.runtime();
    return { type: 'RuntimeReady', status: true, reason: '', message: `${info.name} ${info.version}` };
  } catch (e) {
    return {
      type: 'RuntimeReady',
      status: false,
      reason: 'RuntimeNotReady',
      message: e instanceof Error ? e.message : String(e),
    };
  }
}

export function makeRuntimeService(d: RuntimeServiceDeps): grpc.UntypedServiceImplementation {
  const { rt, events, streaming } = d;

  async function containerStatusMsg(rec: ContainerRecord, pod: PodRecord): Promise<Record<string, unknown>> {
    const st = await rt.statusOfContainer(rec, pod);
    // a kill by the cgroup's OOM killer marks the container even when its init survived it
    const oom = st.state === 'exited' ? await oomKilled(rt, rec) : false;
    return criContainerStatus(rec, st, oom);
  }

  async function sandboxStatusMsg(pod: PodRecord): Promise<Record<string, unknown>> {
    const st = await rt.statusOfPod(pod);
    const ips = sandboxState(pod, st) === 'SANDBOX_READY' ? await podIps(rt.ctx.host, pod) : [];
    const mode = (m: string): string => (m === 'node' ? 'NODE' : m === 'container' ? 'CONTAINER' : 'POD');
    const base = podSandbox(pod, st);
    return {
      ...base,
      network: { ip: ips[0] ?? '', additional_ips: ips.slice(1).map((ip) => ({ ip })) },
      linux: {
        namespaces: {
          options: {
            network: mode(pod.spec.namespaces.network),
            pid: mode(pod.spec.namespaces.pid),
            ipc: mode(pod.spec.namespaces.ipc),
            target_id: '',
            userns_options: null,
          },
        },
      },
    };
  }

  async function listSandboxes(filter: Req | null | undefined): Promise<Array<Record<string, unknown>>> {
    const f = (filter ?? {}) as {
      id?: string;
      state?: { state: string } | null;
      label_selector?: Record<string, string>;
    };
    const out: Array<Record<string, unknown>> = [];
    for (const pod of await rt.podRecords()) {
      if (f.id && !pod.id.startsWith(f.id)) continue;
      if (!matchLabels(pod.spec.labels, f.label_selector)) continue;
      const st = await rt.statusOfPod(pod);
      if (f.state && sandboxState(pod, st) !== f.state.state) continue;
      out.push(podSandbox(pod, st));
    }
    return out;
  }

  async function listContainers(filter: Req | null | undefined): Promise<Array<Record<string, unknown>>> {
    const f = (filter ?? {}) as {
      id?: string;
      state?: { state: string } | null;
      pod_sandbox_id?: string;
      label_selector?: Record<string, string>;
    };
    const pods = new Map((await rt.podRecords()).map((p) => [p.id, p]));
    const out: Array<Record<string, unknown>> = [];
    for (const rec of await rt.containerRecords()) {
      const pod = pods.get(rec.podId);
      if (!pod) continue;
      if (f.id && !rec.id.startsWith(f.id)) continue;
      if (f.pod_sandbox_id && !rec.podId.startsWith(f.pod_sandbox_id)) continue;
      if (!matchLabels(rec.spec.labels, f.label_selector)) continue;
      const st = await rt.statusOfContainer(rec, pod);
      if (f.state && containerState(st) !== f.state.state) continue;
      out.push(criContainer(rec, st));
    }
    return out;
  }

  async function listContainerStats(filter: Req | null | undefined): Promise<Array<Record<string, unknown>>> {
    const f = (filter ?? {}) as { id?: string; pod_sandbox_id?: string; label_selector?: Record<string, string> };
    const pods = new Map((await rt.podRecords()).map((p) => [p.id, p]));
    const out: Array<Record<string, unknown>> = [];
    for (const rec of await rt.containerRecords()) {
      const pod = pods.get(rec.podId);
      if (!pod) continue;
      if (f.id && !rec.id.startsWith(f.id)) continue;
      if (f.pod_sandbox_id && !rec.podId.startsWith(f.pod_sandbox_id)) continue;
      if (!matchLabels(rec.spec.labels, f.label_selector)) continue;
      const st = await rt.statusOfContainer(rec, pod);
      if (st.state !== 'running') continue;
      out.push(await containerStats(rt, rec));
    }
    return out;
  }

  async function listPodStats(filter: Req | null | undefined): Promise<Array<Record<string, unknown>>> {
    const f = (filter ?? {}) as { id?: string; label_selector?: Record<string, string> };
    const out: Array<Record<string, unknown>> = [];
    for (const pod of await rt.podRecords()) {
      if (f.id && !pod.id.startsWith(f.id)) continue;
      if (!matchLabels(pod.spec.labels, f.label_selector)) continue;
      const st = await rt.statusOfPod(pod);
      if (sandboxState(pod, st) !== 'SANDBOX_READY') continue;
      out.push(await podSandboxStats(rt, pod));
    }
    return out;
  }

  return {
    Version: unary('Version', async () => ({
      version: '0.1.0',
      runtime_name: 'nspod',
      runtime_version: d.version,
      runtime_api_version: CRI_API_VERSION,
    })),

    Status: unary('Status', async (req: { verbose?: boolean }) => {
      const conditions = [await runtimeCondition(rt), await networkCondition(rt)];
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.config = JSON.stringify({
          root: rt.config.root,
          runRoot: rt.config.runRoot,
          cgroupParent: rt.config.cgroupParent,
          cgroups: `v${rt.cgroupLayout.version}${rt.cgroupLayout.hybrid ? ' (hybrid)' : ''}`,
          streaming: streaming.baseUrl,
        });
      }
      return {
        status: { conditions },
        info,
        runtime_handlers: [{ name: '', features: { recursive_read_only_mounts: false, user_namespaces: false } }],
        features: { supplemental_groups_policy: false, user_namespaces_host_network: false },
      };
    }),

    RunPodSandbox: unary('RunPodSandbox', async (req: { config?: CriPodSandboxConfig; runtime_handler?: string }) => {
      const handler = req.runtime_handler ?? '';
      if (handler !== '') {
        const rtName = (await rt.runtime()).name;
        if (handler !== rtName)
          throw invalidArgument(`runtime_handler: unknown handler "${handler}" (nspod has "" and "${rtName}")`);
      }
      const spec = podSpecFromCri(req.config);
      if (handler !== '') spec.runtimeHandler = handler;
      const st = await rt.createPodSandbox(spec);
      return { pod_sandbox_id: st.id };
    }),

    StopPodSandbox: unary('StopPodSandbox', async (req: { pod_sandbox_id: string }) => {
      await ignoreNotFound(async () => {
        const pod = await findPodById(rt, req.pod_sandbox_id);
        const before = await rt.statusOfPod(pod);
        await rt.stopPod(pod.id, { timeoutSeconds: 0 });
        for (const c of before.containers)
          if (c.state === 'running') events.publish(c.id, pod.id, 'CONTAINER_STOPPED_EVENT');
      });
      return {};
    }),

    RemovePodSandbox: unary('RemovePodSandbox', async (req: { pod_sandbox_id: string }) => {
      await ignoreNotFound(async () => {
        const pod = await findPodById(rt, req.pod_sandbox_id);
        const recs = await rt.containerRecords(pod.id);
        await rt.removePod(pod.id, { force: true });
        for (const c of recs) events.publish(c.id, pod.id, 'CONTAINER_DELETED_EVENT');
      });
      return {};
    }),

    PodSandboxStatus: unary('PodSandboxStatus', async (req: { pod_sandbox_id: string; verbose?: boolean }) => {
      const pod = await findPodById(rt, req.pod_sandbox_id);
      const status = await sandboxStatusMsg(pod);
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.info = JSON.stringify({
          pid: pod.sandbox.pid ?? 0,
          name: pod.name,
          namespaces: pod.sandbox.namespaces,
          cgroupPath: pod.sandbox.podCgroupPath,
          logDirectory: pod.spec.logDirectory ?? '',
          containers: pod.containerIds,
        });
      }
      return { status, info, containers_statuses: [], timestamp: nowNs() };
    }),

    ListPodSandbox: unary('ListPodSandbox', async (req: { filter?: Req | null }) => ({
      items: await listSandboxes(req.filter),
    })),

    StreamPodSandboxes: serverStream('StreamPodSandboxes', async function* (req: { filter?: Req | null }) {
      yield { pod_sandboxes: await listSandboxes(req.filter) };
    }),

    CreateContainer: unary(
      'CreateContainer',
      async (req: {
        pod_sandbox_id: string;
        config?: CriContainerConfig;
        sandbox_config?: CriPodSandboxConfig | null;
      }) => {
        const pod = await findPodById(rt, req.pod_sandbox_id);
        const spec = containerSpecFromCri(req.config, pod.spec);
        const sandboxPrivileged = req.sandbox_config?.linux?.security_context?.privileged;
        if (spec.securityContext.privileged && req.sandbox_config && sandboxPrivileged === false) {
          throw invalidArgument(
            'config.linux.security_context.privileged: the sandbox was not created privileged, so its containers cannot be',
          );
        }
        const res = spec.extras?.resources;
        if (res?.unified && rt.cgroupLayout.version === 1) delete res.unified;
        const warnings: string[] = [];
        const st = await rt.createContainer(pod.id, spec, { onWarning: (w) => warnings.push(w) });
        for (const w of warnings) process.stderr.write(`nspod cri: ${w}\n`);
        events.publish(st.id, pod.id, 'CONTAINER_CREATED_EVENT');
        return { container_id: st.id };
      },
    ),

    StartContainer: unary('StartContainer', async (req: { container_id: string }) => {
      const { rec, pod } = await findContainerById(rt, req.container_id);
      await rt.startContainer(rec.id);
      events.publish(rec.id, pod.id, 'CONTAINER_STARTED_EVENT');
      return {};
    }),

    StopContainer: unary('StopContainer', async (req: { container_id: string; timeout?: string | number }) => {
      const timeout = Number(req.timeout ?? 0);
      if (!Number.isFinite(timeout) || timeout < 0)
        throw invalidArgument(`timeout: expected seconds >= 0, got ${timeout}`);
      await ignoreNotFound(async () => {
        const { rec, pod } = await findContainerById(rt, req.container_id);
        const before = await rt.statusOfContainer(rec, pod);
        await rt.stopContainer(rec.id, { timeoutSeconds: timeout });
        if (before.state === 'running') events.publish(rec.id, pod.id, 'CONTAINER_STOPPED_EVENT');
      });
      return {};
    }),

    RemoveContainer: unary('RemoveContainer', async (req: { container_id: string }) => {
      await ignoreNotFound(async () => {
        const { rec, pod } = await findContainerById(rt, req.container_id);
        await rt.removeContainer(rec.id, { force: true });
        events.publish(rec.id, pod.id, 'CONTAINER_DELETED_EVENT');
      });
      return {};
    }),

    ListContainers: unary('ListContainers', async (req: { filter?: Req | null }) => ({
      containers: await listContainers(req.filter),
    })),

    StreamContainers: serverStream('StreamContainers', async function* (req: { filter?: Req | null }) {
      yield { containers: await listContainers(req.filter) };
    }),

    ContainerStatus: unary('ContainerStatus', async (req: { container_id: string; verbose?: boolean }) => {
      const { rec, pod } = await findContainerById(rt, req.container_id);
      const status = await containerStatusMsg(rec, pod);
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.info = JSON.stringify({
          pid: rec.pid ?? 0,
          sandboxID: pod.id,
          name: rec.name,
          bundle: rec.bundle,
          cgroupPath: rec.cgroupPath,
          image: rec.image,
        });
      }
      return { status, info };
    }),

    UpdateContainerResources: unary(
      'UpdateContainerResources',
      async (req: { container_id: string; linux?: CriLinuxContainerResources | null }) => {
        const { rec } = await findContainerById(rt, req.container_id);
        if (!req.linux) throw invalidArgument('linux: required (nspod runs Linux containers only)');
        const { resources } = rawResourcesFromCri(req.linux);
        if (resources.unified && rt.cgroupLayout.version === 1) delete resources.unified;
        await rt.updateContainerResources(rec.id, resources);
        return {};
      },
    ),

    ReopenContainerLog: unary('ReopenContainerLog', async (req: { container_id: string }) => {
      const { rec, pod } = await findContainerById(rt, req.container_id);
      const st = await rt.statusOfContainer(rec, pod);
      if (st.state !== 'running') throw failedPrecondition(`container "${rec.name}" is not running (${st.state})`);
      await reopenLog(rec);
      return {};
    }),

    ExecSync: unary('ExecSync', async (req: { container_id: string; cmd?: string[]; timeout?: string | number }) => {
      const { rec } = await findContainerById(rt, req.container_id);
      const timeout = Number(req.timeout ?? 0);
      if (!Number.isFinite(timeout) || timeout < 0)
        throw invalidArgument(`timeout: expected seconds >= 0, got ${timeout}`);
      const r = await rt.execSync(rec.id, { args: req.cmd ?? [], timeoutMs: timeout * 1000 });
      if (r.timedOut) {
        throw new GrpcError(
          grpc.status.DEADLINE_EXCEEDED,
          `command ${JSON.stringify(req.cmd)} in container "${rec.name}" timed out after ${timeout}s and was killed`,
        );
      }
      return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
    }),

    Exec: unary(
      'Exec',
      async (req: {
        container_id: string;
        cmd?: string[];
        tty?: boolean;
        stdin?: boolean;
        stdout?: boolean;
        stderr?: boolean;
      }) => {
        const { rec, pod } = await findContainerById(rt, req.container_id);
        const cmd = req.cmd ?? [];
        if (cmd.length === 0) throw invalidArgument('cmd: a command is required');
        checkStreams(req);
        const st = await rt.statusOfContainer(rec, pod);
        if (st.state !== 'running') throw failedPrecondition(`container "${rec.name}" is not running (${st.state})`);
        const url = streaming.urlFor({
          kind: 'exec',
          containerId: rec.id,
          cmd,
          tty: req.tty ?? false,
          stdin: req.stdin ?? false,
          stdout: req.stdout ?? false,
          stderr: req.stderr ?? false,
        });
        return { url };
      },
    ),

    Attach: unary(
      'Attach',
      async (req: { container_id: string; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }) => {
        const { rec, pod } = await findContainerById(rt, req.container_id);
        checkStreams(req);
        const st = await rt.statusOfContainer(rec, pod);
        if (st.state !== 'running') throw failedPrecondition(`container "${rec.name}" is not running (${st.state})`);
        const url = streaming.urlFor({
          kind: 'attach',
          containerId: rec.id,
          tty: req.tty ?? false,
          stdin: req.stdin ?? false,
          stdout: req.stdout ?? false,
          stderr: req.stderr ?? false,
        });
        return { url };
      },
    ),

    PortForward: unary('PortForward', async (req: { pod_sandbox_id: string; port?: number[] }) => {
      const pod = await findPodById(rt, req.pod_sandbox_id);
      for (const p of req.port ?? []) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalidArgument(`port: ${p} is not in 1..65535`);
      }
      const st = await rt.statusOfPod(pod);
      if (sandboxState(pod, st) !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox "${pod.name}" is not ready`);
      return { url: streaming.urlFor({ kind: 'portforward', podId: pod.id, ports: req.port ?? [] }) };
    }),

    ContainerStats: unary('ContainerStats', async (req: { container_id: string }) => {
      const { rec } = await findContainerById(rt, req.container_id);
      return { stats: await containerStats(rt, rec) };
    }),

    ListContainerStats: unary('ListContainerStats', async (req: { filter?: Req | null }) => ({
      stats: await listContainerStats(req.filter),
    })),

    StreamContainerStats: serverStream('StreamContainerStats', async function* (req: { filter?: Req | null }) {
      yield { container_stats: await listContainerStats(req.filter) };
    }),

    PodSandboxStats: unary('PodSandboxStats', async (req: { pod_sandbox_id: string }) => {
      const pod = await findPodById(rt, req.pod_sandbox_id);
      return { stats: await podSandboxStats(rt, pod) };
    }),

    ListPodSandboxStats: unary('ListPodSandboxStats', async (req: { filter?: Req | null }) => ({
      stats: await listPodStats(req.filter),
    })),

    StreamPodSandboxStats: serverStream('StreamPodSandboxStats', async function* (req: { filter?: Req | null }) {
      yield { pod_sandbox_stats: await listPodStats(req.filter) };
    }),

    UpdateRuntimeConfig: unary(
      'UpdateRuntimeConfig',
      async (req: { runtime_config?: { network_config?: { pod_cidr?: string } | null } | null }) => {
        const cidr = req.runtime_config?.network_config?.pod_cidr ?? '';
        if (cidr !== '' && !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(cidr))
          throw invalidArgument(`runtime_config.network_config.pod_cidr: "${cidr}" is not a CIDR`);
        if (cidr !== '') {
          await fs.writeFile(
            d.runtimeConfigFile,
            JSON.stringify({ podCidr: cidr, updatedAt: isoToNs(new Date().toISOString()) }) + '\n',
          );
        }
        return {};
      },
    ),

    RuntimeConfig: unary('RuntimeConfig', async () => ({ linux: { cgroup_driver: 'CGROUPFS' } })),

    GetContainerEvents: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const pods = new Map<string, PodRecord>();
      const unsubscribe = events.subscribe((e) => {
        void (async () => {
          const pod = pods.get(e.podId) ?? (await rt.podRecords()).find((p) => p.id === e.podId);
          if (pod) pods.set(pod.id, pod);
          let statuses: Array<Record<string, unknown>> = [];
          let sandbox: Record<string, unknown> | null = null;
          if (pod && e.type !== 'CONTAINER_DELETED_EVENT') {
            try {
              const { rec } = await findContainerById(rt, e.containerId);
              statuses = [await containerStatusMsg(rec, pod)];
              sandbox = await sandboxStatusMsg(pod);
            } catch {}
          }
          if (!call.cancelled) {
            call.write({
              container_id: e.containerId,
              container_event_type: e.type,
              created_at: e.at,
              pod_sandbox_status: sandbox,
              containers_statuses: statuses,
            });
          }
        })();
      });
      call.on('cancelled', unsubscribe);
      call.on('close', unsubscribe);
      call.on('error', unsubscribe);
    },

    CheckpointContainer: unary('CheckpointContainer', async () => unimplemented('CheckpointContainer')),
    ListMetricDescriptors: unary('ListMetricDescriptors', async () => unimplemented('ListMetricDescriptors')),
    ListPodSandboxMetrics: unary('ListPodSandboxMetrics', async () => unimplemented('ListPodSandboxMetrics')),
    UpdatePodSandboxResources: unary('UpdatePodSandboxResources', async () =>
      unimplemented('UpdatePodSandboxResources'),
    ),
  };
}

function checkStreams(req: { tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }): void {
  if (!req.stdin && !req.stdout && !req.stderr)
    throw invalidArgument('stdin, stdout, stderr: one of them must be true');
  if (req.tty && req.stderr) throw invalidArgument('stderr: must be false when tty is true (output is one stream)');
}

/** Asks conmon to reopen the container's log file (its control FIFO `<bundle>/ctl`, message type 2). */
export async function reopenLog(rec: ContainerRecord): Promise<void> {
  const ctl = `${rec.bundle}/ctl`;
  let fh;
  try {
    fh = await fs.open(ctl, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw failedPrecondition(`cannot reach the monitor of container "${rec.name}" (${ctl}): ${(e as Error).message}`);
  }
  try {
    await fh.write('2 0 0\n');
  } finally {
    await fh.close();
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (
      await fs.stat(rec.logPath).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw failedPrecondition(`container "${rec.name}": its log ${rec.logPath} was not reopened`);
}
