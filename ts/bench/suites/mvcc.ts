// micro/mvcc: snapshots. Many readers across worker threads and processes,
// and conflict detection, are not built yet (a later issue): their benchmarks
// are listed as pending and never run.

import * as path from 'node:path';
import { open } from '../../db.js';
import type { Benchmark } from '../registry.js';
import { buildDatabase, dbConfig, dbIo, VALUE_BYTES } from './fixtures.js';

const g = { suite: 'micro', group: 'mvcc' } as const;
const MULTI_READER = 'needs readers in worker threads and processes sharing one database (multi-reader concurrency is a later issue; today one process holds a database)';

export function mvccBenchmarks(): Benchmark[] {
  return [
    {
      ...g,
      name: 'snapshot_open_close',
      critical: true,
      kind: 'db',
      params: () => ({ records: 10_000, call: 'beginRead() + close()' }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'snap.ndb');
        buildDatabase(file, { records: 10_000, valueSize: VALUE_BYTES, txn: 1000 });
        const db = open(file);
        return {
          ops: 100_000 * ctx.profile.opsScale,
          batch: 10,
          db: dbConfig(db),
          warmupOps: 10_000,
          op() {
            db.beginRead().close();
          },
          io: () => dbIo(db),
          teardown: () => db.close(),
        };
      },
    },
    {
      ...g,
      name: 'readers_256_point_get_hot',
      critical: true,
      kind: 'db',
      params: () => ({ readers: 256, threads: 'worker_threads', access: 'uniform random' }),
      pending: MULTI_READER,
    },
    {
      ...g,
      name: 'writer_commits_with_readers_128',
      critical: true,
      kind: 'db',
      params: () => ({ readers: 128, measures: 'writer p99 and reader p99 against no writer' }),
      pending: MULTI_READER,
    },
    {
      ...g,
      name: 'conflict_detection_basic',
      critical: false,
      kind: 'db',
      params: () => ({ writers: 2 }),
      pending: 'needs concurrent writers with conflict detection (a later issue); today a second live writer gets WriteBusy',
    },
  ];
}
