/**
 * Temp names that say who writes them, and the test for "its writer is gone".
 *
 * A layer unpacks into `<dest>.tmp-<tag>` and a download into `ingest/…<tag>`, where the tag is
 * `<pid>-<start>-<random hex>`: the writer's pid and its start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot). A process killed mid-unpack leaves that entry behind;
 * `writerGone` tells when it can be removed.
 *
 * The rule (`writerGone`): the entry is stale only when /proc/<pid> is gone, or the process now
 * holding that pid started at another time than the one in the name (the pid was reused). A
 * writer that still runs always has /proc/<pid>/stat with the same start time, so its entry is
 * never taken for stale, whatever its age and whatever process checks. Anything unsure (no
 * /proc here, an unreadable or odd stat file) counts as alive: a leftover kept is only space.
 * Callers also require the entry to be older than a grace period (by ctime, which utimes cannot
 * set back, unlike the mtime an unpack copies from the tar), as a second guard. The one case the
 * rule cannot see is a writer in another pid namespace sharing the same store: nspod keeps its
 * store for the processes of the host's pid namespace.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, lstat, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { hasErrno } from '../errors/index.js';

/** The start time in /proc/<pid>/stat text (after the `(comm)`, which may hold spaces). */
function startOf(stat: string): string | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19]; // field 22; fields[0] is field 3 (state)
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

let self: string | null | undefined;
/** This process's start time, or undefined without /proc. */
function selfStart(): string | undefined {
  if (self === undefined) {
    try {
      self = startOf(readFileSync('/proc/self/stat', 'utf8')) ?? null;
    } catch {
      self = null;
    }
  }
  return self ?? undefined;
}

/** `<pid>-<start>-<random hex>`, for a temp name this process writes. */
export function writerTag(): string {
  return `${process.pid}-${selfStart() ?? 0}-${randomBytes(6).toString('hex')}`;
}

export interface Writer {
  pid: number;
  start: string;
}

/** The writer a tag at the end of `name` names (`…<pid>-<start>-<hex>`), if any. */
export function writerOf(name: string): Writer | undefined {
  const m = /(?:^|[.-])(\d+)-(\d+)-[0-9a-f]{12}$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, start: m[2]! } : undefined;
}

/** Whether the writer is surely no longer running (see the module doc). */
export async function writerGone(w: Writer): Promise<boolean> {
  // without our own start time, /proc is missing or odd here: nothing can be told
  if (selfStart() === undefined || w.start === '0') return false;
  let stat: string;
  try {
    stat = await readFile(`/proc/${w.pid}/stat`, 'utf8');
  } catch (e) {
    return hasErrno(e, 'ENOENT') || hasErrno(e, 'ESRCH');
  }
  const start = startOf(stat);
  return start !== undefined && start !== w.start;
}

/**
 * Removes a file or a tree, also one with read-only directories (a layer's 0555 dirs): root
 * ignores their mode, another user needs them made writable first. Symlinks are not followed.
 */
export async function removeTree(p: string): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true });
    return;
  } catch (e) {
    if (!hasErrno(e, 'EACCES') && !hasErrno(e, 'EPERM')) throw e;
  }
  await makeWritable(p);
  await rm(p, { recursive: true, force: true });
}

async function makeWritable(p: string): Promise<void> {
  const st = await lstat(p).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(p, (st.mode & 0o7777) | 0o700).catch(() => undefined);
  const names = await readdir(p).catch(() => [] as string[]);
  for (const n of names) await makeWritable(path.join(p, n));
}
