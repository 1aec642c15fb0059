/**
 * volume/: data that outlives pods.
 *
 * Vocabulary:
 * - a *named volume* is a directory `<root>/volumes/<name>/_data` with a record
 *   `<root>/volumes/<name>/volume.json`. Pods mount it through a `persistentVolumeClaim` whose
 *   claimName is the volume's name (created on first use, like `podman kube play`); it survives
 *   the pod and is removed only by `nspod volume rm|prune`.
 * - a *config object* is a ConfigMap or Secret stored by `nspod configmap|secret create`, kept per
 *   Kubernetes namespace under `<root>/config/<namespace>/{configmaps,secrets}/<name>.json`.
 *   Values are base64 of their bytes. Secrets are written 0600 in 0700 directories (root only).
 *
 * Lifecycle: create ▶ (pods use it) ▶ rm. Removing a named volume that a pod record still uses
 * is refused by the pod layer (it knows the pods); this layer only stores.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { alreadyExists, hasErrno, invalidArgument, notFound } from '../errors/index.js';
import { writeJsonAtomic } from '../state/index.js';
import type { ConfigObject } from '../spec/types.js';

export interface VolumeInfo {
  name: string;
  createdAt: string;
  labels: Record<string, string>;
  /** the directory pods mount */
  mountpoint: string;
}

export interface VolumeStore {
  create(name: string, o?: { labels?: Record<string, string>; ignoreExisting?: boolean }): Promise<VolumeInfo>;
  get(name: string): Promise<VolumeInfo | undefined>;
  inspect(name: string): Promise<VolumeInfo>;
  list(): Promise<VolumeInfo[]>;
  /** Removes the volume and its data; gone already = fine. */
  remove(name: string): Promise<void>;
  /** Where a volume's data is (whether or not it exists yet). */
  dataDir(name: string): string;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Volume, ConfigMap and Secret names: DNS-1123 subdomains, as Kubernetes object names. */
export function checkObjectName(name: string, what: string): void {
  if (name.length > 253 || !NAME_RE.test(name)) {
    throw invalidArgument(
      `${what}: ${JSON.stringify(name)} is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`,
    );
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export function openVolumeStore(opts: { root: string }): VolumeStore {
  const base = path.join(opts.root, 'volumes');
  const dir = (name: string) => path.join(base, name);
  const store: VolumeStore = {
    dataDir: (name) => path.join(dir(name), '_data'),
    async create(name, o = {}) {
      checkObjectName(name, 'volume name');
      const existing = await store.get(name);
      if (existing) {
        if (o.ignoreExisting) return existing;
        throw alreadyExists(`volume "${name}" already exists`);
      }
      await fs.mkdir(base, { recursive: true, mode: 0o700 });
      // Made under a temporary name and renamed, so a half-made volume is never seen.
      const tmp = path.join(base, `.tmp-${name}-${process.pid}-${Date.now()}`);
      await fs.mkdir(path.join(tmp, '_data'), { recursive: true, mode: 0o755 });
      const info: VolumeInfo = {
        name,
        createdAt: new Date().toISOString(),
        labels: o.labels ?? {},
        mountpoint: store.dataDir(name),
      };
      await writeJsonAtomic(path.join(tmp, 'volume.json'), info);
      try {
        await fs.rename(tmp, dir(name));
      } catch (e) {
        await fs.rm(tmp, { recursive: true, force: true });
        if (hasErrno(e, 'ENOTEMPTY') || hasErrno(e, 'EEXIST')) {
          if (o.ignoreExisting) return store.inspect(name);
          throw alreadyExists(`volume "${name}" already exists`);
        }
        throw e;
      }
      return info;
    },
    get: (name) => readJson<VolumeInfo>(path.join(dir(name), 'volume.json')),
    async inspect(name) {
      const v = await store.get(name);
      if (!v) throw notFound(`volume "${name}" not found`);
      return v;
    },
    async list() {
      let names: string[];
      try {
        names = await fs.readdir(base);
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) return [];
        throw e;
      }
      const out: VolumeInfo[] = [];
      for (const n of names.filter((n) => !n.startsWith('.')).sort()) {
        const v = await store.get(n);
        if (v) out.push(v);
      }
      return out;
    },
    async remove(name) {
      checkObjectName(name, 'volume name');
      // Renamed away first, so a crash half-way leaves no half-removed volume under its name.
      const gone = path.join(base, `.rm-${name}-${process.pid}-${Date.now()}`);
      try {
        await fs.rename(dir(name), gone);
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) return;
        throw e;
      }
      await fs.rm(gone, { recursive: true, force: true });
    },
  };
  return store;
}

export type ConfigKind = 'ConfigMap' | 'Secret';

export interface StoredConfigObject extends ConfigObject {
  createdAt: string;
}

export interface ConfigObjectStore {
  create(obj: ConfigObject): Promise<StoredConfigObject>;
  get(kind: ConfigKind, namespace: string, name: string): Promise<StoredConfigObject | undefined>;
  list(kind: ConfigKind, namespace?: string): Promise<StoredConfigObject[]>;
  /** NOT_FOUND when absent */
  remove(kind: ConfigKind, namespace: string, name: string): Promise<void>;
}

const kindDir = (kind: ConfigKind) => (kind === 'ConfigMap' ? 'configmaps' : 'secrets');

export function openConfigObjectStore(opts: { root: string }): ConfigObjectStore {
  const base = path.join(opts.root, 'config');
  const file = (kind: ConfigKind, ns: string, name: string) => path.join(base, ns, kindDir(kind), `${name}.json`);
  const store: ConfigObjectStore = {
    async create(obj) {
      checkObjectName(obj.name, `${obj.kind === 'ConfigMap' ? 'configmap' : 'secret'} name`);
      checkObjectName(obj.namespace, 'namespace');
      const f = file(obj.kind, obj.namespace, obj.name);
      // 0700 dirs and 0600 files: root only (secrets, and configmaps alike: cheap and safe)
      await fs.mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
      const rec: StoredConfigObject = { ...obj, createdAt: new Date().toISOString() };
      const tmp = `${f}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
      const fh = await fs.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(rec, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        // link() fails on an existing name: no silent overwrite, no window without the file
        await fs.link(tmp, f);
      } catch (e) {
        if (hasErrno(e, 'EEXIST')) {
          throw alreadyExists(`${obj.kind.toLowerCase()} "${obj.name}" already exists in namespace "${obj.namespace}"`);
        }
        throw e;
      } finally {
        await fs.rm(tmp, { force: true });
      }
      return rec;
    },
    get: (kind, ns, name) => readJson<StoredConfigObject>(file(kind, ns, name)),
    async list(kind, namespace) {
      let namespaces: string[];
      try {
        namespaces = namespace !== undefined ? [namespace] : (await fs.readdir(base)).sort();
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) return [];
        throw e;
      }
      const out: StoredConfigObject[] = [];
      for (const ns of namespaces) {
        let names: string[] = [];
        try {
          names = await fs.readdir(path.join(base, ns, kindDir(kind)));
        } catch (e) {
          if (!hasErrno(e, 'ENOENT')) throw e;
        }
        for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
          const o = await readJson<StoredConfigObject>(path.join(base, ns, kindDir(kind), n));
          if (o) out.push(o);
        }
      }
      return out;
    },
    async remove(kind, ns, name) {
      try {
        await fs.unlink(file(kind, ns, name));
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) throw notFound(`${kind.toLowerCase()} "${name}" not found in namespace "${ns}"`);
        throw e;
      }
    },
  };
  return store;
}
