import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerSpecFromCri, nspodName, podSpecFromCri, rawResourcesFromCri } from '../../../src/spec/index.js';
import { isNspodError } from '../../../src/errors/index.js';

const sandbox = {
  metadata: { name: 'web', namespace: 'prod', uid: 'u-1', attempt: 0 },
  log_directory: '/var/log/pods/x',
};

function invalid(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (e: unknown) => isNspodError(e, 'INVALID_ARGUMENT') && field.test((e as Error).message));
}

test('a PodSandboxConfig becomes a PodSpec with CRI defaults', () => {
  const p = podSpecFromCri({ ...sandbox, labels: { a: 'b' }, annotations: { n: 'v' } });
  assert.equal(p.name, 'web');
  assert.equal(p.namespace, 'prod');
  assert.equal(p.uid, 'u-1');
  assert.equal(p.hostname, 'web');
  assert.deepEqual(p.namespaces, { network: 'pod', ipc: 'pod', pid: 'pod' }, 'an unset NamespaceMode is POD');
  assert.equal(p.restartPolicy, 'Never', 'kubelet restarts, nothing below it');
  assert.deepEqual(p.containers, []);
  assert.equal(p.logDirectory, '/var/log/pods/x');
  assert.deepEqual(p.labels, { a: 'b' });
  assert.deepEqual(p.annotations, { n: 'v' });
});

test('attempts > 0 get a distinct nspod name; the CRI name and attempt are kept', () => {
  const p = podSpecFromCri({ ...sandbox, metadata: { ...sandbox.metadata, attempt: 2 } });
  assert.equal(p.name, 'web_2');
  assert.equal(p.criName, 'web');
  assert.equal(p.attempt, 2);
  const first = podSpecFromCri(sandbox);
  assert.equal(first.name, 'web', 'attempt 0 keeps its name');
  assert.equal(first.attempt, 0);
});

test('pod names may hold dots: pod "a.1" and pod "a" attempt 1 get different nspod names', () => {
  const meta = (name: string, attempt: number) => ({ ...sandbox, metadata: { ...sandbox.metadata, name, attempt } });
  const dotted = podSpecFromCri(meta('a.1', 0));
  const retry = podSpecFromCri(meta('a', 1));
  assert.equal(dotted.name, 'a.1');
  assert.notEqual(retry.name, dotted.name);
  assert.equal(retry.criName, 'a');
  // every (name, attempt) pair of valid pod names gets its own nspod name
  const seen = new Map<string, string>();
  for (const name of ['a', 'a.1', 'a.1.1', 'a.2', 'a-1', 'a1', 'b.a']) {
    for (const attempt of [0, 1, 2, 11]) {
      const n = nspodName(name, attempt);
      const was = seen.get(n);
      assert.equal(was, undefined, `${name} attempt ${attempt} and ${was} are both ${n}`);
      seen.set(n, `${name} attempt ${attempt}`);
    }
  }
});

test('container attempts > 0 get a distinct nspod name; attempt 0 keeps its name', () => {
  const pod = podSpecFromCri(sandbox);
  const c = (attempt: number) =>
    containerSpecFromCri({ metadata: { name: 'app', attempt }, image: { image: 'busybox' } }, pod);
  assert.equal(c(0).name, 'app');
  assert.equal(c(3).name, 'app_3');
  assert.equal(c(3).criName, 'app');
  assert.equal(c(3).attempt, 3);
});

test('namespace modes map to nspod modes; TARGET is refused for a sandbox', () => {
  const p = podSpecFromCri({
    ...sandbox,
    linux: { security_context: { namespace_options: { network: 'NODE', ipc: 'NODE', pid: 'CONTAINER' } } },
  });
  assert.deepEqual(p.namespaces, { network: 'node', ipc: 'node', pid: 'container' });
  invalid(
    () => podSpecFromCri({ ...sandbox, linux: { security_context: { namespace_options: { pid: 'TARGET' } } } }),
    /namespace_options\.pid/,
  );
});

test('missing metadata, name or namespace are INVALID_ARGUMENT naming the field', () => {
  invalid(() => podSpecFromCri(undefined), /^config:/);
  invalid(() => podSpecFromCri({ hostname: 'x' }), /config\.metadata:/);
  invalid(() => podSpecFromCri({ metadata: { namespace: 'x' } }), /config\.metadata\.name/);
  invalid(() => podSpecFromCri({ metadata: { name: 'x' } }), /config\.metadata\.namespace/);
  invalid(() => podSpecFromCri({ ...sandbox, log_directory: 'relative' }), /log_directory/);
});

test('DNS config is taken as given (policy None)', () => {
  const p = podSpecFromCri({
    ...sandbox,
    dns_config: { servers: ['10.0.0.10'], searches: ['a.b', 'b'], options: ['ndots:5', 'rotate'] },
  });
  assert.deepEqual(p.dns, {
    policy: 'None',
    nameservers: ['10.0.0.10'],
    searches: ['a.b', 'b'],
    options: [{ name: 'ndots', value: '5' }, { name: 'rotate' }],
  });
});

