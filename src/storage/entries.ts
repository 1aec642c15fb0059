/**
 * Writes one tar entry of a layer into the layer directory: regular files, directories, symlinks,
 * hard links, devices and FIFOs, plus the OCI whiteouts turned into their overlayfs form.
 */
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { ReadEntry } from 'tar';
import type { Host } from '../host/index.js';
import { hasErrno } from '../errors/index.js';
import { UnsafeEntryError, cleanEntryPath, resolveDirInside } from './safe-path.js';

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
}

async function removeExisting(p: string, keepDir: boolean): Promise<boolean> {
  try {
    const st = await lstat(p);
    if (keepDir && st.isDirectory()) return true;
    await rm(p, { recursive: true, force: true });
  } catch (e) {
    if (!hasErrno(e, 'ENOENT')) throw e;
  }
  return false;
}

async function setOwner(w: LayerWriter, p: string, e: ReadEntry): Promise<void> {
  if (w.asRoot) await lchown(p, e.uid ?? 0, e.gid ?? 0);
}

async function writeFile(p: string, e: ReadEntry, mode: number): Promise<void> {
  const fh = await open(p, 'wx', mode);
  try {
    for await (const chunk of e as AsyncIterable<Buffer>) await fh.write(chunk);
  } finally {
    await fh.close();
  }
}

async function mknod(w: LayerWriter, p: string, args: string[]): Promise<void> {
  await w.host.run('mknod', ['-m', '0', p, ...args]);
}

/** Handles an OCI whiteout entry; returns false when the entry is not one. */
async function whiteout(w: LayerWriter, parts: string[]): Promise<boolean> {
  const base = parts[parts.length - 1];
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return false;
  const parent = await resolveDirInside(w.root, parts.slice(0, -1), { create: true });
  if (base === OPAQUE_MARKER) {
    w.opaqueDirs.add(parent);
    return true;
  }
  const name = base.slice(WHITEOUT_PREFIX.length);
  // other `.wh..wh.` names are aufs bookkeeping (hard link dirs), meaningless here
  if (name === '' || name.startsWith(WHITEOUT_PREFIX)) return true;
  const target = path.join(parent, name);
  await removeExisting(target, false);
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
      await setOwner(w, w.root, e);
      await chmod(w.root, e.mode ?? 0o755);
    }
    return;
  }
  const parent = await resolveDirInside(w.root, parts.slice(0, -1), { create: true });
  const p = path.join(parent, last);
  const mtime = e.mtime ?? new Date(0);
  switch (e.type) {
    case 'Directory':
    case 'GNUDumpDir': {
      const existed = await removeExisting(p, true);
      if (!existed) await mkdir(p, { mode: 0o700 });
      await setOwner(w, p, e);
      await chmod(p, e.mode ?? 0o755);
      w.dirTimes.push({ path: p, mtime });
      return;
    }
    case 'File':
    case 'OldFile':
    case 'ContiguousFile': {
      await removeExisting(p, false);
      await writeFile(p, e, 0o600);
      await setOwner(w, p, e);
      await chmod(p, e.mode ?? 0o644);
      await utimes(p, mtime, mtime);
      return;
    }
    case 'SymbolicLink': {
      await removeExisting(p, false);
      await symlink(e.linkpath ?? '', p);
      await setOwner(w, p, e);
      await lutimes(p, mtime, mtime);
      return;
    }
    case 'Link': {
      const targetParts = cleanEntryPath(e.linkpath ?? '');
      const targetName = targetParts[targetParts.length - 1];
      if (targetName === undefined) throw new UnsafeEntryError('is a hard link to the layer root');
      const targetDir = await resolveDirInside(w.root, targetParts.slice(0, -1), { create: false });
      const target = path.join(targetDir, targetName);
      const st = await lstat(target).catch(() => undefined);
      if (!st) throw new UnsafeEntryError(`is a hard link to "${e.linkpath}" which is not in the layer`);
      if (st.isDirectory()) throw new UnsafeEntryError(`is a hard link to directory "${e.linkpath}"`);
      await removeExisting(p, false);
      await link(target, p);
      return;
    }
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO': {
      await removeExisting(p, false);
      const kind = e.type === 'FIFO' ? ['p'] : [e.type === 'CharacterDevice' ? 'c' : 'b', ...devNumbers(e)];
      await mknod(w, p, kind);
      await setOwner(w, p, e);
      await chmod(p, e.mode ?? 0o644);
      await utimes(p, mtime, mtime);
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
async function stillPlainDir(root: string, p: string): Promise<boolean> {
  let cur = root;
  for (const part of path
    .relative(root, p)
    .split(path.sep)
    .filter((x) => x !== '')) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (!st?.isDirectory()) return false;
  }
  return true;
}

/** Work left for after the last entry: opaque markers, then directory mtimes (deepest first). */
export async function finishLayer(w: LayerWriter): Promise<void> {
  const opaque: string[] = [];
  for (const d of w.opaqueDirs) if (await stillPlainDir(w.root, d)) opaque.push(d);
  for (let i = 0; i < opaque.length; i += 200) {
    await w.host.run('setfattr', ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', '--', ...opaque.slice(i, i + 200)]);
  }
  for (const d of [...w.dirTimes].reverse()) {
    if (await stillPlainDir(w.root, d.path)) await lutimes(d.path, d.mtime, d.mtime);
  }
}
