/**
 * Registry configuration and credentials.
 *
 * `registries.json` (NSPOD_REGISTRIES_CONF, default /etc/nspod/registries.json; a missing file
 * means the defaults):
 *   {
 *     "search": ["docker.io"],                       // where short names (`busybox`) are looked up
 *     "registries": {
 *       "docker.io": { "mirrors": ["mirror.example:5000"] },   // tried in order before the registry
 *       "reg.example:5000": { "insecure": true },              // plain HTTP / unverified TLS allowed
 *       "secure.example": { "caFile": "/etc/nspod/certs/secure.pem" }  // trusted besides system CAs
 *     }
 *   }
 * Loopback registries (localhost, 127.0.0.0/8, ::1) are insecure unless `"insecure": false`.
 *
 * The auth file (NSPOD_AUTH_FILE, default `<root>/auth.json`, mode 0600) uses docker's
 * `config.json` format: `{"auths": {"reg:5000": {"auth": base64("user:pass")}}}`; for reading,
 * `$HOME/.docker/config.json` is consulted too, so existing docker logins work.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { hasErrno, invalidArgument, messageOf } from '../../errors/index.js';
import { DOCKER_HUB } from '../reference.js';

export const DEFAULT_REGISTRIES_CONF = '/etc/nspod/registries.json';

export interface RegistryEntry {
  mirrors?: string[];
  insecure?: boolean;
  caFile?: string;
}

export interface RegistriesConfig {
  /** registries short names are looked up in, in order */
  search: string[];
  registries: Record<string, RegistryEntry>;
}

export const defaultRegistriesConfig = (): RegistriesConfig => ({ search: [DOCKER_HUB], registries: {} });

export async function loadRegistriesConfig(env: NodeJS.ProcessEnv = process.env): Promise<RegistriesConfig> {
  const file = env.NSPOD_REGISTRIES_CONF ?? DEFAULT_REGISTRIES_CONF;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return defaultRegistriesConfig();
    throw e;
  }
  // the schema (zod) is loaded only when there is a file to check: most hosts have none
  const { parseRegistriesConfig } = await import('./registries-file.js');
  return parseRegistriesConfig(text, file);
}

function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon > 0 && registry.indexOf(':') === colon ? registry.slice(0, colon) : registry;
}

export function isLoopback(registry: string): boolean {
  const h = hostOf(registry);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Whether plain HTTP (or unverified TLS) is allowed for `registry`. */
export function isInsecure(cfg: RegistriesConfig, registry: string): boolean {
  return cfg.registries[registry]?.insecure ?? isLoopback(registry);
}

/** Mirrors to try before `registry` itself, then the registry. */
export function endpointsFor(cfg: RegistriesConfig, registry: string): string[] {
  return [...(cfg.registries[registry]?.mirrors ?? []), registry];
}

// ---------------------------------------------------------------------------------------------
// credentials

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

export function authFilePath(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.NSPOD_AUTH_FILE ?? path.join(root, 'auth.json');
}

/** docker.io logins are stored under docker's historic key, as docker does. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const keysFor = (registry: string): string[] =>
  registry === DOCKER_HUB
    ? [DOCKER_HUB_KEY, DOCKER_HUB, 'index.docker.io']
    : [registry, `https://${registry}`, `http://${registry}`];

async function readAuthFile(file: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return {};
    throw e;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as AuthFile;
  } catch (e) {
    throw invalidArgument(`auth file ${file}: not valid JSON: ${messageOf(e)}`, e);
  }
}

/** Decodes one `auths` entry. */
export function decodeAuth(entry: { auth?: string; username?: string; password?: string }): Credentials | undefined {
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) return undefined;
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined)
    return { username: entry.username, password: entry.password };
  return undefined;
}

export const encodeAuth = (c: Credentials): string => Buffer.from(`${c.username}:${c.password}`).toString('base64');

/** Credentials for `registry`: our auth file first, then docker's `~/.docker/config.json`. */
export async function findCredentials(
  file: string,
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  const files = [file];
  if (env.NSPOD_AUTH_FILE === undefined) files.push(path.join(env.HOME ?? os.homedir(), '.docker', 'config.json'));
  for (const f of files) {
    const auths = (await readAuthFile(f)).auths ?? {};
    for (const k of keysFor(registry)) {
      const entry = auths[k];
      const c = entry ? decodeAuth(entry) : undefined;
      if (c) return c;
    }
  }
  return undefined;
}

async function writeAuthFile(file: string, value: AuthFile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.chmod(0o600);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Stores credentials for `registry` (other entries and keys of the file are kept). */
export async function saveCredentials(file: string, registry: string, c: Credentials): Promise<void> {
  const cur = await readAuthFile(file);
  const keys = keysFor(registry);
  const auths = Object.fromEntries(Object.entries(cur.auths ?? {}).filter(([k]) => !keys.includes(k)));
  auths[keys[0]!] = { auth: encodeAuth(c) };
  await writeAuthFile(file, { ...cur, auths });
}

/** Forgets credentials for `registry`; false when there were none. */
export async function removeCredentials(file: string, registry: string): Promise<boolean> {
  const cur = await readAuthFile(file);
  const keys = keysFor(registry);
  const entries = Object.entries(cur.auths ?? {});
  const kept = entries.filter(([k]) => !keys.includes(k));
  if (kept.length === entries.length) return false;
  await writeAuthFile(file, { ...cur, auths: Object.fromEntries(kept) });
  return true;
}
