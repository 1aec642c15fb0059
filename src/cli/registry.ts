/** Registry commands: pull, push, login, logout, image inspect, image prune. */
import type { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import type { Runtime } from '../pod/index.js';
import { invalidArgument } from '../errors/index.js';
import { parseReference } from '../image/index.js';
import type { PullEvent } from '../image/registry/pull.js';
import { bytes, parseFormat, render } from './format.js';
import { examples, readStdin } from './util.js';

type Open = () => Promise<Runtime>;

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** Live bars on a TTY: one per layer with bytes, speed, then extracting / done / exists. */
async function ttyProgress(): Promise<{ onEvent: (e: PullEvent) => void; stop: () => void }> {
  const { MultiBar, Presets } = (await import('cli-progress')).default;
  const multi = new MultiBar(
    {
      format: '{id} {phase} |{bar}| {cur} / {tot} {speed}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      forceRedraw: true,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, { bar: SingleBar; start: number; phase: string }>();
  return {
    onEvent: (e) => {
      if (e.kind !== 'layer') return;
      let b = bars.get(e.digest);
      if (!b) {
        const bar = multi.create(e.total, 0, {
          id: short(e.digest),
          phase: 'waiting    ',
          cur: '0 B',
          tot: bytes(e.total),
          speed: '',
        });
        b = { bar, start: 0, phase: 'waiting' };
        bars.set(e.digest, b);
      }
      if (e.phase === 'downloading' && b.phase !== 'downloading') b.start = Date.now();
      b.phase = e.phase;
      const secs = b.start ? (Date.now() - b.start) / 1000 : 0;
      const speed = e.phase === 'downloading' && secs > 0.2 ? `${bytes(e.current / secs)}/s` : '';
      b.bar.update(e.current, { phase: e.phase.padEnd(11), cur: bytes(e.current), tot: bytes(e.total), speed });
    },
    stop: () => multi.stop(),
  };
}

/** Plain lines when not on a TTY: one per phase change. */
function lineProgress(write: (s: string) => void): (e: PullEvent) => void {
  const last = new Map<string, string>();
  return (e) => {
    if (e.kind === 'resolved') return write(`Pulling ${e.reference} (${e.manifestDigest}), ${e.layers.length} layers`);
    if (e.kind !== 'layer' || e.phase === 'waiting' || last.get(e.digest) === e.phase) return;
    last.set(e.digest, e.phase);
    if (e.phase === 'downloading' || e.phase === 'retrying')
      return write(`${short(e.digest)}: ${e.phase} ${bytes(e.total)}`);
    write(`${short(e.digest)}: ${e.phase}`);
  };
}

/** The registry a login names: a bare host, or the domain of a reference. */
function registryOf(s: string): string {
  const host = s.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === '') throw invalidArgument('registry: expected a host name such as reg.example:5000');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

export function registerRegistryCommands(program: Command, open: Open): void {
  program
    .command('pull')
    .argument('<image>', 'image reference: busybox, library/busybox:1.36, reg:5000/team/app@sha256:…')
    .option('--platform <os/arch[/variant]>', 'platform to pick from a manifest list (default linux/<this arch>)')
    .option('-q, --quiet', 'print only the image id')
    .description('pull an image from a registry (layers verified, unpacked as they arrive)')
    .addHelpText(
      'after',
      examples(
        'nspod pull busybox',
        'nspod pull 127.0.0.1:5000/team/app:1 --platform linux/arm64',
        'nspod pull -q nginx:1.27',
      ),
    )
    .action(async (ref: string, o: { platform?: string; quiet?: boolean }) => {
      const rt = await open();
      const tty = !o.quiet && process.stderr.isTTY === true;
      const bars = tty ? await ttyProgress() : undefined;
      const { pullImage } = await import('../image/registry/pull.js');
      const lines = !o.quiet && !tty ? lineProgress((s) => process.stderr.write(`${s}\n`)) : undefined;
      let r;
      try {
        r = await pullImage(rt.images, ref, {
          ...(o.platform ? { platform: o.platform } : {}),
          onEvent: (e) => {
            bars?.onEvent(e);
            lines?.(e);
          },
        });
      } finally {
        bars?.stop();
      }
      if (o.quiet) return console.log(r.image.id);
      console.log(`${r.reference}${r.reference.includes('@') ? '' : ` (${r.manifestDigest})`}`);
      console.log(`Image ${r.image.id}, ${bytes(r.downloaded)} downloaded`);
    });

  program
    .command('push')
    .argument('<image>', 'local image name or id')
    .argument('[destination]', 'where to push it (default: its own name)')
    .option('--chunk-size <bytes>', 'upload blobs larger than this in chunks', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0)
        throw invalidArgument(`--chunk-size: expected a positive integer, got "${v}"`);
      return n;
    })
    .option('-q, --quiet', 'print nothing but errors')
    .description('push an image to a registry (blobs the registry has are not sent)')
    .addHelpText(
      'after',
      examples('nspod push 127.0.0.1:5000/team/app:1', 'nspod push localhost/busybox:latest reg:5000/bb:1'),
    )
    .action(async (ref: string, dest: string | undefined, o: { chunkSize?: number; quiet?: boolean }) => {
      const rt = await open();
      const { pushImage } = await import('../image/registry/push.js');
      const r = await pushImage(rt.images, ref, {
        ...(dest ? { destination: dest } : {}),
        ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
        onEvent: (e) => {
          if (o.quiet || e.kind !== 'blob' || e.phase === 'uploading') return;
          process.stderr.write(`${short(e.digest)}: ${e.phase === 'exists' ? 'exists' : `pushed ${bytes(e.size)}`}\n`);
        },
      });
      if (!o.quiet) console.log(`${r.reference}@${r.manifestDigest} (${r.uploaded} blobs uploaded)`);
    });

  program
    .command('login')
    .argument('<registry>', 'registry host, e.g. reg.example:5000')
    .option('-u, --username <name>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .description('check credentials against a registry and store them (docker config.json format, mode 0600)')
    .addHelpText('after', examples('echo "$PW" | nspod login reg.example:5000 -u alice --password-stdin'))
    .action(async (reg: string, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      const registry = registryOf(reg);
      if (!o.username) throw invalidArgument('login: --username is required');
      if (o.password !== undefined && o.passwordStdin)
        throw invalidArgument('login: give --password or --password-stdin, not both');
      const password = o.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : o.password;
      if (!password) throw invalidArgument('login: a password is required (--password-stdin)');
      const rt = await open();
      const creds = { username: o.username, password };
      const { checkLogin } = await import('../image/registry/push.js');
      const { authFilePath, saveCredentials } = await import('../image/registry/config.js');
      await checkLogin(registry, creds);
      await saveCredentials(authFilePath(rt.config.root), registry, creds);
      console.log('Login Succeeded');
    });

  program
    .command('logout')
    .argument('<registry>', 'registry host')
    .description('forget the credentials stored for a registry')
    .addHelpText('after', examples('nspod logout reg.example:5000'))
    .action(async (reg: string) => {
      const registry = registryOf(reg);
      const rt = await open();
      const { authFilePath, removeCredentials } = await import('../image/registry/config.js');
      const had = await removeCredentials(authFilePath(rt.config.root), registry);
      console.log(had ? `Removed login credentials for ${registry}` : `Not logged in to ${registry}`);
    });

  const image = program.command('image').description('image management: inspect, prune');
  image
    .command('inspect')
    .argument('<images...>', 'image names or ids')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .description('show images: names, digests, layers and config')
    .addHelpText(
      'after',
      examples('nspod image inspect localhost/busybox:latest', 'nspod image inspect 3f2a9c -o yaml'),
    )
    .action(async (refs: string[], o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const rt = await open();
      const out = [];
      for (const r of refs) {
        const info = await rt.images.resolve(r);
        const config = await rt.images.config(info);
        const repoDigests = info.names.map((n) => `${parseReference(n).repository}@${info.manifestDigest}`);
        out.push({
          Id: info.id,
          RepoTags: info.names,
          RepoDigests: repoDigests,
          Created: info.created,
          Size: info.size,
          Architecture: config.architecture,
          Os: config.os,
          ...(config.variant ? { Variant: config.variant } : {}),
          Config: config.config ?? {},
          RootFS: config.rootfs,
          Layers: info.layers,
          History: config.history ?? [],
        });
      }
      console.log(render(fmt === 'table' ? 'json' : fmt, out));
    });

  image
    .command('prune')
    .option('-a, --all', 'remove every image no container uses, not only unnamed ones')
    .description('remove unused images, then blobs and unpacked layers nothing references')
    .addHelpText('after', examples('nspod image prune', 'nspod image prune -a'))
    .action(async (o: { all?: boolean }) => {
      const rt = await open();
      const used = new Set((await rt.listContainers({ all: true })).map((c) => c.imageId));
      const r = await rt.images.prune({ all: o.all ?? false, inUse: (id) => used.has(id) });
      for (const id of r.images) console.log(`Deleted: ${id}`);
      console.log(
        `Removed ${r.images.length} images, ${r.blobs.length} blobs, ${r.layers.length} unpacked layers; reclaimed ${bytes(r.bytes)}`,
      );
    });
}
