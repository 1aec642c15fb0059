/**
 * Writes one tar entry of a layer into the layer directory: regular files, directories, symlinks,
 * hard links, devices and FIFOs, plus the OCI whiteouts turned into their overlayfs form.
 */
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  open,
  rmSync,
  utimesSync,
  write,
} from 'node:fs';
import { link, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { ReadEntry } from 'tar';
import type { Host } from '../host/index.js';
import { hasErrno } from '../errors/index.js';
import { UnsafeEntryError, cleanEntryPath, forgetUnder, resolveDirInsideSync } from './safe-path.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** What the unpacker keeps between entries of one layer. */
export interface LayerWriter {
  root: string;
  host: Host;
  asRoot: boolean;
  /** directories whose mtime is set once every entry is written (writing inside changes it) */
  dirTimes: { path: string; mtime: Date }[];
  /** directories marked opaque (xattr set in one batch at the end) */
  opaqueDirs: Set<string>;
  /** parent directories already resolved (see resolveDirInsideSync); forgotten when replaced */
  dirs: Map<string, string>;
}

/*
 * Calls that only read or change an inode (lstat, chown, chmod, utimes…) are synchronous: one
 * syscall of microseconds each, while a thread-pool round trip costs ~0.5 ms on a busy 2-core
 * machine, queued behind the layer's gunzip and file writes (and entries are written one after
 * another). Calls that create one (open, mkdir, symlink, link) go through the pool: on some
 * filesystems they take ~0.3-1 ms and would stall the downloads and hashing of other layers.
 * File contents are written in the pool too (see writeFile).
 */

const resolveDir = (w: LayerWriter, parts: string[], create: boolean): string =>
  resolveDirInsideSync(w.root, parts, { create, cache: w.dirs });

/** Removes what is at `p` (unless keepDir and it is a directory); true when a directory was kept. */
function removeExisting(w: LayerWriter, p: string, keepDir: boolean): boolean {
  try {
    const st = lstatSync(p);
    if (keepDir && st.isDirectory()) return true;
    rmSync(p, { recursive: true, force: true });
    forgetUnder(w.dirs, p);
  } catch (e) {
    if (!hasErrno(e, 'ENOENT')) throw e;
  }
  return false;
}

/** Runs `make` (which creates `p` exclusively); when something is there already, replaces it. */
async function createReplacing<T>(w: LayerWriter, p: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (e) {
    if (!hasErrno(e, 'EEXIST')) throw e;
  }
  removeExisting(w, p, false);
  return make();
}

function setOwner(w: LayerWriter, p: string, e: ReadEntry): void {
  if (w.asRoot) lchownSync(p, e.uid ?? 0, e.gid ?? 0);
}

function openFd(p: string, flags: string, mode: number): Promise<number> {
  return new Promise((resolve, reject) => open(p, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** Writes all of `buf` at the file's current offset. */
function writeAll(fd: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void =>
      write(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) return reject(err);
        if (off + n < buf.length) return step(off + n);
        resolve();
      });
    step(0);
  });
}

/** Bytes of one file queued for writing before the reader waits for them. */
const WRITE_AHEAD = 4 * 1024 * 1024;

