// Hardening §4: corruption is detected, never returned (issue 5).
//
// A database with a few thousand keys (overflow values, history, a freelist)
// is built and closed cleanly, so the durable meta covers every commit and
// opening replays nothing: the pages reachable from that meta are exactly what
// reads, db.verify() and `northstar verify` look at. Each trial copies the
// files, flips 1–3 distinct bits in 1–3 of those pages (CRC32C detects every
// error of up to 3 bits in a page, so detection is certain, not probable), and
// checks against a model built by walking the pristine file:
//
// - a get throws Corrupt naming the first damaged page on its path (branches,
//   leaf, overflow chain) exactly when that path holds a damaged page, and
//   otherwise returns the model's value; a full scan yields the model's
//   entries in order and then throws Corrupt iff any tree page is damaged;
//   bounded scans yield only model entries; no read returns a wrong value;
// - db.verify() and `northstar verify` report as unreadable exactly the
//   damaged pages no other damaged page hides, every damaged page appears in
//   some problem, and every other problem is a page below a damaged one (no
//   longer reachable, so "leaked") or the entry count;
// - damage in a freelist or history page fails the open with Corrupt naming
//   it; damage in a free page changes nothing.
//
// Whole files: a zero-length or random-bytes data file, a random-bytes,
// empty or foreign log, cuts of either file, and a garbage log tail give
// NorthstarErrors only (the tail is cut off at open and the state is intact).

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { open, type Database } from '../db/index.js';
import { ErrorCode, NorthstarError } from '../errors.js';
import { readU64 } from '../format/bytes.js';
import { FIRST_DATA_PAGE, OVERFLOW_DATA_OFFSET, OVERFLOW_NEXT_OFFSET, PageType, TYPE_OFFSET, VALUE_OVERFLOW_BIT } from '../format/constants.js';
import { childAt, nodeCount } from '../format/page.js';
import { kernels } from '../native/kernels.js';
import { decodeMeta, type Meta } from '../pager/meta.js';
import { readFreelistPage } from '../pager/freelist.js';
import { readHistoryPage } from '../pager/history.js';
import { verify as cliVerify } from '../cli/verify.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { randInt, randomBytes, removeDir, rng, tempDir } from '../testing/rng.js';

const PAGE_SIZE = 4096;

/** What a walk of the pristine file knows: every key's value and the pages a read of it touches. */
export interface Layout {
  meta: Meta;
  /** hex key → value and path (root … leaf, then the overflow chain in order). */
  entries: Map<string, { key: Buffer; value: Buffer; path: number[] }>;
  /** Sorted hex keys. */
  sorted: string[];
  /** Tree pages: branches, leaves, overflow pages. */
  tree: number[];
  /** Pages a walk reaches only through this one (children; a leaf's chains; the rest of a chain). */
  below: Map<number, number[]>;
  /** Freelist and history chain pages. */
  chains: number[];
  /** The freelist chain's pages: read when the first write needs free pages, not at open. */
  freelistChain: Set<number>;
  /** Pages 2 … pageCount−1 that are none of the above. */
  free: number[];
}

function pageOf(file: Buffer, id: number): Buffer {
  return file.subarray(id * PAGE_SIZE, (id + 1) * PAGE_SIZE);
}

/** The meta open chooses after a clean close: the valid one with the higher txn id. */
function durableMeta(file: Buffer): Meta {
  const metas = [0, 1]
    .map((slot) => decodeMeta(Buffer.from(pageOf(file, slot)), slot, file.length, kernels))
    .flatMap((r) => (r.ok ? [r.meta] : []));
  if (metas.length === 0) throw new Error('corruption suite: the pristine file has no valid meta');
  return metas.reduce((a, b) => (b.txnId > a.txnId ? b : a));
}

