// The batching-monotonicity rule of the B-tree suite: batching puts into
// commits never lowers update throughput, beyond BATCHING_TOLERANCE of noise
// (txn1 against txn10 and txn100; txn10 against txn100 is reported only).

import { describe, expect, it } from 'vitest';

import type { SummaryEntry } from '../schema.js';
import { BATCHING_TOLERANCE, btreeRules } from './btree.js';

function outcome(txn1: number, txn10: number, txn100: number) {
  const entries = new Map<string, SummaryEntry>();
  const rates = [txn1, txn10, txn100];
  [1, 10, 100].forEach((t, i) => {
    entries.set(`micro/btree/point_put_update_10pct_hot_txn${t}.native`, { ops_per_sec: rates[i]! } as SummaryEntry);
  });
  const out = btreeRules[0]!.check(entries);
  expect(out).toHaveLength(1); // fallback entries absent: not judged
  return out[0]!;
}

describe('batching monotonicity', () => {
  it('holds when throughput rises with the batch', () => {
    expect(outcome(3000, 15000, 21000).ok).toBe(true);
  });

  it('holds when a larger batch falls short by less than the tolerance (noise), and says so', () => {
    const o = outcome(3296, 3100, 17468);
    expect(o.ok).toBe(true);
    expect(o.detail).toContain('txn1 3296 ~ txn10 3100');
    expect(outcome(3000, 3000 / (1 + BATCHING_TOLERANCE) + 1, 10000).ok).toBe(true);
  });

  it('fails when batching is slower than one put per commit beyond the tolerance', () => {
    const o = outcome(3000, 2000, 12000);
    expect(o.ok).toBe(false);
    expect(o.detail).toContain('txn1 3000 > txn10 2000');
  });

  it('fails when 100 puts per commit are slower than 10 beyond the tolerance (the page-rewrite regression)', () => {
    const o = outcome(3615, 17822, 14762);
    expect(o.ok).toBe(false);
    expect(o.detail).toContain('txn10 17822 > txn100 14762');
    expect(outcome(3000, 15000, 15000 / (1 + BATCHING_TOLERANCE) + 1).ok).toBe(true);
  });
});
