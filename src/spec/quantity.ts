/**
 * Kubernetes resource quantities (`resource.Quantity`): a non-negative decimal number followed by
 * an optional suffix, either binary (Ki Mi Gi Ti Pi Ei), decimal SI (n u m k M G T P E) or a
 * decimal exponent (`1e3`, `5E-2`). Plain YAML numbers (`cpu: 0.5`) are accepted too.
 *
 * Arithmetic is exact: a quantity is kept as a fraction of big integers, so `0.1` CPU is exactly
 * 100 milli-CPUs and `100m` of memory rounds up to 1 byte, as Kubernetes' `Value()` does.
 */
import { invalidArgument } from '../errors/index.js';

/** An exact non-negative rational: numerator / denominator. */
interface Exact {
  num: bigint;
  den: bigint;
}

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
/** Exponents beyond this are refused rather than computed (no resource is 10^300 of anything). */
const MAX_EXPONENT = 300;
const QUANTITY_RE = /^\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?\d+)?$/;

function invalid(field: string, shown: string): never {
  throw invalidArgument(`${field}: invalid quantity ${JSON.stringify(shown)} (expected e.g. 128Mi, 1G, 500m)`);
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

function parseExact(q: string | number, field: string): Exact {
  let text: string;
  if (typeof q === 'number') {
    if (!Number.isFinite(q) || q < 0) invalid(field, String(q));
    text = String(q); // may be `1e+21` or `5e-7`, both valid quantity spellings
  } else if (typeof q === 'string') {
    text = q;
  } else {
    invalid(field, String(q));
  }
  const m = QUANTITY_RE.exec(text);
  if (!m) invalid(field, typeof q === 'string' ? q : text);
  const [intPart = '', fracPart = ''] = m[1]!.split('.');
  const suffix = m[2] ?? '';
  let exp10 = -fracPart.length;
  let exp2 = 0;
  if (suffix in BINARY) exp2 = BINARY[suffix]!;
  else if (suffix in DECIMAL) exp10 += DECIMAL[suffix]!;
  else {
    const e = Number(suffix.slice(1));
    if (!Number.isSafeInteger(e) || Math.abs(e) > MAX_EXPONENT) invalid(field, text);
    exp10 += e;
  }
  const digits = BigInt((intPart || '0') + fracPart);
  const num = digits * 2n ** BigInt(exp2) * (exp10 > 0 ? pow10(exp10) : 1n);
  const den = exp10 < 0 ? pow10(-exp10) : 1n;
  return { num, den };
}

function ceilDiv(e: Exact): bigint {
  return (e.num + e.den - 1n) / e.den;
}

function toSafe(v: bigint, field: string, shown: string | number, unit: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument(`${field}: quantity ${JSON.stringify(String(shown))} is too large (more than 2^53 ${unit})`);
  }
  return Number(v);
}

/**
 * The value of a quantity in base units (bytes, CPUs, …), as a JavaScript number.
 * Throws INVALID_ARGUMENT naming `field` for anything that is not a non-negative quantity.
 */
export function parseQuantity(q: string | number, field: string): number {
  const e = parseExact(q, field);
  const v = Number(e.num) / Number(e.den);
  if (!Number.isFinite(v)) throw invalidArgument(`${field}: quantity ${JSON.stringify(String(q))} is too large`);
  return v;
}

/** A memory quantity in whole bytes, rounded up (`100m` → 1, `1.5Gi` → 1610612736). */
export function memoryBytes(q: string | number, field: string): number {
  return toSafe(ceilDiv(parseExact(q, field)), field, q, 'bytes');
}

/** A CPU quantity in milli-CPUs, rounded up (`0.5` → 500, `250m` → 250, `1` → 1000). */
export function cpuMilli(q: string | number, field: string): number {
  const e = parseExact(q, field);
  return toSafe(ceilDiv({ num: e.num * 1000n, den: e.den }), field, q, 'milli-CPUs');
}
