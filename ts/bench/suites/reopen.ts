// micro/reopen: opening a populated database, after a clean shutdown and
// after a crash. The crash is a copy of the data file and log taken while the
// handle that wrote them is still open: what a killed process leaves (its
// writes are in the OS page cache; a power cut is the hardening suite's),
// without the lock file, which belongs to the live process. Recovery replays
// the log since the last checkpoint, so its time is proportional to that log.

import * as path from 'node:path';
import { open, type Database } from '../../db/index.js';
import { zeroIo, type Benchmark } from '../registry.js';
import { addIo, copyDatabase, dbConfig, dbIo, keyTable, openCloseOp, randomIndexes, removeDatabase, VALUE_BYTES, valueOf } from './fixtures.js';
import { populated } from './write.js';

const g = { suite: 'micro', group: 'reopen' } as const;

/** Commits in the log since the last checkpoint at the crash: the default checkpoint interval (1,000 commits). */
const CRASH_COMMITS = 1000;


export function reopenBenchmarks(): Benchmark[] {
  return [
    {
      ...g,
      name: 'open_close_populated',
      critical: false,
      kind: 'db',
      params: (p) => ({ records: p.records, value_bytes: VALUE_BYTES, shutdown: 'clean', call: 'open() + close()' }),
      setup(ctx) {
        const file = populated(ctx, 'reopen.ndb');
        const first = open(file);
        const cfg = dbConfig(first);
        first.close();
        return {
          ops: Math.max(1, Math.round(20 * ctx.profile.opsScale)),
          db: cfg,
          warmupOps: 2,
          ...openCloseOp(() => open(file)),
          notes: ['each op: open() + close() of the populated database after a clean close, default options', "I/O counts cover open; a handle's counters end before its close"],
        };
      },
    },
    {
      ...g,
      name: 'recover_1k_commits',
      critical: false,
      kind: 'db',
      params: (p) => ({ records: p.records, value_bytes: VALUE_BYTES, shutdown: 'crash (files copied from a live handle)', commits_since_checkpoint: CRASH_COMMITS, puts_per_commit: 1, call: 'open()' }),
      setup(ctx) {
        const records = ctx.profile.records;
        const file = populated(ctx, 'live.ndb');
        const crash = path.join(ctx.dir, 'crash.ndb');
        // The crash: a checkpoint, CRASH_COMMITS commits (no automatic
        // checkpoint among them), the files copied while the handle is open.
        // Made with sync 'none': the files are the same bytes as with 'full'
        // (a copy reads the OS page cache), without 1,000 fdatasyncs of setup.
        const live = open(file, { sync: 'none', checkpoint: { commits: 1e9, logBytes: 1e12 } });
        live.checkpoint();
        const keys = keyTable(records);
        const picks = randomIndexes(CRASH_COMMITS, records, ctx.seed);
        const value = valueOf(VALUE_BYTES);
        for (let i = 0; i < CRASH_COMMITS; i++) {
          const w = live.beginWrite();
          w.put(keys[picks[i]!]!, value);
          w.commit();
        }
        const { commitsSince, logBytesSince } = live.stats().checkpoint;
        const txnId = live.txnId;
        const cfg = dbConfig(live);
        copyDatabase(file, crash);
        live.close();
        if (commitsSince !== CRASH_COMMITS) throw new Error(`${commitsSince} commits since the checkpoint at the crash, expected ${CRASH_COMMITS}`);

        const ops = Math.max(1, Math.round(5 * ctx.profile.opsScale));
        const copy = (i: number): string => path.join(ctx.dir, `recover_${i}.ndb`);
        let recovered: Database[] = [];
        const acc = zeroIo();
        const handles = { opened: 0, closed: 0 };
        const closeAll = (): void => {
          for (const db of recovered) {
            addIo(acc, db);
            db.close();
            handles.closed++;
          }
          recovered = [];
        };
        return {
          ops,
          db: cfg,
          warmupOps: 1,
          // Fresh crashed copies for the repeat, made before its timing.
          beforeRepeat() {
            for (let i = 0; i < ops; i++) {
              removeDatabase(copy(i));
              copyDatabase(crash, copy(i));
            }
          },
          warmup() {
            const w = path.join(ctx.dir, 'warm.ndb');
            removeDatabase(w);
            copyDatabase(crash, w);
            open(w).close();
          },
          // The recovering open alone is timed; handles close after the repeat.
          op(i) {
            recovered.push(open(copy(i)));
            handles.opened++;
          },
          afterRepeat() {
            const bad = recovered.filter((db) => db.txnId !== txnId);
            const got = recovered.map((db) => db.txnId);
            closeAll();
            if (bad.length > 0) throw new Error(`recovered to txn ${got.join(', ')}, expected ${txnId}`);
          },
          io() {
            const x = { ...acc };
            for (const db of recovered) addIo(x, db);
            return dbIo(null, handles, x);
          },
          extra: (n, ns) => ({ commits_replayed_per_sec: (n * CRASH_COMMITS) / (ns / 1e9), log_bytes_since_checkpoint: logBytesSince }),
          notes: [
            `each op: open() of a copy of the files of a live handle with ${CRASH_COMMITS} 1-put commits (${logBytesSince} log bytes) since its last checkpoint: recovery replays them and checkpoints; the copies are in the OS page cache`,
            "checked after each repeat: every handle at the crashed handle's last txn",
          ],
          teardown: closeAll,
        };
      },
    },
  ];
}
