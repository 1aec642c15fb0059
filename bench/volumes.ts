/**
 * Volumes section of the bench: pod-up and teardown of examples/volumes.yaml (ConfigMap and
 * Secret documents, emptyDir on disk and in memory, configMap/secret volumes, a subPath, a
 * persistentVolumeClaim, env from all of them) through the nspod CLI, and — where podman is
 * installed — the same file through `podman kube play` in the same run, with the ratio.
 * Medians and min–max over BENCH_RUNS runs (default 10). Run: node dist-test/bench/volumes.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(projectDir, 'dist', 'cli', 'main.js');
const podYaml = path.join(projectDir, 'examples', 'volumes.yaml');
const RUNS = Number(process.env.BENCH_RUNS ?? 10);

interface Stat {
  median: number;
  min: number;
  max: number;
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

const fmt = (s: Stat): string =>
  `${s.median.toFixed(0).padStart(6)} ms  (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) {
    const where = r.stderr.split('\n').find((l) => /\.go:\d+/.test(l) && !l.includes('/runtime/'));
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n')[0]}${where ? ` at ${where.trim()}` : ''}`,
    );
  }
  return ms;
}

/** The file without its Secret (document, volume, envFrom): podman 4.3's kube play panics on kind: Secret. */
function withoutSecret(yaml: string): string {
  return yaml
    .split('\n---\n')
    .filter((d) => !/^kind: Secret$/m.test(d))
    .join('\n---\n')
    .replace(/\n {4}- name: secret\n {6}secret:\n(?: {8}.*\n)+/, '\n')
    .replace(/\n {6}envFrom:\n {8}- secretRef: .*\n {10}prefix: DB_/, '')
    .replace(/\n {8}- \{ name: secret, mountPath: .*\}/, '');
}

function benchNspod(file: string): { up: Stat; down: Stat } {
  const tag = `nspod-bench-vol-${process.pid}`;
  const root = mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const runRoot = `/run/${tag}`;
  const env = { ...process.env, NSPOD_ROOT: root, NSPOD_RUN_ROOT: runRoot, NSPOD_CGROUP_PARENT: tag };
  const up: number[] = [];
  const down: number[] = [];
  try {
    run('node', [cli, 'play', file], env); // warm-up: image, layer, runtime detection
    run('node', [cli, 'rm', '-f', 'web'], env);
    for (let i = 0; i < RUNS; i++) {
      up.push(run('node', [cli, 'play', file], env));
      down.push(run('node', [cli, 'rm', '-f', 'web'], env));
    }
  } finally {
    spawnSync('node', [cli, 'rm', '-f', 'web'], { env });
    rmSync(root, { recursive: true, force: true });
    rmSync(runRoot, { recursive: true, force: true });
  }
  return { up: stat(up), down: stat(down) };
}

function benchPodman(file: string): { up: Stat; down: Stat } | string {
  if (spawnSync('podman', ['--version']).status !== 0) return 'podman not installed (apt-get install podman)';
  // ../shared from the main checkout, ../../shared from a worktree under /work/wt
  const conf =
    process.env.CONTAINERS_CONF ??
    [path.resolve(projectDir, '..', 'shared'), path.resolve(projectDir, '..', '..', 'shared')]
      .map((d) => path.join(d, 'peers', 'podman-containers.conf'))
      .find((f) => existsSync(f));
  const env = { ...process.env, ...(conf ? { CONTAINERS_CONF: conf } : {}) };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-vol-podman-'));
  // Names of its own, so that it meets no other run's pod, volume or image.
  const name = `vbench${process.pid}`;
  const image = `localhost/${name}:latest`;
  try {
    const rootfs = path.join(dir, 'rootfs');
    spawnSync('mkdir', ['-p', `${rootfs}/bin`, `${rootfs}/tmp`, `${rootfs}/etc`]);
    spawnSync('cp', ['/bin/busybox', `${rootfs}/bin/busybox`]);
    for (const a of spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n')) {
      if (a && a !== 'busybox') spawnSync('ln', ['-sf', 'busybox', `${rootfs}/bin/${a}`]);
    }
    writeFileSync(`${rootfs}/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\n');
    run('tar', ['-C', rootfs, '-cf', `${dir}/rootfs.tar`, '.']);
    run('podman', ['import', '--change', 'ENV PATH=/bin', `${dir}/rootfs.tar`, image], env);
    const yaml = path.join(dir, 'pod.yaml');
    writeFileSync(
      yaml,
      readFileSync(file, 'utf8')
        .replace(/localhost\/busybox:latest/g, image)
        .replace(/\bweb\b/g, name),
    );
    const play = ['kube', 'play', '--network', 'none', yaml];
    // kube down stops with a 10 s grace period; rm -f -t 0 is the teardown comparable to nspod rm -f
    const down = ['pod', 'rm', '-f', '-t', '0', name];
    const up: number[] = [];
    const downs: number[] = [];
    run('podman', play, env);
    run('podman', down, env);
    for (let i = 0; i < RUNS; i++) {
      up.push(run('podman', play, env));
      downs.push(run('podman', down, env));
    }
    return { up: stat(up), down: stat(downs) };
  } catch (e) {
    return `podman failed: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    spawnSync('podman', ['kube', 'down', path.join(dir, 'pod.yaml')], { env });
    spawnSync('podman', ['volume', 'rm', '-f', `${name}-data`, `${name}-config`], { env });
    spawnSync('podman', ['rmi', '-f', image], { env });
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`# nspod bench, volumes: examples/volumes.yaml, ${RUNS} runs, ${os.cpus().length} cores`);
const full = benchNspod(podYaml);
console.log('\nnspod play (ConfigMap + Secret docs, 5 volumes, env from them; both containers running):');
console.log(`  pod up      ${fmt(full.up)}`);
console.log(`  teardown    ${fmt(full.down)}   (nspod rm -f; the named volume stays)`);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-vol-'));
const lite = path.join(tmp, 'volumes-without-secret.yaml');
writeFileSync(lite, withoutSecret(readFileSync(podYaml, 'utf8')));
const n = benchNspod(lite);
const p = benchPodman(lite);
rmSync(tmp, { recursive: true, force: true });
console.log('\nwithout the Secret (what podman 4.3 can play): ConfigMap doc, 4 volumes');
console.log(`  nspod pod up      ${fmt(n.up)}`);
console.log(`  nspod teardown    ${fmt(n.down)}`);
if (typeof p === 'string') {
  console.log(`\npodman: ${p}`);
} else {
  console.log('\npodman kube play --network none (same file, same image):');
  console.log(`  pod up      ${fmt(p.up)}`);
  console.log(`  teardown    ${fmt(p.down)}   (podman pod rm -f -t 0)`);
  console.log('\nratio nspod/podman (median):');
  console.log(`  pod up      ${(n.up.median / p.up.median).toFixed(2)}`);
  console.log(`  teardown    ${(n.down.median / p.down.median).toFixed(2)}`);
}