/** Walks the pristine file (4 KiB pages, cleanly closed) from its durable meta (spec §4–§6). */
export function walk(file: Buffer): Layout {
  const meta = durableMeta(file);
  const entries: Layout['entries'] = new Map();
  const tree: number[] = [];
  const below = new Map<number, number[]>();
  let out = new Uint32Array(4096);
  const visit = (id: number, path: number[]): void => {
    tree.push(id);
    const p = pageOf(file, id);
    const count = nodeCount(p);
    if (out.length < count * 4) out = new Uint32Array(count * 4);
    kernels.nodeDecode(p, out);
    if (p[TYPE_OFFSET] === PageType.Branch) {
      const kids: number[] = [];
      for (let c = 0; c <= count; c++) kids.push(childAt(p, c));
      below.set(id, kids);
      for (const kid of kids) visit(kid, [...path, id]);
      return;
    }
    const chains: number[] = [];
    for (let i = 0; i < count; i++) {
      const key = Buffer.from(p.subarray(out[i * 4]!, out[i * 4]! + out[i * 4 + 1]!));
      const vlen = out[i * 4 + 3]!;
      const at = out[i * 4 + 2]!;
      const keyPath = [...path, id];
      let value: Buffer;
      if (vlen < VALUE_OVERFLOW_BIT) value = Buffer.from(p.subarray(at, at + vlen));
      else {
        const length = vlen - VALUE_OVERFLOW_BIT;
        value = Buffer.alloc(length);
        let ov = readU64(p, at);
        chains.push(ov);
        for (let done = 0; done < length; ) {
          const o = pageOf(file, ov);
          const n = Math.min(PAGE_SIZE - OVERFLOW_DATA_OFFSET, length - done);
          o.copy(value, done, OVERFLOW_DATA_OFFSET, OVERFLOW_DATA_OFFSET + n);
          done += n;
          tree.push(ov);
          keyPath.push(ov);
          const next = readU64(o, OVERFLOW_NEXT_OFFSET);
          if (next !== 0) below.set(ov, [next]);
          ov = next;
        }
      }
      entries.set(key.toString('hex'), { key, value, path: keyPath });
    }
    below.set(id, chains);
  };
  if (meta.root !== 0) visit(meta.root, []);
  const chains: number[] = [];
  for (let id = meta.freelist; id !== 0; id = readFreelistPage(pageOf(file, id))!.next) chains.push(id);
  const freelistChain = new Set(chains);
  for (let id = meta.history; id !== 0; id = readHistoryPage(pageOf(file, id))!.next) chains.push(id);
  const used = new Set([...tree, ...chains]);
  const free: number[] = [];
  for (let id = FIRST_DATA_PAGE; id < meta.pageCount; id++) if (!used.has(id)) free.push(id);
  return { meta, entries, sorted: [...entries.keys()].sort(), tree, below, chains, freelistChain, free };
}

/** Every page below any of `ids` (not counting `ids` themselves unless below another). */
function closureBelow(layout: Layout, ids: Iterable<number>): Set<number> {
  const out = new Set<number>();
  const stack = [...ids].flatMap((id) => layout.below.get(id) ?? []);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (out.has(id)) continue;
    out.add(id);
    stack.push(...(layout.below.get(id) ?? []));
  }
  return out;
}

/** Builds the database the trials damage; returns the model the walk must agree with. */
function buildDatabase(path: string, seed: number, keys: number): Map<string, Buffer> {
  const r = rng(seed, 1);
  const model = new Map<string, Buffer>();
  const db = open(path, { pageSize: PAGE_SIZE, sync: 'none' });
  const value = (): Buffer => randomBytes(r, r() < 0.03 ? 4500 + randInt(r, 16000) : 10 + randInt(r, 200));
  const key = (i: number): Buffer => Buffer.from(`key:${String(i).padStart(6, '0')}:${'x'.repeat(i % 23)}`);
  const commit = (f: (put: (k: Buffer, v: Buffer) => void, del: (k: Buffer) => void) => void): void => {
    const w = db.beginWrite();
    f(
      (k, v) => {
        w.put(k, v);
        model.set(k.toString('hex'), v);
      },
      (k) => {
        w.del(k);
        model.delete(k.toString('hex'));
      },
    );
    w.commit();
  };
  commit((put) => {
    for (let i = 0; i < keys; i++) put(key(i), value());
  });
  // Rewrites, deletes and more keys: history, freed pages and a freelist chain.
  for (let round = 0; round < 6; round++) {
    commit((put, del) => {
      for (let j = 0; j < keys / 10; j++) {
        const i = randInt(r, keys);
        if (r() < 0.3) del(key(i));
        else put(key(i), value());
      }
      for (let j = 0; j < keys / 30; j++) put(key(keys + round * 1000 + j), value());
    });
    if (round % 2 === 1) db.checkpoint();
  }
  const report = db.verify();
  if (!report.ok) throw new Error(`corruption suite: the pristine database does not verify: ${report.problems[0]?.message}`);
  db.close();
  return model;
}

