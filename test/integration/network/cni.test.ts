/**
 * Pod networking on the real CNI plugins (bridge, host-local, portmap, firewall, bandwidth), each
 * test on its sandbox's own bridge and subnet. What is checked is read from the system: addresses
 * inside the pod's netns, veths on the bridge, host-local's reservation files, iptables rules, tc.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  makeSandbox,
  destroySandbox,
  nspod,
  nspodOk,
  waitFor,
  cliPath,
  mountsContaining,
  nsInode,
} from '../helpers.js';
import type { Sandbox } from '../helpers.js';

interface PodJson {
  id: string;
  name: string;
  ip?: string;
  sandboxPid?: number;
  containers: Array<{ name: string; pid?: number; state: string }>;
}

function podYaml(name: string, o: { spec?: string; ports?: string; annotations?: string; cmd?: string } = {}): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
${o.annotations ? `  annotations:\n${o.annotations}\n` : ''}spec:
  terminationGracePeriodSeconds: 2
${o.spec ?? ''}
  containers:
    - name: app
      image: localhost/busybox:latest
      command: [sh, -c, ${JSON.stringify(o.cmd ?? `mkdir -p /w && echo "hello from ${name}" > /w/index.html && exec httpd -f -p 80 -h /w`)}]
${o.ports ?? ''}
`;
}

async function play(sb: Sandbox, yaml: string): Promise<void> {
  await nspodOk(sb, ['play', '-'], { input: yaml });
}

async function pod(sb: Sandbox, name: string): Promise<PodJson> {
  const list = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as PodJson[];
  const p = list.find((x) => x.name === name);
  if (!p) throw new Error(`pod ${name} not listed`);
  return p;
}

/** IPv4 addresses of eth0 as the pod's own network namespace has them. */
function addrsInPod(pid: number): string[] {
  const out = execFileSync('nsenter', [
    `--net=/proc/${pid}/ns/net`,
    'ip',
    '-4',
    '-o',
    'addr',
    'show',
    'dev',
    'eth0',
  ]).toString();
  return [...out.matchAll(/inet (\S+)\//g)].map((m) => m[1]!);
}

function vethsOn(bridge: string): string[] {
  if (!existsSync(`/sys/class/net/${bridge}/brif`)) return [];
  return readdirSync(`/sys/class/net/${bridge}/brif`);
}

/** IPs reserved in the sandbox network's host-local store. */
function reserved(sb: Sandbox): string[] {
  const d = path.join(sb.net.ipamDir, sb.net.name);
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}

function iptablesRulesFor(prefix: string): string[] {
  const rules: string[] = [];
  for (const table of ['filter', 'nat']) {
    const out = execFileSync('iptables', ['-t', table, '-S']).toString();
    rules.push(...out.split('\n').filter((l) => l.includes(`${prefix}.`)));
  }
  return rules;
}

async function execIn(sb: Sandbox, podName: string, args: string[]): Promise<string> {
  return nspodOk(sb, ['exec', podName, '--', ...args]);
}

async function assertNothingLeft(sb: Sandbox): Promise<void> {
  assert.deepEqual(vethsOn(sb.net.bridge), [], 'no veth left on the bridge');
  assert.deepEqual(reserved(sb), [], 'no IP left reserved in host-local');
  assert.deepEqual(iptablesRulesFor(sb.net.prefix), [], 'no iptables rule left for the subnet');
  assert.deepEqual(
    mountsContaining(sb.runRoot).filter((m) => m.includes('/ns/')),
    [],
    'no pinned netns left',
  );
  assert.deepEqual(
    readdirSync(path.join(sb.root, 'cni', 'results')).filter((f) => !f.includes('.tmp-')),
    [],
    'no cached attachment left',
  );
}

describe('pod networking', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
    await fs.mkdir(path.join(sb.root, 'cni', 'results'), { recursive: true });
  });
  after(() => destroySandbox(sb));

  it('two pods get different IPs of the subnet, reach each other and the host bridge address', async () => {
    await play(sb, podYaml('a'));
    await play(sb, podYaml('b'));
    const a = await pod(sb, 'a');
    const b = await pod(sb, 'b');
    const ipA = addrsInPod(a.sandboxPid!);
    const ipB = addrsInPod(b.sandboxPid!);
    assert.equal(ipA.length, 1);
    assert.equal(ipB.length, 1);
    assert.notEqual(ipA[0], ipB[0]);
    for (const ip of [ipA[0]!, ipB[0]!]) assert.ok(ip.startsWith(`${sb.net.prefix}.`), `${ip} in ${sb.net.subnet}`);
    assert.equal(a.ip, ipA[0], 'nspod reports the address the netns has');
    // The app container's own process is in the pod's netns.
    assert.equal(nsInode(a.containers[0]!.pid!, 'net'), nsInode(a.sandboxPid!, 'net'));
    assert.equal(vethsOn(sb.net.bridge).length, 2);

    const page = await execIn(sb, 'a', ['wget', '-qO-', `http://${ipB[0]}/`]);
    assert.equal(page.trim(), 'hello from b');

    // The host's bridge address: a server the test runs on it.
    const gw = `${sb.net.prefix}.1`;
    const server = http.createServer((_q, r) => r.end('hello from the host'));
    await new Promise<void>((r) => server.listen(0, gw, r));
    try {
      const port = (server.address() as { port: number }).port;
      const got = await execIn(sb, 'b', ['wget', '-qO-', `http://${gw}:${port}/`]);
      assert.equal(got.trim(), 'hello from the host');
    } finally {
      server.close();
    }
    const shown = await nspodOk(sb, ['inspect', 'pod', 'a']);
    assert.match(shown, new RegExp(`eth0 .*${ipA[0]!.replace(/\./g, '\\.')}/24`));
    assert.match(await nspodOk(sb, ['network', 'check', 'a']), /1 attachment OK/);
    await nspodOk(sb, ['rm', '-f', 'a']);
    await nspodOk(sb, ['rm', '-f', 'b']);
    await assertNothingLeft(sb);
  });

  it('hostPort publishes on 127.0.0.1 and the bridge IP; the same port twice is refused with nothing made', async () => {
    const ports = `      ports:\n        - containerPort: 80\n          hostPort: 18080`;
    await play(sb, podYaml('web', { ports }));
    try {
      const get = (host: string) =>
        new Promise<string>((resolve, reject) => {
          http
            .get({ host, port: 18080, path: '/', timeout: 5000 }, (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      assert.equal((await get('127.0.0.1')).trim(), 'hello from web');
      assert.equal((await get(`${sb.net.prefix}.1`)).trim(), 'hello from web');
      const ruleCount = iptablesRulesFor(sb.net.prefix).length;
      const r = await nspod(sb, ['play', '-'], { input: podYaml('web2', { ports }) });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /hostPort 18080\/tcp is already published by pod "web"/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      const names = (JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as PodJson[]).map((p) => p.name);
      assert.deepEqual(names, ['web']);
      assert.equal(vethsOn(sb.net.bridge).length, 1);
      assert.equal(reserved(sb).length, 1);
      assert.equal(iptablesRulesFor(sb.net.prefix).length, ruleCount);
    } finally {
      await nspodOk(sb, ['rm', '-f', 'web']);
    }
    await assertNothingLeft(sb);
  });

  it('stop releases the network; rm after the network config is gone still releases it (from the cache)', async () => {
    await play(sb, podYaml('s'));
    assert.equal(reserved(sb).length, 1);
    await nspodOk(sb, ['stop', 's']);
    assert.deepEqual(reserved(sb), [], 'IP released on stop');
    assert.deepEqual(vethsOn(sb.net.bridge), []);
    assert.equal((await pod(sb, 's')).ip, undefined);
    await nspodOk(sb, ['rm', 's']);

    const conf = path.join(sb.net.configDir, '10-test.conflist');
    const saved = await fs.readFile(conf);
    await play(sb, podYaml('c'));
    assert.equal(reserved(sb).length, 1);
    await fs.rm(conf);
    try {
      await nspodOk(sb, ['rm', '-f', 'c']);
    } finally {
      await fs.writeFile(conf, saved);
    }
    await assertNothingLeft(sb);
  });

  it('bandwidth annotations shape the pod veth with tbf', async () => {
    await play(sb, podYaml('bw', { annotations: '    kubernetes.io/ingress-bandwidth: 10M' }));
    try {
      const [veth] = vethsOn(sb.net.bridge);
      const qd = execFileSync('tc', ['qdisc', 'show', 'dev', veth!]).toString();
      assert.match(qd, /tbf .*rate 10Mbit/);
    } finally {
      await nspodOk(sb, ['rm', '-f', 'bw']);
    }
    await assertNothingLeft(sb);
  });
});

describe('name files and host network', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
  });
  after(() => destroySandbox(sb));

  it('hostAliases, dnsConfig and the pod IP land in /etc/hosts and /etc/resolv.conf', async () => {
    const spec = `  hostAliases:
    - ip: 192.0.2.10
      hostnames: [db, db.example]
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [svc.example]
    options: [{name: ndots, value: "3"}]`;
    await play(sb, podYaml('dns', { spec, cmd: 'trap "exit 0" TERM; while true; do sleep 1; done' }));
    try {
      const p = await pod(sb, 'dns');
      const hosts = await execIn(sb, 'dns', ['cat', '/etc/hosts']);
      assert.match(hosts, /^192\.0\.2\.10\tdb\tdb\.example$/m);
      assert.match(hosts, new RegExp(`^${p.ip!.replace(/\./g, '\\.')}\\tdns$`, 'm'));
      const resolv = await execIn(sb, 'dns', ['cat', '/etc/resolv.conf']);
      assert.deepEqual(
        resolv.split('\n').filter((l) => l && !l.startsWith('#')),
        ['search svc.example', 'nameserver 192.0.2.53', 'options ndots:3'],
      );
    } finally {
      await nspodOk(sb, ['rm', '-f', 'dns']);
    }
  });

  it("a hostNetwork pod is in the host's network namespace and gets no CNI attachment", async () => {
    await play(
      sb,
      podYaml('hn', { spec: '  hostNetwork: true', cmd: 'trap "exit 0" TERM; while true; do sleep 1; done' }),
    );
    try {
      const p = await pod(sb, 'hn');
      assert.equal(nsInode(p.containers[0]!.pid!, 'net'), nsInode('self', 'net'));
      const links = await execIn(sb, 'hn', ['ip', '-o', 'link']);
      assert.match(links, new RegExp(`: ${sb.net.bridge}[:@]`), 'sees the host bridge');
      assert.equal(p.ip, undefined);
      assert.deepEqual(vethsOn(sb.net.bridge), []);
    } finally {
      await nspodOk(sb, ['rm', '-f', 'hn']);
    }
  });
});

