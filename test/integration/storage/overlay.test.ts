import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { realHost } from '../../../src/host/index.js';
import {
  createStorage,
  isMounted,
  mountOverlay,
  mountsUnder,
  unmount,
  unpackLayer,
} from '../../../src/storage/index.js';
import { makeTarGz } from '../../unit/storage/tarball.js';
import type { RawEntry } from '../../unit/storage/tarball.js';

let root: string;
before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'nspod-overlay-'));
});
after(async () => {
  for (const m of await mountsUnder(root)) await unmount(realHost, m);
  rmSync(root, { recursive: true, force: true });
});

async function layer(name: string, entries: RawEntry[]): Promise<string> {
  const blob = path.join(root, `${name}.tar.gz`);
  writeFileSync(blob, makeTarGz(entries));
  const dest = path.join(root, 'layers', name);
  await unpackLayer({ blob, dest });
  return dest;
}

describe('overlay rootfs', () => {
  test('whiteouts and opaque dirs hide lower content, writes go to upper, remove leaves no mount', async () => {
    const bottom = await layer('bottom', [
      { name: 'etc/passwd', body: 'root:x:0:0\n' },
      { name: 'etc/hostname', body: 'old\n' },
      { name: 'var/cache/a', body: 'a' },
      { name: 'var/cache/b', body: 'b' },
    ]);
    const top = await layer('top', [
      { name: 'etc/.wh.hostname', body: '' },
      { name: 'var/cache/.wh..wh..opq', body: '' },
      { name: 'var/cache/c', body: 'c' },
      { name: 'etc/motd', body: 'hello\n' },
    ]);
    const storage = createStorage(realHost);
    const fs = await storage.createRootfs({ root, containerId: 'c1', layerDirs: [bottom, top] });
    try {
      assert.equal(await isMounted(fs.rootfs), true);
      assert.equal(readFileSync(path.join(fs.rootfs, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
      assert.equal(existsSync(path.join(fs.rootfs, 'etc/hostname')), false, 'whiteout hides the lower file');
      assert.deepEqual(readdirSync(path.join(fs.rootfs, 'var/cache')), ['c'], 'opaque dir hides lower entries');
      assert.equal(readFileSync(path.join(fs.rootfs, 'etc/motd'), 'utf8'), 'hello\n');

      writeFileSync(path.join(fs.rootfs, 'etc/passwd'), 'changed\n');
      mkdirSync(path.join(fs.rootfs, 'new'));
      assert.equal(readFileSync(path.join(fs.upper, 'etc/passwd'), 'utf8'), 'changed\n');
      assert.ok(existsSync(path.join(fs.upper, 'new')));
      assert.equal(readFileSync(path.join(bottom, 'etc/passwd'), 'utf8'), 'root:x:0:0\n', 'lower layer untouched');

      await assert.rejects(storage.createRootfs({ root, containerId: 'c1', layerDirs: [bottom] }), /already exists/);
    } finally {
      await storage.removeRootfs(root, 'c1');
    }
    assert.equal(await isMounted(fs.rootfs), false);
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.equal(mountinfo.includes(fs.dir), false, 'nothing of the container is left in mountinfo');
    assert.equal(existsSync(fs.dir), false);
    await storage.removeRootfs(root, 'c1'); // idempotent
  });

  test('many layers with long paths are mounted through short links', async () => {
    const deep = path.join(root, 'x'.repeat(120));
    const dirs: string[] = [];
    for (let i = 0; i < 40; i++) {
      const d = path.join(deep, `layer-${String(i).padStart(3, '0')}-${'y'.repeat(60)}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `f${i}`), String(i));
      dirs.push(d);
    }
    const storage = createStorage(realHost);
    const fs = await storage.createRootfs({ root, containerId: 'many', layerDirs: dirs });
    try {
      assert.equal(readdirSync(fs.rootfs).length, 40);
      assert.equal(readFileSync(path.join(fs.rootfs, 'f39'), 'utf8'), '39');
    } finally {
      await storage.removeRootfs(root, 'many');
    }
    assert.deepEqual(await mountsUnder(root), []);
  });

  test('a read-only view of one layer, and unmount is idempotent', async () => {
    const only = await layer('only', [{ name: 'a', body: 'A' }]);
    const target = path.join(root, 'view');
    mkdirSync(target);
    await mountOverlay(realHost, { lowerDirs: [only], target });
    try {
      assert.equal(readFileSync(path.join(target, 'a'), 'utf8'), 'A');
      assert.throws(() => writeFileSync(path.join(target, 'b'), 'B'), /EROFS/);
    } finally {
      await unmount(realHost, target);
    }
    assert.equal(await isMounted(target), false);
    await unmount(realHost, target);
  });
});
