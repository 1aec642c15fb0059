import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { podHosts, podResolvConf } from '../../../src/network/index.js';

describe('pod name files', () => {
  it('hosts maps localhost and the pod hostname', () => {
    const h = podHosts({ hostname: 'foo' });
    assert.match(h, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(h, /^127\.0\.1\.1\tfoo$/m);
    assert.match(podHosts({ hostname: 'foo', ip: '10.88.0.5' }), /^10\.88\.0\.5\tfoo$/m);
    assert.match(podHosts({ hostname: 'foo', extra: [{ ip: '1.2.3.4', names: ['a', 'b'] }] }), /^1\.2\.3\.4\ta b$/m);
  });

  it('resolv.conf drops loopback nameservers a pod cannot reach, unless on the host network', () => {
    const host = 'search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions ndots:2\n';
    const pod = podResolvConf(host, false);
    assert.doesNotMatch(pod, /127\.0\.0\.53/);
    assert.match(pod, /nameserver 192\.0\.2\.1/);
    assert.match(pod, /search example\.org/);
    assert.match(podResolvConf(host, true), /127\.0\.0\.53/);
  });
});
