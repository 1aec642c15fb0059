/**
 * nspod's SPDY/3.1 session against an independent implementation (spdy-transport as the
 * client) over an in-process socket pair: stream opening with headers, data both ways, FIN, and
 * a GOAWAY that keeps the handled streams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import transport from 'spdy-transport';
import type { SpdyStream as ClientStream } from 'spdy-transport';
import { SpdySession } from '../../../src/cri/streaming/spdy.js';
import type { SpdyStream } from '../../../src/cri/streaming/spdy.js';

test('streams with headers, data both ways, half-close and GOAWAY', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const sock = net.connect(port, '127.0.0.1');
  const [serverSock] = (await accepted) as [net.Socket];
  const session = new SpdySession(serverSock);
  const conn = transport.connection.create(sock, { protocol: 'spdy', isServer: false });
  conn.start(3.1);
  const streams: SpdyStream[] = [];
  session.on('stream', (s: SpdyStream) => {
    streams.push(s);
    // echo in upper case, then end
    let text = '';
    s.input.on('data', (b: Buffer) => (text += b.toString()));
    s.input.on('end', () => {
      s.write(text.toUpperCase());
      s.end();
    });
  });
  const open = (h: Record<string, string>): Promise<ClientStream> =>
    new Promise((resolve, reject) =>
      conn.request({ method: 'POST', path: '/', host: 'x', headers: h }, (e, s) => (e ? reject(e) : resolve(s))),
    );
  const a = await open({ streamtype: 'stdin', port: '80' });
  const b = await open({ streamtype: 'stdout' });
  const replies = [once(a, 'response'), once(b, 'response')];
  let outA = '';
  a.on('data', (d: Buffer) => (outA += d.toString()));
  a.end('hello '.repeat(10000)); // beyond one frame
  await once(a, 'end');
  assert.equal(outA, 'HELLO '.repeat(10000));
  await Promise.all(replies);
  assert.deepEqual(
    streams.map((s) => [s.header('streamType'), s.header('port')]),
    [
      ['stdin', '80'],
      ['stdout', undefined],
    ],
  );
  session.close();
  await once(sock, 'end');
  sock.destroy();
  server.close();
});
