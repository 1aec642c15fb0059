/** Shared by the bench sections: statistics, timed commands, isolated nspod environments, peers. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cli = path.join(projectDir, 'dist', 'bin', 'nspod.js');
export const podYaml = path.join(projectDir, 'examples', 'pod.yaml');
export const RUNS = Number(process.env.BENCH_RUNS ?? 10);

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

export const fmt = (s: Stat, unit = 'ms'): string =>
  `${s.median.toFixed(0).padStart(6)} ${unit}  (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;

export function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  input?: string,
): { ms: number; stdout: string; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

export interface BenchEnv {
  env: NodeJS.ProcessEnv;
  root: string;
  bridge: string;
  subnetPrefix: string;
  cleanup(): void;
}

/**
 * An isolated nspod (own root, run root, cgroup parent) with its own CNI network: bridge
 * `nspbench<n>` on 10.214.<n>.0/24. cleanup() removes pods, dirs, cgroups and the bridge.
 */
export function benchEnv(tag: string, n = 0, extraEnv: Record<string, string> = {}): BenchEnv {
  const root = mkdtempSync(path.join(os.tmpdir(), `nspod-bench-${tag}-`));
  const runRoot = `/run/nspod-bench-${tag}-${process.pid}`;
  const cg = `nspod-bench-${tag}-${process.pid}`;
  const bridge = `nspbench${n}`;
  const subnetPrefix = `10.214.${n}`;
  const netd = path.join(root, 'net.d');
  mkdirSync(netd, { recursive: true });
  writeFileSync(
    path.join(netd, '10-bench.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: `bench-${tag}`,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: `${subnetPrefix}.0/24` }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: path.join(root, 'ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall', backend: 'iptables' },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    }),
  );
  const env = {
    ...process.env,
    NSPOD_ROOT: root,
    NSPOD_RUN_ROOT: runRoot,
    NSPOD_CGROUP_PARENT: cg,
    NSPOD_CNI_CONFIG_DIR: netd,
    NSPOD_SUPERVISE: '0',
    ...extraEnv,
  };
  return {
    env,
    root,
    bridge,
    subnetPrefix,
    cleanup() {
      const pods = spawnSync('node', [cli, 'pods', '-o', 'json'], { env, encoding: 'utf8' });
      try {
        for (const p of JSON.parse(pods.stdout) as Array<{ id: string }>) {
          spawnSync('node', [cli, 'rm', '-f', p.id], { env });
        }
      } catch {}
      stopDaemon(runRoot);
      spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
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
        const d = path.join('/sys/fs/cgroup', h, cg);
        if (existsSync(d)) spawnSync('rmdir', [d]);
      }
    },
  };
}

/** Stops the run root's supervisor daemon, if one runs (SIGTERM, by its pid file), and waits for it. */
function stopDaemon(runRoot: string): void {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(path.join(runRoot, 'supervisor.pid'), 'utf8'), 10);
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.05']);
  }
}

export function podmanEnv(): NodeJS.ProcessEnv | string {
  if (spawnSync('podman', ['--version']).status !== 0) return 'podman not installed (apt-get install podman)';
  const conf = path.resolve(projectDir, '..', 'shared', 'peers', 'podman-containers.conf');
  return { ...process.env, ...(existsSync(conf) ? { CONTAINERS_CONF: conf } : {}) };
}

/** The host's busybox-static as podman's localhost/busybox:latest (the image nspod makes). */
export function podmanBusybox(env: NodeJS.ProcessEnv): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-podman-'));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const ratio = (a: number, b: number): string => (a / b).toFixed(2);
