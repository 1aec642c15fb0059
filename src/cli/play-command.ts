/**
 * `nspod play`, registered on its own: the command is the short path of a pod start, so this
 * module loads little (no Runtime, no YAML parser) until it knows whether the running daemon
 * takes the work (src/supervisor/control.ts). Only when it plays the pod itself does it load
 * ./play.js and open the Runtime.
 */
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import { loadConfig, nspodVersion } from '../config/index.js';
import type { Config } from '../config/index.js';
import { notFound } from '../errors/index.js';
import { buildIdentity, controlSocketPath, forwardPlay, relevantEnv } from '../supervisor/control.js';
import type { PlayIo, PlayRequest } from '../supervisor/control.js';
import { cliMainPath, ensureSupervisor } from '../supervisor/files.js';
import { examples, readStdin } from './util.js';

/** True unless --no-supervise or NSPOD_SUPERVISE=0. */
export function wantSupervisor(flag: boolean | undefined): boolean {
  if (flag === false) return false;
  const env = process.env.NSPOD_SUPERVISE;
  return !(env === '0' || env === 'false' || env === 'no');
}

/** Starts the daemon if none runs; prints one line when it did. */
export async function startSupervisorIfNeeded(config: Config): Promise<void> {
  const s = await ensureSupervisor(config);
  if (s.started) process.stderr.write(`started the nspod supervisor in the background (pid ${s.pid}, log ${s.log})\n`);
}

/** This nspod build, as the daemon and the `play` command compare it before handing work over. */
export function cliIdentity(): string {
  return buildIdentity(nspodVersion(), cliMainPath());
}

export function registerPlayCommand(program: Command, open: () => Promise<Runtime>): void {
  program
    .command('play')
    .argument('<file>', 'Kubernetes Pod YAML (several documents allowed); - for stdin')
    .option('--replace', 'remove a pod of the same name first')
    .option('--timings', 'print how long each step took (on stderr)')
    .option('--no-supervise', 'do not watch the pod (no restarts, probes or events; env NSPOD_SUPERVISE=0)')
    .description('create and start the pods of a Kubernetes YAML file, supervised by the nspod daemon')
    .addHelpText(
      'after',
      examples('nspod play examples/pod.yaml', 'nspod play --replace pod.yaml', 'nspod play --no-supervise pod.yaml'),
    )
    .action(async (file: string, o: { replace?: boolean; timings?: boolean; supervise?: boolean }) => {
      const cliStart = performance.now(); // since the process started: Node's start-up and module loading
      const text =
        file === '-'
          ? await readStdin()
          : await fs.readFile(file, 'utf8').catch((e: Error) => {
              throw notFound(`${file}: ${e.message.replace(/^.*?: /, '')}`);
            });
      const supervise = wantSupervisor(o.supervise);
      const req: PlayRequest = { text, source: file, replace: o.replace ?? false, supervise };
      const io: PlayIo = {
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
        timings: (t) => {
          if (!o.timings) return;
          const all = { 'node+load': cliStart, ...t, total: performance.now() };
          for (const [k, ms] of Object.entries(all)) process.stderr.write(`timing ${k} ${ms.toFixed(1)}ms\n`);
        },
      };
      if (supervise) {
        // The daemon that will supervise the pod also makes it, when it runs this very build with
        // this configuration: its modules are loaded and its code compiled (see supervisor/control.ts).
        const g = program.opts<{ root?: string; runRoot?: string; runtime?: string; debug?: boolean }>();
        const config = loadConfig({
          ...(g.root ? { root: g.root } : {}),
          ...(g.runRoot ? { runRoot: g.runRoot } : {}),
          ...(g.runtime ? { runtime: g.runtime } : {}),
        });
        await startSupervisorIfNeeded(config);
        const fwd = await forwardPlay(
          controlSocketPath(config.runRoot),
          { op: 'play', identity: cliIdentity(), env: relevantEnv(), config, play: req },
          io,
        );
        if (fwd.result === 'done') return;
        if (g.debug) process.stderr.write(`playing here, not in the daemon: ${fwd.why}\n`);
        else if (fwd.why.startsWith('another build'))
          // After an upgrade: the old daemon goes on supervising with its old code until restarted.
          process.stderr.write(
            `note: the nspod daemon was started by another build of nspod; restart it (stop its pid in ${config.runRoot}/supervisor.pid, the next play starts a new one) to run this one\n`,
          );
      }
      const { playText } = await import('./play.js');
      await playText(await open(), req, io);
    });
}
