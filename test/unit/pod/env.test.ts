import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { expand, resolveContainer, resourceValue } from '../../../src/pod/env.js';
import type { PodFacts, ConfigLookup } from '../../../src/pod/env.js';
import { parsePodYaml } from '../../../src/spec/index.js';
import { isNspodError } from '../../../src/errors/index.js';

describe('$(VAR) expansion', () => {
  const vars = new Map([
    ['A', 'one'],
    ['B', '$(A)'],
    ['EMPTY', ''],
  ]);
  const cases: Array<[string, string]> = [
    ['$(A)', 'one'],
    ['x$(A)y$(A)', 'xoneyone'],
    ['$(B)', '$(A)'], // not expanded twice
    ['$(EMPTY)|', '|'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$one'],
    ['$$', '$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['trailing $', 'trailing $'],
    ['$()', '$()'],
    ['', ''],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => assert.equal(expand(input, vars), want));
  }
});

describe('resolveContainer', () => {
  const text = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg, namespace: ns1 }
data: { a: from-cfg, b: B }
---
apiVersion: v1
kind: Secret
metadata: { name: sec, namespace: ns1 }
stringData: { token: t0k }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: ns1, labels: { app: web }, annotations: { note: hi } }
spec:
  serviceAccountName: robot
  containers:
    - name: app
      image: busybox
      command: ['echo', '$(A)', '$$(A)']
      args: ['$(MISSING)', '$(POD)']
      resources: { limits: { cpu: 1500m, memory: 100Mi }, requests: { memory: 10Mi } }
      envFrom:
        - configMapRef: { name: cfg }
        - { secretRef: { name: sec }, prefix: S_ }
        - { configMapRef: { name: absent, optional: true } }
      env:
        - { name: b, value: "overridden-$(b)" }
        - { name: A, valueFrom: { configMapKeyRef: { name: cfg, key: a } } }
        - { name: TOKEN, valueFrom: { secretKeyRef: { name: sec, key: token } } }
        - { name: OPT, valueFrom: { secretKeyRef: { name: sec, key: nope, optional: true } } }
        - { name: POD, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
        - { name: NS, valueFrom: { fieldRef: { fieldPath: metadata.namespace } } }
        - { name: UID, valueFrom: { fieldRef: { fieldPath: metadata.uid } } }
        - { name: LABEL, valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }
        - { name: NOTE, valueFrom: { fieldRef: { fieldPath: "metadata.annotations['note']" } } }
        - { name: SA, valueFrom: { fieldRef: { fieldPath: spec.serviceAccountName } } }
        - { name: NODE, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
        - { name: IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
        - { name: IPS, valueFrom: { fieldRef: { fieldPath: status.podIPs } } }
        - { name: HOSTIP, valueFrom: { fieldRef: { fieldPath: status.hostIP } } }
        - { name: CPU, valueFrom: { resourceFieldRef: { resource: limits.cpu } } }
        - { name: CPUM, valueFrom: { resourceFieldRef: { resource: limits.cpu, divisor: 1m } } }
        - { name: MEM, valueFrom: { resourceFieldRef: { resource: requests.memory, divisor: 1Mi } } }
        - { name: MEMB, valueFrom: { resourceFieldRef: { resource: limits.memory } } }
        - { name: SIDE, valueFrom: { resourceFieldRef: { resource: limits.cpu, containerName: side } } }
        - { name: LATE, value: "$(POD).$(NS)" }
    - name: side
      image: busybox
`;
  const { pods } = parsePodYaml(text);
  const pod = pods[0]!;
  const facts: PodFacts = {
    name: 'web',
    namespace: 'ns1',
    uid: 'u-1',
    labels: pod.labels,
    annotations: pod.annotations,
    serviceAccountName: 'robot',
    podIP: '10.88.0.5',
    podIPs: '10.88.0.5,fd00::5',
    nodeName: 'node1',
    hostIP: '192.0.2.1',
  };
  const lookup: ConfigLookup = (kind, name) =>
    Promise.resolve(pod.configObjects?.find((o) => o.kind === kind && o.name === name));

  it('resolves every source in Kubernetes order and expands command and args', async () => {
    const c = await resolveContainer({ pod, container: pod.containers[0]!, path: 'spec.containers[0]', facts, lookup });
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    assert.deepEqual(env, {
      a: 'from-cfg',
      b: 'overridden-B',
      S_token: 't0k',
      A: 'from-cfg',
      TOKEN: 't0k',
      POD: 'web',
      NS: 'ns1',
      UID: 'u-1',
      LABEL: 'web',
      NOTE: 'hi',
      SA: 'robot',
      NODE: 'node1',
      IP: '10.88.0.5',
      IPS: '10.88.0.5,fd00::5',
      HOSTIP: '192.0.2.1',
      CPU: '2',
      CPUM: '1500',
      MEM: '10',
      MEMB: String(100 * 1024 * 1024),
      SIDE: String(os.cpus().length),
      LATE: 'web.ns1',
    });
    assert.deepEqual(c.command, ['echo', 'from-cfg', '$(A)']);
    assert.deepEqual(c.args, ['$(MISSING)', 'web']);
    assert.equal(c.envFrom, undefined);
  });

  it('refuses a missing object or key without optional, naming the field', async () => {
    const base = pod.containers[0]!;
    const bad = [
      {
        ...base,
        env: [{ name: 'X', value: '', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'zz', optional: false } } }],
      },
      {
        ...base,
        env: [{ name: 'X', value: '', valueFrom: { secretKeyRef: { name: 'nosec', key: 'k', optional: false } } }],
      },
      { ...base, env: [], envFrom: [{ kind: 'configMap' as const, name: 'absent', prefix: '', optional: false }] },
    ];
    const want = [
      /^spec\.containers\[0\]\.env\[0\]\.valueFrom\.configMapKeyRef\.key: configmap "cfg" has no key "zz"$/,
      /^spec\.containers\[0\]\.env\[0\]\.valueFrom\.secretKeyRef\.name: secret "nosec" not found in namespace "ns1"$/,
      /^spec\.containers\[0\]\.envFrom\[0\]\.configMapRef\.name: configmap "absent" not found/,
    ];
    for (const [i, container] of bad.entries()) {
      await assert.rejects(
        resolveContainer({ pod, container, path: 'spec.containers[0]', facts, lookup }),
        (e) => isNspodError(e, 'NOT_FOUND') && want[i]!.test(e.message),
      );
    }
  });

  it('takes node capacity for an unset limit and 0 for an unset request', () => {
    const c = pod.containers[1]!;
    assert.equal(resourceValue(c, 'limits.memory', 1), String(os.totalmem()));
    assert.equal(resourceValue(c, 'requests.cpu', 1), '0');
  });
});
