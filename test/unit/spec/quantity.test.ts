import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpuMilli, memoryBytes, parseQuantity } from '../../../src/spec/index.js';
import { isNspodError } from '../../../src/errors/index.js';

const F = 'spec.containers[1].resources.limits.memory';

describe('parseQuantity', () => {
  const good: [string | number, number][] = [
    ['0', 0],
    [0, 0],
    ['1', 1],
    [2, 2],
    ['1Ki', 1024],
    ['128Mi', 128 * 2 ** 20],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['2Ti', 2 * 2 ** 40],
    ['1Pi', 2 ** 50],
    ['1Ei', 2 ** 60],
    ['1k', 1000],
    ['1M', 1e6],
    ['1G', 1e9],
    ['3T', 3e12],
    ['1P', 1e15],
    ['1E', 1e18],
    ['500m', 0.5],
    ['1e3', 1000],
    ['1E3', 1000],
    ['5e-1', 0.5],
    ['1e+3', 1000],
    ['.5', 0.5],
    ['2.', 2],
    ['+1', 1],
    [0.5, 0.5],
    [1e21, 1e21],
  ];
  for (const [input, want] of good) {
    it(`${JSON.stringify(input)} → ${want}`, () => assert.equal(parseQuantity(input, F), want));
  }

  const bad = ['256Mx', '-1', 'abc', '', ' 1Gi', '1 Gi', 'Mi', '1KI', '1.2.3', '1e', '1e1000', '0x10', 'Infinity'];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseQuantity(input, F),
        (e: unknown) =>
          isNspodError(e, 'INVALID_ARGUMENT') &&
          e.message === `${F}: invalid quantity ${JSON.stringify(input)} (expected e.g. 128Mi, 1G, 500m)`,
      );
    });
  }
  it('rejects negative and non-finite numbers', () => {
    for (const n of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => parseQuantity(n, F), /invalid quantity/);
    }
  });
});

describe('memoryBytes', () => {
  const cases: [string | number, number][] = [
    ['256Mi', 268435456],
    ['1.5Gi', 1610612736],
    ['100m', 1], // 0.1 byte rounds up
    ['1001m', 2],
    ['0', 0],
    ['1G', 1e9],
    ['1e3', 1000],
    ['0.1Ki', 103], // 102.4 rounds up
    [134217728, 134217728],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${want} bytes`, () => assert.equal(memoryBytes(input, F), want));
  }
  it('refuses values beyond 2^53 bytes with the field named', () => {
    assert.throws(
      () => memoryBytes('100Ei', F),
      (e: unknown) =>
        isNspodError(e, 'INVALID_ARGUMENT') && e.message.startsWith(`${F}: quantity "100Ei" is too large`),
    );
  });
});

describe('cpuMilli', () => {
  const cases: [string | number, number][] = [
    [0.5, 500],
    ['0.5', 500],
    ['250m', 250],
    [1, 1000],
    ['1', 1000],
    ['2', 2000],
    ['0.1', 100], // exact decimal arithmetic: not 100.00000000000001 → 101
    [0.1, 100],
    ['1.0005', 1001], // rounds up
    ['100u', 1],
    ['0', 0],
    ['1k', 1000000],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${want}m`, () => assert.equal(cpuMilli(input, 'cpu'), want));
  }
  it('names the field in errors', () => {
    assert.throws(() => cpuMilli('half', 'spec.containers[0].resources.requests.cpu'), {
      message: 'spec.containers[0].resources.requests.cpu: invalid quantity "half" (expected e.g. 128Mi, 1G, 500m)',
    });
  });
});
