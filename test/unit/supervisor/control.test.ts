import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { declineReason, forwardPlay, relevantEnv, startControlServer } from '../../../src/supervisor/control.js';
import type { ControlRequest, ControlServer, PlayIo } from '../../../src/supervisor/control.js';
import { NspodError, isNspodError } from '../../../src/errors/index.js';

const mine = {
  identity: 'nspod 1:/x/nspod.js:10:20',
  env: { PATH: '/bin', NSPOD_CONMON: 'conmon' },
  config: { root: '/r' },
};
const request = (o: Partial<ControlRequest> = {}): ControlRequest => ({
  op: 'play',
  identity: mine.identity,
  env: { ...mine.env },
  config: { ...mine.config },
  play: { text: 'kind: Pod', source: 'pod.yaml', replace: false, supervise: true },
  ...o,
});

describe('control socket: who may hand a play to the daemon', () => {
  it('relevantEnv keeps NSPOD_* (but the configuration ones), PATH and HOME', () => {
    const env = relevantEnv({
      PATH: '/bin',
      HOME: '/root',
      TERM: 'xterm',
      NSPOD_CONMON: '/usr/bin/conmon',
      NSPOD_ROOT: '/r',
      NSPOD_RUN_ROOT: '/run/x',
      NSPOD_SUPERVISE: '1',
    });
    assert.deepEqual(env, { HOME: '/root', NSPOD_CONMON: '/usr/bin/conmon', PATH: '/bin' });
  });

  it('declines another build, environment or configuration', () => {
    assert.equal(declineReason(request(), mine), undefined);
    assert.match(declineReason(request({ identity: 'nspod 2' }), mine)!, /another build/);
    assert.match(
      declineReason(request({ env: { ...mine.env, NSPOD_CNI_CONFIG_DIR: '/etc/x' } }), mine)!,
      /environment differs \(NSPOD_CNI_CONFIG_DIR\)/,
    );
    assert.match(declineReason(request({ config: { root: '/other' } }), mine)!, /configuration differs/);
  });
});

describe('control socket: a play over it', () => {
  let dir: string;
  let socket: string;
  let server: ControlServer;
  const played: string[] = [];
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nspod-control-'));
    socket = path.join(dir, 'control.sock');
    server = await startControlServer({
      socket,
      mine,
      log: () => undefined,
      play: async (req, io) => {
        played.push(req.source);
        if (req.text === 'bad') throw new NspodError('INVALID_ARGUMENT', 'spec.containers[0].image: required');
        if (req.text === 'crash') throw new Error('boom');
        io.err('warning: something');
        io.out('pod/foo running');
        io.timings({ sandbox: 12 });
      },
    });
  });
  after(async () => {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const capture = (): PlayIo & { lines: string[] } => {
    const lines: string[] = [];
    return {
      lines,
      out: (l) => lines.push(`out ${l}`),
      err: (l) => lines.push(`err ${l}`),
      timings: (t) => lines.push(`timings ${JSON.stringify(t)}`),
    };
  };

  it('refuses a socket path the kernel would cut short, and makes nothing', async () => {
    const long = path.join(dir, 'x'.repeat(120), 'control.sock');
    await assert.rejects(
      startControlServer({ socket: long, mine, log: () => undefined, play: async () => undefined }),
      (e: unknown) => isNspodError(e, 'INVALID_ARGUMENT') && /at most 107/.test((e as Error).message),
    );
    assert.deepEqual((await fs.readdir(dir)).sort(), ['control.sock']);
  });

  it('is listening with mode 0600', async () => {
    assert.equal((await fs.stat(socket)).mode & 0o777, 0o600);
  });

  it("streams the play's output in order and ends with done", async () => {
    const io = capture();
    assert.deepEqual(await forwardPlay(socket, request(), io), { result: 'done' });
    assert.deepEqual(io.lines, ['err warning: something', 'out pod/foo running', 'timings {"sandbox":12}']);
  });

  it("fails with the play's error code and message", async () => {
    const io = capture();
    const bad = request({ play: { text: 'bad', source: 'b.yaml', replace: false, supervise: true } });
    await assert.rejects(forwardPlay(socket, bad, io), (e: unknown) => {
      return isNspodError(e, 'INVALID_ARGUMENT') && (e as Error).message === 'spec.containers[0].image: required';
    });
    const crash = request({ play: { text: 'crash', source: 'c.yaml', replace: false, supervise: true } });
    await assert.rejects(forwardPlay(socket, crash, io), (e: unknown) => isNspodError(e, 'INTERNAL'));
  });

  it('declines, without playing, a client that does not match, and so does a missing daemon', async () => {
    const before = played.length;
    const r = await forwardPlay(socket, request({ identity: 'other' }), capture());
    assert.equal(r.result, 'declined');
    assert.equal(played.length, before, 'nothing played');
    const none = await forwardPlay(path.join(dir, 'nothing.sock'), request(), capture());
    assert.equal(none.result, 'declined');
    assert.match((none as { why: string }).why, /ENOENT/);
  });
});
