// Simulated power loss (issue 5, §3), in the manner of SQLite's crash-test
// file layer, in process over FaultyFileSystem (ts/io/faulty.ts). A seeded
// workload (ts/hard/workload.ts, commit() and commitAsync() groups, automatic
// and explicit checkpoints) runs on the in-memory file system; at every
// fdatasync, before it takes effect, the crash states a power cut there could
// leave are built: the durable image with each unsynced write independently
// kept, dropped or garbled (512-byte and 4 KiB sectors) and each unsynced
// truncate kept or dropped. Each state is opened and must recover a prefix of
// the commits containing every acknowledged one (lastAcked <= T <=
// lastAttempted), with the model's state at T and verify() clean.
//
// Small workload: every state, exhaustively, wherever the pending writes allow
// (3^n <= cap), else a sample. Larger seeded workloads: a sample at every
// sync. Garbage stays within the written bytes (spec §0: synced bytes are not
// damaged by later writes); the SQLite model without powersafe overwrite
// (garbage over whole sectors, synced neighbours included) is explored too and
// counted apart, as it is outside the spec's media assumptions.
//
// Also the "freeze at a chosen fsync" mode: the workload run with the durable
// image frozen after sync N reopens (every later write lost) at or after the
// last commit acknowledged before sync N + 1.

import { open, type Database } from '../db/index.js';
import { FaultyFileSystem, type CrashChoice, type Pending } from '../io/faulty.js';
import { stateHashOf } from '../log/replay.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { applyOps, Model, opsFor, rngOf } from './workload.js';

const DB = '/powerloss/db';
const PAGE_SIZE = 4096;

export interface PowerlossOptions extends SuiteOptions {
  /** Cap on 3^n for exhaustive enumeration at one sync (default 3^4 short, 3^7 long). */
  exhaustiveCap?: number;
}

interface Progress {
  acked: number;
  attempted: number;
}

interface Stats {
  syncPoints: number;
  statesExplored: number;
  exhaustiveSyncPoints: number;
  sampledSyncPoints: number;
  maxPendingWrites: number;
  lostCommits: number;
  phantomCommits: number;
  stateMismatches: number;
  verifyFailures: number;
  openFailures: number;
  failures: number;
  wholeSectorStates: number;
  wholeSectorLossOrError: number;
  /** Whole-sector garbage on a database with sectorSize 4096 (§8.4): every state must recover. */
  alignedWholeSectorStates: number;
}

/**
 * Runs `commits` commits of model `seed` on fs: each either commit() or a
 * group of commitAsync() (awaited together), an explicit checkpoint now and
 * then; `p` follows the last acknowledged and last attempted txn ids.
 */
async function workload(fs: FaultyFileSystem, seed: number, commits: number, checkpointEvery: number, p: Progress, sectorSize = 0): Promise<Database> {
  const r = rngOf(seed ^ 0x5bd1e995);
  const db = open(DB, { fileSystem: fs, pageSize: PAGE_SIZE, history: { txns: 20 }, checkpoint: { commits: checkpointEvery }, sectorSize });
  let t = 1;
  while (t <= commits) {
    const x = r();
    if (x < 0.08) {
      db.checkpoint();
    } else if (x < 0.45) {
      const batch: Array<Promise<unknown>> = [];
      for (let n = 1 + Math.floor(r() * 5); n > 0 && t <= commits; n--, t++) {
        const w = db.beginWrite();
        applyOps(w, opsFor(seed, t));
        p.attempted = t;
        const want = t;
        batch.push(
          w.commitAsync().then((id) => {
            if (id !== want) throw new Error(`commitAsync gave ${id}, expected ${want}`);
            p.acked = Math.max(p.acked, id);
          }),
        );
      }
      await Promise.all(batch);
    } else {
      const w = db.beginWrite();
      applyOps(w, opsFor(seed, t));
      p.attempted = t;
      const id = w.commit();
      if (id !== t) throw new Error(`commit gave ${id}, expected ${t}`);
      p.acked = id;
      t++;
    }
  }
  return db;
}

