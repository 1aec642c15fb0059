/**
 * The network share of pod start: CNI ADD and DEL of nspod's bridge network on a bare network
 * namespace (bridge + host-local + portmap + firewall + bandwidth), and pods per second when 20
 * pods are started at once, beside podman's figure in the same run where installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { PodNetworks } from '../src/network/cni/index.js';
import { RUNS, benchEnv, cli, fmt, podmanBusybox, podmanEnv, ratio, run, stat } from './common.js';

const CONCURRENT = 20;
const pod = (name: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: app
      image: localhost/busybox:latest
      command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
`;

function spawnOk(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim()}`))));
    c.stdin.end(input ?? '');
  });
}

async function cniAddDel(): Promise<{ add: number[]; del: number[] }> {
  const b = benchEnv('cni', 2);
  const ns = `nspod-bench-${process.pid}`;
  const add: number[] = [];
  const del: number[] = [];
  try {
    run('ip', ['netns', 'add', ns]);
    const nets = new PodNetworks({
      configDir: b.env.NSPOD_CNI_CONFIG_DIR!,
      pluginDirs: ['/usr/lib/cni', '/opt/cni/bin'],
      cacheDir: path.join(b.root, 'cni'),
    });
    const names = ['bench-cni'];
    for (let i = 0; i <= RUNS; i++) {
      const t0 = performance.now();
      await nets.attach({
        sandboxId: `bench${i}`,
        podName: 'p',
        namespace: 'default',
        netns: `/run/netns/${ns}`,
        networks: names,
        portMappings: [],
      });
      const t1 = performance.now();
      await nets.detach(`bench${i}`, `/run/netns/${ns}`);
      const t2 = performance.now();
      if (i > 0) {
        add.push(t1 - t0);
        del.push(t2 - t1);
      }
    }
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    b.cleanup();
  }
  return { add, del };
}

/** `supervised`: the default, with the daemon running, which then makes every pod. */
async function nspodConcurrent(supervised: boolean): Promise<number[]> {
  const b = benchEnv(supervised ? 'many-sup' : 'many', 3, { NSPOD_SUPERVISE: supervised ? '1' : '0' });
  const rates: number[] = [];
  try {
    run('node', [cli, 'play', '-'], b.env, pod('warm'));
    run('node', [cli, 'rm', '-f', 'warm'], b.env);
    for (let r = 0; r < Math.max(1, Math.floor(RUNS / 3)); r++) {
      const names = Array.from({ length: CONCURRENT }, (_, i) => `p${i}`);
      const t0 = performance.now();
      await Promise.all(names.map((n) => spawnOk('node', [cli, 'play', '-'], b.env, pod(n))));
      rates.push(CONCURRENT / ((performance.now() - t0) / 1000));
      await Promise.all(names.map((n) => spawnOk('node', [cli, 'rm', '-f', n], b.env)));
    }
  } finally {
    b.cleanup();
  }
  return rates;
}

async function podmanConcurrent(): Promise<number[] | string> {
  const env = podmanEnv();
  if (typeof env === 'string') return env;
  const rates: number[] = [];
  const names = Array.from({ length: CONCURRENT }, (_, i) => `p${i}`);
  try {
    podmanBusybox(env);
    for (let r = 0; r < Math.max(1, Math.floor(RUNS / 3)); r++) {
      const t0 = performance.now();
      await Promise.all(names.map((n) => spawnOk('podman', ['kube', 'play', '-'], env, pod(n))));
      rates.push(CONCURRENT / ((performance.now() - t0) / 1000));
      await Promise.all(names.map((n) => spawnOk('podman', ['pod', 'rm', '-f', '-t', '0', n], env)));
    }
    return rates;
  } catch (e) {
    return `podman failed: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    for (const n of names) spawnSync('podman', ['pod', 'rm', '-f', '-t', '0', n], { env });
    spawnSync('podman', ['rmi', '-f', 'localhost/busybox:latest'], { env });
  }
}

export async function networkSection(): Promise<void> {
  console.log(`\n## network: CNI bridge network (bridge, host-local, portmap, firewall, bandwidth), ${RUNS} runs`);
  const { add, del } = await cniAddDel();
  console.log(`  CNI ADD     ${fmt(stat(add))}`);
  console.log(`  CNI DEL     ${fmt(stat(del))}`);
  const n = stat(await nspodConcurrent(true));
  console.log(
    `  ${CONCURRENT} pods started at once: nspod (daemon running) ${n.median.toFixed(1)} pods/s (min ${n.min.toFixed(1)}, max ${n.max.toFixed(1)})`,
  );
  const own = stat(await nspodConcurrent(false));
  console.log(
    `  ${CONCURRENT} pods started at once: nspod --no-supervise ${own.median.toFixed(1)} pods/s (min ${own.min.toFixed(1)}, max ${own.max.toFixed(1)})`,
  );
  const p = await podmanConcurrent();
  if (typeof p === 'string') console.log(`  podman: ${p}`);
  else {
    const ps = stat(p);
    console.log(`  ${CONCURRENT} pods started at once: podman kube play ${ps.median.toFixed(1)} pods/s`);
    console.log(
      `  ratio nspod/podman (pods/s, higher is better for nspod): ${ratio(n.median, ps.median)} with the daemon, ${ratio(own.median, ps.median)} without`,
    );
  }
}
