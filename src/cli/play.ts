/**
 * What `nspod play` does once it has the YAML text: parse it, play each pod (init containers
 * through the supervisor's worker), record the kubelet-style events, run postStart hooks, hand the
 * pod to the supervisor. It runs in the `play` process itself, or in the daemon when the command
 * hands its work over the control socket (src/supervisor/control.ts); either way it only writes
 * through `io`.
 */
import type { Runtime } from '../pod/index.js';
import { markSupervised } from '../supervisor/index.js';
import type { PlayIo, PlayRequest } from '../supervisor/control.js';
import { openEventLog } from '../events/index.js';
import { shortId } from './format.js';
import { playWithInit, runPostStartHooks } from './supervisor.js';

export async function playText(rt: Runtime, req: PlayRequest, io: PlayIo): Promise<void> {
  // Loaded here: the YAML parser is the biggest module nspod has, and only play needs it.
  const { parsePodYaml } = await import('../spec/kube.js');
  const { pods, warnings } = parsePodYaml(req.text, { source: req.source });
  for (const w of warnings) io.err(`warning: ${w}`);
  const events = openEventLog(rt.config.root);
  for (const spec of pods) {
    if (spec.initContainers?.length) {
      const v = await playWithInit(rt, spec, { replace: req.replace, supervise: req.supervise });
      io.out(`pod/${v.name} ${v.status} (id ${shortId(v.id)})`);
      continue;
    }
    const r = await rt.playPod(spec, {
      ...(req.replace ? { replace: true } : {}),
      onWarning: (w) => io.err(`warning: ${w}`),
    });
    const rec = await rt.podRecord(r.pod.id);
    const pod = { id: r.pod.id, name: r.pod.name };
    await events.emitAll(
      r.pod.containers.flatMap((c) => [
        ...(r.pulled.includes(c.name)
          ? [
              { reason: 'Pulling', pod, container: c.name, message: `Pulling image "${c.image}"` },
              { reason: 'Pulled', pod, container: c.name, message: `Successfully pulled image "${c.image}"` },
            ]
          : [
              {
                reason: 'Pulled',
                pod,
                container: c.name,
                message: `Container image "${c.image}" already present on machine`,
              },
            ]),
        { reason: 'Created', pod, container: c.name, message: `Created container ${c.name}` },
        { reason: 'Started', pod, container: c.name, message: `Started container ${c.name}` },
      ]),
    );
    await runPostStartHooks(rt, rec, io.err);
    if (req.supervise) await markSupervised(rec);
    io.out(`pod/${r.pod.name} ${r.pod.state.toLowerCase()} (id ${shortId(r.pod.id)})`);
    for (const c of r.pod.containers) io.out(`  container ${c.name} ${c.state} ${shortId(c.id)}`);
    io.timings(r.timings);
  }
}
