/** Image commands: images, load, import, rmi, tag, save. */
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import { age, bytes, parseFormat, render, shortId, table } from './format.js';
import { examples } from './util.js';

type Open = () => Promise<Runtime>;

export function registerImageCommands(program: Command, open: Open): void {
  program
    .command('images')
    .description('list local images')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText('after', examples('nspod images', 'nspod images -o json'))
    .action(async (o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const list = await (await open()).images.list();
      if (fmt !== 'table') return console.log(render(fmt, list));
      const rows: Array<Array<string | number>> = [];
      for (const i of list) {
        const names = i.names.length ? i.names : ['<none>:<none>'];
        for (const n of names) {
          const at = n.lastIndexOf(':') > n.lastIndexOf('/') ? n.lastIndexOf(':') : -1;
          rows.push([
            at > 0 ? n.slice(0, at) : n,
            at > 0 ? n.slice(at + 1) : '<none>',
            shortId(i.id),
            i.created ? `${age(i.created)} ago` : '-',
            bytes(i.size),
          ]);
        }
      }
      console.log(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows));
    });

  program
    .command('load')
    .description('load images from an OCI archive or a `docker save` archive')
    .requiredOption('-i, --input <file>', 'the archive (tar)')
    .addHelpText(
      'after',
      examples('nspod load -i busybox.tar', 'docker save alpine | gzip > a.tgz && nspod load -i a.tgz'),
    )
    .action(async (o: { input: string }) => {
      const loaded = await (await open()).images.loadArchive(o.input);
      for (const i of loaded) console.log(`Loaded image: ${i.names.join(', ') || shortId(i.id)} (${shortId(i.id)})`);
    });

  program
    .command('import')
    .argument('<rootfs>', 'a tar of a root filesystem (optionally gzipped)')
    .requiredOption('--name <ref>', 'name of the new image, e.g. localhost/myroot:1')
    .option('--cmd <args...>', 'default command (the image config Cmd)')
    .option('--env <vars...>', 'environment variables NAME=VALUE for the image config')
    .description('make a one-layer image from a rootfs tarball (like docker import)')
    .addHelpText('after', examples('nspod import rootfs.tar --name localhost/mini:latest --cmd sh'))
    .action(async (file: string, o: { name: string; cmd?: string[]; env?: string[] }) => {
      const config = { ...(o.cmd ? { Cmd: o.cmd } : {}), ...(o.env ? { Env: o.env } : {}) };
      const i = await (await open()).images.importRootfs(file, o.name, { config });
      console.log(`${i.names[0] ?? o.name} ${i.id}`);
    });

  program
    .command('tag')
    .argument('<image>', 'image name or id')
    .argument('<name>', 'the new name')
    .description('give an image another name')
    .addHelpText('after', examples('nspod tag localhost/busybox:latest localhost/bb:1'))
    .action(async (ref: string, name: string) => {
      await (await open()).images.tag(ref, name);
    });

  program
    .command('save')
    .argument('<images...>', 'image names or ids')
    .requiredOption('-o, --output <file>', 'the OCI archive to write')
    .description('write images to an OCI archive')
    .addHelpText('after', examples('nspod save -o bb.tar localhost/busybox:latest'))
    .action(async (refs: string[], o: { output: string }) => {
      await (await open()).images.saveArchive(refs, o.output);
    });

  program
    .command('rmi')
    .argument('<images...>', 'image names or ids')
    .option('-f, --force', 'remove even if a container uses it')
    .description('remove images; layers no other image uses are deleted')
    .addHelpText('after', examples('nspod rmi localhost/mini:latest', 'nspod rmi -f 3f2a9c1b0e4d'))
    .action(async (refs: string[], o: { force?: boolean }) => {
      const rt = await open();
      const used = new Set((await rt.listContainers({ all: true })).map((c) => c.imageId));
      for (const r of refs) {
        await rt.images.remove(r, { force: o.force ?? false, inUse: (id: string) => used.has(id) });
        console.log(`Untagged/removed: ${r}`);
      }
    });
}
