/**
 * Namespace modes and lifecycle facts, checked from /proc and /sys/fs/cgroup: a shared pid
 * namespace (signals across containers, orphans reaped by pause), host namespaces, exit codes
 * seen by a later nspod process, and bad input that creates nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  podCgroupDirs,
  cgroupPids,
  nsInode,
  waitFor,
  cgroupMounts,
  mountsContaining,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

function ppid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((p) => ppid(p) === parent);
}

const sharedPod = `
apiVersion: v1
kind: Pod
metadata: { name: shared }
spec:
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 2
  containers:
    - name: app
      image: localhost/busybox:latest
      command: ['sh', '-c', 'trap "echo got-hup > /dev/shm/hup" HUP; while true; do sleep 0.2; done']
    - name: sidecar
      image: localhost/busybox:latest
      # Each round orphans a short sleep: its subshell exits at once, so PID 1 of the pod adopts it.
      command: ['sh', '-c', 'trap "exit 0" TERM; while true; do (sleep 0.3 &); sleep 0.2; done']
`;

describe('shareProcessNamespace: true', () => {
  let sb: Sandbox;
  let podDir: string;
  before(async () => {
    sb = await makeSandbox();
    await nspodOk(sb, ['play', '-'], { input: sharedPod });
    podDir = podCgroupDirs(sb)[0]!;
  });
  after(() => destroySandbox(sb));

  it('puts every container in the pause process pid namespace', async () => {
    const pause = await waitFor('pause', () => cgroupPids(path.join(podDir, '_pause'))[0]);
    const app = await waitFor('app', () => cgroupPids(path.join(podDir, 'app'))[0]);
    const side = await waitFor('sidecar', () => cgroupPids(path.join(podDir, 'sidecar'))[0]);
    assert.equal(nsInode(app, 'pid'), nsInode(pause, 'pid'));
    assert.equal(nsInode(side, 'pid'), nsInode(pause, 'pid'));
    assert.notEqual(nsInode(app, 'mnt'), nsInode(side, 'mnt'), 'filesystems stay private');
  });

  it('lets the sidecar see and signal the app', async () => {
    const ps = await nspodOk(sb, ['exec', 'shared', '-c', 'sidecar', '--', 'ps', '-o', 'pid,args']);
    assert.match(ps, /\/pause/);
    assert.match(ps, /got-hup/, "the sidecar sees the app's shell");
    // The app's shell is the process whose command mentions got-hup; signal it from the sidecar.
    await nspodOk(sb, [
      'exec',
      'shared',
      '-c',
      'sidecar',
      '--',
      'sh',
      '-c',
      "kill -HUP $(ps -o pid,args | grep got-hup | grep -v grep | awk '{print $1}' | head -n1)",
    ]);
    const got = await waitFor('the app to handle SIGHUP', async () => {
      const r = await nspod(sb, ['exec', 'shared', '-c', 'app', '--', 'cat', '/dev/shm/hup']);
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.equal(got.trim(), 'got-hup');
  });

  it('reaps orphans: the pause process is their parent and leaves no zombie', async () => {
    const pause = cgroupPids(path.join(podDir, '_pause'))[0]!;
    const orphan = await waitFor('an orphan adopted by pause', () =>
      childrenOf(pause).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\x000.3\x00'),
    );
    await waitFor('the orphan to exit and be reaped', () => stateOf(orphan) === undefined, 5000);
    assert.deepEqual(
      childrenOf(pause).filter((p) => stateOf(p) === 'Z'),
      [],
    );
  });
});

const hostPod = `
apiVersion: v1
kind: Pod
metadata: { name: hosty }
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  restartPolicy: Never
  containers:
    - name: app
      image: localhost/busybox:latest
      command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2; done']
`;

describe('hostNetwork, hostPID and hostIPC', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
    await nspodOk(sb, ['play', '-'], { input: hostPod });
  });
  after(() => destroySandbox(sb));

  it("use the host's namespaces and keep a private mount namespace", async () => {
    const podDir = podCgroupDirs(sb)[0]!;
    const app = await waitFor('app', () => cgroupPids(path.join(podDir, 'app'))[0]);
    for (const t of ['net', 'pid', 'ipc', 'uts']) assert.equal(nsInode(app, t), nsInode('self', t), t);
    assert.notEqual(nsInode(app, 'mnt'), nsInode('self', 'mnt'));
  });
});

describe('exit codes and bad input', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
  });
  after(() => destroySandbox(sb));

  it('records an exit code that a later nspod process reads', async () => {
    const yaml = `
apiVersion: v1
kind: Pod
metadata: { name: quitter }
spec:
  restartPolicy: Never
  containers:
    - name: job
      image: localhost/busybox:latest
      command: ['sh', '-c', 'exit 7']
`;
    await nspodOk(sb, ['play', '-'], { input: yaml });
    // The play process is gone; conmon wrote the exit file; a new nspod process reports it.
    const job = await waitFor('the job to exit', async () => {
      const list = JSON.parse(await nspodOk(sb, ['ps', '--all', '-o', 'json'])) as Array<{
        name: string;
        state: string;
        exitCode?: number;
      }>;
      const j = list.find((c) => c.name === 'job');
      return j?.state === 'exited' ? j : undefined;
    });
    assert.equal(job.exitCode, 7);
    const exits = readdirSync(path.join(sb.runRoot, 'pods'), { recursive: true })
      .map(String)
      .filter((f) => f.includes('exits/'));
    const codes = exits
      .map((f) => readFileSync(path.join(sb.runRoot, 'pods', f), 'utf8').trim())
      .filter((c) => c !== '');
    assert.ok(codes.includes('7'), "conmon's exit file on disk says 7");
    await nspodOk(sb, ['rm', 'quitter']);
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      'a bad quantity',
      'limits: { memory: 256Mx }',
      /spec\.containers\[0\]\.resources\.limits\.memory: invalid quantity "256Mx"/,
    ],
    ['a missing image', '', /spec\.containers\[0\]\.image: required/],
  ];
  for (const [what, extra, re] of bad) {
    it(`refuses ${what} with one line naming the field, and creates nothing`, async () => {
      const yaml = `
apiVersion: v1
kind: Pod
metadata: { name: badpod }
spec:
  containers:
    - name: app
${extra ? '      image: localhost/busybox:latest\n      resources:\n        ' + extra : ''}
`;
      const r = await nspod(sb, ['play', '-'], { input: yaml });
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assertNothingMade(sb);
    });
  }

  it('refuses duplicate container names and names that are not DNS labels', async () => {
    const dup = `
apiVersion: v1
kind: Pod
metadata: { name: dup }
spec:
  containers:
    - { name: app, image: localhost/busybox:latest }
    - { name: app, image: localhost/busybox:latest }
`;
    const r1 = await nspod(sb, ['play', '-'], { input: dup });
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /spec\.containers\[1\]\.name: duplicate name "app"/);
    const r2 = await nspod(sb, ['play', '-'], { input: dup.replace('name: dup', 'name: Not_A_Name') });
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /metadata\.name: "Not_A_Name"/);
    assertNothingMade(sb);
  });

  it('rolls back a pod whose image is missing: nothing half-made', async () => {
    const yaml = `
apiVersion: v1
kind: Pod
metadata: { name: noimage }
spec:
  containers:
    - { name: app, image: localhost/busybox:latest, command: ['sleep', '60'] }
    - { name: ghost, image: localhost/does-not-exist:1 }
`;
    const r = await nspod(sb, ['play', '-'], { input: yaml });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.containers\[1\]\.image: image "localhost\/does-not-exist:1"/);
    assertNothingMade(sb);
  });
});

function assertNothingMade(sb: Sandbox): void {
  const podsDir = path.join(sb.root, 'pods');
  assert.deepEqual(existsSync(podsDir) ? readdirSync(podsDir) : [], [], 'no pod records');
  for (const m of cgroupMounts()) {
    const parent = path.join(m.dir, sb.cgroupParent);
    const pods = existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith('pod-')) : [];
    assert.deepEqual(pods, [], `no pod cgroup in ${m.dir}`);
  }
  assert.deepEqual(mountsContaining(sb.runRoot), []);
  assert.deepEqual(mountsContaining(sb.root), []);
}
