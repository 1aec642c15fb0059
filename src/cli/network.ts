/** Network commands: network ls, inspect, create, rm, check, prune. */
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import { parseFormat, render, table } from './format.js';
import { examples } from './util.js';

type Open = () => Promise<Runtime>;

export function registerNetworkCommands(program: Command, open: Open): void {
  const net = program.command('network').description('CNI networks that pods join (nspod network --help)');

  net
    .command('ls')
    .description("list nspod's CNI networks (the default one is made if there is none)")
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText('after', examples('nspod network ls', 'nspod network ls -o json'))
    .action(async (o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const list = await (await open()).network.list();
      if (fmt !== 'table') return console.log(render(fmt, list));
      console.log(
        table(
          ['NAME', 'BRIDGE', 'SUBNETS', 'PLUGINS', 'PODS', 'FILE'],
          list.map((n) => [
            n.name,
            n.bridge ?? '-',
            n.subnets.join(',') || '-',
            n.plugins.join(','),
            n.pods.length,
            n.file,
          ]),
        ),
      );
    });

  net
    .command('inspect')
    .argument('<name>', 'network name')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .description("a network's config, the pods on it, and any plugin problem (missing binary, unsupported version)")
    .addHelpText('after', examples('nspod network inspect nspod', 'nspod network inspect backend -o yaml'))
    .action(async (name: string, o: { output: string }) => {
      const fmt = parseFormat(o.output);
      console.log(render(fmt === 'table' ? 'json' : fmt, await (await open()).network.inspect(name)));
    });

  net
    .command('create')
    .argument('<name>', 'network name')
    .requiredOption('--subnet <cidr>', 'IPv4 subnet, e.g. 10.89.214.0/24')
    .option('--bridge <ifname>', 'bridge interface (default nspod-<name>, at most 15 characters)')
    .option('--gateway <ip>', 'gateway address on the bridge (default: the first of the subnet)')
    .option('--no-masquerade', 'do not masquerade traffic leaving the subnet')
    .description('create a bridge network (bridge, host-local IPAM, portmap, firewall, bandwidth)')
    .addHelpText('after', examples('nspod network create backend --subnet 10.89.214.0/24'))
    .action(async (name: string, o: { subnet: string; bridge?: string; gateway?: string; masquerade: boolean }) => {
      const r = await (
        await open()
      ).network.create({
        name,
        subnet: o.subnet,
        ...(o.bridge ? { bridge: o.bridge } : {}),
        ...(o.gateway ? { gateway: o.gateway } : {}),
        masquerade: o.masquerade,
      });
      console.log(`network/${r.name} created (${r.file})`);
    });

  net
    .command('rm')
    .argument('<name>', 'network name')
    .description('remove a network config (refused while a pod uses it)')
    .addHelpText('after', examples('nspod network rm backend'))
    .action(async (name: string) => {
      await (await open()).network.remove(name);
      console.log(`network/${name} removed`);
    });

  net
    .command('check')
    .argument('<pod>', 'pod name or id')
    .description("run CNI CHECK on the pod's attachments (does the netns still have what ADD made?)")
    .addHelpText('after', examples('nspod network check foo'))
    .action(async (pod: string) => {
      const n = await (await open()).network.check(pod);
      console.log(`pod/${pod}: ${n} attachment${n === 1 ? '' : 's'} OK`);
    });

  net
    .command('prune')
    .description('release IPs, veths and rules of attachments whose pod no longer exists')
    .addHelpText('after', examples('nspod network prune'))
    .action(async () => {
      const ids = await (await open()).network.prune();
      console.log(ids.length ? `released ${ids.length} stale attachment(s): ${ids.join(', ')}` : 'nothing to prune');
    });
}
