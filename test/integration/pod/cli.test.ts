/**
 * CLI behaviour a user relies on, checked against the system: concurrent commands under the
 * lock, the inspect table against /proc, logs, graceful and forced stop, runtime override.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  podCgroupDirs,
  cgroupPids,
  waitFor,
  cliPath,
  mountsContaining,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

const pod = (name: string, command: string, extra = '') => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
${extra}  containers:
    - name: main
      image: localhost/busybox:latest
      command: ['sh', '-c', '${command}']
`;

describe('nspod CLI against the system', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
  });
  after(() => destroySandbox(sb));

  it('serialises concurrent plays: distinct pods all start, a duplicate name is refused once', async () => {
    const loop = 'trap \\"exit 0\\" TERM; while true; do sleep 0.2; done';
    const results = await Promise.all([
      nspod(sb, ['play', '-'], { input: pod('c1', loop) }),
      nspod(sb, ['play', '-'], { input: pod('c2', loop) }),
      nspod(sb, ['play', '-'], { input: pod('c1', loop) }),
      nspod(sb, ['play', '-'], { input: pod('c1', loop) }),
      nspod(sb, ['play', '-'], { input: pod('c1', loop) }),
    ]);
    const ok = results.filter((r) => r.code === 0);
    const failed = results.filter((r) => r.code !== 0);
    assert.equal(ok.length, 2, results.map((r) => r.stderr).join('\n'));
    assert.equal(failed.length, 3);
    for (const f of failed) assert.match(f.stderr, /pod "c1" already exists/);
    assert.equal(podCgroupDirs(sb).length, 2, 'exactly two pod cgroups exist');
    assert.equal(readdirSync(path.join(sb.root, 'pods')).filter((f) => f.endsWith('.json')).length, 2);
    await nspodOk(sb, ['rm', '-f', 'c1', 'c2']);
    assert.equal(podCgroupDirs(sb).length, 0);
  });

  it('a name left claimed by a start that was cut short is free again', async () => {
    // What nspod leaves when killed between claiming a name and recording its pod.
    const claim = path.join(sb.root, 'names', 'default', 'stale');
    mkdirSync(path.dirname(claim), { recursive: true });
    writeFileSync(claim, 'f'.repeat(64));
    await nspodOk(sb, ['play', '-'], { input: pod('stale', 'sleep 1000') });
    assert.notEqual(readFileSync(claim, 'utf8'), 'f'.repeat(64), "the claim is the new pod's");
    await nspodOk(sb, ['rm', '-f', 'stale']);
    assert.equal(existsSync(claim), false, 'rm releases the name');
  });

  it('nspod killed while it creates containers: rm -f afterwards leaves no process, mount, cgroup or runtime state', async () => {
    const runDirs = path.join(sb.runRoot, 'pods');
    // Kill it as soon as a container's conmon has started (its pid file is written before the
    // runtime's create runs): the containers are being made, their records not yet saved.
    const child = spawn(process.execPath, [cliPath, 'play', '-'], { env: sb.env, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise((r) => child.on('exit', r));
    child.stdin.end(`${pod('cut', 'sleep 1000')}    - name: two
      image: localhost/busybox:latest
      command: [sleep, '1000']
`);
    await waitFor(
      'a container conmon pid file',
      () =>
        existsSync(runDirs) &&
        readdirSync(runDirs).some((d) =>
          readdirSync(path.join(runDirs, d)).some((f) => f.endsWith('.conmon.pid') && !f.includes('-pause')),
        ),
      30_000,
    );
    child.kill('SIGKILL');
    await exited;
    await nspodOk(sb, ['rm', '-f', 'cut']);
    assert.deepEqual(podCgroupDirs(sb), [], 'no pod cgroup left');
    assert.deepEqual(mountsContaining(sb.root), [], 'no mount left under the root');
    assert.deepEqual(mountsContaining(sb.runRoot), [], 'no mount left under the run root');
    const rtRoot = path.join(sb.runRoot, 'runtime');
    assert.deepEqual(existsSync(rtRoot) ? readdirSync(rtRoot) : [], [], 'no runtime state left');
    const ctrs = path.join(sb.root, 'containers');
    assert.deepEqual(existsSync(ctrs) ? readdirSync(ctrs) : [], [], 'no container dir or record left');
    // and the name is free again
    await nspodOk(sb, ['play', '-'], { input: pod('cut', 'sleep 1000') });
    await nspodOk(sb, ['rm', '-f', 'cut']);
  });

  it('shows in inspect the namespace inodes that /proc shows', async () => {
    await nspodOk(sb, ['play', '-'], { input: pod('insp', 'trap \\"exit 0\\" TERM; while true; do sleep 0.2; done') });
    try {
      const dir = podCgroupDirs(sb)[0]!;
      const main = await waitFor('main', () => cgroupPids(path.join(dir, 'main'))[0]);
      const view = JSON.parse(await nspodOk(sb, ['inspect', 'pod', 'insp', '-o', 'json'])) as {
        namespaces: Array<{ type: string; inode: number; holders: string[] }>;
      };
      for (const t of ['net', 'ipc', 'uts', 'mnt', 'pid']) {
        const ino = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${main}/ns/${t}`))?.[1]);
        const row = view.namespaces.find((n) => n.type === t && n.holders.includes('main'));
        assert.equal(row?.inode, ino, `${t} inode`);
        if (['net', 'ipc', 'uts'].includes(t)) assert.ok(row?.holders.includes('pause'), `${t} shared with pause`);
      }
      const table = await nspodOk(sb, ['inspect', 'pod', 'insp']);
      assert.match(table, /Namespaces/);
      assert.match(table, new RegExp(`net\\s+\\d+\\s+pause, main`));
    } finally {
      await nspodOk(sb, ['rm', '-f', 'insp']);
    }
  });

  it('prints logs, follows them to the exit, and honours --tail', async () => {
    await nspodOk(sb, ['play', '-'], {
      input: pod('talk', 'for i in 1 2 3; do echo line-$i; sleep 0.1; done; echo oops >&2', '  restartPolicy: Never\n'),
    });
    try {
      const followed = await nspod(sb, ['logs', '-f', 'talk']);
      assert.equal(followed.code, 0);
      assert.equal(followed.stdout, 'line-1\nline-2\nline-3\n');
      assert.equal(followed.stderr, 'oops\n');
      assert.equal((await nspodOk(sb, ['logs', '--tail', '1', 'talk'])).trim(), '');
      assert.equal((await nspodOk(sb, ['logs', '--tail', '2', 'talk'])).trim(), 'line-3');
    } finally {
      await nspodOk(sb, ['rm', '-f', 'talk']);
    }
  });

  it('stop sends SIGTERM, then SIGKILL to a container that ignores it', async () => {
    await nspodOk(sb, ['play', '-'], { input: pod('stubborn', 'trap \\"\\" TERM; while true; do sleep 0.2; done') });
    try {
      const dir = podCgroupDirs(sb)[0]!;
      const main = await waitFor('main', () => cgroupPids(path.join(dir, 'main'))[0]);
      await nspodOk(sb, ['stop', '--time', '1', 'stubborn']);
      assert.throws(() => readlinkSync(`/proc/${main}/ns/pid`), 'the process is gone');
      const list = JSON.parse(await nspodOk(sb, ['ps', '--all', '-o', 'json'])) as Array<{ exitCode?: number }>;
      assert.equal(list[0]?.exitCode, 137, 'killed by SIGKILL');
      const r = await nspod(sb, ['rm', 'stubborn']);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await nspod(sb, ['rm', '-f', 'stubborn']);
    }
  });

  it('refuses rm of a running pod without -f', async () => {
    await nspodOk(sb, ['play', '-'], { input: pod('busy', 'trap \\"exit 0\\" TERM; while true; do sleep 0.2; done') });
    try {
      const r = await nspod(sb, ['rm', 'busy']);
      assert.equal(r.code, 5);
      assert.match(r.stderr, /has running containers \(main\): stop it first or use rm -f/);
      assert.equal(podCgroupDirs(sb).length, 1, 'still there');
    } finally {
      await nspodOk(sb, ['rm', '-f', 'busy']);
    }
  });

  it('reports clearly when a forced runtime cannot run here, and makes nothing', async () => {
    const r = await nspod(sb, ['--runtime', '/nonexistent/runc', 'play', '-'], { input: pod('rt', 'true') });
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /nonexistent\/runc/);
    assert.equal(podCgroupDirs(sb).length, 0);
  });

  it('a usage error is one line naming the argument, exit status 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /^Error: unknown option '--bogus' \(see nspod --help\)$/],
      [['play'], /^Error: missing required argument 'file' \(see nspod play --help\)$/],
      [['pods', '--zzz'], /^Error: unknown option '--zzz' \(see nspod pods --help\)$/],
      [['nosuch'], /^Error: unknown command 'nosuch' \(see nspod --help\)$/],
    ];
    for (const [args, want] of cases) {
      const r = await nspod(sb, args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr.trimEnd(), want);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
  });
});
