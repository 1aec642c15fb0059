/**
 * Restarting a container in place, as podman does: the runtime's old container is deleted and
 * a new one is created from the same bundle, on the same overlay rootfs (the container's upper
 * dir, and so its files, survive), under a new conmon, with the same log file (appended to).
 */
import path from 'node:path';
import type { Context } from './context.js';
import type { ContainerRecord, PodRecord } from '../state/index.js';
import { startConmon } from '../monitor/index.js';
import { driverFor } from './driver.js';

export async function restartContainer(ctx: Context, pod: PodRecord, rec: ContainerRecord): Promise<ContainerRecord> {
  const d = await driverFor(ctx);
  await d.delete(rec.id, { force: true });
  const rt = await ctx.runtime();
  const started = await startConmon(ctx.host, {
    conmon: ctx.config.conmon,
    id: rec.id,
    name: `${pod.name}/${rec.name}`,
    bundle: rec.bundle,
    runtimePath: rt.path,
    runtimeRoot: ctx.runtimeRoot,
    logPath: rec.logPath,
    exitDir: path.dirname(rec.exitFile),
    pidFile: path.join(pod.runDir, `${rec.id}.pid`),
    conmonPidFile: path.join(pod.runDir, `${rec.id}.conmon.pid`),
    socketDir: path.join(pod.runDir, 'sock'),
  });
  const created: ContainerRecord = { ...rec, pid: started.pid, conmonPid: started.conmonPid };
  delete created.startedAt;
  await ctx.state.saveContainer(created);
  await d.start(rec.id);
  const updated = { ...created, startedAt: new Date().toISOString() };
  await ctx.state.saveContainer(updated);
  return updated;
}
