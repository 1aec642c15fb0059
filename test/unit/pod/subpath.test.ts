import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSubPath } from '../../../src/pod/volumes.js';

describe('resolveSubPath', () => {
  let dir: string;
  let root: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-subpath-'));
    root = path.join(dir, 'vol');
    await fs.mkdir(path.join(root, 'a', 'b'), { recursive: true });
    await fs.writeFile(path.join(root, 'a', 'file'), 'x');
    await fs.symlink('a/b', path.join(root, 'inside'));
    await fs.symlink('../file', path.join(root, 'a', 'b', 'up'));
    await fs.symlink('/etc', path.join(root, 'abs'));
    await fs.symlink('../..', path.join(root, 'a', 'climb'));
    await fs.symlink('../outside', path.join(root, 'out'));
    await fs.mkdir(path.join(dir, 'outside'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('resolves plain paths and symlinks that stay inside the volume', async () => {
    assert.equal(await resolveSubPath(root, 'a/file', false), path.join(root, 'a', 'file'));
    assert.equal(await resolveSubPath(root, 'inside', false), path.join(root, 'a', 'b'));
    assert.equal(await resolveSubPath(root, 'inside/up', false), path.join(root, 'a', 'file'));
    assert.equal(await resolveSubPath(root, './a//b/', false), path.join(root, 'a', 'b'));
  });

  it('makes missing directories only when asked', async () => {
    await assert.rejects(resolveSubPath(root, 'new/dir', false), { code: 'ENOENT' });
    assert.equal(await resolveSubPath(root, 'new/dir', true), path.join(root, 'new', 'dir'));
    assert.ok((await fs.stat(path.join(root, 'new', 'dir'))).isDirectory());
  });

  it('refuses symlinks that leave the volume, at any position', async () => {
    for (const sub of ['abs', 'abs/ssl', 'a/climb', 'a/climb/x', 'out', 'out/x']) {
      await assert.rejects(resolveSubPath(root, sub, true), /leave/, sub);
    }
    assert.deepEqual(await fs.readdir(path.join(dir, 'outside')), [], 'nothing made outside');
  });
});
