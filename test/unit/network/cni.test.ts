import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CniClient,
  bandwidthOf,
  bridgeConfList,
  checkHostPorts,
  loadNetworks,
  parseNetworkFile,
  portMappingsOf,
  writeNetwork,
  PodNetworks,
} from '../../../src/network/cni/index.js';
import type { ConfList } from '../../../src/network/cni/index.js';
import { parsePodYaml } from '../../../src/spec/index.js';

/**
 * Fake plugins: shell scripts that append "<type> <command> <env…>" and their stdin to a log, and
 * print a result that names themselves (so prevResult chaining is visible).
 */
async function fakePlugins(dir: string, log: string): Promise<void> {
  const script = (type: string, extra = '') => `#!/bin/sh
input=$(cat)
printf '%s\\n' "${type} $CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS $CNI_ARGS" >> ${log}
printf '%s\\n' "$input" >> ${log}.stdin
${extra}
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
  ADD) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"br0"},{"name":"'"$CNI_IFNAME"'","sandbox":"'"$CNI_NETNS"'","mac":"aa:bb:cc:dd:ee:ff"}],"ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":1}],"routes":[{"dst":"0.0.0.0/0"}],"by":"${type}"}' ;;
esac
`;
  await fs.writeFile(path.join(dir, 'first'), script('first'), { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'second'), script('second'), { mode: 0o755 });
  await fs.writeFile(
    path.join(dir, 'failing'),
    script(
      'failing',
      `[ "$CNI_COMMAND" = ADD ] && { echo '{"code":11,"msg":"no more addresses","details":"range is full"}'; exit 1; }`,
    ),
    { mode: 0o755 },
  );
}

const list = (plugins: string[]): ConfList => ({
  cniVersion: '1.0.0',
  name: 'testnet',
  plugins: plugins.map((type) => ({ type, ...(type === 'second' ? { capabilities: { portMappings: true } } : {}) })),
});