describe('many pods and failures', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox();
    await fs.mkdir(path.join(sb.root, 'cni', 'results'), { recursive: true });
  });
  after(() => destroySandbox(sb));

  it('20 pods started at once get 20 distinct IPs, all released after removal', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const cmd = 'trap "exit 0" TERM; while true; do sleep 1; done';
    try {
      const results = await Promise.all(names.map((n) => nspod(sb, ['play', '-'], { input: podYaml(n, { cmd }) })));
      results.forEach((r, i) => assert.equal(r.code, 0, `pod ${names[i]}: ${r.stderr}`));
      const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as PodJson[];
      const ips = pods.map((p) => addrsInPod(p.sandboxPid!)[0]);
      assert.equal(new Set(ips).size, 20, `distinct: ${ips.join(' ')}`);
      assert.equal(reserved(sb).length, 20);
      assert.equal(vethsOn(sb.net.bridge).length, 20);
    } finally {
      await Promise.all(names.map((n) => nspod(sb, ['rm', '-f', n])));
    }
    await assertNothingLeft(sb);
  });

  it('a plugin failure fails the pod with the plugin message and leaves nothing', async () => {
    const bad = {
      cniVersion: '1.0.0',
      name: 'broken',
      plugins: [
        {
          type: 'bridge',
          bridge: sb.net.bridge,
          isGateway: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: sb.net.subnet }]], dataDir: sb.net.ipamDir },
        },
        { type: 'tuning', sysctl: { 'net.ipv4.no_such_sysctl': '1' } },
      ],
    };
    await fs.writeFile(path.join(sb.net.configDir, '20-broken.conflist'), JSON.stringify(bad));
    try {
      const r = await nspod(sb, ['play', '-'], {
        input: podYaml('bad', { annotations: '    nspod.io/networks: broken' }),
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /CNI plugin tuning ADD failed \(network "broken"\): .*no_such_sysctl/);
      assert.deepEqual(JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])), []);
      assert.deepEqual(vethsOn(sb.net.bridge), []);
      assert.deepEqual(
        readdirSync(path.join(sb.net.ipamDir, 'broken')).filter((f) => /^\d/.test(f)),
        [],
      );
    } finally {
      await fs.rm(path.join(sb.net.configDir, '20-broken.conflist'));
    }
    await assertNothingLeft(sb);
  });

  it('nspod killed during a pod start: rm -f afterwards leaves no veth, netns or IP reservation', async () => {
    const child = spawn(process.execPath, [cliPath, 'play', '-'], { env: sb.env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.end(podYaml('k', { cmd: 'sleep 1000' }));
    const exited = new Promise((r) => child.on('exit', r));
    // Kill it as soon as host-local has reserved the IP: CNI ADD is under way or just done.
    await waitFor('an IP reservation', () => reserved(sb).length === 1, 30_000);
    child.kill('SIGKILL');
    await exited;
    await nspodOk(sb, ['rm', '-f', 'k']);
    await assertNothingLeft(sb);
    await nspodOk(sb, ['network', 'prune']);
  });
});
