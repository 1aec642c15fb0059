/**
 * Probe handlers against real local servers (a hostNetwork pod: no namespace to enter, so no root
 * is needed): httpGet status codes and headers, tcpSocket, the gRPC health check, timeouts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { runHandler } from '../../../src/pod/index.js';
import type { Context } from '../../../src/pod/context.js';
import type { ContainerRecord, PodRecord } from '../../../src/state/index.js';

const pod = { name: 'p', runDir: '/nonexistent', sandbox: { namespaces: {} } } as unknown as PodRecord;
const rec = {
  name: 'app',
  id: 'x',
  spec: { ports: [{ name: 'web', containerPort: 1 }] },
} as unknown as ContainerRecord;
const ctx = {} as Context;

function grpcFrame(status: number): Buffer {
  const msg = Buffer.from([0x08, status]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

describe('probe handlers (host network)', () => {
  let web: http.Server;
  let grpc: http2.Http2Server;
  let silent: net.Server;
  let webPort = 0;
  let grpcPort = 0;
  let silentPort = 0;
  let lastHeaders: http.IncomingHttpHeaders = {};
  let serving = 1;
  let lastService = '';

  before(async () => {
    web = http.createServer((req, res) => {
      lastHeaders = req.headers;
      res.statusCode = req.url === '/bad' ? 500 : req.url === '/redirect' ? 302 : 200;
      if (req.url === '/slow') return setTimeout(() => res.end('late'), 3000);
      res.end('x');
    });
    grpc = http2.createServer();
    grpc.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (b: Buffer) => chunks.push(b));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        lastService = body.length > 7 ? body.subarray(7).toString() : '';
        assert.equal(headers[':path'], '/grpc.health.v1.Health/Check');
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcFrame(serving));
      });
    });
    silent = net.createServer(() => undefined);
    for (const [s, set] of [
      [web, (p: number) => (webPort = p)],
      [grpc, (p: number) => (grpcPort = p)],
      [silent, (p: number) => (silentPort = p)],
    ] as const) {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      set((s.address() as AddressInfo).port);
    }
  });

  after(() => {
    web.close();
    grpc.close();
    silent.close();
  });

  const get = (p: string, extra: object = {}) =>
    runHandler(
      ctx,
      { pod, rec },
      { kind: 'httpGet', path: p, port: webPort, scheme: 'HTTP', headers: [], ...extra },
      1000,
    );

  it('httpGet: 2xx and 3xx succeed, 500 fails with the status code', async () => {
    assert.equal((await get('/')).ok, true);
    assert.equal((await get('/redirect')).ok, true);
    const bad = await get('/bad');
    assert.equal(bad.ok, false);
    assert.match(bad.message, /statuscode: 500/);
  });

  it('httpGet: sends the configured headers and a kube-probe user agent', async () => {
    await get('/', { headers: [{ name: 'X-Probe', value: 'yes' }] });
    assert.equal(lastHeaders['x-probe'], 'yes');
    assert.match(String(lastHeaders['user-agent']), /^kube-probe\//);
  });

  it('httpGet: times out', async () => {
    const r = await get('/slow');
    assert.equal(r.ok, false);
    assert.match(r.message, /deadline exceeded/);
  });

  it('tcpSocket: connects, and fails on a closed port', async () => {
    assert.equal((await runHandler(ctx, { pod, rec }, { kind: 'tcpSocket', port: silentPort }, 1000)).ok, true);
    const closed = await new Promise<number>((r) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const r = await runHandler(ctx, { pod, rec }, { kind: 'tcpSocket', port: closed }, 1000);
    assert.equal(r.ok, false);
    assert.match(r.message, /ECONNREFUSED/);
  });

  it('grpc: SERVING succeeds, NOT_SERVING fails, the service name is sent', async () => {
    serving = 1;
    assert.deepEqual(await runHandler(ctx, { pod, rec }, { kind: 'grpc', port: grpcPort, service: 'svc' }, 2000), {
      ok: true,
      message: '',
    });
    assert.equal(lastService, 'svc');
    serving = 2;
    const r = await runHandler(ctx, { pod, rec }, { kind: 'grpc', port: grpcPort }, 2000);
    assert.equal(r.ok, false);
    assert.match(r.message, /NOT_SERVING/);
  });

  it('httpGet with scheme HTTPS does not verify the certificate (as kubelet)', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-tls-'));
    try {
      try {
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-keyout',
            `${dir}/k`,
            '-out',
            `${dir}/c`,
            '-days',
            '1',
            '-subj',
            '/CN=x',
          ],
          { stdio: 'ignore' },
        );
      } catch {
        t.skip('openssl not installed');
        return;
      }
      const srv = https.createServer({ key: readFileSync(`${dir}/k`), cert: readFileSync(`${dir}/c`) }, (req, res) => {
        res.statusCode = req.url === '/bad' ? 503 : 204;
        res.end();
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as AddressInfo).port;
      try {
        const h = { kind: 'httpGet' as const, port, scheme: 'HTTPS' as const, headers: [] };
        assert.equal((await runHandler(ctx, { pod, rec }, { ...h, path: '/' }, 2000)).ok, true);
        const bad = await runHandler(ctx, { pod, rec }, { ...h, path: '/bad' }, 2000);
        assert.equal(bad.ok, false);
        assert.match(bad.message, /statuscode: 503/);
      } finally {
        srv.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a named port that the container lacks is a failure, not a crash', async () => {
    const r = await runHandler(ctx, { pod, rec }, { kind: 'tcpSocket', port: 'nope' }, 1000);
    assert.equal(r.ok, false);
    assert.match(r.message, /port "nope"/);
  });
});
