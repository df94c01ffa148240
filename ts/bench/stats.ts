// Summary statistics of the benchmark harness: percentiles of latency samples
// and the spread of repeated measurements. Pure functions over numbers.

/**
 * The p-th percentile (0 ≤ p ≤ 100) of `values` by linear interpolation
 * between closest ranks (the "R-7" / NumPy default definition): rank
 * h = (n − 1)·p/100, result = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
 * NaN for no values. `values` need not be sorted; it is not modified.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not within 0..100`);
  return percentileSorted([...values].sort((a, b) => a - b), p);
}

/** percentile() of values already sorted ascending (no copy). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** The median: percentile 50 (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (n − 1 in the denominator); 0 for fewer than two values. */
export function stddev(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / (values.length - 1));
}

/**
 * Coefficient of variation: sample standard deviation ÷ mean, as a fraction
 * (0.1 = 10%). 0 for fewer than two values or a zero mean.
 */
export function coefficientOfVariation(values: readonly number[]): number {
  const m = mean(values);
  if (values.length < 2 || m === 0 || !Number.isFinite(m)) return 0;
  return stddev(values) / Math.abs(m);
}

/** Above this CV across repeats a benchmark is unstable: reported, never gated. */
export const UNSTABLE_CV = 0.1;

/** Latency figures of one repeat from per-op samples in nanoseconds. */
export function latencySummary(samples: Float64Array): { p50: number; p95: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort();
  if (sorted.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  return {
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}
