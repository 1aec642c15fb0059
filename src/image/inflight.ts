/**
 * Marks of work in flight (pulls) that garbage collection must not undo: each is a small JSON
 * file `<images>/inflight/<pid>-<rand>.json` listing blob digests and layer diffIds. A mark whose
 * process is gone is ignored (and removed by the next GC).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hasErrno } from '../errors/index.js';

export interface InflightMark {
  digests: string[];
  diffIds: string[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return hasErrno(e, 'EPERM');
  }
};

/** Writes a mark; the returned function removes it. */
export async function markInflight(imagesDir: string, mark: InflightMark): Promise<() => Promise<void>> {
  const dir = path.join(imagesDir, 'inflight');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
  await writeFile(file, JSON.stringify(mark));
  return () => rm(file, { force: true });
}

/** The union of the live marks; stale ones are deleted. */
export async function readInflight(imagesDir: string): Promise<InflightMark> {
  const dir = path.join(imagesDir, 'inflight');
  const out: InflightMark = { digests: [], diffIds: [] };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return out;
    throw e;
  }
  for (const n of names) {
    const pid = Number(/^(\d+)-/.exec(n)?.[1]);
    const file = path.join(dir, n);
    if (!Number.isInteger(pid) || !alive(pid)) {
      await rm(file, { force: true });
      continue;
    }
    try {
      const m = JSON.parse(await readFile(file, 'utf8')) as InflightMark;
      out.digests.push(...(m.digests ?? []));
      out.diffIds.push(...(m.diffIds ?? []));
    } catch {
      // half-written by a live process: it is being made right now; keep nothing extra
    }
  }
  return out;
}

/** diffIds of unpacked layers some mounted overlay uses (lowerdir under `<root>/layers/`). */
export async function mountedLayers(root: string): Promise<Set<string>> {
  const out = new Set<string>();
  let text: string;
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  const prefix = `${path.join(root, 'layers')}/`;
  for (const line of text.split('\n')) {
    if (!line.includes(' overlay ')) continue;
    for (const m of line.matchAll(/lowerdir=([^,\s]+)/g)) {
      for (const dir of m[1]!.split(':')) {
        const d = dir.replace(/\\040/g, ' ');
        if (d.startsWith(prefix)) {
          const hex = d.slice(prefix.length).split('/')[0]!;
          if (/^[0-9a-f]{64}$/.test(hex)) out.add(`sha256:${hex}`);
        }
      }
    }
  }
  return out;
}