/** What a damaged read is allowed to throw: Corrupt naming one of the damaged pages. */
function corruptIn(err: unknown, damaged: ReadonlySet<number>): boolean {
  return err instanceof NorthstarError && err.code === 'Corrupt' && err.pageId !== undefined && damaged.has(err.pageId);
}

export interface CorruptionOptions extends SuiteOptions {
  /** Trials of bit flips in tree pages (default 15 short, 1,500 long). */
  trials?: number;
  /** Keys in the database (default 1,500). */
  keys?: number;
  /** Run `northstar verify` (the CLI's library function) in every trial (default: every 1 in 1 short, 1 in 5 long). */
  cliEvery?: number;
}

export async function runCorruption(opts: CorruptionOptions): Promise<Figures> {
  const trials = opts.trials ?? (opts.long ? 1500 : 15);
  const keys = opts.keys ?? 1500;
  const cliEvery = opts.cliEvery ?? (opts.long ? 5 : 1);
  const dir = tempDir('corruption');
  const f = {
    trials: 0,
    pagesDamaged: 0,
    bitsFlipped: 0,
    readsChecked: 0,
    readsCorruptDetected: 0,
    wrongValuesReturned: 0,
    missedDetections: 0,
    falseAlarms: 0,
    wrongPageNamed: 0,
    scansChecked: 0,
    verifyRuns: 0,
    verifyExact: 0,
    cliVerifyRuns: 0,
    cliVerifyExact: 0,
    chainDamageTrials: 0,
    chainDamageRefused: 0,
    freePageTrials: 0,
    freePageHarmless: 0,
    wholeFileCases: 0,
    wholeFileCleanErrors: 0,
    wholeFileOpenedIntact: 0,
    unexpectedErrors: 0,
    failures: 0,
  };
  const fail = (what: string): void => {
    f.failures++;
    if (f.failures <= 20) opts.log(`FAIL ${what} (seed ${opts.seed})`);
  };
  try {
    const pristinePath = nodePath.join(dir, 'pristine.ndb');
    const model = buildDatabase(pristinePath, opts.seed, keys);
    const pristine = fs.readFileSync(pristinePath);
    const pristineLog = fs.readFileSync(`${pristinePath}.log`);
    const layout = walk(pristine);
    if (layout.entries.size !== model.size) throw new Error(`corruption suite: walk found ${layout.entries.size} keys, model has ${model.size}`);
    for (const [k, e] of layout.entries) if (!model.get(k)?.equals(e.value)) throw new Error(`corruption suite: walk disagrees with the model at ${k}`);
    opts.log(
      `database: ${model.size} keys, ${layout.meta.pageCount} pages (${layout.tree.length} tree, ${layout.chains.length} chain, ${layout.free.length} free), txn ${layout.meta.txnId}`,
    );
    const r = rng(opts.seed, 2);
    const trialPath = nodePath.join(dir, 'trial.ndb');
    const install = (data: Uint8Array, log: Uint8Array = pristineLog): void => {
      fs.writeFileSync(trialPath, data);
      fs.writeFileSync(`${trialPath}.log`, log);
    };
    /** Flips `bits` distinct bits of page id in `data`. */
    const damage = (data: Buffer, id: number, bits: number): void => {
      const seen = new Set<number>();
      while (seen.size < bits) seen.add(randInt(r, PAGE_SIZE * 8));
      for (const bit of seen) data[id * PAGE_SIZE + (bit >> 3)]! ^= 1 << (bit & 7);
      f.bitsFlipped += bits;
    };

    for (let t = 0; t < trials; t++) {
      const kind = t % 10 === 8 ? 'chain' : t % 10 === 9 ? 'free' : 'tree';
      const data = Buffer.from(pristine);
      if (kind === 'chain') {
        if (layout.chains.length === 0) continue;
        const id = layout.chains[randInt(r, layout.chains.length)]!;
        damage(data, id, 1 + randInt(r, 3));
        install(data);
        f.chainDamageTrials++;
        try {
          // History pages are read at open (time travel); the freelist chain when the
          // first write needs free pages (file_format_v1 §9.3): that write refuses.
          const db = open(trialPath, { sync: 'none' });
          try {
            if (!layout.freelistChain.has(id)) fail(`chain page ${id} damaged, yet open succeeded`);
            else {
              db.beginWrite().abort();
              fail(`freelist page ${id} damaged, yet the first write began`);
            }
          } finally {
            db.close();
          }
        } catch (err) {
          if (err instanceof NorthstarError && err.code === 'Corrupt' && err.pageId === id) f.chainDamageRefused++;
          else fail(`chain page ${id} damaged: open threw ${String(err)}`);
        }
        continue;
      }
      if (kind === 'free') {
        if (layout.free.length === 0) continue;
        const id = layout.free[randInt(r, layout.free.length)]!;
        damage(data, id, 1 + randInt(r, 3));
        install(data);
        f.freePageTrials++;
        const ok = checkReads(trialPath, layout, new Set(), r, f, fail) && checkVerify(trialPath, layout, new Set(), f, fail, false);
        if (ok) f.freePageHarmless++;
        continue;
      }
      // Tree pages: 1–3 of them, 1–3 bits each.
      const damaged = new Set<number>();
      const n = 1 + randInt(r, 3);
      while (damaged.size < Math.min(n, layout.tree.length)) damaged.add(layout.tree[randInt(r, layout.tree.length)]!);
      for (const id of damaged) damage(data, id, 1 + randInt(r, 3));
      install(data);
      f.trials++;
      f.pagesDamaged += damaged.size;
      checkReads(trialPath, layout, damaged, r, f, fail);
      checkVerify(trialPath, layout, damaged, f, fail, t % cliEvery === 0);
      if (t % 100 === 99) opts.log(`${t + 1}/${trials} trials, ${f.readsCorruptDetected} corrupt reads detected, ${f.wrongValuesReturned} wrong values`);
    }

    wholeFiles(opts, trialPath, pristine, pristineLog, model, r, f, fail, install);
  } finally {
    removeDir(dir);
  }
  return f;
}

