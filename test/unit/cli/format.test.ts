import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { age, bytes, parseFormat, render, shortId, table } from '../../../src/cli/format.js';

describe('CLI formatting', () => {
  it('renders a borderless, aligned table', () => {
    const t = table(
      ['NAME', 'STATUS'],
      [
        ['foo', 'Running'],
        ['longer-name', 'Exited'],
      ],
    );
    const lines = t.split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[0]!.indexOf('STATUS'), lines[1]!.indexOf('Running'));
    assert.equal(lines[1]!.indexOf('Running'), lines[2]!.indexOf('Exited'));
    assert.ok(!/[│─┌]/.test(t));
  });

  it('formats ages, sizes and ids like kubectl and podman', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    assert.equal(age('2026-01-01T11:59:30Z', now), '30s');
    assert.equal(age('2026-01-01T11:50:00Z', now), '10m');
    assert.equal(age('2026-01-01T06:00:00Z', now), '6h');
    assert.equal(age('2025-12-25T12:00:00Z', now), '7d');
    assert.equal(age(undefined, now), '-');
    assert.equal(bytes(268435456), '256MiB');
    assert.equal(bytes(1536), '1.5KiB');
    assert.equal(shortId('sha256:0123456789abcdef0123'), '0123456789ab');
  });

  it('accepts only table, json and yaml output', () => {
    assert.equal(parseFormat('json'), 'json');
    assert.throws(() => parseFormat('xml'), /--output: expected table, json or yaml, got "xml"/);
    assert.equal(render('json', { a: 1 }), '{\n  "a": 1\n}');
    assert.equal(render('yaml', { a: 1 }), 'a: 1\n');
  });
});
