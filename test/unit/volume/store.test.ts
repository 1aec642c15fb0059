import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openConfigObjectStore, openVolumeStore } from '../../../src/volume/index.js';
import { isNspodError } from '../../../src/errors/index.js';

const mode = async (p: string): Promise<number> => (await fs.stat(p)).mode & 0o777;

describe('named volume store', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-volstore-'));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('creates, lists, refuses duplicates and bad names, removes idempotently', async () => {
    const vs = openVolumeStore({ root });
    const v = await vs.create('data', { labels: { a: 'b' } });
    assert.equal(v.mountpoint, path.join(root, 'volumes', 'data', '_data'));
    assert.ok((await fs.stat(v.mountpoint)).isDirectory());
    await assert.rejects(vs.create('data'), (e) => isNspodError(e, 'ALREADY_EXISTS'));
    assert.equal((await vs.create('data', { ignoreExisting: true })).createdAt, v.createdAt);
    await assert.rejects(vs.create('Bad_Name'), (e) => isNspodError(e, 'INVALID_ARGUMENT'));
    await assert.rejects(vs.create('../x'), (e) => isNspodError(e, 'INVALID_ARGUMENT'));
    await vs.create('cache');
    assert.deepEqual(
      (await vs.list()).map((x) => x.name),
      ['cache', 'data'],
    );
    await fs.writeFile(path.join(v.mountpoint, 'f'), 'x');
    await vs.remove('data');
    await vs.remove('data');
    assert.deepEqual(
      (await vs.list()).map((x) => x.name),
      ['cache'],
    );
    assert.deepEqual((await fs.readdir(path.join(root, 'volumes'))).sort(), ['cache'], 'no temporary dirs left');
    await assert.rejects(vs.inspect('data'), (e) => isNspodError(e, 'NOT_FOUND'));
  });
});

describe('config object store', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-cfgstore-'));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('keeps objects per namespace and kind, root-only on disk, never overwritten', async () => {
    const cs = openConfigObjectStore({ root });
    const data = { k: Buffer.from('v').toString('base64') };
    await cs.create({ kind: 'Secret', name: 's', namespace: 'default', data });
    await cs.create({ kind: 'ConfigMap', name: 's', namespace: 'default', data });
    await cs.create({ kind: 'Secret', name: 's', namespace: 'other', data });
    await assert.rejects(
      cs.create({ kind: 'Secret', name: 's', namespace: 'default', data: {} }),
      (e) => isNspodError(e, 'ALREADY_EXISTS') && /secret "s" already exists in namespace "default"/.test(e.message),
    );
    assert.deepEqual((await cs.get('Secret', 'default', 's'))?.data, data, 'the first one is kept');
    const file = path.join(root, 'config', 'default', 'secrets', 's.json');
    assert.equal(await mode(file), 0o600);
    assert.equal(await mode(path.dirname(file)), 0o700);
    assert.equal(await mode(path.join(root, 'config', 'default')), 0o700);
    assert.deepEqual(
      (await cs.list('Secret')).map((o) => `${o.namespace}/${o.name}`),
      ['default/s', 'other/s'],
    );
    assert.deepEqual(
      (await cs.list('Secret', 'other')).map((o) => o.name),
      ['s'],
    );
    await cs.remove('Secret', 'default', 's');
    await assert.rejects(cs.remove('Secret', 'default', 's'), (e) => isNspodError(e, 'NOT_FOUND'));
    assert.equal(await cs.get('Secret', 'default', 's'), undefined);
    assert.ok(await cs.get('ConfigMap', 'default', 's'));
    assert.deepEqual(await fs.readdir(path.dirname(file)), [], 'no temporary files left');
  });
});
