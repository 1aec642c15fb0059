import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { parsePodYaml } from '../../../src/spec/index.js';

type Obj = Record<string, unknown>;

function pod(app: Obj, extra: Obj = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'app', image: 'busybox', ...app }], ...extra },
  });
}

function err(text: string): string {
  try {
    parsePodYaml(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('probes, lifecycle, init containers', () => {
  it('fills Kubernetes defaults', () => {
    const { pods } = parsePodYaml(pod({ livenessProbe: { httpGet: { port: 8080 } } }));
    assert.deepEqual(pods[0]!.containers[0]!.livenessProbe, {
      handler: { kind: 'httpGet', path: '/', port: 8080, scheme: 'HTTP', headers: [] },
      initialDelaySeconds: 0,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });

  it('reads every handler', () => {
    const c = parsePodYaml(
      pod({
        ports: [{ name: 'web', containerPort: 80 }],
        readinessProbe: {
          httpGet: { path: 'healthz', port: 'web', scheme: 'HTTPS', httpHeaders: [{ name: 'X-A', value: 'b' }] },
          successThreshold: 2,
        },
        livenessProbe: { tcpSocket: { port: 'web' }, periodSeconds: 3 },
        startupProbe: { grpc: { port: 9000, service: 'svc' }, failureThreshold: 30 },
        lifecycle: { preStop: { sleep: { seconds: 2 } }, postStart: { exec: { command: ['touch', '/x'] } } },
      }),
    ).pods[0]!.containers[0]!;
    assert.deepEqual(c.readinessProbe?.handler, {
      kind: 'httpGet',
      path: '/healthz',
      port: 'web',
      scheme: 'HTTPS',
      headers: [{ name: 'X-A', value: 'b' }],
    });
    assert.equal(c.readinessProbe?.successThreshold, 2);
    assert.deepEqual(c.livenessProbe?.handler, { kind: 'tcpSocket', port: 'web' });
    assert.deepEqual(c.startupProbe?.handler, { kind: 'grpc', port: 9000, service: 'svc' });
    assert.deepEqual(c.lifecycle, {
      postStart: { kind: 'exec', command: ['touch', '/x'] },
      preStop: { kind: 'sleep', seconds: 2 },
    });
  });

  it('names the bad field', () => {
    assert.match(err(pod({ livenessProbe: {} })), /^spec\.containers\[0\]\.livenessProbe: must have one handler/);
    assert.match(
      err(pod({ livenessProbe: { exec: { command: ['x'] }, tcpSocket: { port: 1 } } })),
      /livenessProbe: must have exactly one handler, got exec and tcpSocket/,
    );
    assert.match(
      err(pod({ livenessProbe: { exec: { command: ['x'] }, successThreshold: 2 } })),
      /livenessProbe\.successThreshold: must be 1 for a livenessProbe/,
    );
    assert.match(
      err(pod({ readinessProbe: { httpGet: { port: 'nope' } } })),
      /httpGet\.port: "nope" is not the name of one of the container's ports/,
    );
    assert.match(
      err(pod({ readinessProbe: { httpGet: { port: 70000 } } })),
      /httpGet\.port: 70000 is not a port number/,
    );
    assert.match(err(pod({ readinessProbe: { grpc: { port: 'x' } } })), /grpc\.port: must be an integer/);
    assert.match(
      err(pod({ readinessProbe: { exec: { command: ['x'] }, periodSeconds: 0 } })),
      /periodSeconds: 0 is out of range/,
    );
    assert.match(err(pod({ lifecycle: { preStop: { grpc: { port: 1 } } } })), /preStop\.grpc: is not allowed here/);
    assert.match(
      err(pod({ restartPolicy: 'Always' })),
      /spec\.containers\[0\]\.restartPolicy: may only be set on init containers/,
    );
  });

  it('reads init containers and native sidecars', () => {
    const { pods } = parsePodYaml(
      pod(
        {},
        {
          initContainers: [
            { name: 'setup', image: 'busybox' },
            {
              name: 'side',
              image: 'busybox',
              restartPolicy: 'Always',
              readinessProbe: { exec: { command: ['true'] } },
            },
          ],
        },
      ),
    );
    const inits = pods[0]!.initContainers!;
    assert.deepEqual(
      inits.map((c) => [c.name, c.restartPolicy]),
      [
        ['setup', undefined],
        ['side', 'Always'],
      ],
    );
    assert.match(
      err(pod({}, { initContainers: [{ name: 'app', image: 'busybox' }] })),
      /spec\.initContainers\[0\]\.name: duplicate name "app"|duplicate name/,
    );
    assert.match(
      err(pod({}, { initContainers: [{ name: 'i', image: 'busybox', livenessProbe: { exec: { command: ['x'] } } }] })),
      /spec\.initContainers\[0\]\.livenessProbe: may not be set for init containers without restartPolicy: Always/,
    );
  });
});
