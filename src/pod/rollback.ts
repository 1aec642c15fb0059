/**
 * A list of described undos for a multi-step operation. After each step succeeds the caller
 * pushes how to undo it; on failure `unwind` runs them in reverse and reports the original error
 * together with any cleanup that failed, so nothing half-made is left silently.
 */
import { NspodError, messageOf } from '../errors/index.js';

interface Undo {
  what: string;
  fn: () => Promise<void>;
}

export class Rollback {
  private readonly undos: Undo[] = [];

  push(what: string, fn: () => Promise<void>): void {
    this.undos.push({ what, fn });
  }

  /** Forgets every undo: the operation completed. */
  commit(): void {
    this.undos.length = 0;
  }

  /** Runs the undos in reverse and rethrows `cause`, annotated with cleanup failures. */
  async unwind(cause: unknown): Promise<never> {
    const failures: string[] = [];
    while (this.undos.length > 0) {
      const u = this.undos.pop()!;
      try {
        await u.fn();
      } catch (e) {
        failures.push(`${u.what}: ${messageOf(e)}`);
      }
    }
    if (failures.length === 0) throw cause;
    const base = cause instanceof NspodError ? cause : new NspodError('INTERNAL', messageOf(cause), { cause });
    throw new NspodError(base.code, `${base.message} (and cleanup failed: ${failures.join('; ')})`, { cause });
  }
}
