import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { realHost } from '../../../src/host/index.js';
import { startSpawner } from '../../../src/host/spawner.js';
import { isNspodError } from '../../../src/errors/index.js';

describe('spawner helper', () => {
  const sp = startSpawner();
  after(() => sp.close());

  it('runs commands as its own children and gives what realHost gives', async () => {
    const helper = sp.pid!;
    assert.ok(helper > 0 && helper !== process.pid);
    const ppid = await sp.run('/bin/sh', ['-c', 'echo $PPID']);
    assert.equal(Number(ppid.stdout.trim()), helper, 'the command is the helper’s child');

    const script = 'echo out; echo err >&2; exit 3';
    const a = await sp.run('/bin/sh', ['-c', script], { allowFailure: true });
    const b = await realHost.run('/bin/sh', ['-c', script], { allowFailure: true });
    assert.deepEqual(a, b);
    assert.equal(a.code, 3);

    const input = await sp.run('/bin/cat', [], { input: Buffer.from('héllo\n') });
    assert.equal(input.stdout, 'héllo\n');
    const env = await sp.run('/bin/sh', ['-c', 'echo "$X" && pwd'], { env: { X: 'from-env' }, cwd: '/tmp' });
    assert.equal(env.stdout, 'from-env\n/tmp\n');
    const sync = await sp.run('/bin/sh', ['-c', 'echo \'{"data": 5}\' >&3'], { syncPipe: true });
    assert.equal(sync.sync, '{"data": 5}');
  });

  it('fails as realHost fails', async () => {
    await assert.rejects(sp.run('/bin/sh', ['-c', 'echo boom >&2; exit 1']), (e: unknown) => {
      return isNspodError(e, 'INTERNAL') && (e as Error).message === '/bin/sh -c: boom';
    });
    await assert.rejects(sp.run('/nonexistent/cmd', []), (e: unknown) => isNspodError(e, 'UNAVAILABLE'));
    const slow = await sp.run('/bin/sleep', ['5'], { timeoutMs: 100, allowFailure: true });
    assert.equal(slow.signal, 'SIGKILL');
  });

  it('when the helper dies, calls in flight fail and later calls run from this process', async () => {
    const own = startSpawner();
    try {
      const inFlight = own.run('/bin/sleep', ['5']);
      process.kill(own.pid!, 'SIGKILL');
      await assert.rejects(inFlight, (e: unknown) => isNspodError(e, 'UNAVAILABLE'));
      assert.equal(own.pid, undefined);
      const r = await own.run('/bin/sh', ['-c', 'echo $PPID']);
      assert.equal(Number(r.stdout.trim()), process.pid);
    } finally {
      own.close();
    }
  });
});
