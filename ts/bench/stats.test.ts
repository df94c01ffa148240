import { describe, expect, it } from 'vitest';
import { coefficientOfVariation, latencySummary, mean, median, percentile, stddev } from './stats.js';

describe('percentiles', () => {
  it('interpolate linearly between closest ranks (R-7)', () => {
    const xs = [15, 20, 35, 40, 50];
    expect(percentile(xs, 0)).toBe(15);
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile(xs, 50)).toBe(35);
    expect(percentile(xs, 40)).toBeCloseTo(29, 12); // h = 1.6 → 20 + 0.6·15
    expect(percentile(xs, 99)).toBeCloseTo(49.6, 12);
  });
  it('1..100: p50 50.5, p95 95.05, p99 99.01', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted on purpose
    expect(percentile(xs, 50)).toBeCloseTo(50.5, 12);
    expect(percentile(xs, 95)).toBeCloseTo(95.05, 12);
    expect(percentile(xs, 99)).toBeCloseTo(99.01, 12);
    expect(xs[0]).toBe(100); // input untouched
  });
  it('median of even and odd counts; empty is NaN; p out of range throws', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
  it('latencySummary gives p50/p95/p99/max of samples', () => {
    const s = latencySummary(Float64Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(s.p50).toBeCloseTo(500.5, 9);
    expect(s.p99).toBeCloseTo(990.01, 9);
    expect(s.max).toBe(1000);
  });
});

describe('coefficient of variation', () => {
  it('is the sample standard deviation over the mean', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(xs)).toBe(5);
    expect(stddev(xs)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(coefficientOfVariation(xs)).toBeCloseTo(Math.sqrt(32 / 7) / 5, 12);
  });
  it('is 0 for identical values, a single value or a zero mean', () => {
    expect(coefficientOfVariation([7, 7, 7])).toBe(0);
    expect(coefficientOfVariation([7])).toBe(0);
    expect(coefficientOfVariation([0, 0])).toBe(0);
  });
  it('100 and 120: 0.1286 (unstable above 0.10)', () => {
    expect(coefficientOfVariation([100, 120])).toBeCloseTo(Math.SQRT2 * 10 / 110, 12);
  });
});
