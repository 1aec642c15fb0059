import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { backoffConfig, backoffDelayMs } from '../../../src/supervisor/index.js';
import { openEventLog } from '../../../src/events/index.js';

describe('back-off', () => {
  it("follows kubelet's 10 s doubling to 5 minutes, the first restart immediate", () => {
    const { baseMs, maxMs } = backoffConfig({});
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8].map((s) => backoffDelayMs(s, baseMs, maxMs) / 1000),
      [0, 10, 20, 40, 80, 160, 300, 300, 300],
    );
  });

  it('takes its base from NSPOD_BACKOFF_BASE_MS', () => {
    assert.deepEqual(backoffConfig({ NSPOD_BACKOFF_BASE_MS: '100' }), { baseMs: 100, maxMs: 3000 });
    assert.deepEqual(backoffConfig({ NSPOD_BACKOFF_BASE_MS: 'x' }), { baseMs: 10_000, maxMs: 300_000 });
  });
});

describe('events log', () => {
  it('appends, lists by pod and follows', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-events-'));
    try {
      const log = openEventLog(dir);
      await log.emit({
        reason: 'Started',
        pod: { id: 'p1', name: 'a' },
        container: 'c',
        message: 'Started container c',
      });
      await log.emit({ type: 'Warning', reason: 'BackOff', pod: { id: 'p2', name: 'b' }, message: 'x' });
      assert.deepEqual(
        (await log.list()).map((e) => [e.reason, e.object, e.type]),
        [
          ['Started', 'pod/a/c', 'Normal'],
          ['BackOff', 'pod/b', 'Warning'],
        ],
      );
      assert.equal((await log.list({ podId: 'p2' })).length, 1);
      const seen: string[] = [];
      const ac = new AbortController();
      const following = log.follow({
        fromOffset: await log.size(),
        signal: ac.signal,
        onEvent: (e) => {
          seen.push(e.reason);
          ac.abort();
        },
      });
      await log.emit({ reason: 'Killing', message: 'y' });
      await following;
      assert.deepEqual(seen, ['Killing']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
