import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeVolumes, resolveSubPath, volumeStores } from '../../../src/pod/volumes.js';
import { parsePodYaml } from '../../../src/spec/index.js';
import { loadConfig } from '../../../src/config/index.js';

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

describe('describeVolumes', () => {
  it('names each volume, its source, host path and mounts', () => {
    const { pods } = parsePodYaml(`apiVersion: v1
kind: Pod
metadata: { name: p }
spec:
  volumes:
    - { name: m, emptyDir: { medium: Memory } }
    - { name: h, hostPath: { path: /srv, type: Directory } }
    - { name: s, secret: { secretName: sec } }
    - { name: c, persistentVolumeClaim: { claimName: data } }
  containers:
    - name: a
      image: busybox
      volumeMounts: [{ name: m, mountPath: /m }, { name: s, mountPath: /s }, { name: h, mountPath: /h, readOnly: true, subPath: x }]
    - name: b
      image: busybox
      volumeMounts: [{ name: m, mountPath: /mm }]
`);
    const stores = volumeStores({ config: loadConfig({ root: '/r', runRoot: '/run/x' }) });
    const rows = describeVolumes(stores, { dir: '/r/pods/1', runDir: '/run/x/pods/1', spec: pods[0]! });
    assert.deepEqual(rows, [
      {
        name: 'm',
        type: 'emptyDir (Memory)',
        source: '',
        hostPath: '/run/x/pods/1/volumes/empty-dir/m',
        mounts: ['a:/m', 'b:/mm'],
      },
      { name: 'h', type: 'hostPath', source: '/srv (Directory)', hostPath: '/srv', mounts: ['a:/h (ro) subPath=x'] },
      { name: 's', type: 'secret', source: 'sec', hostPath: '/run/x/pods/1/volumes/secret/s', mounts: ['a:/s (ro)'] },
      { name: 'c', type: 'persistentVolumeClaim', source: 'data', hostPath: '/r/volumes/data/_data', mounts: [] },
    ]);
  });
});
