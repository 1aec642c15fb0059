/**
 * A pod's volumes: checked before anything is made, set up with the sandbox, mounted into each
 * container, torn down with the pod.
 *
 *   checkPodVolumes  every ConfigMap/Secret (and key) that volumes and env name exists, every
 *                    hostPath has its type: all bad input is refused before the first step
 *   setupVolumes     emptyDir (a dir under the pod dir, or a tmpfs under the run dir for
 *                    `medium: Memory`, `size=` its sizeLimit), configMap (files under the pod dir),
 *                    secret (files on a tmpfs under the run dir: never on disk, never in a rootfs),
 *                    downwardAPI (pod fields and container resources as files under the pod dir),
 *                    hostPath (…OrCreate types made), persistentVolumeClaim (named volume, made
 *                    on first use)
 *   containerMounts  a container's volumeMounts → OCI bind mounts (ro, subPath resolved inside the
 *                    volume, propagation rprivate / rslave / rshared)
 *   teardownVolumes  unmount and remove everything under the pod's volume dirs (idempotent, so it
 *                    also cleans up after a creation cut short); named volumes and hostPaths stay
 */
import { promises as fs, constants as fsConstants } from 'node:fs';
import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Context } from './context.js';
import type { Rollback } from './rollback.js';
import type { Host } from '../host/index.js';
import type { PodRecord } from '../state/index.js';
import type { ConfigObject, ContainerSpec, KeyToPath, PodSpec, VolumeSpec } from '../spec/types.js';
import type { OciMount } from '../oci/index.js';
import { openConfigObjectStore, openVolumeStore } from '../volume/index.js';
import type { ConfigObjectStore, VolumeStore } from '../volume/index.js';
import { mountsUnder, unmountIfMounted } from '../network/index.js';
import { resolveDirInside, UnsafeEntryError } from '../storage/safe-path.js';
import { failedPrecondition, hasErrno, invalidArgument, notFound } from '../errors/index.js';
import { configLookup, downwardFieldValue, podFacts, resolveContainer, resourceValue } from './env.js';
import type { ConfigLookup, PodFacts } from './env.js';

export interface VolumeStores {
  volumes: VolumeStore;
  configs: ConfigObjectStore;
}

export function volumeStores(ctx: Pick<Context, 'config'>): VolumeStores {
  return {
    volumes: openVolumeStore({ root: ctx.config.root }),
    configs: openConfigObjectStore({ root: ctx.config.root }),
  };
}

/** A file a configMap/secret volume will hold: path relative to the volume, bytes, mode. */
interface ProjectedFile {
  path: string;
  data: Buffer;
  mode: number;
}

interface PlannedVolume {
  vol: VolumeSpec;
  field: string;
  /** for configMap and secret volumes */
  files?: ProjectedFile[];
}

const podVolumeDir = (pod: Pick<PodRecord, 'dir'>) => path.join(pod.dir, 'volumes');
const runVolumeDir = (pod: Pick<PodRecord, 'runDir'>) => path.join(pod.runDir, 'volumes');

/** The host path a pod volume lives at (whether or not it has been set up). */
export function volumeHostPath(stores: VolumeStores, pod: Pick<PodRecord, 'dir' | 'runDir'>, vol: VolumeSpec): string {
  const s = vol.source;
  if ('emptyDir' in s)
    return path.join(s.emptyDir.medium === 'Memory' ? runVolumeDir(pod) : podVolumeDir(pod), 'empty-dir', vol.name);
  if ('configMap' in s) return path.join(podVolumeDir(pod), 'configmap', vol.name);
  if ('secret' in s) return path.join(runVolumeDir(pod), 'secret', vol.name);
  if ('hostPath' in s) return s.hostPath.path;
  if ('downwardAPI' in s) return path.join(podVolumeDir(pod), 'downward-api', vol.name);
  return stores.volumes.dataDir(s.persistentVolumeClaim.claimName);
}

