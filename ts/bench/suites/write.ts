// micro/write: durable commits on a populated database, the write path of
// issue #14 (bench/storage.mjs's rows 2 and 3): one put of a random existing
// key per commit, and 100 puts of random existing keys per commit, both with
// `sync: 'full'` and the engine's other defaults, so checkpoints, history and
// page rewrites land where they land for users. Every repeat records
// results.write: bytes the database and the device wrote per commit, write
// amplification and syncs per commit (ts/bench/amplification.ts).

import * as path from 'node:path';
import { open, type Database } from '../../db/index.js';
import type { CommitCounters } from '../amplification.js';
import type { BenchCase, BenchContext, Benchmark } from '../registry.js';
import { buildDatabase, dbConfig, dbIo, KEY_BYTES, keyTable, randomIndexes, VALUE_BYTES, valueOf } from './fixtures.js';

const g = { suite: 'micro', group: 'write' } as const;

/** The populated database of the write and reopen benchmarks: profile.records keys (100k at ci), 128-byte values, closed. */
export function populated(ctx: BenchContext, name: string): string {
  const file = path.join(ctx.dir, name);
  buildDatabase(file, { records: ctx.profile.records, valueSize: VALUE_BYTES, txn: 10_000 });
  return file;
}

/** Durable commits of `puts` random existing keys each: one op = one commit. */
function commitCase(ctx: BenchContext, puts: number): BenchCase {
  const records = ctx.profile.records;
  const db: Database = open(populated(ctx, `commit${puts}.ndb`), { sync: 'full' });
  const keys = keyTable(records);
  const picks = randomIndexes(1 << 16, records, ctx.seed);
  const value = valueOf(VALUE_BYTES);
  const done: CommitCounters = { commits: 0, committedBytes: 0 };
  let n = 0;
  const commit = (): void => {
    const w = db.beginWrite();
    for (let i = 0; i < puts; i++) w.put(keys[picks[n++ & 0xffff]!]!, value);
    w.commit();
    done.commits++;
    done.committedBytes += puts * (KEY_BYTES + VALUE_BYTES);
  };
  return {
    ops: Math.max(1, Math.round((puts === 1 ? 1000 : 100) * ctx.profile.opsScale)),
    db: dbConfig(db),
    warmupOps: puts === 1 ? 50 : 5,
    // Every repeat starts right after a checkpoint, so each holds the same
    // share of the automatic ones (at the defaults, one per 1,000 commits).
    beforeRepeat: () => db.checkpoint(),
    op: commit,
    afterRepeat() {
      if (db.stats().entries !== records) throw new Error(`${db.stats().entries} entries after updates of existing keys, expected ${records}`);
    },
    io: () => dbIo(db),
    commits: () => done,
    notes: [
      `one op = one durable commit (sync full) of ${puts} put${puts === 1 ? '' : 's'} of random existing keys, new 128-byte values; other options at their defaults (checkpoints included where they fall)`,
      'each repeat starts after db.checkpoint() (outside the timing); results.write: bytes and syncs per commit, write amplification = bytes written ÷ key + value bytes committed',
    ],
    teardown: () => db.close(),
  };
}

export function writeBenchmarks(): Benchmark[] {
  const params = (puts: number) => (p: { records: number }) => ({ records: p.records, key_bytes: KEY_BYTES, value_bytes: VALUE_BYTES, puts_per_commit: puts, keys: 'random existing', sync: 'full', options: 'defaults' });
  // Not critical (reported, not gated): the write path (checkpoint, history,
  // log retention) is being reworked under issue #14, and fdatasync latency
  // follows the machine's neighbours; gate them once the write path settles.
  return [
    { ...g, name: 'durable_commit_1put', critical: false, kind: 'db', params: params(1), setup: (ctx) => commitCase(ctx, 1) },
    { ...g, name: 'durable_commit_100put', critical: false, kind: 'db', params: params(100), setup: (ctx) => commitCase(ctx, 100) },
  ];
}
