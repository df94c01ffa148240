// macro: whole workloads at the profile's size (bench/storage.mjs's), run
// nightly at dev_nvme: a shuffled bulk load, a full scan, a 90/10 get/put mix.

import * as path from 'node:path';
import { open, type Database } from '../../db/index.js';
import type { Benchmark } from '../registry.js';
import { buildDatabase, dbConfig, dbIo, keyTable, KEY_BYTES, randomIndexes, removeDatabase, shuffled, VALUE_BYTES, valueOf } from './fixtures.js';

const g = { suite: 'macro', group: 'storage' } as const;

export function macroBenchmarks(): Benchmark[] {
  return [
    {
      ...g,
      name: 'bulk_load_shuffled_10k_txns',
      critical: true,
      kind: 'db',
      params: (p) => ({ records: p.records, key_bytes: KEY_BYTES, value_bytes: VALUE_BYTES, puts_per_commit: 10_000, sync: 'full' }),
      setup(ctx) {
        const n = ctx.profile.records;
        const file = path.join(ctx.dir, 'bulk.ndb');
        const keys = keyTable(n);
        const order = shuffled(n, ctx.seed);
        const value = valueOf(VALUE_BYTES);
        let db: Database | null = null;
        let w: ReturnType<Database['beginWrite']> | null = null;
        const fresh = (): void => {
          db?.close();
          removeDatabase(file);
          db = open(file, { sync: 'full' });
        };
        fresh();
        return {
          ops: n,
          db: dbConfig(db!),
          warmupOps: 0,
          beforeRepeat: fresh,
          warmup() {},
          op(i) {
            w ??= db!.beginWrite();
            w.put(keys[order[i]!]!, value);
            if ((i + 1) % 10_000 === 0 || i + 1 === n) {
              w.commit();
              w = null;
            }
          },
          io: () => dbIo(db),
          extra: (ops) => ({ write_amplification: dbIo(db).bytesWritten / (ops * (KEY_BYTES + VALUE_BYTES)) }),
          teardown: () => db?.close(),
        };
      },
    },
    {
      ...g,
      name: 'full_scan',
      critical: false,
      kind: 'db',
      params: (p) => ({ records: p.records, value_bytes: VALUE_BYTES }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'scan.ndb');
        buildDatabase(file, { records: ctx.profile.records, valueSize: VALUE_BYTES, txn: 10_000 });
        const db = open(file);
        let rows = 0;
        return {
          ops: 3,
          db: dbConfig(db),
          warmupOps: 1,
          op() {
            const r = db.beginRead();
            rows = 0;
            for (const _ of r.scan()) rows++;
            r.close();
          },
          afterRepeat() {
            if (rows !== ctx.profile.records) throw new Error(`scan saw ${rows} rows`);
          },
          io: () => dbIo(db),
          extra: (ops, ns) => ({ rows_per_sec: (ops * ctx.profile.records) / (ns / 1e9) }),
          teardown: () => db.close(),
        };
      },
    },
    {
      ...g,
      name: 'mixed_get_put_90_10',
      critical: true,
      kind: 'db',
      params: (p) => ({ records: p.records, gets: '90%', puts: '10% (1 put per durable commit)' }),
      setup(ctx) {
        const n = ctx.profile.records;
        const file = path.join(ctx.dir, 'mixed.ndb');
        buildDatabase(file, { records: n, valueSize: VALUE_BYTES, txn: 10_000 });
        const db = open(file, { sync: 'full' });
        const keys = keyTable(n);
        const picks = randomIndexes(1 << 16, n, ctx.seed);
        const value = valueOf(VALUE_BYTES);
        return {
          ops: 20_000 * ctx.profile.opsScale,
          db: dbConfig(db),
          warmupOps: 2000,
          op(i) {
            const k = keys[picks[i & 0xffff]!]!;
            if (i % 10 === 9) {
              const w = db.beginWrite();
              w.put(k, value);
              w.commit();
            } else {
              const r = db.beginRead();
              r.get(k);
              r.close();
            }
          },
          io: () => dbIo(db),
          teardown: () => db.close(),
        };
      },
    },
  ];
}
