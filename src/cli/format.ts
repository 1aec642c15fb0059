/** Output helpers for the CLI: tables, ages, sizes, and json/yaml rendering. */
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import type YAMLType from 'yaml';
import { invalidArgument } from '../errors/index.js';

// Loaded when first needed: `play` prints neither tables nor YAML, and start-up time counts.
const require = createRequire(import.meta.url);
const lazyTable = (): typeof TableType => require('cli-table3') as typeof TableType;
const lazyYaml = (): typeof YAMLType => require('yaml') as typeof YAMLType;

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseFormat(v: string): OutputFormat {
  if (v === 'table' || v === 'json' || v === 'yaml') return v;
  throw invalidArgument(`--output: expected table, json or yaml, got "${v}"`);
}

export function render(format: Exclude<OutputFormat, 'table'>, value: unknown): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : lazyYaml().stringify(value);
}

/** A borderless table like kubectl's and podman's. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const Table = lazyTable();
  const t = new Table({
    head,
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) t.push(r.map(String));
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)}${units[i]}`;
}

export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
