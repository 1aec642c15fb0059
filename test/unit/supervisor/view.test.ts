import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { podView } from '../../../src/supervisor/index.js';
import type { SupPod } from '../../../src/supervisor/index.js';
import type { PodStatus } from '../../../src/pod/index.js';
import type { PodRecord } from '../../../src/state/index.js';
import type { ContainerSpec } from '../../../src/spec/types.js';

const spec = (name: string, sidecar = false): ContainerSpec =>
  ({ name, image: 'busybox', ...(sidecar ? { restartPolicy: 'Always' } : {}) }) as ContainerSpec;

type CState = PodStatus['containers'][number];
const st = (name: string, state: CState['state'], exitCode?: number): CState =>
  ({ id: name, name, state, ...(exitCode !== undefined ? { exitCode } : {}) }) as CState;

describe('podView: kubectl READY / STATUS / RESTARTS', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'nspod-view-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function view(inits: ContainerSpec[], apps: ContainerSpec[], states: CState[], sup: Partial<SupPod>) {
    const pod = {
      id: 'p',
      name: 'p',
      namespace: 'default',
      createdAt: '',
      dir,
      spec: { initContainers: inits, containers: apps },
    } as unknown as PodRecord;
    await writeFile(
      path.join(dir, 'supervisor.json'),
      JSON.stringify({ version: 1, podId: 'p', phase: 'Running', containers: {}, initDone: true, ...sup }),
    );
    return podView({ state: 'Running', containers: states } as PodStatus, pod);
  }

  it('running and ready', async () => {
    const v = await view([], [spec('a'), spec('b')], [st('a', 'running'), st('b', 'running')], {
      containers: {
        a: { restartCount: 2, backoffStep: 0, ready: true, started: true },
        b: { restartCount: 1, backoffStep: 0, ready: false, started: true },
      },
    });
    assert.deepEqual([v.ready, v.status, v.restarts], ['1/2', 'Running', 3]);
  });

  it('CrashLoopBackOff of an app container, with its last state', async () => {
    const term = { exitCode: 1, reason: 'Error' as const, finishedAt: 'x' };
    const v = await view([], [spec('a')], [st('a', 'exited', 1)], {
      containers: {
        a: {
          restartCount: 4,
          backoffStep: 4,
          ready: false,
          started: false,
          waiting: 'CrashLoopBackOff',
          terminated: term,
        },
      },
    });
    assert.equal(v.status, 'CrashLoopBackOff');
    assert.deepEqual(v.containers[0]!.lastState, term);
  });

  it('init progress counts sidecars once started', async () => {
    const v = await view(
      [spec('i1'), spec('side', true), spec('i2')],
      [spec('a')],
      [st('i1', 'exited', 0), st('side', 'running')],
      {
        initDone: false,
        containers: { side: { restartCount: 0, backoffStep: 0, ready: false, started: true } },
      },
    );
    assert.equal(v.status, 'Init:2/3');
    assert.equal(v.conditions.find((c) => c.type === 'Initialized')?.status, 'False');
  });

  it('a failed init container and a completed pod', async () => {
    const failed = await view([spec('i1')], [spec('a')], [st('i1', 'exited', 2)], {
      initDone: false,
      containers: {
        i1: {
          restartCount: 0,
          backoffStep: 0,
          ready: false,
          started: false,
          done: true,
          terminated: { exitCode: 2, reason: 'Error', finishedAt: 'x' },
        },
      },
    });
    assert.equal(failed.status, 'Init:Error');
    const done = await view([], [spec('a'), spec('b')], [st('a', 'exited', 0), st('b', 'exited', 0)], {
      containers: {
        a: {
          restartCount: 0,
          backoffStep: 0,
          ready: false,
          started: false,
          done: true,
          terminated: { exitCode: 0, reason: 'Completed', finishedAt: 'x' },
        },
        b: {
          restartCount: 0,
          backoffStep: 0,
          ready: false,
          started: false,
          done: true,
          terminated: { exitCode: 0, reason: 'Completed', finishedAt: 'x' },
        },
      },
    });
    assert.equal(done.status, 'Completed');
    const oom = await view([], [spec('a')], [st('a', 'exited', 137)], {
      containers: {
        a: {
          restartCount: 0,
          backoffStep: 0,
          ready: false,
          started: false,
          done: true,
          terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: 'x' },
        },
      },
    });
    assert.equal(oom.status, 'OOMKilled');
  });
});