function describeType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a file';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a fifo';
  return 'something else';
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/** Checks a hostPath as kubelet does for its type (symlinks followed). */
async function checkHostPath(p: string, type: string, field: string): Promise<void> {
  if (type === '') return;
  const st = await statOrUndefined(p);
  const want: Record<string, [(s: Stats) => boolean, string]> = {
    Directory: [(s) => s.isDirectory(), 'a directory'],
    DirectoryOrCreate: [(s) => s.isDirectory(), 'a directory'],
    File: [(s) => s.isFile(), 'a file'],
    FileOrCreate: [(s) => s.isFile(), 'a file'],
    Socket: [(s) => s.isSocket(), 'a socket'],
    CharDevice: [(s) => s.isCharacterDevice(), 'a character device'],
    BlockDevice: [(s) => s.isBlockDevice(), 'a block device'],
  };
  const [ok, what] = want[type]!;
  if (!st) {
    if (type === 'DirectoryOrCreate') return;
    if (type === 'FileOrCreate') {
      const parent = await statOrUndefined(path.dirname(p));
      if (!parent?.isDirectory())
        throw invalidArgument(
          `${field}: parent directory of ${JSON.stringify(p)} does not exist (FileOrCreate does not create it)`,
        );
      return;
    }
    throw invalidArgument(`${field}: ${JSON.stringify(p)} does not exist (type ${type} wants ${what})`);
  }
  if (!ok(st))
    throw invalidArgument(`${field}: ${JSON.stringify(p)} is ${describeType(st)}, not ${what} (type ${type})`);
}

/** The files of a configMap/secret volume, or an error naming the missing object or key. */
async function projectFiles(
  vol: VolumeSpec,
  field: string,
  lookup: ConfigLookup,
  namespace: string,
): Promise<ProjectedFile[]> {
  const s = vol.source;
  const src =
    'configMap' in s
      ? { kind: 'ConfigMap' as const, key: 'configMap', nameField: 'name', ...s.configMap }
      : 'secret' in s
        ? { kind: 'Secret' as const, key: 'secret', nameField: 'secretName', name: s.secret.secretName, ...s.secret }
        : undefined;
  if (!src) return [];
  const f = `${field}.${src.key}`;
  const obj: ConfigObject | undefined = await lookup(src.kind, src.name);
  const what = src.kind.toLowerCase();
  if (!obj) {
    if (src.optional) return [];
    throw notFound(
      `${f}.${src.nameField}: ${what} ${JSON.stringify(src.name)} not found in namespace ${JSON.stringify(namespace)}`,
    );
  }
  const items: KeyToPath[] = src.items ?? Object.keys(obj.data).map((k) => ({ key: k, path: k }));
  const files: ProjectedFile[] = [];
  for (const [j, it] of items.entries()) {
    const b64 = obj.data[it.key];
    if (b64 === undefined) {
      if (src.optional) continue;
      throw notFound(`${f}.items[${j}].key: ${what} ${JSON.stringify(src.name)} has no key ${JSON.stringify(it.key)}`);
    }
    files.push({ path: it.path, data: Buffer.from(b64, 'base64'), mode: it.mode ?? src.defaultMode });
  }
  return files;
}

/** The files of a downwardAPI volume. */
function downwardFiles(vol: VolumeSpec, field: string, spec: PodSpec, facts: PodFacts): ProjectedFile[] {
  const s = vol.source;
  if (!('downwardAPI' in s)) return [];
  return s.downwardAPI.items.map((it, j) => {
    const where = `${field}.downwardAPI.items[${j}]`;
    let value: string;
    if (it.fieldRef) value = downwardFieldValue(it.fieldRef.fieldPath, facts, `${where}.fieldRef`);
    else {
      const ref = it.resourceFieldRef!;
      const c = spec.containers.find((x) => x.name === ref.containerName);
      if (!c)
        throw invalidArgument(
          `${where}.resourceFieldRef.containerName: no container named ${JSON.stringify(ref.containerName)}`,
        );
      value = resourceValue(c, ref.resource, ref.divisor);
    }
    return { path: it.path, data: Buffer.from(value, 'utf8'), mode: it.mode ?? s.downwardAPI.defaultMode };
  });
}

