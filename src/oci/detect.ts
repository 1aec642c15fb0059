/**
 * Runtime detection: a runtime "works" when it is on PATH and really runs a trivial container on
 * this host (crun 1.8, for one, refuses hybrid cgroups). The verdict is cached per binary
 * (path + mtime), in a file under the run root, so the probe runs once per boot.
 */
import {
  access,
  constants,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { detectCgroups, normalizeParent } from '../cgroups/index.js';
import { failedPrecondition, hasErrno, messageOf, notFound } from '../errors/index.js';
import type { Host } from '../host/index.js';
import { DEFAULT_DEVICE_RULES } from './config.js';
import { runtimeMessage } from './runtime.js';
import type { RuntimeInfo } from './runtime.js';
import type { OciMount, OciSpec } from './types.js';

export interface DetectRuntimeOptions {
  /** a runtime name or path that must be used; it failing is an error */
  preferred?: string;
  /** tried in order when nothing is preferred (default crun, then runc) */
  candidates?: string[];
  /** scratch space for the probe's bundle and state; created when absent */
  probeDir: string;
  /** default `<probeDir>/runtime.json`; put it under the run root so it lasts one boot */
  cacheFile?: string;
  /** default process.env.PATH */
  pathEnv?: string;
  /** the probe's cgroup is `/<cgroupParent>/<probe id>` (default: `/<probe id>` at the root) */
  cgroupParent?: string;
  /** cgroup mount dirs to remove the probe's cgroup from (default: every hierarchy of this host) */
  cgroupMounts?: string[];
  timeoutMs?: number;
}

export interface DetectedRuntime extends RuntimeInfo {
  /** candidates that were not chosen, and why */
  skipped: Array<{ name: string; reason: string }>;
}

interface CacheEntry {
  mtimeMs: number;
  ok: boolean;
  version: string;
  reason?: string;
}
type Cache = Record<string, CacheEntry>;

export const DEFAULT_CANDIDATES = ['crun', 'runc'];

async function findOnPath(name: string, pathEnv: string): Promise<string | undefined> {
  const dirs = name.includes('/') ? [''] : pathEnv.split(':').filter(Boolean);
  for (const d of dirs) {
    const p = d === '' ? path.resolve(name) : path.join(d, name);
    try {
      await access(p, constants.X_OK);
      if ((await stat(p)).isFile()) return p;
    } catch {}
  }
  return undefined;
}

async function readCache(file: string): Promise<Cache> {
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return typeof c === 'object' && c !== null ? (c as Cache) : {};
  } catch {
    return {};
  }
}

async function writeCache(file: string, cache: Cache): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(cache, null, 2));
  await rename(tmp, file);
}

function defaultCgroupMounts(): string[] {
  try {
    const l = detectCgroups();
    return [...new Set([...Object.values(l.v1), ...(l.v2 !== undefined ? [l.v2] : [])])];
  } catch {
    return [];
  }
}

/** A rootfs that borrows the host's /usr (read-only binds) and runs `true`. */
async function probeBundle(bundle: string, cgroupsPath: string): Promise<OciSpec> {
  const rootfs = path.join(bundle, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
  ];
  for (const top of ['usr', 'bin', 'sbin', 'lib', 'lib64']) {
    let st;
    try {
      st = await lstat('/' + top);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) await symlink(await readlink('/' + top), path.join(rootfs, top));
    else if (st.isDirectory()) {
      await mkdir(path.join(rootfs, top));
      mounts.push({ destination: '/' + top, type: 'bind', source: '/' + top, options: ['rbind', 'ro', 'rprivate'] });
    }
  }
  for (const d of ['proc', 'dev']) await mkdir(path.join(rootfs, d), { recursive: true });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['true'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network' }],
      cgroupsPath,
      resources: { pids: { limit: 64 }, devices: DEFAULT_DEVICE_RULES.map((d) => ({ ...d })) },
    },
  };
}

async function versionOf(host: Host, rtPath: string): Promise<string> {
  const r = await host.run(rtPath, ['--version'], { allowFailure: true, timeoutMs: 10_000 });
  const m = /version\s+(\S+)/i.exec(r.stdout);
  return m ? m[1]! : (r.stdout.split('\n')[0] ?? '').trim() || 'unknown';
}

