/**
 * Shared helpers for integration tests: an isolated nspod (own root, run root and cgroup parent),
 * the CLI run as a child process, and checks that read the system itself (/proc, /sys/fs/cgroup,
 * the mount table) rather than nspod's reports.
 */
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync, readlinkSync, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist-test/test/integration → the project dir */
export const projectDir = path.resolve(here, '..', '..', '..');
/** The bundled CLI built from this test build (scripts/run-tests.mjs runs scripts/bundle.mjs). */
export const cliPath = path.join(projectDir, 'dist-test', 'bin', 'nspod.js');

export interface Sandbox {
  root: string;
  runRoot: string;
  cgroupParent: string;
  /** the sandbox's own CNI network: config dir, bridge, subnet (x.y.z.0/24), host-local store */
  net: { configDir: string; name: string; bridge: string; subnet: string; prefix: string; ipamDir: string };
  env: NodeJS.ProcessEnv;
}

/**
 * An isolated nspod: own root, run root, cgroup parent, and its own CNI network (bridge
 * `nspt<tag>` on a random 10.213.N.0/24 with its own host-local store), removed by destroySandbox.
 */
export async function makeSandbox(): Promise<Sandbox> {
  const tag = randomBytes(4).toString('hex');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-root-'));
  const runRoot = path.join('/run', `nspod-test-${tag}`);
  await fs.mkdir(runRoot, { recursive: true });
  const cgroupParent = `nspod-test-${tag}`;
  const prefix = `10.213.${randomBytes(1)[0]!}`;
  const net = {
    configDir: path.join(root, 'net.d'),
    name: `nspt-${tag}`,
    bridge: `nspt${tag}`,
    subnet: `${prefix}.0/24`,
    prefix,
    ipamDir: path.join(root, 'ipam'),
  };
  await fs.mkdir(net.configDir, { recursive: true });
  const conflist = {
    cniVersion: '1.0.0',
    name: net.name,
    plugins: [
      {
        type: 'bridge',
        bridge: net.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: net.subnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: net.ipamDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall', backend: 'iptables' },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
  await fs.writeFile(path.join(net.configDir, '10-test.conflist'), JSON.stringify(conflist));
  return {
    root,
    runRoot,
    cgroupParent,
    net,
    env: {
      ...process.env,
      NSPOD_ROOT: root,
      NSPOD_RUN_ROOT: runRoot,
      NSPOD_CGROUP_PARENT: cgroupParent,
      // Not supervised unless a test asks for it (NSPOD_SUPERVISE=1): no daemon behind its back.
      NSPOD_SUPERVISE: '0',
      NSPOD_CNI_CONFIG_DIR: net.configDir,
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function nspod(sb: Sandbox, args: string[], opts: { input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: sb.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export async function nspodOk(sb: Sandbox, args: string[], opts: { input?: string } = {}): Promise<string> {
  const r = await nspod(sb, args, opts);
  if (r.code !== 0) throw new Error(`nspod ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Polls `check` until it returns a truthy value (or throws the last error after timeoutMs). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** cgroup hierarchies mounted on this host: [dir, isV2]. */
export function cgroupMounts(): Array<{ dir: string; v2: boolean; opts: string }> {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => {
      const [pre, post] = l.split(' - ');
      if (!pre || !post) return undefined;
      const fstype = post.split(' ')[0];
      if (fstype !== 'cgroup' && fstype !== 'cgroup2') return undefined;
      return { dir: pre.split(' ')[4]!, v2: fstype === 'cgroup2', opts: post.split(' ')[2] ?? '' };
    })
    .filter((m): m is { dir: string; v2: boolean; opts: string } => m !== undefined);
}

/** Is cgroup v2 the controller hierarchy (pure v2)? */
export function pureV2(): boolean {
  const m = cgroupMounts();
  return m.every((x) => x.v2);
}

/** The hierarchy dir that carries the memory controller. */
export function memoryHierarchy(): string {
  const m = cgroupMounts();
  const v1 = m.find((x) => !x.v2 && x.opts.split(',').includes('memory'));
  return v1 ? v1.dir : m.find((x) => x.v2)!.dir;
}

/** Every dir named `name` under any cgroup hierarchy (depth-limited). */
export function cgroupDirsNamed(name: string): string[] {
  const out: string[] = [];
  for (const m of cgroupMounts()) {
    const p = path.join(m.dir, name);
    if (existsSync(p)) out.push(p);
  }
  return out;
}

/** The pod cgroup dirs (pod-*) under the sandbox's parent in the memory hierarchy. */
export function podCgroupDirs(sb: Sandbox): string[] {
  const parent = path.join(memoryHierarchy(), sb.cgroupParent);
  if (!existsSync(parent)) return [];
  return readdirSync(parent)
    .filter((n) => n.startsWith('pod-'))
    .map((n) => path.join(parent, n));
}

export function cgroupPids(dir: string): number[] {
  return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

export function nsInode(pid: number | 'self', type: string): number {
  const link = readlinkSync(`/proc/${pid}/ns/${type}`);
  return Number(/\[(\d+)\]/.exec(link)?.[1]);
}

export async function nsLink(pid: number | 'self', type: string): Promise<string> {
  return fs.readlink(`/proc/${pid}/ns/${type}`);
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function mountsContaining(s: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(s))
    .map((l) => l.split(' ')[4]!);
}

/** Kills the supervisor daemon of this sandbox (by the pid in its pid file) and waits for it to go. */
export async function killSupervisor(sb: Sandbox): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(path.join(sb.runRoot, 'supervisor.pid'), 'utf8').trim(), 10);
  } catch {
    return;
  }
  if (!Number.isFinite(pid) || pid <= 1) return;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmd.includes('serve') || !cmd.some((a) => a === cliPath || a.endsWith('main.js'))) return;
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    if (!env.includes(`NSPOD_RUN_ROOT=${sb.runRoot}`)) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 400 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
}

/**
 * Removes whatever a failed test may have left: pods via nspod, then (as a last resort) mounts
 * under the sandbox dirs, cgroups under its parent, and the dirs themselves.
 */
export async function destroySandbox(sb: Sandbox): Promise<void> {
  await killSupervisor(sb);
  // The daemon's spawner helper exits when the daemon's channel closes: give it a moment.
  let leaked = nspodProcessesOf(sb);
  for (let i = 0; i < 80 && leaked.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    leaked = nspodProcessesOf(sb);
  }
  const pods = await nspod(sb, ['pods', '-o', 'json']).catch(() => undefined);
  if (pods && pods.code === 0) {
    for (const p of JSON.parse(pods.stdout) as Array<{ id: string }>) await nspod(sb, ['rm', '-f', p.id]);
  }
  for (const dir of [sb.runRoot, sb.root]) {
    for (const m of mountsContaining(dir).reverse()) {
      await new Promise((r) => spawn('umount', ['-l', m]).on('close', r));
    }
  }
  for (const m of cgroupMounts()) {
    const top = path.join(m.dir, sb.cgroupParent);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
      dirs.push(d);
    };
    walk(top);
    for (const d of dirs) {
      for (const pid of existsSync(path.join(d, 'cgroup.procs')) ? cgroupPids(d) : []) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
    for (const d of dirs) {
      for (let i = 0; i < 50; i++) {
        try {
          await fs.rmdir(d);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }
  await new Promise((r) => spawn('ip', ['link', 'del', sb.net.bridge], { stdio: 'ignore' }).on('close', r));
  await fs.rm(sb.runRoot, { recursive: true, force: true });
  await fs.rm(sb.root, { recursive: true, force: true });
  if (leaked.length > 0) {
    for (const pid of leaked) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    throw new Error(`nspod processes of this sandbox outlived its tests (pids ${leaked.join(', ')})`);
  }
}

/** The daemon's spawner helper of this build (src/host/spawner.ts). */
const spawnerPath = path.join(path.dirname(cliPath), 'spawner.js');

/** Live nspod processes (node running the CLI or a spawner helper) started with this sandbox's run root. */
function nspodProcessesOf(sb: Sandbox): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (!cmd.some((a) => a === cliPath || a === spawnerPath)) continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(`NSPOD_RUN_ROOT=${sb.runRoot}`)) {
        found.push(Number(e));
      }
    } catch {} // gone meanwhile
  }
  return found;
}
