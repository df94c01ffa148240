// I/O errors and torn writes (issue 5, §3), in process over FaultyFileSystem.
//
// SQLite-style: for each operation (commit, a commitAsync group, checkpoint,
// recovery at open, a commit that grows the file), fail its k-th I/O call for
// k = 1, 2, 3, … until it completes without reaching call k; in "once" mode
// (only that call fails) and "forever" mode (every call from it on fails),
// with EIO and ENOSPC; and tear its k-th write after a random number of bytes.
// Each time:
//
// - a failed operation throws NorthstarError IoError (EIO) or OutOfSpace
//   (ENOSPC), never anything else;
// - nothing is half-visible: the published state is the model's at the
//   published txn id, and a failed commit leaves it where it was;
// - the handle keeps working (a further commit succeeds) or refuses writes
//   with IoError until reopened;
// - the files a process exit leaves (every write kept) and those a power cut
//   leaves (every unsynced write dropped) both reopen to a prefix containing
//   every acknowledged commit, with verify() clean. The power-cut image is what
//   catches a failed fdatasync treated as success.
//
// Then single faults by hand: a torn meta write (every byte of its first
// sector and every 512-byte boundary) loses to the other meta and the log
// replays; a valid page written at the wrong offset is Corrupt naming it; a
// stale but valid page at its own offset (a lost write) makes every read that
// touches it Corrupt naming it, and no read returns an old value; a torn or
// short last log record is cut off; a damaged record in the middle of the log
// is Corrupt naming its position.

import { engineOfDatabase } from '../db/internal.js';
import { open, type Database } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { FaultyFileSystem, type Errno, type FaultPlan } from '../io/faulty.js';
import { stateHashOf } from '../log/replay.js';
import { kernels } from '../native/kernels.js';
import { chooseMeta } from '../pager/meta.js';
import { walk } from './corruption.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { applyOps, Model, opsFor, rngOf } from './workload.js';

const DB = '/iofaults/db';
const LOG = `${DB}.log`;
const PAGE_SIZE = 4096;
const OPEN_OPTS = { pageSize: PAGE_SIZE, history: { txns: 20 }, checkpoint: { commits: 1000 } };

type OpName = 'commit' | 'commitAsync' | 'checkpoint' | 'recovery' | 'growth';
type Mode = 'once' | 'forever' | 'torn';

interface Progress {
  acked: number;
  attempted: number;
}

