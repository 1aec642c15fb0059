import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { recordingHost } from '../../../src/host/index.js';
import { createStorage, mountOverlay, parseMountInfo } from '../../../src/storage/index.js';

describe('mountOverlay', () => {
  test('builds the overlay options top-most first', async () => {
    const host = recordingHost();
    await mountOverlay(host, {
      lowerDirs: ['/l/top', '/l/bottom'],
      upperDir: '/c/upper',
      workDir: '/c/work',
      target: '/c/rootfs',
    });
    assert.deepEqual(host.calls, [
      {
        cmd: 'mount',
        args: [
          '-t',
          'overlay',
          'overlay',
          '-o',
          'lowerdir=/l/top:/l/bottom,upperdir=/c/upper,workdir=/c/work',
          '/c/rootfs',
        ],
      },
    ]);
  });

  test('falls back to short links when the options would not fit in a page', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'nspod-ovl-'));
    try {
      const host = recordingHost();
      const lower = Array.from({ length: 60 }, (_, i) => `/var/lib/nspod/layers/${String(i).padStart(64, '0')}`);
      await mountOverlay(host, {
        lowerDirs: lower,
        upperDir: path.join(dir, 'upper'),
        workDir: path.join(dir, 'work'),
        target: path.join(dir, 'rootfs'),
      });
      const opts = host.calls[0]!.args[4]!;
      assert.ok(opts.startsWith('lowerdir=0:1:2:'), opts);
      assert.ok(opts.length < 4096);
      assert.equal(readlinkSync(path.join(dir, 'l', '59')), lower[59]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses an empty layer list and paths overlayfs cannot take', async () => {
    const host = recordingHost();
    await assert.rejects(mountOverlay(host, { lowerDirs: [], target: '/t' }), /at least one lower dir/);
    await assert.rejects(
      mountOverlay(host, { lowerDirs: ['/a'], upperDir: '/u:x', workDir: '/w', target: '/t' }),
      /has , : or/,
    );
    assert.equal(host.calls.length, 0);
  });
});

describe('createStorage', () => {
  test('a failed mount rolls the container dir back', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'nspod-rootfs-'));
    try {
      const host = recordingHost((c) => (c.cmd === 'mount' ? { code: 32, stderr: 'mount: wrong fs type' } : undefined));
      await assert.rejects(
        createStorage(host).createRootfs({ root, containerId: 'c1', layerDirs: ['/l/a'] }),
        /cannot mount overlay for container "c1": mount -t: mount: wrong fs type/,
      );
      assert.equal(existsSync(path.join(root, 'containers', 'c1')), false);
      await assert.rejects(
        createStorage(host).createRootfs({ root, containerId: '../x', layerDirs: [] }),
        /not a valid/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

test('parseMountInfo decodes escaped mount points', () => {
  const text =
    '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
    '40 30 0:40 / /c/rootfs rw,relatime shared:2 - overlay overlay rw,lowerdir=/a:/b\n';
  assert.deepEqual(
    parseMountInfo(text).map((m) => [m.mountPoint, m.fsType]),
    [
      ['/mnt/with space', 'ext3'],
      ['/c/rootfs', 'overlay'],
    ],
  );
});
