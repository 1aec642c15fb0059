/**
 * YAML 1.1 octal integers (`0644` → 420) on top of the YAML 1.2 core schema, as kubectl reads
 * them (its parser follows YAML 1.1 for integers, so `defaultMode: 0644` is rw-r--r--).
 * `0o644` keeps working; a plain `0` or a number with 8/9 in it stays decimal.
 */
import type { ScalarTag } from 'yaml';

export const yaml11Octal: ScalarTag = {
  identify: (v) => typeof v === 'number' && Number.isInteger(v),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^[-+]?0[0-7]+$/,
  resolve: (s) => {
    const neg = s.startsWith('-');
    const n = parseInt(s.replace(/^[-+]?0/, ''), 8);
    return neg ? -n : n;
  },
};
