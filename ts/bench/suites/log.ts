// micro/log and micro/timetravel: commit-log appends, replay of the log into
// memory (ts/log/replay.ts) and opening a snapshot by txn id (bench/log.mjs's workloads).

import * as path from 'node:path';
import { open, replay } from '../../index.js';
import type { Benchmark } from '../registry.js';
import { dbConfig, dbIo, key16, randomIndexes, removeDatabase, valueOf } from './fixtures.js';

const replayRecords = (records: number): number => Math.max(1000, records / 5);

export function logBenchmarks(): Benchmark[] {
  return [
    {
      suite: 'micro',
      group: 'log',
      name: 'append_commit_record',
      critical: true,
      kind: 'db',
      params: () => ({ puts_per_commit: 1, key_bytes: 16, value_bytes: 100, sync: 'none' }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'append.ndb');
        removeDatabase(file);
        // sync 'none' isolates the record path (build, seal, append) from fdatasync;
        // pager/commit_meta_fsync measures the durable commit.
        const db = open(file, { sync: 'none', history: { txns: 0 } });
        const value = valueOf(100);
        let n = 0;
        let logBefore = 0;
        const done = { commits: 0, committedBytes: 0 };
        return {
          ops: 20_000 * ctx.profile.opsScale,
          db: dbConfig(db),
          warmupOps: 2000,
          op() {
            const w = db.beginWrite();
            w.put(key16(n++ % 50_000), value);
            w.commit();
            done.commits++;
            done.committedBytes += 16 + value.length;
          },
          beforeMeasure() {
            logBefore = db.stats().logSize;
          },
          io: () => dbIo(db),
          commits: () => done,
          // Record bytes: the log's growth past its last record, not the zeros it preallocates (spec/file_format_v1.md §8.5).
          extra: (ops) => ({ log_bytes_per_commit: (db.stats().logSize - logBefore) / ops }),
          notes: ['one 1-put commit per op (sync none: record build, seal, append, and the data-file page writes of the commit)'],
          teardown: () => db.close(),
        };
      },
    },
    {
      suite: 'micro',
      group: 'log',
      name: 'replay_into_memtable',
      critical: true,
      kind: 'db',
      params: (p) => ({ records: replayRecords(p.records), puts_per_record: 1, value_bytes: 100 }),
      setup(ctx) {
        const records = replayRecords(ctx.profile.records);
        const file = path.join(ctx.dir, 'replay.ndb');
        removeDatabase(file);
        const db = open(file, { sync: 'none', history: { txns: 0 }, checkpoint: { commits: 1e9, logBytes: 1e12 } });
        const value = valueOf(100);
        for (let i = 0; i < records; i++) {
          const w = db.beginWrite();
          w.put(key16(i), value);
          w.commit();
        }
        const cfg = dbConfig(db);
        db.close();
        let got = 0;
        return {
          ops: 3 * ctx.profile.opsScale,
          db: cfg,
          warmupOps: 1,
          op() {
            got = replay(file).commits;
          },
          afterRepeat() {
            if (got !== records) throw new Error(`replay saw ${got} commits, expected ${records}`);
          },
          extra: (ops, ns) => ({ records_per_sec: (ops * records) / (ns / 1e9) }),
          notes: [`each op: replay(path) of ${records} single-put records into an in-memory state with its hash`],
        };
      },
    },
    {
      suite: 'micro',
      group: 'timetravel',
      name: 'open_snapshot_by_txn',
      critical: true,
      kind: 'db',
      params: () => ({ commits: 1000, puts_per_commit: 10, history_txns: 1000, call: 'beginRead({ txnId }) + close()' }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'tt.ndb');
        removeDatabase(file);
        const db = open(file, { sync: 'none', history: { txns: 1000 } });
        const value = valueOf(128);
        for (let c = 0; c < 1000; c++) {
          const w = db.beginWrite();
          for (let i = 0; i < 10; i++) w.put(key16((c * 7919 + i) % 20_000), value);
          w.commit();
        }
        const newest = db.txnId;
        const oldest = db.stats().history.oldestTxnId ?? newest;
        const span = newest - oldest + 1;
        const picks = randomIndexes(4096, span, ctx.seed);
        return {
          ops: 50_000 * ctx.profile.opsScale,
          batch: 10,
          db: dbConfig(db),
          warmupOps: 5000,
          op(i) {
            db.beginRead({ txnId: oldest + picks[i & 4095]! }).close();
          },
          io: () => dbIo(db),
          notes: [`snapshots of txns ${oldest}..${newest} drawn at random`],
          teardown: () => db.close(),
        };
      },
    },
  ];
}
