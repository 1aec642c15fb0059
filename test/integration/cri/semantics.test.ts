/**
 * What kubelet relies on, checked from /proc and /sys/fs/cgroup: namespace modes POD / CONTAINER /
 * NODE / TARGET, the linux security context, resources and their update, mounts with
 * propagation, devices, sysctls, exit reasons (Completed, Error, OOMKilled), attempts, images by
 * name/id/digest, and the errors (NotFound, InvalidArgument, idempotent Stop/Remove).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cgroupMounts, memoryHierarchy, nsInode, pureV2, waitFor } from '../helpers.js';
import { codeOf, grpc, sandboxConfig, startCri } from './client.js';
import type { CriFixture, Msg } from './client.js';

const IMAGE = { image: 'localhost/busybox:latest' };

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return (line ?? '').slice(field.length + 1).trim();
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

describe('CRI semantics kubelet relies on', () => {
  let f: CriFixture;
  let n = 0;
  before(async () => {
    f = await startCri();
    await f.client.is('PullImage', { image: IMAGE });
  });
  after(async () => f?.stop());

  async function pod(extra: Msg = {}): Promise<{ id: string; config: Msg; pausePid: number }> {
    const config = sandboxConfig(`p${++n}`, extra);
    const { pod_sandbox_id: id } = await f.client.rs('RunPodSandbox', { config });
    const st = await f.client.rs('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    return { id, config, pausePid: JSON.parse(st.info.info as string).pid as number };
  }

  async function run(p: { id: string; config: Msg }, config: Msg): Promise<{ id: string; pid: number }> {
    const { container_id: id } = await f.client.rs('CreateContainer', {
      pod_sandbox_id: p.id,
      sandbox_config: p.config,
      config: { image: IMAGE, command: ['sleep', '1000'], ...config },
    });
    await f.client.rs('StartContainer', { container_id: id });
    const st = await f.client.rs('ContainerStatus', { container_id: id, verbose: true });
    return { id, pid: JSON.parse(st.info.info as string).pid as number };
  }

  async function exec(id: string, script: string): Promise<{ out: string; code: number }> {
    const r = await f.client.rs('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: 30 });
    return { out: r.stdout.toString() + r.stderr.toString(), code: r.exit_code as number };
  }

  async function remove(p: { id: string }): Promise<void> {
    await f.client.rs('StopPodSandbox', { pod_sandbox_id: p.id });
    await f.client.rs('RemovePodSandbox', { pod_sandbox_id: p.id });
  }

  it(
    'puts containers in the pid namespace their mode asks for: CONTAINER, POD, TARGET, NODE',
    { timeout: 90_000 },
    async () => {
      const p = await pod({ linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } } });
      try {
        const own = await run(p, {
          metadata: { name: 'own' },
          linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } },
        });
        const shared = await run(p, {
          metadata: { name: 'shared' },
          linux: { security_context: { namespace_options: { pid: 'POD' } } },
        });
        const target = await run(p, {
          metadata: { name: 'debug' },
          linux: { security_context: { namespace_options: { pid: 'TARGET', target_id: own.id } } },
        });
        const node = await run(p, {
          metadata: { name: 'node' },
          linux: { security_context: { namespace_options: { pid: 'NODE' } } },
        });
        const pidNs = (pid: number | 'self'): number => nsInode(pid, 'pid');
        assert.notEqual(pidNs(own.pid), pidNs(p.pausePid), 'CONTAINER: its own');
        assert.notEqual(pidNs(own.pid), pidNs('self'));
        assert.equal(pidNs(shared.pid), pidNs(p.pausePid), 'POD: the sandbox’s');
        assert.equal(pidNs(target.pid), pidNs(own.pid), 'TARGET: the target container’s');
        assert.equal(pidNs(node.pid), pidNs('self'), 'NODE: the host’s');
        // all four share the pod's network and ipc namespaces
        for (const c of [own, shared, target, node]) {
          assert.equal(nsInode(c.pid, 'net'), nsInode(p.pausePid, 'net'));
          assert.equal(nsInode(c.pid, 'ipc'), nsInode(p.pausePid, 'ipc'));
        }
        const missing = await codeOf(
          f.client.rs('CreateContainer', {
            pod_sandbox_id: p.id,
            config: {
              metadata: { name: 'bad' },
              image: IMAGE,
              linux: { security_context: { namespace_options: { pid: 'TARGET' } } },
            },
          }),
        );
        assert.equal(missing.code, grpc.status.INVALID_ARGUMENT);
        assert.match(missing.details, /target_id/);
      } finally {
        await remove(p);
      }
    },
  );

  it('publishes port_mappings on the host (hostPort → the pod)', { timeout: 90_000 }, async () => {
    const hostPort = 20000 + Math.floor(Math.random() * 9000);
    const p = await pod({ port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: hostPort }] });
    try {
      await run(p, {
        metadata: { name: 'httpd' },
        command: ['sh', '-c', 'mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 8080 -h /www'],
      });
      const body = await waitFor(
        `http://127.0.0.1:${hostPort}/`,
        () =>
          new Promise<string | undefined>((resolve) => {
            http
              .get({ host: '127.0.0.1', port: hostPort, path: '/', timeout: 3000 }, (res) => {
                let b = '';
                res.on('data', (d: Buffer) => (b += d.toString()));
                res.on('end', () => resolve(b));
              })
              .on('error', () => resolve(undefined));
          }),
        30_000,
      );
      assert.equal(body.trim(), 'published');
    } finally {
      await remove(p);
    }
  });

  it('uses the host network and ipc namespaces for NODE mode', { timeout: 90_000 }, async () => {
    const p = await pod({ linux: { security_context: { namespace_options: { network: 'NODE', ipc: 'NODE' } } } });
    try {
      const c = await run(p, { metadata: { name: 'hostnet' } });
      assert.equal(nsInode(c.pid, 'net'), nsInode('self', 'net'));
      assert.equal(nsInode(c.pid, 'ipc'), nsInode('self', 'ipc'));
      assert.equal(
        (await f.client.rs('PodSandboxStatus', { pod_sandbox_id: p.id })).status.linux.namespaces.options.network,
        'NODE',
      );
    } finally {
      await remove(p);
    }
  });

  it(
    'applies the linux security context, sysctls, devices and mounts with propagation',
    { timeout: 90_000 },
    async () => {
      const hostDir = path.join(f.sb.root, `shared-${n}`);
      await fs.mkdir(hostDir, { recursive: true });
      await fs.writeFile(path.join(hostDir, 'hello.txt'), 'from the host\n');
      // make the source a shared mount, so rslave is observable
      sh('mount', ['--bind', hostDir, hostDir]);
      sh('mount', ['--make-shared', hostDir]);
      const p = await pod({ linux: { sysctls: { 'net.ipv4.ip_local_port_range': '20000 30000' } } });
      try {
        const c = await run(p, {
          metadata: { name: 'secure' },
          linux: {
            security_context: {
              run_as_user: { value: 1234 },
              run_as_group: { value: 2345 },
              supplemental_groups: [3000],
              readonly_rootfs: true,
              no_new_privs: true,
              capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_BIND_SERVICE'] },
              seccomp: { profile_type: 'RuntimeDefault' },
              masked_paths: ['/proc/kcore', '/proc/cpuinfo'],
            },
          },
          mounts: [
            {
              container_path: '/data',
              host_path: hostDir,
              readonly: true,
              propagation: 'PROPAGATION_HOST_TO_CONTAINER',
            },
          ],
          devices: [{ container_path: '/dev/myzero', host_path: '/dev/zero', permissions: 'r' }],
        });
        assert.equal(statusField(c.pid, 'Uid').split(/\s+/)[0], '1234');
        assert.equal(statusField(c.pid, 'Gid').split(/\s+/)[0], '2345');
        assert.match(statusField(c.pid, 'Groups'), /\b3000\b/);
        assert.equal(statusField(c.pid, 'NoNewPrivs'), '1');
        assert.equal(statusField(c.pid, 'Seccomp'), '2', 'a seccomp filter is installed');
        assert.equal(statusField(c.pid, 'CapBnd'), '0000000000000400', 'only CAP_NET_BIND_SERVICE is left');
        assert.notEqual((await exec(c.id, 'touch /newfile')).code, 0, 'the rootfs is read-only');
        assert.equal((await exec(c.id, 'cat /proc/cpuinfo | wc -c')).out.trim(), '0', '/proc/cpuinfo is masked');
        assert.equal(
          (await exec(c.id, 'cat /proc/sys/net/ipv4/ip_local_port_range')).out.trim().replace(/\s+/g, ' '),
          '20000 30000',
        );
        assert.equal((await exec(c.id, 'head -c 5 /dev/myzero | wc -c')).out.trim(), '5');
        assert.equal((await exec(c.id, 'cat /data/hello.txt')).out, 'from the host\n');
        assert.notEqual((await exec(c.id, 'touch /data/x')).code, 0, 'the mount is read-only');
        const mi = readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8')
          .split('\n')
          .find((l) => l.split(' ')[4] === '/data');
        assert.match(mi ?? '', /master:\d+/, 'the /data mount is a slave of the host mount');
        // a mount made on the host afterwards appears inside (host → container propagation)
        await fs.mkdir(path.join(hostDir, 'late'), { recursive: true });
        sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'late', path.join(hostDir, 'late')]);
        try {
          await fs.writeFile(path.join(hostDir, 'late', 'seen.txt'), 'propagated\n');
          assert.equal((await exec(c.id, 'cat /data/late/seen.txt')).out, 'propagated\n');
        } finally {
          sh('umount', [path.join(hostDir, 'late')]);
        }
        // the image's USER unless overridden: run_as_username resolves in the image's /etc/passwd
        const named = await run(p, {
          metadata: { name: 'nobody' },
          linux: { security_context: { run_as_username: 'nobody' } },
        });
        assert.equal(statusField(named.pid, 'Uid').split(/\s+/)[0], '65534');
        const st = await f.client.rs('ContainerStatus', { container_id: named.id });
        assert.equal(st.status.user.linux.uid, '65534');
        const priv = await run(p, { metadata: { name: 'priv' }, linux: { security_context: { privileged: true } } });
        // a host device no container gets by default: the first block device, else /dev/kmsg
        const hostDev =
          readdirSync('/dev', { withFileTypes: true })
            .filter((e) => e.isBlockDevice())
            .map((e) => `/dev/${e.name}`)[0] ?? '/dev/kmsg';
        assert.equal(
          (await exec(priv.id, `test -e ${hostDev} && echo yes`)).out.trim(),
          'yes',
          `privileged: ${hostDev}`,
        );
        assert.notEqual((await exec(named.id, `test -e ${hostDev}`)).code, 0, `not privileged: no ${hostDev}`);
        const unconfined = await run(p, {
          metadata: { name: 'unconfined' },
          linux: { security_context: { seccomp: { profile_type: 'Unconfined' } } },
        });
        assert.equal(statusField(unconfined.pid, 'Seccomp'), '0');
      } finally {
        await remove(p);
        spawnSync('umount', ['-l', hostDir]);
      }
    },
  );

  it('writes resources to the cgroup and updates them', { timeout: 90_000 }, async () => {
    const p = await pod();
    try {
      const c = await run(p, {
        metadata: { name: 'limited' },
        linux: {
          resources: { cpu_period: 100000, cpu_quota: 50000, cpu_shares: 512, memory_limit_in_bytes: 64 * 1024 * 1024 },
        },
      });
      const cg = (await f.client.rs('ContainerStatus', { container_id: c.id, verbose: true })).info.info;
      const rel = (JSON.parse(cg as string) as { cgroupPath: string }).cgroupPath;
      const memFile = pureV2() ? 'memory.max' : 'memory.limit_in_bytes';
      const read = (hier: string, file: string): string => readFileSync(path.join(hier, rel, file), 'utf8').trim();
      assert.equal(read(memoryHierarchy(), memFile), String(64 * 1024 * 1024));
      if (!pureV2()) {
        const cpu = cgroupMounts().find((m) => !m.v2 && m.opts.split(',').includes('cpu'))!.dir;
        assert.equal(read(cpu, 'cpu.cfs_quota_us'), '50000');
        assert.equal(read(cpu, 'cpu.shares'), '512');
      }
      await f.client.rs('UpdateContainerResources', {
        container_id: c.id,
        linux: { memory_limit_in_bytes: 96 * 1024 * 1024, cpu_quota: 20000, cpu_period: 100000 },
      });
      assert.equal(read(memoryHierarchy(), memFile), String(96 * 1024 * 1024));
      const st = await f.client.rs('ContainerStatus', { container_id: c.id });
      assert.equal(st.status.resources.linux.memory_limit_in_bytes, String(96 * 1024 * 1024));
      assert.equal(st.status.resources.linux.cpu_quota, '20000');
    } finally {
      await remove(p);
    }
  });

  it(
    'reports Completed, Error and OOMKilled with exit codes and timestamps; attempts are distinct',
    { timeout: 90_000 },
    async () => {
      const p = await pod();
      try {
        const ok = await run(p, { metadata: { name: 'job', attempt: 0 }, command: ['true'] });
        const bad = await run(p, { metadata: { name: 'job', attempt: 1 }, command: ['sh', '-c', 'exit 7'] });
        const oom = await run(p, {
          metadata: { name: 'hog' },
          command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\000" a); echo survived'],
          linux: { resources: { memory_limit_in_bytes: 16 * 1024 * 1024 } },
        });
        const done = async (id: string): Promise<Msg> =>
          waitFor(
            `container ${id.slice(0, 8)} to exit`,
            async () => {
              const s = (await f.client.rs('ContainerStatus', { container_id: id })).status as Msg;
              return s.state === 'CONTAINER_EXITED' ? s : undefined;
            },
            60_000,
          );
        const s1 = await done(ok.id);
        assert.equal(s1.exit_code, 0);
        assert.equal(s1.reason, 'Completed');
        assert.ok(BigInt(s1.finished_at) >= BigInt(s1.started_at) && BigInt(s1.started_at) > 0n);
        const s2 = await done(bad.id);
        assert.equal(s2.exit_code, 7);
        assert.equal(s2.reason, 'Error');
        assert.deepEqual(
          [s1.metadata, s2.metadata],
          [
            { name: 'job', attempt: 0 },
            { name: 'job', attempt: 1 },
          ],
        );
        const s3 = await done(oom.id);
        assert.equal(s3.reason, 'OOMKilled', `exit ${s3.exit_code}`);
        assert.equal(s3.exit_code, 137);
        const exited = await f.client.rs('ListContainers', {
          filter: { pod_sandbox_id: p.id, state: { state: 'CONTAINER_EXITED' } },
        });
        assert.equal(exited.containers.length, 3);
        await f.client.rs('RemoveContainer', { container_id: ok.id });
        await f.client.rs('RemoveContainer', { container_id: ok.id });
        assert.equal((await f.client.rs('ListContainers', { filter: { pod_sandbox_id: p.id } })).containers.length, 2);
      } finally {
        await remove(p);
      }
    },
  );

  it(
    'answers NotFound, InvalidArgument, and treats Stop/Remove of what is gone as done',
    { timeout: 90_000 },
    async () => {
      const c = f.client;
      const unknown = 'f'.repeat(64);
      for (const [m, req] of [
        ['ContainerStatus', { container_id: unknown }],
        ['StartContainer', { container_id: unknown }],
        ['PodSandboxStatus', { pod_sandbox_id: unknown }],
        ['ExecSync', { container_id: unknown, cmd: ['true'] }],
        ['CreateContainer', { pod_sandbox_id: unknown, config: { metadata: { name: 'x' }, image: IMAGE } }],
      ] as const) {
        const r = await codeOf(c.rs(m, req));
        assert.equal(r.code, grpc.status.NOT_FOUND, `${m}: ${r.details}`);
      }
      await c.rs('StopContainer', { container_id: unknown, timeout: 1 });
      await c.rs('RemoveContainer', { container_id: unknown });
      await c.rs('StopPodSandbox', { pod_sandbox_id: unknown });
      await c.rs('RemovePodSandbox', { pod_sandbox_id: unknown });
      const noMeta = await codeOf(c.rs('RunPodSandbox', { config: { hostname: 'x' } }));
      assert.equal(noMeta.code, grpc.status.INVALID_ARGUMENT);
      assert.match(noMeta.details, /config\.metadata/);
      const noName = await codeOf(c.rs('RunPodSandbox', { config: { metadata: { namespace: 'default' } } }));
      assert.equal(noName.code, grpc.status.INVALID_ARGUMENT);
      assert.match(noName.details, /config\.metadata\.name/);
      const p = await pod();
      try {
        const noImage = await codeOf(
          c.rs('CreateContainer', { pod_sandbox_id: p.id, config: { metadata: { name: 'x' } } }),
        );
        assert.equal(noImage.code, grpc.status.INVALID_ARGUMENT);
        assert.match(noImage.details, /config\.image\.image/);
        const noCmd = await codeOf(c.rs('Exec', { container_id: unknown, cmd: [] }));
        assert.equal(noCmd.code, grpc.status.NOT_FOUND);
        const ct = await run(p, { metadata: { name: 'exec' } });
        const noStreams = await codeOf(c.rs('Exec', { container_id: ct.id, cmd: ['ls'] }));
        assert.equal(noStreams.code, grpc.status.INVALID_ARGUMENT);
        assert.equal((await codeOf(c.rs('ListMetricDescriptors', {}))).code, grpc.status.UNIMPLEMENTED);
        // stop twice, remove twice
        await c.rs('StopContainer', { container_id: ct.id, timeout: 2 });
        await waitFor('the exit', () => !existsPid(ct.pid), 30_000);
        await c.rs('StopContainer', { container_id: ct.id, timeout: 2 });
        await c.rs('RemoveContainer', { container_id: ct.id });
        await c.rs('RemoveContainer', { container_id: ct.id });
      } finally {
        await remove(p);
      }
    },
  );

  it('answers ImageStatus alike for a name, an untagged name, an id and a digest', { timeout: 90_000 }, async () => {
    const c = f.client;
    const byName = (await c.is('ImageStatus', { image: { image: 'localhost/busybox:latest' }, verbose: true })) as Msg;
    assert.ok(byName.image, 'found by name');
    const id = byName.image.id as string;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(byName.image.repo_tags.includes('localhost/busybox:latest'));
    const digest = (byName.image.repo_digests as string[])[0]!;
    assert.match(digest, /^localhost\/busybox@sha256:[0-9a-f]{64}$/);
    assert.ok(BigInt(byName.image.size) > 0n);
    assert.ok(JSON.parse(byName.info.info as string).imageSpec.rootfs, 'verbose info has the image config');
    for (const ref of ['localhost/busybox', 'busybox', id, id.slice(7), id.slice(7, 19), digest]) {
      const r = await c.is('ImageStatus', { image: { image: ref } });
      assert.equal(r.image?.id, id, `ImageStatus ${ref}`);
    }
    const none = await c.is('ImageStatus', { image: { image: 'localhost/nothing:here' } });
    assert.equal(none.image, null);
    const pull = await codeOf(c.is('PullImage', { image: { image: 'not a reference' } }));
    assert.equal(pull.code, grpc.status.INVALID_ARGUMENT);
    const listed = await c.is('ListImages', { filter: { image: { image: digest } } });
    assert.deepEqual(
      listed.images.map((i: Msg) => i.id),
      [id],
    );
    const fsInfo = await c.is('ImageFsInfo', {});
    assert.ok(BigInt(fsInfo.image_filesystems[0].used_bytes.value) > 0n);
    await c.is('RemoveImage', { image: { image: 'localhost/nothing:here' } });
  });
});

function existsPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('CRI events and log reopening', () => {
  let f: CriFixture;
  before(async () => {
    f = await startCri();
  });
  after(async () => f?.stop());

  it('streams container events and reopens a rotated log', { timeout: 90_000 }, async () => {
    const events: Msg[] = [];
    const call = (
      f.client.runtime as unknown as Record<string, (r: Msg) => NodeJS.EventEmitter & { cancel(): void }>
    ).GetContainerEvents!.call(f.client.runtime, {});
    call.on('data', (e: Msg) => events.push(e));
    call.on('error', () => undefined);
    try {
      const logDir = path.join(f.sb.root, 'logs-ev');
      const config = sandboxConfig('ev', { log_directory: logDir });
      const { pod_sandbox_id: podId } = await f.client.rs('RunPodSandbox', { config });
      const { container_id: id } = await f.client.rs('CreateContainer', {
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: {
          metadata: { name: 'ticker' },
          image: IMAGE,
          command: ['sh', '-c', 'i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done'],
          log_path: 'ticker.log',
        },
      });
      await f.client.rs('StartContainer', { container_id: id });
      const log = path.join(logDir, 'ticker.log');
      await waitFor(
        'the first log lines',
        async () => (await fs.readFile(log, 'utf8').catch(() => '')).includes('line 1'),
        30_000,
      );
      // kubelet's rotation: rename, then ask the runtime to reopen
      await fs.rename(log, `${log}.1`);
      await f.client.rs('ReopenContainerLog', { container_id: id });
      await waitFor(
        'new lines in the reopened log',
        async () => /stdout F line \d+/.test(await fs.readFile(log, 'utf8').catch(() => '')),
        30_000,
      );
      await f.client.rs('StopContainer', { container_id: id, timeout: 0 });
      await f.client.rs('RemoveContainer', { container_id: id });
      const types = (): string[] =>
        events.filter((e) => e.container_id === id).map((e) => e.container_event_type as string);
      await waitFor('four events', () => types().length >= 4, 30_000);
      assert.deepEqual(types(), [
        'CONTAINER_CREATED_EVENT',
        'CONTAINER_STARTED_EVENT',
        'CONTAINER_STOPPED_EVENT',
        'CONTAINER_DELETED_EVENT',
      ]);
      const started = events.find((e) => e.container_event_type === 'CONTAINER_STARTED_EVENT')!;
      assert.equal(started.pod_sandbox_status.id, podId);
      assert.equal(started.containers_statuses[0].state, 'CONTAINER_RUNNING');
      assert.ok(BigInt(started.created_at) > 0n);
      await f.client.rs('RemovePodSandbox', { pod_sandbox_id: podId });
    } finally {
      call.cancel();
    }
  });
});