type Counters = Record<string, number>;

/** Opens the damaged copy and reads every key, full scans both ways and bounded scans. */
function checkReads(
  path: string,
  layout: Layout,
  damaged: ReadonlySet<number>,
  r: () => number,
  f: Counters,
  fail: (what: string) => void,
): boolean {
  const before = f.failures!;
  let db: Database;
  try {
    db = open(path, { sync: 'none' });
  } catch (err) {
    fail(`open of a copy with damaged tree pages ${[...damaged]} threw ${String(err)}`);
    return false;
  }
  try {
    const txn = db.beginRead();
    for (const hex of layout.sorted) {
      const e = layout.entries.get(hex)!;
      const firstDamaged = e.path.find((id) => damaged.has(id));
      f.readsChecked!++;
      let got: Buffer | undefined;
      try {
        got = txn.get(e.key);
      } catch (err) {
        if (!(err instanceof NorthstarError)) {
          f.unexpectedErrors!++;
          fail(`get ${hex} threw a non-NorthstarError: ${String(err)}`);
        } else if (firstDamaged === undefined) {
          f.falseAlarms!++;
          fail(`get ${hex} threw ${err.code} (${err.message}) but its path ${e.path} holds no damaged page`);
        } else if (err.code !== 'Corrupt' || err.pageId !== firstDamaged) {
          f.wrongPageNamed!++;
          fail(`get ${hex}: ${err.code} naming page ${err.pageId}, expected Corrupt naming ${firstDamaged}`);
        } else f.readsCorruptDetected!++;
        continue;
      }
      if (got === undefined || !got.equals(e.value)) {
        f.wrongValuesReturned!++;
        fail(`get ${hex} returned a wrong value (damaged ${[...damaged]})`);
      } else if (firstDamaged !== undefined) {
        f.missedDetections!++;
        fail(`get ${hex} read damaged page ${firstDamaged} without an error`);
      }
    }
    const treeDamaged = layout.tree.some((id) => damaged.has(id));
    for (const reverse of [false, true]) {
      const expected = reverse ? [...layout.sorted].reverse() : layout.sorted;
      f.scansChecked!++;
      let i = 0;
      try {
        for (const [k, v] of txn.scan({ reverse })) {
          const hex = k.toString('hex');
          if (hex !== expected[i] || !v.equals(layout.entries.get(hex)!.value)) {
            f.wrongValuesReturned!++;
            fail(`${reverse ? 'reverse ' : ''}scan entry ${i} is ${hex}, expected ${expected[i]} with its value`);
            break;
          }
          i++;
        }
        if (treeDamaged) {
          f.missedDetections!++;
          fail(`a full scan passed damaged pages ${[...damaged]} without an error`);
        } else if (i !== expected.length) fail(`scan ended after ${i} of ${expected.length} entries`);
      } catch (err) {
        if (corruptIn(err, damaged)) f.readsCorruptDetected!++;
        else {
          f.unexpectedErrors!++;
          fail(`scan threw ${String(err)}, damaged ${[...damaged]}`);
        }
      }
    }
    for (let s = 0; s < 10; s++) {
      const from = randInt(r, layout.sorted.length);
      const limit = 1 + randInt(r, 40);
      const expected = layout.sorted.slice(from, from + limit);
      f.scansChecked!++;
      let i = 0;
      try {
        for (const [k, v] of txn.scan({ gte: layout.entries.get(layout.sorted[from]!)!.key, limit })) {
          const hex = k.toString('hex');
          if (hex !== expected[i] || !v.equals(layout.entries.get(hex)!.value)) {
            f.wrongValuesReturned!++;
            fail(`bounded scan from ${layout.sorted[from]} entry ${i} is ${hex}, expected ${expected[i]}`);
            break;
          }
          i++;
        }
      } catch (err) {
        if (corruptIn(err, damaged)) f.readsCorruptDetected!++;
        else {
          f.unexpectedErrors!++;
          fail(`bounded scan threw ${String(err)}`);
        }
      }
    }
    txn.close();
  } catch (err) {
    f.unexpectedErrors!++;
    fail(`reads threw outside a read: ${String(err)}`);
  } finally {
    try {
      db.close();
    } catch (err) {
      fail(`close threw ${String(err)}`);
    }
  }
  return f.failures === before;
}

