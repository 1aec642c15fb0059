/**
 * The streaming server with real clients of the Kubernetes protocols: WebSocket (`ws`, channel
 * protocols v4/v5) and SPDY/3.1 (the independent spdy-transport implementation as the client):
 * exec with stdin and exit codes, exec on a TTY that is resized, attach, and port-forward to a
 * busybox httpd listening inside the pod's own network namespace.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import transport from 'spdy-transport';
import type { SpdyConnection, SpdyStream } from 'spdy-transport';
import { waitFor } from '../helpers.js';
import { sandboxConfig, startCri } from './client.js';
import type { CriFixture, Msg } from './client.js';

interface WsResult {
  channels: Map<number, Buffer>;
  status?: Msg;
}

/** Connects with the given subprotocol; `onOpen` sends frames; resolves when the server closes. */
async function wsSession(
  url: string,
  protocol: string,
  onOpen: (ws: WebSocket) => void,
  until?: (r: WsResult) => boolean,
): Promise<WsResult> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), [protocol]);
  const r: WsResult = { channels: new Map() };
  ws.on('message', (data: Buffer) => {
    const ch = data[0]!;
    r.channels.set(ch, Buffer.concat([r.channels.get(ch) ?? Buffer.alloc(0), data.subarray(1)]));
    if (until?.(r)) ws.close();
  });
  await once(ws, 'open');
  assert.equal(ws.protocol, protocol);
  onOpen(ws);
  await once(ws, 'close');
  const err = r.channels.get(3);
  if (err && err.length > 0 && protocol !== 'portforward.k8s.io' && !url.includes('/portforward/'))
    r.status = JSON.parse(err.toString()) as Msg;
  return r;
}

async function spdyConnect(
  url: string,
  protocol: string,
): Promise<{ conn: SpdyConnection; socket: Duplex; proto: string }> {
  const u = new URL(url);
  const req = http.request({
    host: u.hostname,
    port: u.port,
    path: u.pathname,
    method: 'POST',
    headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocol },
  });
  req.end();
  const [res, socket] = (await once(req, 'upgrade')) as [http.IncomingMessage, Duplex, Buffer];
  const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false });
  conn.start(3.1);
  return { conn, socket, proto: String(res.headers['x-stream-protocol-version']) };
}

function openStream(conn: SpdyConnection, headers: Record<string, string>): Promise<SpdyStream> {
  return new Promise((resolve, reject) =>
    conn.request({ method: 'POST', path: '/', host: 'localhost', headers }, (e, s) => (e ? reject(e) : resolve(s))),
  );
}

function collect(s: SpdyStream): { text: () => string; ended: Promise<unknown> } {
  let buf = '';
  s.on('data', (b: Buffer) => (buf += b.toString()));
  return { text: () => buf, ended: once(s, 'end') };
}

