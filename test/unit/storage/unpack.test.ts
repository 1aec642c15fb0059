import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { unpackLayer } from '../../../src/storage/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import { makeTar, makeTarGz } from './tarball.js';
import type { RawEntry } from './tarball.js';

const isRoot = process.getuid?.() === 0;
const hasSetfattr = (() => {
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
let n = 0;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'nspod-unpack-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function blob(bytes: Buffer): string {
  const p = path.join(dir, `blob-${n++}`);
  writeFileSync(p, bytes);
  return p;
}

async function unpack(entries: RawEntry[], gz = true): Promise<{ dest: string; diffId: string; tar: Buffer }> {
  const tar = makeTar(entries);
  const dest = path.join(dir, `layer-${n++}`);
  const r = await unpackLayer({ blob: blob(gz ? gzipSync(tar) : tar), dest });
  return { dest, diffId: r.diffId, tar };
}

/** The unpack must be refused with a message naming the entry, and leave nothing behind. */
async function refused(entries: RawEntry[], entry: string): Promise<void> {
  const dest = path.join(dir, `bad-${n++}`);
  const b = blob(makeTarGz(entries));
  await assert.rejects(unpackLayer({ blob: b, dest }), (e: unknown) => {
    assert.ok(isNspodError(e, 'INVALID_ARGUMENT'), String(e));
    assert.match(e.message, new RegExp(`^layer blob-\\d+: entry "${entry.replace(/[.*?]/g, '\\$&')}" `));
    return true;
  });
  assert.equal(existsSync(dest), false);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith(path.basename(dest))),
    [],
    'no temp dir is left',
  );
}

