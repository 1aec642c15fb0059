import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { realHost } from '../../../src/host/index.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage, ociArch, openImageStore } from '../../../src/image/index.js';
import type { ImageStore } from '../../../src/image/index.js';
import { makeTar } from '../storage/tarball.js';

let root: string;
let store: ImageStore;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'nspod-archive-'));
  store = openImageStore({ root: path.join(root, 'store'), host: realHost, gcGraceMs: 0 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** Writes `files` (path → bytes, or a symlink target) under a dir and tars it. */
async function archive(name: string, files: Record<string, Buffer | { symlink: string }>, gz = false): Promise<string> {
  const dir = path.join(root, `${name}.d`);
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    if (Buffer.isBuffer(v)) writeFileSync(path.join(dir, p), v);
    else symlinkSync(v.symlink, path.join(dir, p));
  }
  const out = path.join(root, name);
  await tar.c({ cwd: dir, file: out, portable: true, gzip: gz }, Object.keys(files));
  return out;
}

describe('loadArchive', () => {
  test("an OCI archive with a nested index gives this platform's image under its name", async () => {
    const layerTar = makeTar([{ name: 'hello.txt', body: 'hi' }]);
    const layer = gzipSync(layerTar);
    const config = json({
      architecture: ociArch(),
      os: 'linux',
      config: { Cmd: ['cat', '/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${hex(layerTar)}`] },
    });
    const manifest = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${hex(config)}`,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: `sha256:${hex(layer)}`,
          size: layer.length,
        },
      ],
    });
    const other = json({ schemaVersion: 2, config: { digest: `sha256:${'1'.repeat(64)}`, size: 1 }, layers: [] });
    const nested = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${hex(other)}`,
          size: other.length,
          platform: { os: 'linux', architecture: 'riscv64' },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${hex(manifest)}`,
          size: manifest.length,
          platform: { os: 'linux', architecture: ociArch() },
        },
      ],
    });
    const index = json({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          digest: `sha256:${hex(nested)}`,
          size: nested.length,
          annotations: { 'org.opencontainers.image.ref.name': 'example.com/app:v1' },
        },
      ],
    });
    const file = await archive('oci.tar', {
      'oci-layout': json({ imageLayoutVersion: '1.0.0' }),
      'index.json': index,
      [`blobs/sha256/${hex(layer)}`]: layer,
      [`blobs/sha256/${hex(config)}`]: config,
      [`blobs/sha256/${hex(manifest)}`]: manifest,
      [`blobs/sha256/${hex(other)}`]: other,
      [`blobs/sha256/${hex(nested)}`]: nested,
    });
    const [info, ...rest] = await store.loadArchive(file);
    assert.equal(rest.length, 0);
    assert.equal(info!.id, `sha256:${hex(config)}`);
    assert.equal(info!.manifestDigest, `sha256:${hex(manifest)}`);
    assert.deepEqual(info!.names, ['example.com/app:v1']);
    const [dir] = await store.layerDirs(await store.resolve('example.com/app:v1'));
    assert.equal(readFileSync(path.join(dir!, 'hello.txt'), 'utf8'), 'hi');
  });

  test('an OCI archive whose blob does not match its name is refused', async () => {
    const file = await archive('bad.tar', {
      'index.json': json({ schemaVersion: 2, manifests: [] }),
      [`blobs/sha256/${'2'.repeat(64)}`]: Buffer.from('not that'),
    });
    await assert.rejects(store.loadArchive(file), /content does not match its digest/);
    await assert.rejects(store.loadArchive(path.join(root, 'none.tar')), /cannot be opened/);
  });

  test("a gzip'd docker-save archive with layer.tar dirs and a symlinked layer", async () => {
    const l1 = makeTar([
      { name: 'a', body: 'A' },
      { name: 'etc/', type: 'dir' },
    ]);
    const l2 = makeTar([
      { name: '.wh.a', body: '' },
      { name: 'b', body: 'B' },
    ]);
    const diffIds = [l1, l2, l1].map((l) => `sha256:${hex(l)}`);
    const config = json({
      architecture: 'amd64',
      os: 'linux',
      created: '2020-01-01T00:00:00Z',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
    const file = await archive(
      'docker.tar.gz',
      {
        [`${hex(config)}.json`]: config,
        'l1/layer.tar': l1,
        'l1/VERSION': Buffer.from('1.0'),
        'l2/layer.tar': l2,
        'l3/layer.tar': { symlink: '../l1/layer.tar' },
        repositories: json({ busybox: { old: 'l3' } }),
        'manifest.json': json([
          {
            Config: `${hex(config)}.json`,
            RepoTags: ['busybox:old', 'localhost/bb:1'],
            Layers: ['l1/layer.tar', 'l2/layer.tar', 'l3/layer.tar'],
          },
        ]),
      },
      true,
    );
    const [info] = await store.loadArchive(file);
    assert.equal(info!.id, `sha256:${hex(config)}`);
    assert.deepEqual(info!.names.sort(), ['docker.io/library/busybox:old', 'localhost/bb:1']);
    assert.equal(info!.created, '2020-01-01T00:00:00Z');
    assert.deepEqual(
      info!.layers.map((l) => [l.mediaType, l.digest]),
      [l1, l2, l1].map((l) => ['application/vnd.oci.image.layer.v1.tar', `sha256:${hex(l)}`]),
    );
    const manifest = await store.manifest(info!);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    const dirs = await store.layerDirs(info!);
    assert.equal(dirs.length, 3);
    assert.equal(dirs[0], dirs[2]);
    assert.equal(readFileSync(path.join(dirs[1]!, 'b'), 'utf8'), 'B');
  });

  test('saveArchive writes an OCI archive that loads back the same images', async () => {
    const rootfs = path.join(root, 'r.tar');
    writeFileSync(rootfs, makeTar([{ name: 'x', body: 'X' }]));
    const a = await store.importRootfs(rootfs, 'localhost/a:1', { config: { Cmd: ['x'] } });
    await store.tag('localhost/a:1', 'localhost/a:2');
    const out = path.join(root, 'saved.tar');
    await store.saveArchive([a.id], out);
    const seen: string[] = [];
    await tar.t({ file: out, onReadEntry: (e) => void seen.push(e.path) });
    assert.ok(seen.includes('oci-layout') && seen.includes('index.json') && seen.includes('manifest.json'));
    assert.ok(seen.includes(`blobs/sha256/${a.id.slice(7)}`));

    const other = openImageStore({ root: path.join(root, 'other'), host: realHost });
    const [back] = await other.loadArchive(out);
    assert.equal(back!.id, a.id);
    assert.equal(back!.manifestDigest, a.manifestDigest);
    assert.deepEqual(back!.names.sort(), ['localhost/a:1', 'localhost/a:2']);
    assert.equal(existsSync(`${out}.tmp`), false);
  });
});

describe('ensureBusyboxImage', { skip: !existsSync('/bin/busybox') }, () => {
  test('builds a runnable-looking image, deterministically and once', async () => {
    const info = await ensureBusyboxImage(store);
    assert.ok(info.names.includes(BUSYBOX_IMAGE));
    const cfg = await store.config(info);
    assert.deepEqual(cfg.config?.Cmd, ['sh']);
    assert.deepEqual(cfg.config?.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.equal(cfg.architecture, ociArch());
    assert.equal(info.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const [dir] = await store.layerDirs(info);
    assert.equal(readlinkSync(path.join(dir!, 'bin/sh')), 'busybox');
    assert.equal(lstatSync(path.join(dir!, 'bin/busybox')).mode & 0o777, 0o755);
    assert.equal(lstatSync(path.join(dir!, 'tmp')).mode & 0o7777, 0o1777);
    assert.match(readFileSync(path.join(dir!, 'etc/passwd'), 'utf8'), /^root:x:0:0:/m);
    assert.match(readFileSync(path.join(dir!, 'etc/passwd'), 'utf8'), /^www:x:33:33:/m);
    assert.match(readFileSync(path.join(dir!, 'etc/passwd'), 'utf8'), /^nobody:x:65534:65534:/m);

    const again = await ensureBusyboxImage(store);
    assert.equal(again.manifestDigest, info.manifestDigest);
    const elsewhere = openImageStore({ root: path.join(root, 'elsewhere'), host: realHost });
    assert.equal(
      (await ensureBusyboxImage(elsewhere)).manifestDigest,
      info.manifestDigest,
      'same bytes in a fresh store',
    );
    assert.equal((await store.resolve('busybox')).id, info.id, 'the short name finds it');
  });
});
