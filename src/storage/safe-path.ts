/**
 * Path safety for layer unpacking: every tar entry name and every symlink met on the way is
 * resolved inside the layer root, and anything that would land outside it is refused.
 */
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { hasErrno } from '../errors/index.js';

/** Thrown (and turned into a layer-naming error by the unpacker) when a path leaves the root. */
export class UnsafeEntryError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'UnsafeEntryError';
  }
}

/**
 * The components of a tar entry name after lexical cleaning (`.` and empty parts dropped, `..`
 * applied). Absolute names and names whose `..` climbs above the root are refused.
 */
export function cleanEntryPath(name: string): string[] {
  if (name.startsWith('/')) throw new UnsafeEntryError('is an absolute path');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new UnsafeEntryError('escapes the layer root');
      out.pop();
    } else {
      out.push(part);
    }
  }
  return out;
}

const MAX_SYMLINKS = 40;

export interface ResolveOptions {
  /** create missing directories (mode 0755) on the way */
  create: boolean;
}

/**
 * Resolves directory components below `root` the way the kernel would, following symlinks met on
 * the way but only while they stay inside `root` (an absolute target, or a relative one that
 * climbs out, is refused). Returns the host path of the directory they name.
 */
export async function resolveDirInside(root: string, components: string[], opts: ResolveOptions): Promise<string> {
  return resolveDirInsideSync(root, components, opts);
}

/**
 * resolveDirInside with synchronous syscalls (each takes microseconds; a thread-pool round trip
 * costs far more when the pool is busy writing a layer). With `cache`, a resolution that met
 * only real directories is remembered by its components; whoever removes or replaces a path
 * under root must forget it (forgetUnder).
 */
export function resolveDirInsideSync(
  root: string,
  components: string[],
  opts: ResolveOptions & { cache?: Map<string, string> },
): string {
  const key = components.join('/');
  const hit = opts.cache?.get(key);
  if (hit !== undefined) return hit;
  const stack: string[] = [];
  const queue = [...components];
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) throw new UnsafeEntryError('escapes the layer root');
      stack.pop();
      continue;
    }
    const here = path.join(root, ...stack, part);
    let st;
    try {
      st = lstatSync(here);
    } catch (e) {
      if (!hasErrno(e, 'ENOENT') || !opts.create) throw e;
      mkdirSync(here, { mode: 0o755 });
      stack.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new UnsafeEntryError(`has too many levels of symlinks at "${stack.join('/')}"`);
      const target = readlinkSync(here);
      const shown = [...stack, part].join('/');
      if (target.startsWith('/')) {
        throw new UnsafeEntryError(`is written through symlink "${shown}" -> "${target}" that leaves the layer root`);
      }
      const parts = target.split('/');
      // check the climb now, so the message names the symlink rather than a later part
      let depth = stack.length;
      for (const p of parts) {
        if (p === '..') depth--;
        else if (p !== '' && p !== '.') depth++;
        if (depth < 0) {
          throw new UnsafeEntryError(`is written through symlink "${shown}" -> "${target}" that leaves the layer root`);
        }
      }
      queue.unshift(...parts);
      continue;
    }
    if (!st.isDirectory()) {
      throw new UnsafeEntryError(`has a parent "${[...stack, part].join('/')}" that is not a directory`);
    }
    stack.push(part);
  }
  const out = path.join(root, ...stack);
  // through a symlink the answer depends on more than the directories named: not cached
  if (opts.cache && links === 0) opts.cache.set(key, out);
  return out;
}

/** Forgets cached resolutions of `p` and of everything below it (p was removed or replaced). */
export function forgetUnder(cache: Map<string, string>, p: string): void {
  const prefix = `${p}/`;
  for (const [k, v] of cache) if (v === p || v.startsWith(prefix)) cache.delete(k);
}
