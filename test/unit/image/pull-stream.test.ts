/**
 * Pulls from a scripted registry that can pause, alter or cut the layer blob, to see what the
 * pull does with a layer while it downloads: unpacked from the bytes as they arrive, put in
 * place only once the blob is verified and stored, and nothing left when it is not.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { openImageStore } from '../../../src/image/index.js';
import { realHost } from '../../../src/host/index.js';
import { pullImage } from '../../../src/image/registry/pull.js';
import type { PullEvent } from '../../../src/image/registry/pull.js';
import { makeTar } from '../storage/tarball.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const A = randomBytes(1536 * 1024);
const B = randomBytes(3 * 1024 * 1024);
const tar = makeTar([
  { name: 'data/', type: 'dir' },
  { name: 'data/a.bin', body: A },
  { name: 'data/b.bin', body: B },
]);
const gz = gzipSync(tar, { level: 1 });
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length };
const diffHex = sha(tar).slice(7);
const config = Buffer.from(
  JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [layer],
  }),
);

/** How the layer blob is served on each GET (by request number, from 0). */
type Serve = (res: ServerResponse, n: number, range: string | undefined) => void | Promise<void>;

let dir: string;
let server: Server;
let port = 0;
let serve: Serve = (res) => void res.writeHead(200).end(gz);
const ranges: string[] = [];

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'nspod-pull-stream-'));
  server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (url === '/v2/t/app/manifests/1') {
      return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
    }
    if (url === `/v2/t/app/blobs/${sha(config)}`) return void res.writeHead(200).end(config);
    if (url === `/v2/t/app/blobs/${layer.digest}`) {
      ranges.push(req.headers.range ?? 'none');
      return void serve(res, ranges.length - 1, req.headers.range);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function pull(onEvent?: (e: PullEvent) => void): { root: string; done: ReturnType<typeof pullImage> } {
  const root = path.join(dir, `root-${n++}`);
  const store = openImageStore({ root, host: realHost });
  ranges.length = 0;
  const done = pullImage(store, `127.0.0.1:${port}/t/app:1`, {
    registries: { search: [], registries: {} },
    authFile: path.join(dir, 'auth.json'),
    retry: { attempts: 3, baseDelayMs: 1 },
    ...(onEvent ? { onEvent } : {}),
  });
  return { root, done };
}

const ls = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('pull: a layer unpacks while it downloads', () => {
  test('files appear in the unpack dir before the last byte; the layer and blob only once it is verified', async () => {
    let release!: () => void;
    const rest = new Promise<void>((r) => (release = r));
    const half = Math.floor(gz.length * 0.8);
    serve = async (res) => {
      res.writeHead(200, { 'content-length': String(gz.length) });
      res.write(gz.subarray(0, half));
      await rest;
      res.end(gz.subarray(half));
    };
    const { root, done } = pull();
    const layers = path.join(root, 'layers');
    const blobs = path.join(root, 'images', 'blobs', 'sha256');
    // data/a.bin is whole in the first 80 %: the unpack writes it before the download ends
    await until('a.bin unpacked from the partial download', () =>
      ls(layers).some((d) => {
        const f = path.join(layers, d, 'data', 'a.bin');
        return d.startsWith(`${diffHex}.tmp-`) && existsSync(f) && statSync(f).size === A.length;
      }),
    );
    assert.equal(existsSync(path.join(layers, diffHex)), false, 'not in place before the blob is verified');
    assert.equal(ls(blobs).includes(layer.digest.slice(7)), false, 'the blob is not stored yet');
    release();
    const r = await done;
    assert.equal(r.downloaded, gz.length);
    assert.deepEqual(readFileSync(path.join(layers, diffHex, 'data', 'b.bin')), B);
    assert.deepEqual(ls(layers), [diffHex]);
    assert.ok(ls(blobs).includes(layer.digest.slice(7)));
    assert.deepEqual(ls(path.join(root, 'images', 'ingest')), []);
  });

  test('a blob altered after the unpack began: the error says so, and no layer, blob or temp dir stays', async () => {
    const bad = Buffer.from(gz);
    const at = Math.floor(gz.length * 0.9);
    bad[at] = bad[at]! ^ 0xff;
    serve = (res) => void res.writeHead(200, { 'content-length': String(bad.length) }).end(bad);
    const { root, done } = pull();
    await assert.rejects(
      done,
      new RegExp(`layer ${layer.digest} has digest sha256:[0-9a-f]{64} .*content was altered`),
    );
    assert.deepEqual(ls(path.join(root, 'layers')), []);
    assert.deepEqual(ls(path.join(root, 'images', 'blobs', 'sha256')), []);
    assert.deepEqual(ls(path.join(root, 'images', 'ingest')), []);
  });

  test('a registry that cannot resume a cut download: the unpack starts over from the stored blob', async () => {
    serve = (res, i) => {
      // first GET cut half-way; then whole (Range ignored: 200, not 206)
      if (i > 0) return void res.writeHead(200, { 'content-length': String(gz.length) }).end(gz);
      res.writeHead(200, { 'content-length': String(gz.length) });
      res.write(gz.subarray(0, Math.floor(gz.length / 2)), () => res.destroy());
    };
    const phases: string[] = [];
    const { root, done } = pull((e) => {
      if (e.kind === 'layer' && e.digest === layer.digest && phases.at(-1) !== e.phase) phases.push(e.phase);
    });
    await done;
    assert.equal(ranges[0], 'none');
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/, 'a resume was asked for');
    assert.ok(phases.includes('retrying'));
    const layers = path.join(root, 'layers');
    assert.deepEqual(ls(layers), [diffHex]);
    assert.deepEqual(readFileSync(path.join(layers, diffHex, 'data', 'a.bin')), A);
    assert.deepEqual(readFileSync(path.join(layers, diffHex, 'data', 'b.bin')), B);
  });
});
