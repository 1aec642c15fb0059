import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parsePodYaml } from '../../../src/spec/index.js';
import { isNspodError } from '../../../src/errors/index.js';

type Obj = Record<string, unknown>;

/** A minimal valid pod as plain data; tests mutate a fresh copy and stringify it. */
function base(): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'foo' },
    spec: {
      containers: [
        { name: 'app', image: 'localhost/busybox:latest' },
        { name: 'sidecar', image: 'localhost/busybox:latest' },
      ],
    },
  };
}

function spec(p: Obj): Obj {
  return p['spec'] as Obj;
}
function container(p: Obj, i: number): Obj {
  return (spec(p)['containers'] as Obj[])[i]!;
}

function parse(p: Obj | string): ReturnType<typeof parsePodYaml> {
  return parsePodYaml(typeof p === 'string' ? p : stringify(p));
}

function errorOf(p: Obj | string): string {
  try {
    parse(p);
  } catch (e) {
    assert.ok(isNspodError(e, 'INVALID_ARGUMENT'), `expected INVALID_ARGUMENT, got ${String(e)}`);
    return e.message;
  }
  assert.fail('expected an error');
}

/** Applies `edit` to a fresh base pod. */
function edited(edit: (p: Obj) => void): Obj {
  const p = base();
  edit(p);
  return p;
}

describe('parsePodYaml: defaults', () => {
  it('fills Kubernetes defaults', () => {
    const { pods, warnings } = parse(base());
    assert.deepEqual(warnings, []);
    assert.equal(pods.length, 1);
    const pod = pods[0]!;
    assert.equal(pod.name, 'foo');
    assert.equal(pod.namespace, 'default');
    assert.equal(pod.uid, undefined);
    assert.deepEqual(pod.labels, {});
    assert.deepEqual(pod.annotations, {});
    assert.equal(pod.hostname, 'foo');
    assert.deepEqual(pod.namespaces, { network: 'pod', ipc: 'pod', pid: 'container' });
    assert.equal(pod.restartPolicy, 'Always');
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.deepEqual(pod.containers[0], {
      name: 'app',
      image: 'localhost/busybox:latest',
      env: [],
      ports: [],
      resources: { limits: {}, requests: {} },
      securityContext: { privileged: false, capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false },
      tty: false,
      stdin: false,
    });
  });

  it('truncates a long pod name to 63 characters for the hostname, without a trailing dash', () => {
    const name = `${'a'.repeat(62)}-${'b'.repeat(10)}`;
    const pod = parse(edited((p) => ((p['metadata'] as Obj)['name'] = name))).pods[0]!;
    assert.equal(pod.hostname, 'a'.repeat(62));
  });

  it('defaults requests to limits, keeping explicit requests', () => {
    const pod = parse(
      edited((p) => {
        container(p, 0)['resources'] = { limits: { memory: '256Mi', cpu: '500m' } };
        container(p, 1)['resources'] = { limits: { memory: '128Mi', cpu: 1 }, requests: { cpu: '100m' } };
      }),
    ).pods[0]!;
    assert.deepEqual(pod.containers[0]!.resources, {
      limits: { memoryBytes: 268435456, cpuMilli: 500 },
      requests: { memoryBytes: 268435456, cpuMilli: 500 },
    });
    assert.deepEqual(pod.containers[1]!.resources, {
      limits: { memoryBytes: 134217728, cpuMilli: 1000 },
      requests: { memoryBytes: 134217728, cpuMilli: 100 },
    });
  });
});