export async function runIofaults(opts: SuiteOptions): Promise<Figures> {
  const seed = opts.seed >>> 0;
  const model = new Model(seed);
  const rand = rngOf(seed ^ 0x2545f491);
  const fig: Record<string, number> = {
    scenarios: 0,
    operationsFailed: 0,
    operationsSucceededDespiteFault: 0,
    wrongErrorCodes: 0,
    halfVisible: 0,
    keptWorking: 0,
    refusedUntilReopen: 0,
    reopenChecks: 0,
    lostCommits: 0,
    phantomCommits: 0,
    stateMismatches: 0,
    verifyFailures: 0,
    reopenFailures: 0,
    tornWrites: 0,
    tornMetaCases: 0,
    tornMetaWrongChoice: 0,
    wrongOffsetPagesDetected: 0,
    wrongOffsetPagesMissed: 0,
    stalePages: 0,
    stalePagesDetected: 0,
    stalePagesUnreached: 0,
    staleReadsDetected: 0,
    staleReadsUntouched: 0,
    staleReadsOldValues: 0,
    staleReadsMissed: 0,
    tornLogTailCases: 0,
    damagedMiddleCases: 0,
    failures: 0,
  };
  const injectedBy: Record<string, number> = {};
  const problems: string[] = [];
  const fail = (text: string): void => {
    fig.failures!++;
    if (problems.length < 10) opts.log(`FAIL ${text}`);
    problems.push(text);
  };

  // Base images: `base` has 12 commits, 6 of them checkpointed (recovery replays 6).
  const baseFs = new FaultyFileSystem();
  const baseDb = open(DB, { ...OPEN_OPTS, fileSystem: baseFs });
  for (let t = 1; t <= 12; t++) {
    const w = baseDb.beginWrite();
    applyOps(w, opsFor(seed, t));
    w.commit();
    if (t === 6) baseDb.checkpoint();
  }
  // The files as a killed process leaves them: every write in, no final checkpoint.
  const base = baseFs.crash(() => 'keep');
  baseDb.close();

  /** Reopens an image and checks it against the model; returns the recovered txn id or -1. */
  const reopen = (image: FaultyFileSystem, p: Progress, context: string): number => {
    fig.reopenChecks!++;
    let db: Database;
    try {
      db = open(DB, { ...OPEN_OPTS, fileSystem: image });
    } catch (err) {
      fig.reopenFailures!++;
      fail(`${context}: reopen failed: ${(err as Error).message}`);
      return -1;
    }
    try {
      const t = db.txnId;
      if (t < p.acked) {
        fig.lostCommits! += p.acked - t;
        fail(`${context}: reopened at ${t}, ${p.acked} was acknowledged`);
      }
      if (t > p.attempted) {
        fig.phantomCommits! += t - p.attempted;
        fail(`${context}: reopened at ${t}, only ${p.attempted} attempted`);
      }
      checkState(db, context);
      const v = db.verify();
      if (!v.ok) {
        fig.verifyFailures!++;
        fail(`${context}: verify: ${JSON.stringify(v.problems[0])}`);
      }
      return t;
    } finally {
      db.close();
    }
  };

  /** The published state equals the model's at the published txn id. */
  const checkState = (db: Database, context: string): boolean => {
    const r = db.beginRead();
    const h = stateHashOf(r.scan());
    r.close();
    if (h !== model.hash(db.txnId)) {
      fig.stateMismatches!++;
      fail(`${context}: state at ${db.txnId} is ${h}, the model's ${model.hash(db.txnId)}`);
      return false;
    }
    return true;
  };

  const commitOne = (db: Database, p: Progress): number => {
    const t = db.txnId + 1;
    const w = db.beginWrite();
    try {
      applyOps(w, opsFor(seed, t));
    } catch (err) {
      w.abort();
      throw err;
    }
    p.attempted = Math.max(p.attempted, t);
    const id = w.commit();
    if (id !== t) throw new Error(`commit gave ${id}, expected ${t}`);
    p.acked = id;
    return id;
  };

  /** The operation under test, on an open handle (or, for recovery, the open itself). */
  const operations: Record<OpName, (fs: FaultyFileSystem, db: Database | null, p: Progress) => Promise<Database | null>> = {
    commit: async (_fs, db, p) => {
      commitOne(db!, p);
      return db;
    },
    commitAsync: async (_fs, db, p) => {
      const batch: Array<Promise<unknown>> = [];
      let firstError: unknown = null;
      for (let i = 1; i <= 3; i++) {
        // The latest commit, published or not: a commit that failed at once took no txn id.
        const t = engineOfDatabase(db!).latest.txnId + 1;
        let w;
        try {
          w = db!.beginWrite();
          applyOps(w, opsFor(seed, t));
        } catch (err) {
          w?.abort();
          firstError ??= err;
          break;
        }
        p.attempted = Math.max(p.attempted, t);
        batch.push(
          w.commitAsync().then(
            (id) => {
              if (id !== t) throw new Error(`commitAsync gave ${id}, expected ${t}`);
              p.acked = Math.max(p.acked, id);
            },
            (err: unknown) => {
              firstError ??= err;
            },
          ),
        );
      }
      await Promise.all(batch);
      if (firstError !== null) throw firstError;
      return db;
    },
    checkpoint: async (_fs, db) => {
      db!.checkpoint();
      return db;
    },
    recovery: async (fs) => open(DB, { ...OPEN_OPTS, fileSystem: fs }),
    growth: async (_fs, db, p) => {
      // One commit of ~40 overflow values: the file grows by ~100 pages.
      const t = db!.txnId + 1;
      const w = db!.beginWrite();
      applyOps(w, opsFor(seed, t));
      for (let i = 0; i < 40; i++) w.put(`grow${t}-${i}`, 'G'.repeat(2500));
      p.attempted = Math.max(p.attempted, t);
      // Not the model's commit: checked by its own hash below.
      w.commit();
      p.acked = t;
      return db;
    },
  };

  const scenario = async (op: OpName, mode: Mode, errno: Errno): Promise<void> => {
    for (let k = 1; k <= 400; k++) {
      const fs = base.crash(() => 'keep');
      const p: Progress = { acked: 12, attempted: 12 };
      let db: Database | null = null;
      if (op !== 'recovery') {
        db = open(DB, { ...OPEN_OPTS, fileSystem: fs });
        p.acked = p.attempted = db.txnId;
        if (op === 'checkpoint') commitOne(db, p);
      }
      const plan: FaultPlan = mode === 'torn' ? { tear: { write: fs.counts.write + k, bytes: Math.floor(rand() * 6000) } } : { fail: { call: k, errno, forever: mode === 'forever' } };
      fs.arm(plan);
      const before = { ...fs.injected };
      const published = db?.txnId ?? 12;
      const context = `iofaults seed ${opts.seed}: ${op}, ${mode === 'torn' ? `torn write ${k}` : `${errno} ${mode} at I/O call ${k}`}`;
      fig.scenarios!++;
      let error: unknown = null;
      try {
        db = (await operations[op](fs, db, p)) ?? db;
      } catch (err) {
        error = err;
      }
      const injected = fs.injected.fail - before.fail + fs.injected.tear - before.tear;
      for (const [kind, n] of Object.entries(fs.injectedBy)) injectedBy[kind] = n + (injectedBy[kind] ?? 0);
      if (mode === 'torn') fig.tornWrites! += fs.injected.tear - before.tear;
      fs.arm({});
      if (injected === 0 && error === null) {
        // The operation needs fewer than k calls: this scenario is done.
        db?.close();
        return;
      }
      if (error !== null) {
        fig.operationsFailed!++;
        const want = mode === 'torn' || errno === 'EIO' ? ['IoError'] : ['OutOfSpace', 'IoError'];
        if (!(error instanceof NorthstarError) || !want.includes(error.code)) {
          fig.wrongErrorCodes!++;
          fail(`${context}: threw ${error instanceof NorthstarError ? error.code : String(error)} (${(error as Error).message}), expected ${want.join(' or ')}`);
        }
      } else fig.operationsSucceededDespiteFault!++;
      if (db !== null && op !== 'growth') {
        // Nothing half-visible.
        try {
          if (error !== null && op !== 'commitAsync' && db.txnId !== published) {
            fig.halfVisible!++;
            fail(`${context}: failed, yet readers see txn ${db.txnId} (was ${published})`);
          }
          checkState(db, context);
        } catch (err) {
          fail(`${context}: reading after the fault: ${(err as Error).message}`);
        }
        // Keeps working, or refuses writes until reopened.
        try {
          commitOne(db, p);
          fig.keptWorking!++;
          checkState(db, `${context}, then a commit`);
        } catch (err) {
          if (err instanceof NorthstarError && err.code === 'IoError') fig.refusedUntilReopen!++;
          else fail(`${context}: the next commit threw ${(err as Error).message}`);
        }
      }
      // The images an exit and a power cut leave.
      const exit = fs.crash(() => 'keep');
      const power = fs.crash(() => 'drop');
      try {
        db?.close();
      } catch {
        // a poisoned handle may fail its final checkpoint; the images above are taken
      }
      if (op === 'growth') {
        // Growth commits values outside the model: check acknowledgement only.
        for (const [name, image] of [['exit', exit], ['power cut', power]] as const) {
          fig.reopenChecks!++;
          try {
            const again = open(DB, { ...OPEN_OPTS, fileSystem: image });
            if (again.txnId < p.acked) {
              fig.lostCommits! += p.acked - again.txnId;
              fail(`${context}, ${name}: reopened at ${again.txnId}, ${p.acked} acknowledged`);
            }
            if (!again.verify().ok) {
              fig.verifyFailures!++;
              fail(`${context}, ${name}: verify failed`);
            }
            again.close();
          } catch (err) {
            fig.reopenFailures!++;
            fail(`${context}, ${name}: reopen failed: ${(err as Error).message}`);
          }
        }
      } else {
        reopen(exit, p, `${context}, exit image`);
        reopen(power, p, `${context}, power-cut image`);
      }
    }
    fail(`iofaults: ${op} ${mode} ${errno} did not finish within 400 I/O calls`);
  };

  for (const op of ['commit', 'commitAsync', 'checkpoint', 'recovery', 'growth'] as const) {
    for (const mode of ['once', 'forever'] as const) for (const errno of ['EIO', 'ENOSPC'] as const) await scenario(op, mode, errno);
    await scenario(op, 'torn', 'EIO');
  }

  tornMeta(seed, model, fig, fail);
  wrongOffsetAndStale(fig, fail, opts);
  logTails(seed, fig, fail);

  const out: Figures = { ...fig };
  for (const [kind, n] of Object.entries(injectedBy).sort()) out[`injected.${kind}`] = n;
  out.firstFailure = problems[0] ?? 'none';
  return out;
}

