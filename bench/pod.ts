/**
 * Pod-up and teardown latency of examples/pod.yaml through the nspod CLI (with CNI networking),
 * with a per-step breakdown, and — where podman is installed — the same pod through `podman kube
 * play` (its default bridge network) in the same run, with the ratio.
 */
import { spawnSync } from 'node:child_process';
import { RUNS, benchEnv, cli, fmt, podYaml, podmanBusybox, podmanEnv, ratio, run, stat } from './common.js';
import type { Stat } from './common.js';

function benchNspod(): { up: Stat; down: Stat; steps: Record<string, Stat> } {
  const b = benchEnv('pod', 1);
  const up: number[] = [];
  const down: number[] = [];
  const steps: Record<string, number[]> = {};
  try {
    // Warm-up: builds the busybox image, unpacks its layer, detects the runtime.
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
  const n = benchNspod();
  console.log('nspod play (from the command to both containers running):');
  console.log(`  pod up      ${fmt(n.up)}`);
  for (const [k, v] of Object.entries(n.steps)) console.log(`    ${k.padEnd(18)}${fmt(v)}`);
  console.log(`  teardown    ${fmt(n.down)}   (nspod rm -f)`);
  const p = benchPodman();
  if (typeof p === 'string') {
    console.log(`podman: ${p}`);
    return;
  }
  console.log('podman kube play (same pod, same image, its default bridge network):');
  console.log(`  pod up      ${fmt(p.up)}`);
  console.log(`  teardown    ${fmt(p.down)}   (podman pod rm -f -t 0)`);
  console.log('ratio nspod/podman (median):');
  console.log(`  pod up      ${ratio(n.up.median, p.up.median)}   (target <= 0.5)`);
  console.log(`  teardown    ${ratio(n.down.median, p.down.median)}`);
}