/**
 * Checks everything about a pod's volumes and environment that depends on the host and the
 * stores, before anything is made. Throws the first problem naming its field. `uid`: the pod's,
 * once known (downwardAPI files hold it).
 */
export async function checkPodVolumes(
  ctx: Pick<Context, 'config'>,
  spec: PodSpec,
  uid = spec.uid ?? '',
): Promise<PlannedVolume[]> {
  const stores = volumeStores(ctx);
  const lookup = configLookup(spec, stores.configs);
  const facts = podFacts({ spec, uid });
  const planned: PlannedVolume[] = [];
  for (const [i, vol] of (spec.volumes ?? []).entries()) {
    const field = `spec.volumes[${i}]`;
    const s = vol.source;
    const p: PlannedVolume = { vol, field };
    if ('hostPath' in s) await checkHostPath(s.hostPath.path, s.hostPath.type, `${field}.hostPath.path`);
    if ('configMap' in s || 'secret' in s) p.files = await projectFiles(vol, field, lookup, spec.namespace);
    if ('downwardAPI' in s) p.files = downwardFiles(vol, field, spec, facts);
    if ('persistentVolumeClaim' in s) {
      const dir = stores.volumes.dataDir(s.persistentVolumeClaim.claimName);
      const st = await statOrUndefined(path.dirname(dir));
      if (st && !(await stores.volumes.get(s.persistentVolumeClaim.claimName))) {
        throw failedPrecondition(`${field}.persistentVolumeClaim.claimName: ${dir} exists but is not a volume`);
      }
    }
    planned.push(p);
  }
  // Env references are checked here too: a missing key fails the pod before anything is made.
  for (const [i, c] of spec.containers.entries()) {
    await resolveContainer({ pod: spec, container: c, path: `spec.containers[${i}]`, facts, lookup });
  }
  return planned;
}

/** tmpfs size for a memory emptyDir: its sizeLimit, else the pod's memory limit when every container has one. */
function memorySize(spec: PodSpec, vol: VolumeSpec): number | undefined {
  const s = vol.source;
  if (!('emptyDir' in s)) return undefined;
  if (s.emptyDir.sizeLimitBytes !== undefined) return s.emptyDir.sizeLimitBytes;
  const limits = spec.containers.map((c) => c.resources.limits.memoryBytes);
  return limits.every((l): l is number => l !== undefined) && limits.length > 0
    ? limits.reduce((a, b) => a + b, 0)
    : undefined;
}

async function mountTmpfs(host: Host, dir: string, opts: string[]): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await host.run('mount', ['-t', 'tmpfs', '-o', ['nosuid', 'nodev', ...opts].join(','), 'tmpfs', dir]);
}

async function writeFiles(root: string, files: ProjectedFile[]): Promise<void> {
  for (const f of files) {
    const target = path.join(root, f.path);
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await fs.writeFile(target, f.data, { mode: f.mode, flag: 'wx' });
    await fs.chmod(target, f.mode); // the umask must not change the asked-for mode
  }
}