describe('parsePodYaml: fields', () => {
  it('reads every supported field', () => {
    const text = `
apiVersion: v1
kind: Pod
metadata:
  name: web.example
  namespace: team-a
  uid: 0b6f7c2e-1111-2222-3333-444455556666
  labels: { app: web, app.kubernetes.io/name: web, empty: "" }
  annotations: { note: "any text: at all" }
spec:
  hostname: webhost
  hostNetwork: true
  hostIPC: true
  shareProcessNamespace: true
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 0
  containers:
    - name: app
      image: nginx:1.27
      command: [nginx]
      args: ["-g", "daemon off;"]
      workingDir: /srv
      env:
        - { name: MODE, value: prod }
        - { name: EMPTY }
      ports:
        - { containerPort: 8080, hostPort: 8080, hostIP: 127.0.0.1, protocol: UDP, name: http }
        - { containerPort: 9090 }
      resources:
        requests: { memory: 64Mi, cpu: 0.25 }
        limits: { memory: 1.5Gi, cpu: "2" }
      securityContext:
        runAsUser: 1000
        runAsGroup: 0
        privileged: false
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: { add: [cap_net_admin, SYS_TIME, Net_Raw, NET_ADMIN], drop: [ALL] }
      tty: true
      stdin: true
`;
    const { pods, warnings } = parsePodYaml(text);
    assert.deepEqual(warnings, []);
    const pod = pods[0]!;
    assert.equal(pod.name, 'web.example');
    assert.equal(pod.namespace, 'team-a');
    assert.equal(pod.uid, '0b6f7c2e-1111-2222-3333-444455556666');
    assert.deepEqual(pod.labels, { app: 'web', 'app.kubernetes.io/name': 'web', empty: '' });
    assert.deepEqual(pod.annotations, { note: 'any text: at all' });
    assert.equal(pod.hostname, 'webhost');
    assert.deepEqual(pod.namespaces, { network: 'node', ipc: 'node', pid: 'pod' });
    assert.equal(pod.restartPolicy, 'OnFailure');
    assert.equal(pod.terminationGracePeriodSeconds, 0);
    assert.deepEqual(pod.containers[0], {
      name: 'app',
      image: 'nginx:1.27',
      command: ['nginx'],
      args: ['-g', 'daemon off;'],
      workingDir: '/srv',
      env: [
        { name: 'MODE', value: 'prod' },
        { name: 'EMPTY', value: '' },
      ],
      ports: [
        { containerPort: 8080, hostPort: 8080, hostIP: '127.0.0.1', protocol: 'UDP', name: 'http' },
        { containerPort: 9090, protocol: 'TCP' },
      ],
      resources: {
        limits: { memoryBytes: 1610612736, cpuMilli: 2000 },
        requests: { memoryBytes: 67108864, cpuMilli: 250 },
      },
      securityContext: {
        runAsUser: 1000,
        runAsGroup: 0,
        privileged: false,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { add: ['NET_ADMIN', 'SYS_TIME', 'NET_RAW'], drop: ['ALL'] },
      },
      tty: true,
      stdin: true,
    });
  });

  it('maps hostPID to a node pid namespace', () => {
    const pod = parse(edited((p) => (spec(p)['hostPID'] = true))).pods[0]!;
    assert.equal(pod.namespaces.pid, 'node');
  });

  it('treats empty (null) fields as absent', () => {
    const text =
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: foo\n  labels:\nspec:\n  restartPolicy:\n  containers:\n    - name: a\n      image: x\n      command:\n      env:\n';
    const pod = parsePodYaml(text).pods[0]!;
    assert.equal(pod.restartPolicy, 'Always');
    assert.equal(pod.containers[0]!.command, undefined);
  });

  it('accepts JSON, which is YAML', () => {
    assert.equal(parse(JSON.stringify(base())).pods[0]!.containers.length, 2);
  });
});

