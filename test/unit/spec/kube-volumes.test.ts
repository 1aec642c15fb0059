import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePodYaml } from '../../../src/spec/index.js';

const head = `apiVersion: v1
kind: Pod
metadata: { name: foo, labels: { app: web } }
spec:
`;

function parse(body: string) {
  return parsePodYaml(head + body);
}

function errorOf(text: string): string {
  try {
    parsePodYaml(text);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected an error');
}

const ctr = (extra = '') => `  containers:
    - name: app
      image: busybox
${extra}`;

describe('spec.volumes and volumeMounts', () => {
  it('reads every supported source with Kubernetes defaults', () => {
    const { pods } = parse(`  volumes:
    - name: a
      emptyDir: {}
    - name: b
      emptyDir: { medium: Memory, sizeLimit: 64Mi }
    - name: c
      hostPath: { path: /srv/data/, type: DirectoryOrCreate }
    - name: d
      configMap: { name: cfg, items: [{ key: k, path: sub/k.txt, mode: 0600 }] }
    - name: e
      secret: { secretName: sec, defaultMode: 0400, optional: true }
    - name: f
      persistentVolumeClaim: { claimName: data, readOnly: true }
${ctr(`      volumeMounts:
        - { name: a, mountPath: /a/ }
        - { name: b, mountPath: /b, readOnly: true, subPath: x/y, mountPropagation: HostToContainer }`)}`);
    const p = pods[0]!;
    assert.deepEqual(
      p.volumes?.map((v) => v.source),
      [
        { emptyDir: { medium: '' } },
        { emptyDir: { medium: 'Memory', sizeLimitBytes: 64 * 1024 * 1024 } },
        { hostPath: { path: '/srv/data', type: 'DirectoryOrCreate' } },
        {
          configMap: {
            name: 'cfg',
            items: [{ key: 'k', path: 'sub/k.txt', mode: 0o600 }],
            defaultMode: 0o644,
            optional: false,
          },
        },
        { secret: { secretName: 'sec', defaultMode: 0o400, optional: true } },
        { persistentVolumeClaim: { claimName: 'data', readOnly: true } },
      ],
    );
    assert.deepEqual(p.containers[0]!.volumeMounts, [
      { name: 'a', mountPath: '/a', readOnly: false, propagation: 'None' },
      { name: 'b', mountPath: '/b', readOnly: true, subPath: 'x/y', propagation: 'HostToContainer' },
    ]);
  });

  it('reads 0644 as octal like kubectl, and 0o644 and 420 too', () => {
    for (const mode of ['0644', '0o644', '420']) {
      const { pods } = parse(`  volumes: [{ name: a, configMap: { name: c, defaultMode: ${mode} } }]\n${ctr()}`);
      const src = pods[0]!.volumes![0]!.source;
      assert.ok('configMap' in src);
      assert.equal(src.configMap.defaultMode, 0o644, mode);
    }
    // other integers are unchanged
    const { pods } = parse(`  terminationGracePeriodSeconds: 010\n${ctr()}`);
    assert.equal(pods[0]!.terminationGracePeriodSeconds, 8);
  });

  it('refuses bad volumes and mounts naming the field', () => {
    const cases: Array<[string, RegExp]> = [
      [
        `${ctr('      volumeMounts: [{ name: x, mountPath: /x }]')}`,
        /^spec\.containers\[0\]\.volumeMounts\[0\]\.name: no volume named "x"/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: {} }]\n${ctr('      volumeMounts: [{ name: v, mountPath: /x, subPath: a/../../b }]')}`,
        /^spec\.containers\[0\]\.volumeMounts\[0\]\.subPath: "a\/..\/..\/b" must not contain '..'/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: {} }]\n${ctr('      volumeMounts: [{ name: v, mountPath: /x, subPath: /etc }]')}`,
        /subPath: "\/etc" must be a relative path/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: {} }]\n${ctr('      volumeMounts: [{ name: v, mountPath: rel }]')}`,
        /mountPath: "rel" must be an absolute path/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: {}, hostPath: { path: /x } }]\n${ctr()}`,
        /^spec\.volumes\[0\]\.hostPath: may not be specified together with emptyDir/,
      ],
      [`  volumes: [{ name: v }]\n${ctr()}`, /^spec\.volumes\[0\]: one volume source is required/],
      [
        `  volumes: [{ name: v, nfs: { server: x, path: / } }]\n${ctr()}`,
        /^spec\.volumes\[0\]\.nfs: this volume source is not supported/,
      ],
      [
        `  volumes: [{ name: v, hostPath: { path: /x, type: Dir } }]\n${ctr()}`,
        /^spec\.volumes\[0\]\.hostPath\.type: "Dir" is not one of/,
      ],
      [`  volumes: [{ name: v, hostPath: { path: x } }]\n${ctr()}`, /hostPath\.path: "x" must be an absolute path/],
      [
        `  volumes: [{ name: v, emptyDir: {} }, { name: v, emptyDir: {} }]\n${ctr()}`,
        /^spec\.volumes\[1\]\.name: duplicate volume name "v"/,
      ],
      [
        `  volumes: [{ name: v, configMap: { name: c, defaultMode: 01777 } }]\n${ctr()}`,
        /defaultMode: 1023 is out of range \(0-511\)/,
      ],
      [
        `  volumes: [{ name: v, configMap: { name: c, items: [{ key: k, path: ../x }] } }]\n${ctr()}`,
        /items\[0\]\.path: "..\/x" must not contain '..'/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: { medium: Disk } }]\n${ctr()}`,
        /emptyDir\.medium: "Disk" is not "" or Memory/,
      ],
      [
        `  volumes: [{ name: v, configMap: { name: c, items: [{ key: k, path: a }, { key: l, path: a/b }] } }]\n${ctr()}`,
        /^spec\.volumes\[0\]\.configMap\.items\[1\]\.path: "a\/b" is inside "a" \(items\[0\]\)/,
      ],
      [
        `  volumes: [{ name: v, emptyDir: {} }]\n${ctr('      volumeMounts: [{ name: v, mountPath: /x, mountPropagation: Bidirectional }]')}`,
        /mountPropagation: Bidirectional is only allowed in privileged containers/,
      ],
    ];
    for (const [body, re] of cases) assert.match(errorOf(head + body), re, body);
  });
});

describe('downwardAPI volumes', () => {
  it('reads fieldRef and resourceFieldRef items', () => {
    const { pods } = parse(`  volumes:
    - name: info
      downwardAPI:
        defaultMode: 0440
        items:
          - { path: labels, fieldRef: { fieldPath: metadata.labels } }
          - { path: app, fieldRef: { fieldPath: "metadata.labels['app']" }, mode: 0400 }
          - { path: cpu, resourceFieldRef: { containerName: app, resource: limits.cpu, divisor: 1m } }
${ctr()}`);
    assert.deepEqual(pods[0]!.volumes![0]!.source, {
      downwardAPI: {
        defaultMode: 0o440,
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'app', fieldRef: { fieldPath: "metadata.labels['app']" }, mode: 0o400 },
          { path: 'cpu', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu', divisor: 1 } },
        ],
      },
    });
  });

  it('refuses what a volume cannot project, naming the field', () => {
    const cases: Array<[string, RegExp]> = [
      [
        '{ path: ip, fieldRef: { fieldPath: status.podIP } }',
        /items\[0\]\.fieldRef\.fieldPath: "status.podIP" is not supported/,
      ],
      [
        '{ path: c, resourceFieldRef: { resource: limits.cpu } }',
        /items\[0\]\.resourceFieldRef\.containerName: required in a volume/,
      ],
      [
        '{ path: c, resourceFieldRef: { containerName: x, resource: limits.cpu } }',
        /^spec\.volumes\[0\]\.downwardAPI\.items\[0\]\.resourceFieldRef\.containerName: no container named "x"/,
      ],
      ['{ path: ../c, fieldRef: { fieldPath: metadata.name } }', /items\[0\]\.path: "..\/c" must not contain '..'/],
      ['{ path: c }', /items\[0\]: one of fieldRef or resourceFieldRef is required/],
    ];
    for (const [item, re] of cases) {
      assert.match(errorOf(`${head}  volumes: [{ name: v, downwardAPI: { items: [${item}] } }]\n${ctr()}`), re, item);
    }
  });
});

describe('env valueFrom and envFrom', () => {
  it('reads every source', () => {
    const { pods } = parse(
      ctr(`      env:
        - { name: A, valueFrom: { configMapKeyRef: { name: cfg, key: a } } }
        - { name: B, valueFrom: { secretKeyRef: { name: sec, key: b, optional: true } } }
        - { name: C, valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }
        - { name: D, valueFrom: { resourceFieldRef: { resource: limits.cpu, divisor: 1m } } }
        - { name: E, valueFrom: { resourceFieldRef: { resource: requests.memory, divisor: 1Mi } } }
      envFrom:
        - { configMapRef: { name: cfg }, prefix: CFG_ }
        - secretRef: { name: sec, optional: true }`),
    );
    const c = pods[0]!.containers[0]!;
    assert.deepEqual(
      c.env.map((e) => e.valueFrom),
      [
        { configMapKeyRef: { name: 'cfg', key: 'a', optional: false } },
        { secretKeyRef: { name: 'sec', key: 'b', optional: true } },
        { fieldRef: { fieldPath: "metadata.labels['app']" } },
        { resourceFieldRef: { resource: 'limits.cpu', divisor: 1 } },
        { resourceFieldRef: { resource: 'requests.memory', divisor: 1048576 } },
      ],
    );
    assert.deepEqual(c.envFrom, [
      { kind: 'configMap', name: 'cfg', prefix: 'CFG_', optional: false },
      { kind: 'secret', name: 'sec', prefix: '', optional: true },
    ]);
  });

  it('refuses bad references naming the field', () => {
    const cases: Array<[string, RegExp]> = [
      [
        '      env: [{ name: A, value: x, valueFrom: { fieldRef: { fieldPath: metadata.name } } }]',
        /env\[0\]\.valueFrom: may not be set together with value/,
      ],
      [
        '      env: [{ name: A, valueFrom: { fieldRef: { fieldPath: spec.foo } } }]',
        /env\[0\]\.valueFrom\.fieldRef\.fieldPath: "spec.foo" is not supported/,
      ],
      ['      env: [{ name: A, valueFrom: { configMapKeyRef: { name: c } } }]', /configMapKeyRef\.key: required/],
      [
        '      env: [{ name: A, valueFrom: { configMapKeyRef: { name: c, key: "a b" } } }]',
        /configMapKeyRef\.key: "a b" is not a valid key/,
      ],
      ['      env: [{ name: A, valueFrom: {} }]', /env\[0\]\.valueFrom: one of configMapKeyRef/],
      [
        '      env: [{ name: A, valueFrom: { resourceFieldRef: { resource: limits.gpu } } }]',
        /resourceFieldRef\.resource: "limits.gpu" is not supported/,
      ],
      [
        '      env: [{ name: A, valueFrom: { resourceFieldRef: { resource: limits.cpu, containerName: nope } } }]',
        /resourceFieldRef\.containerName: no container named "nope"/,
      ],
      ['      envFrom: [{ prefix: X }]', /envFrom\[0\]: one of configMapRef or secretRef is required/],
    ];
    for (const [extra, re] of cases) assert.match(errorOf(head + ctr(extra)), re, extra);
  });
});

describe('ConfigMap and Secret documents', () => {
  it('go with the pods of their namespace; data, binaryData, stringData (wins) as base64', () => {
    const text = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { a: hello }
binaryData: { bin: AAEC }
---
apiVersion: v1
kind: Secret
metadata: { name: sec }
data: { p: c2VjcmV0, q: b2xk }
stringData: { q: new }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: other, namespace: elsewhere }
data: { a: b }
---
${head}${ctr()}`;
    const { pods, warnings } = parsePodYaml(text);
    assert.deepEqual(warnings, []);
    assert.deepEqual(pods[0]!.configObjects, [
      { kind: 'ConfigMap', name: 'cfg', namespace: 'default', data: { a: 'aGVsbG8=', bin: 'AAEC' } },
      { kind: 'Secret', name: 'sec', namespace: 'default', data: { p: 'c2VjcmV0', q: 'bmV3' } },
    ]);
  });

  it('refuses bad documents naming the document and field', () => {
    const pod = `---\n${head}${ctr()}`;
    assert.match(
      errorOf(`apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata: { p: "not base64!" }\n${pod}`),
      /^document 1: data\.p: is not valid base64/,
    );
    assert.match(
      errorOf(`apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\ndata: { "bad key": x }\n${pod}`),
      /^document 1: data\["bad key"\]: "bad key" is not a valid key/,
    );
    assert.match(
      errorOf(`apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\ndata: { n: 3 }\n${pod}`),
      /data\.n: must be a string/,
    );
  });
});