/**
 * db.verify() and, when `cli`, `northstar verify`: unreadable pages are exactly
 * the damaged pages no other damaged page hides; every damaged page is named;
 * every other problem is below a damaged page or the entry count.
 */
function checkVerify(path: string, layout: Layout, damaged: ReadonlySet<number>, f: Counters, fail: (what: string) => void, cli: boolean): boolean {
  const hidden = closureBelow(layout, damaged);
  const top = [...damaged].filter((id) => !hidden.has(id)).sort((a, b) => a - b);
  const judge = (who: string, problems: Array<{ pageId: number | null; code: string }>): boolean => {
    const unreadable = problems.filter((p) => p.code === 'unreadable').map((p) => p.pageId!).sort((a, b) => a - b);
    const named = new Set(problems.map((p) => p.pageId));
    const strays = problems.filter((p) => p.code !== 'unreadable' && !(p.code === 'leak' && hidden.has(p.pageId!)) && !(p.code === 'count' && p.pageId === null));
    const ok = JSON.stringify(unreadable) === JSON.stringify(top) && [...damaged].every((id) => named.has(id)) && strays.length === 0;
    if (!ok) {
      fail(
        `${who}: unreadable ${JSON.stringify(unreadable)}, expected ${JSON.stringify(top)} (damaged ${[...damaged]}); other problems ${JSON.stringify(strays.slice(0, 3))}`,
      );
    }
    return ok;
  };
  let ok = true;
  try {
    const db = open(path, { sync: 'none' });
    try {
      f.verifyRuns!++;
      const report = db.verify();
      if (judge('db.verify()', report.problems)) f.verifyExact!++;
      else ok = false;
    } finally {
      db.close();
    }
  } catch (err) {
    fail(`db.verify() threw ${String(err)}`);
    return false;
  }
  if (!cli) return ok;
  f.cliVerifyRuns!++;
  const lines: string[] = [];
  let code: number;
  try {
    code = cliVerify(path, { out: (l) => lines.push(l), err: (l) => lines.push(l) });
  } catch (err) {
    fail(`northstar verify threw ${String(err)}`);
    return false;
  }
  // Problem lines: check, "page N" or "-", code, message.
  const problems = lines
    .map((l) => l.split('\t'))
    .filter((c) => c.length >= 4)
    .map((c) => ({ pageId: c[1]!.startsWith('page ') ? Number(c[1]!.slice(5)) : null, code: c[2]! }));
  const summary = lines.at(-1) ?? '';
  const countOk = summary === `${problems.length} problems found` && code === (problems.length === 0 ? 0 : 1);
  if (!countOk) fail(`northstar verify: summary "${summary}", exit ${code}, ${problems.length} problem lines`);
  if (judge('northstar verify', problems) && countOk) f.cliVerifyExact!++;
  else ok = false;
  return ok;
}