describe('parsePodYaml: warnings for what is not supported yet', () => {
  it('names the path of each unsupported field and still returns the pod', () => {
    const p = edited((p) => {
      (p['metadata'] as Obj)['generateName'] = 'foo-';
      spec(p)['volumes'] = [{ name: 'v', emptyDir: {} }];
      spec(p)['initContainers'] = [];
      spec(p)['nodeSelector'] = { disk: 'ssd' };
      spec(p)['subdomain'] = 'svc';
      p['status'] = { phase: 'Running' }; // output of kubectl get -o yaml: silently ignored
      const c = container(p, 0);
      c['livenessProbe'] = { exec: { command: ['true'] } };
      c['volumeMounts'] = [{ name: 'v', mountPath: '/v' }];
      c['imagePullPolicy'] = 'IfNotPresent';
      c['env'] = [
        { name: 'A', value: '1' },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      ];
      c['resources'] = { limits: { memory: '1Gi', 'ephemeral-storage': '1Gi', 'nvidia.com/gpu': 1 } };
      c['securityContext'] = { runAsNonRoot: true };
      c['ports'] = [{ containerPort: 80, appProtocol: 'http' }];
    });
    const { pods, warnings } = parse(p);
    assert.equal(pods.length, 1);
    assert.deepEqual(pods[0]!.containers[0]!.env, [
      { name: 'A', value: '1' },
      { name: 'POD_IP', value: '', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ]);
    assert.deepEqual(pods[0]!.containers[0]!.resources.limits, { memoryBytes: 1073741824 });
    assert.deepEqual(warnings.sort(), [
      'metadata.generateName: not supported yet, ignored',
      'spec.containers[0].ports[0].appProtocol: not supported yet, ignored',
      'spec.containers[0].resources.limits.ephemeral-storage: not supported yet, ignored',
      'spec.containers[0].resources.limits["nvidia.com/gpu"]: not supported yet, ignored',
      'spec.containers[0].securityContext.runAsNonRoot: not supported yet, ignored',
      'spec.nodeSelector: not supported yet, ignored',
      'spec.subdomain: not supported yet, ignored',
    ]);
  });
});

describe('parsePodYaml: imagePullPolicy', () => {
  it('is read per container, unset when not given', () => {
    const p = base();
    container(p, 0)['imagePullPolicy'] = 'Always';
    const { pods } = parsePodYaml(stringify(p));
    assert.equal(pods[0]!.containers[0]!.imagePullPolicy, 'Always');
    assert.equal(parsePodYaml(stringify(base())).pods[0]!.containers[0]!.imagePullPolicy, undefined);
  });
});

describe('parsePodYaml: multiple documents', () => {
  const cm = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports: []\n';
  const pod = (name: string, extra = ''): string =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: app\n      image: busybox\n${extra}`;

  it('returns every pod, skips other kinds with a warning and ignores empty documents', () => {
    const text = `${pod('a')}---\n${cm}---\n# only a comment\n---\n${pod('b', '      tty: true\n      stdinOnce: true\n')}---\n`;
    const { pods, warnings } = parsePodYaml(text);
    assert.deepEqual(
      pods.map((p) => p.name),
      ['a', 'b'],
    );
    assert.deepEqual(warnings, [
      'document 2: kind Service is not supported yet, skipped',
      'document 4: spec.containers[0].stdinOnce: not supported yet, ignored',
    ]);
  });

  it('prefixes errors with the document number', () => {
    assert.equal(
      errorOf(`${pod('a')}---\n${pod('b').replace('image: busybox', 'image: ""')}`),
      'document 2: spec.containers[0].image: required',
    );
    assert.equal(errorOf(`${pod('a')}---\n${pod('a')}`), 'document 2: metadata.name: duplicate pod "default/a"');
    assert.equal(
      errorOf(`${pod('a')}---\n- 1\n- 2\n`),
      'document 2: must be a mapping with apiVersion, kind, metadata and spec (got a list)',
    );
  });

  it('does not prefix a single document, even with trailing separators', () => {
    assert.equal(errorOf(`---\n${pod('A')}---\n`).startsWith('metadata.name: "A" is not a valid name'), true);
  });

  it('fails when there is no pod at all', () => {
    assert.equal(errorOf(cm), 'no Pod found (expected kind: Pod)');
    assert.equal(errorOf(''), 'no Pod found (expected kind: Pod)');
    assert.throws(() => parsePodYaml('# nothing\n', { source: 'pods.yaml' }), {
      message: 'no Pod found in pods.yaml (expected kind: Pod)',
    });
  });
});

describe('parsePodYaml: YAML syntax errors', () => {
  it('reports one line with line and column', () => {
    const msg = errorOf('apiVersion: v1\nkind: Pod\nmetadata:\n  name: [foo\nspec: {}\n');
    assert.match(msg, /^invalid YAML: .* at line \d+, column \d+$/);
    assert.equal(msg.includes('\n'), false);
  });
  it('names the source and refuses duplicate keys', () => {
    assert.throws(() => parsePodYaml('kind: Pod\nkind: Pod\n', { source: 'pod.yaml' }), {
      message: 'invalid YAML in pod.yaml: Map keys must be unique at line 2, column 1',
    });
  });
});

