import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { openImageStore, parseReference } from '../../../src/image/index.js';
import { realHost } from '../../../src/host/index.js';
import type { ImageIndex } from '../../../src/image/index.js';
import {
  RegistryClient,
  isTransient,
  parseWwwAuthenticate,
  registryMessage,
} from '../../../src/image/registry/client.js';
import {
  authFilePath,
  decodeAuth,
  defaultRegistriesConfig,
  endpointsFor,
  findCredentials,
  isInsecure,
  removeCredentials,
  saveCredentials,
} from '../../../src/image/registry/config.js';
import { parseRegistriesConfig } from '../../../src/image/registry/registries-file.js';
import { httpRequest, newAgent } from '../../../src/image/registry/http.js';
import { candidatesFor, parsePlatform, selectPlatform } from '../../../src/image/registry/pull.js';
import { unpackLayer } from '../../../src/storage/index.js';

describe('WWW-Authenticate', () => {
  test('bearer challenge with quoted parameters and commas inside', () => {
    const [c, ...rest] = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    );
    assert.equal(rest.length, 0);
    assert.equal(c?.scheme, 'bearer');
    assert.deepEqual(c?.params, {
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:samalba/my-app:pull,push',
    });
  });
  test('basic, unquoted values, escapes and several challenges', () => {
    const list = parseWwwAuthenticate('Basic realm="basic-realm", Bearer realm=https://a/t, service="s\\"x"');
    assert.deepEqual(
      list.map((c) => c.scheme),
      ['basic', 'bearer'],
    );
    assert.equal(list[0]?.params.realm, 'basic-realm');
    assert.equal(list[1]?.params.realm, 'https://a/t');
    assert.equal(list[1]?.params.service, 's"x');
  });
  test('empty or garbage header gives no usable challenge', () => {
    assert.deepEqual(parseWwwAuthenticate(''), []);
    assert.deepEqual(parseWwwAuthenticate('realm="x"'), []);
  });
});

test('registry error bodies become one line', () => {
  assert.equal(
    registryMessage('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'),
    'manifest unknown',
  );
  assert.equal(
    registryMessage('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'),
    'unauthorized: authentication required',
  );
  assert.equal(registryMessage('<html>bad gateway</html>'), undefined);
});

describe('registries config', () => {
  test('defaults, loopback insecure unless said otherwise, mirrors first', () => {
    const d = defaultRegistriesConfig();
    assert.deepEqual(d.search, ['docker.io']);
    assert.equal(isInsecure(d, 'localhost:5000'), true);
    assert.equal(isInsecure(d, '127.0.0.1:5000'), true);
    assert.equal(isInsecure(d, 'quay.io'), false);
    const c = parseRegistriesConfig(
      JSON.stringify({
        search: ['quay.io', 'docker.io'],
        registries: { '127.0.0.1:5000': { insecure: false, caFile: '/x.pem' }, 'docker.io': { mirrors: ['m:5000'] } },
      }),
      'r.json',
    );
    assert.equal(isInsecure(c, '127.0.0.1:5000'), false);
    assert.deepEqual(endpointsFor(c, 'docker.io'), ['m:5000', 'docker.io']);
  });
  test('a bad field is named', () => {
    assert.throws(
      () => parseRegistriesConfig('{"registries":{"a":{"insecure":"yes"}}}', 'r.json'),
      /registries config r\.json: registries\.a\.insecure: /,
    );
    assert.throws(() => parseRegistriesConfig('{"serch":[]}', 'r.json'), /r\.json/);
    assert.throws(() => parseRegistriesConfig('{', 'r.json'), /not valid JSON/);
  });
});

