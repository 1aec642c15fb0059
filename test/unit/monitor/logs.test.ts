import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, appendFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseLogLine, readLog, followLog } from '../../../src/monitor/index.js';

describe('CRI log format', () => {
  it('parses full and partial entries', () => {
    assert.deepEqual(parseLogLine('2026-11-23T19:18:11.775201035+00:00 stdout F hello world'), {
      time: '2026-11-23T19:18:11.775201035+00:00',
      stream: 'stdout',
      partial: false,
      content: 'hello world',
    });
    assert.equal(parseLogLine('2026-11-23T19:18:11Z stderr P part')?.partial, true);
    assert.equal(parseLogLine('2026-11-23T19:18:11Z stdout F')?.content, '');
    assert.equal(parseLogLine('garbage'), undefined);
  });

  it('joins partial lines per stream and honours tail', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-log-'));
    try {
      const f = path.join(dir, 'c.log');
      await writeFile(
        f,
        ['t1 stdout P hel', 't2 stderr F oops', 't3 stdout F lo', 't4 stdout F second', 't5 stdout F third', ''].join(
          '\n',
        ),
      );
      const all = await readLog(f);
      assert.deepEqual(
        all.map((e) => [e.stream, e.line]),
        [
          ['stderr', 'oops'],
          ['stdout', 'hello'],
          ['stdout', 'second'],
          ['stdout', 'third'],
        ],
      );
      assert.deepEqual(
        (await readLog(f, { tail: 2 })).map((e) => e.line),
        ['second', 'third'],
      );
      assert.deepEqual(await readLog(path.join(dir, 'missing.log')), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('follows appended entries until done, including the last ones written before done', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-log-'));
    try {
      const f = path.join(dir, 'c.log');
      await writeFile(f, 't0 stdout F old\n');
      const seen: string[] = [];
      let finished = false;
      const p = followLog(f, {
        fromOffset: (await import('node:fs')).statSync(f).size,
        onEntry: (e) => seen.push(e.line),
        done: async () => finished,
      });
      await appendFile(f, 't1 stdout F one\nt2 stdout P tw\nt3 stdout F');
      await appendFile(f, 'o\n');
      finished = true;
      await p;
      assert.deepEqual(seen, ['one', 'two']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
