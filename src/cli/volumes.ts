/** Named volume, ConfigMap and Secret commands. They print; the Runtime does. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import type { ConfigKind } from '../volume/index.js';
import { hasErrno, invalidArgument, notFound } from '../errors/index.js';
import { age, bytes, parseFormat, render, table } from './format.js';
import { examples } from './util.js';

type Open = () => Promise<Runtime>;

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function keyValue(flag: string, v: string): [string, string] {
  const i = v.indexOf('=');
  if (i <= 0) throw invalidArgument(`${flag}: expected KEY=VALUE, got ${JSON.stringify(v)}`);
  return [v.slice(0, i), v.slice(i + 1)];
}

/**
 * --from-literal k=v, --from-file [k=]path (a directory: each regular file in it) and
 * --from-env-file path (KEY=VALUE lines; blank lines and # comments skipped) → key → bytes.
 */
export async function readSources(
  literals: string[],
  files: string[],
  envFiles: string[] = [],
): Promise<Record<string, Buffer>> {
  const data: Record<string, Buffer> = {};
  const put = (flag: string, k: string, v: Buffer) => {
    if (k in data) throw invalidArgument(`${flag}: key ${JSON.stringify(k)} given twice`);
    data[k] = v;
  };
  for (const l of literals) {
    const [k, v] = keyValue('--from-literal', l);
    put('--from-literal', k, Buffer.from(v, 'utf8'));
  }
  for (const f of files) {
    const i = f.indexOf('=');
    const [key, file] = i > 0 ? [f.slice(0, i), f.slice(i + 1)] : [undefined, f];
    let st;
    try {
      st = await fs.stat(file);
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) throw notFound(`--from-file: ${file}: no such file or directory`);
      throw e;
    }
    if (st.isDirectory()) {
      if (key !== undefined) throw invalidArgument(`--from-file: ${file} is a directory: a key cannot be given`);
      for (const e of (await fs.readdir(file, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
        if (e.isFile()) put('--from-file', e.name, await fs.readFile(path.join(file, e.name)));
      }
    } else put('--from-file', key ?? path.basename(file), await fs.readFile(file));
  }
  for (const f of envFiles) {
    let text: string;
    try {
      text = await fs.readFile(f, 'utf8');
    } catch (e) {
      if (hasErrno(e, 'ENOENT')) throw notFound(`--from-env-file: ${f}: no such file`);
      throw e;
    }
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/\r$/, '').trimStart();
      if (line === '' || line.startsWith('#')) return;
      const eq = line.indexOf('=');
      if (eq <= 0)
        throw invalidArgument(`--from-env-file: ${f}:${i + 1}: expected KEY=VALUE, got ${JSON.stringify(line)}`);
      put('--from-env-file', line.slice(0, eq), Buffer.from(line.slice(eq + 1), 'utf8'));
    });
  }
  return data;
}

