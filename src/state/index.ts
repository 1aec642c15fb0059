/**
 * state/: nspod's records on disk and the lock that serialises mutations.
 *
 * Vocabulary: a *record* is one JSON file describing a pod or a container, written atomically
 * (temp file, fsync, rename) so a crash leaves either the old or the new record, never half of
 * one. Records say what nspod made and where; the *live status* of a process (running, exited
 * with a code) is never trusted from a record but read from the runtime and conmon's exit files.
 *
 * Layout under the root dir:
 *   pods/<podId>.json         PodRecord
 *   containers/<ctrId>.json   ContainerRecord
 *   names/<namespace>/<name>  the id of the pod that holds the name: made with O_EXCL, so two
 *                             pods of one name cannot both be made, without a global lock
 * The lock is `<runRoot>/nspod.lock` (a directory lock, safe across processes).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PodNetworkStatus } from '../network/cni/index.js';
import { randomBytes } from 'node:crypto';
import { withLockKey } from './lock.js';
import { hasErrno, notFound } from '../errors/index.js';
import type { PodSpec, ContainerSpec } from '../spec/types.js';

export interface NamespacePaths {
  net?: string;
  ipc?: string;
  uts?: string;
}

export interface SandboxRecord {
  /** the pause container's id (runtime id) */
  id: string;
  bundle: string;
  cgroupPath: string;
  /** the pod's parent cgroup path (relative to each hierarchy) */
  podCgroupPath: string;
  namespaces: NamespacePaths;
  /** tmpfs mounted for the pod's /dev/shm (absent with hostIPC) */
  shm?: string;
  files: { hosts: string; resolvConf: string; hostname: string };
  pid?: number;
  conmonPid?: number;
  exitFile: string;
  logPath: string;
  /** CNI attachments, port mappings and bandwidth (pods with their own network namespace) */
  network?: PodNetworkStatus;
}

export interface PodRecord {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  spec: PodSpec;
  createdAt: string;
  /** the pod dir under the root (records, files, logs) */
  dir: string;
  /** the pod's dir under the run root (pinned namespaces, shm) */
  runDir: string;
  sandbox: SandboxRecord;
  containerIds: string[];
  /**
   * Ids of containers whose creation began (recorded before anything of them is made): one with
   * no container record was cut short, and removal cleans up what it may have left.
   */
  creating?: string[];
  /** set once `stop` was asked for; the supervisor will not restart anything */
  stoppedAt?: string;
}

export interface ContainerRecord {
  id: string;
  podId: string;
  name: string;
  spec: ContainerSpec;
  image: { id: string; name: string };
  createdAt: string;
  startedAt?: string;
  bundle: string;
  rootfs: string;
  cgroupPath: string;
  logPath: string;
  exitFile: string;
  pid?: number;
  conmonPid?: number;
  /** the signal that stops it gracefully (image StopSignal, default SIGTERM) */
  stopSignal: string;
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

async function listJson<T>(dir: string): Promise<T[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return [];
    throw e;
  }
  const read = await Promise.all(
    names
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map((n) => readJson<T>(path.join(dir, n))),
  );
  return read.filter((r): r is Awaited<T> => r !== undefined) as T[];
}

export interface StateStore {
  pods(): Promise<PodRecord[]>;
  pod(id: string): Promise<PodRecord | undefined>;
  savePod(p: PodRecord): Promise<void>;
  deletePod(id: string): Promise<void>;
  containers(podId?: string): Promise<ContainerRecord[]>;
  container(id: string): Promise<ContainerRecord | undefined>;
  saveContainer(c: ContainerRecord): Promise<void>;
  deleteContainer(id: string): Promise<void>;
  /** Finds a pod by name (in a namespace, default `default`), id, or unique id prefix. */
  findPod(ref: string, namespace?: string): Promise<PodRecord>;
  /** Ids of the recorded pods (no record is read). */
  podIds(): Promise<string[]>;
  /**
   * Records that pod `id` holds `name` in `namespace`, unless a claim exists: resolves to the id
   * in that claim then (whether that pod still exists is the caller's to judge).
   */
  claimName(namespace: string, name: string, id: string): Promise<string | undefined>;
  /** Drops pod `id`'s claim on `name`; another pod's claim is left alone. Under the lock. */
  releaseName(namespace: string, name: string, id: string): Promise<void>;
  /** Runs fn while holding the mutation lock. */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
}

export function openState(opts: { root: string; runRoot: string }): StateStore {
  const podsDir = path.join(opts.root, 'pods');
  const ctrDir = path.join(opts.root, 'containers');
  const lockTarget = path.join(opts.runRoot, 'nspod');
  // One path component each, whatever the name ("." and ".." included).
  const component = (n: string) => encodeURIComponent(n).replace(/\./g, '%2E');
  const nameFile = (namespace: string, name: string) =>
    path.join(opts.root, 'names', component(namespace), component(name));
  const store: StateStore = {
    pods: () => listJson<PodRecord>(podsDir),
    pod: (id) => readJson<PodRecord>(path.join(podsDir, `${id}.json`)),
    savePod: (p) => writeJsonAtomic(path.join(podsDir, `${p.id}.json`), p),
    deletePod: (id) => fs.rm(path.join(podsDir, `${id}.json`), { force: true }),
    async containers(podId) {
      const all = await listJson<ContainerRecord>(ctrDir);
      return podId ? all.filter((c) => c.podId === podId) : all;
    },
    container: (id) => readJson<ContainerRecord>(path.join(ctrDir, `${id}.json`)),
    saveContainer: (c) => writeJsonAtomic(path.join(ctrDir, `${c.id}.json`), c),
    deleteContainer: (id) => fs.rm(path.join(ctrDir, `${id}.json`), { force: true }),
    async findPod(ref, namespace) {
      const pods = await store.pods();
      const byName = pods.filter((p) => p.name === ref && (namespace === undefined || p.namespace === namespace));
      if (byName.length === 1) return byName[0]!;
      if (byName.length > 1) {
        const def = byName.find((p) => p.namespace === 'default');
        if (def) return def;
      }
      const byId = ref.length >= 3 ? pods.filter((p) => p.id.startsWith(ref)) : [];
      if (byId.length === 1) return byId[0]!;
      throw notFound(`pod "${ref}" not found`);
    },
    async podIds() {
      try {
        return (await fs.readdir(podsDir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) return [];
        throw e;
      }
    },
    async claimName(namespace, name, id) {
      const file = nameFile(namespace, name);
      await fs.mkdir(path.dirname(file), { recursive: true });
      // Written whole beside it, then hard-linked into place: link() fails if the name exists,
      // so one creator wins, and nobody ever reads a claim half-written.
      const tmp = `${file}.tmp-${id}`;
      await fs.writeFile(tmp, id, { mode: 0o600 });
      try {
        await fs.link(tmp, file);
        return undefined;
      } catch (e) {
        if (!hasErrno(e, 'EEXIST')) throw e;
      } finally {
        await fs.rm(tmp, { force: true });
      }
      const holder = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
      return holder === id ? undefined : holder;
    },
    async releaseName(namespace, name, id) {
      const file = nameFile(namespace, name);
      const holder = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (holder?.trim() === id) await fs.rm(file, { force: true });
    },
    withLock: (fn) => withLockKey(lockTarget, fn),
  };
  return store;
}
