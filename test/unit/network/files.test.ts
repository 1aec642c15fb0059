import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { podHosts } from '../../../src/network/index.js';
import { resolvConfFor } from '../../../src/spec/kube-network.js';
import type { DnsSpec } from '../../../src/spec/types.js';

describe('pod name files', () => {
  it('hosts maps localhost and the pod hostname, then the host aliases', () => {
    const h = podHosts({ hostname: 'foo' });
    assert.match(h, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(h, /^127\.0\.1\.1\tfoo$/m);
    assert.match(podHosts({ hostname: 'foo', ip: '10.88.0.5' }), /^10\.88\.0\.5\tfoo$/m);
    const aliased = podHosts({ hostname: 'foo', hostAliases: [{ ip: '1.2.3.4', hostnames: ['a', 'b'] }] });
    assert.match(aliased, /^1\.2\.3\.4\ta\tb$/m);
  });

  it('resolv.conf drops loopback nameservers a pod cannot reach, unless on the host network', () => {
    const host = 'search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions ndots:2\n';
    const pod = resolvConfFor(undefined, host, false);
    assert.doesNotMatch(pod, /127\.0\.0\.53/);
    assert.match(pod, /nameserver 192\.0\.2\.1/);
    assert.match(pod, /search example\.org/);
    assert.match(pod, /options ndots:2/);
    assert.match(resolvConfFor(undefined, host, true), /127\.0\.0\.53/);
  });

  it('dnsConfig adds to the host resolvers; dnsPolicy None uses only dnsConfig', () => {
    const host = 'search example.org\nnameserver 192.0.2.1\noptions ndots:2 edns0\n';
    const dns: DnsSpec = {
      policy: 'ClusterFirst',
      nameservers: ['192.0.2.9'],
      searches: ['ns1.svc.local'],
      options: [{ name: 'ndots', value: '5' }, { name: 'single-request' }],
    };
    const merged = resolvConfFor(dns, host, false);
    assert.match(merged, /^search ns1\.svc\.local example\.org$/m);
    assert.match(merged, /^nameserver 192\.0\.2\.1\nnameserver 192\.0\.2\.9$/m);
    assert.match(merged, /^options ndots:5 edns0 single-request$/m);
    const only = resolvConfFor({ ...dns, policy: 'None' }, host, false);
    assert.doesNotMatch(only, /192\.0\.2\.1\b/);
    assert.match(only, /^nameserver 192\.0\.2\.9$/m);
    assert.match(only, /^search ns1\.svc\.local$/m);
  });
});
