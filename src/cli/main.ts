#!/usr/bin/env node
/**
 * The nspod command. A thin adapter: parse arguments, call the Runtime API, print. Error codes
 * map to exit statuses here and only here.
 */
import { Command, CommanderError } from 'commander';
import type { Runtime } from '../pod/index.js';
import type { Host } from '../host/index.js';
import { NspodError, messageOf } from '../errors/index.js';
import type { ErrorCode } from '../errors/index.js';
import { nspodVersion } from '../config/index.js';
import { registerPlayCommand } from './play-command.js';

export const EXIT_CODES: Record<ErrorCode, number> = {
  INTERNAL: 1,
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  FAILED_PRECONDITION: 5,
  UNAVAILABLE: 6,
};

const version = nspodVersion();

interface GlobalOptions {
  root?: string;
  runRoot?: string;
  runtime?: string;
  debug?: boolean;
}

/** The command word of `argv` (node, script, global options…, command, …), if any. */
export function commandOf(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (['--root', '--run-root', '--runtime'].includes(a))
      i++; // its value follows
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * The nspod command line. `nspod play` registers only itself: it is the latency-critical
 * command, and the others' modules (with the Runtime behind them) are loaded only when used.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command();
  program
    .name('nspod')
    .description('run Kubernetes pods on one Linux machine: shared namespaces, cgroups, OCI images')
    .version(version, '-v, --version')
    .option('--root <dir>', 'persistent state dir (env NSPOD_ROOT, default /var/lib/nspod)')
    .option('--run-root <dir>', 'volatile state dir (env NSPOD_RUN_ROOT, default /run/nspod)')
    .option('--runtime <name>', 'OCI runtime: runc, crun or a path (env NSPOD_RUNTIME, default: detected)')
    .option('--debug', 'print stack traces of errors')
    // Before any command is added: subcommands inherit these. A usage error is one line, written
    // by main() with the command's name; it exits 2.
    .configureOutput({ outputError: () => undefined })
    .exitOverride()
    .addHelpText(
      'after',
      '\nExamples:\n  $ nspod play examples/pod.yaml\n  $ nspod inspect pod foo\n  $ nspod exec foo -c sidecar -- wget -qO- localhost\n  $ nspod rm -f foo\n',
    );
  let runtime: Promise<Runtime> | undefined;
  // `host`: what runs commands, for a daemon that starts them through a spawner helper.
  const open = (o: { host?: Host } = {}): Promise<Runtime> => {
    const g = program.opts<GlobalOptions>();
    return (runtime ??= import('../pod/index.js').then(({ openRuntime }) =>
      openRuntime({
        ...(o.host ? { host: o.host } : {}),
        ...(g.root ? { root: g.root } : {}),
        ...(g.runRoot ? { runRoot: g.runRoot } : {}),
        ...(g.runtime ? { runtime: g.runtime } : {}),
      }),
    ));
  };
  if (commandOf(argv) === 'play') {
    registerPlayCommand(program, open);
    return program;
  }
  const [pods, images, registry, supervisor, network, volumes, cri] = await Promise.all([
    import('./pods.js'),
    import('./images.js'),
    import('./registry.js'),
    import('./supervisor.js'),
    import('./network.js'),
    import('./volumes.js'),
    import('./cri.js'),
  ]);
  pods.registerPodCommands(program, open);
  images.registerImageCommands(program, open);
  registry.registerRegistryCommands(program, open);
  supervisor.registerSupervisorCommands(program, open);
  network.registerNetworkCommands(program, open);
  volumes.registerVolumeCommands(program, open);
  cri.registerCriCommands(program, open);
  program
    .command('version')
    .description('print the versions of nspod and of the components it drives')
    .addHelpText('after', '\nExamples:\n  $ nspod version\n')
    .action(async () => {
      const rt = await open();
      const info = await rt.runtime();
      const layout = rt.cgroupLayout;
      console.log(`nspod:    ${version}`);
      console.log(`runtime:  ${info.name} ${info.version} (${info.path})`);
      console.log(`cgroups:  v${layout.version}${layout.hybrid ? ' (hybrid)' : ''}`);
      console.log(`node:     ${process.version}`);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      // commander.help: a command with subcommands given none; its help is on stderr already.
      if (e.code !== 'commander.help') {
        const cmd = commandOf(argv);
        const msg = e.message.replace(/^error: /, '');
        const where = cmd && !e.code.endsWith('unknownCommand') ? `nspod ${cmd} --help` : 'nspod --help';
        process.stderr.write(`Error: ${msg} (see ${where})\n`);
      }
      return 2;
    }
    const debug = argv.includes('--debug');
    const code = e instanceof NspodError ? e.code : 'INTERNAL';
    process.stderr.write(`Error: ${messageOf(e).split('\n')[0]}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    return EXIT_CODES[code];
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
