import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALL_CAPS,
  buildConfig,
  DEFAULT_CAPS,
  DEFAULT_PATH,
  MASKED_PATHS,
  processArgs,
} from '../../../src/oci/index.js';
import type { BuildConfigInput, ImageConfig } from '../../../src/oci/index.js';
import type { ContainerSpec, SecurityContext } from '../../../src/spec/types.js';
import { isNspodError } from '../../../src/errors/index.js';

function container(over: Partial<ContainerSpec> = {}, sc: Partial<SecurityContext> = {}): ContainerSpec {
  return {
    name: 'app',
    image: 'busybox',
    env: [],
    ports: [],
    resources: { limits: {}, requests: {} },
    securityContext: { privileged: false, capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false, ...sc },
    tty: false,
    stdin: false,
    ...over,
  };
}

function input(over: Partial<BuildConfigInput> = {}): BuildConfigInput {
  return {
    containerName: 'app',
    image: { Cmd: ['sh'] },
    container: container(),
    rootfs: '/var/lib/nspod/containers/x/rootfs',
    hostname: 'web-0',
    namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network', path: '/run/nspod/p/ns/net' }],
    cgroupsPath: '/nspod/pod-x/app',
    mounts: {},
    user: { uid: 0, gid: 0, additionalGids: [] },
    hostLimits: { nofile: 1048576, nproc: 100000 },
    ...over,
  };
}

test('process args: command/args over Entrypoint/Cmd as Kubernetes does', () => {
  const img: ImageConfig = { Entrypoint: ['/entry'], Cmd: ['--cmd'] };
  const cases: Array<[ImageConfig, Partial<ContainerSpec>, string[]]> = [
    [img, {}, ['/entry', '--cmd']],
    [img, { command: ['/bin/x'] }, ['/bin/x']],
    [img, { args: ['a', 'b'] }, ['/entry', 'a', 'b']],
    [img, { command: ['/bin/x'], args: ['y'] }, ['/bin/x', 'y']],
    [{ Cmd: ['sh', '-c', 'true'] }, {}, ['sh', '-c', 'true']],
    [{ Entrypoint: null, Cmd: null }, { args: ['echo'] }, ['echo']],
    [{}, { command: [], args: [] }, []],
  ];
  for (const [image, c, want] of cases) assert.deepEqual(processArgs(image, c), want, JSON.stringify([image, c]));
  assert.throws(
    () => buildConfig(input({ image: {} })),
    (e) => isNspodError(e, 'INVALID_ARGUMENT') && /container "app" has no command/.test(e.message),
  );
});

test('env: image env, HOSTNAME, container env wins; PATH defaulted only when absent', () => {
  const c = container({
    env: [
      { name: 'FOO', value: 'mine' },
      { name: 'NEW', value: '1' },
    ],
  });
  const { spec } = buildConfig(input({ image: { Cmd: ['sh'], Env: ['FOO=image', 'BAR=b=c'] }, container: c }));
  assert.deepEqual(spec.process.env, ['FOO=mine', 'BAR=b=c', `PATH=${DEFAULT_PATH}`, 'HOSTNAME=web-0', 'NEW=1']);
  const own = buildConfig(input({ image: { Cmd: ['sh'], Env: ['PATH=/opt/bin'] } })).spec;
  assert.deepEqual(own.process.env, ['PATH=/opt/bin', 'HOSTNAME=web-0']);
});

test('cwd, terminal and user: runAsUser/runAsGroup override the resolved image user', () => {
  let { spec } = buildConfig(input({ image: { Cmd: ['sh'], WorkingDir: '/srv' } }));
  assert.equal(spec.process.cwd, '/srv');
  assert.equal(spec.process.terminal, false);
  ({ spec } = buildConfig(
    input({ image: { Cmd: ['sh'], WorkingDir: '/srv' }, container: container({ workingDir: '/w', tty: true }) }),
  ));
  assert.equal(spec.process.cwd, '/w');
  assert.equal(spec.process.terminal, true);
  assert.equal(buildConfig(input()).spec.process.cwd, '/');

  const user = { uid: 1000, gid: 1000, additionalGids: [27, 100] };
  ({ spec } = buildConfig(input({ user })));
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [27, 100] });
  ({ spec } = buildConfig(input({ user, container: container({}, { runAsUser: 33, runAsGroup: 44 }) })));
  assert.deepEqual(spec.process.user, { uid: 33, gid: 44, additionalGids: [27, 100] });
  ({ spec } = buildConfig(input({ container: container({}, { runAsUser: 5 }) })));
  assert.deepEqual(spec.process.user, { uid: 5, gid: 0 });
});