/** Opens a crash image and checks it against the model; returns problems (none = good). */
function checkImage(image: FaultyFileSystem, model: Model, p: Progress): { problems: string[]; lost: number; phantom: number; mismatch: boolean; verify: boolean; openFailed: boolean } {
  const res = { problems: [] as string[], lost: 0, phantom: 0, mismatch: false, verify: false, openFailed: false };
  let db: Database;
  try {
    db = open(DB, { fileSystem: image, pageSize: PAGE_SIZE, history: { txns: 20 } });
  } catch (err) {
    res.openFailed = true;
    res.problems.push(`open failed: ${(err as Error).message}`);
    return res;
  }
  try {
    const t = db.txnId;
    if (t < p.acked) {
      res.lost = p.acked - t;
      res.problems.push(`recovered txn ${t}, ${p.acked} was acknowledged`);
    }
    if (t > p.attempted) {
      res.phantom = t - p.attempted;
      res.problems.push(`recovered txn ${t}, only ${p.attempted} attempted`);
    }
    const rd = db.beginRead();
    const h = stateHashOf(rd.scan());
    rd.close();
    if (h !== model.hash(t)) {
      res.mismatch = true;
      res.problems.push(`state at ${t} is ${h}, the model's ${model.hash(t)}`);
    }
    const v = db.verify();
    if (!v.ok) {
      res.verify = true;
      res.problems.push(`verify: ${JSON.stringify(v.problems[0])}`);
    }
  } catch (err) {
    res.problems.push(`check failed: ${(err as Error).message}`);
  } finally {
    try {
      db.close();
    } catch (err) {
      res.problems.push(`close failed: ${(err as Error).message}`);
    }
  }
  return res;
}

/** Choices for one pending op: writes keep/drop/garbage, truncates keep/drop. */
function choicesOf(op: Pending): CrashChoice[] {
  return op.kind === 'write' ? ['keep', 'drop', 'garbage'] : ['keep', 'drop'];
}