/** Runs a trivial container with the runtime; undefined = it works, else the runtime's reason. */
async function probe(host: Host, rtPath: string, opts: DetectRuntimeOptions): Promise<string | undefined> {
  await mkdir(opts.probeDir, { recursive: true });
  const dir = await mkdtemp(path.join(opts.probeDir, 'probe-'));
  const id = `nspod-probe-${randomBytes(6).toString('hex')}`;
  const parent = opts.cgroupParent !== undefined ? normalizeParent(opts.cgroupParent) : '';
  const cgroupsPath = `${parent}/${id}`;
  const mounts = opts.cgroupMounts ?? defaultCgroupMounts();
  // The parent is removed afterwards only where the probe made it.
  const parentWasThere = await Promise.all(mounts.map((m) => (parent === '' ? true : exists(path.join(m, parent)))));
  const state = path.join(dir, 'state');
  const bundle = path.join(dir, 'bundle');
  try {
    const spec = await probeBundle(bundle, cgroupsPath);
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const r = await host.run(rtPath, ['--root', state, 'run', '--bundle', bundle, id], {
      allowFailure: true,
      timeoutMs: opts.timeoutMs ?? 30_000,
      cwd: bundle,
    });
    if (r.code === 0) return undefined;
    return runtimeMessage(r.stderr) || runtimeMessage(r.stdout) || `exit status ${r.code}`;
  } catch (e) {
    return messageOf(e);
  } finally {
    await host.run(rtPath, ['--root', state, 'delete', '--force', id], { allowFailure: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    for (const [i, m] of mounts.entries()) {
      await rmdirIfThere(path.join(m, cgroupsPath));
      if (!parentWasThere[i]) await rmdirIfThere(path.join(m, parent), true);
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function rmdirIfThere(dir: string, onlyIfEmpty = false): Promise<void> {
  try {
    await rmdir(dir);
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return;
    if (onlyIfEmpty && (hasErrno(e, 'ENOTEMPTY') || hasErrno(e, 'EBUSY') || hasErrno(e, 'EEXIST'))) return;
    throw failedPrecondition(`cannot remove probe cgroup ${dir}: ${messageOf(e)}`, e);
  }
}

/**
 * The verdict `detectRuntime` would give from its cache alone, or undefined when some candidate
 * it would look at has no cached verdict for its current binary (a probe is needed).
 */
export async function cachedRuntime(host: Host, opts: DetectRuntimeOptions): Promise<DetectedRuntime | undefined> {
  try {
    return await detectRuntime(host, opts, true);
  } catch (e) {
    if (e === NEEDS_PROBE) return undefined;
    throw e;
  }
}

const NEEDS_PROBE = new Error('needs a probe');

/** Picks the first candidate runtime that really runs a container here; see the module doc. */
export async function detectRuntime(
  host: Host,
  opts: DetectRuntimeOptions,
  cacheOnly = false,
): Promise<DetectedRuntime> {
  const pathEnv = opts.pathEnv ?? process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const cacheFile = opts.cacheFile ?? path.join(opts.probeDir, 'runtime.json');
  const names = opts.preferred !== undefined ? [opts.preferred] : (opts.candidates ?? DEFAULT_CANDIDATES);
  const cache = await readCache(cacheFile);
  let dirty = false;
  const skipped: DetectedRuntime['skipped'] = [];
  try {
    for (const name of names) {
      const rtPath = await findOnPath(name, pathEnv);
      const short = path.basename(name);
      if (rtPath === undefined) {
        skipped.push({ name: short, reason: 'not found on PATH' });
        continue;
      }
      const { mtimeMs } = await stat(rtPath);
      let entry = cache[rtPath];
      if (entry === undefined || entry.mtimeMs !== mtimeMs) {
        if (cacheOnly) throw NEEDS_PROBE;
        const reason = await probe(host, rtPath, opts);
        entry = { mtimeMs, ok: reason === undefined, version: await versionOf(host, rtPath) };
        if (reason !== undefined) entry.reason = reason;
        cache[rtPath] = entry;
        dirty = true;
      }
      if (entry.ok) return { name: short, path: rtPath, version: entry.version, skipped };
      skipped.push({ name: short, reason: entry.reason ?? 'probe failed' });
    }
  } finally {
    if (dirty) await writeCache(cacheFile, cache);
  }
  if (opts.preferred !== undefined) {
    const why = skipped[0]?.reason ?? 'unknown';
    if (why === 'not found on PATH') throw notFound(`runtime ${opts.preferred} not found on PATH`);
    throw failedPrecondition(`runtime ${opts.preferred} does not work on this host: ${why}`);
  }
  throw failedPrecondition(`no working OCI runtime: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}
