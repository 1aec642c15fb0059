/**
 * A supervisor killed with SIGKILL and started again takes over: it restarts no healthy
 * container (same pids, same /proc start times) and learns the exit code of a container that
 * exited while no daemon ran, from conmon's exit file. The daemons here are started by the test
 * (detached, no TTY) and each is awaited until its pid file and ready marker name it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { makeSandbox, destroySandbox, nspodOk, waitFor, alive } from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import { container, describePod, logLines, startDaemon, startTime, supervisedEnv } from './sup-helpers.js';

const LONG = 120_000;

const podYaml = `
apiVersion: v1
kind: Pod
metadata: {name: keep}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: steady
    image: busybox
    command: [sh, -c, 'echo start; exec sleep 100000']
    readinessProbe:
      exec: {command: ['true']}
      periodSeconds: 1
  - name: quitter
    image: busybox
    command: [sh, -c, 'echo start; while [ ! -e /tmp/quit ]; do sleep 0.1; done; rm /tmp/quit; exit 7']
`;

interface Rec {
  pid: number;
  exitFile: string;
  conmonPid: number;
}

async function rec(sb: Sandbox, name: string): Promise<Rec> {
  return JSON.parse(await nspodOk(sb, ['inspect', 'container', `keep/${name}`, '-o', 'json'])) as Rec;
}

describe('supervisor takeover after SIGKILL', () => {
  let sb: Sandbox;

  before(async () => {
    sb = supervisedEnv(await makeSandbox());
  });

  after(async () => {
    await destroySandbox(sb);
  });

  it('adopts running pods without restarting them and learns exits that happened meanwhile', async () => {
    const first = await startDaemon(sb);
    await nspodOk(sb, ['play', '-'], { input: podYaml });
    const podId = (await describePod(sb, 'keep')).id;
    // The first daemon has adopted the pod and probed it: steady is ready.
    await waitFor(
      'steady ready under the first daemon',
      async () => container(await describePod(sb, 'keep'), 'steady').ready,
      LONG,
    );
    const steady = await rec(sb, 'steady');
    const steadyStart = startTime(steady.pid);
    const quitter = await rec(sb, 'quitter');

    process.kill(first, 'SIGKILL');
    await waitFor('the first daemon to be gone', () => !alive(first), LONG);
    assert.ok(alive(steady.pid), 'containers outlive the daemon');

    // While no daemon runs, quitter exits 7; conmon records it.
    await nspodOk(sb, ['exec', 'keep', '-c', 'quitter', '--', 'touch', '/tmp/quit']);
    await waitFor(
      'the exit file of quitter',
      () => existsSync(quitter.exitFile) && readFileSync(quitter.exitFile, 'utf8').trim() === '7',
      LONG,
    );

    const second = await startDaemon(sb);
    assert.notEqual(second, first);
    const d = await waitFor(
      'the second daemon to restart quitter',
      async () => {
        const d = await describePod(sb, 'keep');
        const q = container(d, 'quitter');
        return q.restartCount >= 1 && q.state === 'running' ? d : undefined;
      },
      LONG,
    );
    const q = container(d, 'quitter');
    assert.equal(q.lastState?.exitCode, 7, 'the exit during the downtime, with its code');
    assert.equal(q.lastState?.reason, 'Error');
    assert.ok(
      d.events.some((e) => e.container === 'quitter' && e.reason === 'ExitedWhileAway' && e.message.includes('code 7')),
    );
    // quitter really runs again: a new process, a second "start" in its log
    const q2 = await rec(sb, 'quitter');
    assert.notEqual(q2.pid, quitter.pid);
    assert.ok(alive(q2.pid));
    assert.equal(logLines(sb, podId, 'quitter').filter((l) => l.line === 'start').length, 2);

    // steady was not touched: same process (pid and start time), one start, no restart
    assert.ok(alive(steady.pid));
    assert.equal(startTime(steady.pid), steadyStart);
    assert.equal((await rec(sb, 'steady')).pid, steady.pid);
    assert.equal(container(d, 'steady').restartCount, 0);
    assert.equal(logLines(sb, podId, 'steady').filter((l) => l.line === 'start').length, 1);
    await waitFor(
      'steady ready under the second daemon',
      async () => container(await describePod(sb, 'keep'), 'steady').ready,
      LONG,
    );
  });
});
