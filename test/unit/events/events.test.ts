import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openEventLog } from '../../../src/events/index.js';

describe('event log', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nspod-events-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('emitAll appends its events in order, in one write, and list reads them back', async () => {
    const log = openEventLog(root);
    const pod = { id: 'abc', name: 'foo' };
    const one = await log.emit({ reason: 'Scheduled', pod, message: 'first' });
    const many = await log.emitAll([
      { reason: 'Created', pod, container: 'app', message: 'Created container app' },
      { reason: 'Started', pod, container: 'app', message: 'Started container app' },
      { type: 'Warning', reason: 'BackOff', message: 'no pod' },
    ]);
    assert.equal(many.length, 3);
    assert.deepEqual(await log.emitAll([]), []);
    const lines = readFileSync(log.file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    assert.deepEqual(
      (await log.list()).map((e) => [e.reason, e.object, e.type]),
      [
        ['Scheduled', 'pod/foo', 'Normal'],
        ['Created', 'pod/foo/app', 'Normal'],
        ['Started', 'pod/foo/app', 'Normal'],
        ['BackOff', 'nspod', 'Warning'],
      ],
    );
    assert.deepEqual(await log.list({ podId: 'abc' }), [one, many[0], many[1]]);
  });
});
