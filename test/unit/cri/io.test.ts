import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resizeParser, statusJson } from '../../../src/cri/streaming/io.js';
import { negotiate } from '../../../src/cri/streaming/server.js';
import { exitReason, isoToNs, matchLabels } from '../../../src/cri/convert.js';
import { parseNetDev } from '../../../src/cri/stats.js';
import type { ContainerStatus } from '../../../src/pod/index.js';

test('the error channel carries a metav1.Status', () => {
  assert.deepEqual(JSON.parse(statusJson({ exitCode: 0 })), { metadata: {}, status: 'Success' });
  const f = JSON.parse(statusJson({ exitCode: 3, cmd: ['sh'] })) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(f.status, 'Failure');
  assert.equal(f.reason, 'NonZeroExitCode');
  assert.deepEqual(f.details.causes, [{ reason: 'ExitCode', message: '3' }]);
  assert.equal(JSON.parse(statusJson({ error: 'boom' })).message, 'boom');
});

test('resize messages split across and within chunks', () => {
  const got: Array<[number, number]> = [];
  const feed = resizeParser((w, h) => got.push([w, h]));
  feed(Buffer.from('{"Width":80,"Hei'));
  feed(Buffer.from('ght":24}{"Width":100,"Height":40}'));
  feed(Buffer.from('{"bad":1}'));
  assert.deepEqual(got, [
    [80, 24],
    [100, 40],
  ]);
});

test('protocol negotiation takes the client’s first supported protocol', () => {
  assert.equal(
    negotiate(['v5.channel.k8s.io', 'v4.channel.k8s.io'], ['v4.channel.k8s.io', 'v5.channel.k8s.io']),
    'v5.channel.k8s.io',
  );
  assert.equal(negotiate(['v9'], ['v4.channel.k8s.io']), undefined);
});

test('timestamps in nanoseconds are exact', () => {
  assert.equal(
    isoToNs('2026-01-02T03:04:05.678Z'),
    (BigInt(Date.parse('2026-01-02T03:04:05.678Z')) * 1_000_000n).toString(),
  );
  assert.equal(isoToNs(undefined), '0');
});

test('exit reasons', () => {
  const st = (s: Partial<ContainerStatus>): ContainerStatus =>
    ({ state: 'exited', exitCode: 0, ...s }) as ContainerStatus;
  assert.equal(exitReason(st({ exitCode: 0 }), false), 'Completed');
  assert.equal(exitReason(st({ exitCode: 1 }), false), 'Error');
  assert.equal(exitReason(st({ exitCode: 137 }), true), 'OOMKilled');
  assert.equal(exitReason(st({ state: 'running' }), false), '');
});

test('label selectors AND their equalities', () => {
  assert.ok(matchLabels({ a: '1', b: '2' }, { a: '1' }));
  assert.ok(!matchLabels({ a: '1' }, { a: '1', b: '2' }));
  assert.ok(matchLabels(undefined, {}));
});

test('/proc/net/dev parses per interface', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2000      10    3    0    0     0          0         0     4000      20    4    0    0     0       0          0
`;
  assert.deepEqual(parseNetDev(text)[1], { name: 'eth0', rxBytes: 2000, rxErrors: 3, txBytes: 4000, txErrors: 4 });
});
