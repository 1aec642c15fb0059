/**
 * Supervisor section of `npm run bench`:
 * - restart latency: a container's init is SIGKILLed; time until the daemon has it running again
 *   (its record's startedAt), back-off off (NSPOD_BACKOFF_BASE_MS=0) so every death is a first one;
 * - probe overhead: the CPU of the daemon and everything it forks (a cgroup of their own; /proc
 *   of the daemon alone where no cpu controller is at hand) with N pods each probed every second
 *   (httpGet into the pod's network namespace);
 * - the daemon's RSS with 0 pods and with M pods.
 * Counts: BENCH_RUNS (restarts), BENCH_PROBE_PODS (default 50), BENCH_SUP_PODS (default 100).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RUNS, benchEnv, cli, fmt, stat } from './common.js';

export interface SupervisorBench {
  restartMs: number[];
  probePods: number;
  cpuPercent: number;
  rss0: number;
  rssN: number;
  helperRss: number;
  pods: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procStat(pid: number): { cpuTicks: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // utime stime cutime cstime (fields 14-17 of stat; index 11-14 after the state field)
  return { cpuTicks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/**
 * A cgroup holding the daemon and everything it forks (probe helpers, runc exec), so their CPU
 * counts too: cpuacct.usage (v1) or cpu.stat usage_usec (v2), in ms. Undefined if unavailable.
 */
function cpuCgroup(name: string, pid: number): { usageMs: () => number; remove: () => void } | undefined {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const l of mounts) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post) continue;
    const dir = pre.split(' ')[4]!;
    const [fstype, , opts] = post.split(' ');
    const v1 = fstype === 'cgroup' && (opts ?? '').split(',').includes('cpuacct');
    const v2 =
      fstype === 'cgroup2' &&
      existsSync(path.join(dir, 'cgroup.controllers')) &&
      readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').includes('cpu');
    if (!v1 && !v2) continue;
    const cg = path.join(dir, name);
    try {
      spawnSync('mkdir', ['-p', cg]);
      writeFileSync(path.join(cg, 'cgroup.procs'), `${pid}\n`);
    } catch {
      continue;
    }
    return {
      usageMs: () =>
        v1
          ? Number(readFileSync(path.join(cg, 'cpuacct.usage'), 'utf8')) / 1e6
          : Number(/usage_usec (\d+)/.exec(readFileSync(path.join(cg, 'cpu.stat'), 'utf8'))?.[1] ?? 0) / 1000,
      remove: () => {
        for (const p of readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            writeFileSync(path.join(dir, 'cgroup.procs'), `${p}\n`);
          } catch {}
        }
        spawnSync('rmdir', [cg]);
      },
    };
  }
  return undefined;
}

/** RSS of the daemon's spawner helper (src/host/spawner.ts), its child running spawner.js. */
function helperRssKb(daemon: number): number {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) !== daemon) continue;
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('spawner.js')) return rssKb(Number(e));
    } catch {} // gone meanwhile
  }
  return 0;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function readPid(file: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
}

function podDoc(name: string, probe: boolean): string {
  const probeYaml = probe
    ? `
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1`
    : '';
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www']${probeYaml}
`;
}

export async function benchSupervisor(cli: string, runs: number): Promise<SupervisorBench> {
  // An isolated nspod with a CNI bridge of its own (common.ts), supervised, back-off off.
  const be = benchEnv('sup', 7);
  const { root } = be;
  const runRoot = String(be.env.NSPOD_RUN_ROOT);
  const tag = `${process.pid}`;
  const env = { ...be.env, NSPOD_SUPERVISE: '1', NSPOD_BACKOFF_BASE_MS: '0' };
  const nspod = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', ...(input ? { input } : {}) });
    if (r.status !== 0) throw new Error(`nspod ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const probePods = Number(process.env.BENCH_PROBE_PODS ?? 50);
  const total = Math.max(Number(process.env.BENCH_SUP_PODS ?? 100), probePods);
  let daemon: number | undefined;
  let cg: ReturnType<typeof cpuCgroup>;
  try {
    spawnSync('mkdir', ['-p', runRoot]);
    const fd = openSync(path.join(runRoot, 'bench-serve.log'), 'a');
    const child = spawn(process.execPath, [cli, 'serve'], { env, detached: true, cwd: '/', stdio: ['ignore', fd, fd] });
    child.unref();
    closeSync(fd);
    daemon = child.pid!;
    cg = cpuCgroup(`nspod-bench-sup-daemon-${tag}`, daemon);
    while (readPid(path.join(runRoot, 'supervisor.ready')) !== daemon) await sleep(20);
    await sleep(1000);
    const rss0 = rssKb(daemon);
    const helperRss = helperRssKb(daemon);

    // restart latency
    nspod(['play', '-'], podDoc('restart', false));
    const rec = JSON.parse(nspod(['inspect', 'container', 'restart/app', '-o', 'json'])) as { id: string };
    const recFile = path.join(root, 'containers', `${rec.id}.json`);
    const restartMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const before = JSON.parse(readFileSync(recFile, 'utf8')) as { pid: number; startedAt?: string };
      const t0 = Date.now();
      process.kill(before.pid, 'SIGKILL');
      for (;;) {
        const now = JSON.parse(readFileSync(recFile, 'utf8')) as { pid: number; startedAt?: string };
        if (now.pid !== before.pid && now.startedAt) {
          restartMs.push(Date.parse(now.startedAt) - t0);
          break;
        }
        if (Date.now() - t0 > 60_000) throw new Error('no restart within 60 s');
        await sleep(5);
      }
      await sleep(300);
    }
    nspod(['rm', '-f', 'restart']);

    // probe overhead with probePods pods probed every second
    const docs = (from: number, to: number, probe: boolean) =>
      Array.from({ length: to - from }, (_, i) => podDoc(`p${from + i}`, probe)).join('---\n');
    nspod(['play', '-'], docs(0, probePods, true));
    await sleep(3000);
    const windowMs = 10_000;
    const a = cg ? cg.usageMs() : (procStat(daemon).cpuTicks * 1000) / 100;
    await sleep(windowMs);
    const b = cg ? cg.usageMs() : (procStat(daemon).cpuTicks * 1000) / 100;
    const cpuPercent = ((b - a) / windowMs) * 100;

    if (total > probePods) nspod(['play', '-'], docs(probePods, total, false));
    await sleep(3000);
    const rssN = rssKb(daemon);
    return { restartMs, probePods, cpuPercent, rss0, rssN, helperRss, pods: total };
  } finally {
    if (daemon) {
      try {
        process.kill(daemon, 'SIGTERM');
      } catch {}
      for (let i = 0; i < 200 && existsSync(`/proc/${daemon}`); i++) await sleep(25);
    }
    cg?.remove();
    be.cleanup();
  }
}

export async function supervisorSection(): Promise<void> {
  const sup = await benchSupervisor(cli, RUNS);
  console.log(`\nsupervisor (nspod serve):`);
  console.log(`  death to restart   ${fmt(stat(sup.restartMs))}   (SIGKILL of the container, back-off off)`);
  console.log(
    `  daemon CPU         ${sup.cpuPercent.toFixed(1)} %   (${sup.probePods} pods, an httpGet probe each every second; daemon and helpers)`,
  );
  console.log(
    `  daemon RSS         ${(sup.rss0 / 1024).toFixed(1)} MiB with 0 pods, ${(sup.rssN / 1024).toFixed(1)} MiB with ${sup.pods} pods`,
  );
  console.log(`  spawner helper RSS ${(sup.helperRss / 1024).toFixed(1)} MiB (NSPOD_SPAWNER=0: none)`);
}
