/** Pod commands: play, pods, ps, inspect, logs, exec, stop, rm. They print; the Runtime does. */
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { inspectPod } from '../pod/index.js';
import type { CgroupNode, PodInspect, Runtime } from '../pod/index.js';
import type { CgroupLimits } from '../cgroups/index.js';
import { readLog, followLog, readExitCode } from '../monitor/index.js';
import { invalidArgument, notFound } from '../errors/index.js';
import { age, bytes, parseFormat, render, shortId, table } from './format.js';
import { podRows, podTable } from './supervisor.js';
import { registerPlayCommand } from './play-command.js';
import { examples } from './util.js';

type Open = () => Promise<Runtime>;

function intArg(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw invalidArgument(`${name}: expected a whole number >= 0, got "${v}"`);
    return Number(v);
  };
}

function limitsText(l: CgroupLimits): string {
  const parts: string[] = [];
  if (l.memoryBytes !== undefined) parts.push(`memory=${bytes(l.memoryBytes)}`);
  if (l.cpuQuotaUs !== undefined && l.cpuPeriodUs)
    parts.push(`cpu=${Math.round((l.cpuQuotaUs * 1000) / l.cpuPeriodUs)}m`);
  if (l.cpuShares !== undefined) parts.push(`shares=${l.cpuShares}`);
  if (l.pidsMax !== undefined) parts.push(`pids.max=${l.pidsMax}`);
  return parts.length ? parts.join(' ') : 'no limits';
}

function cgroupTree(node: CgroupNode): string[] {
  const width = Math.max(...node.children.map((c) => c.name.length));
  const lines = [`${node.path}`, `│  ${'(pod)'.padEnd(width)}  ${limitsText(node.limits)}`];
  node.children.forEach((c, i) => {
    const last = i === node.children.length - 1;
    const pids = c.pids.length ? `  pids ${c.pids.join(',')}` : '';
    lines.push(`${last ? '└─' : '├─'} ${c.name.padEnd(width)}  ${limitsText(c.limits)}${pids}`);
  });
  return lines;
}

export function renderInspect(i: PodInspect, cgroupRoot: string): string {
  const p = i.pod;
  const out: string[] = [];
  out.push(`Pod:        ${p.name}`);
  out.push(`Namespace:  ${p.namespace}`);
  out.push(`ID:         ${p.id}`);
  out.push(`UID:        ${p.uid}`);
  out.push(`Status:     ${p.state}`);
  out.push(`Hostname:   ${i.hostname}`);
  out.push(`Created:    ${p.createdAt} (${age(p.createdAt)} ago)`);
  out.push('', 'Containers:');
  out.push(
    indent(
      table(
        ['NAME', 'ID', 'STATE', 'PID', 'IMAGE'],
        [
          ['pause', '-', p.sandboxRunning ? 'running' : 'exited', p.sandboxPid ?? '-', '(sandbox)'],
          ...p.containers.map((c) => [
            c.name,
            shortId(c.id),
            c.state === 'exited' ? `exited (${c.exitCode})` : c.state,
            c.pid && c.state === 'running' ? c.pid : '-',
            c.image,
          ]),
        ],
      ),
    ),
  );
  out.push('', 'Namespaces (inodes from /proc/<pid>/ns, like lsns):');
  out.push(
    indent(
      table(
        ['NS', 'INODE', 'HELD BY', ''],
        i.namespaces.map((n) => [n.type, n.inode, n.holders.join(', '), n.host ? '(host)' : '']),
      ),
    ),
  );
  if (i.network) {
    const n = i.network;
    out.push('', `Network (inside the pod's network namespace, like ip addr / ip route):`);
    out.push(`  IP:         ${n.ip ?? '-'}${n.networks.length ? `  (networks: ${n.networks.join(', ')})` : ''}`);
    out.push(
      indent(
        table(
          ['INTERFACE', 'STATE', 'MAC', 'ADDRESSES'],
          n.interfaces.map((x) => [x.name, x.state ?? '-', x.mac ?? '-', x.addresses.join(' ') || '-']),
        ),
      ),
    );
    out.push(
      indent(
        table(
          ['ROUTE', 'VIA', 'DEV'],
          n.routes.map((r) => [r.dst, r.via ?? '-', r.dev ?? '-']),
        ),
      ),
    );
    if (n.ports.length) {
      out.push(
        indent(
          table(
            ['HOST', 'CONTAINER PORT', 'PROTOCOL'],
            n.ports.map((m) => [`${m.hostIP ?? '0.0.0.0'}:${m.hostPort}`, m.containerPort, m.protocol]),
          ),
        ),
      );
    }
  } else if (p.sandboxRunning) {
    out.push('', `Network:    ${i.pod.ip ? i.pod.ip : "the host's (hostNetwork)"}`);
  }
  out.push('', `Cgroups (${cgroupRoot}, like systemd-cgls):`);
  out.push(indent(cgroupTree(i.cgroups).join('\n')));
  if (i.volumes?.length) {
    out.push('', 'Volumes:');
    out.push(
      indent(
        table(
          ['NAME', 'TYPE', 'SOURCE', 'MOUNTED AT', 'HOST PATH'],
          i.volumes.map((v) => [v.name, v.type, v.source || '-', v.mounts.join(', ') || '-', v.hostPath]),
        ),
      ),
    );
  }
  return out.join('\n');
}

