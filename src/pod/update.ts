/**
 * Changing a running container's cgroup limits (CRI UpdateContainerResources) with the OCI
 * runtime's `update --resources -`, which writes the v1 or v2 files for it; the new limits are
 * kept in the container's record so its status reports them and a restart of nspod keeps them.
 */
import type { Context } from './context.js';
import type { ContainerRecord } from '../state/index.js';
import type { RawResources } from '../spec/extras.js';
import type { OciLinuxResources } from '../oci/index.js';
import { runtimeGlobalArgs, runtimeMessage } from '../oci/index.js';
import { failedPrecondition } from '../errors/index.js';

/** RawResources → the OCI LinuxResources JSON `runc update` reads. */
export function updateJson(r: RawResources): OciLinuxResources {
  const out: OciLinuxResources = {};
  const cpu: NonNullable<OciLinuxResources['cpu']> = {};
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpuQuota) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (r.memoryLimitBytes) {
    out.memory = { limit: r.memoryLimitBytes };
    if (r.memorySwapLimitBytes) out.memory.swap = r.memorySwapLimitBytes;
  }
  if (r.hugepageLimits && r.hugepageLimits.length > 0) out.hugepageLimits = r.hugepageLimits;
  if (r.unified && Object.keys(r.unified).length > 0) out.unified = r.unified;
  return out;
}

export async function updateResources(
  ctx: Context,
  rec: ContainerRecord,
  r: RawResources,
  running: boolean,
): Promise<ContainerRecord> {
  if (running) {
    const rt = await ctx.runtime();
    const res = await ctx.host.run(
      rt.path,
      [...runtimeGlobalArgs(ctx.runtimeRoot), 'update', '--resources', '-', rec.id],
      { input: JSON.stringify(updateJson(r)), allowFailure: true },
    );
    if (res.code !== 0) {
      throw failedPrecondition(
        `cannot update the resources of container "${rec.name}": ${runtimeMessage(res.stderr) || `exit status ${res.code}`}`,
      );
    }
  }
  const extras = { ...rec.spec.extras, resources: { ...rec.spec.extras?.resources, ...r } };
  const updated: ContainerRecord = { ...rec, spec: { ...rec.spec, extras } };
  await ctx.state.saveContainer(updated);
  return updated;
}
