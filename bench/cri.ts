/**
 * The CRI section of `npm run bench`: a real `nspod cri serve` in its own root, driven by a gRPC
 * client over its unix socket. Medians over BENCH_RUNS runs of RunPodSandbox,
 * CreateContainer+StartContainer, ExecSync and StopPodSandbox+RemovePodSandbox; then 50 pods
 * (sandbox + one container each) created concurrently: pods per second and the daemon's RSS
 * before and after. No CRI peer (containerd, CRI-O) is installable here for a ratio.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../src/cri/index.js';
import { RUNS, benchEnv, cli, fmt, stat } from './common.js';

type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CriBench {
  runPodSandbox: number[];
  createStart: number[];
  execSync: number[];
  stopRemove: number[];
  concurrent: { pods: number; seconds: number; rssBeforeKiB: number; rssAfterKiB: number };
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

export async function benchCri(runs: number, concurrentPods = 50): Promise<CriBench> {
  // its own root, run root, cgroup parent and CNI network (bridge nspbench6, 10.214.6.0/24)
  const b = benchEnv('cri', 6);
  const env = b.env;
  const socket = path.join(env.NSPOD_RUN_ROOT!, 'cri.sock');
  const server = spawn(process.execPath, [cli, 'cri', 'serve', '--socket', socket], { env, stdio: 'ignore' });
  const { RuntimeService, ImageService } = loadCri();
  const rs = new RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const is = new ImageService(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = (c: grpc.Client, m: string, req: Msg): Promise<Msg> =>
    new Promise((resolve, reject) =>
      (c as unknown as Record<string, (r: Msg, cb: (e: Error | null, r: Msg) => void) => void>)[m]!.call(
        c,
        req,
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
  const timed = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
    const t = performance.now();
    const r = await fn();
    return [performance.now() - t, r];
  };
  const out: CriBench = {
    runPodSandbox: [],
    createStart: [],
    execSync: [],
    stopRemove: [],
    concurrent: { pods: concurrentPods, seconds: 0, rssBeforeKiB: 0, rssAfterKiB: 0 },
  };
  const sandbox = (name: string): Msg => ({ metadata: { name, namespace: 'bench', uid: name, attempt: 0 } });
  const podUp = async (name: string): Promise<{ pod: string; ctr: string; t: [number, number] }> => {
    const config = sandbox(name);
    const [t1, r] = await timed(() => call(rs, 'RunPodSandbox', { config }));
    const pod = r.pod_sandbox_id as string;
    const [t2, c] = await timed(async () => {
      const cr = await call(rs, 'CreateContainer', {
        pod_sandbox_id: pod,
        sandbox_config: config,
        config: {
          metadata: { name: 'main' },
          image: { image: 'localhost/busybox:latest' },
          command: ['sleep', '3600'],
        },
      });
      await call(rs, 'StartContainer', { container_id: cr.container_id });
      return cr;
    });
    return { pod, ctr: c.container_id as string, t: [t1, t2] };
  };
  const podDown = (pod: string): Promise<[number, unknown]> =>
    timed(async () => {
      await call(rs, 'StopPodSandbox', { pod_sandbox_id: pod });
      await call(rs, 'RemovePodSandbox', { pod_sandbox_id: pod });
    });
  try {
    for (let i = 0; ; i++) {
      if (existsSync(socket)) {
        try {
          await call(rs, 'Version', {});
          break;
        } catch {}
      }
      if (i > 600) throw new Error('nspod cri serve did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
    await call(is, 'PullImage', { image: { image: 'localhost/busybox:latest' } });
    const warm = await podUp('warm');
    await podDown(warm.pod);
    for (let i = 0; i < runs; i++) {
      const p = await podUp(`p${i}`);
      out.runPodSandbox.push(p.t[0]);
      out.createStart.push(p.t[1]);
      out.execSync.push(
        (await timed(() => call(rs, 'ExecSync', { container_id: p.ctr, cmd: ['true'], timeout: 30 })))[0],
      );
      out.stopRemove.push((await podDown(p.pod))[0]);
    }
    out.concurrent.rssBeforeKiB = rssKiB(server.pid!);
    const t0 = performance.now();
    const pods = await Promise.all(Array.from({ length: concurrentPods }, (_, i) => podUp(`c${i}`)));
    out.concurrent.seconds = (performance.now() - t0) / 1000;
    out.concurrent.rssAfterKiB = rssKiB(server.pid!);
    await Promise.all(pods.map((p) => podDown(p.pod)));
  } finally {
    rs.close();
    is.close();
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
    // whatever is left (a failed run), the bridge, dirs and cgroups
    b.cleanup();
  }
  return out;
}

export function printCri(b: CriBench): void {
  const f = (xs: number[]): string => fmt(stat(xs));
  console.log('\nCRI (gRPC over the unix socket to nspod cri serve, pods on a CNI bridge):');
  console.log(`  RunPodSandbox                   ${f(b.runPodSandbox)}`);
  console.log(`  CreateContainer+StartContainer  ${f(b.createStart)}`);
  console.log(`  ExecSync (true)                 ${f(b.execSync)}`);
  console.log(`  StopPodSandbox+RemovePodSandbox ${f(b.stopRemove)}`);
  const c = b.concurrent;
  console.log(
    `  ${c.pods} pods at once (sandbox + container): ${c.seconds.toFixed(1)} s, ${(c.pods / c.seconds).toFixed(2)} pods/s; ` +
      `daemon RSS ${(c.rssBeforeKiB / 1024).toFixed(0)} MiB before, ${(c.rssAfterKiB / 1024).toFixed(0)} MiB after`,
  );
  console.log('  peer: no CRI runtime (containerd, CRI-O) nor crictl is installable from Debian here, so no ratio');
}

/** `npm run bench -- cri`; BENCH_CRI_PODS sets the concurrent batch (default 50). */
export async function criSection(): Promise<void> {
  printCri(await benchCri(RUNS, Number(process.env.BENCH_CRI_PODS ?? 50)));
}