describe('CRI streaming server: exec, attach and port-forward over SPDY and WebSocket', () => {
  let f: CriFixture;
  let podId = '';
  let ctr = '';
  before(async () => {
    f = await startCri();
    const config = sandboxConfig('stream');
    podId = (await f.client.rs('RunPodSandbox', { config })).pod_sandbox_id as string;
    const { container_id } = await f.client.rs('CreateContainer', {
      pod_sandbox_id: podId,
      sandbox_config: config,
      config: {
        metadata: { name: 'web' },
        image: { image: 'localhost/busybox:latest' },
        command: [
          'sh',
          '-c',
          'mkdir -p /www && echo pod-page > /www/index.html && httpd -p 8080 -h /www && i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done',
        ],
      },
    });
    ctr = container_id as string;
    await f.client.rs('StartContainer', { container_id: ctr });
  });
  after(async () => f?.stop());

  it(
    'execs over WebSocket v5 with stdin, separate stdout/stderr and the exit code in the status',
    { timeout: 90_000 },
    async () => {
      const { url } = await f.client.rs('Exec', {
        container_id: ctr,
        cmd: ['sh', '-c', 'cat; echo to-stderr >&2; exit 5'],
        stdin: true,
        stdout: true,
        stderr: true,
      });
      const r = await wsSession(url as string, 'v5.channel.k8s.io', (ws) => {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('from stdin\n')]));
        ws.send(Buffer.from([255, 0])); // v5: close stdin
      });
      assert.equal(r.channels.get(1)?.toString(), 'from stdin\n');
      assert.equal(r.channels.get(2)?.toString(), 'to-stderr\n');
      assert.equal(r.status?.status, 'Failure');
      assert.equal(r.status?.reason, 'NonZeroExitCode');
      assert.deepEqual(r.status?.details?.causes, [{ reason: 'ExitCode', message: '5' }]);
      // one use per URL
      const again = new WebSocket((url as string).replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
      const [err] = (await once(again, 'unexpected-response')) as [unknown, http.IncomingMessage];
      void err;
    },
  );

  it('execs over WebSocket v4 and reports success', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('Exec', { container_id: ctr, cmd: ['hostname'], stdout: true });
    const r = await wsSession(url as string, 'v4.channel.k8s.io', () => undefined);
    assert.equal(r.channels.get(1)?.toString(), 'stream\n');
    assert.deepEqual(r.status, { metadata: {}, status: 'Success' });
  });

  it('execs over SPDY/3.1 (v4.channel.k8s.io) with stdin and stdout streams', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('Exec', {
      container_id: ctr,
      cmd: ['sh', '-c', 'tr a-z A-Z'],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    const { conn, proto, socket } = await spdyConnect(url as string, 'v4.channel.k8s.io');
    assert.equal(proto, 'v4.channel.k8s.io');
    const error = await openStream(conn, { streamtype: 'error' });
    const stdin = await openStream(conn, { streamtype: 'stdin' });
    const stdout = await openStream(conn, { streamtype: 'stdout' });
    const stderr = await openStream(conn, { streamtype: 'stderr' });
    const out = collect(stdout);
    const err = collect(error);
    collect(stderr);
    stdin.end('spdy works\n');
    await err.ended;
    await waitFor('stdout', () => out.text() === 'SPDY WORKS\n', 30_000);
    assert.deepEqual(JSON.parse(err.text()), { metadata: {}, status: 'Success' });
    socket.destroy();
  });

  it('execs on a TTY over SPDY and applies the resize messages', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('Exec', { container_id: ctr, cmd: ['sh'], tty: true, stdin: true, stdout: true });
    const { conn, socket } = await spdyConnect(url as string, 'v4.channel.k8s.io');
    const error = await openStream(conn, { streamtype: 'error' });
    const stdin = await openStream(conn, { streamtype: 'stdin' });
    const stdout = await openStream(conn, { streamtype: 'stdout' });
    const resize = await openStream(conn, { streamtype: 'resize' });
    const out = collect(stdout);
    const err = collect(error);
    resize.write(JSON.stringify({ Width: 123, Height: 45 }));
    await waitFor('the shell prompt', () => out.text().length > 0, 30_000);
    stdin.write('stty size; tty; exit 4\n');
    await err.ended;
    assert.match(out.text(), /45 123/, 'the terminal has the size sent on the resize stream');
    assert.match(out.text(), /\/dev\/pts\/\d+/, 'the command runs on a terminal');
    const status = JSON.parse(err.text()) as Msg;
    assert.deepEqual(status.details.causes, [{ reason: 'ExitCode', message: '4' }]);
    socket.destroy();
  });

  it('attaches to the running container’s output', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('Attach', { container_id: ctr, stdout: true, stderr: true });
    const r = await wsSession(
      url as string,
      'v5.channel.k8s.io',
      () => undefined,
      (x) => /tick \d+/.test(x.channels.get(1)?.toString() ?? ''),
    );
    assert.match(r.channels.get(1)?.toString() ?? '', /tick \d+\n/);
  });

  it('forwards a port into the pod’s network namespace over SPDY', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('PortForward', { pod_sandbox_id: podId, port: [8080] });
    const { conn, proto, socket } = await spdyConnect(url as string, 'portforward.k8s.io');
    assert.equal(proto, 'portforward.k8s.io');
    const error = await openStream(conn, { streamtype: 'error', port: '8080', requestid: '1' });
    const data = await openStream(conn, { streamtype: 'data', port: '8080', requestid: '1' });
    const body = collect(data);
    const err = collect(error);
    data.write('GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n');
    await body.ended;
    assert.match(body.text(), /^HTTP\/1\.[01] 200/);
    assert.match(body.text(), /pod-page/);
    await err.ended;
    assert.equal(err.text(), '');
    socket.destroy();
  });

  it('forwards a port over WebSocket, announcing the port first on both channels', { timeout: 90_000 }, async () => {
    const { url } = await f.client.rs('PortForward', { pod_sandbox_id: podId, port: [8080] });
    const r = await wsSession(
      `${url as string}?port=8080`,
      'v4.channel.k8s.io',
      (ws) => {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('GET / HTTP/1.0\r\n\r\n')]));
      },
      (x) => /pod-page/.test(x.channels.get(0)?.toString() ?? ''),
    );
    const data = r.channels.get(0)!;
    assert.equal(data.readUInt16LE(0), 8080, 'the first two bytes name the port');
    assert.match(data.subarray(2).toString(), /pod-page/);
  });
});
