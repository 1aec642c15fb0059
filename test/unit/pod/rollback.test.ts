import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rollback } from '../../../src/pod/rollback.js';
import { NspodError } from '../../../src/errors/index.js';

describe('Rollback', () => {
  it('unwinds in reverse order and rethrows the original error', async () => {
    const rb = new Rollback();
    const order: string[] = [];
    rb.push('a', async () => void order.push('a'));
    rb.push('b', async () => void order.push('b'));
    const cause = new NspodError('INVALID_ARGUMENT', 'bad');
    await assert.rejects(rb.unwind(cause), (e) => e === cause);
    assert.deepEqual(order, ['b', 'a']);
  });

  it('keeps unwinding past a failing undo and reports it with the cause', async () => {
    const rb = new Rollback();
    const order: string[] = [];
    rb.push('first', async () => void order.push('first'));
    rb.push('umount x', async () => {
      throw new Error('busy');
    });
    await assert.rejects(rb.unwind(new NspodError('NOT_FOUND', 'image "x" not found')), (e: unknown) => {
      assert.ok(e instanceof NspodError);
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /image "x" not found \(and cleanup failed: umount x: busy\)/);
      return true;
    });
    assert.deepEqual(order, ['first']);
  });

  it('does nothing after commit', async () => {
    const rb = new Rollback();
    let ran = false;
    rb.push('x', async () => void (ran = true));
    rb.commit();
    await assert.rejects(rb.unwind(new Error('later')));
    assert.equal(ran, false);
  });
});
