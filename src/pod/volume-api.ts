/**
 * The Runtime API's part for named volumes and stored ConfigMaps/Secrets. Mutations run under the
 * state lock, so a volume cannot be removed while a pod that uses it is being made.
 */
import type { Context } from './context.js';
import type { ConfigKind, StoredConfigObject, VolumeInfo } from '../volume/index.js';
import { checkObjectName } from '../volume/index.js';
import { checkConfigKey } from '../spec/kube-volumes.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors/index.js';
import { volumeStores } from './volumes.js';

export interface VolumeStatus extends VolumeInfo {
  /** pods (namespace/name) whose spec mounts it */
  usedBy: string[];
}

export interface ConfigObjectSummary {
  kind: ConfigKind;
  name: string;
  namespace: string;
  createdAt: string;
  keys: string[];
  /** bytes per key */
  sizes: Record<string, number>;
}

function summary(o: StoredConfigObject): ConfigObjectSummary {
  return {
    kind: o.kind,
    name: o.name,
    namespace: o.namespace,
    createdAt: o.createdAt,
    keys: Object.keys(o.data),
    sizes: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, Buffer.from(v, 'base64').length])),
  };
}

export function volumeApi(ctx: Context) {
  const { volumes, configs } = volumeStores(ctx);
  const state = ctx.state;

  async function users(): Promise<Map<string, string[]>> {
    const m = new Map<string, string[]>();
    for (const p of await state.pods()) {
      for (const v of p.spec.volumes ?? []) {
        if (!('persistentVolumeClaim' in v.source)) continue;
        const n = v.source.persistentVolumeClaim.claimName;
        m.set(n, [...(m.get(n) ?? []), `${p.namespace}/${p.name}`]);
      }
    }
    return m;
  }

  return {
    /** Creates an empty named volume. */
    async createVolume(name: string, o: { labels?: Record<string, string> } = {}): Promise<VolumeInfo> {
      return state.withLock(() => volumes.create(name, o));
    },
    async listVolumes(): Promise<VolumeStatus[]> {
      const u = await users();
      return (await volumes.list()).map((v) => ({ ...v, usedBy: u.get(v.name) ?? [] }));
    },
    async inspectVolume(name: string): Promise<VolumeStatus> {
      const v = await volumes.inspect(name);
      return { ...v, usedBy: (await users()).get(name) ?? [] };
    },
    /** Removes a named volume and its data; refused while a pod uses it. */
    async removeVolume(name: string): Promise<void> {
      await state.withLock(async () => {
        await volumes.inspect(name);
        const by = (await users()).get(name) ?? [];
        if (by.length > 0)
          throw failedPrecondition(`volume "${name}" is used by pod ${by.join(', ')}: remove the pod first`);
        await volumes.remove(name);
      });
    },
    /** Removes every named volume no pod uses; returns their names. */
    async pruneVolumes(): Promise<string[]> {
      return state.withLock(async () => {
        const u = await users();
        const gone: string[] = [];
        for (const v of await volumes.list()) {
          if (u.has(v.name)) continue;
          await volumes.remove(v.name);
          gone.push(v.name);
        }
        return gone;
      });
    },
    /** Stores a ConfigMap or Secret (values as bytes). */
    async createConfigObject(o: {
      kind: ConfigKind;
      name: string;
      namespace?: string;
      data: Record<string, Buffer>;
    }): Promise<ConfigObjectSummary> {
      const what = o.kind === 'ConfigMap' ? 'configmap' : 'secret';
      checkObjectName(o.name, `${what} name`);
      for (const k of Object.keys(o.data)) checkConfigKey(k, `${what} key`);
      if (Object.keys(o.data).length === 0)
        throw invalidArgument(`${what} "${o.name}": no data (use --from-literal, --from-file or --from-env-file)`);
      const data = Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, v.toString('base64')]));
      return summary(await configs.create({ kind: o.kind, name: o.name, namespace: o.namespace ?? 'default', data }));
    },
    async listConfigObjects(kind: ConfigKind, namespace?: string): Promise<ConfigObjectSummary[]> {
      return (await configs.list(kind, namespace)).map(summary);
    },
    /** A stored object with its values (decoded to text); secrets only when `reveal`. */
    async inspectConfigObject(
      kind: ConfigKind,
      name: string,
      o: { namespace?: string; reveal?: boolean } = {},
    ): Promise<ConfigObjectSummary & { data?: Record<string, string> }> {
      const ns = o.namespace ?? 'default';
      const obj = await configs.get(kind, ns, name);
      if (!obj) throw notFound(`${kind.toLowerCase()} "${name}" not found in namespace "${ns}"`);
      const show = kind === 'ConfigMap' || o.reveal === true;
      return {
        ...summary(obj),
        ...(show
          ? {
              data: Object.fromEntries(
                Object.entries(obj.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
              ),
            }
          : {}),
      };
    },
    async removeConfigObject(kind: ConfigKind, name: string, o: { namespace?: string } = {}): Promise<void> {
      await configs.remove(kind, o.namespace ?? 'default', name);
    },
  };
}