/** Whole-file damage: every outcome is a NorthstarError at open, or an intact database. */
function wholeFiles(
  opts: SuiteOptions,
  path: string,
  pristine: Buffer,
  pristineLog: Buffer,
  model: Map<string, Buffer>,
  r: () => number,
  f: Counters,
  fail: (what: string) => void,
  install: (data: Uint8Array, log?: Uint8Array) => void,
): void {
  const rounds = opts.long ? 40 : 2;
  const otherDir = tempDir('corruption-other');
  let otherLog: Buffer;
  try {
    const other = open(nodePath.join(otherDir, 'other.ndb'), { pageSize: PAGE_SIZE, sync: 'none' });
    const w = other.beginWrite();
    w.put('a', '1');
    w.commit();
    other.close();
    otherLog = fs.readFileSync(nodePath.join(otherDir, 'other.ndb.log'));
  } finally {
    removeDir(otherDir);
  }
  const codes = new Set<string>(Object.values(ErrorCode));
  /** Expect a NorthstarError at open (of one of `want`). */
  const refused = (what: string, want: string[]): void => {
    f.wholeFileCases!++;
    try {
      open(path, { sync: 'none' }).close();
      fail(`${what}: open succeeded`);
    } catch (err) {
      if (err instanceof NorthstarError && codes.has(err.code) && want.includes(err.code)) f.wholeFileCleanErrors!++;
      else fail(`${what}: open threw ${err instanceof NorthstarError ? err.code : 'a non-NorthstarError'}: ${String(err)}`);
    }
  };
  /** Either a NorthstarError at open, or a database whose every read equals the model. */
  const refusedOrIntact = (what: string): void => {
    f.wholeFileCases!++;
    let db: Database;
    try {
      db = open(path, { sync: 'none' });
    } catch (err) {
      if (err instanceof NorthstarError && codes.has(err.code)) f.wholeFileCleanErrors!++;
      else fail(`${what}: open threw a non-NorthstarError: ${String(err)}`);
      return;
    }
    try {
      const txn = db.beginRead();
      let i = 0;
      const sorted = [...model.keys()].sort();
      for (const [k, v] of txn.scan()) {
        if (k.toString('hex') !== sorted[i] || !v.equals(model.get(sorted[i]!)!)) {
          f.wrongValuesReturned!++;
          fail(`${what}: opened, and scan entry ${i} differs from the model`);
          break;
        }
        i++;
      }
      if (i !== sorted.length) fail(`${what}: opened with ${i} of ${sorted.length} entries`);
      txn.close();
      const report = db.verify();
      if (!report.ok) fail(`${what}: opened, verify found ${report.problems[0]?.message}`);
      else f.wholeFileOpenedIntact!++;
    } catch (err) {
      if (!(err instanceof NorthstarError)) fail(`${what}: reads threw a non-NorthstarError: ${String(err)}`);
      else f.wholeFileCleanErrors!++;
    } finally {
      try {
        db.close();
      } catch {
        // A failed checkpoint at close after damage is a NorthstarError already counted.
      }
    }
  };

  install(Buffer.alloc(0));
  refused('zero-length data file', ['Corrupt']);
  install(pristine, Buffer.alloc(0));
  refused('zero-length log', ['Corrupt']);
  install(pristine, otherLog);
  refused('a log of another database', ['Corrupt']);
  for (let i = 0; i < rounds; i++) {
    const sizes = [1, 39, 40, 41, 4095, 4096, 8192, 8193, 3 * 4096 + 17, 16384 * 3, 65536 + randInt(r, 100_000)];
    for (const n of sizes) {
      install(randomBytes(r, n));
      refused(`a data file of ${n} random bytes`, ['Corrupt', 'UnsupportedFormat']);
    }
    install(pristine, randomBytes(r, 1 + randInt(r, 5000)));
    refused('a log of random bytes', ['Corrupt', 'UnsupportedFormat']);
    // Cuts anywhere: the data file, the log.
    install(pristine.subarray(0, randInt(r, pristine.length)));
    refusedOrIntact('a cut data file');
    install(pristine, pristineLog.subarray(0, randInt(r, pristineLog.length)));
    refusedOrIntact('a cut log');
    // A garbage tail after the last record is a torn append: cut off at open.
    install(pristine, Buffer.concat([pristineLog, randomBytes(r, 1 + randInt(r, 3000))]));
    refusedOrIntact('a log with a garbage tail');
  }
}

export const corruptionSuite: HardeningSuite = { name: 'corruption', run: runCorruption };