const indent = (s: string): string =>
  s
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');

export function registerPodCommands(program: Command, open: Open): void {
  registerPlayCommand(program, open);

  program
    .command('pods')
    .description('list pods')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText('after', examples('nspod pods', 'nspod pods -o json'))
    .action(async (o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const rt = await open();
      if (fmt !== 'table') {
        const pods = await rt.listPods();
        const rows = new Map((await podRows(rt)).map((v) => [v.id, v]));
        const out = pods.map((p) => {
          const v = rows.get(p.id);
          return v ? { ...p, ready: v.ready, status: v.status, restarts: v.restarts, supervised: v.supervised } : p;
        });
        return console.log(render(fmt, out));
      }
      console.log(podTable(await podRows(rt)));
    });

  program
    .command('ps')
    .description('list containers (running ones unless --all)')
    .option('-a, --all', 'include containers that are not running')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText('after', examples('nspod ps', 'nspod ps --all'))
    .action(async (o: { all?: boolean; output: string }) => {
      const fmt = parseFormat(o.output);
      const list = await (await open()).listContainers({ all: o.all ?? false });
      if (fmt !== 'table') return console.log(render(fmt, list));
      console.log(
        table(
          ['CONTAINER ID', 'NAME', 'POD', 'IMAGE', 'STATUS', 'PID', 'CREATED'],
          list.map((c) => [
            shortId(c.id),
            c.name,
            c.podName,
            c.image,
            c.state === 'exited'
              ? `Exited (${c.exitCode}) ${age(c.finishedAt)} ago`
              : c.state === 'running'
                ? `Up ${age(c.startedAt)}`
                : c.state,
            c.state === 'running' ? (c.pid ?? '-') : '-',
            `${age(c.createdAt)} ago`,
          ]),
        ),
      );
    });

  program
    .command('inspect')
    .argument('<kind>', 'pod or container')
    .argument('<name>', 'pod name or id; for a container POD/NAME or the container id')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .description("show a pod's namespaces and cgroups, or a container's record and status")
    .addHelpText(
      'after',
      examples('nspod inspect pod foo', 'nspod inspect pod foo -o json', 'nspod inspect container foo/app'),
    )
    .action(async (kind: string, name: string, o: { output: string }) => {
      const fmt = parseFormat(o.output);
      const rt = await open();
      if (kind === 'pod') {
        const i = await inspectPod(rt, name);
        if (fmt !== 'table') return console.log(render(fmt, i));
        const layout = rt.cgroupLayout;
        const where =
          layout.version === 2 ? (layout.v2 ?? '/sys/fs/cgroup') : (layout.v1['memory'] ?? '/sys/fs/cgroup/memory');
        return console.log(renderInspect(i, where));
      }
      if (kind !== 'container') throw invalidArgument(`inspect: kind must be "pod" or "container", got "${kind}"`);
      const [podRef, ctrName] = name.includes('/') ? name.split('/', 2) : [undefined, undefined];
      let found;
      if (podRef !== undefined) {
        const pod = await rt.podRecord(podRef);
        found = { pod, ctr: await rt.pickContainer(pod, ctrName) };
      } else {
        for (const p of await rt.listPods()) {
          const c = p.containers.find((c) => c.id.startsWith(name) && name.length >= 3);
          if (c)
            found = { pod: await rt.podRecord(p.id), ctr: await rt.pickContainer(await rt.podRecord(p.id), c.name) };
        }
      }
      if (!found) throw notFound(`container "${name}" not found`);
      const status = (await rt.podStatus(found.pod.id)).containers.find((c) => c.id === found.ctr.id);
      const value = { ...found.ctr, status };
      console.log(render(fmt === 'table' ? 'yaml' : fmt, value));
    });

  program
    .command('logs')
    .argument('<pod>', 'pod name or id')
    .option('-c, --container <name>', 'container (default: the first)')
    .option('-f, --follow', 'keep printing new lines until the container exits')
    .option('--tail <n>', 'only the last N lines', intArg('--tail'))
    .option('--timestamps', 'prefix each line with its time')
    .description("print a container's logs")
    .addHelpText('after', examples('nspod logs foo', 'nspod logs -f foo -c sidecar', 'nspod logs --tail 20 foo'))
    .action(
      async (podRef: string, o: { container?: string; follow?: boolean; tail?: number; timestamps?: boolean }) => {
        const rt = await open();
        const pod = await rt.podRecord(podRef);
        const c = await rt.pickContainer(pod, o.container);
        if (!o.container && pod.spec.containers.length > 1) {
          process.stderr.write(
            `Defaulted container "${c.name}" out of: ${pod.spec.containers.map((x) => x.name).join(', ')}\n`,
          );
        }
        const print = (e: { time: string; stream: string; line: string }) => {
          const line = (o.timestamps ? `${e.time} ` : '') + e.line + '\n';
          (e.stream === 'stderr' ? process.stderr : process.stdout).write(line);
        };
        const entries = await readLog(c.logPath, o.tail !== undefined ? { tail: o.tail } : {});
        entries.forEach(print);
        if (!o.follow) return;
        const size = (await fs.stat(c.logPath).catch(() => ({ size: 0 }))).size;
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        await followLog(c.logPath, {
          fromOffset: size,
          onEntry: print,
          signal: ac.signal,
          done: async () => (await readExitCode(c.exitFile)) !== undefined,
        });
      },
    );

  program
    .command('exec')
    .argument('<pod>', 'pod name or id')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('-c, --container <name>', 'container (default: the first)')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a terminal')
    .description('run a command in a running container; exits with its exit code')
    .addHelpText('after', examples('nspod exec foo -c sidecar -- wget -qO- localhost:80', 'nspod exec -it foo -- sh'))
    .action(async (podRef: string, cmd: string[], o: { container?: string; interactive?: boolean; tty?: boolean }) => {
      const rt = await open();
      const code = await rt.exec(podRef, {
        args: cmd,
        ...(o.container ? { container: o.container } : {}),
        tty: o.tty ?? false,
        interactive: o.interactive ?? false,
      });
      process.exitCode = code;
    });

  program
    .command('stop')
    .argument('<pod...>', 'pod names or ids')
    .option(
      '-t, --time <seconds>',
      'grace period before SIGKILL (default: terminationGracePeriodSeconds)',
      intArg('--time'),
    )
    .description('stop the containers of a pod: stop signal, then SIGKILL after the grace period')
    .addHelpText('after', examples('nspod stop foo', 'nspod stop --time 0 foo'))
    .action(async (pods: string[], o: { time?: number }) => {
      const rt = await open();
      for (const p of pods) {
        const s = await rt.stopPod(p, o.time !== undefined ? { timeoutSeconds: o.time } : {});
        console.log(`pod/${s.name} stopped`);
      }
    });

  program
    .command('rm')
    .argument('<pod...>', 'pod names or ids')
    .option('-f, --force', 'kill running containers first')
    .description('remove pods and everything they made (processes, mounts, cgroups, namespaces)')
    .addHelpText('after', examples('nspod rm foo', 'nspod rm -f foo bar'))
    .action(async (pods: string[], o: { force?: boolean }) => {
      const rt = await open();
      for (const p of pods) {
        await rt.removePod(p, { force: o.force ?? false });
        console.log(`pod/${p} removed`);
      }
    });
}
