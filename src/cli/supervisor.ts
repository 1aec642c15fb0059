/**
 * Supervisor commands: serve (the daemon), events, describe; and the supervised part of play
 * (start the daemon when none runs, mark the pod, run init containers in order).
 */
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import type { Host } from '../host/index.js';
import type { Spawner } from '../host/spawner.js';
import { runHandler, stopContainer } from '../pod/index.js';
import type { PodSpec } from '../spec/types.js';
import type { PodRecord } from '../state/index.js';
import type { Probe } from '../spec/probe-types.js';
import { failedPrecondition, invalidArgument, isNspodError } from '../errors/index.js';
import { openEventLog } from '../events/index.js';
import type { PodEvent } from '../events/index.js';
import { PodWorker, backoffConfig, markSupervised, newSupPodFor, podView, runSupervisor } from '../supervisor/index.js';
import type { ContainerView, PodView } from '../supervisor/index.js';
import type { ControlOptions } from '../supervisor/daemon.js';
import { relevantEnv } from '../supervisor/control.js';
import { age, parseFormat, render, shortId, table } from './format.js';

type Open = (o?: { host?: Host }) => Promise<Runtime>;

/**
 * Something else that runs inside `nspod serve` next to the supervisor (the CRI server adds
 * itself here): started with the runtime, stopped when the signal aborts.
 */
export type ServeExtension = (o: {
  rt: Runtime;
  signal: AbortSignal;
  options: Record<string, unknown>;
}) => Promise<void>;
export const serveExtensions: ServeExtension[] = [];

/** The `nspod serve` daemon: the supervisor plus every registered extension, until SIGTERM/SIGINT. */
export async function runServe(rt: Runtime, options: Record<string, unknown> = {}): Promise<void> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  // A daemon logs what it did not expect and keeps watching the pods.
  process.on('uncaughtException', (e) =>
    process.stderr.write(`${new Date().toISOString()} uncaught: ${e.stack ?? String(e)}\n`),
  );
  process.on('unhandledRejection', (e) =>
    process.stderr.write(`${new Date().toISOString()} unhandled: ${String(e)}\n`),
  );
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const control = await playControl(rt);
    // One part failing (a CRI socket or streaming address it cannot bind, a supervisor already
    // running) stops the others: no half daemon left running without its signal handlers.
    let failed: { error: unknown } | undefined;
    const part = async (run: () => Promise<void>): Promise<void> => {
      try {
        await run();
      } catch (e) {
        failed ??= { error: e };
        ac.abort();
      }
    };
    await Promise.all([
      part(() => runSupervisor({ rt, signal: ac.signal, control })),
      ...serveExtensions.map((x) => part(() => x({ rt, signal: ac.signal, options }))),
    ]);
    if (failed) throw failed.error;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/**
 * A long-lived nspod process starts its commands through a spawner helper (src/host/spawner.ts),
 * unless NSPOD_SPAWNER=0.
 */
