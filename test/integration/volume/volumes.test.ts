/**
 * Volumes and configuration against the system: what containers see is read from /proc/<pid>
 * (mountinfo, environ, root), what is left on the host from the mount table and the dirs.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  podCgroupDirs,
  cgroupPids,
  waitFor,
  mountsContaining,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';

interface MountRow {
  root: string;
  options: string[];
  fstype: string;
  superOptions: string[];
}

/** The mount at `target` as the process sees it (the last one, which is on top). */
function mountIn(pid: number, target: string): MountRow | undefined {
  let found: MountRow | undefined;
  for (const l of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    if (f[4] !== target) continue;
    const p = post.split(' ');
    found = { root: f[3]!, options: f[5]!.split(','), fstype: p[0]!, superOptions: (p[2] ?? '').split(',') };
  }
  return found;
}

function environ(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** ppid from /proc/<pid>/stat (after the command name, which may hold spaces). */
function ppid(pid: number): number | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The container's first process: the one in its cgroup whose parent (conmon) is outside it. */
async function containerPid(sb: Sandbox, name: string): Promise<number> {
  return waitFor(
    `container ${name} running`,
    () => {
      const dir = podCgroupDirs(sb)[0];
      if (!dir) return undefined;
      const pids = cgroupPids(path.join(dir, name));
      return pids.find((p) => {
        const pp = ppid(p);
        return pp !== undefined && !pids.includes(pp);
      });
    },
    30_000,
  );
}

const mode = async (p: string): Promise<number> => (await fs.stat(p)).mode & 0o777;

/** Asserts that no pod of the sandbox left anything: records, dirs, mounts, cgroups. */
async function assertNothingLeft(sb: Sandbox): Promise<void> {
  const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as unknown[];
  assert.deepEqual(pods, [], 'no pod records');
  assert.deepEqual(await fs.readdir(path.join(sb.root, 'pods')).catch(() => []), [], 'no pod dirs');
  assert.deepEqual(await fs.readdir(path.join(sb.runRoot, 'pods')).catch(() => []), [], 'no pod run dirs');
  assert.deepEqual(mountsContaining(sb.root), [], 'no mounts under the root');
  assert.deepEqual(mountsContaining(sb.runRoot), [], 'no mounts under the run root');
  assert.deepEqual(podCgroupDirs(sb), [], 'no pod cgroups');
}

const configDocs = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data:
  greeting: hello
  app.conf: |
    listen=8080
binaryData:
  blob: AAEC/w==
---
apiVersion: v1
kind: Secret
metadata: { name: creds }
data:
  user: YWRtaW4=
stringData:
  password: s3cret
`;

describe('volumes and configuration', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
  });
  after(() => destroySandbox(sb));

  it('shares volumes between containers, projects ConfigMaps and Secrets, and resolves env from every source', async () => {
    // A stored ConfigMap too: the pod reads from both the file and the store.
    await nspodOk(sb, ['configmap', 'create', 'stored', '--from-literal', 'level=debug']);
    const yaml = `${configDocs}---
apiVersion: v1
kind: Pod
metadata: { name: vols, labels: { app: web }, annotations: { team: infra } }
spec:
  terminationGracePeriodSeconds: 1
  volumes:
    - name: shared
      emptyDir: {}
    - name: mem
      emptyDir: { medium: Memory, sizeLimit: 8Mi }
    - name: cfg
      configMap: { name: cfg, defaultMode: 0640, items: [{ key: greeting, path: msg/greeting.txt }, { key: app.conf, path: app.conf, mode: 0600 }, { key: blob, path: blob }] }
    - name: creds
      secret: { secretName: creds, defaultMode: 0400 }
    - name: info
      downwardAPI:
        items:
          - { path: labels, fieldRef: { fieldPath: metadata.labels } }
          - { path: name, fieldRef: { fieldPath: metadata.name }, mode: 0400 }
          - { path: mem, resourceFieldRef: { containerName: writer, resource: limits.memory, divisor: 1Mi } }
  containers:
    - name: writer
      image: localhost/busybox:latest
      command: ['sh', '-c', 'echo "$(GREETING) from $(POD_NAME)" > /shared/msg; ${LOOP}']
      resources: { limits: { memory: 64Mi, cpu: 500m } }
      env:
        - { name: GREETING, valueFrom: { configMapKeyRef: { name: cfg, key: greeting } } }
        - { name: PASSWORD, valueFrom: { secretKeyRef: { name: creds, key: password } } }
        - { name: LEVEL, valueFrom: { configMapKeyRef: { name: stored, key: level } } }
        - { name: MISSING_OK, valueFrom: { configMapKeyRef: { name: cfg, key: nope, optional: true } } }
        - { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
        - { name: POD_NS, valueFrom: { fieldRef: { fieldPath: metadata.namespace } } }
        - { name: POD_UID, valueFrom: { fieldRef: { fieldPath: metadata.uid } } }
        - { name: APP, valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }
        - { name: TEAM, valueFrom: { fieldRef: { fieldPath: "metadata.annotations['team']" } } }
        - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
        - { name: MEM_MI, valueFrom: { resourceFieldRef: { resource: limits.memory, divisor: 1Mi } } }
        - { name: CPU_M, valueFrom: { resourceFieldRef: { resource: limits.cpu, divisor: 1m } } }
        - { name: URL, value: "http://$(POD_NAME).$(POD_NS):8080/$$(literal)" }
      envFrom:
        - { secretRef: { name: creds }, prefix: DB_ }
        - configMapRef: { name: stored }
      volumeMounts:
        - { name: shared, mountPath: /shared }
        - { name: mem, mountPath: /mem }
        - { name: cfg, mountPath: /etc/cfg }
        - { name: creds, mountPath: /etc/creds }
        - { name: cfg, mountPath: /etc/app.conf, subPath: app.conf }
        - { name: info, mountPath: /etc/podinfo }
    - name: reader
      image: localhost/busybox:latest
      command: ['sh', '-c', 'until [ -s /in/msg ]; do sleep 0.1; done; cat /in/msg > /tmp/got; ${LOOP}']
      volumeMounts:
        - { name: shared, mountPath: /in, readOnly: true }
`;
    await nspodOk(sb, ['play', '-'], { input: yaml });
    try {
      const writer = await containerPid(sb, 'writer');
      const reader = await containerPid(sb, 'reader');

      // emptyDir: what one container wrote, the other read, through the same directory
      const got = await waitFor(
        'the reader to copy the message',
        async () => (await fs.readFile(`/proc/${reader}/root/tmp/got`, 'utf8').catch(() => '')) || undefined,
        30_000,
      );
      assert.equal(got, 'hello from vols\n');
      const wShared = mountIn(writer, '/shared');
      const rShared = mountIn(reader, '/in');
      assert.ok(wShared && rShared);
      assert.equal(wShared.root, rShared.root, 'both containers mount the same host directory');
      assert.ok(rShared.options.includes('ro'), 'readOnly mount is ro');
      const ro = await nspod(sb, ['exec', 'vols', '-c', 'reader', '--', 'touch', '/in/new']);
      assert.notEqual(ro.code, 0, 'writing to a readOnly mount fails');
      assert.match(ro.stderr, /Read-only file system/);
      assert.equal(existsSync(path.join(wShared.root, 'new')), false);

      // medium: Memory is a tmpfs of the size asked for
      const mem = mountIn(writer, '/mem');
      assert.equal(mem?.fstype, 'tmpfs');
      assert.ok(mem.superOptions.includes('size=8192k'), mem.superOptions.join(','));

      // configMap: items at their paths, with their modes, read-only
      const root = `/proc/${writer}/root`;
      assert.equal(await fs.readFile(`${root}/etc/cfg/msg/greeting.txt`, 'utf8'), 'hello');
      assert.equal(await mode(`${root}/etc/cfg/msg/greeting.txt`), 0o640);
      assert.equal(await mode(`${root}/etc/cfg/app.conf`), 0o600);
      assert.deepEqual([...(await fs.readFile(`${root}/etc/cfg/blob`))], [0, 1, 2, 255]);
      assert.ok(mountIn(writer, '/etc/cfg')?.options.includes('ro'));
      // subPath: one file of the volume
      assert.equal(await fs.readFile(`${root}/etc/app.conf`, 'utf8'), 'listen=8080\n');
      assert.ok((await fs.stat(`${root}/etc/app.conf`)).isFile());
      assert.match(mountIn(writer, '/etc/app.conf')?.root ?? '', /\/app\.conf$/);

      // secret: on a tmpfs, every key a file with defaultMode, read-only
      const creds = mountIn(writer, '/etc/creds');
      assert.equal(creds?.fstype, 'tmpfs', 'secrets are on tmpfs');
      assert.ok(creds.options.includes('ro'));
      assert.equal(await fs.readFile(`${root}/etc/creds/password`, 'utf8'), 's3cret');
      assert.equal(await fs.readFile(`${root}/etc/creds/user`, 'utf8'), 'admin');
      assert.equal(await mode(`${root}/etc/creds/password`), 0o400);
      // downwardAPI: the pod's fields and the container's limit as files
      assert.equal(await fs.readFile(`${root}/etc/podinfo/labels`, 'utf8'), 'app="web"');
      assert.equal(await fs.readFile(`${root}/etc/podinfo/name`, 'utf8'), 'vols');
      assert.equal(await mode(`${root}/etc/podinfo/name`), 0o400);
      assert.equal(await fs.readFile(`${root}/etc/podinfo/mem`, 'utf8'), '64');
      assert.ok(mountIn(writer, '/etc/podinfo')?.options.includes('ro'));
      // the stored secret and ConfigMap are root-only on disk
      assert.equal(await mode(path.join(sb.root, 'config', 'default', 'configmaps')), 0o700);

      // env from every source, in Kubernetes order, with $(VAR) expansion
      const env = environ(writer);
      const uid = (JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as Array<{ uid: string }>)[0]!.uid;
      // status.podIP: the address eth0 has inside the pod's network namespace
      const podIp = /inet (\S+)\//.exec(
        execFileSync('nsenter', [
          `--net=/proc/${writer}/ns/net`,
          'ip',
          '-4',
          '-o',
          'addr',
          'show',
          'dev',
          'eth0',
        ]).toString(),
      )?.[1];
      assert.ok(podIp?.startsWith(`${sb.net.prefix}.`), `pod IP ${podIp} in the sandbox subnet`);
      assert.deepEqual(
        {
          GREETING: env['GREETING'],
          PASSWORD: env['PASSWORD'],
          LEVEL: env['LEVEL'],
          MISSING_OK: env['MISSING_OK'],
          POD_NAME: env['POD_NAME'],
          POD_NS: env['POD_NS'],
          POD_UID: env['POD_UID'],
          APP: env['APP'],
          TEAM: env['TEAM'],
          POD_IP: env['POD_IP'],
          MEM_MI: env['MEM_MI'],
          CPU_M: env['CPU_M'],
          URL: env['URL'],
          DB_user: env['DB_user'],
          DB_password: env['DB_password'],
          level: env['level'],
        },
        {
          GREETING: 'hello',
          PASSWORD: 's3cret',
          LEVEL: 'debug',
          MISSING_OK: undefined,
          POD_NAME: 'vols',
          POD_NS: 'default',
          POD_UID: uid,
          APP: 'web',
          TEAM: 'infra',
          POD_IP: podIp,
          MEM_MI: '64',
          CPU_M: '500',
          URL: 'http://vols.default:8080/$(literal)',
          DB_user: 'admin',
          DB_password: 's3cret',
          level: 'debug',
        },
      );
      // the secret value is not in a world-readable bundle
      const bundles = await fs.readdir(path.join(sb.root, 'containers'));
      for (const b of bundles.filter((n) => !n.endsWith('.json'))) {
        const cfg = path.join(sb.root, 'containers', b, 'config.json');
        if (existsSync(cfg)) assert.equal(await mode(cfg), 0o600);
      }
    } finally {
      await nspodOk(sb, ['rm', '-f', 'vols']);
    }
    await assertNothingLeft(sb);
  });

  it("keeps a named volume's data across rm and a new pod", async () => {
    const pod = (name: string, command: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{ name: data, persistentVolumeClaim: { claimName: keep } }]
  containers:
    - name: main
      image: localhost/busybox:latest
      command: ['sh', '-c', '${command}; ${LOOP}']
      volumeMounts: [{ name: data, mountPath: /data }]
`;
    await nspodOk(sb, ['play', '-'], { input: pod('first', 'echo kept > /data/file') });
    try {
      const list = JSON.parse(await nspodOk(sb, ['volume', 'ls', '-o', 'json'])) as Array<{
        name: string;
        mountpoint: string;
      }>;
      const vol = list.find((v) => v.name === 'keep');
      assert.ok(vol, 'the claim made a named volume');
      await waitFor('the file', () => existsSync(path.join(vol.mountpoint, 'file')), 30_000);
      const busy = await nspod(sb, ['volume', 'rm', 'keep']);
      assert.equal(busy.code, 5, 'removing a volume in use is refused');
      assert.match(busy.stderr, /volume "keep" is used by pod default\/first/);
    } finally {
      await nspodOk(sb, ['rm', '-f', 'first']);
    }
    await nspodOk(sb, ['play', '-'], { input: pod('second', 'cat /data/file > /tmp/seen') });
    try {
      const pid = await containerPid(sb, 'main');
      const seen = await waitFor(
        'the second pod to read the file',
        async () => (await fs.readFile(`/proc/${pid}/root/tmp/seen`, 'utf8').catch(() => '')) || undefined,
        30_000,
      );
      assert.equal(seen, 'kept\n');
    } finally {
      await nspodOk(sb, ['rm', '-f', 'second']);
    }
    await assertNothingLeft(sb);
    const ls = await nspodOk(sb, ['volume', 'ls', '-o', 'json']);
    assert.deepEqual(
      (JSON.parse(ls) as Array<{ name: string }>).map((v) => v.name),
      ['keep'],
    );
    await nspodOk(sb, ['volume', 'rm', 'keep']);
    assert.deepEqual(JSON.parse(await nspodOk(sb, ['volume', 'ls', '-o', 'json'])), []);
  });

  it('refuses every bad input with one error naming the field, and makes nothing', async () => {
    const hostDir = await fs.mkdtemp(path.join(sb.root, 'host-'));
    await fs.writeFile(path.join(hostDir, 'file'), 'x');
    const escape = path.join(hostDir, 'escape');
    await fs.mkdir(escape);
    await fs.symlink('/etc', path.join(escape, 'out'));
    const pod = (spec: string) => `${configDocs}---
apiVersion: v1
kind: Pod
metadata: { name: bad }
spec:
  terminationGracePeriodSeconds: 1
${spec}`;
    const ctr = (mounts: string, env = '[]') => `  containers:
    - name: main
      image: localhost/busybox:latest
      command: ['sh', '-c', '${LOOP}']
      env: ${env}
      volumeMounts: ${mounts}
`;
    // Volumes that would be made (a claim, a DirectoryOrCreate hostPath) come first in each
    // case, so a failure after them shows that nothing is made or that it is rolled back.
    const made = `    - { name: claim, persistentVolumeClaim: { claimName: never } }
    - { name: made, hostPath: { path: ${hostDir}/made, type: DirectoryOrCreate } }`;
    const cases: Array<[string, string, RegExp, number]> = [
      [
        'a mount naming no volume',
        `  volumes:\n${made}\n${ctr('[{ name: nope, mountPath: /x }]')}`,
        /^Error: (document 3: )?spec\.containers\[0\]\.volumeMounts\[0\]\.name: no volume named "nope"/,
        2,
      ],
      [
        'a missing ConfigMap key',
        `  volumes:\n${made}\n    - { name: c, configMap: { name: cfg, items: [{ key: absent, path: a }] } }\n${ctr('[]')}`,
        /^Error: (document 3: )?spec\.volumes\[2\]\.configMap\.items\[0\]\.key: configmap "cfg" has no key "absent"/,
        3,
      ],
      [
        'a missing Secret',
        `  volumes:\n${made}\n    - { name: s, secret: { secretName: nosuch } }\n${ctr('[]')}`,
        /^Error: (document 3: )?spec\.volumes\[2\]\.secret\.secretName: secret "nosuch" not found in namespace "default"/,
        3,
      ],
      [
        'a missing env key',
        `  volumes:\n${made}\n${ctr('[]', '[{ name: A, valueFrom: { secretKeyRef: { name: creds, key: token } } }]')}`,
        /^Error: (document 3: )?spec\.containers\[0\]\.env\[0\]\.valueFrom\.secretKeyRef\.key: secret "creds" has no key "token"/,
        3,
      ],
      [
        'a subPath with ..',
        `  volumes:\n${made}\n${ctr('[{ name: made, mountPath: /x, subPath: a/../../etc }]')}`,
        /^Error: (document 3: )?spec\.containers\[0\]\.volumeMounts\[0\]\.subPath: "a\/..\/..\/etc" must not contain '..'/,
        2,
      ],
      [
        'a hostPath of the wrong type',
        `  volumes:\n${made}\n    - { name: h, hostPath: { path: ${hostDir}/file, type: Directory } }\n${ctr('[]')}`,
        /^Error: (document 3: )?spec\.volumes\[2\]\.hostPath\.path: ".*\/file" is a file, not a directory \(type Directory\)/,
        2,
      ],
      [
        'a missing hostPath',
        `  volumes:\n${made}\n    - { name: h, hostPath: { path: ${hostDir}/none, type: Socket } }\n${ctr('[]')}`,
        /^Error: (document 3: )?spec\.volumes\[2\]\.hostPath\.path: ".*\/none" does not exist \(type Socket wants a socket\)/,
        2,
      ],
      [
        // found only once the volumes exist: the whole pod is rolled back
        'a subPath through a symlink out of the volume',
        `  volumes:\n${made}\n    - { name: h, hostPath: { path: ${escape} } }\n${ctr('[{ name: claim, mountPath: /c }, { name: h, mountPath: /x, subPath: out/ssl }]')}`,
        /^Error: (document 3: )?spec\.containers\[0\]\.volumeMounts\[1\]\.subPath: "out\/ssl" is written through symlink "out" -> "\/etc" that leaves the volume/,
        2,
      ],
    ];
    for (const [what, spec, re, code] of cases) {
      const r = await nspod(sb, ['play', '-'], { input: pod(spec) });
      assert.equal(r.code, code, `${what}: exit status (${r.stderr.trim()})`);
      assert.match(r.stderr, re, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
      await assertNothingLeft(sb);
      assert.deepEqual(JSON.parse(await nspodOk(sb, ['volume', 'ls', '-o', 'json'])), [], `${what}: no volume made`);
      assert.equal(existsSync(path.join(hostDir, 'made')), false, `${what}: no hostPath dir made`);
    }
  });

  it('propagates host mounts into a HostToContainer mount but not into a None one', async () => {
    const dir = await fs.mkdtemp(path.join(sb.root, 'prop-'));
    const sub = path.join(dir, 'sub');
    await fs.mkdir(sub);
    // Kubernetes' requirement for propagation: the host path is on a shared mount.
    const sh = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    };
    sh('mount', ['--bind', dir, dir]);
    try {
      sh('mount', ['--make-shared', dir]);
      await nspodOk(sb, ['play', '-'], {
        input: `apiVersion: v1
kind: Pod
metadata: { name: prop }
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{ name: h, hostPath: { path: ${dir}, type: Directory } }]
  containers:
    - name: main
      image: localhost/busybox:latest
      command: ['sh', '-c', '${LOOP}']
      volumeMounts:
        - { name: h, mountPath: /slave, mountPropagation: HostToContainer }
        - { name: h, mountPath: /private }
`,
      });
      try {
        const pid = await containerPid(sb, 'main');
        assert.equal(mountIn(pid, '/slave/sub'), undefined);
        sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', sub]);
        try {
          const seen = await waitFor('the host mount in the container', () => mountIn(pid, '/slave/sub'), 30_000);
          assert.equal(seen.fstype, 'tmpfs');
          assert.equal(mountIn(pid, '/private/sub'), undefined, 'a None mount does not receive host mounts');
        } finally {
          sh('umount', [sub]);
        }
      } finally {
        await nspodOk(sb, ['rm', '-f', 'prop']);
      }
    } finally {
      sh('umount', [dir]);
    }
    await assertNothingLeft(sb);
  });
});
