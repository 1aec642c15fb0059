/**
 * User resolution in a container's rootfs: `name`, `uid`, `name:group`, `uid:gid` as in an image's
 * `User`, looked up in the rootfs's /etc/passwd and /etc/group. Symlinks are followed inside the
 * rootfs only, so an image cannot make nspod read a host file.
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { hasErrno, invalidArgument } from '../errors/index.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 4 || !Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = Number(f[2]);
    if (f.length < 3 || f[2] === '' || !Number.isInteger(gid)) continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    out.push({ name: f[0]!, gid, members });
  }
  return out;
}

const isId = (s: string): boolean => /^\d+$/.test(s);

/**
 * Pure resolution against parsed files. The primary gid is the group given, else the user's
 * passwd gid, else 0; additional gids are the groups that list the user's name as a member.
 */
export function resolveUserIn(spec: string, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  const [userPart = '', groupPart, ...rest] = spec.trim().split(':');
  if (rest.length > 0) throw invalidArgument(`invalid user ${JSON.stringify(spec)}: expected user[:group]`);
  let uid = 0;
  let gid = 0;
  let entry: PasswdEntry | undefined;
  if (userPart === '') {
    entry = passwd.find((p) => p.uid === 0);
  } else if (isId(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw invalidArgument(`cannot find user ${JSON.stringify(userPart)} in the image's /etc/passwd`);
    uid = entry.uid;
  }
  if (entry) gid = entry.gid;
  if (groupPart !== undefined && groupPart !== '') {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`cannot find group ${JSON.stringify(groupPart)} in the image's /etc/group`);
      gid = g.gid;
    }
  }
  const additionalGids = entry
    ? [...new Set(groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid))]
    : [];
  return { uid, gid, additionalGids };
}

/** Resolves `rel` (absolute inside the rootfs) following symlinks without leaving the rootfs. */
export async function resolveInRoot(rootfs: string, rel: string): Promise<string> {
  const pending = rel.split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const seg = pending.shift()!;
    if (seg === '.') continue;
    if (seg === '..') {
      done.pop();
      continue;
    }
    const host = path.join(rootfs, ...done, seg);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch (e) {
      if (!hasErrno(e, 'ENOENT') && !hasErrno(e, 'ENOTDIR')) throw e;
    }
    if (!isLink) {
      done.push(seg);
      continue;
    }
    if (++hops > 40) throw invalidArgument(`too many symlinks resolving ${rel} in ${rootfs}`);
    const target = await readlink(host);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter(Boolean));
  }
  return path.join(rootfs, ...done);
}

async function readInRoot(rootfs: string, rel: string): Promise<string> {
  try {
    return await readFile(await resolveInRoot(rootfs, rel), 'utf8');
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR') || hasErrno(e, 'EISDIR')) return '';
    throw e;
  }
}

/** Resolves an image-style user spec in a rootfs; an empty spec is root. */
export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all([readInRoot(rootfs, '/etc/passwd'), readInRoot(rootfs, '/etc/group')]);
  return resolveUserIn(user, parsePasswd(passwd), parseGroup(group));
}

/** The user spec for a container: runAsUser[:runAsGroup] when set, else the image's User. */
export function userSpecFor(imageUser: string | undefined, sc: { runAsUser?: number; runAsGroup?: number }): string {
  if (sc.runAsUser !== undefined) {
    return sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : String(sc.runAsUser);
  }
  const base = imageUser ?? '';
  if (sc.runAsGroup === undefined) return base;
  return `${base.split(':')[0] ?? ''}:${sc.runAsGroup}`;
}
