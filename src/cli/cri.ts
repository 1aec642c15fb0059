/**
 * `nspod cri serve`: the CRI v1 daemon (gRPC on a unix socket, streaming server on loopback).
 * Runs until SIGINT/SIGTERM, then closes the socket and the streaming server; pods and
 * containers keep running under conmon.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { Runtime } from '../pod/index.js';
import { daemonSpawner, serveExtensions } from './supervisor.js';
import type { Host } from '../host/index.js';

export interface CriServeOptions {
  socket?: string;
  streamAddr?: string;
}

/** Starts the CRI server and resolves when it has stopped on a signal. */
export async function serveCri(open: (o?: { host?: Host }) => Promise<Runtime>, o: CriServeOptions): Promise<void> {
  const spawner = await daemonSpawner();
  try {
    await serveCriWith(await open(spawner ? { host: spawner } : {}), o);
  } finally {
    spawner?.close();
  }
}

async function serveCriWith(runtime: Runtime, o: CriServeOptions): Promise<void> {
  const { startCriServer } = await import('../cri/index.js'); // gRPC loads only for the server
  const srv = await startCriServer({
    api: runtime,
    socket: o.socket ?? path.join(runtime.config.runRoot, 'nspod.sock'),
    ...(o.streamAddr ? { streamAddr: o.streamAddr } : {}),
  });
  process.stdout.write(`nspod cri: serving CRI v1 on unix://${srv.socket}, streaming on ${srv.streamUrl}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void srv.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** `nspod serve` serves CRI next to the supervisor unless --no-cri. */
serveExtensions.push(async ({ rt, signal, options }) => {
  if (options['cri'] === false) return;
  const { startCriServer } = await import('../cri/index.js');
  if (signal.aborted) return; // the supervisor failed to start: leave the socket alone
  const socket = typeof options['socket'] === 'string' ? options['socket'] : path.join(rt.config.runRoot, 'nspod.sock');
  const srv = await startCriServer({
    api: rt,
    socket,
    ...(typeof options['streamAddr'] === 'string' ? { streamAddr: options['streamAddr'] } : {}),
  });
  process.stdout.write(`nspod serve: CRI v1 on unix://${srv.socket}, streaming on ${srv.streamUrl}\n`);
  if (!signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
  await srv.close();
});

export function registerCriCommands(program: Command, open: () => Promise<Runtime>): void {
  const cri = program.command('cri').description('the Kubernetes CRI v1 endpoint (kubelet, crictl)');
  cri
    .command('serve')
    .description('serve CRI v1 (RuntimeService, ImageService) on a unix socket until SIGTERM')
    .option('--socket <path>', 'unix socket to listen on (default <run-root>/nspod.sock, i.e. /run/nspod/nspod.sock)')
    .option('--stream-addr <host:port>', 'streaming server address for exec/attach/port-forward (default 127.0.0.1:0)')
    .addHelpText(
      'after',
      `\nExamples:\n  $ nspod cri serve\n  $ nspod cri serve --socket /tmp/nspod.sock --stream-addr 127.0.0.1:10010\n  $ crictl --runtime-endpoint unix:///run/nspod/nspod.sock pods\n`,
    )
    .action(async (o: CriServeOptions) => serveCri(open, o));
}
