/**
 * Real cgroups (root): a pod cgroup with limits under a unique test parent, a process put in it,
 * and removal that leaves no directory in any hierarchy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { detectCgroups, openCgroups, podCgroupPath } from '../../../src/cgroups/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import { cgroupMounts } from '../helpers.js';

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

test('a pod cgroup with limits holds a process and is removed from every hierarchy', async () => {
  const layout = detectCgroups();
  const parent = `nspod-test-${randomBytes(4).toString('hex')}`;
  const cg = openCgroups({ layout, parent });
  const pod = podCgroupPath(parent, 'itest');
  const limits = { memoryBytes: 48 << 20, cpuQuotaUs: 20_000, cpuPeriodUs: 100_000, cpuShares: 256, pidsMax: 32 };
  let child: ChildProcess | undefined;
  try {
    await cg.createPod(pod, limits);

    // The files on disk, in the hierarchy that carries each controller.
    if (layout.version === 1) {
      const memDir = path.join(layout.v1['memory']!, pod);
      assert.equal(readFileSync(path.join(memDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(48 << 20));
      assert.equal(readFileSync(path.join(layout.v1['cpu']!, pod, 'cpu.cfs_quota_us'), 'utf8').trim(), '20000');
      assert.equal(readFileSync(path.join(layout.v1['pids']!, pod, 'pids.max'), 'utf8').trim(), '32');
      if (layout.v1['cpuset']) {
        const cpus = readFileSync(path.join(layout.v1['cpuset'], pod, 'cpuset.cpus'), 'utf8').trim();
        assert.notEqual(cpus, '', 'cpuset.cpus filled in');
      }
      if (layout.hybrid) assert.ok(existsSync(path.join(layout.v2!, pod)), 'pod cgroup in the unified mount');
      if (layout.v1['name=systemd']) assert.ok(existsSync(path.join(layout.v1['name=systemd'], pod)));
    } else {
      const dir = path.join(layout.v2!, pod);
      assert.equal(readFileSync(path.join(dir, 'memory.max'), 'utf8').trim(), String(48 << 20));
      assert.equal(readFileSync(path.join(dir, 'cpu.max'), 'utf8').trim(), '20000 100000');
    }
    assert.deepEqual(
      await cg.readLimits(pod),
      layout.version === 1
        ? limits
        : { memoryBytes: 48 << 20, cpuQuotaUs: 20_000, cpuPeriodUs: 100_000, cpuWeight: 10, pidsMax: 32 },
    );

    // A container cgroup below the pod (as the runtime makes it), holding a real process.
    child = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pid = child.pid!;
    const container = `${pod}/c1`;
    const placeIn = layout.version === 1 ? [layout.v1['memory']!, layout.v1['pids']!, layout.v1['cpu']!] : [layout.v2!];
    for (const m of placeIn) {
      mkdirSync(path.join(m, container), { recursive: true });
      writeFileSync(path.join(m, container, 'cgroup.procs'), String(pid));
    }
    const ownCgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    assert.ok(ownCgroups.includes(container), `the kernel puts ${pid} in ${container}: ${ownCgroups}`);
    assert.deepEqual(await cg.procs(pod), [pid]);
    const st = await cg.stats(pod);
    assert.ok(st.memoryBytes > 0 && st.pids >= 1, JSON.stringify(st));
    assert.equal(st.memoryLimitBytes, 48 << 20);

    await assert.rejects(cg.removePod(pod), (e) => {
      assert.ok(isNspodError(e, 'FAILED_PRECONDITION'));
      assert.match(e.message, new RegExp(String(pid)));
      return true;
    });

    child.kill('SIGKILL');
    await exited(child);
    await cg.removePod(pod);
    assert.equal(await cg.removeParentIfEmpty(), true);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await cg.removePod(pod).catch(() => undefined);
    await cg.removeParentIfEmpty().catch(() => undefined);
  }
  // Checked from the mount table itself, not from the layout nspod computed.
  const mounts = cgroupMounts();
  assert.ok(mounts.length > 0);
  for (const m of mounts) assert.ok(!existsSync(path.join(m.dir, parent)), `${m.dir}/${parent} left behind`);
});
