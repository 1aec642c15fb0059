/** Fake cgroup hierarchies in a tmpdir, with the mountinfo text that describes them. */
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type FixtureKind = 'v1' | 'v1-combined' | 'v2' | 'hybrid';

export interface Fixture {
  root: string;
  mountinfo: string;
  /** a removeDir for a plain filesystem: drops the control files, then rmdir (fails if subdirs remain) */
  removeDir: (dir: string) => Promise<void>;
  write(rel: string, content: string): void;
  cleanup(): void;
}

const line = (id: number, mnt: string, type: string, opts: string): string =>
  `${id} 20 0:${id} / ${mnt.replace(/ /g, '\\040')} rw,nosuid,nodev,noexec,relatime shared:${id} - ${type} ${type} ${opts}`;

export function makeFixture(kind: FixtureKind): Fixture {
  // a space in the path exercises mountinfo's octal escapes
  const root = mkdtempSync(path.join(tmpdir(), 'nspod cg-'));
  const lines: string[] = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    `23 22 0:21 / /sys rw shared:2 - sysfs sysfs rw`,
  ];
  const write = (rel: string, content: string): void => {
    const f = path.join(root, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, content);
  };
  let id = 30;
  const v1 = (dirName: string, opts: string): void => {
    mkdirSync(path.join(root, dirName), { recursive: true });
    write(path.join(dirName, 'cgroup.procs'), '1\n2\n');
    lines.push(line(id++, path.join(root, dirName), 'cgroup', `rw,${opts}`));
  };
  if (kind === 'v1' || kind === 'hybrid' || kind === 'v1-combined') {
    if (kind === 'v1-combined') v1('cpu,cpuacct', 'cpu,cpuacct');
    else {
      v1('cpu', 'cpu');
      v1('cpuacct', 'cpuacct');
    }
    v1('cpuset', 'cpuset');
    write('cpuset/cpuset.cpus', '0-3\n');
    write('cpuset/cpuset.mems', '0\n');
    for (const c of ['memory', 'devices', 'freezer', 'blkio', 'pids', 'net_cls,net_prio']) v1(c, c);
    v1('systemd', 'xattr,name=systemd');
  }
  if (kind === 'hybrid') {
    mkdirSync(path.join(root, 'unified'));
    write('unified/cgroup.controllers', '\n');
    lines.push(line(id++, path.join(root, 'unified'), 'cgroup2', 'rw,nsdelegate'));
  }
  if (kind === 'v2') {
    write('cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma misc\n');
    write('cgroup.subtree_control', 'cpuset cpu io memory pids\n');
    // what the kernel would show in a new child of the root
    write('nspod/cgroup.controllers', 'cpuset cpu io memory pids\n');
    lines.push(line(id++, root, 'cgroup2', 'rw,nsdelegate,memory_recursiveprot'));
  }
  return {
    root,
    mountinfo: lines.join('\n') + '\n',
    write,
    removeDir: (dir) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) unlinkSync(path.join(dir, e.name));
      rmdirSync(dir);
      return Promise.resolve();
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