export async function daemonSpawner(): Promise<Spawner | undefined> {
  if (process.env.NSPOD_SPAWNER === '0') return undefined;
  const { startSpawner } = await import('../host/spawner.js');
  return startSpawner({ log: (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`) });
}

/** The daemon's side of `nspod play` handing its work over (src/supervisor/control.ts). */
async function playControl(rt: Runtime): Promise<ControlOptions> {
  const { playText } = await import('./play.js'); // play.js imports this module
  const { cliIdentity } = await import('./play-command.js');
  await import('../spec/kube.js'); // the YAML parser, loaded before the first play needs it
  return {
    mine: { identity: cliIdentity(), env: relevantEnv(), config: rt.config },
    play: (req, io) => playText(rt, req, io),
  };
}

export { wantSupervisor, startSupervisorIfNeeded } from './play-command.js';

/**
 * Plays a pod that has init containers: the sandbox first, then (supervised) the daemon runs the
 * init containers, sidecars and apps; unsupervised, they run here in order and the command
 * returns once the app containers are started (a failing init container is an error).
 */
export async function playWithInit(
  rt: Runtime,
  spec: PodSpec,
  o: { replace: boolean; supervise: boolean },
): Promise<PodView> {
  // Images first (pulled per imagePullPolicy): a missing one fails the pod before anything is made.
  const all = [...(spec.initContainers ?? []).map((c, i) => ({ c, f: `spec.initContainers[${i}]` }))];
  all.push(...spec.containers.map((c, i) => ({ c, f: `spec.containers[${i}]` })));
  for (const { c, f } of all) await rt.ensureImage(c.image, `${f}.image`, c.imagePullPolicy);
  if (o.replace) {
    await rt.removePod(spec.name, { force: true, namespace: spec.namespace }).catch((e: unknown) => {
      if (!isNspodError(e, 'NOT_FOUND')) throw e;
    });
  }
  const status = await rt.createPodSandbox(spec);
  const pod = await rt.podRecord(status.id);
  if (o.supervise) {
    await markSupervised(pod);
    return podView(await rt.podStatus(pod.id), pod);
  }
  const events = openEventLog(rt.config.root);
  const sup = newSupPodFor(pod);
  const worker = new PodWorker(
    { rt, events, backoff: backoffConfig(), log: () => undefined, persist: false },
    pod,
    sup,
  );
  try {
    for (;;) {
      await worker.reconcile();
      for (const c of spec.initContainers ?? []) {
        const t = sup.containers[c.name]?.terminated;
        if (c.restartPolicy !== 'Always' && t && t.exitCode !== 0) {
          throw failedPrecondition(
            `init container "${c.name}" of pod "${spec.name}" exited with code ${t.exitCode} (the pod is kept for its logs: nspod logs ${spec.name} -c ${c.name}; run it supervised to retry)`,
          );
        }
      }
      const recs = await rt.ctx.state.containers(pod.id);
      if (sup.initDone && spec.containers.every((c) => recs.some((r) => r.name === c.name && r.startedAt))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    worker.stop();
  }
  return podView(await rt.podStatus(pod.id), pod);
}

/**
 * Runs the postStart hooks of a pod's containers just started by play (the daemon runs them for
 * containers it starts itself). A failing hook kills its container, as kubelet does.
 */
export async function runPostStartHooks(
  rt: Runtime,
  pod: PodRecord,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<void> {
  const events = openEventLog(rt.config.root);
  await Promise.all(
    (await rt.ctx.state.containers(pod.id)).map(async (rec) => {
      const hook = rec.spec.lifecycle?.postStart;
      if (!hook) return;
      const r = await runHandler(
        rt.ctx,
        { pod, rec },
        hook,
        Math.max(pod.spec.terminationGracePeriodSeconds, 30) * 1000,
      );
      if (r.ok) return;
      await events.emit({
        type: 'Warning',
        reason: 'FailedPostStartHook',
        pod,
        container: rec.name,
        message: r.message,
      });
      warn(`warning: container "${rec.name}": postStart hook failed, killed: ${r.message}`);
      await stopContainer(rt.ctx, rec, pod.spec.terminationGracePeriodSeconds * 1000);
    }),
  );
}

function probeText(p: Probe): string {
  const h = p.handler;
  const what =
    h.kind === 'exec'
      ? `exec [${h.command.join(' ')}]`
      : h.kind === 'httpGet'
        ? `http-get ${h.scheme.toLowerCase()}://${h.host ?? ''}:${h.port}${h.path}`
        : h.kind === 'tcpSocket'
          ? `tcp-socket ${h.host ?? ''}:${h.port}`
          : `grpc <pod>:${h.port} ${h.service ?? ''}`.trim();
  return `${what} delay=${p.initialDelaySeconds}s timeout=${p.timeoutSeconds}s period=${p.periodSeconds}s #success=${p.successThreshold} #failure=${p.failureThreshold}`;
}

function containerLines(c: ContainerView): string[] {
  const out = [`  ${c.name}:`];
  if (c.id) out.push(`    Container ID:  ${c.id}`);
  out.push(`    Image:         ${c.image}`);
  if (c.role !== 'app')
    out.push(`    Role:          ${c.role === 'sidecar' ? 'sidecar (restartPolicy: Always)' : 'init'}`);
  const state = c.state[0]!.toUpperCase() + c.state.slice(1);
  out.push(`    State:         ${state}`);
  if (c.reason) out.push(`      Reason:      ${c.reason}`);
  if (c.exitCode !== undefined) out.push(`      Exit Code:   ${c.exitCode}`);
  if (c.startedAt) out.push(`      Started:     ${c.startedAt}`);
  if (c.finishedAt) out.push(`      Finished:    ${c.finishedAt}`);
  if (c.lastState) {
    out.push(`    Last State:    Terminated`);
    out.push(`      Reason:      ${c.lastState.reason}`);
    out.push(`      Exit Code:   ${c.lastState.exitCode}`);
    if (c.lastState.startedAt) out.push(`      Started:     ${c.lastState.startedAt}`);
    out.push(`      Finished:    ${c.lastState.finishedAt}`);
  }
  out.push(`    Ready:         ${c.ready ? 'True' : 'False'}`);
  out.push(`    Restart Count: ${c.restartCount}`);
  if (c.spec.livenessProbe) out.push(`    Liveness:      ${probeText(c.spec.livenessProbe)}`);
  if (c.spec.readinessProbe) out.push(`    Readiness:     ${probeText(c.spec.readinessProbe)}`);
  if (c.spec.startupProbe) out.push(`    Startup:       ${probeText(c.spec.startupProbe)}`);
  return out;
}

export function renderDescribe(v: PodView, events: PodEvent[]): string {
  const out = [
    `Name:         ${v.name}`,
    `Namespace:    ${v.namespace}`,
    `ID:           ${v.id}`,
    `Start Time:   ${v.createdAt}`,
    `Status:       ${v.status}`,
    `Phase:        ${v.phase}`,
    `Supervised:   ${v.supervised ? 'yes' : 'no'}`,
  ];
  const inits = v.containers.filter((c) => c.role !== 'app');
  if (inits.length) out.push('Init Containers:', ...inits.flatMap(containerLines));
  out.push('Containers:', ...v.containers.filter((c) => c.role === 'app').flatMap(containerLines));
  out.push('Conditions:', '  Type              Status');
  for (const c of v.conditions) out.push(`  ${c.type.padEnd(16)}  ${c.status}`);
  out.push('Events:');
  if (events.length === 0) out.push('  <none>');
  else {
    const t = table(
      ['Type', 'Reason', 'Age', 'From', 'Message'],
      events.map((e) => [e.type, e.reason, age(e.time), e.container ? `container/${e.container}` : 'pod', e.message]),
    );
    out.push(...t.split('\n').map((l) => `  ${l}`));
  }
  return out.join('\n');
}

function eventRow(e: PodEvent): string[] {
  return [e.time, e.type, e.reason, e.object, e.message];
}

export function registerSupervisorCommands(program: Command, open: Open): void {
  program
    .command('serve')
    .description(
      'run the nspod daemon in the foreground: the supervisor (restarts, probes, init containers, events) and the CRI v1 server',
    )
    .option('--no-cri', 'do not serve CRI (supervisor only)')
    .option('--socket <path>', 'CRI unix socket (default <run-root>/nspod.sock, i.e. /run/nspod/nspod.sock)')
    .option('--stream-addr <host:port>', 'CRI streaming server for exec/attach/port-forward (default 127.0.0.1:0)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ nspod serve\n  $ nspod serve --no-cri\n  $ NSPOD_BACKOFF_BASE_MS=1000 nspod serve\n',
    )
    .action(async (o: { cri: boolean; socket?: string; streamAddr?: string }) => {
      const spawner = await daemonSpawner();
      try {
        await runServe(await open(spawner ? { host: spawner } : {}), o);
      } finally {
        spawner?.close();
      }
    });

  program
    .command('describe')
    .argument('<kind>', 'pod')
    .argument('<name>', 'pod name or id')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .description("show a pod's conditions, each container's state, last state and restarts, and recent events")
    .addHelpText('after', '\nExamples:\n  $ nspod describe pod foo\n  $ nspod describe pod foo -o json\n')
    .action(async (kind: string, name: string, o: { output: string }) => {
      const fmt = parseFormat(o.output);
      if (kind !== 'pod' && kind !== 'pods') throw invalidArgument(`describe: kind must be "pod", got "${kind}"`);
      const rt = await open();
      const pod = await rt.podRecord(name);
      const view = await podView(await rt.podStatus(pod.id), pod);
      const events = (await openEventLog(rt.config.root).list({ podId: pod.id })).slice(-30);
      if (fmt !== 'table') return console.log(render(fmt, { ...view, events }));
      console.log(renderDescribe(view, events));
    });

  program
    .command('events')
    .option('-f, --follow', 'keep printing new events (until interrupted)')
    .option('--pod <name>', 'only the events of this pod')
    .option('-o, --output <format>', 'table, json or yaml (json/yaml: one object per line with --follow)', 'table')
    .description('print what happened to pods: created, started, killed, probe failures, OOM, back-off')
    .addHelpText('after', '\nExamples:\n  $ nspod events\n  $ nspod events -f --pod foo\n')
    .action(async (o: { follow?: boolean; pod?: string; output: string }) => {
      const fmt = parseFormat(o.output);
      const rt = await open();
      const log = openEventLog(rt.config.root);
      const podId = o.pod ? (await rt.podRecord(o.pod)).id : undefined;
      const offset = await log.size();
      const list = (await log.list(podId ? { podId } : {})).filter((e) => e.time);
      const head = ['TIME', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'];
      if (fmt !== 'table' && !o.follow) return console.log(render(fmt, list));
      if (fmt === 'table') console.log(table(head, list.map(eventRow)));
      else for (const e of list) console.log(JSON.stringify(e));
      if (!o.follow) return;
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      await log.follow({
        fromOffset: offset,
        signal: ac.signal,
        onEvent: (e) => {
          if (podId && e.podId !== podId) return;
          console.log(fmt === 'table' ? eventRow(e).join('   ') : JSON.stringify(e));
        },
      });
    });
}

/** kubectl-style rows for `nspod pods`. */
export async function podRows(rt: Runtime): Promise<Array<PodView & { state: string; ip: string }>> {
  const out = [];
  for (const s of await rt.listPods()) {
    const rec = await rt.ctx.state.pod(s.id);
    const ip = s.ip ?? (s.network === undefined && s.state === 'Running' ? 'host' : '-');
    if (rec) out.push({ ...(await podView(s, rec)), state: s.state, ip });
  }
  return out;
}

export const podTable = (rows: Array<PodView & { ip: string }>): string =>
  table(
    ['NAME', 'NAMESPACE', 'READY', 'STATUS', 'RESTARTS', 'IP', 'AGE', 'ID'],
    rows.map((v) => [v.name, v.namespace, v.ready, v.status, v.restarts, v.ip, age(v.createdAt), shortId(v.id)]),
  );
