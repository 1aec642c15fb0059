import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { detectCgroups, openCgroups } from '../../../src/cgroups/index.js';
import type { Cgroups } from '../../../src/cgroups/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import { makeFixture } from './fixture.js';
import type { Fixture, FixtureKind } from './fixture.js';

const LIMITS = { memoryBytes: 64 << 20, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 512, pidsMax: 100 };
const POD = '/nspod/pod-p1';

function open(kind: FixtureKind): { f: Fixture; cg: Cgroups } {
  const f = makeFixture(kind);
  const cg = openCgroups({
    layout: detectCgroups({ mountinfo: f.mountinfo }),
    parent: 'nspod',
    removeDir: f.removeDir,
  });
  return { f, cg };
}

const read = (f: Fixture, rel: string): string => readFileSync(path.join(f.root, rel), 'utf8').trim();

test('v1: createPod makes the pod in every used hierarchy and writes limits to the right controller', async () => {
  const { f, cg } = open('v1');
  try {
    await cg.createPod(POD, LIMITS);
    for (const h of ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'devices', 'freezer', 'blkio', 'systemd']) {
      assert.ok(existsSync(path.join(f.root, h, POD)), `${h} has the pod cgroup`);
    }
    // not a hierarchy nspod uses
    assert.ok(!existsSync(path.join(f.root, 'net_cls,net_prio', 'nspod')));
    assert.equal(read(f, `memory${POD}/memory.limit_in_bytes`), String(64 << 20));
    assert.equal(read(f, `cpu${POD}/cpu.cfs_quota_us`), '50000');
    assert.equal(read(f, `cpu${POD}/cpu.cfs_period_us`), '100000');
    assert.equal(read(f, `cpu${POD}/cpu.shares`), '512');
    assert.equal(read(f, `pids${POD}/pids.max`), '100');
    // cpuset copied down each level, else the cgroup could not take tasks
    assert.equal(read(f, 'cpuset/nspod/cpuset.cpus'), '0-3');
    assert.equal(read(f, `cpuset${POD}/cpuset.cpus`), '0-3');
    assert.equal(read(f, `cpuset${POD}/cpuset.mems`), '0');
    assert.deepEqual(await cg.readLimits(POD), LIMITS);
    assert.equal(await cg.exists(POD), true);
  } finally {
    f.cleanup();
  }
});

test('v1 combined cpu,cpuacct: one directory serves both', async () => {
  const { f, cg } = open('v1-combined');
  try {
    await cg.createPod(POD, { cpuShares: 2 });
    assert.equal(read(f, `cpu,cpuacct${POD}/cpu.shares`), '2');
    f.write(`cpu,cpuacct${POD}/cpuacct.usage`, '123456789\n');
    assert.equal((await cg.stats(POD)).cpuUsageNs, 123456789);
  } finally {
    f.cleanup();
  }
});

test('hybrid: the pod also exists in name=systemd and the unified mount; limits stay on v1', async () => {
  const { f, cg } = open('hybrid');
  try {
    await cg.createPod(POD, { memoryBytes: 1 << 20 });
    assert.ok(existsSync(path.join(f.root, 'unified', POD)));
    assert.ok(existsSync(path.join(f.root, 'systemd', POD)));
    assert.ok(!existsSync(path.join(f.root, 'unified', POD, 'memory.max')));
    assert.equal(read(f, `memory${POD}/memory.limit_in_bytes`), '1048576');
    await cg.removePod(POD);
    assert.equal(await cg.removeParentIfEmpty(), true);
    for (const d of cg.dirs('/nspod')) assert.ok(!existsSync(d), `${d} removed`);
  } finally {
    f.cleanup();
  }
});

test('v2: controllers enabled down the tree, v2 files written', async () => {
  const { f, cg } = open('v2');
  try {
    await cg.createPod(POD, LIMITS);
    assert.equal(read(f, 'nspod/cgroup.subtree_control'), '+memory +cpu +pids +io +cpuset');
    assert.equal(read(f, `${POD.slice(1)}/cgroup.subtree_control`), '+memory +cpu +pids +io +cpuset');
    assert.equal(read(f, `${POD.slice(1)}/memory.max`), String(64 << 20));
    assert.equal(read(f, `${POD.slice(1)}/cpu.max`), '50000 100000');
    assert.equal(read(f, `${POD.slice(1)}/cpu.weight`), '20');
    assert.equal(read(f, `${POD.slice(1)}/pids.max`), '100');
    assert.deepEqual(await cg.readLimits(POD), {
      memoryBytes: 64 << 20,
      cpuQuotaUs: 50_000,
      cpuPeriodUs: 100_000,
      cpuWeight: 20,
      pidsMax: 100,
    });
    // the root's files are never written
    assert.equal(read(f, 'cgroup.subtree_control'), 'cpuset cpu io memory pids');
  } finally {
    f.cleanup();
  }
});