/** Unmounts and removes everything under the pod's volume dirs. Idempotent. */
export async function teardownVolumes(host: Host, pod: Pick<PodRecord, 'dir' | 'runDir'>): Promise<void> {
  for (const dir of [runVolumeDir(pod), podVolumeDir(pod)]) {
    for (const m of (await mountsUnder(dir)).reverse()) await unmountIfMounted(host, m);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Makes the pod's volumes (see the module comment); pushes undos onto `rb`. */
export async function setupVolumes(ctx: Context, pod: PodRecord, rb: Rollback): Promise<void> {
  const spec = pod.spec;
  if (!spec.volumes || spec.volumes.length === 0) return;
  const planned = await checkPodVolumes(ctx, spec, pod.uid); // again: the stores may have changed since
  const stores = volumeStores(ctx);
  rb.push(`remove volumes of pod "${spec.name}"`, () => teardownVolumes(ctx.host, pod));
  // Each volume is its own dir or mount: they are made together (a tmpfs mount is a child
  // process), all settled before the first failure is thrown so the rollback sees every one.
  // Named volumes are made one after another: two volumes may claim the same one.
  const named = planned.filter(({ vol }) => 'persistentVolumeClaim' in vol.source);
  const others = planned.filter(({ vol }) => !('persistentVolumeClaim' in vol.source));
  const made = await Promise.allSettled([
    ...others.map((p) => setupVolume(p)),
    (async () => {
      for (const p of named) await setupVolume(p);
    })(),
  ]);
  const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  async function setupVolume({ vol, files }: (typeof planned)[number]): Promise<void> {
    const s = vol.source;
    const dir = volumeHostPath(stores, pod, vol);
    if ('emptyDir' in s) {
      if (s.emptyDir.medium === 'Memory') {
        const size = memorySize(spec, vol);
        await mountTmpfs(ctx.host, dir, ['mode=0777', ...(size !== undefined ? [`size=${size}`] : [])]);
      } else {
        await fs.mkdir(dir, { recursive: true });
        await fs.chmod(dir, 0o777); // as kubelet: every container user may write
      }
    } else if ('configMap' in s || 'downwardAPI' in s) {
      await fs.mkdir(dir, { recursive: true, mode: 0o755 });
      await writeFiles(dir, files ?? []);
    } else if ('secret' in s) {
      await mountTmpfs(ctx.host, dir, ['mode=0755']);
      await writeFiles(dir, files ?? []);
    } else if ('hostPath' in s) {
      const { type } = s.hostPath;
      if ((type === 'DirectoryOrCreate' || type === 'FileOrCreate') && !(await statOrUndefined(dir))) {
        if (type === 'DirectoryOrCreate') {
          const first = await fs.mkdir(dir, { recursive: true, mode: 0o755 });
          await fs.chmod(dir, 0o755);
          if (first) rb.push(`remove ${first}`, () => fs.rm(first, { recursive: true, force: true }));
        } else {
          await fs.writeFile(dir, '', { mode: 0o644, flag: 'wx' });
          await fs.chmod(dir, 0o644);
          rb.push(`remove ${dir}`, () => fs.rm(dir, { force: true }));
        }
      }
    } else {
      const name = s.persistentVolumeClaim.claimName;
      if (!(await stores.volumes.get(name))) {
        await stores.volumes.create(name, { labels: { 'nspod.io/created-by': `pod/${spec.namespace}/${spec.name}` } });
        rb.push(`remove volume "${name}" made for the pod`, () => stores.volumes.remove(name));
      }
    }
  }
}

const MAX_LINKS = 40;

/** The host path of `subPath` inside `root`, made as a directory when missing (if `create`). */
export async function resolveSubPath(root: string, subPath: string, create: boolean, depth = 0): Promise<string> {
  const parts = subPath.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.length === 0) return root;
  const parent = await resolveDirInside(root, parts.slice(0, -1), { create });
  const target = path.join(parent, parts[parts.length - 1]!);
  let st: Stats;
  try {
    st = await fs.lstat(target);
  } catch (e) {
    if (!hasErrno(e, 'ENOENT') || !create) throw e;
    await fs.mkdir(target, { mode: 0o755 });
    return target;
  }
  if (!st.isSymbolicLink()) return target;
  if (depth >= MAX_LINKS) throw new UnsafeEntryError('has too many levels of symlinks');
  const link = await fs.readlink(target);
  const rel = path.relative(root, path.resolve(parent, link));
  if (link.startsWith('/') || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) {
    throw new UnsafeEntryError(`is a symlink to "${link}" that leaves the volume`);
  }
  return resolveSubPath(root, rel, create, depth + 1);
}

/** Linux O_PATH: an fd that names an inode without opening it (no side effects on fifos or devices). */
const O_PATH = 0o10000000;

/**
 * Opens `rel` (symlink-free, from resolveSubPath) under `root` one component at a time without
 * following symlinks, so that a container swapping a directory for a symlink after the check
 * cannot make nspod mount something outside the volume. Returns an O_PATH handle.
 */
async function openInside(root: string, rel: string): Promise<fs.FileHandle> {
  const flags = O_PATH | fsConstants.O_NOFOLLOW;
  let fh = await fs.open(root, flags | fsConstants.O_DIRECTORY);
  try {
    for (const part of rel.split('/').filter((x) => x !== '' && x !== '.')) {
      const next = await fs.open(`/proc/self/fd/${fh.fd}/${part}`, flags);
      await fh.close();
      fh = next;
      if ((await fh.stat()).isSymbolicLink()) throw new UnsafeEntryError(`was changed to a symlink at "${part}"`);
    }
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Bind-mounts `rel` inside `root` at a private host path under the pod's run dir, through an fd
 * opened without following symlinks (as kubelet does), and returns that path for config.json.
 */
async function bindSubPath(ctx: Context, pod: PodRecord, root: string, rel: string, name: string): Promise<string> {
  const fh = await openInside(root, rel);
  try {
    const st = await fh.stat();
    if (!st.isDirectory() && !st.isFile()) throw new UnsafeEntryError('is neither a file nor a directory');
    const target = path.join(runVolumeDir(pod), 'subpath', name);
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    if (st.isDirectory()) await fs.mkdir(target, { mode: 0o755 });
    else await fs.writeFile(target, '', { flag: 'wx', mode: 0o600 });
    // --no-canonicalize: mount(2) then follows the fd's magic link to the very inode opened
    await ctx.host.run('mount', ['--no-canonicalize', '--bind', `/proc/${process.pid}/fd/${fh.fd}`, target]);
    return target;
  } finally {
    await fh.close();
  }
}

const PROPAGATION = { None: 'rprivate', HostToContainer: 'rslave', Bidirectional: 'rshared' } as const;

export interface PreparedContainer {
  /** env resolved, `$(VAR)` expanded in command and args */
  spec: ContainerSpec;
  mounts: OciMount[];
  /** set when a mount needs slave or shared propagation */
  rootfsPropagation?: string;
}

/** Resolves a container's env and turns its volumeMounts into OCI mounts. */
export async function prepareContainer(
  ctx: Context,
  pod: PodRecord,
  c: ContainerSpec,
  warn: (msg: string) => void,
  rb?: Rollback,
): Promise<PreparedContainer> {
  const stores = volumeStores(ctx);
  const index = pod.spec.containers.findIndex((x) => x.name === c.name);
  const cp = index >= 0 ? `spec.containers[${index}]` : `container ${JSON.stringify(c.name)}`;
  const spec = await resolveContainer({
    pod: pod.spec,
    container: c,
    path: cp,
    facts: podFacts({
      spec: pod.spec,
      uid: pod.uid,
      // the sandbox's networks are attached before any container is made
      podIPs: (pod.sandbox.network?.attachments ?? []).flatMap((a) => (a.ip ? [a.ip] : [])),
    }),
    lookup: configLookup(pod.spec, stores.configs),
    warn,
  });
  const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts: Array<OciMount & { destination: string }> = [];
  let rootfsPropagation: string | undefined;
  const tag = randomBytes(4).toString('hex'); // a container may be created again under its name
  for (const [j, vm] of (c.volumeMounts ?? []).entries()) {
    const field = `${cp}.volumeMounts[${j}]`;
    const vol = volumes.get(vm.name);
    if (!vol) throw invalidArgument(`${field}.name: no volume named ${JSON.stringify(vm.name)}`);
    const s = vol.source;
    const projected = 'configMap' in s || 'secret' in s || 'downwardAPI' in s;
    let source = volumeHostPath(stores, pod, vol);
    if (vm.subPath !== undefined) {
      try {
        const root = source;
        const resolved = await resolveSubPath(root, vm.subPath, !projected);
        const bound = await bindSubPath(ctx, pod, root, path.relative(root, resolved), `${c.name}-${tag}-${j}`);
        rb?.push(`unmount ${bound}`, async () => {
          await unmountIfMounted(ctx.host, bound);
          await fs.rm(bound, { recursive: true, force: true });
        });
        source = bound;
      } catch (e) {
        if (e instanceof UnsafeEntryError)
          throw invalidArgument(
            `${field}.subPath: ${JSON.stringify(vm.subPath)} ${e.detail.replace('layer root', 'volume')}`,
          );
        if (hasErrno(e, 'ENOENT'))
          throw invalidArgument(
            `${field}.subPath: ${JSON.stringify(vm.subPath)} does not exist in volume "${vm.name}"`,
          );
        throw e;
      }
    }
    const ro = vm.readOnly || projected || ('persistentVolumeClaim' in s && s.persistentVolumeClaim.readOnly);
    const prop = PROPAGATION[vm.propagation];
    if (prop === 'rshared') rootfsPropagation = 'rshared';
    else if (prop === 'rslave' && rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
    mounts.push({ destination: vm.mountPath, type: 'bind', source, options: ['rbind', prop, ...(ro ? ['ro'] : [])] });
  }
  // Parents before children, whatever order the YAML lists them in.
  mounts.sort((a, b) => a.destination.split('/').length - b.destination.split('/').length);
  return { spec, mounts, ...(rootfsPropagation ? { rootfsPropagation } : {}) };
}

/** One row of `inspect pod`'s volume table. */
export interface VolumeRow {
  name: string;
  /** emptyDir, emptyDir (Memory), hostPath, configMap, secret, persistentVolumeClaim */
  type: string;
  /** the object or path it comes from (ConfigMap/Secret/claim name, hostPath path) */
  source: string;
  /** where it is on the host */
  hostPath: string;
  /** `container:/mount/path` (+ ` (ro)`, ` subPath=…`) for every mount of it */
  mounts: string[];
}

export function describeVolumes(stores: VolumeStores, pod: Pick<PodRecord, 'dir' | 'runDir' | 'spec'>): VolumeRow[] {
  return (pod.spec.volumes ?? []).map((vol) => {
    const s = vol.source;
    const [type, source] =
      'emptyDir' in s
        ? [s.emptyDir.medium === 'Memory' ? 'emptyDir (Memory)' : 'emptyDir', '']
        : 'hostPath' in s
          ? ['hostPath', s.hostPath.type ? `${s.hostPath.path} (${s.hostPath.type})` : s.hostPath.path]
          : 'configMap' in s
            ? ['configMap', s.configMap.name]
            : 'secret' in s
              ? ['secret', s.secret.secretName]
              : 'downwardAPI' in s
                ? ['downwardAPI', '']
                : ['persistentVolumeClaim', s.persistentVolumeClaim.claimName];
    const ro =
      'configMap' in s ||
      'secret' in s ||
      'downwardAPI' in s ||
      ('persistentVolumeClaim' in s && s.persistentVolumeClaim.readOnly);
    const mounts = pod.spec.containers.flatMap((c) =>
      (c.volumeMounts ?? [])
        .filter((m) => m.name === vol.name)
        .map(
          (m) =>
            `${c.name}:${m.mountPath}${m.readOnly || ro ? ' (ro)' : ''}${m.subPath ? ` subPath=${m.subPath}` : ''}`,
        ),
    );
    return { name: vol.name, type, source, hostPath: volumeHostPath(stores, pod, vol), mounts };
  });
}
