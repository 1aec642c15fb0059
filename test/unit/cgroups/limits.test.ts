import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  containerCgroupPath,
  limitsFromResources,
  ociResources,
  podCgroupPath,
  sharesToWeight,
  sumLimits,
  v1Files,
  v2Files,
} from '../../../src/cgroups/index.js';
import { isNspodError } from '../../../src/errors/index.js';

test('cgroup paths: pod and container under the parent', () => {
  assert.equal(podCgroupPath('nspod', 'abc'), '/nspod/pod-abc');
  assert.equal(podCgroupPath('/a/b/', 'abc'), '/a/b/pod-abc');
  assert.equal(containerCgroupPath('nspod', 'abc', 'web'), '/nspod/pod-abc/web');
  for (const bad of ['', '..', 'a/b', '.']) {
    assert.throws(
      () => containerCgroupPath('nspod', 'abc', bad),
      (e) => isNspodError(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(
      () => podCgroupPath('nspod', bad),
      (e) => isNspodError(e, 'INVALID_ARGUMENT'),
    );
  }
  assert.throws(
    () => podCgroupPath('../x', 'a'),
    (e) => isNspodError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => podCgroupPath('/', 'a'),
    (e) => isNspodError(e, 'INVALID_ARGUMENT'),
  );
});

test('limitsFromResources: memory, quota over 100ms, shares from requests', () => {
  const cases = [
    { r: { limits: {}, requests: {} }, want: {} },
    {
      r: { limits: { memoryBytes: 64 << 20, cpuMilli: 500 }, requests: { cpuMilli: 250 } },
      want: { memoryBytes: 64 << 20, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 256 },
    },
    { r: { limits: { cpuMilli: 2000 }, requests: {} }, want: { cpuQuotaUs: 200_000, cpuPeriodUs: 100_000 } },
    // Kubernetes' floors: 1ms quota, 2 shares
    {
      r: { limits: { cpuMilli: 1 }, requests: { cpuMilli: 1 } },
      want: { cpuQuotaUs: 1000, cpuPeriodUs: 100_000, cpuShares: 2 },
    },
    { r: { limits: {}, requests: { cpuMilli: 1000 } }, want: { cpuShares: 1024 } },
  ];
  for (const c of cases) assert.deepEqual(limitsFromResources(c.r), c.want, JSON.stringify(c.r));
});

test('sumLimits: a field only when every container sets it', () => {
  assert.deepEqual(sumLimits([]), {});
  const a = { memoryBytes: 100, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 256, pidsMax: 10 };
  const b = { memoryBytes: 200, cpuQuotaUs: 20_000, cpuPeriodUs: 100_000, cpuShares: 512 };
  assert.deepEqual(sumLimits([a, b]), { memoryBytes: 300, cpuQuotaUs: 70_000, cpuPeriodUs: 100_000, cpuShares: 768 });
  assert.deepEqual(sumLimits([a, { cpuShares: 2 }]), { cpuShares: 258 });
  // different periods are brought to 100ms
  assert.deepEqual(
    sumLimits([
      { cpuQuotaUs: 25_000, cpuPeriodUs: 50_000 },
      { cpuQuotaUs: 10_000, cpuPeriodUs: 100_000 },
    ]),
    {
      cpuQuotaUs: 60_000,
      cpuPeriodUs: 100_000,
    },
  );
});

test('sharesToWeight: the runc/Kubernetes conversion', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(0), 0);
});

test('v1Files and v2Files', () => {
  const l = { memoryBytes: 1 << 20, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 1024, pidsMax: 64 };
  assert.deepEqual(v1Files(l), [
    ['memory.limit_in_bytes', '1048576'],
    ['cpu.cfs_period_us', '100000'],
    ['cpu.cfs_quota_us', '50000'],
    ['cpu.shares', '1024'],
    ['pids.max', '64'],
  ]);
  assert.deepEqual(v2Files(l), [
    ['memory.max', '1048576'],
    ['cpu.max', '50000 100000'],
    ['cpu.weight', '39'],
    ['pids.max', '64'],
  ]);
  assert.deepEqual(v2Files({ cpuPeriodUs: 100_000 }), [['cpu.max', 'max 100000']]);
  assert.deepEqual(v1Files({}), []);
  assert.deepEqual(v2Files({}), []);
});

test('ociResources: only what is set', () => {
  assert.deepEqual(ociResources({}), {});
  assert.deepEqual(ociResources({ memoryBytes: 5, cpuQuotaUs: 1000, cpuPeriodUs: 100_000, cpuShares: 2, pidsMax: 7 }), {
    memory: { limit: 5 },
    cpu: { shares: 2, quota: 1000, period: 100_000 },
    pids: { limit: 7 },
  });
  assert.deepEqual(ociResources({ cpuShares: 512 }), { cpu: { shares: 512 } });
});