describe('auth file', () => {
  test('docker config.json format, mode 0600, other entries kept, logout', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'nspod-auth-'));
    try {
      const env = { NSPOD_AUTH_FILE: path.join(dir, 'sub', 'auth.json') };
      const file = authFilePath('/nowhere', env);
      assert.equal(file, env.NSPOD_AUTH_FILE);
      assert.equal(authFilePath('/r', {}), '/r/auth.json');
      await saveCredentials(file, 'reg:5000', { username: 'alice', password: 'p:w' });
      await saveCredentials(file, 'docker.io', { username: 'bob', password: 'x' });
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
      assert.equal(Buffer.from(raw.auths['reg:5000']!.auth, 'base64').toString(), 'alice:p:w');
      assert.ok(raw.auths['https://index.docker.io/v1/'], 'docker.io under docker’s key');
      assert.deepEqual(await findCredentials(file, 'reg:5000', env), { username: 'alice', password: 'p:w' });
      assert.equal(await findCredentials(file, 'other:1', env), undefined);
      assert.equal(await removeCredentials(file, 'reg:5000'), true);
      assert.equal(await removeCredentials(file, 'reg:5000'), false);
      assert.equal(await findCredentials(file, 'reg:5000', env), undefined);
      assert.deepEqual(await findCredentials(file, 'docker.io', env), { username: 'bob', password: 'x' });
      assert.deepEqual(decodeAuth({ username: 'u', password: 'p' }), { username: 'u', password: 'p' });
      assert.equal(decodeAuth({ auth: Buffer.from('nocolon').toString('base64') }), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('manifest selection', () => {
  const d = (arch: string, variant?: string) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${createHash('sha256')
      .update(arch + (variant ?? ''))
      .digest('hex')}`,
    size: 1,
    platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
  });
  const index: ImageIndex = { schemaVersion: 2, manifests: [d('arm64', 'v8'), d('amd64'), d('s390x')] };
  test('picks the wanted platform', () => {
    assert.equal(selectPlatform(index, parsePlatform('linux/amd64'), 'x').digest, d('amd64').digest);
    assert.equal(selectPlatform(index, parsePlatform('linux/arm64/v8'), 'x').digest, d('arm64', 'v8').digest);
    assert.equal(selectPlatform(index, parsePlatform('linux/arm64'), 'x').digest, d('arm64', 'v8').digest);
  });
  test('a missing platform names those present', () => {
    const noAmd: ImageIndex = { schemaVersion: 2, manifests: [d('arm64', 'v8'), d('s390x')] };
    assert.throws(
      () => selectPlatform(noAmd, parsePlatform('linux/amd64'), 'image "x"'),
      (e: Error) =>
        /no image for linux\/amd64/.test(e.message) &&
        /platforms present: linux\/arm64\/v8, linux\/s390x/.test(e.message),
    );
  });
  test('bad --platform is refused', () => {
    assert.throws(() => parsePlatform('amd64'), /--platform "amd64": expected os\/arch/);
    assert.deepEqual(parsePlatform(undefined).os, 'linux');
  });
  test('short names go through the search registries', () => {
    const cfg = { search: ['quay.io', 'docker.io'], registries: {} };
    assert.deepEqual(
      candidatesFor(parseReference('busybox'), cfg).map((c) => c.name),
      ['quay.io/busybox:latest', 'docker.io/library/busybox:latest'],
    );
    assert.deepEqual(
      candidatesFor(parseReference('reg:5000/team/app@sha256:' + 'a'.repeat(64)), cfg).map((c) => [c.registry, c.repo]),
      [['reg:5000', 'team/app']],
    );
  });
});

describe('client against a local HTTP server', () => {
  test('a blob cut mid-way is resumed with Range and verified whole', async () => {
    const blob = Buffer.alloc(300_000, 7);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 31) & 0xff;
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const ranges: string[] = [];
    let cut = true;
    const server = createServer((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      if (req.url === `/v2/r/blobs/${digest}`) {
        ranges.push(req.headers.range ?? 'none');
        const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        const start = m ? Number(m[1]) : 0;
        res.writeHead(m ? 206 : 200, {
          'content-length': String(blob.length - start),
          ...(m ? { 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` } : {}),
        });
        if (cut) {
          cut = false;
          res.write(blob.subarray(0, 100_000), () => res.destroy());
          return;
        }
        return res.end(blob.subarray(start));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const client = new RegistryClient({
      registry: `127.0.0.1:${port}`,
      config: defaultRegistriesConfig(),
      retry: { attempts: 3, baseDelayMs: 10 },
    });
    try {
      const chunks: Buffer[] = [];
      await client.fetchBlob('r', digest, blob.length, {
        write: async (c) => void chunks.push(c),
        reset: async () => void (chunks.length = 0),
      });
      const got = Buffer.concat(chunks);
      assert.equal(createHash('sha256').update(got).digest('hex'), digest.slice(7));
      assert.equal(ranges[0], 'none');
      assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
      assert.ok(Number(/\d+/.exec(ranges[1]!)![0]) > 0, 'resumed past byte 0');
    } finally {
      await client.close();
      server.close();
    }
  });
  test('bearer auth: challenge followed, token fetched with basic credentials and cached per scope', async () => {
    const tokenRequests: string[] = [];
    let port = 0;
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const challenge = `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry"`;
      if (url.pathname === '/token') {
        tokenRequests.push(url.searchParams.getAll('scope').join(' '));
        const auth = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
        if (auth !== 'alice:right' || url.searchParams.get('service') !== 'test-registry') {
          return res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        }
        return res.writeHead(200).end(JSON.stringify({ token: `tok ${url.searchParams.get('scope')}` }));
      }
      if (url.pathname === '/v2/') return res.writeHead(401, { 'www-authenticate': challenge }).end();
      if (url.pathname === '/v2/team/app/manifests/v1') {
        if (req.headers.authorization !== 'Bearer tok repository:team/app:pull') {
          const scoped = `${challenge},scope="repository:team/app:pull"`;
          return res.writeHead(401, { 'www-authenticate': scoped }).end();
        }
        return res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{}');
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const make = (password: string) =>
      new RegistryClient({
        registry: `127.0.0.1:${port}`,
        config: defaultRegistriesConfig(),
        credentials: { username: 'alice', password },
        retry: { attempts: 1 },
      });
    const good = make('right');
    const bad = make('wrong');
    try {
      for (let i = 0; i < 2; i++) {
        const m = await good.getManifest('team/app', 'v1', ['application/vnd.oci.image.manifest.v1+json']);
        assert.equal(m.body.toString(), '{}');
      }
      assert.deepEqual(tokenRequests, ['repository:team/app:pull'], 'one token for the scope, then cached');
      await assert.rejects(
        bad.getManifest('team/app', 'v1', []),
        /authentication failed for user "alice": unauthorized: bad credentials/,
      );
    } finally {
      await good.close();
      await bad.close();
      server.close();
    }
  });

  test('HTTP layer: kept-alive sockets reused, bodies streamed both ways, a silent server times out as transient', async () => {
    const sockets = new Set<unknown>();
    const received: string[] = [];
    const server = createServer((req, res) => {
      sockets.add(req.socket);
      if (req.url === '/silent') return; // never answers
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
        res.writeHead(200, { 'x-n': String(received.length) }).end('x'.repeat(100_000));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = newAgent({ connections: 2, idleTimeout: 300 });
    try {
      const a = await httpRequest(`${base}/a`, { method: 'GET', dispatcher: agent });
      assert.equal(a.statusCode, 200);
      assert.equal(a.headers['x-n'], '1');
      assert.equal((await a.body.text()).length, 100_000);
      const b = await httpRequest(`${base}/b`, {
        method: 'PUT',
        headers: { 'content-length': '5' },
        body: Readable.from([Buffer.from('he'), Buffer.from('llo')]),
        dispatcher: agent,
      });
      await b.body.dump();
      const c = await httpRequest(new URL(`${base}/c`), {
        method: 'POST',
        body: Buffer.from('buf'),
        dispatcher: agent,
      });
      let n = 0;
      for await (const chunk of c.body) n += chunk.length;
      assert.equal(n, 100_000);
      assert.deepEqual(received, ['GET /a ', 'PUT /b hello', 'POST /c buf']);
      assert.equal(sockets.size, 1, 'one connection, kept alive');
      const e = await httpRequest(`${base}/silent`, { method: 'GET', dispatcher: agent }).catch((x: unknown) => x);
      assert.equal((e as { code?: string }).code, 'ETIMEDOUT');
      assert.equal(isTransient(e), true);
    } finally {
      await agent.close();
      server.closeAllConnections();
      server.close();
    }
  });

  test('an insecure registry with a port is probed in plain HTTP first, then HTTPS when that is not it', async () => {
    // what each connection began with: 'G' for a plain GET, 0x16 for a TLS handshake
    const firsts: string[] = [];
    let answer: 'registry' | 'tls-only' = 'registry';
    const server = net.createServer((sock) => {
      sock.once('data', (b: Buffer) => {
        firsts.push(b[0] === 0x16 ? 'tls' : String.fromCharCode(b[0]!));
        if (b[0] === 0x16) return void sock.destroy();
        const body = answer === 'registry' ? '{}' : 'Client sent an HTTP request to an HTTPS server.';
        const status = answer === 'registry' ? '200 OK' : '400 Bad Request';
        sock.end(`HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = (): RegistryClient =>
      new RegistryClient({ registry, config: defaultRegistriesConfig(), retry: { attempts: 1 } });
    try {
      const plain = client();
      await plain.ping();
      await plain.close();
      assert.deepEqual(firsts, ['G'], 'a plain registry: no TLS handshake tried');
      firsts.length = 0;
      answer = 'tls-only';
      const tls = client();
      await assert.rejects(tls.ping());
      await tls.close();
      assert.deepEqual(firsts, ['G', 'tls'], 'a port that is not plain HTTP: then HTTPS');
    } finally {
      server.close();
    }
  });

  test('transient errors are told from refusals', () => {
    assert.equal(isTransient(Object.assign(new Error('x'), { code: 'ECONNRESET' })), true);
    assert.equal(
      isTransient(new Error('x', { cause: Object.assign(new Error('y'), { code: 'UND_ERR_SOCKET' }) })),
      true,
    );
    assert.equal(isTransient(new Error('nope')), false);
  });
});

test('a zstd layer unpacks (pure-JS decompressor)', async () => {
  // `tar -cf - d/hello.txt | zstd -19`; the tar's sha256 is the diffId
  const zst = Buffer.from(
    'KLUv/WQAJx0DAOJDDRGg7XDoP/8DgNzjNycUOM5IAQZsZQ0PTurGkHPS0hXwveYG80IYf8e1ctoo+KcQciOk7sECEADx4+UWQAgADKgGdBjYQweIyUmOCvCbYagGAOH/d8KXD9wDwKAAYD4BN1Dh2Ec=',
    'base64',
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'nspod-zstd-'));
  try {
    writeFileSync(path.join(dir, 'blob'), zst);
    const r = await unpackLayer({
      blob: path.join(dir, 'blob'),
      dest: path.join(dir, 'layer'),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
      expectedDiffId: 'sha256:22cee7381691f9969138052c9bc2c1c83aee7e945b9d01e97fbca76b2b2d30f4',
    });
    assert.equal(r.diffId, 'sha256:22cee7381691f9969138052c9bc2c1c83aee7e945b9d01e97fbca76b2b2d30f4');
    assert.equal(readFileSync(path.join(dir, 'layer', 'd', 'hello.txt'), 'utf8'), 'hello zstd\n');
    writeFileSync(path.join(dir, 'bad'), Buffer.concat([zst.subarray(0, 40), Buffer.alloc(40, 1)]));
    await assert.rejects(unpackLayer({ blob: path.join(dir, 'bad'), dest: path.join(dir, 'layer2') }), /zstd|tar/);
    assert.deepEqual(readdirSync(dir).sort(), ['bad', 'blob', 'layer'], 'nothing left of the failed unpack');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GC keeps what a pull in flight marked, and collects it once released', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nspod-inflight-'));
  try {
    const store = openImageStore({ root: dir, host: realHost, gcGraceMs: 0 });
    const put = await store.putBlob(Buffer.from('a layer being pulled'));
    const release = await store.markInflight([put.digest], []);
    assert.deepEqual((await store.gc()).blobs, []);
    assert.equal(await store.hasBlob(put.digest), true);
    await release();
    assert.deepEqual((await store.gc()).blobs, [put.digest]);
    assert.equal(await store.hasBlob(put.digest), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
