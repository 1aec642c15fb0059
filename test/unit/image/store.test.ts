import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { realHost } from '../../../src/host/index.js';
import { openImageStore } from '../../../src/image/index.js';
import type { ImageStore } from '../../../src/image/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import { makeTar } from '../storage/tarball.js';

let root: string;
let store: ImageStore;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'nspod-images-'));
  store = openImageStore({ root, host: realHost, gcGraceMs: 0 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobFiles = (): string[] => readdirSync(path.join(root, 'images/blobs/sha256')).sort();

function rootfsTar(name: string, files: Record<string, string>): string {
  const p = path.join(root, name);
  writeFileSync(p, makeTar(Object.entries(files).map(([n, body]) => ({ name: n, body }))));
  return p;
}

describe('blobs', () => {
  test('putBlob verifies the digest and keeps nothing on mismatch', async () => {
    const ok = await store.putBlob(Buffer.from('hello'), sha('hello'));
    assert.deepEqual(ok, { digest: sha('hello'), size: 5 });
    assert.equal(readFileSync(store.blobPath(ok.digest), 'utf8'), 'hello');
    assert.equal(await store.hasBlob(ok.digest), true);

    await assert.rejects(store.putBlob(Buffer.from('evil'), sha('good')), (e: unknown) => {
      assert.ok(isNspodError(e, 'INVALID_ARGUMENT'));
      assert.match(e.message, /^blob sha256:[0-9a-f]{64}: content does not match its digest/);
      return true;
    });
    assert.equal(await store.hasBlob(sha('good')), false);
    assert.deepEqual(blobFiles(), [ok.digest.slice(7)]);
    assert.deepEqual(readdirSync(path.join(root, 'images/ingest')), [], 'no temp file is left');
    assert.throws(() => store.blobPath('sha256:xyz'), /not sha256:<64 lowercase hex>/);
  });

  test('the store is an OCI image layout', async () => {
    await store.importRootfs(rootfsTar('r.tar', { a: 'A' }), 'localhost/a:1');
    assert.deepEqual(JSON.parse(readFileSync(path.join(root, 'images/oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const index = JSON.parse(readFileSync(path.join(root, 'images/index.json'), 'utf8')) as {
      manifests: { mediaType: string; annotations: Record<string, string> }[];
    };
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0]!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(index.manifests[0]!.annotations, { 'org.opencontainers.image.ref.name': 'localhost/a:1' });
  });
});

describe('import, list, resolve', () => {
  test('an imported rootfs is a one-layer gzip image found by name, id and prefix', async () => {
    const tar = rootfsTar('rootfs.tar', { 'etc/os-release': 'ID=test\n', 'bin/x': 'x' });
    const info = await store.importRootfs(tar, 'localhost/mini', { config: { Cmd: ['/bin/x'], Env: ['A=1'] } });
    assert.deepEqual(info.names, ['localhost/mini:latest']);
    assert.deepEqual(info.diffIds, [sha(readFileSync(tar))], 'diffId is the sha256 of the uncompressed tar');
    assert.equal(info.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const cfg = await store.config(info);
    assert.deepEqual(cfg.config?.Cmd, ['/bin/x']);
    assert.equal(cfg.os, 'linux');
    assert.equal(info.id, sha(readFileSync(store.blobPath(info.id))));

    const list = await store.list();
    assert.deepEqual(
      list.map((i) => i.id),
      [info.id],
    );
    for (const ref of [
      'localhost/mini',
      'localhost/mini:latest',
      'mini',
      info.id,
      info.id.slice(7),
      info.id.slice(7, 10),
    ]) {
      assert.equal((await store.resolve(ref)).id, info.id, ref);
    }
    await assert.rejects(
      store.resolve('nothere'),
      (e: unknown) => isNspodError(e, 'NOT_FOUND') && e.message === 'image "nothere" not found',
    );
    await assert.rejects(store.resolve('localhost/mini:2'), /image "localhost\/mini:2" not found/);
  });

  test('a docker.io name wins over localhost for a short name', async () => {
    const a = await store.importRootfs(rootfsTar('a.tar', { a: 'a' }), 'localhost/busybox');
    assert.equal((await store.resolve('busybox')).id, a.id);
    const b = await store.importRootfs(rootfsTar('b.tar', { b: 'b' }), 'docker.io/library/busybox:latest');
    assert.equal((await store.resolve('busybox')).id, b.id);
  });

  test('tag adds a name; removing one of two names only untags', async () => {
    const info = await store.importRootfs(rootfsTar('a.tar', { a: 'a' }), 'localhost/a:1');
    await store.tag('localhost/a:1', 'localhost/b:2');
    assert.deepEqual((await store.resolve('localhost/b:2')).names.sort(), ['localhost/a:1', 'localhost/b:2']);
    const r = await store.remove('localhost/a:1');
    assert.deepEqual(r, { untagged: ['localhost/a:1'] });
    assert.deepEqual((await store.resolve(info.id)).names, ['localhost/b:2']);
    await assert.rejects(store.tag(info.id, 'Bad Name'), /invalid image reference/);
  });

  test('concurrent mutations from two store handles lose no name', async () => {
    const second = openImageStore({ root, host: realHost });
    const tars = [0, 1, 2, 3].map((i) => rootfsTar(`c${i}.tar`, { [`f${i}`]: String(i) }));
    await Promise.all(tars.map((t, i) => (i % 2 ? second : store).importRootfs(t, `localhost/c${i}`)));
    const names = (await store.list()).flatMap((i) => i.names).sort();
    assert.deepEqual(names, [
      'localhost/c0:latest',
      'localhost/c1:latest',
      'localhost/c2:latest',
      'localhost/c3:latest',
    ]);
  });

  test('moving a name leaves the old image unnamed but listed', async () => {
    const one = await store.importRootfs(rootfsTar('a.tar', { a: 'a' }), 'localhost/x:1');
    const two = await store.importRootfs(rootfsTar('b.tar', { b: 'b' }), 'localhost/x:1');
    const list = await store.list();
    assert.deepEqual(list.find((i) => i.id === one.id)?.names, []);
    assert.deepEqual(list.find((i) => i.id === two.id)?.names, ['localhost/x:1']);
  });
});

describe('layerDirs, remove and GC', () => {
  test('layers are unpacked once, checked against diff_ids, and shared layers survive GC', async () => {
    const tar = rootfsTar('shared.tar', { 'etc/shared': 'S' });
    const a = await store.importRootfs(tar, 'localhost/a', { config: { Cmd: ['a'] } });
    const b = await store.importRootfs(tar, 'localhost/b', { config: { Cmd: ['b'] } });
    assert.notEqual(a.id, b.id);
    assert.deepEqual(a.layers, b.layers, 'the same tar gives the same layer blob');

    const [dirsA, dirsA2] = await Promise.all([store.layerDirs(a), store.layerDirs(a)]);
    assert.deepEqual(dirsA, dirsA2);
    assert.deepEqual(dirsA, [path.join(root, 'layers', a.diffIds[0]!.slice(7))]);
    assert.equal(readFileSync(path.join(dirsA[0]!, 'etc/shared'), 'utf8'), 'S');
    assert.deepEqual(await store.layerDirs(b), dirsA);

    await assert.rejects(
      store.remove('localhost/a', { inUse: (id) => id === a.id }),
      (e: unknown) => isNspodError(e, 'FAILED_PRECONDITION') && /in use by a container/.test(e.message),
    );
    const removed = await store.remove('localhost/a', { inUse: () => false });
    assert.equal(removed.deleted, a.id);
    assert.equal(await store.hasBlob(a.id), false, 'config of the removed image is collected');
    assert.equal(await store.hasBlob(a.manifestDigest), false, 'manifest of the removed image is collected');
    assert.equal(await store.hasBlob(a.layers[0]!.digest), true, 'the shared layer blob stays');
    assert.ok(existsSync(dirsA[0]!), 'the shared unpacked layer stays');

    await store.remove(b.id, { force: true, inUse: () => true });
    assert.equal(await store.hasBlob(b.layers[0]!.digest), false);
    assert.ok(existsSync(dirsA[0]!), 'a force-removed image in use keeps its unpacked layers');
    await store.gc();
    assert.equal(existsSync(dirsA[0]!), false);
    assert.deepEqual(blobFiles(), []);
    assert.deepEqual(await store.list(), []);
  });

  test('a layer whose content does not match its diff_id is refused', async () => {
    const good = await store.importRootfs(rootfsTar('g.tar', { g: 'g' }), 'localhost/g');
    const cfg = await store.config(good);
    const bad = await store.createImage({
      layers: good.layers,
      config: { ...cfg, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } },
      name: 'localhost/bad',
    });
    await assert.rejects(store.layerDirs(bad), /diffId is sha256:[0-9a-f]{64}, expected sha256:0{64}/);
    assert.deepEqual(readdirSync(path.join(root, 'layers')), []);
  });
});

describe('leftovers of killed unpacks and downloads', () => {
  /** a pid that surely ran and is gone: a child that exited (and was reaped) */
  const deadPid = (): number => {
    const r = spawnSync('true');
    assert.ok(r.pid > 0);
    return r.pid;
  };
  const startOf = (pid: number): string => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
  };
  const hex12 = 'a1b2c3d4e5f6';
  /** how this process tags what it writes: `<pid>-<start time>-<hex>` */
  const writerTag = (): string => `${process.pid}-${startOf(process.pid)}-${hex12}`;
  // the fakes have read-only dirs: made writable again for the cleanup as any user
  afterEach(() => void spawnSync('chmod', ['-R', 'u+rwX', root]));
  /** a half-written layer as a killed unpack leaves it, with read-only dirs */
  function fakeUnpack(name: string): string {
    const dir = path.join(root, 'layers', name);
    mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
    writeFileSync(path.join(dir, 'usr/bin/tool'), 'x');
    chmodSync(path.join(dir, 'usr/bin/tool'), 0o555);
    chmodSync(path.join(dir, 'usr/bin'), 0o555);
    chmodSync(path.join(dir, 'usr'), 0o555);
    chmodSync(dir, 0o555);
    return dir;
  }
  function fakeDownload(name: string): string {
    const file = path.join(root, 'images/ingest', name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'partial');
    return file;
  }

  test('prune removes the temp dirs and downloads of dead writers only', async (t) => {
    const info = await store.importRootfs(rootfsTar('l.tar', { 'etc/l': 'L' }), 'localhost/l');
    const [layer] = await store.layerDirs(info);
    const hexId = info.diffIds[0]!.slice(7);
    const other = 'f'.repeat(64);

    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => sleeper.kill());
    await once(sleeper, 'spawn');
    const livePid = sleeper.pid!;

    const dead = fakeUnpack(`${other}.tmp-${deadPid()}-4242-${hex12}`);
    const reused = fakeUnpack(`${hexId}.tmp-${livePid}-1-${hex12}`); // the pid now runs another process
    const mine = fakeUnpack(`${other}.tmp-${writerTag()}`);
    const theirs = fakeUnpack(`${hexId}.tmp-${livePid}-${startOf(livePid)}-${hex12}`);
    const untagged = fakeUnpack(`${other}.tmp-${hex12}`); // older nspod: kept a day
    const deadPull = fakeDownload(`pull-${deadPid()}-77-${hex12}`);
    const deadPut = fakeDownload(`${deadPid()}-77-${hex12}`);
    const livePull = fakeDownload(`pull-${writerTag()}`);

    const r = await store.prune();
    assert.deepEqual(r.images, []);
    assert.equal(existsSync(dead), false, 'the temp dir of a dead unpack is removed, read-only dirs and all');
    assert.equal(existsSync(reused), false, 'a pid reused by another process is no writer');
    assert.equal(existsSync(deadPull), false);
    assert.equal(existsSync(deadPut), false);
    for (const live of [mine, theirs, untagged, livePull]) assert.ok(existsSync(live), `${live} stays`);
    assert.equal(readFileSync(path.join(layer!, 'etc/l'), 'utf8'), 'L', 'the real layer stays');
    assert.deepEqual(await store.layerDirs(info), [layer]);
    assert.equal(await store.hasBlob(info.layers[0]!.digest), true);
  });

  test('an unpack in progress names its temp dir for its process, and GC leaves it alone', async () => {
    const info = await store.importRootfs(rootfsTar('p.tar', { p: 'p' }), 'localhost/p');
    const layer = info.layers[0]!;
    const hexId = info.diffIds[0]!.slice(7);
    let seen: string[] = [];
    const dir = await store.unpackLayerStream(
      layer,
      info.diffIds[0]!,
      createReadStream(store.blobPath(layer.digest)),
      async () => {
        await store.prune({ all: true, inUse: () => true });
        seen = readdirSync(path.join(root, 'layers'));
      },
    );
    assert.deepEqual(seen, [`${hexId}.tmp-${process.pid}-${startOf(process.pid)}-${seen[0]?.slice(-12)}`]);
    assert.match(seen[0]!, /-[0-9a-f]{12}$/);
    assert.equal(readFileSync(path.join(dir, 'p'), 'utf8'), 'p');
  });

  test('young leftovers wait for the grace period', async () => {
    const graced = openImageStore({ root, host: realHost });
    await graced.importRootfs(rootfsTar('g.tar', { g: 'g' }), 'localhost/g');
    const dead = fakeUnpack(`${'e'.repeat(64)}.tmp-${deadPid()}-4242-${hex12}`);
    await graced.gc();
    assert.ok(existsSync(dead));
  });

  test('a store sweeps once when it first unpacks, never when its layers are there', async () => {
    const info = await store.importRootfs(rootfsTar('s.tar', { s: 's' }), 'localhost/s');
    await store.layerDirs(info);
    const dead = fakeUnpack(`${'d'.repeat(64)}.tmp-${deadPid()}-4242-${hex12}`);
    const again = openImageStore({ root, host: realHost, gcGraceMs: 0 });
    await again.layerDirs(info);
    assert.ok(existsSync(dead), 'nothing to unpack: no directory is scanned');
    rmSync(path.join(root, 'layers', info.diffIds[0]!.slice(7)), { recursive: true });
    await again.layerDirs(info);
    assert.equal(existsSync(dead), false, 'the first unpack swept it');
  });
});
