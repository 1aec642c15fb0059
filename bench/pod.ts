/**
 * Pod-up and teardown latency of examples/pod.yaml through the nspod CLI (with CNI networking),
 * with a per-step breakdown, and — where podman is installed — the same pod through `podman kube
 * play` (its default bridge network) in the same run, with the ratio.
 */
import { spawnSync } from 'node:child_process';
import { RUNS, benchEnv, cli, fmt, podYaml, podmanBusybox, podmanEnv, ratio, run, stat } from './common.js';
import type { Stat } from './common.js';

/**
 * `supervised`: as users run it by default, with the daemon running (the first play starts it),
 * so play hands its work to the daemon; else NSPOD_SUPERVISE=0: play works in its own process.
 */
function benchNspod(supervised: boolean): { up: Stat; down: Stat; steps: Record<string, Stat> } {
  const b = benchEnv(supervised ? 'pod-sup' : 'pod', 1, { NSPOD_SUPERVISE: supervised ? '1' : '0' });
  const up: number[] = [];
  const down: number[] = [];
  const steps: Record<string, number[]> = {};
  try {
    // Warm-up: builds the busybox image, unpacks its layer, detects the runtime (starts the daemon).
    run('node', [cli, 'play', podYaml], b.env);
    run('node', [cli, 'rm', '-f', 'foo'], b.env);
    for (let i = 0; i < RUNS; i++) {
      const r = run('node', [cli, 'play', '--timings', podYaml], b.env);
      up.push(r.ms);
      for (const line of r.stderr.split('\n')) {
        const m = /^timing (\S+) ([\d.]+)ms$/.exec(line.trim());
        if (m) (steps[m[1]!] ??= []).push(Number(m[2]));
      }
      down.push(run('node', [cli, 'rm', '-f', 'foo'], b.env).ms);
    }
  } finally {
    b.cleanup();
  }
  return {
    up: stat(up),
    down: stat(down),
    steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, stat(v)])),
  };
}

function benchPodman(): { up: Stat; down: Stat } | string {
  const env = podmanEnv();
  if (typeof env === 'string') return env;
  try {
    podmanBusybox(env);
    const up: number[] = [];
    const down: number[] = [];
    const play = ['kube', 'play', podYaml];
    run('podman', play, env);
    run('podman', ['pod', 'rm', '-f', '-t', '0', 'foo'], env);
    for (let i = 0; i < RUNS; i++) {
      up.push(run('podman', play, env).ms);
      down.push(run('podman', ['pod', 'rm', '-f', '-t', '0', 'foo'], env).ms);
    }
    return { up: stat(up), down: stat(down) };
  } catch (e) {
    return `podman failed: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    spawnSync('podman', ['pod', 'rm', '-f', '-t', '0', 'foo'], { env });
    spawnSync('podman', ['rmi', '-f', 'localhost/busybox:latest'], { env });
  }
}

export function podSection(): void {
  console.log(`\n## pod: examples/pod.yaml (two containers, CNI bridge network), ${RUNS} runs`);
  const sup = benchNspod(true);
  const own = benchNspod(false);
  for (const [title, n] of [
    ['nspod play, daemon running (the default: the daemon makes the pod)', sup],
    ['nspod play --no-supervise (no daemon: the command makes the pod itself)', own],
  ] as const) {
    console.log(`${title}, from the command to both containers running:`);
    console.log(`  pod up      ${fmt(n.up)}`);
    const parallel = (k: string): boolean => k === 'pause' || k === 'cni' || k.startsWith('container:');
    for (const [k, v] of Object.entries(n.steps)) if (!parallel(k)) console.log(`    ${k.padEnd(18)}${fmt(v)}`);
    console.log('    in parallel, from the start of the sandbox step:');
    const par = Object.entries(n.steps).filter(([k]) => parallel(k));
    for (const [k, v] of par.sort((a, b) => a[1].median - b[1].median)) console.log(`      ${k.padEnd(16)}${fmt(v)}`);
    console.log(`  teardown    ${fmt(n.down)}   (nspod rm -f)`);
  }
  const floor = nodeFloor();
  console.log(`node -e 0 (the floor of any nspod command here): ${fmt(floor)}`);
  const p = benchPodman();
  if (typeof p === 'string') {
    console.log(`podman: ${p}`);
    return;
  }
  console.log('podman kube play (same pod, same image, its default bridge network):');
  console.log(`  pod up      ${fmt(p.up)}`);
  console.log(`  teardown    ${fmt(p.down)}   (podman pod rm -f -t 0)`);
  console.log('ratio nspod/podman (median):');
  console.log(
    `  pod up      ${ratio(sup.up.median, p.up.median)} with the daemon, ${ratio(own.up.median, p.up.median)} without   (target <= 0.5)`,
  );
  console.log(`  teardown    ${ratio(sup.down.median, p.down.median)}`);
}

/** How long Node itself takes to start and exit here: no nspod command can be faster. */
function nodeFloor(): Stat {
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) xs.push(run('node', ['-e', '0']).ms);
  return stat(xs);
}