test('v2: a limit whose controller is not available is a clear error', async () => {
  const { f, cg } = open('v2');
  try {
    f.write('nspod/cgroup.controllers', 'cpu pids\n');
    await assert.rejects(cg.createPod(POD, { memoryBytes: 1 << 20 }), (e) => {
      assert.ok(isNspodError(e, 'FAILED_PRECONDITION'));
      assert.match(e.message, /memory controller/);
      return true;
    });
    assert.equal(read(f, 'nspod/cgroup.subtree_control'), '+cpu +pids');
  } finally {
    f.cleanup();
  }
});

test('readLimits and stats read "max", -1 and the v1 unlimited value as unset', async () => {
  const { f, cg } = open('v1');
  try {
    await cg.createPod(POD, {});
    f.write(`memory${POD}/memory.limit_in_bytes`, '9223372036854771712\n');
    f.write(`memory${POD}/memory.usage_in_bytes`, '4096\n');
    f.write(`memory${POD}/memory.oom_control`, 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    f.write(`cpu${POD}/cpu.cfs_quota_us`, '-1\n');
    f.write(`cpu${POD}/cpu.cfs_period_us`, '100000\n');
    f.write(`cpu${POD}/cpu.shares`, '1024\n');
    f.write(`pids${POD}/pids.max`, 'max\n');
    f.write(`pids${POD}/pids.current`, '3\n');
    f.write(`cpuacct${POD}/cpuacct.usage`, '5000\n');
    assert.deepEqual(await cg.readLimits(POD), { cpuShares: 1024 });
    assert.deepEqual(await cg.stats(POD), { memoryBytes: 4096, cpuUsageNs: 5000, pids: 3, oomKills: 2 });
  } finally {
    f.cleanup();
  }
  const v2 = open('v2');
  try {
    await v2.cg.createPod(POD, {});
    const w = (file: string, s: string): void => v2.f.write(`${POD.slice(1)}/${file}`, s);
    w('memory.max', 'max\n');
    w('memory.current', '8192\n');
    w('memory.events', 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n');
    w('cpu.max', 'max 100000\n');
    w('cpu.stat', 'usage_usec 250\nuser_usec 200\nsystem_usec 50\n');
    w('pids.current', '2\n');
    assert.deepEqual(await v2.cg.readLimits(POD), {});
    assert.deepEqual(await v2.cg.stats(POD), { memoryBytes: 8192, cpuUsageNs: 250_000, pids: 2, oomKills: 1 });
  } finally {
    v2.f.cleanup();
  }
});

test('removePod: refuses while processes remain (naming them), then removes deepest first everywhere', async () => {
  const { f, cg } = open('hybrid');
  try {
    await cg.createPod(POD, { memoryBytes: 1 << 20 });
    // the runtime made container cgroups below, also in a hierarchy nspod does not use
    for (const h of ['memory', 'cpu', 'unified', 'net_cls,net_prio'])
      mkdirSync(path.join(f.root, h, POD, 'app', 'sub'), { recursive: true });
    f.write(`memory${POD}/app/cgroup.procs`, '4242\n');
    f.write(`cpu${POD}/app/sub/cgroup.procs`, '4243\n');
    assert.deepEqual(await cg.procs(POD), [4242, 4243]);
    await assert.rejects(cg.removePod(POD), (e) => {
      assert.ok(isNspodError(e, 'FAILED_PRECONDITION'));
      assert.match(e.message, /4242, 4243/);
      return true;
    });
    assert.ok(existsSync(path.join(f.root, 'memory', POD)), 'nothing removed while busy');
    f.write(`memory${POD}/app/cgroup.procs`, '');
    f.write(`cpu${POD}/app/sub/cgroup.procs`, '');
    await cg.removePod(POD);
    for (const d of cg.dirs(POD)) assert.ok(!existsSync(d), `${d} removed`);
    await cg.removePod(POD); // idempotent
    assert.equal(await cg.exists(POD), false);
  } finally {
    f.cleanup();
  }
});

test('removeParentIfEmpty keeps a parent that still has pods', async () => {
  const { f, cg } = open('v1');
  try {
    await cg.createPod('/nspod/pod-a', {});
    await cg.createPod('/nspod/pod-b', {});
    await cg.removePod('/nspod/pod-a');
    assert.equal(await cg.removeParentIfEmpty(), false);
    assert.ok(existsSync(path.join(f.root, 'memory', 'nspod', 'pod-b')));
    await cg.removePod('/nspod/pod-b');
    assert.equal(await cg.removeParentIfEmpty(), true);
    assert.equal(await cg.removeParentIfEmpty(), true);
  } finally {
    f.cleanup();
  }
});

test('paths outside the parent are refused', async () => {
  const { f, cg } = open('v1');
  try {
    for (const p of ['/process_api', '/nspod', '/nspod/../x', '/nspodx/pod-a', '/']) {
      await assert.rejects(cg.createPod(p, {}), (e) => isNspodError(e, 'INVALID_ARGUMENT'), p);
      await assert.rejects(cg.removePod(p), (e) => isNspodError(e, 'INVALID_ARGUMENT'), p);
    }
    await assert.rejects(cg.procs('/other'), (e) => isNspodError(e, 'INVALID_ARGUMENT'));
  } finally {
    f.cleanup();
  }
});