/**
 * A checkpoint's meta write torn at every byte of its first sector and at every
 * 512-byte boundary: the torn slot loses to the other meta (unless the bytes
 * that reached it already make the whole new meta), the log replays every
 * acknowledged commit, nothing more.
 */
function tornMeta(seed: number, model: Model, fig: Record<string, number>, fail: (t: string) => void): void {
  const fs = new FaultyFileSystem();
  const db = open(DB, { ...OPEN_OPTS, fileSystem: fs });
  for (let t = 1; t <= 8; t++) {
    const w = db.beginWrite();
    applyOps(w, opsFor(seed, t));
    w.commit();
    if (t === 4) db.checkpoint();
  }
  // Catch the checkpoint at its meta sync: the meta write is pending.
  let image: FaultyFileSystem | null = null;
  let meta: { offset: number; bytes: Uint8Array } | null = null;
  fs.onSync = (path) => {
    if (path !== DB || image !== null) return;
    const pend = fs.pending().filter((x) => x.path === DB && x.op.kind === 'write' && x.op.offset < 2 * PAGE_SIZE && x.op.bytes.length === PAGE_SIZE);
    const m = pend.pop();
    if (!m || m.op.kind !== 'write') return;
    meta = { offset: m.op.offset, bytes: m.op.bytes };
    image = fs.crash((_p, i, op) => (op.kind === 'write' && _p === DB && i === m.index ? 'drop' : 'keep'));
  };
  db.checkpoint();
  fs.onSync = null;
  db.close();
  if (image === null || meta === null) {
    fail('torn meta: the checkpoint wrote no meta');
    return;
  }
  const img = image as FaultyFileSystem;
  const mw = meta as { offset: number; bytes: Uint8Array };
  const cuts = new Set<number>();
  for (let c = 0; c <= 512; c++) cuts.add(c);
  for (let c = 512; c <= PAGE_SIZE; c += 512) cuts.add(c);
  const old = img.bytes(DB).slice(mw.offset, mw.offset + PAGE_SIZE);
  for (const cut of cuts) {
    fig.tornMetaCases!++;
    const t = img.crash(() => 'keep');
    const bytes = t.bytes(DB);
    bytes.set(mw.bytes.subarray(0, cut), mw.offset);
    t.setBytes(DB, bytes);
    const page = bytes.subarray(mw.offset, mw.offset + PAGE_SIZE);
    let same = true;
    for (let i = 0; i < PAGE_SIZE; i++) if (page[i] !== mw.bytes[i]) same = false;
    const wantSlot = same ? mw.offset / PAGE_SIZE : 1 - mw.offset / PAGE_SIZE;
    const file = t.open(DB);
    const chosen = chooseMeta(file, kernels);
    file.close();
    if (chosen.slot !== wantSlot) {
      fig.tornMetaWrongChoice!++;
      fail(`torn meta cut at ${cut}: chose slot ${chosen.slot}, expected ${wantSlot} (old bytes differ: ${old.some((b, i) => b !== mw.bytes[i])})`);
    }
    try {
      const again = open(DB, { ...OPEN_OPTS, fileSystem: t });
      if (again.txnId !== 8) fail(`torn meta cut at ${cut}: reopened at ${again.txnId}, 8 acknowledged and attempted`);
      const r = again.beginRead();
      if (stateHashOf(r.scan()) !== model.hash(8)) fail(`torn meta cut at ${cut}: state is not the model's`);
      r.close();
      if (!again.verify().ok) fail(`torn meta cut at ${cut}: verify failed`);
      again.close();
    } catch (err) {
      fail(`torn meta cut at ${cut}: reopen failed: ${(err as Error).message}`);
    }
  }
}

