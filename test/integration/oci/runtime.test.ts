/**
 * The real runtimes (root): detection on this host, and a container built by buildConfig run
 * through the driver, checked from /proc and /sys/fs/cgroup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { capsFromMask, DEFAULT_CAPS, buildConfig, detectRuntime, runtimeDriver } from '../../../src/oci/index.js';
import type { OciMount } from '../../../src/oci/index.js';
import { containerCgroupPath, detectCgroups, ociResources } from '../../../src/cgroups/index.js';
import { realHost } from '../../../src/host/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import type { ContainerSpec } from '../../../src/spec/types.js';
import { alive, cgroupMounts, waitFor } from '../helpers.js';

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(path.join(d, name)));
}

/** A rootfs that borrows the host's /usr read-only; returns the extra bind mounts. */
function borrowedRootfs(rootfs: string): OciMount[] {
  mkdirSync(rootfs, { recursive: true });
  const mounts: OciMount[] = [];
  for (const top of ['usr', 'bin', 'sbin', 'lib', 'lib64']) {
    if (!existsSync('/' + top)) continue;
    if (lstatSync('/' + top).isSymbolicLink()) symlinkSync(readlinkSync('/' + top), path.join(rootfs, top));
    else {
      mkdirSync(path.join(rootfs, top));
      mounts.push({ destination: '/' + top, type: 'bind', source: '/' + top, options: ['rbind', 'ro', 'rprivate'] });
    }
  }
  return mounts;
}

test('detectRuntime picks a runtime that really works here, and says why others were skipped', async () => {
  const dir = mkdtempSync('/run/nspod-itest-detect-');
  // Under a parent of its own, so probes of other nspod processes at the root don't count.
  const parent = `nspod-test-${randomBytes(4).toString('hex')}`;
  try {
    const r = await detectRuntime(realHost, {
      probeDir: path.join(dir, 'probe'),
      cacheFile: path.join(dir, 'runtime.json'),
      cgroupParent: parent,
    });
    assert.ok(existsSync(r.path));
    assert.match(r.version, /^\d+\.\d+/);
    const layout = detectCgroups();
    if (layout.hybrid && onPath('crun') && onPath('runc')) {
      // crun (1.8) refuses hybrid cgroups; runc works.
      assert.equal(r.name, 'runc');
      const crun = r.skipped.find((s) => s.name === 'crun');
      assert.ok(crun, JSON.stringify(r.skipped));
      assert.match(crun.reason, /hybrid/);
    }
    const cache = JSON.parse(readFileSync(path.join(dir, 'runtime.json'), 'utf8')) as Record<string, { ok: boolean }>;
    assert.equal(cache[r.path]?.ok, true);
    // nothing of the probe is left: bundle, runtime state, cgroup
    assert.deepEqual(
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(dir)),
      [],
    );
    for (const m of cgroupMounts()) {
      assert.ok(!existsSync(path.join(m.dir, parent)), `probe cgroup parent left in ${m.dir}`);
    }
    assert.deepEqual(readdirSync(path.join(dir, 'probe')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a container built by buildConfig runs through the driver: create, start, state, exec, kill, delete', async () => {
  const dir = mkdtempSync('/run/nspod-itest-rt-');
  const runtimeRoot = path.join(dir, 'runtime');
  const parent = `nspod-test-${randomBytes(4).toString('hex')}`;
  const cgPath = containerCgroupPath(parent, 'rt', 'app');
  const id = `itest-${randomBytes(4).toString('hex')}`;
  const rt = await detectRuntime(realHost, { probeDir: path.join(dir, 'probe') });
  const d = runtimeDriver({ host: realHost, runtime: rt, root: runtimeRoot });
  try {
    const bundle = path.join(dir, 'bundle');
    const rootfs = path.join(bundle, 'rootfs');
    const extra = borrowedRootfs(rootfs);
    const container: ContainerSpec = {
      name: 'app',
      image: 'host',
      command: ['sleep', '300'],
      env: [{ name: 'GREETING', value: 'hi' }],
      ports: [],
      resources: { limits: {}, requests: {} },
      securityContext: { privileged: false, capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false },
      tty: false,
      stdin: false,
    };
    const { spec } = buildConfig({
      containerName: 'app',
      image: {},
      container,
      rootfs,
      hostname: 'itest-host',
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network' }],
      cgroupsPath: cgPath,
      resources: ociResources({ memoryBytes: 64 << 20, pidsMax: 50 }),
      mounts: {},
      user: { uid: 0, gid: 0, additionalGids: [] },
      hostLimits: { nofile: 4096, nproc: 4096 },
    });
    spec.mounts.push(...extra);
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));

    const pidFile = path.join(dir, 'app.pid');
    await d.create({ id, bundle, pidFile });
    const created = await d.state(id);
    assert.equal(created.status, 'created');
    assert.equal(Number(readFileSync(pidFile, 'utf8')), created.pid);

    await d.start(id);
    const running = await d.state(id);
    assert.equal(running.status, 'running');
    const pid = running.pid;

    // What the kernel says about the process.
    assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\u0000300\u0000');
    for (const ns of ['pid', 'mnt', 'uts', 'net', 'ipc']) {
      assert.notEqual(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `${ns} namespace`);
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const capEff = /CapEff:\s*(\S+)/.exec(status)![1]!;
    assert.deepEqual(new Set(capsFromMask(capEff)), new Set(DEFAULT_CAPS));
    assert.match(status, /NoNewPrivs:\s*1/);
    assert.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), /Max open files\s+4096\s+4096/);
    assert.ok(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('GREETING=hi'));
    assert.ok(readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(cgPath));
    const layout = detectCgroups();
    const memFile =
      layout.version === 1
        ? path.join(layout.v1['memory']!, cgPath, 'memory.limit_in_bytes')
        : path.join(layout.v2!, cgPath, 'memory.max');
    assert.equal(readFileSync(memFile, 'utf8').trim(), String(64 << 20));

    const out = await d.execOutput(id, { args: ['cat', '/proc/sys/kernel/hostname', '/proc/1/cmdline'] });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'itest-host\nsleep\u0000300\u0000');
    assert.equal((await d.execOutput(id, { args: ['sh', '-c', 'exit 7'] })).code, 7);

    await d.kill(id, 'SIGKILL');
    await waitFor('the container to stop', async () => (await d.state(id)).status === 'stopped');
    assert.equal(alive(pid), false);
    await d.delete(id);
    await assert.rejects(d.state(id), (e) => isNspodError(e, 'NOT_FOUND'));
    await d.delete(id); // idempotent
    for (const m of cgroupMounts()) assert.ok(!existsSync(path.join(m.dir, cgPath)), `${m.dir}${cgPath} removed`);
  } finally {
    await d.delete(id, { force: true }).catch(() => undefined);
    for (const m of cgroupMounts()) {
      for (const p of [cgPath, path.dirname(cgPath), `/${parent}`]) {
        try {
          rmdirSync(path.join(m.dir, p));
        } catch {}
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  for (const m of cgroupMounts()) assert.ok(!existsSync(path.join(m.dir, parent)), `${m.dir}/${parent} left behind`);
});
