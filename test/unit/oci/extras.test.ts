import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyExtras, prepareExtras, runtimeDefaultSeccomp, splitDev } from '../../../src/oci/index.js';
import type { OciSpec } from '../../../src/oci/index.js';
import { isNspodError } from '../../../src/errors/index.js';

function spec(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_CHOWN'],
        effective: ['CAP_CHOWN'],
        permitted: ['CAP_CHOWN'],
        inheritable: [],
        ambient: [],
      },
    },
    root: { path: '/r' },
    mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/pod/hosts', options: ['rbind', 'rprivate'] }],
    linux: {
      namespaces: [{ type: 'mount' }],
      maskedPaths: ['/proc/kcore'],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
    },
  };
}

test('splitDev follows the kernel dev_t layout', () => {
  assert.deepEqual(splitDev(0x0103n), { major: 1, minor: 3 }); // /dev/null
  assert.deepEqual(splitDev((259n << 8n) | 5n), { major: 259, minor: 5 });
  // major 8, minor 0x12345: the minor's high bits sit above the major's low 12 bits
  assert.deepEqual(splitDev(0x45n | (8n << 8n) | (0x12300n << 12n)), { major: 8, minor: 0x12345 });
});

test('prepareExtras resolves devices and refuses what is not there', async () => {
  const p = await prepareExtras({ devices: [{ containerPath: '/dev/n', hostPath: '/dev/null', permissions: 'r' }] });
  assert.deepEqual(p!.devices[0]!.major, 1);
  assert.deepEqual(p!.devices[0]!.minor, 3);
  assert.deepEqual(p!.deviceRules, [{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }]);
  await assert.rejects(
    prepareExtras({
      mounts: [{ containerPath: '/x', hostPath: '/no/such/dir', readonly: false, propagation: 'private' }],
    }),
    (e: unknown) => isNspodError(e, 'INVALID_ARGUMENT') && /mounts\[0\]\.host_path/.test((e as Error).message),
  );
  await assert.rejects(
    prepareExtras({ devices: [{ containerPath: '/dev/x', hostPath: '/etc/hostname', permissions: 'r' }] }),
    /not a character or block device/,
  );
  await assert.rejects(
    prepareExtras({ devices: [{ containerPath: '/dev/x', hostPath: '/dev/null', permissions: 'rx' }] }),
    /permissions/,
  );
});

test('applyExtras: mounts replace by destination, propagation sets rootfsPropagation, resources, groups, seccomp', () => {
  const s = spec();
  const warnings: string[] = [];
  applyExtras(
    s,
    {
      supplementalGroups: [5, 6],
      sysctls: { 'net.core.somaxconn': '1024' },
      maskedPaths: ['/proc/x'],
      resources: { cpuShares: 512, cpuQuota: 25000, cpuPeriod: 100000, memoryLimitBytes: 1 << 20, cpusetCpus: '0' },
      oomScoreAdj: 300,
      ambientCapabilities: ['CAP_CHOWN'],
    },
    {
      mounts: [
        { containerPath: '/etc/hosts', hostPath: '/k/hosts', readonly: true, propagation: 'private' },
        { containerPath: '/a/b', hostPath: '/h/b', readonly: false, propagation: 'rslave' },
        { containerPath: '/a', hostPath: '/h/a', readonly: false, propagation: 'rshared' },
      ],
      devices: [],
      deviceRules: [],
      seccomp: runtimeDefaultSeccomp(),
    },
    { privileged: false, hostOomScoreAdj: 0, warnings },
  );
  assert.deepEqual(
    s.mounts.map((m) => [m.destination, m.source, m.options?.join(',')]),
    [
      ['/a', '/h/a', 'rbind,rshared'],
      ['/etc/hosts', '/k/hosts', 'rbind,rprivate,ro'],
      ['/a/b', '/h/b', 'rbind,rslave'],
    ],
    'kubelet’s /etc/hosts replaces the pod’s; shallower destinations first',
  );
  assert.equal(s.linux.rootfsPropagation, 'rshared');
  assert.deepEqual(s.process.user.additionalGids, [5, 6]);
  assert.deepEqual(s.linux.sysctl, { 'net.core.somaxconn': '1024' });
  assert.deepEqual(s.linux.maskedPaths, ['/proc/x']);
  assert.deepEqual(s.linux.resources?.cpu, { shares: 512, quota: 25000, period: 100000, cpus: '0' });
  assert.deepEqual(s.linux.resources?.memory, { limit: 1 << 20 });
  assert.equal(s.process.oomScoreAdj, 300);
  assert.deepEqual(s.process.capabilities?.ambient, ['CAP_CHOWN']);
  assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ALLOW');
  assert.ok(s.linux.seccomp?.syscalls?.[0]?.names.includes('kexec_load'));
  assert.deepEqual(warnings, []);
});

test('applyExtras leaves out what the host refuses and what privileged containers skip', () => {
  const s = spec();
  const warnings: string[] = [];
  applyExtras(
    s,
    { oomScoreAdj: -500, maskedPaths: ['/proc/x'] },
    { mounts: [], devices: [], deviceRules: [], seccomp: runtimeDefaultSeccomp() },
    { privileged: true, hostOomScoreAdj: 0, warnings },
  );
  assert.equal(s.process.oomScoreAdj, undefined);
  assert.match(warnings[0]!, /oom_score_adj -500/);
  assert.equal(s.linux.seccomp, undefined, 'no seccomp for privileged');
  assert.deepEqual(s.linux.maskedPaths, ['/proc/kcore']);
});
