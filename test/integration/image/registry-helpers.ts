/**
 * Test fixtures for the registry tests and bench: Debian's docker-registry (distribution 2.8) on
 * 127.0.0.1 on a free port with its own config and storage, a test CA and server certificate made
 * by openssl, htpasswd (bcrypt) users, images built in a store, and a proxy that can alter or cut
 * the blobs it forwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ImageStore, ImageInfo, Descriptor } from '../../../src/image/index.js';
import { ensureBusyboxImage, MediaType } from '../../../src/image/index.js';
import { makeTar } from '../../unit/storage/tarball.js';
import type { RawEntry } from '../../unit/storage/tarball.js';
import { waitFor } from '../helpers.js';

export interface Registry {
  host: string;
  port: number;
  proc: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

export interface RegistryOptions {
  tls?: { cert: string; key: string };
  htpasswd?: string;
}

/** Starts docker-registry in `dir` (config, data, log); retries on a port taken meanwhile. */
export async function startRegistry(dir: string, o: RegistryOptions = {}): Promise<Registry> {
  let lastLog = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const cfg = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(o.tls ? ['  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`] : []),
      ...(o.htpasswd ? ['auth:', '  htpasswd:', '    realm: nspod-test', `    path: ${o.htpasswd}`] : []),
      '',
    ].join('\n');
    const cfgFile = path.join(dir, 'config.yml');
    writeFileSync(cfgFile, cfg);
    const logFile = path.join(dir, 'registry.log');
    const fd = openSync(logFile, 'a');
    const proc = spawn('docker-registry', ['serve', cfgFile], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    let exited = false;
    proc.once('exit', () => (exited = true));
    try {
      await waitFor(
        'registry to listen',
        async () => {
          if (exited) throw new Error('registry exited');
          return canConnect(port);
        },
        30_000,
      );
    } catch {
      if (!exited) proc.kill('SIGKILL');
      lastLog = readFileSync(logFile, 'utf8');
      continue;
    }
    const stop = async (): Promise<void> => {
      if (exited || proc.pid === undefined) return;
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      process.kill(proc.pid, 'SIGTERM');
      const t = setTimeout(() => proc.pid !== undefined && !exited && process.kill(proc.pid, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    };
    return { host: `127.0.0.1:${port}`, port, proc, dir, stop };
  }
  throw new Error(`docker-registry did not start: ${lastLog}`);
}

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A CA and a server certificate for 127.0.0.1 signed by it. */
export function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  sh(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=nspod test CA',
    ],
    dir,
  );
  sh(
    'openssl',
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1'],
    dir,
  );
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  sh(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'srv.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'srv.crt'), key: path.join(dir, 'srv.key') };
}

/** An htpasswd file (bcrypt) with one user. */
export function makeHtpasswd(dir: string, user: string, password: string): string {
  const file = path.join(dir, 'htpasswd');
  writeFileSync(file, sh('htpasswd', ['-Bbn', user, password], dir));
  return file;
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Puts a gzip layer made of `entries` into the store. */
export async function putLayer(
  store: ImageStore,
  entries: RawEntry[] | Buffer,
): Promise<{ desc: Descriptor; diffId: string }> {
  const tar = Buffer.isBuffer(entries) ? entries : makeTar(entries);
  const gz = gzipSync(tar, { level: 1 });
  const put = await store.putBlob(gz);
  return { desc: { mediaType: MediaType.ociLayerGzip, digest: put.digest, size: put.size }, diffId: sha256(tar) };
}

/** An image: busybox's layer at the bottom, then `layers`, with `cmd`. */
export async function buildImage(
  store: ImageStore,
  name: string,
  layers: Array<RawEntry[] | Buffer>,
  cmd: string[] = ['sh'],
): Promise<ImageInfo> {
  const bb = await ensureBusyboxImage(store);
  const bbConfig = await store.config(bb);
  const extra = [];
  for (const l of layers) extra.push(await putLayer(store, l));
  return store.createImage({
    name,
    layers: [bb.layers[0]!, ...extra.map((e) => e.desc)],
    config: {
      ...bbConfig,
      config: { ...(bbConfig.config ?? {}), Cmd: cmd },
      rootfs: { type: 'layers', diff_ids: [bb.diffIds[0]!, ...extra.map((e) => e.diffId)] },
      history: [],
    },
  });
}

/** Bytes that do not compress, from a seed (so images are reproducible). */
export function noise(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

export interface ProxyMode {
  /** GETs of this blob have one byte altered */
  tamper?: string;
  /** GETs of this blob are cut half-way, `times` times (then pass) */
  cut?: { digest: string; times: number };
}

export interface Proxy {
  port: number;
  host: string;
  /** Range headers seen on blob GETs of the cut/tampered blob ('none' when absent) */
  ranges: string[];
  /** paths of every request forwarded */
  requests: string[];
  close(): Promise<void>;
}

/** A plain HTTP proxy in front of `targetPort` that alters or cuts chosen blobs. */
export async function startProxy(targetPort: number, mode: ProxyMode): Promise<Proxy> {
  const ranges: string[] = [];
  const requests: string[] = [];
  let cuts = 0;
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const up = request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: `127.0.0.1:${targetPort}` },
      },
      (ur) => {
        const target = mode.tamper ?? mode.cut?.digest;
        const isBlob = req.method === 'GET' && target !== undefined && (req.url ?? '').endsWith(`/blobs/${target}`);
        if (isBlob) ranges.push(req.headers.range ?? 'none');
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (isBlob && mode.tamper !== undefined) {
          let off = 0;
          ur.on('data', (c: Buffer) => {
            if (off <= 1000 && off + c.length > 1000) {
              c = Buffer.from(c);
              c[1000 - off] = c[1000 - off]! ^ 0xff;
            }
            off += c.length;
            res.write(c);
          });
          ur.on('end', () => res.end());
          return;
        }
        if (isBlob && mode.cut && cuts < mode.cut.times) {
          cuts++;
          const half = Math.floor(Number(ur.headers['content-length'] ?? 0) / 2);
          let sent = 0;
          ur.on('data', (c: Buffer) => {
            if (sent < 0) return;
            if (sent + c.length >= half) {
              res.write(c.subarray(0, half - sent), () => res.destroy());
              sent = -1;
              ur.destroy();
              return;
            }
            sent += c.length;
            res.write(c);
          });
          return;
        }
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref(); // a test that fails before close() must not hang the runner
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    ranges,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