export async function runPowerloss(opts: PowerlossOptions): Promise<Figures> {
  const cap = opts.exhaustiveCap ?? (opts.long ? 3 ** 7 : 3 ** 4);
  const log = opts.log;
  const st: Stats = {
    syncPoints: 0,
    statesExplored: 0,
    exhaustiveSyncPoints: 0,
    sampledSyncPoints: 0,
    maxPendingWrites: 0,
    lostCommits: 0,
    phantomCommits: 0,
    stateMismatches: 0,
    verifyFailures: 0,
    openFailures: 0,
    failures: 0,
    wholeSectorStates: 0,
    wholeSectorLossOrError: 0,
    alignedWholeSectorStates: 0,
  };
  let smallest: { at: number; text: string } | null = null;
  const record = (r: ReturnType<typeof checkImage>, context: string, at: number): void => {
    st.statesExplored++;
    st.lostCommits += r.lost;
    st.phantomCommits += r.phantom;
    if (r.mismatch) st.stateMismatches++;
    if (r.verify) st.verifyFailures++;
    if (r.openFailed) st.openFailures++;
    if (r.problems.length > 0) {
      st.failures++;
      const text = `${context}: ${r.problems.join('; ')}`;
      if (st.failures <= 5) log(`FAIL ${text}`);
      if (smallest === null || at < smallest.at) smallest = { at, text };
    }
  };

  /** One workload run exploring crash states at each sync; `samples` per sync when not exhaustive. */
  const explore = async (name: string, seed: number, commits: number, checkpointEvery: number, samples: number, exhaustive: boolean, sectorSize = 0): Promise<void> => {
    log(`${name} workload, seed ${seed}, ${commits} commits${sectorSize > 0 ? `, log aligned to ${sectorSize}` : ''}`);
    const model = new Model(seed);
    const fs = new FaultyFileSystem();
    const p: Progress = { acked: 0, attempted: 0 };
    const rand = rngOf(seed ^ 0x1234567);
    let point = 0;
    fs.onSync = (path) => {
      point++;
      st.syncPoints++;
      const pending = fs.pending();
      const writes = pending.filter((x) => x.op.kind === 'write').length;
      st.maxPendingWrites = Math.max(st.maxPendingWrites, writes);
      const at = { ...p };
      const context = (desc: string): string => `${name} seed ${seed}, sync ${point} (${path}), acked ${at.acked}, attempted ${at.attempted}, ${pending.length} pending: ${desc}`;
      const key = (x: { path: string; index: number }): string => `${x.path}#${x.index}`;
      let total = 1;
      for (const x of pending) total *= choicesOf(x.op).length;
      if (exhaustive && total <= cap) {
        st.exhaustiveSyncPoints++;
        for (let n = 0; n < total; n++) {
          const pick = new Map<string, CrashChoice>();
          let rest = n;
          let garbled = false;
          for (const x of pending) {
            const c = choicesOf(x.op);
            const choice = c[rest % c.length]!;
            rest = Math.floor(rest / c.length);
            pick.set(key(x), choice);
            if (choice === 'garbage') garbled = true;
          }
          const desc = pending.map((x) => pick.get(key(x))![0]).join('');
          for (const sector of garbled ? [512, 4096] : [512]) {
            const image = fs.crash((pp, i) => pick.get(`${pp}#${i}`)!, sector, rand, 'written');
            record(checkImage(image, model, at), context(`${desc} sector ${sector}`), at.attempted);
          }
        }
      } else {
        st.sampledSyncPoints++;
        for (let n = 0; n < samples; n++) {
          const sector = rand() < 0.5 ? 512 : 4096;
          const choices: string[] = [];
          const image = fs.crash(
            (_pp, _i, op) => {
              const c = choicesOf(op);
              const ch = c[Math.floor(rand() * c.length)]!;
              choices.push(ch[0]!);
              return ch;
            },
            sector,
            rand,
            'written',
          );
          record(checkImage(image, model, at), context(`${choices.join('')} sector ${sector} (sampled)`), at.attempted);
        }
      }
      // Outside the media assumptions: whole sectors of garbage (no powersafe overwrite).
      for (let n = 0; n < (opts.long ? 4 : 1) * (sectorSize > 0 ? 4 : 1); n++) {
        const sector = rand() < 0.5 ? 512 : 4096;
        const image = fs.crash((_pp, _i, op) => (op.kind === 'write' && rand() < 0.5 ? 'garbage' : 'keep'), sector, rand, 'sectors');
        const r = checkImage(image, model, at);
        if (sectorSize > 0) {
          // Appends start on their own sectors: no acknowledged commit may be lost (§8.4).
          st.alignedWholeSectorStates++;
          record(r, context(`whole-sector garbage, sector ${sector}, log aligned to ${sectorSize}`), at.attempted);
          continue;
        }
        st.wholeSectorStates++;
        // A garbled unaligned log append can take the synced tail of the record before it:
        // a lost commit or Corrupt at open. A phantom or a wrong state would still be a bug.
        if (r.lost > 0 || r.openFailed) st.wholeSectorLossOrError++;
        else if (r.problems.length > 0) record(r, context('whole-sector garbage'), at.attempted);
      }
    };
    const db = await workload(fs, seed, commits, checkpointEvery, p, sectorSize);
    db.close();
    fs.onSync = null;
    // After close, everything acknowledged and the final checkpoint: a clean image.
    record(checkImage(fs.crash(() => 'drop'), model, { acked: commits, attempted: commits }), `${name} seed ${seed}: after close`, commits);
  };

  /** Freeze the durable image after sync N, for every N of a small run. */
  const freeze = async (seed: number, commits: number): Promise<number> => {
    const model = new Model(seed);
    // A dry run counts the syncs.
    const dry = new FaultyFileSystem();
    (await workload(dry, seed, commits, 4, { acked: 0, attempted: 0 })).close();
    const total = dry.syncs;
    let runs = 0;
    for (let n = 0; n <= total; n += opts.long ? 1 : 10) {
      const fs = new FaultyFileSystem({ freezeAfterSync: n });
      const p: Progress = { acked: 0, attempted: 0 };
      let frozen: Progress | null = null;
      fs.onSync = () => {
        if (frozen === null && fs.syncs === n) frozen = { ...p };
      };
      const db = await workload(fs, seed, commits, 4, p);
      db.close();
      const at: Progress = frozen ?? { ...p };
      // Every write after the freeze is lost; attempted is whatever was tried by then at most.
      record(checkImage(fs.crash(() => 'drop'), model, { acked: at.acked, attempted: p.attempted }), `freeze seed ${seed} after sync ${n} of ${total}`, at.attempted);
      runs++;
    }
    return runs;
  };

  const base = opts.seed >>> 0;
  // The small workload: about 50 commits, a checkpoint every 4, exhaustive where possible.
  await explore('small', base, 50, 4, opts.long ? 200 : 4, true);
  // Larger seeded workloads, sampled.
  const large = opts.long ? 6 : 1;
  for (let i = 0; i < large; i++) await explore('large', (base + 1 + i * 7919) >>> 0, opts.long ? 300 : 40, 10, opts.long ? 15 : 2, false);
  // The log aligned to 4 KiB sectors: the whole-sector model must lose nothing.
  await explore('aligned', (base ^ 0x5eC7) >>> 0, opts.long ? 200 : 40, 6, opts.long ? 20 : 2, false, 4096);
  const freezeRuns = await freeze((base ^ 0xabcdef) >>> 0, 50);

  const out: Figures = { ...st, freezeRuns, exhaustiveCap: cap };
  out.smallestMismatch = smallest === null ? 'none' : (smallest as { text: string }).text;
  return out;
}

export const powerlossSuite: HardeningSuite = { name: 'powerloss', run: runPowerloss };