function registerConfigKind(program: Command, open: Open, kind: ConfigKind): void {
  const word = kind === 'ConfigMap' ? 'configmap' : 'secret';
  const cmd = program
    .command(word)
    .description(
      kind === 'ConfigMap'
        ? 'store ConfigMaps that pods use for env and configMap volumes'
        : 'store Secrets (root-only on disk, tmpfs in pods) that pods use for env and secret volumes',
    );
  cmd
    .command('create')
    .argument('<name>', kind === 'Secret' ? 'secret name (or "generic" then the name, as kubectl)' : 'configmap name')
    .argument('[name2]')
    .option('--from-literal <key=value>', 'a key and its value (repeatable)', collect, [])
    .option('--from-file <[key=]path>', 'a file (key: its name) or a directory of files (repeatable)', collect, [])
    .option('--from-env-file <path>', 'KEY=VALUE lines, one key each (repeatable)', collect, [])
    .option('-n, --namespace <ns>', 'Kubernetes namespace', 'default')
    .description(`store a ${kind}`)
    .addHelpText(
      'after',
      examples(
        `nspod ${word} create ${kind === 'Secret' ? 'db --from-literal password=s3cret' : 'app --from-literal mode=prod --from-file nginx.conf'}`,
        `nspod ${word} create ${kind === 'Secret' ? 'generic tls --from-file tls.key=./key.pem' : 'web --from-file ./conf.d/'}`,
      ),
    )
    .action(
      async (
        first: string,
        second: string | undefined,
        o: { fromLiteral: string[]; fromFile: string[]; fromEnvFile: string[]; namespace: string },
      ) => {
        let name = first;
        if (second !== undefined) {
          if (kind !== 'Secret' || first !== 'generic')
            throw invalidArgument(`${word} create: expected one name, got "${first}" and "${second}"`);
          name = second;
        }
        const data = await readSources(o.fromLiteral, o.fromFile, o.fromEnvFile);
        const rt = await open();
        const s = await rt.createConfigObject({ kind, name, namespace: o.namespace, data });
        console.log(`${word}/${s.name} created (${s.keys.length} key${s.keys.length === 1 ? '' : 's'})`);
      },
    );
  cmd
    .command('ls')
    .option('-n, --namespace <ns>', 'only this namespace (default: all)')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .description(`list stored ${kind}s`)
    .addHelpText('after', examples(`nspod ${word} ls`, `nspod ${word} ls -n kube-system -o json`))
    .action(async (o: { namespace?: string; output: string }) => {
      const fmt = parseFormat(o.output);
      const list = await (await open()).listConfigObjects(kind, o.namespace);
      if (fmt !== 'table') return console.log(render(fmt, list));
      console.log(
        table(
          ['NAME', 'NAMESPACE', 'KEYS', 'AGE'],
          list.map((x) => [x.name, x.namespace, x.keys.length, age(x.createdAt)]),
        ),
      );
    });
  const inspect = cmd.command('inspect');
  if (kind === 'Secret') inspect.option('--reveal', 'print the values too');
  inspect
    .argument('<name>')
    .option('-n, --namespace <ns>', 'Kubernetes namespace', 'default')
    .option('-o, --output <format>', 'json or yaml', 'yaml')
    .description(kind === 'Secret' ? 'show a Secret (keys and sizes; values with --reveal)' : 'show a ConfigMap')
    .addHelpText(
      'after',
      kind === 'Secret'
        ? examples('nspod secret inspect db', 'nspod secret inspect db --reveal -o json')
        : examples('nspod configmap inspect app', 'nspod configmap inspect app -n staging -o json'),
    )
    .action(async (name: string, o: { namespace: string; output: string; reveal?: boolean }) => {
      const fmt = parseFormat(o.output);
      const v = await (
        await open()
      ).inspectConfigObject(kind, name, { namespace: o.namespace, reveal: o.reveal ?? false });
      console.log(render(fmt === 'table' ? 'yaml' : fmt, v).trimEnd());
    });
  cmd
    .command('rm')
    .argument('<name...>')
    .option('-n, --namespace <ns>', 'Kubernetes namespace', 'default')
    .description(`remove stored ${kind}s`)
    .addHelpText(
      'after',
      examples(`nspod ${word} rm ${kind === 'Secret' ? 'db' : 'app'}`, `nspod ${word} rm -n staging a b`),
    )
    .action(async (names: string[], o: { namespace: string }) => {
      const rt = await open();
      for (const n of names) {
        await rt.removeConfigObject(kind, n, { namespace: o.namespace });
        console.log(`${word}/${n} removed`);
      }
    });
}

export function registerVolumeCommands(program: Command, open: Open): void {
  const vol = program.command('volume').description('named volumes: data that outlives pods (persistentVolumeClaim)');
  vol
    .command('create')
    .argument('<name>')
    .option('-l, --label <key=value>', 'a label (repeatable)', collect, [])
    .description('create an empty named volume')
    .addHelpText('after', examples('nspod volume create data', 'nspod volume create cache -l app=web'))
    .action(async (name: string, o: { label: string[] }) => {
      const labels = Object.fromEntries(o.label.map((l) => keyValue('--label', l)));
      const v = await (await open()).createVolume(name, { labels });
      console.log(`volume/${v.name} created (${v.mountpoint})`);
    });
  vol
    .command('ls')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .description('list named volumes')
    .addHelpText('after', examples('nspod volume ls', 'nspod volume ls -o json'))
    .action(async (o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const list = await (await open()).listVolumes();
      if (fmt !== 'table') return console.log(render(fmt, list));
      console.log(
        table(
          ['NAME', 'USED BY', 'AGE', 'MOUNTPOINT'],
          list.map((v) => [v.name, v.usedBy.join(',') || '-', age(v.createdAt), v.mountpoint]),
        ),
      );
    });
  vol
    .command('inspect')
    .argument('<name>')
    .option('-o, --output <format>', 'json or yaml', 'yaml')
    .description("show a named volume's record and the pods that use it")
    .addHelpText('after', examples('nspod volume inspect data', 'nspod volume inspect data -o json'))
    .action(async (name: string, o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const v = await (await open()).inspectVolume(name);
      const used = await du(v.mountpoint);
      console.log(render(fmt === 'table' ? 'yaml' : fmt, { ...v, size: bytes(used) }).trimEnd());
    });
  vol
    .command('rm')
    .argument('<name...>')
    .description('remove named volumes and their data (refused while a pod uses one)')
    .addHelpText('after', examples('nspod volume rm data', 'nspod volume rm cache data'))
    .action(async (names: string[]) => {
      const rt = await open();
      for (const n of names) {
        await rt.removeVolume(n);
        console.log(`volume/${n} removed`);
      }
    });
  vol
    .command('prune')
    .description('remove every named volume that no pod uses')
    .addHelpText('after', examples('nspod volume prune'))
    .action(async () => {
      const gone = await (await open()).pruneVolumes();
      for (const n of gone) console.log(`volume/${n} removed`);
      if (gone.length === 0) console.log('no unused volumes');
    });
  registerConfigKind(program, open, 'ConfigMap');
  registerConfigKind(program, open, 'Secret');
}

/** Bytes used by the files under dir (not following symlinks). */
async function du(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await fs.lstat(p)).size;
    }
  };
  await walk(dir);
  return total;
}
