/**
 * Typed readers over parsed YAML (plain JS values), each given the field path it reads so that a
 * wrong type becomes `spec.containers[0].command[1]: must be a string (got number 3; quote it in YAML)`.
 * A `null` value (an empty YAML field) reads as absent, as it does for Kubernetes.
 */
import { fail } from './validate.js';

export type YamlMap = Record<string, unknown>;

/** Collects warnings and stops at the first error. */
export interface Reader {
  warnings: string[];
}

/** `a.b`, or `a["weird/key"]` for keys that are not plain identifiers. */
export function child(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** A short description of a value's type for error messages. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function got(v: unknown): string {
  const hint = typeof v === 'number' || typeof v === 'boolean' ? '; quote it in YAML' : '';
  return `got ${describe(v)}${hint}`;
}

export function isMap(v: unknown): v is YamlMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asMap(v: unknown, path: string): YamlMap {
  if (!isMap(v)) fail(path, `must be a mapping (got ${describe(v)})`);
  return v;
}

export function optMap(m: YamlMap, key: string, path: string): YamlMap | undefined {
  const v = m[key];
  return v === null || v === undefined ? undefined : asMap(v, child(path, key));
}

export function optList(m: YamlMap, key: string, path: string): unknown[] | undefined {
  const v = m[key];
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v)) fail(child(path, key), `must be a list (got ${describe(v)})`);
  return v;
}

export function asString(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, `must be a string (${got(v)})`);
  return v;
}

export function optString(m: YamlMap, key: string, path: string): string | undefined {
  const v = m[key];
  return v === null || v === undefined ? undefined : asString(v, child(path, key));
}

export function reqString(m: YamlMap, key: string, path: string): string {
  const v = optString(m, key, path);
  if (v === undefined || v.trim() === '') fail(child(path, key), 'required');
  return v;
}

export function optBool(m: YamlMap, key: string, path: string): boolean | undefined {
  const v = m[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(child(path, key), `must be true or false (got ${describe(v)})`);
  return v;
}

export function optInt(m: YamlMap, key: string, path: string, range: { min: number; max: number }): number | undefined {
  const v = m[key];
  if (v === null || v === undefined) return undefined;
  const p = child(path, key);
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(p, `must be an integer (got ${describe(v)})`);
  if (v < range.min || v > range.max) fail(p, `${v} is out of range (${range.min}-${range.max})`);
  return v;
}

export function optStringList(m: YamlMap, key: string, path: string): string[] | undefined {
  const list = optList(m, key, path);
  return list?.map((v, i) => asString(v, `${child(path, key)}[${i}]`));
}

/** Warns `<path>.<key>: not supported yet, ignored` for every key outside `known`. */
export function warnUnknown(r: Reader, m: YamlMap, known: readonly string[], path: string): void {
  for (const key of Object.keys(m)) {
    if (!known.includes(key)) r.warnings.push(`${child(path, key)}: not supported yet, ignored`);
  }
}
