import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeReference, parseReference } from '../../../src/image/index.js';
import { isNspodError } from '../../../src/errors/index.js';

const D = `sha256:${'ab'.repeat(32)}`;

test('references are normalized like docker does', () => {
  const table: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox:1', 'docker.io/library/busybox:1'],
    ['localhost/busybox', 'localhost/busybox:latest'],
    ['localhost:5000/a/b:v1.2_3', 'localhost:5000/a/b:v1.2_3'],
    ['quay.io/org/img', 'quay.io/org/img:latest'],
    [`reg:5000/a/b@${D}`, `reg:5000/a/b@${D}`],
    [`reg:5000/a/b:t@${D}`, `reg:5000/a/b:t@${D}`],
    ['my_app-1', 'docker.io/library/my_app-1:latest'],
    ['a-b__c/e', 'docker.io/a-b__c/e:latest'],
  ];
  for (const [input, want] of table) assert.equal(normalizeReference(input), want, input);
});

test('the parts of a reference', () => {
  const r = parseReference('reg:5000/a/b:t');
  assert.deepEqual(
    { domain: r.domain, path: r.path, tag: r.tag, repository: r.repository, explicit: r.explicitDomain },
    { domain: 'reg:5000', path: 'a/b', tag: 't', repository: 'reg:5000/a/b', explicit: true },
  );
  assert.equal(parseReference('busybox').explicitDomain, false);
  assert.equal(parseReference(`x@${D}`).tag, undefined);
});

test('bad references are INVALID_ARGUMENT naming the reference', () => {
  for (const bad of [
    '',
    'Busybox',
    'busybox:',
    'a//b',
    'busybox:bad tag',
    `x@sha256:123`,
    '-x',
    'a:b:c',
    `${'a'.repeat(64)}`,
    ':tag',
    'x/',
  ]) {
    assert.throws(
      () => parseReference(bad),
      (e: unknown) => isNspodError(e, 'INVALID_ARGUMENT') && e.message.startsWith(`invalid image reference "${bad}"`),
      bad,
    );
  }
});
