/**
 * `nspod play` hands its work to the running daemon over <run-root>/control.sock when the daemon
 * runs this build with this configuration, and does it itself otherwise. Which process made a
 * pod is read from the system: each container's parent is the conmon that process started, and
 * conmon's /proc/<pid>/environ is the environment of the process that spawned it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSandbox, destroySandbox, nspod, nspodOk, memoryHierarchy, cgroupPids } from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import { startDaemon, supervisedEnv } from './sup-helpers.js';

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
});
