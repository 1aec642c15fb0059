/**
 * Did the kernel's OOM killer kill a process of this container's cgroup? Read before the
 * container is deleted (deleting it removes its cgroup): cgroup v2 `memory.events` oom_kill,
 * cgroup v1 `memory.oom_control` oom_kill (Linux 4.13+), else `memory.failcnt` with a SIGKILL exit.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CgroupLayout } from '../cgroups/index.js';

function counter(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function read(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function oomKilled(layout: CgroupLayout, cgroupPath: string, exitCode: number): Promise<boolean> {
  if (layout.version === 2) {
    const dir = path.join(layout.v2 ?? '/sys/fs/cgroup', cgroupPath);
    const ev = await read(path.join(dir, 'memory.events'));
    return ev !== undefined && (counter(ev, 'oom_kill') ?? 0) > 0;
  }
  const mem = layout.v1['memory'];
  if (!mem) return false;
  const dir = path.join(mem, cgroupPath);
  const ctl = await read(path.join(dir, 'memory.oom_control'));
  const kills = ctl === undefined ? undefined : counter(ctl, 'oom_kill');
  if (kills !== undefined) return kills > 0;
  const fail = Number((await read(path.join(dir, 'memory.failcnt')))?.trim() ?? 0);
  return exitCode === 137 && fail > 0;
}
