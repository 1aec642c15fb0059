/**
 * A full CRI flow against a real `nspod cri serve`: version/status, sandbox, image, two
 * containers sharing the sandbox's namespaces (from /proc), ExecSync (output, exit code, a timeout
 * that kills what it started), the CRI log file, stats, the CLI's view, stop, remove, and nothing
 * left behind (processes, mounts, cgroups, pinned namespaces).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { alive, mountsContaining, nsInode, nspodOk, podCgroupDirs, waitFor } from '../helpers.js';
import { codeOf, grpc, sandboxConfig, startCri } from './client.js';
import type { CriFixture, Msg } from './client.js';

const LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) (F|P) (.*)$/;

/** pids on the host running `sleep <arg>` in the pid namespace `pidNs`. */
function sleepers(arg: string, pidNs: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('sleep') && cmd[1] === arg && nsInode(Number(p), 'pid') === pidNs) out.push(Number(p));
    } catch {}
  }
  return out;
}

describe('CRI: a pod sandbox with two containers, end to end', () => {
  let f: CriFixture;
  before(async () => {
    f = await startCri();
  });
  after(async () => f?.stop());

  it('answers Version and Status truthfully', { timeout: 90_000 }, async () => {
    const v = await f.client.rs('Version', { version: 'v1' });
    assert.equal(v.runtime_name, 'nspod');
    assert.equal(v.runtime_api_version, 'v1');
    const st = await f.client.rs('Status', { verbose: true });
    const cond = (t: string): Msg | undefined => (st.status.conditions as Msg[]).find((c) => c.type === t);
    assert.equal(cond('RuntimeReady')?.status, true);
    assert.ok(cond('NetworkReady'), 'NetworkReady is reported');
    assert.equal(
      cond('NetworkReady')?.status,
      true,
      `the sandbox's CNI network works: ${cond('NetworkReady')?.message}`,
    );
    assert.ok(JSON.parse(st.info.config as string).runRoot === f.sb.runRoot);
    const sock = statSync(f.socket);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o660, 'the socket is rw for root and its group only');
    assert.equal(sock.uid, 0);
  });

  it('runs, execs, logs, measures, stops and removes a pod, leaving nothing behind', { timeout: 90_000 }, async () => {
    const c = f.client;
    const logDir = path.join(f.sb.root, 'kubelet-logs', 'default_web_uid');
    const pulled = await c.is('PullImage', { image: { image: 'busybox' } });
    assert.match(pulled.image_ref, /^sha256:[0-9a-f]{64}$/);
    const sbc = sandboxConfig('web', {
      log_directory: logDir,
      labels: { app: 'web', tier: 'front' },
      annotations: { 'example.com/note': 'kept as given' },
      dns_config: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
    });
    const { pod_sandbox_id: podId } = await c.rs('RunPodSandbox', { config: sbc });
    assert.match(podId, /^[0-9a-f]{64}$/);
    const sst = await c.rs('PodSandboxStatus', { pod_sandbox_id: podId, verbose: true });
    assert.equal(sst.status.state, 'SANDBOX_READY');
    assert.deepEqual(sst.status.labels, sbc.labels);
    assert.deepEqual(sst.status.annotations, sbc.annotations);
    assert.deepEqual(sst.status.metadata, { ...sbc.metadata });
    assert.ok(BigInt(sst.status.created_at) > 0n);
    const pausePid = JSON.parse(sst.info.info as string).pid as number;
    assert.ok(alive(pausePid), 'the pause process runs');
    const podIp = sst.status.network.ip as string;
    assert.match(podIp, /^\d+\.\d+\.\d+\.\d+$/, 'the pod has an IP from its CNI network');

    const ids: Record<string, string> = {};
    for (const [name, script] of [
      ['app', 'echo hello-out; echo hello-err >&2; exec sleep 1000'],
      ['side', 'exec sleep 1001'],
    ] as const) {
      const r = await c.rs('CreateContainer', {
        pod_sandbox_id: podId,
        sandbox_config: sbc,
        config: {
          metadata: { name, attempt: 0 },
          image: { image: 'localhost/busybox:latest' },
          command: ['sh', '-c', script],
          envs: [{ key: 'GREETING', value: 'hi' }],
          labels: { role: name },
          annotations: { 'example.com/container': name },
          log_path: `${name}/0.log`,
        },
      });
      ids[name] = r.container_id;
      const created = await c.rs('ContainerStatus', { container_id: r.container_id });
      assert.equal(created.status.state, 'CONTAINER_CREATED');
      await c.rs('StartContainer', { container_id: r.container_id });
    }
    const pids: Record<string, number> = {};
    for (const name of ['app', 'side']) {
      const st = await c.rs('ContainerStatus', { container_id: ids[name], verbose: true });
      assert.equal(st.status.state, 'CONTAINER_RUNNING');
      assert.deepEqual(st.status.labels, { role: name });
      assert.deepEqual(st.status.annotations, { 'example.com/container': name });
      assert.equal(st.status.log_path, path.join(logDir, name, '0.log'));
      assert.equal(st.status.image_id, pulled.image_ref);
      assert.ok(BigInt(st.status.started_at) >= BigInt(st.status.created_at));
      pids[name] = JSON.parse(st.info.info as string).pid as number;
      // the sandbox's namespaces, as the kernel shows them
      for (const ns of ['net', 'ipc', 'uts', 'pid'])
        assert.equal(nsInode(pids[name]!, ns), nsInode(pausePid, ns), `${name} shares the sandbox's ${ns} namespace`);
      assert.notEqual(nsInode(pids[name]!, 'mnt'), nsInode(pausePid, 'mnt'));
    }

    // ExecSync: output, exit code, the pod's DNS config, the container's env
    const ex = await c.rs('ExecSync', {
      container_id: ids.app,
      cmd: ['sh', '-c', 'echo "$GREETING"; cat /etc/resolv.conf; echo oops >&2; exit 3'],
      timeout: 20,
    });
    assert.equal(ex.exit_code, 3);
    assert.match(ex.stdout.toString(), /^hi\n/);
    assert.match(ex.stdout.toString(), /nameserver 10\.96\.0\.10/);
    assert.match(ex.stdout.toString(), /search svc\.cluster\.local/);
    const addr = await c.rs('ExecSync', { container_id: ids.side, cmd: ['ip', '-4', 'addr'], timeout: 20 });
    assert.ok(addr.stdout.toString().includes(`inet ${podIp}/`), 'the reported IP is the one inside the pod');
    assert.equal(ex.stderr.toString(), 'oops\n');

    // a timeout kills the command and what it started
    const pidNs = nsInode(pids.app!, 'pid');
    const timedOut = await codeOf(
      c.rs('ExecSync', { container_id: ids.app, cmd: ['sh', '-c', 'sleep 3001 & sleep 3002'], timeout: 2 }),
    );
    assert.equal(timedOut.code, grpc.status.DEADLINE_EXCEEDED, timedOut.details);
    await waitFor(
      'the timed-out exec to be gone',
      () => sleepers('3001', pidNs).length + sleepers('3002', pidNs).length === 0,
      30_000,
    );

    // the CRI log format at log_directory/log_path
    const logFile = path.join(logDir, 'app', '0.log');
    const lines = await waitFor(
      'both log lines',
      async () => {
        const t = await fs.readFile(logFile, 'utf8').catch(() => '');
        const ls = t.split('\n').filter(Boolean);
        return ls.length >= 2 ? ls : undefined;
      },
      30_000,
    );
    const parsed = lines.map((l) => LOG_LINE.exec(l));
    assert.ok(parsed.every(Boolean), `every line is in the CRI format: ${lines.join(' | ')}`);
    assert.ok(!Number.isNaN(Date.parse(parsed[0]![1]!)));
    assert.deepEqual(parsed.map((m) => `${m![2]} ${m![4]}`).sort(), ['stderr hello-err', 'stdout hello-out']);

    // stats read from cgroups
    const cs = await c.rs('ContainerStats', { container_id: ids.app });
    assert.ok(BigInt(cs.stats.cpu.usage_core_nano_seconds.value) > 0n, 'cpu time > 0');
    assert.ok(BigInt(cs.stats.memory.working_set_bytes.value) > 0n, 'memory > 0');
    const ps = await c.rs('PodSandboxStats', { pod_sandbox_id: podId });
    assert.ok(BigInt(ps.stats.linux.process.process_count.value) >= 3n);
    assert.equal(ps.stats.linux.containers.length, 2);
    const lcs = await c.rs('ListContainerStats', {
      filter: { pod_sandbox_id: podId, label_selector: { role: 'side' } },
    });
    assert.deepEqual(
      lcs.stats.map((s: Msg) => s.attributes.id),
      [ids.side],
    );

    // filters
    const byLabel = await c.rs('ListContainers', { filter: { label_selector: { role: 'app' } } });
    assert.deepEqual(
      byLabel.containers.map((x: Msg) => x.id),
      [ids.app],
    );
    const byPod = await c.rs('ListContainers', { filter: { pod_sandbox_id: podId.slice(0, 12) } });
    assert.equal(byPod.containers.length, 2);
    const running = await c.rs('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } });
    assert.equal(running.containers.length, 2);
    const pods = await c.rs('ListPodSandbox', {
      filter: { label_selector: { app: 'web' }, state: { state: 'SANDBOX_READY' } },
    });
    assert.deepEqual(
      pods.items.map((p: Msg) => p.id),
      [podId],
    );
    assert.equal((await c.rs('ListPodSandbox', { filter: { label_selector: { app: 'nope' } } })).items.length, 0);

    // the CLI sees the CRI pod and its containers
    const cli = JSON.parse(await nspodOk(f.sb, ['pods', '-o', 'json'])) as Array<{
      id: string;
      name: string;
      containers: Array<{ name: string }>;
    }>;
    const mine = cli.find((p) => p.id === podId);
    assert.ok(mine, 'nspod pods lists the CRI pod');
    assert.deepEqual(mine.containers.map((x) => x.name).sort(), ['app', 'side']);
    const view = JSON.parse(await nspodOk(f.sb, ['inspect', 'pod', podId, '-o', 'json'])) as {
      namespaces: Array<{ type: string; inode: number; holders: string[] }>;
    };
    const net = view.namespaces.find((x) => x.type === 'net' && x.holders.includes('app'));
    assert.equal(net?.inode, nsInode(pids.app!, 'net'), 'nspod inspect shows the CRI container in its netns');

    // stop: every process ends; twice is fine
    await c.rs('StopPodSandbox', { pod_sandbox_id: podId });
    await c.rs('StopPodSandbox', { pod_sandbox_id: podId });
    for (const p of [pausePid, pids.app!, pids.side!]) await waitFor(`pid ${p} to end`, () => !alive(p), 30_000);
    const stopped = await c.rs('ContainerStatus', { container_id: ids.app });
    assert.equal(stopped.status.state, 'CONTAINER_EXITED');
    assert.ok(BigInt(stopped.status.finished_at) > 0n);
    assert.equal((await c.rs('PodSandboxStatus', { pod_sandbox_id: podId })).status.state, 'SANDBOX_NOTREADY');
    const inStopped = await codeOf(
      c.rs('CreateContainer', {
        pod_sandbox_id: podId,
        config: { metadata: { name: 'late' }, image: { image: 'busybox' }, command: ['true'] },
      }),
    );
    assert.equal(inStopped.code, grpc.status.FAILED_PRECONDITION);
    assert.match(inStopped.details, /is stopped/);

    // remove: containers go with the sandbox; nothing is left
    const pinned = path.join(f.sb.runRoot, 'pods', podId);
    await c.rs('RemovePodSandbox', { pod_sandbox_id: podId });
    await c.rs('RemovePodSandbox', { pod_sandbox_id: podId });
    assert.equal((await c.rs('ListContainers', {})).containers.length, 0);
    assert.equal((await c.rs('ListPodSandbox', {})).items.length, 0);
    assert.equal((await codeOf(c.rs('ContainerStatus', { container_id: ids.app }))).code, grpc.status.NOT_FOUND);
    assert.deepEqual(mountsContaining(f.sb.runRoot), [], 'no mount left under the run root');
    assert.deepEqual(mountsContaining(f.sb.root), [], 'no mount left under the root');
    assert.deepEqual(podCgroupDirs(f.sb), [], 'no pod cgroup left');
    assert.ok(!existsSync(pinned), 'the pinned namespaces are gone');
  });

  it('lists a pod made with nspod play, and the CLI sees its removal through CRI', { timeout: 90_000 }, async () => {
    const yaml = `apiVersion: v1
kind: Pod
metadata: { name: from-yaml, labels: { made: by-play } }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: localhost/busybox:latest
      command: ['sleep', '1002']
`;
    await nspodOk(f.sb, ['play', '-'], { input: yaml });
    const items = (await f.client.rs('ListPodSandbox', { filter: { label_selector: { made: 'by-play' } } }))
      .items as Msg[];
    assert.equal(items.length, 1);
    assert.equal(items[0]!.metadata.name, 'from-yaml');
    assert.equal(items[0]!.state, 'SANDBOX_READY');
    const ctrs = (await f.client.rs('ListContainers', { filter: { pod_sandbox_id: items[0]!.id } }))
      .containers as Msg[];
    assert.deepEqual(
      ctrs.map((x) => [x.metadata.name, x.state]),
      [['main', 'CONTAINER_RUNNING']],
    );
    await f.client.rs('RemovePodSandbox', { pod_sandbox_id: items[0]!.id });
    const cli = JSON.parse(await nspodOk(f.sb, ['pods', '-o', 'json'])) as unknown[];
    assert.equal(cli.length, 0);
  });
});
