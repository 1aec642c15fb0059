/**
 * The supervisor with real containers, checked from what the containers wrote (conmon's log
 * timestamps), /proc and the cgroup files: restart policies and back-off, probes, init containers
 * and native sidecars, preStop and the grace period, OOM. Back-off base 1 s (NSPOD_BACKOFF_BASE_MS).
 * Every wait polls a real condition with a long timeout; nothing asserts durations.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { makeSandbox, destroySandbox, nspod, nspodOk, waitFor, alive, memoryHierarchy, pureV2 } from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import { container, describePod, firstTime, logLines, readPid, supervisedEnv } from './sup-helpers.js';

const LONG = 120_000;

const crashYaml = `
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: side
    image: busybox
    restartPolicy: Always
    command: [sh, -c, 'echo start; exit 1']
  containers:
  - name: ok
    image: busybox
    command: [sh, -c, 'echo once; exit 0']
  - name: app
    image: busybox
    command: [sh, -c, 'echo up; exec sleep 100000']
`;

const probeYaml = `
apiVersion: v1
kind: Pod
metadata: {name: probes}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sick
    image: busybox
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      printf '#!/bin/sh\\nprintf "Status: 500 Internal Server Error\\\\r\\\\nContent-Type: text/plain\\\\r\\\\n\\\\r\\\\nsick\\\\n"\\n' > /www/cgi-bin/health
      chmod +x /www/cgi-bin/health
      echo start
      exec httpd -f -p 8081 -h /www
    livenessProbe:
      httpGet: {path: /cgi-bin/health, port: 8081}
      periodSeconds: 1
      failureThreshold: 2
  - name: web
    image: busybox
    ports: [{name: http, containerPort: 8082}]
    command: [sh, -c, 'mkdir -p /www && echo ok > /www/ready.html && exec httpd -f -p 8082 -h /www']
    lifecycle:
      postStart:
        exec: {command: [sh, -c, 'echo poststart > /proc/1/fd/1']}
    readinessProbe:
      httpGet: {path: /ready.html, port: http}
      periodSeconds: 1
      failureThreshold: 1
  - name: slow
    image: busybox
    command: [sh, -c, 'echo start; exec sleep 100000']
    startupProbe:
      exec: {command: [test, -e, /tmp/started]}
      periodSeconds: 1
      failureThreshold: 600
    livenessProbe:
      tcpSocket: {port: 8083}
      periodSeconds: 1
      failureThreshold: 1
`;

const orderYaml = `
apiVersion: v1
kind: Pod
metadata: {name: order}
spec:
  terminationGracePeriodSeconds: 4
  initContainers:
  - name: init-a
    image: busybox
    command: [sh, -c, 'echo a; sleep 1; echo a-done']
  - name: init-b
    image: busybox
    command: [sh, -c, 'echo b; echo b-done']
  - name: side
    image: busybox
    restartPolicy: Always
    command: [sh, -c, 'trap "echo side-term; exit 0" TERM; echo side-up; while true; do sleep 0.2; done']
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'trap "echo app-term; exit 0" TERM; echo app-up; while true; do sleep 0.2; done']
    lifecycle:
      postStart:
        exec: {command: [sh, -c, 'echo poststart > /proc/1/fd/1']}
      preStop:
        exec: {command: [sh, -c, 'echo prestop > /proc/1/fd/1']}
  - name: stubborn
    image: busybox
    command: [sh, -c, 'trap "echo got-term" TERM; echo stubborn-up; while true; do sleep 0.2; done']
`;

const grpcYaml = `
apiVersion: v1
kind: Pod
metadata: {name: grpc}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sleep, '100000']
    readinessProbe:
      grpc: {port: 9090, service: nspod}
      periodSeconds: 1
      failureThreshold: 1
`;

/** A grpc.health.v1 server answering SERVING for service "nspod" (run inside the pod's netns). */
const healthServer = `
const http2 = require('node:http2');
const s = http2.createServer();
s.on('stream', (stream, h) => {
  const chunks = [];
  stream.on('data', (b) => chunks.push(b));
  stream.on('end', () => {
    const body = Buffer.concat(chunks).subarray(7).toString();
    const ok = h[':path'] === '/grpc.health.v1.Health/Check' && body === 'nspod';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 8, ok ? 1 : 2]));
  });
});
s.listen(9090, '127.0.0.1', () => console.log('listening'));
`;

const oomYaml = `
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: busybox
    command: [sh, -c, 'echo start; dd if=/dev/zero of=/dev/null bs=64M count=4']
    resources:
      limits: {memory: 24Mi}
`;

