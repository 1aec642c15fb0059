import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openState, writeJsonAtomic } from '../../../src/state/index.js';
import type { PodRecord } from '../../../src/state/index.js';

function pod(id: string, name: string, namespace = 'default'): PodRecord {
  return {
    id,
    name,
    namespace,
    uid: 'u',
    createdAt: '',
    dir: '',
    runDir: '',
    containerIds: [],
  } as unknown as PodRecord;
}

describe('state store', () => {
  it('writes records atomically (no temp files left) and finds pods by name or id prefix', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-state-'));
    try {
      const st = openState({ root: dir, runRoot: path.join(dir, 'run') });
      await st.savePod(pod('abc123', 'foo'));
      await st.savePod(pod('def456', 'foo', 'other'));
      await st.savePod(pod('abd789', 'bar'));
      assert.deepEqual(await readdir(path.join(dir, 'pods')), ['abc123.json', 'abd789.json', 'def456.json']);
      assert.equal((await st.findPod('foo')).id, 'abc123', 'the default namespace wins');
      assert.equal((await st.findPod('foo', 'other')).id, 'def456');
      assert.equal((await st.findPod('abd')).name, 'bar');
      await assert.rejects(st.findPod('ab'), /pod "ab" not found/);
      await st.deletePod('abc123');
      assert.equal(await st.pod('abc123'), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('claims a pod name atomically: the first claimant wins, only the holder releases', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-state-'));
    try {
      const st = openState({ root: dir, runRoot: path.join(dir, 'run') });
      const ids = ['a1', 'b2', 'c3', 'd4', 'e5', 'f6'];
      const rs = await Promise.all(ids.map((id) => st.claimName('default', 'web', id)));
      const winners = ids.filter((_, i) => rs[i] === undefined);
      assert.equal(winners.length, 1, 'one claimant wins');
      for (const r of rs) if (r !== undefined) assert.equal(r, winners[0], 'the others are told who holds it');
      assert.equal(await st.claimName('default', 'web', winners[0]!), undefined, 'a holder claims again');
      assert.equal(await st.claimName('other', 'web', 'zz'), undefined, 'names are per namespace');
      await st.releaseName('default', 'web', 'not-the-holder');
      assert.equal(await st.claimName('default', 'web', 'x9'), winners[0], "another pod's claim stays");
      await st.releaseName('default', 'web', winners[0]!);
      assert.equal(await st.claimName('default', 'web', 'x9'), undefined, 'released');
      // names that are not file names
      assert.equal(await st.claimName('ns/x', '..', 'fff'), undefined);
      assert.deepEqual((await readdir(path.join(dir, 'names'))).sort(), ['default', 'ns%2Fx', 'other']);
      assert.deepEqual(await readdir(path.join(dir, 'names', 'ns%2Fx')), ['%2E%2E'], 'no temp file left');
      assert.deepEqual(await st.podIds(), []);
      await st.savePod(pod('ggg', 'z'));
      assert.deepEqual(await st.podIds(), ['ggg']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serialises work under the lock', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-state-'));
    try {
      const st = openState({ root: dir, runRoot: path.join(dir, 'run') });
      let inside = 0;
      let max = 0;
      await Promise.all(
        [1, 2, 3].map(() =>
          st.withLock(async () => {
            inside++;
            max = Math.max(max, inside);
            await new Promise((r) => setTimeout(r, 20));
            inside--;
          }),
        ),
      );
      assert.equal(max, 1);
      await writeJsonAtomic(path.join(dir, 'x', 'y.json'), { a: 1 });
      assert.deepEqual(await readdir(path.join(dir, 'x')), ['y.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
