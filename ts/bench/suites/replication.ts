// macro/replication/*: replication through a real 3-node NATS JetStream
// cluster on loopback ports (issue #18 §5), each repeat in a child process
// (ts/bench/replication_load.ts) that starts and stops its own cluster:
//
// - commit: durable 1-put commits with no replication, 'async' and 'quorum',
//   side by side in one run: p50/p99 one at a time, commits/s with 16 in flight;
// - lag: replica lag p50/p99 with the primary committing at 1,000 and 10,000
//   commits/s offered (target: p99 < 50 ms at 1,000);
// - catch_up: a new replica applying a stream it has never seen, commits/s;
// - bootstrap: a new replica of a 100k-key (ci) or 1M-key (dev_nvme)
//   database from the newest snapshot, timed until it has the latest txn.
//
// The three nats-server processes share this machine's cores with the
// database: the figures include their CPU, as a one-machine test does.

import type { ReplicationLoadOptions, ReplicationLoadResult } from '../replication_load.js';
import type { Benchmark, Profile } from '../registry.js';
import { natsAvailable } from '../../testing/nats.js';
import { childCase, runDriver } from './driver.js';

const g = { suite: 'macro', group: 'replication', kind: 'db' } as const;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
}

function options(p: Profile, parts: ReplicationLoadOptions['parts']): ReplicationLoadOptions {
  const big = p.name === 'dev_nvme';
  return { serialCommits: big ? 1_000 : 300, concurrentCommits: big ? 10_000 : 3_000, concurrency: 16, rates: [1_000, 10_000], rateMs: big ? 10_000 : 3_000, catchUpCommits: big ? 100_000 : 10_000, parts };
}

/** Keys of the bootstrap benchmark's database: the 1M at dev_nvme, 100k at ci. */
function bootstrapKeys(p: Profile): number {
  return p.name === 'dev_nvme' ? 1_000_000 : 100_000;
}

const NOT_INSTALLED = 'nats-server is not installed (apt-get install nats-server; .ci/run does)';

export function replicationBenchmarks(): Benchmark[] {
  const pending = natsAvailable() ? undefined : NOT_INSTALLED;
  const run = (p: Profile, parts: ReplicationLoadOptions['parts'], impl: string): ReplicationLoadResult => runDriver('replication_load', options(p, parts), impl, 1_800_000) as ReplicationLoadResult;
  return [
    {
      ...g,
      name: 'commit',
      critical: false,
      ...(pending ? { pending } : {}),
      params: (p) => ({ shape: 'durable 1-put commits: none, async, quorum, side by side', serial_commits: options(p, undefined).serialCommits, concurrent_commits: options(p, undefined).concurrentCommits, concurrency: 16, stream_replicas: 3 }),
      setup(ctx) {
        const o = options(ctx.profile, ['commit']);
        return childCase('replication_load', o.serialCommits, 1, () => {
          const r = run(ctx.profile, ['commit'], ctx.impl).commit;
          const samples = Float64Array.from(r.quorum!.latencyNs);
          const extra: Record<string, number> = {};
          for (const mode of ['none', 'async', 'quorum']) {
            extra[`${mode}_p50_ns`] = quantile(r[mode]!.latencyNs, 0.5);
            extra[`${mode}_p99_ns`] = quantile(r[mode]!.latencyNs, 0.99);
            extra[`${mode}_commits_per_s`] = r[mode]!.commitsPerSec;
          }
          extra.quorum_over_none_p50 = extra.quorum_p50_ns! / extra.none_p50_ns!;
          extra.async_over_none_p50 = extra.async_p50_ns! / extra.none_p50_ns!;
          return { ops: samples.length, durationNs: samples.reduce((a, b) => a + b, 0), samples, extra };
        });
      },
    },
    {
      ...g,
      name: 'lag',
      critical: false,
      ...(pending ? { pending } : {}),
      targets: [{ name: 'replica lag p99 below 50 ms at 1,000 commits/s', metric: 'lag_p99_ns_1000', bound: 'below', limit: 50e6, unit: 'ns' }],
      params: (p) => ({ shape: 'replica lag, primary async at paced rates', rates: '1000,10000', rate_ms: options(p, undefined).rateMs }),
      setup(ctx) {
        return childCase('replication_load', 1, 1, () => {
          const r = run(ctx.profile, ['lag'], ctx.impl).lag;
          const at1k = r.find((l) => l.rate === 1_000)!;
          const extra: Record<string, number> = {};
          for (const l of r) {
            extra[`lag_p50_ns_${l.rate}`] = quantile(l.lagMs, 0.5) * 1e6;
            extra[`lag_p99_ns_${l.rate}`] = quantile(l.lagMs, 0.99) * 1e6;
            extra[`achieved_commits_per_s_${l.rate}`] = l.achieved;
            extra[`unapplied_${l.rate}`] = l.missing;
          }
          const samples = Float64Array.from(at1k.lagMs, (ms) => ms * 1e6);
          return { ops: samples.length, durationNs: samples.reduce((a, b) => a + b, 0), samples, extra };
        });
      },
    },
    {
      ...g,
      name: 'catch_up',
      critical: false,
      ...(pending ? { pending } : {}),
      params: (p) => ({ shape: 'a new replica applying a stream it has never seen', commits: options(p, undefined).catchUpCommits }),
      setup(ctx) {
        const o = options(ctx.profile, ['catchUp']);
        return childCase('replication_load', o.catchUpCommits, 1, () => {
          const c = run(ctx.profile, ['catchUp'], ctx.impl).catchUp!;
          // One sample: the whole catch-up's time per commit.
          return { ops: c.commits, durationNs: c.ms * 1e6, samples: Float64Array.of((c.ms * 1e6) / c.commits), extra: { catch_up_commits_per_s: c.commitsPerSec, catch_up_ms: c.ms } };
        });
      },
    },
    {
      ...g,
      name: 'bootstrap',
      critical: false,
      ...(pending ? { pending } : {}),
      params: (p) => ({ shape: 'a new replica from the newest snapshot, until it has the latest txn', keys: bootstrapKeys(p), key_bytes: 16, value_bytes: 128 }),
      setup(ctx) {
        return childCase('replication_load', bootstrapKeys(ctx.profile), 1, () => {
          const b = (runDriver('replication_load', { ...options(ctx.profile, ['bootstrap']), bootstrapKeys: bootstrapKeys(ctx.profile) }, ctx.impl, 1_800_000) as ReplicationLoadResult).bootstrap!;
          return {
            ops: b.keys,
            durationNs: b.bootstrapMs * 1e6,
            samples: Float64Array.of(b.bootstrapMs * 1e6),
            extra: { bootstrap_ms: b.bootstrapMs, snapshot_bytes: b.snapshotBytes, load_and_snapshot_ms: b.snapshotMs, keys: b.keys },
            notes: ['ops: keys; duration: openReplica until caught up; load_and_snapshot_ms: the primary loading the keys (1,000 per commit, sync none), publishing them and storing the snapshot'],
          };
        });
      },
    },
  ];
}