describe('supervisor', () => {
  let sb: Sandbox;
  const ids: Record<string, string> = {};

  before(async () => {
    sb = supervisedEnv(await makeSandbox());
  });

  after(async () => {
    await destroySandbox(sb);
  });

  it('play starts the daemon once, detached, and says so in one line', async () => {
    const r = await nspod(sb, ['play', '-'], { input: crashYaml });
    assert.equal(r.code, 0, r.stderr);
    const said = r.stderr.split('\n').filter((l) => l.includes('started the nspod supervisor'));
    assert.equal(said.length, 1, r.stderr);
    const pid = readPid(path.join(sb.runRoot, 'supervisor.pid'));
    assert.ok(pid && alive(pid), 'the daemon runs');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmd.includes('serve'), cmd.join(' '));
    // its own session: not in the test's process group
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.equal(Number(session), pid);
    assert.equal(Number(pgrp), pid);
    const again = await nspod(sb, ['play', '-'], { input: oomYaml });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /started the nspod supervisor/);
    assert.equal(readPid(path.join(sb.runRoot, 'supervisor.pid')), pid, 'the same daemon');
    ids.crash = (await describePod(sb, 'crash')).id;
    ids.oom = (await describePod(sb, 'oom')).id;
  });

  it('restarts a failing native sidecar with growing delays and shows CrashLoopBackOff', async () => {
    const d = await waitFor(
      'the sidecar in CrashLoopBackOff after 4 restarts',
      async () => {
        const d = await describePod(sb, 'crash');
        const side = container(d, 'side');
        return side.restartCount >= 4 && side.reason === 'CrashLoopBackOff' ? d : undefined;
      },
      LONG,
    );
    assert.equal(container(d, 'side').lastState?.exitCode, 1);
    assert.equal(container(d, 'side').lastState?.reason, 'Error');
    // Each start wrote "start": the gaps between starts grow (back-off 0, 1, 2, 4 s).
    const starts = logLines(sb, ids.crash!, 'side')
      .filter((l) => l.line === 'start')
      .map((l) => l.t);
    assert.ok(starts.length >= 5, `${starts.length} starts`);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    assert.ok(gaps[3]! > gaps[1]!, `gaps grow: ${gaps.join(', ')} ms`);
    assert.ok(d.events.some((e) => e.reason === 'BackOff' && e.container === 'side'));
  });

  it('OnFailure does not restart an exit 0, and the pod keeps its app running', async () => {
    const d = await describePod(sb, 'crash');
    const ok = container(d, 'ok');
    assert.equal(ok.state, 'terminated', JSON.stringify(ok));
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.reason, 'Completed');
    assert.equal(ok.restartCount, 0);
    // by now the sidecar was restarted 4 times: the daemon had every chance to restart "ok"
    assert.deepEqual(
      logLines(sb, ids.crash!, 'ok').map((l) => l.line),
      ['once'],
    );
    assert.equal(container(d, 'app').state, 'running');
  });

  it('reports a container killed past its memory limit as OOMKilled', async () => {
    const d = await waitFor(
      'the hog to be OOM-killed',
      async () => {
        const d = await describePod(sb, 'oom');
        return container(d, 'hog').state === 'terminated' ? d : undefined;
      },
      LONG,
    );
    const hog = container(d, 'hog');
    assert.equal(hog.reason, 'OOMKilled');
    assert.equal(hog.exitCode, 137);
    assert.equal(hog.restartCount, 0, 'restartPolicy Never');
    assert.equal(d.status, 'OOMKilled');
    // the kernel's own count, in the container's cgroup
    const rec = JSON.parse(await nspodOk(sb, ['inspect', 'container', 'oom/hog', '-o', 'json'])) as {
      cgroupPath: string;
    };
    const dir = path.join(memoryHierarchy(), rec.cgroupPath);
    const text = readFileSync(path.join(dir, pureV2() ? 'memory.events' : 'memory.oom_control'), 'utf8');
    assert.ok(Number(/oom_kill (\d+)/.exec(text)?.[1]) > 0, text);
    assert.ok(d.events.some((e) => e.reason === 'OOMKilled'));
  });

  it('liveness failures (HTTP 500) restart the container; readiness flips READY; startup gates liveness', async () => {
    await nspodOk(sb, ['play', '-'], { input: probeYaml });
    const podId = (await describePod(sb, 'probes')).id;
    // liveness: /cgi-bin/health answers 500 → killed and started again (a second "start" in its log)
    await waitFor(
      'the sick container to be restarted',
      () => logLines(sb, podId, 'sick').filter((l) => l.line === 'start').length >= 2,
      LONG,
    );
    let d = await describePod(sb, 'probes');
    assert.ok(container(d, 'sick').restartCount >= 1);
    assert.ok(
      d.events.some((e) => e.container === 'sick' && e.reason === 'Unhealthy' && e.message.includes('statuscode: 500')),
      JSON.stringify(d.events.filter((e) => e.container === 'sick')),
    );

    // readiness: ready while /ready.html is served, unready when it is gone, ready again
    const webReady = async (want: boolean) =>
      waitFor(`web ready=${want}`, async () => container(await describePod(sb, 'probes'), 'web').ready === want, LONG);
    await webReady(true);
    await waitFor('the postStart hook ran in web (started by play)', () =>
      logLines(sb, podId, 'web').some((l) => l.line === 'poststart'),
    );
    await nspodOk(sb, ['exec', 'probes', '-c', 'web', '--', 'rm', '/www/ready.html']);
    await webReady(false);
    await nspodOk(sb, ['exec', 'probes', '-c', 'web', '--', 'sh', '-c', 'echo ok > /www/ready.html']);
    await webReady(true);

    // startup: while /tmp/started is missing the liveness probe (nothing listens on 8083) never runs
    await waitFor(
      'three startup probe failures',
      async () => {
        d = await describePod(sb, 'probes');
        return (
          d.events.filter((e) => e.container === 'slow' && e.message.startsWith('Startup probe failed')).length >= 3
        );
      },
      LONG,
    );
    assert.equal(container(d, 'slow').restartCount, 0);
    assert.ok(!d.events.some((e) => e.container === 'slow' && e.message.startsWith('Liveness')));
    assert.equal(logLines(sb, podId, 'slow').filter((l) => l.line === 'start').length, 1);
    await nspodOk(sb, ['exec', 'probes', '-c', 'slow', '--', 'touch', '/tmp/started']);
    await waitFor(
      'slow to be restarted by its liveness probe',
      () => logLines(sb, podId, 'slow').filter((l) => l.line === 'start').length >= 2,
      LONG,
    );
    d = await describePod(sb, 'probes');
    assert.ok(d.events.some((e) => e.container === 'slow' && e.message.startsWith('Liveness probe failed')));
  });

  it('runs init containers in order before the app, a native sidecar before it, and stops them in reverse with preStop first', async () => {
    await nspodOk(sb, ['play', '-'], { input: orderYaml });
    const podId = (await describePod(sb, 'order')).id;
    await waitFor(
      'every container up',
      () => ['app-up', 'stubborn-up'].every((l) => logLines(sb, podId, l.replace('-up', '')).some((x) => x.line === l)),
      LONG,
    );
    const a = logLines(sb, podId, 'init-a');
    const b = logLines(sb, podId, 'init-b');
    const side = logLines(sb, podId, 'side');
    const app = logLines(sb, podId, 'app');
    assert.ok(firstTime(a, 'a-done') <= firstTime(b, 'b'), 'init-b after init-a finished');
    assert.ok(firstTime(b, 'b-done') <= firstTime(side, 'side-up'), 'the sidecar after the init containers');
    assert.ok(firstTime(side, 'side-up') <= firstTime(app, 'app-up'), 'the app after the sidecar');
    await waitFor('READY 3/3', async () => (await describePod(sb, 'order')).ready === '3/3', LONG);
    await waitFor(
      'the postStart hook ran in app',
      () => logLines(sb, podId, 'app').some((l) => l.line === 'poststart'),
      LONG,
    );

    await nspodOk(sb, ['stop', 'order']);
    const app2 = logLines(sb, podId, 'app');
    const side2 = logLines(sb, podId, 'side');
    const stubborn = logLines(sb, podId, 'stubborn');
    assert.ok(firstTime(app2, 'prestop') <= firstTime(app2, 'app-term'), 'preStop before SIGTERM');
    assert.ok(firstTime(app2, 'app-term') <= firstTime(side2, 'side-term'), 'the sidecar stops after the app');
    assert.ok(
      stubborn.some((l) => l.line === 'got-term'),
      'SIGTERM reached the stubborn container',
    );
    const d = await describePod(sb, 'order');
    assert.equal(d.status, 'Stopped');
    const s = container(d, 'stubborn');
    assert.equal(s.exitCode, 137, `SIGKILL after the grace period: ${JSON.stringify({ ...s, spec: undefined })}`);
    assert.equal(container(d, 'app').exitCode, 0);
    assert.equal(container(d, 'side').exitCode, 0);
    for (const c of d.containers) assert.equal(c.restartCount, 0, `${c.name} not restarted after stop`);
  });

  it('grpc readiness: checks grpc.health.v1 inside the pod network namespace', async () => {
    await nspodOk(sb, ['play', '-'], { input: grpcYaml });
    const podId = (await describePod(sb, 'grpc')).id;
    const rec = JSON.parse(readFileSync(path.join(sb.root, 'pods', `${podId}.json`), 'utf8')) as {
      sandbox: { namespaces: { net: string } };
    };
    await waitFor(
      'a failed grpc probe (nothing listens yet)',
      async () => (await describePod(sb, 'grpc')).events.some((e) => e.reason === 'Unhealthy'),
      LONG,
    );
    assert.equal(container(await describePod(sb, 'grpc'), 'app').ready, false);
    // The server runs on the host's side of nothing: only in the pod's netns, on its 127.0.0.1.
    const server = spawn('nsenter', [`--net=${rec.sandbox.namespaces.net}`, process.execPath, '-e', healthServer], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.once('data', () => resolve());
        server.once('exit', (c) => reject(new Error(`health server exited ${c}`)));
      });
      await waitFor(
        'app ready through its grpc probe',
        async () => container(await describePod(sb, 'grpc'), 'app').ready,
        LONG,
      );
    } finally {
      server.kill('SIGKILL');
    }
    await waitFor(
      'app unready once the server is gone',
      async () => !container(await describePod(sb, 'grpc'), 'app').ready,
      LONG,
    );
    await nspodOk(sb, ['rm', '-f', 'grpc']);
  });

  it('without the daemon, play runs init containers in order and fails on a failing one', async () => {
    const plain = { ...sb, env: { ...sb.env, NSPOD_SUPERVISE: '0' } };
    const yaml = orderYaml.replace('name: order', 'name: once');
    await nspodOk(plain, ['play', '-'], { input: yaml });
    const d = await describePod(plain, 'once');
    assert.equal(d.supervised, false);
    const a = logLines(sb, d.id, 'init-a');
    const app = await waitFor('app up', () => logLines(sb, d.id, 'app').find((l) => l.line === 'app-up'), LONG);
    assert.ok(firstTime(a, 'a-done') <= app.t);
    assert.equal(container(d, 'init-a').exitCode, 0);
    assert.equal(container(d, 'init-b').exitCode, 0);
    await nspodOk(plain, ['rm', '-f', 'once']);
    const failing = yaml.replace("'echo b; echo b-done'", "'echo b; exit 3'");
    const r = await nspod(plain, ['play', '-'], { input: failing });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /init container "init-b" of pod "once" exited with code 3/);
    await nspodOk(plain, ['rm', '-f', 'once']);
  });

  it('a failing init container is retried with back-off and blocks the app, visibly', async () => {
    const yaml = `
apiVersion: v1
kind: Pod
metadata: {name: blocked}
spec:
  terminationGracePeriodSeconds: 0
  initContainers:
  - name: setup
    image: busybox
    command: [sh, -c, 'echo try; exit 2']
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo app-up; exec sleep 100000']
`;
    await nspodOk(sb, ['play', '-'], { input: yaml });
    const d = await waitFor(
      'Init:CrashLoopBackOff after 2 retries',
      async () => {
        const d = await describePod(sb, 'blocked');
        return d.status === 'Init:CrashLoopBackOff' && container(d, 'setup').restartCount >= 2 ? d : undefined;
      },
      LONG,
    );
    assert.equal(container(d, 'setup').lastState?.exitCode, 2);
    assert.ok(logLines(sb, d.id, 'setup').filter((l) => l.line === 'try').length >= 3);
    // the app was never made: no record, no log
    assert.equal(container(d, 'app').id, undefined);
    assert.deepEqual(logLines(sb, d.id, 'app'), []);
    const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as Array<{ name: string; status: string }>;
    assert.equal(pods.find((p) => p.name === 'blocked')?.status, 'Init:CrashLoopBackOff');
    await nspodOk(sb, ['rm', '-f', 'blocked']);
  });

  it('rejects bad probe fields with one clear error and makes nothing', async () => {
    const bad = probeYaml.replace('failureThreshold: 2', 'failureThreshold: 0');
    const r = await nspod(sb, ['play', '-'], { input: bad.replace('name: probes', 'name: bad') });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /spec\.containers\[0\]\.livenessProbe\.failureThreshold: 0 is out of range/);
    const pods = JSON.parse(await nspodOk(sb, ['pods', '-o', 'json'])) as Array<{ name: string }>;
    assert.ok(!pods.some((p) => p.name === 'bad'));
  });
});