test('a ContainerConfig becomes a ContainerSpec: command, env, log path, security, extras', () => {
  const pod = podSpecFromCri({ ...sandbox, linux: { sysctls: { 'net.ipv4.ip_forward': '1' } } });
  const c = containerSpecFromCri(
    {
      metadata: { name: 'app', attempt: 1 },
      image: { image: 'busybox' },
      command: ['sh'],
      args: ['-c', 'true'],
      envs: [{ key: 'A', value: '1' }],
      log_path: 'app/1.log',
      labels: { l: '1' },
      annotations: { a: '2' },
      mounts: [
        { container_path: '/data', host_path: '/srv', readonly: true, propagation: 'PROPAGATION_BIDIRECTIONAL' },
      ],
      devices: [{ container_path: '/dev/x', host_path: '/dev/null', permissions: 'rw' }],
      linux: {
        resources: { cpu_quota: '50000', cpu_period: '100000', memory_limit_in_bytes: '1048576', oom_score_adj: '500' },
        security_context: {
          run_as_username: 'nobody',
          run_as_group: { value: '7' },
          supplemental_groups: ['10'],
          no_new_privs: true,
          readonly_rootfs: true,
          capabilities: {
            add_capabilities: ['NET_ADMIN'],
            drop_capabilities: ['ALL'],
            add_ambient_capabilities: ['NET_RAW'],
          },
          seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/seccomp/p.json' },
          namespace_options: { pid: 'TARGET', target_id: 'abc' },
        },
      },
      stop_signal: 'SIGINT',
    },
    pod,
  );
  assert.equal(c.name, 'app_1');
  assert.equal(c.criName, 'app');
  assert.deepEqual(c.command, ['sh']);
  assert.deepEqual(c.args, ['-c', 'true']);
  assert.deepEqual(c.env, [{ name: 'A', value: '1' }]);
  assert.equal(c.logPath, '/var/log/pods/x/app/1.log');
  assert.deepEqual(c.labels, { l: '1' });
  assert.equal(c.stopSignal, 'SIGINT');
  assert.deepEqual(c.pidNamespace, { mode: 'target', targetId: 'abc' });
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  const x = c.extras!;
  assert.equal(x.user, 'nobody:7');
  assert.deepEqual(x.supplementalGroups, [10]);
  assert.deepEqual(x.seccomp, { type: 'Localhost', path: '/etc/seccomp/p.json' });
  assert.deepEqual(x.sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.deepEqual(x.mounts, [{ containerPath: '/data', hostPath: '/srv', readonly: true, propagation: 'rshared' }]);
  assert.deepEqual(x.devices, [{ containerPath: '/dev/x', hostPath: '/dev/null', permissions: 'rw' }]);
  assert.deepEqual(x.resources, { cpuQuota: 50000, cpuPeriod: 100000, memoryLimitBytes: 1048576 });
  assert.equal(x.oomScoreAdj, 500);
  assert.deepEqual(x.ambientCapabilities, ['NET_RAW']);
});

test('container errors name the CRI field', () => {
  const pod = podSpecFromCri(sandbox);
  invalid(() => containerSpecFromCri({ image: { image: 'x' } }, pod), /config\.metadata/);
  invalid(() => containerSpecFromCri({ metadata: { name: 'a' } }, pod), /config\.image\.image/);
  invalid(
    () =>
      containerSpecFromCri(
        { metadata: { name: 'a' }, image: { image: 'x' }, linux: { security_context: { run_as_group: { value: 1 } } } },
        pod,
      ),
    /run_as_group/,
  );
  invalid(
    () =>
      containerSpecFromCri(
        { metadata: { name: 'a' }, image: { image: 'x' }, mounts: [{ container_path: 'rel', host_path: '/x' }] },
        pod,
      ),
    /mounts\[0\]\.container_path/,
  );
  invalid(
    () =>
      containerSpecFromCri(
        { metadata: { name: 'a' }, image: { image: 'x' }, linux: { resources: { oom_score_adj: 5000 } } },
        pod,
      ),
    /oom_score_adj/,
  );
});

test('seccomp: legacy paths and the unset default (unconfined)', () => {
  const pod = podSpecFromCri(sandbox);
  const sec = (sc: Record<string, unknown>) =>
    containerSpecFromCri({ metadata: { name: 'a' }, image: { image: 'x' }, linux: { security_context: sc } }, pod)
      .extras!.seccomp;
  assert.deepEqual(sec({}), { type: 'Unconfined' });
  assert.deepEqual(sec({ seccomp_profile_path: 'runtime/default' }), { type: 'RuntimeDefault' });
  assert.deepEqual(sec({ seccomp_profile_path: 'localhost//p.json' }), { type: 'Localhost', path: '/p.json' });
  assert.deepEqual(sec({ seccomp: { profile_type: 'RuntimeDefault' } }), { type: 'RuntimeDefault' });
});

test('resources: 0 means not specified', () => {
  assert.deepEqual(rawResourcesFromCri({ cpu_shares: 0, memory_limit_in_bytes: '0', cpuset_cpus: '' }), {
    resources: {},
  });
  assert.deepEqual(
    rawResourcesFromCri({ cpuset_cpus: '0-1', hugepage_limits: [{ page_size: '2MB', limit: '0' }] }).resources,
    {
      cpusetCpus: '0-1',
      hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
    },
  );
});