describe('parsePodYaml: errors', () => {
  const cases: [string, (p: Obj) => void, string][] = [
    ['apiVersion missing', (p) => delete p['apiVersion'], 'apiVersion: required'],
    [
      'apiVersion wrong',
      (p) => (p['apiVersion'] = 'apps/v1'),
      'apiVersion: string "apps/v1" is not supported (expected v1)',
    ],
    ['kind missing', (p) => delete p['kind'], 'kind: required (expected Pod)'],
    ['metadata missing', (p) => delete p['metadata'], 'metadata.name: required'],
    ['metadata a list', (p) => (p['metadata'] = []), 'metadata: must be a mapping (got a list)'],
    ['name missing', (p) => delete (p['metadata'] as Obj)['name'], 'metadata.name: required'],
    [
      'name a number',
      (p) => ((p['metadata'] as Obj)['name'] = 12),
      'metadata.name: must be a string (got number 12; quote it in YAML)',
    ],
    [
      'imagePullPolicy unknown',
      (p) => (container(p, 0)['imagePullPolicy'] = 'Sometimes'),
      'spec.containers[0].imagePullPolicy: "Sometimes" must be Always, IfNotPresent or Never',
    ],
    [
      'name invalid',
      (p) => ((p['metadata'] as Obj)['name'] = 'Foo_1'),
      `metadata.name: "Foo_1" is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)`,
    ],
    [
      'name too long',
      (p) => ((p['metadata'] as Obj)['name'] = 'a'.repeat(254)),
      `metadata.name: "${'a'.repeat(254)}" is not a valid name`,
    ],
    [
      'namespace invalid',
      (p) => ((p['metadata'] as Obj)['namespace'] = 'a.b'),
      'metadata.namespace: "a.b" is not a valid name',
    ],
    [
      'label value a number',
      (p) => ((p['metadata'] as Obj)['labels'] = { version: 2 }),
      'metadata.labels.version: must be a string (got number 2; quote it in YAML)',
    ],
    [
      'label key invalid',
      (p) => ((p['metadata'] as Obj)['labels'] = { 'a b': 'x' }),
      'metadata.labels["a b"]: "a b" is not a valid key',
    ],
    [
      'label value invalid',
      (p) => ((p['metadata'] as Obj)['labels'] = { a: 'x y' }),
      'metadata.labels.a: "x y" is not a valid label value',
    ],
    [
      'annotations a list',
      (p) => ((p['metadata'] as Obj)['annotations'] = ['a']),
      'metadata.annotations: must be a mapping (got a list)',
    ],
    ['spec missing', (p) => delete p['spec'], 'spec.containers: at least one container is required'],
    ['containers empty', (p) => (spec(p)['containers'] = []), 'spec.containers: at least one container is required'],
    [
      'containers a mapping',
      (p) => (spec(p)['containers'] = { app: {} }),
      'spec.containers: must be a list (got a mapping)',
    ],
    [
      'container a string',
      (p) => (spec(p)['containers'] = ['app']),
      'spec.containers[0]: must be a mapping (got string "app")',
    ],
    ['container name missing', (p) => delete container(p, 1)['name'], 'spec.containers[1].name: required'],
    [
      'container name invalid',
      (p) => (container(p, 1)['name'] = 'my.app'),
      'spec.containers[1].name: "my.app" is not a valid name',
    ],
    [
      'container name duplicate',
      (p) => (container(p, 1)['name'] = 'app'),
      'spec.containers[1].name: duplicate name "app"',
    ],
    ['image missing', (p) => delete container(p, 0)['image'], 'spec.containers[0].image: required'],
    ['image empty', (p) => (container(p, 0)['image'] = ' '), 'spec.containers[0].image: required'],
    [
      'image with space',
      (p) => (container(p, 0)['image'] = 'a b'),
      'spec.containers[0].image: "a b" must not contain whitespace',
    ],
    [
      'command a string',
      (p) => (container(p, 0)['command'] = 'sleep 1'),
      'spec.containers[0].command: must be a list (got string "sleep 1")',
    ],
    [
      'command with a number',
      (p) => (container(p, 0)['command'] = ['sleep', 3]),
      'spec.containers[0].command[1]: must be a string (got number 3; quote it in YAML)',
    ],
    [
      'args with a boolean',
      (p) => (container(p, 0)['args'] = [true]),
      'spec.containers[0].args[0]: must be a string (got boolean true; quote it in YAML)',
    ],
    [
      'env not a list',
      (p) => (container(p, 0)['env'] = { A: '1' }),
      'spec.containers[0].env: must be a list (got a mapping)',
    ],
    [
      'env name missing',
      (p) => (container(p, 0)['env'] = [{ value: 'x' }]),
      'spec.containers[0].env[0].name: required',
    ],
    [
      'env name with =',
      (p) => (container(p, 0)['env'] = [{ name: 'A=B' }]),
      'spec.containers[0].env[0].name: "A=B" is not a valid variable name',
    ],
    [
      'env value a number',
      (p) => (container(p, 0)['env'] = [{ name: 'PORT', value: 8080 }]),
      'spec.containers[0].env[0].value: must be a string (got number 8080; quote it in YAML)',
    ],
    [
      'env value and valueFrom',
      (p) => (container(p, 0)['env'] = [{ name: 'A', value: 'x', valueFrom: {} }]),
      'spec.containers[0].env[0].valueFrom: may not be set together with value',
    ],
    [
      'workingDir relative',
      (p) => (container(p, 0)['workingDir'] = 'srv'),
      'spec.containers[0].workingDir: "srv" must be an absolute path',
    ],
    [
      'containerPort missing',
      (p) => (container(p, 0)['ports'] = [{ name: 'http' }]),
      'spec.containers[0].ports[0].containerPort: required',
    ],
    [
      'containerPort 0',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 0 }]),
      'spec.containers[0].ports[0].containerPort: 0 is out of range (1-65535)',
    ],
    [
      'containerPort too big',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 65536 }]),
      'spec.containers[0].ports[0].containerPort: 65536 is out of range (1-65535)',
    ],
    [
      'containerPort a string',
      (p) => (container(p, 0)['ports'] = [{ containerPort: '80' }]),
      'spec.containers[0].ports[0].containerPort: must be an integer (got string "80")',
    ],
    [
      'containerPort fractional',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 80.5 }]),
      'spec.containers[0].ports[0].containerPort: must be an integer (got number 80.5)',
    ],
    [
      'hostPort too big',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 80, hostPort: 70000 }]),
      'spec.containers[0].ports[0].hostPort: 70000 is out of range (0-65535)',
    ],
    [
      'hostIP invalid',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 80, hostIP: 'localhost' }]),
      'spec.containers[0].ports[0].hostIP: "localhost" is not an IP address',
    ],
    [
      'protocol invalid',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 80, protocol: 'tcp' }]),
      'spec.containers[0].ports[0].protocol: "tcp" is not TCP, UDP or SCTP',
    ],
    [
      'port name invalid',
      (p) => (container(p, 0)['ports'] = [{ containerPort: 80, name: 'Http' }]),
      'spec.containers[0].ports[0].name: "Http" is not a valid port name',
    ],
    [
      'port name duplicate',
      (p) =>
        (container(p, 0)['ports'] = [
          { containerPort: 80, name: 'web' },
          { containerPort: 81, name: 'web' },
        ]),
      'spec.containers[0].ports[1].name: duplicate port name "web"',
    ],
    [
      'hostPort duplicate across containers',
      (p) => {
        container(p, 0)['ports'] = [{ containerPort: 80, hostPort: 8080 }];
        container(p, 1)['ports'] = [{ containerPort: 81, hostPort: 8080 }];
      },
      'spec.containers[1].ports[0].hostPort: duplicate host port 8080/TCP',
    ],
    [
      'hostPort differs from containerPort with hostNetwork',
      (p) => {
        spec(p)['hostNetwork'] = true;
        container(p, 0)['ports'] = [{ containerPort: 80, hostPort: 8080 }];
      },
      'spec.containers[0].ports[0].hostPort: must equal containerPort (80) with hostNetwork',
    ],
    [
      'memory quantity invalid',
      (p) => (container(p, 1)['resources'] = { limits: { memory: '256Mx' } }),
      'spec.containers[1].resources.limits.memory: invalid quantity "256Mx" (expected e.g. 128Mi, 1G, 500m)',
    ],
    [
      'cpu quantity negative',
      (p) => (container(p, 0)['resources'] = { requests: { cpu: -1 } }),
      'spec.containers[0].resources.requests.cpu: invalid quantity "-1"',
    ],
    [
      'quantity a list',
      (p) => (container(p, 0)['resources'] = { limits: { cpu: [1] } }),
      'spec.containers[0].resources.limits.cpu: must be a quantity (got a list)',
    ],
    [
      'limits a string',
      (p) => (container(p, 0)['resources'] = { limits: '1Gi' }),
      'spec.containers[0].resources.limits: must be a mapping (got string "1Gi")',
    ],
    [
      'request above limit',
      (p) => (container(p, 0)['resources'] = { limits: { memory: '1Gi' }, requests: { memory: '2Gi' } }),
      'spec.containers[0].resources.requests.memory: must be less than or equal to the memory limit',
    ],
    [
      'runAsUser negative',
      (p) => (container(p, 0)['securityContext'] = { runAsUser: -1 }),
      'spec.containers[0].securityContext.runAsUser: -1 is out of range (0-2147483647)',
    ],
    [
      'runAsGroup a string',
      (p) => (container(p, 0)['securityContext'] = { runAsGroup: 'wheel' }),
      'spec.containers[0].securityContext.runAsGroup: must be an integer (got string "wheel")',
    ],
    [
      'privileged a string',
      (p) => (container(p, 0)['securityContext'] = { privileged: 'true' }),
      'spec.containers[0].securityContext.privileged: must be true or false (got string "true")',
    ],
    [
      'unknown capability',
      (p) => (container(p, 0)['securityContext'] = { capabilities: { add: ['NET_ADMIN', 'CAP_FLY'] } }),
      'spec.containers[0].securityContext.capabilities.add[1]: unknown capability "CAP_FLY"',
    ],
    [
      'capabilities not a list',
      (p) => (container(p, 0)['securityContext'] = { capabilities: { drop: 'ALL' } }),
      'spec.containers[0].securityContext.capabilities.drop: must be a list (got string "ALL")',
    ],
    [
      'privileged without escalation',
      (p) => (container(p, 0)['securityContext'] = { privileged: true, allowPrivilegeEscalation: false }),
      'spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false when privileged is true',
    ],
    [
      'tty a number',
      (p) => (container(p, 0)['tty'] = 1),
      'spec.containers[0].tty: must be true or false (got number 1)',
    ],
    [
      'hostPID and shareProcessNamespace',
      (p) => Object.assign(spec(p), { hostPID: true, shareProcessNamespace: true }),
      'spec.shareProcessNamespace: cannot be true together with hostPID',
    ],
    [
      'hostNetwork a string',
      (p) => (spec(p)['hostNetwork'] = 'yes'),
      'spec.hostNetwork: must be true or false (got string "yes")',
    ],
    ['hostname invalid', (p) => (spec(p)['hostname'] = 'web.host'), 'spec.hostname: "web.host" is not a valid name'],
    [
      'restartPolicy invalid',
      (p) => (spec(p)['restartPolicy'] = 'always'),
      'spec.restartPolicy: "always" is not Always, OnFailure or Never',
    ],
    [
      'grace negative',
      (p) => (spec(p)['terminationGracePeriodSeconds'] = -5),
      'spec.terminationGracePeriodSeconds: -5 is out of range',
    ],
    [
      'grace fractional',
      (p) => (spec(p)['terminationGracePeriodSeconds'] = 1.5),
      'spec.terminationGracePeriodSeconds: must be an integer (got number 1.5)',
    ],
  ];
  for (const [title, edit, want] of cases) {
    it(title, () => {
      const msg = errorOf(edited(edit));
      assert.ok(msg.startsWith(want), `message ${JSON.stringify(msg)} should start with ${JSON.stringify(want)}`);
      assert.equal(msg.includes('\n'), false);
    });
  }

  it('reports the first error only', () => {
    const msg = errorOf(
      edited((p) => {
        delete container(p, 0)['image'];
        container(p, 1)['name'] = 'app';
      }),
    );
    assert.equal(msg, 'spec.containers[0].image: required');
  });
});

describe('examples/pod.yaml', () => {
  it('parses with no warnings into the two-container pod foo', () => {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
    const file = join(dir, 'examples', 'pod.yaml');
    const { pods, warnings } = parsePodYaml(readFileSync(file, 'utf8'), { source: file });
    assert.deepEqual(warnings, []);
    assert.equal(pods.length, 1);
    const pod = pods[0]!;
    assert.equal(pod.name, 'foo');
    assert.deepEqual(
      pod.containers.map((c) => [c.name, c.image, c.resources.limits]),
      [
        ['app', 'localhost/busybox:latest', { memoryBytes: 256 * 2 ** 20, cpuMilli: 500 }],
        ['sidecar', 'localhost/busybox:latest', { memoryBytes: 128 * 2 ** 20, cpuMilli: 250 }],
      ],
    );
    assert.deepEqual(pod.containers[0]!.ports, [{ containerPort: 80, protocol: 'TCP' }]);
    assert.match(pod.containers[0]!.command!.join(' '), /httpd -f -v -p 80 -h \/www/);
  });
});
