import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSources } from '../../../src/cli/volumes.js';
import { isNspodError } from '../../../src/errors/index.js';

describe('configmap/secret create sources', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-sources-'));
    await fs.mkdir(path.join(dir, 'conf.d'));
    await fs.writeFile(path.join(dir, 'conf.d', 'a.conf'), 'A');
    await fs.writeFile(path.join(dir, 'conf.d', 'b.conf'), Buffer.from([0, 255]));
    await fs.mkdir(path.join(dir, 'conf.d', 'sub'));
    await fs.writeFile(path.join(dir, 'key.pem'), 'KEY');
    await fs.writeFile(path.join(dir, 'app.env'), '# settings\nMODE=prod\n\n  URL=http://x/?a=b\r\nEMPTY=\n');
    await fs.writeFile(path.join(dir, 'bad.env'), 'MODE=prod\nnot a pair\n');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('reads literals, files (named or by basename), directories and env files', async () => {
    const d = await readSources(
      ['greeting=hello=world', 'empty='],
      [path.join(dir, 'conf.d'), `tls.key=${path.join(dir, 'key.pem')}`, path.join(dir, 'key.pem')],
      [path.join(dir, 'app.env')],
    );
    assert.deepEqual(Object.fromEntries(Object.entries(d).map(([k, v]) => [k, [...v]])), {
      greeting: [...Buffer.from('hello=world')],
      empty: [],
      'a.conf': [...Buffer.from('A')],
      'b.conf': [0, 255],
      'tls.key': [...Buffer.from('KEY')],
      'key.pem': [...Buffer.from('KEY')],
      MODE: [...Buffer.from('prod')],
      URL: [...Buffer.from('http://x/?a=b')],
      EMPTY: [],
    });
  });

  it('refuses bad sources naming the flag', async () => {
    // Thunks: each call starts only when its assertion is waiting for it (no unhandled rejection).
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [() => readSources(['novalue'], []), 'INVALID_ARGUMENT', /^--from-literal: expected KEY=VALUE, got "novalue"$/],
      [() => readSources(['=x'], []), 'INVALID_ARGUMENT', /^--from-literal: expected KEY=VALUE/],
      [() => readSources(['a=1', 'a=2'], []), 'INVALID_ARGUMENT', /^--from-literal: key "a" given twice$/],
      [
        () => readSources([], [path.join(dir, 'none')]),
        'NOT_FOUND',
        /^--from-file: .*none: no such file or directory$/,
      ],
      [
        () => readSources([], [`k=${path.join(dir, 'conf.d')}`]),
        'INVALID_ARGUMENT',
        /is a directory: a key cannot be given/,
      ],
      [
        () => readSources([], [], [path.join(dir, 'bad.env')]),
        'INVALID_ARGUMENT',
        /^--from-env-file: .*bad\.env:2: expected KEY=VALUE/,
      ],
    ];
    for (const [p, code, re] of cases) {
      await assert.rejects(p(), (e) => isNspodError(e) && e.code === code && re.test(e.message));
    }
  });
});