/**
 * A valid page copied over another page (wrong offset) is Corrupt naming it
 * (page id in the checksummed header), reached by the tree or not.
 *
 * A stale but valid page at its own offset (an older version of the same page
 * id, as a lost write leaves it) is caught by the txn id its reference names
 * (spec §4.5, rule 13). For every older version of every page, in the image of
 * the final file: the open fails with Corrupt naming it (a history page), the
 * first write and verify() do (a freelist page: that chain is read on first
 * use), or every get whose path (branches, leaf, overflow chain) holds it
 * throws Corrupt naming it and every other get returns the current value, a
 * full scan throws Corrupt iff the tree holds it, and verify() names it.
 * Figures: reads detected, untouched (correct value), old values returned and
 * touched-but-missed (both must be 0: each is a failure).
 */
function wrongOffsetAndStale(fig: Record<string, number>, fail: (t: string) => void, opts: SuiteOptions): void {
  const fs = new FaultyFileSystem();
  const db = open(DB, { ...OPEN_OPTS, fileSystem: fs });
  const versions = new Map<number, Uint8Array[]>();
  const snap = (): void => {
    const bytes = fs.bytes(DB);
    for (let id = 2; id * PAGE_SIZE < bytes.length; id++) {
      const page = bytes.slice(id * PAGE_SIZE, (id + 1) * PAGE_SIZE);
      const list = versions.get(id) ?? [];
      if (!list.some((v) => v.every((b, i) => b === page[i]))) list.push(page);
      versions.set(id, list);
    }
  };
  for (let t = 1; t <= 60; t++) {
    const w = db.beginWrite();
    for (let i = 0; i < 20; i++) w.put(`key${(t * 7 + i * 13) % 200}`, `value ${t} ${i} ${'x'.repeat((t * i) % 90)}`);
    w.commit();
    if (t % 5 === 0) {
      db.checkpoint();
      snap();
    }
  }
  db.close();
  const final = fs.bytes(DB);
  const pages = final.length / PAGE_SIZE;
  const r = rngOf(opts.seed ^ 0x77);
  const goodHash = (() => {
    const image = new FaultyFileSystem();
    image.setBytes(DB, final);
    image.setBytes(LOG, fs.bytes(LOG));
    const d = open(DB, { ...OPEN_OPTS, fileSystem: image });
    const rd = d.beginRead();
    const h = stateHashOf(rd.scan());
    rd.close();
    d.close();
    return h;
  })();
  /** Opens the image, scans and verifies: an error message, or null and the state hash. */
  const readAll = (image: FaultyFileSystem, probe: number | null): { error: string | null; hash: string } => {
    try {
      const d = open(DB, { ...OPEN_OPTS, fileSystem: image });
      try {
        if (probe !== null) engineOfDatabase(d).pager.readUncached(probe);
        const rd = d.beginRead();
        const hash = stateHashOf(rd.scan());
        rd.close();
        const v = d.verify();
        return { error: v.ok ? null : `verify: ${v.problems.map((p) => JSON.stringify(p)).join(', ')}`, hash };
      } finally {
        d.close();
      }
    } catch (err) {
      return { error: (err as Error).message, hash: '' };
    }
  };
  const imageOf = (bytes: Uint8Array): FaultyFileSystem => {
    const image = new FaultyFileSystem();
    image.setBytes(DB, bytes);
    image.setBytes(LOG, fs.bytes(LOG));
    return image;
  };
  for (let n = 0; n < 20; n++) {
    const from = 2 + Math.floor(r() * (pages - 2));
    let to = 2 + Math.floor(r() * (pages - 2));
    if (to === from) to = from === 2 ? 3 : 2;
    const bytes = final.slice();
    bytes.copyWithin(to * PAGE_SIZE, from * PAGE_SIZE, (from + 1) * PAGE_SIZE);
    // Reading page `to` must fail, naming it, whether or not the tree reaches it.
    const seen = readAll(imageOf(bytes), to).error;
    if (seen === null || !seen.includes(`page ${to}`)) {
      fig.wrongOffsetPagesMissed!++;
      fail(`page ${from} copied over page ${to}: ${seen === null ? 'not detected' : `error does not name page ${to}: ${seen}`}`);
    } else fig.wrongOffsetPagesDetected!++;
  }
  const layout = walk(Buffer.from(final));
  const onPath = new Map<number, Set<string>>();
  for (const [hex, e] of layout.entries) for (const id of e.path) onPath.set(id, (onPath.get(id) ?? new Set()).add(hex));
  const tree = new Set(layout.tree);
  const chains = new Set(layout.chains);
  const isStale = (err: unknown, id: number): boolean => err instanceof NorthstarError && err.code === 'Corrupt' && err.pageId === id && /written by txn/.test(err.message);
  for (const [id, list] of versions) {
    for (const old of list.slice(0, -1)) {
      const cur = final.slice(id * PAGE_SIZE, (id + 1) * PAGE_SIZE);
      if (old.every((b, i) => b === cur[i])) continue;
      fig.stalePages!++;
      const bytes = final.slice();
      bytes.set(old, id * PAGE_SIZE);
      const what = `stale page ${id}`;
      let d: Database;
      try {
        d = open(DB, { ...OPEN_OPTS, fileSystem: imageOf(bytes) });
      } catch (err) {
        if (chains.has(id) && isStale(err, id)) fig.stalePagesDetected!++;
        else fail(`${what}: open failed: ${(err as Error).message}`);
        continue;
      }
      let missed = false;
      try {
        // History pages are read at open; the freelist chain when the first write needs free
        // pages (file_format_v1 §9.3): that write must refuse, naming the page.
        const freelistPage = layout.freelistChain.has(id);
        if (chains.has(id) && !freelistPage) {
          missed = true;
          fail(`${what}: a history page, but open succeeded`);
        }
        if (freelistPage) {
          try {
            d.beginWrite().abort();
            missed = true;
            fail(`${what}: a freelist page, but the first write began`);
          } catch (err) {
            if (!isStale(err, id)) {
              missed = true;
              fail(`${what}: a freelist page; the first write threw ${(err as Error).message}`);
            }
          }
        }
        const touched = onPath.get(id) ?? new Set<string>();
        const rd = d.beginRead();
        for (const [hex, e] of layout.entries) {
          let got: Buffer | undefined;
          try {
            got = rd.get(e.key);
          } catch (err) {
            if (touched.has(hex) && isStale(err, id)) fig.staleReadsDetected!++;
            else {
              missed = true;
              fail(`${what}: get ${hex} threw ${(err as Error).message}`);
            }
            continue;
          }
          if (got === undefined || !got.equals(e.value)) {
            fig.staleReadsOldValues!++;
            missed = true;
            fail(`${what}: get ${hex} returned an old value (${got === undefined ? 'absent' : `${got.length} bytes`}) without an error`);
          } else if (touched.has(hex)) {
            fig.staleReadsMissed!++;
            missed = true;
            fail(`${what}: get ${hex} reads through it but returned without an error`);
          } else fig.staleReadsUntouched!++;
        }
        let scanned: string | null = null;
        try {
          scanned = stateHashOf(rd.scan());
        } catch (err) {
          if (!tree.has(id) || !isStale(err, id)) {
            missed = true;
            fail(`${what}: scan threw ${(err as Error).message}`);
          }
        }
        rd.close();
        if (scanned !== null && (tree.has(id) || scanned !== goodHash)) {
          if (scanned !== goodHash) fig.staleReadsOldValues!++;
          missed = true;
          fail(`${what}: a full scan completed (${scanned === goodHash ? 'current' : 'old'} state) without an error`);
        }
        const v = d.verify();
        const named = v.problems.some((p) => p.pageId === id && (p.code === 'txn' || p.code === 'unreadable'));
        if ((tree.has(id) || freelistPage) && !named) {
          missed = true;
          fail(`${what}: verify does not name it: ${JSON.stringify(v.problems.slice(0, 3))}`);
        }
        if (!tree.has(id) && !freelistPage && !v.ok) {
          missed = true;
          fail(`${what}: a free page, but verify reports ${JSON.stringify(v.problems[0])}`);
        }
      } finally {
        d.close();
      }
      if (missed) continue;
      if (tree.has(id) || layout.freelistChain.has(id)) fig.stalePagesDetected!++;
      else fig.stalePagesUnreached!++;
    }
  }
}

