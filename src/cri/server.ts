/**
 * The CRI server: RuntimeService and ImageService (CRI v1, package runtime.v1) on a unix socket,
 * plus the streaming server for exec/attach/port-forward on loopback.
 *
 *   startCriServer: open the Runtime API ▶ streaming server ▶ gRPC on the socket (0660, root)
 *   close:          stop accepting ▶ end event streams ▶ streaming server ▶ remove the socket
 *
 * Pods and containers made here are ordinary nspod pods (`nspod pods`, `ps`, `inspect` show
 * them) and pods made by `nspod play` are listed here.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openRuntime } from '../pod/index.js';
import type { Runtime, RuntimeOptions } from '../pod/index.js';
import { nspodVersion, projectDir } from '../config/index.js';
import { invalidArgument, checkSocketPath } from '../errors/index.js';
import { loadCri } from './proto.js';
import { makeRuntimeService } from './runtime-service.js';
import { makeImageService } from './image-service.js';
import { openEventHub } from './events.js';
import { startStreamingServer } from './streaming/server.js';

export const DEFAULT_SOCKET = '/run/nspod/nspod.sock';

export interface CriServerOptions extends RuntimeOptions {
  /** unix socket path (default /run/nspod/nspod.sock) */
  socket?: string;
  /** streaming server address, `host:port` (default 127.0.0.1:0 = a free port) */
  streamAddr?: string;
  /** an already open Runtime API (tests, embedding) */
  api?: Runtime;
}

export interface CriServer {
  socket: string;
  streamUrl: string;
  runtime: Runtime;
  close(): Promise<void>;
}

/** `host:port` (`[v6]:port`; an empty host is 127.0.0.1) of the streaming server; unset = 127.0.0.1:0. */
export function parseStreamAddr(a: string | undefined): { host: string; port: number } {
  if (!a) return { host: '127.0.0.1', port: 0 };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(a);
  if (!m || Number(m[3]) > 65535) throw invalidArgument(`--stream-addr: expected host:port, got "${a}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

export async function startCriServer(o: CriServerOptions = {}): Promise<CriServer> {
  const rt = o.api ?? (await openRuntime(o));
  const socket = path.resolve(o.socket ?? path.join(rt.config.runRoot, 'nspod.sock'));
  checkSocketPath(socket, o.socket ? '--socket' : 'CRI socket (<run-root>/nspod.sock)');
  const version = nspodVersion();
  const relay = process.env.NSPOD_RELAY ?? path.join(projectDir, 'native', 'nspod-relay');
  const { host, port } = parseStreamAddr(o.streamAddr);
  const streaming = await startStreamingServer({ rt, relay, host, port });
  const events = openEventHub(rt);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 40 * 1024 * 1024,
  });
  let bound = false;
  try {
    const criDir = path.join(rt.config.runRoot, 'cri');
    await fs.mkdir(criDir, { recursive: true });
    const { RuntimeService, ImageService } = loadCri();
    server.addService(
      RuntimeService.service,
      makeRuntimeService({
        rt,
        version,
        streaming,
        events,
        runtimeConfigFile: path.join(criDir, 'runtime-config.json'),
      }),
    );
    server.addService(ImageService.service, makeImageService(rt));
    await fs.mkdir(path.dirname(socket), { recursive: true });
    await fs.rm(socket, { force: true });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
    bound = true;
    await fs.chmod(socket, 0o660);
  } catch (e) {
    // Not started: nothing may keep the process alive (the streaming server listens already).
    server.forceShutdown();
    events.close();
    await streaming.close();
    if (bound) await fs.rm(socket, { force: true });
    throw e;
  }
  return {
    socket,
    streamUrl: streaming.baseUrl,
    runtime: rt,
    async close() {
      events.close();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      await streaming.close();
      await fs.rm(socket, { force: true });
    },
  };
}