async function writeFile(w: LayerWriter, p: string, e: ReadEntry, mtime: Date): Promise<void> {
  const fd = await createReplacing(w, p, () => openFd(p, 'wx', 0o600));
  try {
    // contents go through the thread pool (page-cache writes of a big layer cost more than the
    // rest of the unpack), queued in order while the next chunks are read, up to WRITE_AHEAD
    let queue: Promise<void> = Promise.resolve();
    let queued = 0;
    let failure: { e: unknown } | undefined;
    for await (const chunk of e as AsyncIterable<Buffer>) {
      if (failure) break;
      queued += chunk.length;
      queue = queue
        .then(() => writeAll(fd, chunk))
        .then(
          () => void (queued -= chunk.length),
          (err: unknown) => void (failure ??= { e: err }),
        );
      if (queued > WRITE_AHEAD) await queue;
    }
    await queue;
    if (failure) throw failure.e;
    // owner before mode: chown clears setuid/setgid bits
    if (w.asRoot) fchownSync(fd, e.uid ?? 0, e.gid ?? 0);
    fchmodSync(fd, e.mode ?? 0o644);
    futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
}

async function mknod(w: LayerWriter, p: string, args: string[]): Promise<void> {
  await w.host.run('mknod', ['-m', '0', p, ...args]);
}

/** Handles an OCI whiteout entry; returns false when the entry is not one. */
async function whiteout(w: LayerWriter, parts: string[]): Promise<boolean> {
  const base = parts[parts.length - 1];
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return false;
  const parent = resolveDir(w, parts.slice(0, -1), true);
  if (base === OPAQUE_MARKER) {
    w.opaqueDirs.add(parent);
    return true;
  }
  const name = base.slice(WHITEOUT_PREFIX.length);
  // other `.wh..wh.` names are aufs bookkeeping (hard link dirs), meaningless here
  if (name === '' || name.startsWith(WHITEOUT_PREFIX)) return true;
  const target = path.join(parent, name);
  removeExisting(w, target, false);
  await mknod(w, target, ['c', '0', '0']);
  return true;
}

/** Writes one entry; throws UnsafeEntryError for entries that would leave the root. */
export async function writeEntry(w: LayerWriter, e: ReadEntry): Promise<void> {
  const parts = cleanEntryPath(e.path);
  if (await whiteout(w, parts)) return;
  const last = parts[parts.length - 1];
  if (last === undefined) {
    // the root itself ("./"): take its mode and owner, nothing else
    if (e.type === 'Directory') {
      setOwner(w, w.root, e);
      chmodSync(w.root, e.mode ?? 0o755);
    }
    return;
  }
  const parent = resolveDir(w, parts.slice(0, -1), true);
  const p = path.join(parent, last);
  const mtime = e.mtime ?? new Date(0);
  switch (e.type) {
    case 'Directory':
    case 'GNUDumpDir': {
      try {
        await mkdir(p, { mode: 0o700 });
      } catch (err) {
        if (!hasErrno(err, 'EEXIST')) throw err;
        if (!removeExisting(w, p, true)) mkdirSync(p, { mode: 0o700 });
      }
      setOwner(w, p, e);
      chmodSync(p, e.mode ?? 0o755);
      w.dirTimes.push({ path: p, mtime });
      return;
    }
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return writeFile(w, p, e, mtime);
    case 'SymbolicLink': {
      await createReplacing(w, p, () => symlink(e.linkpath ?? '', p));
      setOwner(w, p, e);
      lutimesSync(p, mtime, mtime);
      return;
    }
    case 'Link': {
      const targetParts = cleanEntryPath(e.linkpath ?? '');
      const targetName = targetParts[targetParts.length - 1];
      if (targetName === undefined) throw new UnsafeEntryError('is a hard link to the layer root');
      const targetDir = resolveDir(w, targetParts.slice(0, -1), false);
      const target = path.join(targetDir, targetName);
      let st;
      try {
        st = lstatSync(target);
      } catch {
        throw new UnsafeEntryError(`is a hard link to "${e.linkpath}" which is not in the layer`);
      }
      if (st.isDirectory()) throw new UnsafeEntryError(`is a hard link to directory "${e.linkpath}"`);
      await createReplacing(w, p, () => link(target, p));
      return;
    }
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO': {
      removeExisting(w, p, false);
      const kind = e.type === 'FIFO' ? ['p'] : [e.type === 'CharacterDevice' ? 'c' : 'b', ...devNumbers(e)];
      await mknod(w, p, kind);
      setOwner(w, p, e);
      chmodSync(p, e.mode ?? 0o644);
      utimesSync(p, mtime, mtime);
      return;
    }
    default:
      // unknown or unsupported types (sockets, sparse extensions…) are skipped, as tar does
      e.resume();
  }
}

function devNumbers(e: ReadEntry): string[] {
  return [String(e.header.devmaj ?? 0), String(e.header.devmin ?? 0)];
}

/**
 * True when `p` is a directory reached from the root through directories only: a later entry may
 * have replaced it, or a parent, with a symlink, and the finishing touches must not follow one.
 */
function stillPlainDir(root: string, p: string): boolean {
  let cur = root;
  for (const part of path
    .relative(root, p)
    .split(path.sep)
    .filter((x) => x !== '')) {
    cur = path.join(cur, part);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return false;
  }
  return true;
}

/** Work left for after the last entry: opaque markers, then directory mtimes (deepest first). */
export async function finishLayer(w: LayerWriter): Promise<void> {
  const opaque: string[] = [];
  for (const d of w.opaqueDirs) if (stillPlainDir(w.root, d)) opaque.push(d);
  for (let i = 0; i < opaque.length; i += 200) {
    await w.host.run('setfattr', ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', '--', ...opaque.slice(i, i + 200)]);
  }
  for (const d of [...w.dirTimes].reverse()) {
    if (stillPlainDir(w.root, d.path)) lutimesSync(d.path, d.mtime, d.mtime);
  }
}
