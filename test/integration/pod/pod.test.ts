/**
 * The walking skeleton, end to end through the CLI, checked from /proc and /sys/fs/cgroup:
 * the demo pod's shared and private namespaces, its cgroup limits, localhost traffic between
 * containers, shared POSIX shm and hostname, and a clean removal.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  projectDir,
  podCgroupDirs,
  cgroupPids,
  nsInode,
  alive,
  mountsContaining,
  cgroupMounts,
  memoryHierarchy,
  pureV2,
  waitFor,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

const examplePod = path.join(projectDir, 'examples', 'pod.yaml');

function memoryLimit(dir: string): number {
  const f = pureV2() ? 'memory.max' : 'memory.limit_in_bytes';
  return Number(readFileSync(path.join(dir, f), 'utf8').trim());
}

function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

describe('the demo pod (examples/pod.yaml)', () => {
  let sb: Sandbox;
  let podDir: string;
  const pids: Record<string, number> = {};

  before(async () => {
    sb = await makeSandbox();
    await nspodOk(sb, ['play', examplePod]);
    const dirs = podCgroupDirs(sb);
    assert.equal(dirs.length, 1, 'one pod cgroup under the parent');
    podDir = dirs[0]!;
    for (const name of ['_pause', 'app', 'sidecar']) {
      pids[name] = await waitFor(`a process in ${name}'s cgroup`, () => cgroupPids(path.join(podDir, name))[0]);
    }
  });

  after(async () => {
    await destroySandbox(sb);
  });

  it('runs the pause process as PID 1 of the sandbox', () => {
    assert.equal(comm(pids._pause!), 'pause');
    const status = readFileSync(`/proc/${pids._pause}/status`, 'utf8');
    const nspid = /NSpid:\s+(.*)/.exec(status)?.[1]?.trim().split(/\s+/);
    assert.equal(nspid?.[nspid.length - 1], '1');
  });

  it('shares net, ipc and uts with the pause process, and keeps mnt and pid private', () => {
    for (const c of ['app', 'sidecar']) {
      for (const t of ['net', 'ipc', 'uts']) {
        assert.equal(nsInode(pids[c]!, t), nsInode(pids._pause!, t), `${c} ${t}`);
      }
      for (const t of ['mnt', 'pid']) {
        assert.notEqual(nsInode(pids[c]!, t), nsInode(pids._pause!, t), `${c} ${t} differs from pause`);
        assert.notEqual(nsInode(pids[c]!, t), nsInode('self', t), `${c} ${t} differs from host`);
      }
    }
    assert.notEqual(nsInode(pids.app!, 'mnt'), nsInode(pids.sidecar!, 'mnt'));
    assert.notEqual(nsInode(pids.app!, 'pid'), nsInode(pids.sidecar!, 'pid'));
    assert.notEqual(nsInode(pids.app!, 'net'), nsInode('self', 'net'));
  });

  it('puts each container in its own cgroup with its memory limit', () => {
    assert.equal(memoryLimit(path.join(podDir, 'app')), 256 * 1024 * 1024);
    assert.equal(memoryLimit(path.join(podDir, 'sidecar')), 128 * 1024 * 1024);
    assert.equal(memoryLimit(podDir), 384 * 1024 * 1024, 'the pod carries the sum');
    const own = readFileSync(`/proc/${pids.app}/cgroup`, 'utf8');
    assert.match(own, new RegExp(`/${sb.cgroupParent}/pod-[0-9a-f]+/app`));
  });

  it('lets the sidecar fetch the app page over localhost', async () => {
    const page = await waitFor('the app to serve', async () => {
      const r = await nspod(sb, ['exec', 'foo', '-c', 'sidecar', '--', 'wget', '-qO-', 'http://localhost:80/']);
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.match(page, /hello from app/);
  });

  it('shares POSIX shm and the hostname between containers', async () => {
    await nspodOk(sb, ['exec', 'foo', '-c', 'app', '--', 'sh', '-c', 'echo shared-$$ > /dev/shm/probe']);
    const inApp = await nspodOk(sb, ['exec', 'foo', '-c', 'app', '--', 'cat', '/dev/shm/probe']);
    const inSidecar = await nspodOk(sb, ['exec', 'foo', '-c', 'sidecar', '--', 'cat', '/dev/shm/probe']);
    assert.match(inApp, /^shared-\d+/);
    assert.equal(inSidecar, inApp);
    const h1 = await nspodOk(sb, ['exec', 'foo', '-c', 'app', '--', 'hostname']);
    const h2 = await nspodOk(sb, ['exec', 'foo', '-c', 'sidecar', '--', 'hostname']);
    assert.equal(h1.trim(), 'foo');
    assert.equal(h2.trim(), 'foo');
  });

  it('passes the exit code of exec through', async () => {
    const r = await nspod(sb, ['exec', 'foo', '--', 'sh', '-c', 'exit 42']);
    assert.equal(r.code, 42);
  });

  it('refuses a second pod of the same name, and replaces it with --replace', async () => {
    const r = await nspod(sb, ['play', examplePod]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already exists/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    await nspodOk(sb, ['play', '--replace', examplePod]);
    await waitFor('the old pod processes to be gone', () => !alive(pids.app!) && !alive(pids._pause!));
    const dirs = podCgroupDirs(sb);
    assert.equal(dirs.length, 1);
    assert.notEqual(dirs[0], podDir, 'a new pod cgroup');
    podDir = dirs[0]!;
    for (const name of ['_pause', 'app', 'sidecar']) {
      pids[name] = await waitFor(`${name} restarted`, () => cgroupPids(path.join(podDir, name))[0]);
    }
  });

  it('rm -f leaves no process, mount, cgroup or pinned namespace behind', async () => {
    const all = [...Object.values(pids)];
    const podId = path.basename(podDir).replace(/^pod-/, '');
    await nspodOk(sb, ['rm', '-f', 'foo']);
    for (const pid of all) assert.equal(alive(pid), false, `pid ${pid} is gone`);
    assert.deepEqual(mountsContaining(sb.root), []);
    assert.deepEqual(mountsContaining(sb.runRoot), []);
    for (const m of cgroupMounts()) {
      assert.equal(existsSync(path.join(m.dir, sb.cgroupParent, `pod-${podId}`)), false, `no pod cgroup in ${m.dir}`);
    }
    assert.equal(existsSync(path.join(sb.runRoot, 'pods', podId)), false);
    const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as unknown[];
    assert.equal(pods.length, 0);
    assert.ok(memoryHierarchy());
  });
});
