/**
 * Overlay mounts through the host adapter (util-linux mount/umount), and mount queries read from
 * /proc/self/mountinfo.
 */
import { mkdir, readFile, realpath, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../host/index.js';
import { failedPrecondition, invalidArgument } from '../errors/index.js';

export interface MountOverlayOptions {
  /** layer directories, TOP-most first (the order of overlayfs' lowerdir option) */
  lowerDirs: string[];
  /** writable layer; omit (with workDir) for a read-only view */
  upperDir?: string;
  workDir?: string;
  target: string;
  readOnly?: boolean;
  /**
   * where to make short symlinks (`0`, `1`, …) to the lower dirs when the option string would not
   * fit in a page or a path holds a character overlayfs treats specially; default: a `l` dir
   * beside the upper dir (or the target)
   */
  linkDir?: string;
}

/** The mount(2) data argument must fit in one page, NUL included. */
const MAX_OPTIONS = 4095;
const SPECIAL = /[,:\\]/;

function optionString(lower: string[], upper?: string, work?: string, readOnly?: boolean): string {
  const parts = [`lowerdir=${lower.join(':')}`];
  if (upper !== undefined && work !== undefined) parts.push(`upperdir=${upper}`, `workdir=${work}`);
  if (readOnly) parts.push('ro');
  return parts.join(',');
}

/** Mounts an overlay at `target` (which must exist). */
export async function mountOverlay(host: Host, opts: MountOverlayOptions): Promise<void> {
  const { lowerDirs, upperDir, workDir, target } = opts;
  if (lowerDirs.length === 0) throw invalidArgument(`overlay at ${target}: at least one lower dir is needed`);
  if ((upperDir === undefined) !== (workDir === undefined)) {
    throw invalidArgument(`overlay at ${target}: upperDir and workDir go together`);
  }
  for (const d of [upperDir, workDir, target]) {
    if (d !== undefined && SPECIAL.test(d)) throw invalidArgument(`overlay at ${target}: path ${d} has , : or \\`);
  }
  const readOnly = opts.readOnly === true || upperDir === undefined;
  if (upperDir === undefined && lowerDirs.length === 1) {
    // overlayfs wants two lower dirs without an upper one: a read-only bind mount is the same view
    await host.run('mount', ['--bind', lowerDirs[0]!, target]);
    await host.run('mount', ['-o', 'remount,bind,ro', target]);
    return;
  }
  let options = optionString(lowerDirs, upperDir, workDir, readOnly);
  let cwd: string | undefined;
  if (Buffer.byteLength(options) > MAX_OPTIONS || lowerDirs.some((d) => SPECIAL.test(d))) {
    const linkDir = opts.linkDir ?? path.join(path.dirname(upperDir ?? target), 'l');
    await rm(linkDir, { recursive: true, force: true });
    await mkdir(linkDir, { recursive: true });
    await Promise.all(lowerDirs.map((d, i) => symlink(path.resolve(d), path.join(linkDir, String(i)))));
    cwd = linkDir;
    options = optionString(
      lowerDirs.map((_, i) => String(i)),
      upperDir,
      workDir,
      readOnly,
    );
    if (Buffer.byteLength(options) > MAX_OPTIONS) {
      throw invalidArgument(`overlay at ${target}: ${lowerDirs.length} layers do not fit in the mount options`);
    }
  }
  await host.run('mount', ['-t', 'overlay', 'overlay', '-o', options, target], cwd ? { cwd } : {});
}

/** Unmounts `target`; not being mounted is fine. */
export async function unmount(host: Host, target: string): Promise<void> {
  for (let i = 0; i < 8 && (await isMounted(target)); i++) {
    const r = await host.run('umount', [target], { allowFailure: true });
    if (r.code !== 0 && (await isMounted(target))) {
      throw failedPrecondition(`cannot unmount ${target}: ${r.stderr.trim() || `exit status ${r.code}`}`);
    }
  }
}

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

const unescape = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/<pid>/mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [left, right] = line.split(' - ');
    const f = left?.split(' ') ?? [];
    const r = right?.split(' ') ?? [];
    if (f.length < 6 || r.length < 3) continue;
    out.push({ mountPoint: unescape(f[4]!), fsType: r[0]!, source: unescape(r[1]!), options: r[2]! });
  }
  return out;
}

export async function readMounts(file = '/proc/self/mountinfo'): Promise<MountInfo[]> {
  return parseMountInfo(await readFile(file, 'utf8'));
}

async function canonical(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/** True when something is mounted exactly at `target`. */
export async function isMounted(target: string): Promise<boolean> {
  const t = await canonical(target);
  return (await readMounts()).some((m) => m.mountPoint === t);
}

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const d = await canonical(dir);
  const found = (await readMounts())
    .map((m) => m.mountPoint)
    .filter((m) => m === d || m.startsWith(d.endsWith('/') ? d : `${d}/`));
  return [...new Set(found)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `dir` (deepest first). */
export async function unmountAll(host: Host, dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(host, m);
}
