/**
 * The library API as the README shows it, imported from the package entry (src/index.ts, which
 * package.json's "exports" points at once built): a pod played, inspected, exec'd into, stopped
 * and removed in-process, checked against /proc and /sys/fs/cgroup.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as nspod from '../../../src/index.js';
import {
  makeSandbox,
  destroySandbox,
  memoryHierarchy,
  nsInode,
  podCgroupDirs,
  projectDir,
  pureV2,
  waitFor,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

const yaml = `
apiVersion: v1
kind: Pod
metadata: { name: lib }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: localhost/busybox:latest
      command: ['sh', '-c', 'echo ready > /tmp/ready; exec sleep 600']
      resources: { limits: { memory: 64Mi } }
`;

describe('library API (the package entry)', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
  });
  after(async () => {
    await destroySandbox(sb);
  });

  it('package.json exports the entry these tests import', async () => {
    const pkg = JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as {
      exports: Record<string, string>;
      types: string;
    };
    assert.equal(pkg.exports['.'], './dist/index.js');
    assert.equal(pkg.types, 'dist/index.d.ts');
    assert.equal(pkg.exports['./cri'], './dist/cri/index.js');
    for (const name of [
      'openRuntime',
      'parsePodYaml',
      'inspectPod',
      'NspodError',
      'pullImage',
      'pushImage',
      'runSupervisor',
      'ensureSupervisor',
      'podView',
      'openEventLog',
    ]) {
      assert.equal(typeof (nspod as Record<string, unknown>)[name], 'function', `export ${name}`);
    }
    const cri = (await import('../../../src/cri/index.js')) as Record<string, unknown>;
    assert.equal(typeof cri['startCriServer'], 'function', 'nspod/cri exports startCriServer');
  });

  it('plays, inspects, execs, stops and removes a pod as the README shows', async () => {
    const rt = await nspod.openRuntime({
      root: sb.root,
      runRoot: sb.runRoot,
      cgroupParent: sb.cgroupParent,
      cniConfigDir: sb.net.configDir,
    });
    const { pods } = nspod.parsePodYaml(yaml);
    const { pod, timings } = await rt.playPod(pods[0]!, { replace: true });
    assert.equal(pod.name, 'lib');
    for (const k of ['images', 'reserve', 'sandbox', 'containers', 'network', 'start', 'pause', 'cni', 'container:app'])
      assert.equal(typeof timings[k], 'number', `timings.${k}`);

    const view = await nspod.inspectPod(rt, 'lib');
    assert.ok(view.namespaces.some((n) => n.type === 'net'));
    const pausePid = pod.sandboxPid!;
    const appPid = pod.containers.find((c) => c.name === 'app')!.pid!;
    // What the system says, not what nspod reports: the app joined the pause's net namespace.
    assert.equal(nsInode(appPid, 'net'), nsInode(pausePid, 'net'));
    assert.notEqual(nsInode(appPid, 'mnt'), nsInode(pausePid, 'mnt'));
    // …and its memory cgroup (read from /proc/<pid>/cgroup) carries the limit.
    const lines = readFileSync(`/proc/${appPid}/cgroup`, 'utf8').trim().split('\n');
    const rel = pureV2()
      ? lines.find((l) => l.startsWith('0::'))!.slice(3)
      : lines.find((l) => l.split(':')[1]!.split(',').includes('memory'))!.split(':')[2]!;
    const limit = readFileSync(
      path.join(memoryHierarchy(), rel, pureV2() ? 'memory.max' : 'memory.limit_in_bytes'),
      'utf8',
    );
    assert.equal(limit.trim(), String(64 * 1024 * 1024));
    assert.ok(rel.includes(sb.cgroupParent), `${rel} is under the sandbox's cgroup parent`);

    const r = await waitFor('the app to write /tmp/ready', async () => {
      const out = await rt.execSync('lib/app', { args: ['cat', '/tmp/ready'], timeoutMs: 10_000 });
      return out.exitCode === 0 && out;
    });
    assert.equal(r.stdout.toString().trim(), 'ready');
    assert.equal(await rt.exec('lib', { container: 'app', args: ['sh', '-c', 'exit 7'] }), 7);

    const stopped = await rt.stopPod('lib', { timeoutSeconds: 1 });
    assert.ok(stopped.containers.every((c) => c.state === 'exited'));
    await rt.removePod('lib', { force: true });
    await assert.rejects(rt.stopPod('lib'), (e: unknown) => nspod.isNspodError(e, 'NOT_FOUND'));
    assert.deepEqual(podCgroupDirs(sb), []);
  });
});
