/**
 * `nspod play` hands its work to the running daemon over <run-root>/control.sock when the daemon
 * runs this build with this configuration, and does it itself otherwise. Which process made a
 * pod is read from the system: each container's parent is the conmon that process started, and
 * conmon's /proc/<pid>/environ is the environment of the process that spawned it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync,
  cpSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  existsSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  memoryHierarchy,
  cgroupPids,
  cliPath,
  projectDir,
  waitFor,
  alive,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import { readPid, startDaemon, supervisedEnv } from './sup-helpers.js';

const podYaml = (name: string, memory = '32Mi'): string => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, '100000']
    resources: {limits: {memory: ${memory}}}
`;

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every process in the cgroups of pod `name`'s containers (the memory hierarchy's view). */
function podProcesses(sb: Sandbox, podId: string): number[] {
  const dir = path.join(memoryHierarchy(), sb.cgroupParent, `pod-${podId}`);
  const pids: number[] = [];
  for (const e of readdirSync(dir)) {
    const d = path.join(dir, e);
    if (statSync(d).isDirectory()) pids.push(...cgroupPids(d));
  }
  return pids;
}

/** The environments of the conmons that are the parents of the pod's processes. */
function conmonEnvs(sb: Sandbox, podId: string): string[][] {
  return podProcesses(sb, podId).map((pid) => {
    const parent = ppid(pid);
    assert.equal(readFileSync(`/proc/${parent}/comm`, 'utf8').trim(), 'conmon', `parent of ${pid}`);
    return readFileSync(`/proc/${parent}/environ`, 'utf8').split('\0');
  });
}

async function podId(sb: Sandbox, name: string): Promise<string> {
  const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as Array<{ id: string; name: string }>;
  return pods.find((p) => p.name === name)!.id;
}

describe('nspod play through the daemon (control socket)', () => {
  let sb: Sandbox;
  before(async () => {
    sb = supervisedEnv(await makeSandbox());
    await startDaemon(sb);
  });
  after(async () => {
    await destroySandbox(sb);
  });

  it('the daemon makes the pod when the client matches it; the client makes it when not', async () => {
    assert.ok(existsSync(path.join(sb.runRoot, 'control.sock')), 'the daemon listens on control.sock');
    const file = path.join(sb.root, 'pods.yaml');
    writeFileSync(file, podYaml('fwd'));
    const out = await nspodOk({ ...sb, env: { ...sb.env, CLIENT_MARK: 'one' } }, ['play', file]);
    assert.match(out, /^pod\/fwd running/m);
    assert.match(out, /container app running/);
    const envs = conmonEnvs(sb, await podId(sb, 'fwd'));
    assert.ok(envs.length >= 2, 'pause and app have conmons');
    for (const env of envs) assert.ok(!env.includes('CLIENT_MARK=one'), 'made by the daemon, not the client');

    // Another NSPOD_* setting than the daemon's: the client plays the pod itself.
    writeFileSync(file, podYaml('local'));
    const local = { ...sb, env: { ...sb.env, CLIENT_MARK: 'two', NSPOD_CONMON_LOG: 'warn' } };
    await nspodOk(local, ['play', file]);
    for (const env of conmonEnvs(sb, await podId(sb, 'local'))) assert.ok(env.includes('CLIENT_MARK=two'));

    // Both are supervised by the daemon either way.
    for (const name of ['fwd', 'local']) {
      const d = JSON.parse(await nspodOk(sb, ['describe', 'pod', name, '-o', 'json'])) as { supervised: boolean };
      assert.equal(d.supervised, true, name);
    }
    await nspodOk(sb, ['rm', '-f', 'fwd']);
    await nspodOk(sb, ['rm', '-f', 'local']);
  });

  it('a play that fails in the daemon fails the command the same way and leaves nothing', async () => {
    const file = path.join(sb.root, 'bad.yaml');
    writeFileSync(file, podYaml('bad', '256Mx'));
    const r = await nspod(sb, ['play', file]);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^Error: .*spec\.containers\[0\]\.resources\.limits\.memory/);
    assert.equal(r.stdout, '');
    const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as unknown[];
    assert.deepEqual(pods, []);

    // A name clash is found by the daemon: ALREADY_EXISTS is exit 4, as when played here.
    writeFileSync(file, podYaml('twice'));
    await nspodOk(sb, ['play', file]);
    const again = await nspod(sb, ['play', file]);
    assert.equal(again.code, 4, again.stderr);
    assert.match(again.stderr, /^Error: .*twice.*already exists/);
    await nspodOk(sb, ['rm', '-f', 'twice']);
  });

  it('a daemon of another build (an upgrade since it started): the client plays the pod itself and says so', async () => {
    const other = supervisedEnv(await makeSandbox());
    // The same code from another place is another build: the identity holds the bundle's path.
    const bin = path.join(projectDir, 'dist-test', `bin-other-${process.pid}`);
    cpSync(path.dirname(cliPath), bin, { recursive: true });
    let daemon: number | undefined;
    try {
      const fd = openSync(path.join(other.runRoot, 'other-serve.log'), 'a');
      const child = spawn(process.execPath, [path.join(bin, 'nspod.js'), 'serve', '--no-cri'], {
        env: other.env,
        cwd: '/',
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      child.unref();
      closeSync(fd);
      daemon = child.pid!;
      await waitFor(
        "the other build's daemon to be ready",
        () => {
          if (!alive(daemon!)) throw new Error(readFileSync(path.join(other.runRoot, 'other-serve.log'), 'utf8'));
          return readPid(path.join(other.runRoot, 'supervisor.ready')) === daemon;
        },
        60_000,
      );
      const file = path.join(other.root, 'pod.yaml');
      writeFileSync(file, podYaml('upgraded'));
      const r = await nspod({ ...other, env: { ...other.env, CLIENT_MARK: 'new' } }, ['play', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^note: the nspod daemon was started by another build of nspod; restart it/m);
      for (const env of conmonEnvs(other, await podId(other, 'upgraded'))) assert.ok(env.includes('CLIENT_MARK=new'));
      await nspodOk(other, ['rm', '-f', 'upgraded']);
    } finally {
      if (daemon && alive(daemon)) {
        process.kill(daemon, 'SIGTERM');
        await waitFor('the other daemon to stop', () => !alive(daemon!), 20_000).catch(() => undefined);
      }
      rmSync(bin, { recursive: true, force: true });
      await destroySandbox(other);
    }
  });
});
