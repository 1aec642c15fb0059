/**
 * Volumes section: pod-up and teardown of examples/volumes.yaml (ConfigMap and Secret documents,
 * emptyDir on disk and in memory, configMap/secret volumes, a subPath, a persistentVolumeClaim,
 * env from all of them) through the nspod CLI, and — where podman is installed — the same file
 * through `podman kube play` in the same run, with the ratio. podman 4.3 panics on `kind:
 * Secret` in kube play, so the comparison runs the file without its Secret on both sides.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUNS, benchEnv, cli, fmt, podmanBusybox, podmanEnv, projectDir, ratio, run, stat } from './common.js';
import type { Stat } from './common.js';

const volumesYaml = path.join(projectDir, 'examples', 'volumes.yaml');

/** The file without its Secret (document, volume, envFrom, mount). */
function withoutSecret(yaml: string): string {
  return yaml
    .split('\n---\n')
    .filter((d) => !/^kind: Secret$/m.test(d))
    .join('\n---\n')
    .replace(/\n {4}- name: secret\n {6}secret:\n(?: {8}.*\n)+/, '\n')
    .replace(/\n {6}envFrom:\n {8}- secretRef: .*\n {10}prefix: DB_/, '')
    .replace(/\n {8}- \{ name: secret, mountPath: .*\}/, '');
}

function benchNspod(file: string, n: number): { up: Stat; down: Stat } {
  const b = benchEnv(`volumes${n}`, n);
  const up: number[] = [];
  const down: number[] = [];
  try {
    run('node', [cli, 'play', file], b.env); // warm-up: image, layer, runtime detection
    run('node', [cli, 'rm', '-f', 'web'], b.env);
    for (let i = 0; i < RUNS; i++) {
      up.push(run('node', [cli, 'play', file], b.env).ms);
      down.push(run('node', [cli, 'rm', '-f', 'web'], b.env).ms);
    }
  } finally {
    b.cleanup();
  }
  return { up: stat(up), down: stat(down) };
}

function benchPodman(file: string): { up: Stat; down: Stat } | string {
  const env = podmanEnv();
  if (typeof env === 'string') return env;
  // Names of its own, so that it meets no other pod, volume or image.
  const name = `vbench${process.pid}`;
  const image = `localhost/${name}:latest`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-volumes-'));
  const yaml = path.join(dir, 'pod.yaml');
  try {
    podmanBusybox(env);
    run('podman', ['tag', 'localhost/busybox:latest', image], env);
    writeFileSync(
      yaml,
      readFileSync(file, 'utf8')
        .replace(/localhost\/busybox:latest/g, image)
        .replace(/\bweb\b/g, name),
    );
    const play = ['kube', 'play', yaml];
    const rm = ['pod', 'rm', '-f', '-t', '0', name];
    const up: number[] = [];
    const down: number[] = [];
    run('podman', play, env);
    run('podman', rm, env);
    for (let i = 0; i < RUNS; i++) {
      up.push(run('podman', play, env).ms);
      down.push(run('podman', rm, env).ms);
    }
    return { up: stat(up), down: stat(down) };
  } catch (e) {
    const msg = (e as Error).message;
    const where = msg.split('\n').find((l) => /\.go:\d+/.test(l) && !l.includes('/runtime/'));
    return `podman failed: ${msg.split('\n')[0]}${where ? ` at ${where.trim()}` : ''}`;
  } finally {
    spawnSync('podman', ['pod', 'rm', '-f', '-t', '0', name], { env });
    spawnSync('podman', ['volume', 'rm', '-f', `${name}-data`, `${name}-config`], { env });
    spawnSync('podman', ['rmi', '-f', image, 'localhost/busybox:latest'], { env });
    rmSync(dir, { recursive: true, force: true });
  }
}

export function volumesSection(): void {
  console.log(`\n## volumes: examples/volumes.yaml, ${RUNS} runs`);
  const full = benchNspod(volumesYaml, 4);
  console.log('nspod play (ConfigMap + Secret documents, 5 volumes, env from them; both containers running):');
  console.log(`  pod up      ${fmt(full.up)}`);
  console.log(`  teardown    ${fmt(full.down)}   (nspod rm -f; the named volume stays)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-volumes-'));
  try {
    const lite = path.join(dir, 'volumes-without-secret.yaml');
    writeFileSync(lite, withoutSecret(readFileSync(volumesYaml, 'utf8')));
    const n = benchNspod(lite, 5);
    console.log('the same without the Secret (what podman 4.3 plays): ConfigMap document, 4 volumes');
    console.log(`  nspod pod up      ${fmt(n.up)}`);
    console.log(`  nspod teardown    ${fmt(n.down)}`);
    const p = benchPodman(lite);
    if (typeof p === 'string') {
      console.log(`podman: ${p}`);
      return;
    }
    console.log('podman kube play (same file, same image, its default bridge network):');
    console.log(`  pod up      ${fmt(p.up)}`);
    console.log(`  teardown    ${fmt(p.down)}   (podman pod rm -f -t 0)`);
    console.log('ratio nspod/podman (median):');
    console.log(`  pod up      ${ratio(n.up.median, p.up.median)}`);
    console.log(`  teardown    ${ratio(n.down.median, p.down.median)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