/**
 * The last log record torn at several cuts or short: recovery cuts it off and
 * opens at the txn before. A record in the middle damaged (not a crash
 * pattern: the next record was written after it was synced): Corrupt naming
 * its position.
 */
function logTails(seed: number, fig: Record<string, number>, fail: (t: string) => void): void {
  const fs = new FaultyFileSystem();
  const db = open(DB, { ...OPEN_OPTS, fileSystem: fs });
  for (let t = 1; t <= 6; t++) {
    const w = db.beginWrite();
    applyOps(w, opsFor(seed, t));
    w.commit();
  }
  const positions = [...db.readLog()].map((c) => c.position);
  const logEnd = db.stats().logSize; // file offset past the last record; preallocated zeros follow (file_format_v1 §8.5)
  const image = fs.crash(() => 'keep');
  db.close();
  const log = image.bytes(LOG).slice(0, logEnd);
  const lastStart = positions[5]! - positions[0]! + 32; // file offset: the header is 32 bytes, base = first position
  const offsetOf = (pos: number): number => pos - positions[0]! + 32;
  for (const cut of [1, 8, 31, 32, 33, 64, Math.floor((log.length - lastStart) / 2), log.length - lastStart - 1]) {
    fig.tornLogTailCases!++;
    const t = image.crash(() => 'keep');
    t.setBytes(LOG, log.slice(0, lastStart + cut));
    try {
      const again = open(DB, { ...OPEN_OPTS, fileSystem: t });
      if (again.txnId !== 5) fail(`last log record cut after ${cut} bytes: reopened at ${again.txnId}, expected 5`);
      again.close();
      if (t.bytes(LOG).length !== lastStart) fail(`last log record cut after ${cut} bytes: the torn tail was not truncated`);
    } catch (err) {
      fail(`last log record cut after ${cut} bytes: reopen failed: ${(err as Error).message}`);
    }
  }
  // Damage in the middle: flip a byte inside record 3 (txn 3).
  for (const at of [0, 20, 45]) {
    fig.damagedMiddleCases!++;
    const t = image.crash(() => 'keep');
    const bytes = log.slice();
    const off = offsetOf(positions[2]!) + at;
    bytes[off] = bytes[off]! ^ 0x40;
    t.setBytes(LOG, bytes);
    try {
      open(DB, { ...OPEN_OPTS, fileSystem: t }).close();
      fail(`log record 3 damaged at +${at}: opened without error`);
    } catch (err) {
      if (!(err instanceof NorthstarError) || err.code !== 'Corrupt' || !err.message.includes(String(positions[2]))) {
        fail(`log record 3 damaged at +${at}: ${err instanceof NorthstarError ? err.code : ''} ${(err as Error).message}, expected Corrupt naming position ${positions[2]}`);
      }
    }
  }
}

export const iofaultsSuite: HardeningSuite = { name: 'iofaults', run: runIofaults };
