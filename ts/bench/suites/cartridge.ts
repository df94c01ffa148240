// macro/cartridge/*: a pending_tasks_by_type cartridge against the queue's
// ordered index and against a scan of the task records (issue #16 §4), at
// 10k ready tasks (ci) and 1M (dev_nvme), 64 types. Each repeat runs
// ts/bench/cartridge_load.ts in a child process on the implementation under
// test. Samples are the cartridge's lookups; extra figures give every way's
// p50 and p99, their ratios, and the cartridge's build (from a snapshot, from
// the log), cold load, size and cost per commit applied; and claims/s with
// and without the cartridge (ts/bench/cartridge_claims.ts). Where the cartridge
// does not win, the ratios say so; the README says when to turn it on.

import * as path from 'node:path';
import type { CartridgeClaimsOptions, CartridgeClaimsResult } from '../cartridge_claims.js';
import type { CartridgeLoadOptions, CartridgeLoadResult } from '../cartridge_load.js';
import type { Benchmark, Profile } from '../registry.js';
import { childCase, removeDatabase, runDriver } from './driver.js';

const g = { suite: 'macro', group: 'cartridge', kind: 'db' } as const;

/** Ready tasks: 1M at dev_nvme (the figure), 10k at ci. */
export function cartridgeTasks(p: Profile): number {
  return p.name === 'dev_nvme' ? 1_000_000 : 10_000;
}
const TYPES = 64;
/** Ready tasks of the claims benchmark: enough for every round's claims, and 1M at dev_nvme. */
function claimTasks(p: Profile): number {
  return p.name === 'dev_nvme' ? 1_000_000 : 50_000;
}
const CLAIMS = 2_000;
const ROUNDS = 3;
const CONCURRENCY = 16;
const OPS = 2_000;
/** Lookups by scanning every task record: a few, they take a full scan each. */
const SCAN_OPS = 20;

function quantile(ns: number[], q: number): number {
  const s = [...ns].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
}

type Way = 'nextNs' | 'countNs';

const WHAT: Record<Way, string> = {
  nextNs: 'the next ready task of a type (claim order)',
  countNs: 'the number of ready tasks of a type',
};

export function cartridgeBenchmarks(): Benchmark[] {
  const lookups = (['nextNs', 'countNs'] as const).map(
    (way): Benchmark => ({
      ...g,
      name: way === 'nextNs' ? 'next_ready' : 'count_by_type',
      critical: false,
      targets: [{ name: `cartridge p50 at most the ordered index's (${WHAT[way]})`, metric: 'index_over_cartridge', bound: 'atLeast', limit: 1, unit: 'ratio' }],
      params: (p) => ({ lookup: WHAT[way], ready_tasks: cartridgeTasks(p), types: TYPES, ops: OPS, scan_ops: SCAN_OPS, ways: 'cartridge (samples), ordered index, task scan' }),
      setup(ctx) {
        return childCase('cartridge_load', OPS, 1, (n) => {
          const file = path.join(ctx.dir, `c${n}.ndb`);
          const res = runDriver('cartridge_load', { file, tasks: cartridgeTasks(ctx.profile), types: TYPES, ops: OPS, scanOps: SCAN_OPS } satisfies CartridgeLoadOptions, ctx.impl, 1_800_000) as CartridgeLoadResult;
          removeDatabase(file);
          const ns = res[way];
          const p50 = (w: 'cartridge' | 'index' | 'scan'): number => quantile(ns[w], 0.5);
          return {
            ops: ns.cartridge.length,
            durationNs: ns.cartridge.reduce((a, b) => a + b, 0),
            samples: Float64Array.from(ns.cartridge),
            extra: {
                cartridge_p50_ns: p50('cartridge'),
                cartridge_p99_ns: quantile(ns.cartridge, 0.99),
                index_p50_ns: p50('index'),
                index_p99_ns: quantile(ns.index, 0.99),
                scan_p50_ns: p50('scan'),
                index_over_cartridge: p50('index') / p50('cartridge'),
                scan_over_cartridge: p50('scan') / p50('cartridge'),
                build_snapshot_ms: res.buildSnapshotMs,
                build_log_ms: res.buildLogMs,
                load_ms: res.loadMs,
                load_mapped: res.loadMapped ? 1 : 0,
                ...(Number.isNaN(res.coldLoadMs) ? {} : { cold_load_ms: res.coldLoadMs }),
                file_bytes: res.bytes,
                apply_us_per_commit: res.applyUsPerCommit,
              },
            notes: ['ops/s and samples: the cartridge; duration is the sum of its timed lookups; index and scan figures in extra; allocations and I/O are not counted (child process)'],
          };
        });
      },
    }),
  );
  return [
    ...lookups,
    {
      ...g,
      name: 'claims_with_cartridge',
      critical: false,
      targets: [{ name: 'claims of any type through the cartridge at least as fast as from the tree', metric: 'cartridge_over_tree_any', bound: 'atLeast', limit: 1, unit: 'ratio' }],
      params: (p) => ({ shape: 'claims/s with and without the cartridge', ready_tasks: claimTasks(p), types: TYPES, claims_per_round: CLAIMS, rounds: ROUNDS, concurrency: CONCURRENCY, sync: 'none' }),
      setup(ctx) {
        return childCase('cartridge_claims', CLAIMS * ROUNDS, 1, (n) => {
          const file = path.join(ctx.dir, `k${n}.ndb`);
          const res = runDriver('cartridge_claims', { file, tasks: claimTasks(ctx.profile), types: TYPES, claims: CLAIMS, rounds: ROUNDS, concurrency: CONCURRENCY } satisfies CartridgeClaimsOptions, ctx.impl, 1_800_000) as CartridgeClaimsResult;
          removeDatabase(file);
          const median = (xs: number[]): number => quantile(xs, 0.5);
          // Samples: ns per claim of each round of the cartridge's any-type claims.
          const samples = Float64Array.from(res.any.cartridge, (perS) => 1e9 / perS);
          return {
            ops: CLAIMS * ROUNDS,
            durationNs: samples.reduce((a, b) => a + b * CLAIMS, 0),
            samples,
            extra: {
              any_tree_claims_per_s: median(res.any.tree),
              any_cartridge_claims_per_s: median(res.any.cartridge),
              typed_tree_claims_per_s: median(res.typed.tree),
              typed_cartridge_claims_per_s: median(res.typed.cartridge),
              cartridge_over_tree_any: median(res.any.cartridge) / median(res.any.tree),
              cartridge_over_tree_typed: median(res.typed.cartridge) / median(res.typed.tree),
              views_used_fraction: res.viewsAsked === 0 ? 0 : res.viewsUsed / res.viewsAsked,
            },
            notes: ["samples: ns per claim, one per round of the cartridge's any-type claims; figures are medians over rounds that alternate with the tree's; sync 'none' (the claim path's CPU)"],
          };
        });
      },
    },
  ];
}