describe('CNI client', () => {
  let dir: string;
  let log: string;
  let client: CniClient;
  const att = {
    containerId: 'c0ffee',
    netns: '/run/netns/x',
    ifName: 'eth0',
    args: [['K8S_POD_NAME', 'foo'] as [string, string], ['K8S_POD_NAMESPACE', 'default'] as [string, string]],
    capabilityArgs: {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }],
      bandwidth: { ingressRate: 1000 },
    },
  };
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-cni-'));
    await fs.mkdir(path.join(dir, 'bin'));
    log = path.join(dir, 'calls.log');
    await fakePlugins(path.join(dir, 'bin'), log);
    client = new CniClient({
      pluginDirs: [path.join(dir, 'nowhere'), path.join(dir, 'bin')],
      cacheDir: path.join(dir, 'cache'),
    });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const calls = async () => (await fs.readFile(log, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
  const inputs = async () =>
    (await fs.readFile(`${log}.stdin`, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const reset = async () => {
    await fs.rm(log, { force: true });
    await fs.rm(`${log}.stdin`, { force: true });
  };

  it('ADD runs the plugins in order with CNI_* variables, prevResult and only declared capabilities', async () => {
    await reset();
    const r = await client.add(list(['first', 'second']), att);
    assert.deepEqual(await calls(), [
      'first ADD c0ffee eth0 /run/netns/x K8S_POD_NAME=foo;K8S_POD_NAMESPACE=default',
      'second ADD c0ffee eth0 /run/netns/x K8S_POD_NAME=foo;K8S_POD_NAMESPACE=default',
    ]);
    const [a, b] = await inputs();
    assert.equal(a!['name'], 'testnet');
    assert.equal(a!['cniVersion'], '1.0.0');
    assert.equal(a!['prevResult'], undefined);
    assert.equal(a!['runtimeConfig'], undefined, 'first declares no capability');
    assert.equal((b!['prevResult'] as { by: string }).by, 'first');
    assert.deepEqual(b!['runtimeConfig'], { portMappings: att.capabilityArgs.portMappings });
    assert.equal((r as { by?: string }).by, 'second');
    const cached = await client.readCache('testnet', 'c0ffee', 'eth0');
    assert.equal(cached?.result?.ips?.[0]?.address, '10.1.2.3/24');
  });

  it('DEL runs in reverse with the cached result, from the cached config, then drops the cache', async () => {
    await reset();
    await client.del('testnet', { ...att, args: [], capabilityArgs: {} });
    assert.deepEqual(
      (await calls()).map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['second DEL', 'first DEL'],
    );
    const [s] = await inputs();
    assert.equal((s!['prevResult'] as { by: string }).by, 'second');
    assert.deepEqual(
      s!['runtimeConfig'],
      { portMappings: att.capabilityArgs.portMappings },
      'capabilities from the cache',
    );
    assert.equal(await client.readCache('testnet', 'c0ffee', 'eth0'), undefined);
  });

  it("a failed ADD reports the plugin's message and leaves a cache entry that DEL can use", async () => {
    await reset();
    await assert.rejects(
      client.add(list(['first', 'failing', 'second']), att),
      /CNI plugin failing ADD failed \(network "testnet"\): no more addresses: range is full/,
    );
    const cached = await client.readCache('testnet', 'c0ffee', 'eth0');
    assert.ok(cached && !cached.result, 'cached before ADD, without a result');
    await reset();
    await client.del('testnet', att);
    assert.deepEqual(
      (await calls()).map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['second DEL', 'failing DEL', 'first DEL'],
    );
  });

  it('VERSION lists the supported versions; validate names an unsupported cniVersion and a missing plugin', async () => {
    assert.deepEqual(await client.version('first'), ['0.4.0', '1.0.0']);
    const problems = await client.validate({ ...list(['first', 'absent']), cniVersion: '0.3.1' });
    assert.match(problems[0]!, /plugin first does not support cniVersion 0\.3\.1/);
    assert.match(problems[1]!, /CNI plugin "absent" not found/);
  });

  it('PodNetworks.attach records the pod IP and detach DELs every attachment after the config is gone', async () => {
    await reset();
    const confDir = path.join(dir, 'net.d');
    await fs.mkdir(confDir, { recursive: true });
    await fs.writeFile(path.join(confDir, '10-a.conflist'), JSON.stringify({ ...list(['first']), name: 'a' }));
    await fs.writeFile(path.join(confDir, '20-b.conflist'), JSON.stringify({ ...list(['second']), name: 'b' }));
    const nets = new PodNetworks({
      configDir: confDir,
      pluginDirs: [path.join(dir, 'bin')],
      cacheDir: path.join(dir, 'cache2'),
    });
    const st = await nets.attach({
      sandboxId: 'sb1',
      podName: 'p',
      namespace: 'ns',
      netns: '/x',
      networks: ['a', 'b'],
      portMappings: [],
    });
    assert.deepEqual(
      st.attachments.map((x) => [x.network, x.ifName, x.ip, x.gateway, x.mac]),
      [
        ['a', 'eth0', '10.1.2.3', '10.1.2.1', 'aa:bb:cc:dd:ee:ff'],
        ['b', 'eth1', '10.1.2.3', '10.1.2.1', 'aa:bb:cc:dd:ee:ff'],
      ],
    );
    assert.match((await calls())[0]!, /K8S_POD_INFRA_CONTAINER_ID=sb1/);
    await fs.rm(confDir, { recursive: true });
    await reset();
    await nets.detach('sb1', '');
    assert.deepEqual(
      (await calls()).map((l) => l.split(' ').slice(0, 3).join(' ')),
      ['second DEL sb1', 'first DEL sb1'],
    );
    assert.deepEqual(await nets.client.cached('sb1'), []);
  });
});

describe('CNI network configs', () => {
  it('refuses broken conflists naming the file and field', () => {
    assert.throws(() => parseNetworkFile('/d/x.conflist', '{'), /\/d\/x\.conflist: not valid JSON/);
    assert.throws(
      () => parseNetworkFile('/d/x.conflist', JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] })),
      /\/d\/x\.conflist: plugins: at least one plugin/,
    );
    assert.throws(
      () =>
        parseNetworkFile(
          '/d/x.conflist',
          JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../sh' }] }),
        ),
      /plugins\.0\.type: a plugin binary name/,
    );
    const single = parseNetworkFile(
      '/d/y.conf',
      JSON.stringify({ cniVersion: '0.4.0', name: 's', type: 'bridge', bridge: 'b0' }),
    );
    assert.deepEqual(single.plugins, [{ type: 'bridge', bridge: 'b0' }]);
  });

  it('writes bridge networks, refuses duplicate names and bridges and bad subnets', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-netd-'));
    try {
      await writeNetwork(dir, bridgeConfList({ name: 'one', bridge: 'br-one', subnet: '10.89.214.0/24' }));
      await assert.rejects(
        writeNetwork(dir, bridgeConfList({ name: 'one', bridge: 'x', subnet: '10.1.0.0/16' })),
        /network "one" already exists/,
      );
      await assert.rejects(
        writeNetwork(dir, bridgeConfList({ name: 'two', bridge: 'br-one', subnet: '10.1.0.0/16' })),
        /bridge "br-one" is already used by network "one"/,
      );
      assert.throws(
        () => bridgeConfList({ name: 'x', bridge: 'b', subnet: '10.1.2.3/24' }),
        /--subnet: 10\.1\.2\.3\/24 has host bits set/,
      );
      assert.throws(
        () => bridgeConfList({ name: 'x', bridge: 'b', subnet: '10.1.2/24' }),
        /--subnet: expected an IPv4 subnet/,
      );
      assert.throws(
        () => bridgeConfList({ name: 'x', bridge: 'a-very-long-bridge-name', subnet: '10.1.0.0/16' }),
        /--bridge: .*at most 15 characters/,
      );
      const nets = await loadNetworks(dir);
      assert.deepEqual(
        nets.map((n) => n.name),
        ['one'],
      );
      assert.deepEqual(
        nets[0]!.conf.plugins.map((p) => p.type),
        ['bridge', 'portmap', 'firewall', 'bandwidth'],
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ports, bandwidth and DNS fields', () => {
  const pod = (extra: string) =>
    parsePodYaml(`apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    kubernetes.io/ingress-bandwidth: 10M
spec:
${extra}
  containers:
    - name: a
      image: busybox
      ports:
        - {containerPort: 80, hostPort: 8080}
        - {containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 127.0.0.1}
`).pods[0]!;

  it('port mappings and bandwidth come from the pod', () => {
    const p = pod('');
    assert.deepEqual(portMappingsOf(p.containers), [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ]);
    assert.deepEqual(bandwidthOf(p.annotations), { ingressRate: 10_000_000, ingressBurst: 2147483647 });
    assert.throws(
      () => bandwidthOf({ 'kubernetes.io/egress-bandwidth': 'fast' }),
      /egress-bandwidth"\]: expected a rate/,
    );
  });

  it('host port conflicts: within the pod, with another pod, with a host listener', async () => {
    const m = portMappingsOf(pod('').containers);
    await assert.rejects(checkHostPorts([m[0]!, m[0]!], [], []), /hostPort 8080\/tcp is asked for twice/);
    await assert.rejects(
      checkHostPorts(
        m,
        [{ pod: 'other', mappings: [{ hostPort: 8080, containerPort: 1, protocol: 'tcp', hostIP: '10.0.0.1' }] }],
        [],
      ),
      /hostPort 8080\/tcp is already published by pod "other"/,
    );
    await checkHostPorts(m, [{ pod: 'other', mappings: [{ hostPort: 8080, containerPort: 1, protocol: 'udp' }] }], []);
    await checkHostPorts(
      m,
      [{ pod: 'o', mappings: [{ hostPort: 5353, containerPort: 1, protocol: 'udp', hostIP: '127.0.0.2' }] }],
      [],
    );
    await assert.rejects(checkHostPorts(m, [], [{ protocol: 'tcp', ip: '0.0.0.0', port: 8080 }]), /in use on the host/);
  });

  it('hostAliases and dnsConfig are read and checked', () => {
    const p = pod(`  hostAliases:
    - {ip: 192.0.2.1, hostnames: [a, b.example]}
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [svc.local]
    options: [{name: ndots, value: "2"}, {name: edns0}]`);
    assert.deepEqual(p.hostAliases, [{ ip: '192.0.2.1', hostnames: ['a', 'b.example'] }]);
    assert.deepEqual(p.dns, {
      policy: 'None',
      nameservers: ['192.0.2.53'],
      searches: ['svc.local'],
      options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }],
    });
    assert.throws(
      () => pod('  hostAliases: [{ip: nope, hostnames: [a]}]'),
      /spec\.hostAliases\[0\]\.ip: "nope" is not an IP address/,
    );
    assert.throws(() => pod('  dnsPolicy: None'), /spec\.dnsConfig: dnsPolicy None needs dnsConfig\.nameservers/);
    assert.throws(() => pod('  dnsPolicy: Cluster'), /spec\.dnsPolicy: "Cluster" is not one of/);
    assert.throws(
      () => pod('  dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}'),
      /spec\.dnsConfig\.nameservers: at most 3 nameservers/,
    );
  });
});
