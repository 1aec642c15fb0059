/**
 * Test side of the CRI: a real `nspod cri serve` process in its own sandbox, and a real gRPC
 * client made from the same api.proto. Nothing is mocked.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../../../src/cri/index.js';
import { cliPath, destroySandbox, makeSandbox, waitFor } from '../helpers.js';
import type { Sandbox } from '../helpers.js';

export type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CriClient {
  /** a unary RuntimeService call */
  rs(method: string, req?: Msg): Promise<Msg>;
  /** a unary ImageService call */
  is(method: string, req?: Msg): Promise<Msg>;
  runtime: grpc.Client;
  close(): void;
}

export interface CriFixture {
  sb: Sandbox;
  socket: string;
  server: ChildProcess;
  client: CriClient;
  /** stderr of the server so far (for failure messages) */
  log(): string;
  stop(): Promise<void>;
}

export function connect(socket: string): CriClient {
  const { RuntimeService, ImageService } = loadCri();
  const rsc = new RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const isc = new ImageService(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = (c: grpc.Client, method: string, req: Msg): Promise<Msg> =>
    new Promise((resolve, reject) => {
      const fn = (c as unknown as Record<string, (r: Msg, cb: (e: Error | null, r: Msg) => void) => void>)[method];
      if (!fn) return reject(new Error(`no such method ${method}`));
      fn.call(c, req, (e, r) => (e ? reject(e) : resolve(r)));
    });
  return {
    rs: (m, req = {}) => call(rsc, m, req),
    is: (m, req = {}) => call(isc, m, req),
    runtime: rsc,
    close() {
      rsc.close();
      isc.close();
    },
  };
}

/**
 * Starts `nspod cri serve` in a fresh sandbox and waits until it answers Version. `prepare` may
 * change the sandbox (its CNI config, its env) before the server starts.
 */
export async function startCri(prepare?: (sb: Sandbox) => Promise<void>): Promise<CriFixture> {
  const sb = await makeSandbox();
  if (prepare) {
    try {
      await prepare(sb);
    } catch (e) {
      await destroySandbox(sb);
      throw e;
    }
  }
  const socket = path.join(sb.runRoot, 'cri.sock');
  const server = spawn(process.execPath, [cliPath, 'cri', 'serve', '--socket', socket], {
    env: sb.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const fixture: CriFixture = {
    sb,
    socket,
    server,
    client: undefined as unknown as CriClient,
    log: () => out,
    async stop() {
      fixture.client?.close();
      if (server.exitCode === null && server.signalCode === null) {
        const gone = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        const t = setTimeout(() => server.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
      await destroySandbox(sb);
    },
  };
  try {
    await waitFor('the CRI socket', () => existsSync(socket) || server.exitCode !== null, 60_000);
    if (server.exitCode !== null) throw new Error(`nspod cri serve exited ${server.exitCode}: ${out}`);
    fixture.client = connect(socket);
    await waitFor('Version', () => fixture.client.rs('Version', {}), 30_000);
  } catch (e) {
    await fixture.stop();
    throw e;
  }
  return fixture;
}

export function sandboxConfig(name: string, extra: Msg = {}): Msg {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    ...extra,
  };
}

/** The gRPC status code of a failed call. */
export async function codeOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const g = e as grpc.ServiceError;
    return { code: g.code, details: g.details };
  }
  throw new Error('the call succeeded, an error was expected');
}

export { grpc };
