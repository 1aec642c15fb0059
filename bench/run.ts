/**
 * npm run bench: pod-up and teardown latency of examples/pod.yaml through the nspod CLI, with a
 * per-step breakdown, and — where podman is installed — the same pod through `podman kube play`
 * in the same run, with the ratio. Medians and min–max over RUNS runs (env BENCH_RUNS, default 10).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(projectDir, 'dist', 'cli', 'main.js');
const podYaml = path.join(projectDir, 'examples', 'pod.yaml');
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

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { ms: number; stdout: string; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

function benchNspod(): { up: Stat; down: Stat; steps: Record<string, Stat> } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-'));
  const runRoot = `/run/nspod-bench-${process.pid}`;
  const env = {
    ...process.env,
    NSPOD_ROOT: root,
    NSPOD_RUN_ROOT: runRoot,
    NSPOD_CGROUP_PARENT: `nspod-bench-${process.pid}`,
  };
  const up: number[] = [];
  const down: number[] = [];
  const steps: Record<string, number[]> = {};
  try {
    // Warm-up: builds the busybox image, unpacks its layer, detects the runtime.
    run('node', [cli, 'play', podYaml], env);
    run('node', [cli, 'rm', '-f', 'foo'], env);
    for (let i = 0; i < RUNS; i++) {
      const r = run('node', [cli, 'play', '--timings', podYaml], env);
      up.push(r.ms);
      for (const line of r.stderr.split('\n')) {
        const m = /^timing (\S+) ([\d.]+)ms$/.exec(line.trim());
        if (m) (steps[m[1]!] ??= []).push(Number(m[2]));
      }
      down.push(run('node', [cli, 'rm', '-f', 'foo'], env).ms);
    }
  } finally {
    spawnSync('node', [cli, 'rm', '-f', 'foo'], { env });
    rmSync(root, { recursive: true, force: true });
    rmSync(runRoot, { recursive: true, force: true });
    for (const h of [
      'memory',
      'cpu',
      'cpuacct',
      'pids',
      'cpuset',
      'devices',
      'freezer',
      'blkio',
      'systemd',
      'unified',
      '',
    ]) {
      const d = path.join('/sys/fs/cgroup', h, `nspod-bench-${process.pid}`);
      if (existsSync(d)) spawnSync('rmdir', [d]);
    }
  }
  return {
    up: stat(up),
    down: stat(down),
    steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, stat(v)])),
  };
}

function benchPodman(): { up: Stat; down: Stat } | string {
  if (spawnSync('podman', ['--version']).status !== 0) return 'podman not installed (apt-get install podman)';
  const conf = path.resolve(projectDir, '..', 'shared', 'peers', 'podman-containers.conf');
  const env = { ...process.env, ...(existsSync(conf) ? { CONTAINERS_CONF: conf } : {}) };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-podman-'));
  try {
    // The same image as nspod's: the host's busybox-static as localhost/busybox:latest.
    const rootfs = path.join(dir, 'rootfs');
    spawnSync('mkdir', ['-p', `${rootfs}/bin`, `${rootfs}/tmp`, `${rootfs}/etc`]);
    spawnSync('cp', ['/bin/busybox', `${rootfs}/bin/busybox`]);
    for (const a of spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n')) {
      if (a && a !== 'busybox') spawnSync('ln', ['-sf', 'busybox', `${rootfs}/bin/${a}`]);
    }
    writeFileSync(`${rootfs}/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\n');
    run('tar', ['-C', rootfs, '-cf', `${dir}/rootfs.tar`, '.']);
    run(
      'podman',
      [
        'import',
        '--change',
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        `${dir}/rootfs.tar`,
        'localhost/busybox:latest',
      ],
      env,
    );
    // nspod has no CNI networking yet (loopback only), so podman runs without a network too; its
    // --network none refuses containerPort entries, which are informational here: drop them.
    const yaml = path.join(dir, 'pod.yaml');
    writeFileSync(yaml, readFileSync(podYaml, 'utf8').replace(/\n\s+ports:\n\s+- containerPort: \d+/g, ''));
    const up: number[] = [];
    const down: number[] = [];
    const play = ['kube', 'play', '--network', 'none', yaml];
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
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`# nspod bench: examples/pod.yaml, ${RUNS} runs, ${os.cpus().length} cores, ${os.release()}`);
const n = benchNspod();
console.log('\nnspod play (from the command to both containers running):');
console.log(`  pod up      ${fmt(n.up)}`);
for (const [k, v] of Object.entries(n.steps)) console.log(`    ${k.padEnd(18)}${fmt(v)}`);
console.log(`  teardown    ${fmt(n.down)}   (nspod rm -f)`);
const p = benchPodman();
if (typeof p === 'string') {
  console.log(`\npodman: ${p}`);
} else {
  console.log('\npodman kube play --network none (same pod, same image):');
  console.log(`  pod up      ${fmt(p.up)}`);
  console.log(`  teardown    ${fmt(p.down)}   (podman pod rm -f -t 0)`);
  console.log('\nratio nspod/podman (median):');
  console.log(`  pod up      ${(n.up.median / p.up.median).toFixed(2)}   (target <= 0.5)`);
  console.log(`  teardown    ${(n.down.median / p.down.median).toFixed(2)}`);
}

// The CRI endpoint (bench/cri.ts); BENCH_CRI_PODS sets the concurrent batch (default 50).
const { benchCri, printCri } = await import('./cri.js');
printCri(await benchCri(RUNS, Number(process.env.BENCH_CRI_PODS ?? 50)), (xs) => fmt(stat(xs)));
