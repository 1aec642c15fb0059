/**
 * The runtime operations pod/ needs: the OCI runtime driver (oci/) plus a graceful stop that
 * waits for conmon's exit file and escalates to SIGKILL after the grace period.
 */
import type { Context } from './context.js';
import { readExitCode } from '../monitor/index.js';
import { runtimeDriver as ociDriver } from '../oci/index.js';
import type { RuntimeDriver } from '../oci/index.js';
import { isNspodError } from '../errors/index.js';
import { processIs } from './status.js';

export interface StopRequest {
  id: string;
  exitFile: string;
  conmonPid?: number | undefined;
  signal: string;
  timeoutMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until the container's exit is recorded (or its conmon is gone), up to `ms`. */
export async function waitExited(
  r: { exitFile: string; conmonPid?: number | undefined },
  ms: number,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  let delay = 5;
  for (;;) {
    if ((await readExitCode(r.exitFile)) !== undefined) return true;
    if (!(await processIs(r.conmonPid, 'conmon'))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 100);
  }
}

/** kill that treats "not running / gone" as done: the process may exit between the check and the signal. */
async function killQuietly(d: RuntimeDriver, id: string, signal: string, all: boolean): Promise<void> {
  try {
    await d.kill(id, signal, { all });
  } catch (e) {
    if (!isNspodError(e, 'NOT_FOUND') && !isNspodError(e, 'FAILED_PRECONDITION')) throw e;
  }
}

export async function driverFor(ctx: Context): Promise<RuntimeDriver> {
  return ociDriver({ host: ctx.host, runtime: await ctx.runtime(), root: ctx.runtimeRoot });
}

/** Sends `signal`, waits up to timeoutMs for the exit, then SIGKILLs everything in the container. */
export async function stopGracefully(ctx: Context, req: StopRequest): Promise<void> {
  if (await waitExited(req, 0)) return;
  const d = await driverFor(ctx);
  if (req.timeoutMs > 0) {
    await killQuietly(d, req.id, req.signal, false);
    if (await waitExited(req, req.timeoutMs)) return;
  }
  await killQuietly(d, req.id, 'SIGKILL', true);
  await waitExited(req, 10_000);
}
