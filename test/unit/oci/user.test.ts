import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildConfigFor, resolveUser, userSpecFor } from '../../../src/oci/index.js';
import type { ContainerSpec } from '../../../src/spec/types.js';
import { isNspodError } from '../../../src/errors/index.js';

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken:x::
`;
const GROUP = `root:x:0:
wheel:x:10:root,app
www-data:x:33:
app:x:1000:
video:x:44:app
staff:x:50:app
`;

function rootfs(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nspod-rootfs-'));
  mkdirSync(path.join(dir, 'etc'));
  writeFileSync(path.join(dir, 'etc', 'passwd'), PASSWD);
  writeFileSync(path.join(dir, 'etc', 'group'), GROUP);
  return dir;
}

test('resolveUser: names, ids and groups from the rootfs', async () => {
  const dir = rootfs();
  try {
    assert.deepEqual(await resolveUser(dir, ''), { uid: 0, gid: 0, additionalGids: [10] });
    assert.deepEqual(await resolveUser(dir, 'app'), { uid: 1000, gid: 1000, additionalGids: [10, 44, 50] });
    assert.deepEqual(await resolveUser(dir, '1000'), { uid: 1000, gid: 1000, additionalGids: [10, 44, 50] });
    assert.deepEqual(await resolveUser(dir, 'www-data'), { uid: 33, gid: 33, additionalGids: [] });
    assert.deepEqual(await resolveUser(dir, 'app:video'), { uid: 1000, gid: 44, additionalGids: [10, 50] });
    assert.deepEqual(await resolveUser(dir, '1234:5678'), { uid: 1234, gid: 5678, additionalGids: [] });
    assert.deepEqual(await resolveUser(dir, '4321'), { uid: 4321, gid: 0, additionalGids: [] });
    for (const bad of ['nobody', 'app:nogroup', 'a:b:c']) {
      await assert.rejects(resolveUser(dir, bad), (e) => isNspodError(e, 'INVALID_ARGUMENT'), bad);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveUser: no /etc/passwd is fine for ids; symlinks stay inside the rootfs', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'nspod-rootfs-'));
  const outside = mkdtempSync(path.join(tmpdir(), 'nspod-outside-'));
  try {
    assert.deepEqual(await resolveUser(empty, '5:6'), { uid: 5, gid: 6, additionalGids: [] });
    assert.deepEqual(await resolveUser(empty, ''), { uid: 0, gid: 0, additionalGids: [] });
    // /etc -> an absolute path: resolved inside the rootfs, not on the host
    writeFileSync(path.join(outside, 'passwd'), 'evil:x:666:666::/:/bin/sh\n');
    mkdirSync(path.join(empty, 'real', 'etc'), { recursive: true });
    writeFileSync(path.join(empty, 'real', 'etc', 'passwd'), 'good:x:7:8::/:/bin/sh\n');
    symlinkSync(outside, path.join(empty, 'etc'));
    await assert.rejects(
      resolveUser(empty, 'evil'),
      (e) => isNspodError(e, 'NOT_FOUND') || isNspodError(e, 'INVALID_ARGUMENT'),
    );
    rmSync(path.join(empty, 'etc'));
    symlinkSync('/real/etc', path.join(empty, 'etc'));
    assert.deepEqual(await resolveUser(empty, 'good'), { uid: 7, gid: 8, additionalGids: [] });
    rmSync(path.join(empty, 'etc'));
    symlinkSync('../../../../../../real/etc', path.join(empty, 'etc'));
    assert.deepEqual(await resolveUser(empty, 'good'), { uid: 7, gid: 8, additionalGids: [] });
  } finally {
    rmSync(empty, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

test('userSpecFor and buildConfigFor: runAsUser/runAsGroup over the image User', async () => {
  assert.equal(userSpecFor('app', {}), 'app');
  assert.equal(userSpecFor('app:staff', { runAsGroup: 5 }), 'app:5');
  assert.equal(userSpecFor('app', { runAsUser: 33 }), '33');
  assert.equal(userSpecFor(undefined, { runAsUser: 33, runAsGroup: 1 }), '33:1');
  const dir = rootfs();
  try {
    const c: ContainerSpec = {
      name: 'web',
      image: 'x',
      env: [],
      ports: [],
      resources: { limits: {}, requests: {} },
      securityContext: { privileged: false, capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false },
      tty: false,
      stdin: false,
    };
    const base = {
      containerName: 'web',
      image: { User: 'app', Cmd: ['sh'] },
      container: c,
      rootfs: dir,
      namespaces: [],
      cgroupsPath: '/nspod/pod-x/web',
      mounts: {},
      hostLimits: { nofile: 1024, nproc: 1024 },
      availableCaps: [],
    };
    let { spec } = await buildConfigFor(base);
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [10, 44, 50] });
    assert.deepEqual(spec.process.capabilities!.effective, []);
    ({ spec } = await buildConfigFor({
      ...base,
      container: { ...c, securityContext: { ...c.securityContext, runAsUser: 33 } },
    }));
    assert.deepEqual(spec.process.user, { uid: 33, gid: 33 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