test('capabilities: defaults, add, drop, ALL; privileged gets all', () => {
  const caps = (add: string[], drop: string[]): string[] =>
    buildConfig(input({ container: container({}, { capabilities: { add, drop } }) })).spec.process.capabilities!
      .effective;
  assert.deepEqual(new Set(caps([], [])), new Set(DEFAULT_CAPS));
  const added = caps(['NET_ADMIN', 'cap_sys_time'], ['KILL', 'CAP_MKNOD']);
  assert.ok(added.includes('CAP_NET_ADMIN') && added.includes('CAP_SYS_TIME'));
  assert.ok(!added.includes('CAP_KILL') && !added.includes('CAP_MKNOD'));
  assert.equal(added.length, DEFAULT_CAPS.length);
  assert.deepEqual(caps([], ['ALL']), []);
  assert.deepEqual(caps(['NET_BIND_SERVICE'], ['ALL']), ['CAP_NET_BIND_SERVICE']);
  assert.deepEqual(
    caps(['ALL'], ['SYS_ADMIN']),
    ALL_CAPS.filter((c) => c !== 'CAP_SYS_ADMIN'),
  );
  assert.throws(
    () => caps(['NOT_A_CAP'], []),
    (e) => isNspodError(e, 'INVALID_ARGUMENT') && /NOT_A_CAP/.test(e.message),
  );

  const { spec } = buildConfig(input({ container: container({}, { capabilities: { add: ['NET_ADMIN'], drop: [] } }) }));
  const c = spec.process.capabilities!;
  assert.deepEqual(c.bounding, c.effective);
  assert.deepEqual(c.permitted, c.effective);
  assert.deepEqual(c.inheritable, []);
  assert.deepEqual(c.ambient, []);
  assert.equal(spec.process.noNewPrivileges, true);
  assert.deepEqual(spec.linux.maskedPaths, MASKED_PATHS);
  assert.ok(spec.linux.readonlyPaths!.includes('/proc/sys'));
  assert.equal(spec.linux.resources!.devices![0]!.allow, false);
  assert.ok(spec.linux.resources!.devices!.some((d) => d.major === 136 && d.minor === undefined && d.allow));
  assert.ok(spec.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
});

test('privileged: all caps (within the host bounding set), no masks, all devices, no noNewPrivileges', () => {
  const priv = container({}, { privileged: true });
  let { spec, warnings } = buildConfig(input({ container: priv }));
  assert.deepEqual(spec.process.capabilities!.bounding, [...ALL_CAPS]);
  assert.equal(spec.process.noNewPrivileges, false);
  assert.equal(spec.linux.maskedPaths, undefined);
  assert.equal(spec.linux.readonlyPaths, undefined);
  assert.deepEqual(spec.linux.resources!.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(warnings, []);
  // a host whose root lacks CAP_SYS_RESOURCE: the cap is left out (silently: not asked for by name)
  const avail = ALL_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE');
  ({ spec, warnings } = buildConfig(input({ container: priv, availableCaps: avail })));
  assert.ok(!spec.process.capabilities!.effective.includes('CAP_SYS_RESOURCE'));
  assert.deepEqual(warnings, []);
  ({ spec, warnings } = buildConfig(
    input({ container: container({}, { capabilities: { add: ['SYS_RESOURCE'], drop: [] } }), availableCaps: avail }),
  ));
  assert.ok(!spec.process.capabilities!.effective.includes('CAP_SYS_RESOURCE'));
  assert.match(warnings[0]!, /CAP_SYS_RESOURCE/);
  // allowPrivilegeEscalation: true lifts noNewPrivileges
  ({ spec } = buildConfig(input({ container: container({}, { allowPrivilegeEscalation: true }) })));
  assert.equal(spec.process.noNewPrivileges, false);
});

test('root, rlimits and oomScoreAdj', () => {
  let r = buildConfig(
    input({ container: container({}, { readOnlyRootFilesystem: true }), hostLimits: { nofile: 20000, nproc: 1 } }),
  );
  assert.deepEqual(r.spec.root, { path: '/var/lib/nspod/containers/x/rootfs', readonly: true });
  assert.deepEqual(r.spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
  r = buildConfig(input({ hostLimits: { nofile: 4_000_000, nproc: 1 } }));
  assert.deepEqual(r.spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
  assert.equal(r.spec.root.readonly, false);

  r = buildConfig(input({ oomScoreAdj: -998, hostLimits: { nofile: 1024, nproc: 1, oomScoreAdj: 0 } }));
  assert.equal(r.spec.process.oomScoreAdj, undefined);
  assert.match(r.warnings[0]!, /oom_score_adj -998/);
  r = buildConfig(input({ oomScoreAdj: 500, hostLimits: { nofile: 1024, nproc: 1, oomScoreAdj: 0 } }));
  assert.equal(r.spec.process.oomScoreAdj, 500);
  assert.deepEqual(r.warnings, []);
});

test('namespaces, hostname only with an own UTS namespace, cgroupsPath and resources', () => {
  let { spec } = buildConfig(input({ resources: { memory: { limit: 1024 }, cpu: { shares: 2 } } }));
  assert.deepEqual(spec.linux.namespaces, [
    { type: 'pid' },
    { type: 'mount' },
    { type: 'network', path: '/run/nspod/p/ns/net' },
  ]);
  assert.equal(spec.hostname, undefined, 'no uts namespace: the host one, no hostname');
  assert.equal(spec.linux.cgroupsPath, '/nspod/pod-x/app');
  assert.deepEqual(spec.linux.resources!.memory, { limit: 1024 });
  assert.deepEqual(spec.linux.resources!.cpu, { shares: 2 });
  ({ spec } = buildConfig(input({ namespaces: [{ type: 'mount' }, { type: 'uts' }] })));
  assert.equal(spec.hostname, 'web-0');
  ({ spec } = buildConfig(input({ namespaces: [{ type: 'mount' }, { type: 'uts', path: '/run/nspod/p/ns/uts' }] })));
  assert.equal(spec.hostname, undefined, 'joined uts: its hostname is the pod one already');
  assert.throws(
    () => buildConfig(input({ namespaces: [{ type: 'mount' }, { type: 'mount' }] })),
    (e) => isNspodError(e, 'INVALID_ARGUMENT'),
  );
});

test('mounts: the standard set, /dev/shm bound from the pod, pod files bound', () => {
  let { spec } = buildConfig(input());
  const dests = spec.mounts.map((m) => m.destination);
  assert.deepEqual(dests, ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  assert.equal(spec.mounts.find((m) => m.destination === '/dev/shm')!.type, 'tmpfs');
  const pts = spec.mounts.find((m) => m.destination === '/dev/pts')!;
  assert.ok(
    pts.options!.includes('newinstance') && pts.options!.includes('ptmxmode=0666') && pts.options!.includes('gid=5'),
  );

  ({ spec } = buildConfig(
    input({
      mounts: {
        shm: '/run/nspod/p/shm',
        hosts: '/run/nspod/p/hosts',
        resolvConf: '/run/nspod/p/resolv.conf',
        hostname: '/run/nspod/p/hostname',
      },
    }),
  ));
  const shm = spec.mounts.find((m) => m.destination === '/dev/shm')!;
  assert.equal(shm.source, '/run/nspod/p/shm');
  assert.ok(shm.options!.includes('rbind'));
  for (const [dest, src] of [
    ['/etc/hosts', '/run/nspod/p/hosts'],
    ['/etc/resolv.conf', '/run/nspod/p/resolv.conf'],
    ['/etc/hostname', '/run/nspod/p/hostname'],
  ] as const) {
    const m = spec.mounts.find((x) => x.destination === dest)!;
    assert.deepEqual(m, { destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate'] });
  }
});
