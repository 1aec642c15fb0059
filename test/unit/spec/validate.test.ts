import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerSpec, PodSpec } from '../../../src/spec/index.js';
import { LINUX_CAPABILITIES, normalizeCapability, validatePod } from '../../../src/spec/index.js';
import { isNspodError } from '../../../src/errors/index.js';

function ctr(name: string): ContainerSpec {
  return {
    name,
    image: 'busybox',
    env: [],
    ports: [],
    resources: { limits: {}, requests: {} },
    securityContext: { privileged: false, capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false },
    tty: false,
    stdin: false,
  };
}

function pod(): PodSpec {
  return {
    name: 'foo',
    namespace: 'default',
    labels: {},
    annotations: {},
    hostname: 'foo',
    namespaces: { network: 'pod', ipc: 'pod', pid: 'container' },
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    containers: [ctr('app'), ctr('sidecar')],
  };
}

function errorOf(edit: (p: PodSpec) => void): string {
  const p = pod();
  edit(p);
  try {
    validatePod(p);
  } catch (e) {
    assert.ok(isNspodError(e, 'INVALID_ARGUMENT'));
    return e.message;
  }
  assert.fail('expected an error');
}

describe('validatePod', () => {
  it('accepts a valid pod, including a dotted hostname derived from a dotted pod name', () => {
    validatePod(pod());
    const p = pod();
    p.name = 'web.example';
    p.hostname = 'web.example';
    validatePod(p);
  });

  const cases: [string, (p: PodSpec) => void, string][] = [
    ['bad pod name', (p) => (p.name = 'Foo_1'), 'metadata.name: "Foo_1" is not a valid name'],
    ['bad namespace', (p) => (p.namespace = ''), 'metadata.namespace: "" is not a valid name'],
    ['empty uid', (p) => (p.uid = ''), 'metadata.uid: must not be empty'],
    ['bad hostname', (p) => (p.hostname = 'a_b'), 'spec.hostname: "a_b" is not a valid name'],
    ['no containers', (p) => (p.containers = []), 'spec.containers: at least one container is required'],
    ['duplicate container', (p) => (p.containers[1]!.name = 'app'), 'spec.containers[1].name: duplicate name "app"'],
    [
      'bad container name',
      (p) => (p.containers[0]!.name = 'App'),
      'spec.containers[0].name: "App" is not a valid name',
    ],
    ['empty image', (p) => (p.containers[1]!.image = ''), 'spec.containers[1].image: required'],
    [
      'port out of range',
      (p) => (p.containers[0]!.ports = [{ containerPort: 70000, protocol: 'TCP' }]),
      'spec.containers[0].ports[0].containerPort: 70000 is not a valid port (1-65535)',
    ],
    [
      'host port out of range',
      (p) => (p.containers[0]!.ports = [{ containerPort: 80, hostPort: 0, protocol: 'TCP' }]),
      'spec.containers[0].ports[0].hostPort: 0 is not a valid port (1-65535)',
    ],
    [
      'negative memory',
      (p) => (p.containers[0]!.resources.limits.memoryBytes = -1),
      'spec.containers[0].resources.limits.memory: must be a non-negative integer',
    ],
    [
      'request above limit',
      (p) => (p.containers[0]!.resources = { limits: { cpuMilli: 100 }, requests: { cpuMilli: 200 } }),
      'spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit',
    ],
    [
      'capability not normalised',
      (p) => (p.containers[0]!.securityContext.capabilities.add = ['CAP_SYS_ADMIN']),
      'spec.containers[0].securityContext.capabilities.add[0]: "CAP_SYS_ADMIN" must be upper case without CAP_',
    ],
    ['bad restart policy', (p) => (p.restartPolicy = 'Sometimes' as never), 'spec.restartPolicy: "Sometimes" is not'],
    ['negative grace', (p) => (p.terminationGracePeriodSeconds = -1), 'spec.terminationGracePeriodSeconds: must be'],
  ];
  for (const [title, edit, want] of cases) {
    it(title, () => {
      const msg = errorOf(edit);
      assert.ok(msg.startsWith(want), `message ${JSON.stringify(msg)} should start with ${JSON.stringify(want)}`);
    });
  }
});

describe('normalizeCapability', () => {
  it('upper-cases and strips CAP_', () => {
    assert.equal(normalizeCapability('cap_net_admin', 'f'), 'NET_ADMIN');
    assert.equal(normalizeCapability('CAP_SYS_TIME', 'f'), 'SYS_TIME');
    assert.equal(normalizeCapability('Chown', 'f'), 'CHOWN');
    assert.equal(normalizeCapability('all', 'f'), 'ALL');
  });
  it('knows all 41 Linux capabilities', () => {
    assert.equal(LINUX_CAPABILITIES.length, 41);
    assert.equal(LINUX_CAPABILITIES[40], 'CHECKPOINT_RESTORE');
    assert.equal(new Set(LINUX_CAPABILITIES).size, 41);
  });
  it('rejects unknown names with the field', () => {
    assert.throws(() => normalizeCapability('NET_WIZARD', 'x.add[0]'), {
      message: 'x.add[0]: unknown capability "NET_WIZARD"',
    });
  });
});