describe('unpackLayer', () => {
  test('files, dirs, symlinks, hard links, modes and mtimes', async () => {
    const { dest, diffId, tar } = await unpack([
      { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1_000_000 },
      { name: 'bin/tool', body: '#!/bin/sh\necho hi\n', mode: 0o4755, mtime: 1_234_567 },
      { name: 'bin/sh', type: 'symlink', linkname: 'tool' },
      { name: 'bin/abs', type: 'symlink', linkname: '/etc/elsewhere' },
      { name: 'bin/same', type: 'link', linkname: 'bin/tool' },
      { name: 'etc/conf', body: 'x'.repeat(70_000), mode: 0o600, uid: 33, gid: 34 },
      { name: 'empty', body: '' },
    ]);
    assert.equal(diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(readFileSync(path.join(dest, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    const tool = lstatSync(path.join(dest, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755);
    assert.equal(Math.floor(tool.mtimeMs / 1000), 1_234_567);
    assert.equal(Math.floor(lstatSync(path.join(dest, 'bin')).mtimeMs / 1000), 1_000_000);
    assert.equal(readlinkSync(path.join(dest, 'bin/sh')), 'tool');
    assert.equal(readlinkSync(path.join(dest, 'bin/abs')), '/etc/elsewhere');
    assert.equal(lstatSync(path.join(dest, 'bin/same')).ino, tool.ino);
    const conf = lstatSync(path.join(dest, 'etc/conf'));
    assert.equal(conf.size, 70_000);
    assert.equal(conf.mode & 0o777, 0o600);
    if (isRoot) assert.deepEqual([conf.uid, conf.gid], [33, 34]);
    assert.equal(lstatSync(path.join(dest, 'empty')).size, 0);
  });

  test('an uncompressed tar works and gives the same diffId', async () => {
    const entries: RawEntry[] = [{ name: 'a', body: 'A' }];
    const plain = await unpack(entries, false);
    const gz = await unpack(entries, true);
    assert.equal(plain.diffId, gz.diffId);
    assert.equal(readFileSync(path.join(plain.dest, 'a'), 'utf8'), 'A');
  });

  test('an empty layer (only end blocks) unpacks to an empty dir', async () => {
    const { dest } = await unpack([]);
    assert.deepEqual(readdirSync(dest), []);
  });

  test('whiteouts become 0/0 char devices and opaque markers an xattr', { skip: !isRoot || !hasSetfattr }, async () => {
    const { dest } = await unpack([
      { name: 'etc/.wh.passwd', body: '' },
      { name: 'var/lib/.wh..wh..opq', body: '' },
      { name: 'var/lib/kept', body: 'k' },
    ]);
    const wh = lstatSync(path.join(dest, 'etc/passwd'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(existsSync(path.join(dest, 'etc/.wh.passwd')), false);
    assert.equal(existsSync(path.join(dest, 'var/lib/.wh..wh..opq')), false);
    assert.equal(readFileSync(path.join(dest, 'var/lib/kept'), 'utf8'), 'k');
    const xattr = execFileSync('getfattr', [
      '--absolute-names',
      '--only-values',
      '-n',
      'trusted.overlay.opaque',
      path.join(dest, 'var/lib'),
    ]);
    assert.equal(xattr.toString(), 'y');
  });

  test(
    'a dir replaced by a symlink later in the layer gets no finishing touches through it',
    { skip: !isRoot || !hasSetfattr },
    async () => {
      const outside = mkdtempSync(path.join(dir, 'outside-'));
      const before = lstatSync(outside).mtimeMs;
      const { dest } = await unpack([
        { name: 'd/', type: 'dir', mtime: 1000 },
        { name: 'd/.wh..wh..opq', body: '' },
        { name: 'd', type: 'symlink', linkname: outside },
      ]);
      assert.equal(readlinkSync(path.join(dest, 'd')), outside);
      assert.equal(lstatSync(outside).mtimeMs, before);
      const r = execFileSync('getfattr', ['--absolute-names', '-d', '-m', '-', outside]).toString();
      assert.doesNotMatch(r, /overlay/);
    },
  );

  test('refuses ../ escapes', () =>
    refused(
      [
        { name: 'ok', body: '1' },
        { name: '../../etc/passwd', body: 'x' },
      ],
      '../../etc/passwd',
    ));
  test('refuses a .. that climbs out midway', () => refused([{ name: 'a/../../x', body: 'x' }], 'a/../../x'));
  test('refuses absolute paths', () => refused([{ name: '/etc/passwd', body: 'x' }], '/etc/passwd'));
  test('refuses writing through a symlink that leaves the root', () =>
    refused(
      [
        { name: 'a', type: 'symlink', linkname: '/etc' },
        { name: 'a/passwd', body: 'x' },
      ],
      'a/passwd',
    ));
  test('refuses writing through a relative symlink that climbs out', () =>
    refused(
      [
        { name: 'd/', type: 'dir' },
        { name: 'd/up', type: 'symlink', linkname: '../..' },
        { name: 'd/up/x', body: 'x' },
      ],
      'd/up/x',
    ));
  test('refuses writing into a directory that a later entry replaced with a symlink out', () =>
    refused(
      [
        { name: 'a/b/', type: 'dir' },
        { name: 'a/b/x', body: '1' }, // a/b resolved (and remembered) as a plain directory
        { name: 'a', type: 'symlink', linkname: '/etc' }, // replaces the whole tree
        { name: 'a/b/y', body: 'x' },
      ],
      'a/b/y',
    ));
  test('a directory replaced by a file, then made again, is written as new', async () => {
    const { dest } = await unpack([
      { name: 'd/e/', type: 'dir' },
      { name: 'd/e/old', body: 'old' },
      { name: 'd', body: 'now a file' },
      { name: 'd/', type: 'dir' },
      { name: 'd/e/new', body: 'new' },
      { name: 'l', type: 'symlink', linkname: 'd/e' },
      { name: 'l', type: 'symlink', linkname: 'd' },
      { name: 'l/e/via', body: 'via' },
    ]);
    assert.equal(readFileSync(path.join(dest, 'd/e/new'), 'utf8'), 'new');
    assert.equal(readFileSync(path.join(dest, 'd/e/via'), 'utf8'), 'via');
    assert.equal(existsSync(path.join(dest, 'd/e/old')), false, 'the old tree went with the directory');
    assert.equal(readlinkSync(path.join(dest, 'l')), 'd', 'the second symlink replaced the first');
  });
  test('refuses a hard link to outside the layer', () =>
    refused([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }], 'h'));
  test('refuses a hard link to an absolute path', () =>
    refused([{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'h'));
  test('refuses a hard link through a symlink out', () =>
    refused(
      [
        { name: 's', type: 'symlink', linkname: '/etc' },
        { name: 'h', type: 'link', linkname: 's/passwd' },
      ],
      'h',
    ));

  test('a symlink inside the layer may be written through', async () => {
    const { dest } = await unpack([
      { name: 'usr/lib/', type: 'dir' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'lib/x.so', body: 'so' },
    ]);
    assert.equal(readFileSync(path.join(dest, 'usr/lib/x.so'), 'utf8'), 'so');
  });

  test('a file replaces a symlink of the same name instead of writing through it', async () => {
    const outside = path.join(dir, 'outside-target');
    writeFileSync(outside, 'keep');
    const { dest } = await unpack([
      { name: 'f', type: 'symlink', linkname: outside },
      { name: 'f', body: 'new' },
    ]);
    assert.equal(readFileSync(outside, 'utf8'), 'keep');
    assert.ok(lstatSync(path.join(dest, 'f')).isFile());
  });

  test('refuses a corrupt archive and checks the expected diffId', async () => {
    const dest = path.join(dir, `bad-${n++}`);
    await assert.rejects(
      unpackLayer({ blob: blob(Buffer.from('not a tar at all'.repeat(100))), dest }),
      /not a valid tar/,
    );
    const truncated = makeTar([{ name: 'big', body: 'z'.repeat(5000) }]).subarray(0, 2048);
    await assert.rejects(unpackLayer({ blob: blob(gzipSync(truncated)), dest }), /not a valid tar/);
    const good = makeTarGz([{ name: 'a', body: 'A' }]);
    await assert.rejects(
      unpackLayer({ blob: blob(good), dest, expectedDiffId: `sha256:${'0'.repeat(64)}` }),
      /diffId is sha256:[0-9a-f]{64}, expected sha256:0000/,
    );
    assert.equal(existsSync(dest), false);
  });

  test('refuses a broken zstd stream with a clear error (zstd itself is supported)', async () => {
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await assert.rejects(unpackLayer({ blob: blob(zstd), dest: path.join(dir, 'z') }), /not a valid zstd stream/);
    assert.equal(existsSync(path.join(dir, 'z')), false);
  });

  test('an existing dest wins over a second unpack of the same layer', async () => {
    const b = blob(makeTarGz([{ name: 'a', body: 'A' }]));
    const dest = path.join(dir, `twice-${n++}`);
    const [r1, r2] = await Promise.all([unpackLayer({ blob: b, dest }), unpackLayer({ blob: b, dest })]);
    assert.equal(r1.diffId, r2.diffId);
    assert.equal(readFileSync(path.join(dest, 'a'), 'utf8'), 'A');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(`${path.basename(dest)}.tmp`)),
      [],
    );
  });
});
