import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { detectCgroups, parseMountinfo } from '../../../src/cgroups/index.js';
import { isNspodError } from '../../../src/errors/index.js';
import { makeFixture } from './fixture.js';

// The mountinfo of a hybrid Debian host (separate cpu and cpuacct mounts, name=systemd, empty unified).
const HYBRID_HOST = `
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

test('detectCgroups: a hybrid host', () => {
  const l = detectCgroups({ mountinfo: HYBRID_HOST });
  assert.equal(l.version, 1);
  assert.equal(l.hybrid, true);
  assert.equal(l.v2, '/sys/fs/cgroup/unified');
  assert.equal(l.v1['memory'], '/sys/fs/cgroup/memory');
  assert.equal(l.v1['cpu'], '/sys/fs/cgroup/cpu');
  assert.equal(l.v1['cpuacct'], '/sys/fs/cgroup/cpuacct');
  assert.equal(l.v1['name=systemd'], '/sys/fs/cgroup/systemd');
  assert.equal(Object.keys(l.v1).length, 9);
});

test('detectCgroups: combined cpu,cpuacct and net_cls,net_prio mounts, escaped paths', () => {
  const f = makeFixture('v1-combined');
  try {
    const l = detectCgroups({ mountinfo: f.mountinfo });
    assert.equal(l.version, 1);
    assert.equal(l.hybrid, false);
    assert.equal(l.v2, undefined);
    assert.equal(l.v1['cpu'], path.join(f.root, 'cpu,cpuacct'));
    assert.equal(l.v1['cpuacct'], path.join(f.root, 'cpu,cpuacct'));
    assert.equal(l.v1['net_prio'], path.join(f.root, 'net_cls,net_prio'));
    assert.equal(l.v1['name=systemd'], path.join(f.root, 'systemd'));
    // options that are not controllers are not taken for one
    assert.equal(l.v1['xattr'], undefined);
    assert.equal(l.v1['rw'], undefined);
  } finally {
    f.cleanup();
  }
});

test('detectCgroups: pure v2 reads the root controllers', () => {
  const f = makeFixture('v2');
  try {
    const l = detectCgroups({ mountinfo: f.mountinfo });
    assert.deepEqual(l, {
      version: 2,
      hybrid: false,
      v1: {},
      v2: f.root,
      v2Controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
    });
  } finally {
    f.cleanup();
  }
});

test('detectCgroups: hybrid fixture, and no cgroups at all', () => {
  const f = makeFixture('hybrid');
  try {
    const l = detectCgroups({ mountinfo: f.mountinfo });
    assert.equal(l.version, 1);
    assert.equal(l.hybrid, true);
    assert.deepEqual(l.v2Controllers, []);
  } finally {
    f.cleanup();
  }
  assert.throws(
    () => detectCgroups({ mountinfo: '22 1 8:1 / / rw - ext4 /dev/sda1 rw\n' }),
    (e) => isNspodError(e, 'FAILED_PRECONDITION'),
  );
});

test('parseMountinfo: optional fields and octal escapes', () => {
  const e = parseMountinfo(
    '36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\nbad line\n',
  );
  assert.deepEqual(e, [
    { root: '/mnt1', mountPoint: '/mnt two', fsType: 'ext3', superOptions: ['rw', 'errors=continue'] },
  ]);
});
