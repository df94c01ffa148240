// Model-based property tests of the database (ts/db.ts, ts/txn/*.ts,
// ts/btree/*.ts) against a plain in-memory sorted map. Random command
// sequences (put, del, commit, abort, reopen, reader begin/check/end) run
// against both; every step compares, and verify() must pass after every commit.
// A failure prints the seed: NORTHSTAR_SEED=<seed> replays it.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { OVERFLOW_DATA_OFFSET } from './format/constants.js';
import { inlineFootprint, maxInlineFootprint } from './format/page.js';
import { implementation, maxKeySize, open, PAGE_SIZES, type Database, type ReadTxn, type ScanOptions, type WriteTxn } from './index.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/db.model.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

/** hex(key) → value. Hex strings sort exactly as the keys' bytes do. */
type Model = Map<string, Buffer>;

const hex = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex');

/** A value of n bytes whose content depends on tag. */
function valueOf(n: number, tag: number): Buffer {
  const v = Buffer.alloc(n);
  let x = (tag * 2654435761 + 7) >>> 0;
  for (let i = 0; i < n; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    v[i] = x >>> 24;
    if (i + 1 < n) v[i + 1] = x >>> 16;
  }
  return v;
}

function describeValue(v: Buffer | undefined): string {
  return v === undefined ? 'absent' : `${v.length} bytes ${v.subarray(0, 8).toString('hex')}`;
}

/** The model's answer to a scan, as hex keys in scan order. */
function modelScan(m: Model, o: ScanOptions = {}): string[] {
  const h = (x: unknown): string => hex(x as Uint8Array);
  let keys = [...m.keys()].sort().filter(
    (k) =>
      (o.gte === undefined || k >= h(o.gte)) &&
      (o.gt === undefined || k > h(o.gt)) &&
      (o.lte === undefined || k <= h(o.lte)) &&
      (o.lt === undefined || k < h(o.lt)) &&
      (o.prefix === undefined || k.startsWith(h(o.prefix))),
  );
  if (o.reverse) keys.reverse();
  if (o.limit !== undefined) keys = keys.slice(0, o.limit);
  return keys;
}

/** Compares a scan with the model entry by entry; throws naming the first difference. */
function expectScan(t: ReadTxn | WriteTxn, m: Model, o: ScanOptions, what: string): void {
  const want = modelScan(m, o);
  let i = 0;
  for (const [k, v] of t.scan(o)) {
    const key = hex(k);
    if (i >= want.length) throw new Error(`${what}: scan ${JSON.stringify(o)} returned extra key ${key} after ${i} entries`);
    if (key !== want[i]) throw new Error(`${what}: scan ${JSON.stringify(o)} entry ${i} is ${key}, model says ${want[i]}`);
    const mv = m.get(key)!;
    if (!v.equals(mv)) throw new Error(`${what}: scan value of ${key} is ${describeValue(v)}, model says ${describeValue(mv)}`);
    i++;
  }
  if (i !== want.length) throw new Error(`${what}: scan ${JSON.stringify(o)} ended after ${i} entries, model has ${want.length}`);
}

function expectGet(t: ReadTxn | WriteTxn, m: Model, key: Uint8Array, what: string): void {
  const got = t.get(key);
  const want = m.get(hex(key));
  if (want === undefined ? got !== undefined : got === undefined || !got.equals(want)) {
    throw new Error(`${what}: get ${hex(key)} is ${describeValue(got)}, model says ${describeValue(want)}`);
  }
}

/** verify() finds nothing, and the file holds every page the meta counts (spec §3, rule 2); returns verify's report. */
function expectVerified(db: Database, what: string): ReturnType<Database['verify']> {
  const report = db.verify();
  if (!report.ok) throw new Error(`${what}: verify found ${report.problems.length} problems: ${JSON.stringify(report.problems.slice(0, 5))}`);
  const s = db.stats();
  if (s.fileSize < s.pageCount * s.pageSize) throw new Error(`${what}: file has ${s.fileSize} bytes, the meta counts ${s.pageCount} pages of ${s.pageSize}`);
  return report;
}

/** Overflow pages a value of vlen bytes under a key of klen bytes takes (spec §5): none when it fits inline. */
function overflowPages(pageSize: number, klen: number, vlen: number): number {
  return inlineFootprint(klen, vlen) > maxInlineFootprint(pageSize) ? Math.ceil(vlen / (pageSize - OVERFLOW_DATA_OFFSET)) : 0;
}

/** Branch and leaf pages of the committed tree: verify's tree pages less the overflow pages the model's values take. */
function nodePages(report: ReturnType<Database['verify']>, m: Model, pageSize: number): number {
  let overflow = 0;
  for (const [k, v] of m) overflow += overflowPages(pageSize, k.length / 2, v.length);
  return report.treePages - overflow;
}

function withTempDir<T>(f: (dir: string) => T): T {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-model-'));
  try {
    return f(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- property 1: random command sequences at every page size --------------------

/** A key: 1–3 bytes of a small alphabet, optionally repeated out to a length class (up to the page size's maximum). */
interface KeySpec {
  base: number[];
  /** 0: the base itself; 1: 100 bytes; 2: a third of the maximum; 3: exactly the maximum. */
  long: 0 | 1 | 2 | 3;
}

interface RangeSpec {
  lower?: { key: KeySpec; inclusive: boolean };
  upper?: { key: KeySpec; inclusive: boolean };
  prefix?: number[];
  reverse: boolean;
  limit?: number;
}

type Cmd =
  | { t: 'put'; key: KeySpec; size: { pages: boolean; n: number }; tag: number }
  | { t: 'del'; key: KeySpec }
  | { t: 'putMany'; prefix: KeySpec; count: number; vlen: number; tag: number }
  | { t: 'delRange'; range: RangeSpec }
  | { t: 'commit' }
  | { t: 'abort' }
  | { t: 'reopen' }
  | { t: 'beginRead' }
  | { t: 'endRead'; reader: number }
  | { t: 'check'; reader: number; probe: KeySpec; range: RangeSpec }
  | { t: 'checkWriter'; probe: KeySpec; range: RangeSpec };

/** Every kind of Cmd, for the coverage check. */
const CMD_KINDS: readonly Cmd['t'][] = ['put', 'del', 'putMany', 'delRange', 'commit', 'abort', 'reopen', 'beginRead', 'endRead', 'check', 'checkWriter'];

const ALPHABET = [0x00, 0x61, 0x62, 0xff];
const keySpecArb: fc.Arbitrary<KeySpec> = fc.record({
  base: fc.array(fc.constantFrom(...ALPHABET), { minLength: 1, maxLength: 3 }),
  long: fc.oneof({ weight: 10, arbitrary: fc.constant(0 as const) }, { weight: 1, arbitrary: fc.constantFrom(1 as const, 2 as const, 3 as const) }),
});

const rangeArb: fc.Arbitrary<RangeSpec> = fc.record(
  {
    lower: fc.record({ key: keySpecArb, inclusive: fc.boolean() }),
    upper: fc.record({ key: keySpecArb, inclusive: fc.boolean() }),
    prefix: fc.array(fc.constantFrom(...ALPHABET), { minLength: 1, maxLength: 2 }),
    reverse: fc.boolean(),
    limit: fc.nat(10),
  },
  { requiredKeys: ['reverse'] },
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      key: keySpecArb,
      // Mostly short values; sometimes up to three pages (overflow chains).
      size: fc.oneof({ weight: 6, arbitrary: fc.record({ pages: fc.constant(false), n: fc.nat(60) }) }, { weight: 1, arbitrary: fc.record({ pages: fc.constant(true), n: fc.nat(3000) }) }),
      tag: fc.nat(1_000_000),
    }),
  },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('del' as const), key: keySpecArb }) },
  // Bursts that fill nodes (splits, new levels) and range deletes that empty them (merges, redistribution).
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('putMany' as const),
      prefix: keySpecArb,
      count: fc.integer({ min: 1, max: 300 }),
      vlen: fc.oneof({ weight: 4, arbitrary: fc.nat(120) }, { weight: 1, arbitrary: fc.nat(1500) }),
      tag: fc.nat(1_000_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delRange' as const), range: rangeArb }) },
  { weight: 3, arbitrary: fc.constant({ t: 'commit' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'abort' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'beginRead' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('endRead' as const), reader: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('check' as const), reader: fc.nat(7), probe: keySpecArb, range: rangeArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('checkWriter' as const), probe: keySpecArb, range: rangeArb }) },
);

function makeKey(spec: KeySpec, pageSize: number): Buffer {
  const base = Buffer.from(spec.base);
  const max = maxKeySize(pageSize);
  const len = [base.length, 100, Math.floor(max / 3), max][spec.long]!;
  const key = Buffer.alloc(len);
  for (let i = 0; i < len; i++) key[i] = base[i % base.length]!;
  return key;
}

function makeRange(r: RangeSpec, pageSize: number): ScanOptions {
  const o: ScanOptions = { reverse: r.reverse };
  if (r.lower) o[r.lower.inclusive ? 'gte' : 'gt'] = makeKey(r.lower.key, pageSize);
  if (r.upper) o[r.upper.inclusive ? 'lte' : 'lt'] = makeKey(r.upper.key, pageSize);
  if (r.prefix) o.prefix = Buffer.from(r.prefix);
  if (r.limit !== undefined) o.limit = r.limit;
  return o;
}

/**
 * What the runs exercised, printed after each property and checked against
 * its minimums (MIN_COMMANDS, MIN_BATCHES), so a generator that stops reaching
 * a case fails the test instead of passing without testing it.
 * Splits and merges are seen from outside, by the tree's node count at each
 * commit (verify's tree pages less the model's overflow pages): a commit that
 * raised it split nodes, one that lowered it (below two nodes excepted: an
 * emptied leaf root is no merge) merged them. Splits and merges inside one
 * commit cancel, so these are lower bounds.
 */
const coverage = {
  runs: 0,
  commands: 0,
  commits: 0,
  reopens: 0,
  readerChecks: 0,
  /** Commands run, by kind (property 1). */
  ops: {} as Record<string, number>,
  /** Values that went to overflow pages (spec §5), single puts and bursts alike. */
  overflowPuts: 0,
  maxKeyPuts: 0,
  bulkPuts: 0,
  rangeDels: 0,
  /** del() of a key that was not there (returns false, changes nothing). */
  missingDels: 0,
  /** Commits that raised the tree's node count, and that lowered it. */
  splitCommits: 0,
  mergeCommits: 0,
  /** Commits that added a level to a tree, and that took one or more from a tree of several levels (a branch root collapsed). */
  depthUps: 0,
  depthDowns: 0,
  maxDepth: 0,
  maxEntries: 0,
};

/** Books one commit: `before` is the tree's node count and depth before it, the report verify's after it. */
function noteCommit(db: Database, before: { nodes: number; depth: number }, report: ReturnType<Database['verify']>, m: Model): { nodes: number; depth: number } {
  coverage.commits++;
  const s = db.stats();
  const nodes = nodePages(report, m, s.pageSize);
  // The count is derived, so check it is one: at least a node per level, none for an empty tree.
  if (nodes < s.depth || (nodes === 0) !== (s.entries === 0)) throw new Error(`tree of depth ${s.depth} and ${s.entries} entries counted as ${nodes} nodes`);
  if (nodes > before.nodes) coverage.splitCommits++;
  if (nodes < before.nodes && before.nodes > 1) coverage.mergeCommits++;
  if (s.depth > before.depth && before.depth > 0) coverage.depthUps++;
  if (s.depth < before.depth && before.depth > 1) coverage.depthDowns++;
  coverage.maxDepth = Math.max(coverage.maxDepth, s.depth);
  coverage.maxEntries = Math.max(coverage.maxEntries, s.entries);
  return { nodes, depth: s.depth };
}

/** Runs one command sequence against a fresh database and the model. */

function runCommands(pageSize: number, cmds: Cmd[]): void {
  coverage.runs++;
  coverage.commands += cmds.length;
  withTempDir((dir) => {
    const path = nodePath.join(dir, 'db');
    let db = open(path, { pageSize, sync: 'none' });
    let committed: Model = new Map();
    let writer: WriteTxn | null = null;
    let pending: Model = new Map();
    let readers: { txn: ReadTxn; model: Model; txnId: number }[] = [];
    let shape = { nodes: 0, depth: 0 };
    const ensureWriter = (): WriteTxn => {
      if (writer === null) {
        writer = db.beginWrite();
        pending = new Map(committed);
      }
      return writer;
    };
    const reader = (i: number): { txn: ReadTxn; model: Model; txnId: number } => {
      if (readers.length === 0) readers.push({ txn: db.beginRead(), model: new Map(committed), txnId: db.txnId });
      return readers[i % readers.length]!;
    };
    try {
      cmds.forEach((cmd, step) => {
        const what = `step ${step} (${cmd.t})`;
        coverage.ops[cmd.t] = (coverage.ops[cmd.t] ?? 0) + 1;
        switch (cmd.t) {
          case 'put': {
            const key = makeKey(cmd.key, pageSize);
            const value = valueOf(cmd.size.pages ? Math.floor((cmd.size.n / 1000) * pageSize) : cmd.size.n, cmd.tag);
            if (overflowPages(pageSize, key.length, value.length) > 0) coverage.overflowPuts++;
            if (key.length === maxKeySize(pageSize)) coverage.maxKeyPuts++;
            ensureWriter().put(key, value);
            pending.set(hex(key), value);
            expectGet(writer!, pending, key, what);
            break;
          }
          case 'putMany': {
            // prefix (cut so the key fits) + a 2-byte counter: a repeated burst overwrites the same keys.
            const prefix = makeKey(cmd.prefix, pageSize).subarray(0, maxKeySize(pageSize) - 2);
            const w = ensureWriter();
            for (let i = 0; i < cmd.count; i++) {
              const key = Buffer.concat([prefix, Buffer.from([i >> 8, i & 0xff])]);
              const value = valueOf(cmd.vlen, cmd.tag + i);
              if (overflowPages(pageSize, key.length, value.length) > 0) coverage.overflowPuts++;
              w.put(key, value);
              pending.set(hex(key), value);
            }
            coverage.bulkPuts += cmd.count;
            break;
          }
          case 'delRange': {
            const w = ensureWriter();
            const range = makeRange(cmd.range, pageSize);
            for (const k of modelScan(pending, range)) {
              if (!w.del(Buffer.from(k, 'hex'))) throw new Error(`${what}: del ${k} returned false, the model has it`);
              pending.delete(k);
              coverage.rangeDels++;
            }
            expectScan(w, pending, {}, what);
            break;
          }
          case 'del': {
            const key = makeKey(cmd.key, pageSize);
            const existed = ensureWriter().del(key);
            if (existed !== pending.has(hex(key))) throw new Error(`${what}: del ${hex(key)} returned ${existed}, model says ${!existed}`);
            if (!existed) coverage.missingDels++;
            pending.delete(hex(key));
            expectGet(writer!, pending, key, what);
            break;
          }
          case 'commit': {
            const before = db.txnId;
            const id = ensureWriter().commit();
            writer = null;
            committed = pending;
            if (id !== db.txnId || (id !== before && id !== before + 1)) throw new Error(`${what}: commit returned ${id}, db at ${db.txnId}, was ${before}`);
            const report = expectVerified(db, what);
            const s = db.stats();
            if (s.entries !== committed.size) throw new Error(`${what}: stats().entries ${s.entries}, model has ${committed.size}`);
            shape = noteCommit(db, shape, report, committed);
            break;
          }
          case 'abort': {
            writer?.abort();
            writer = null;
            break;
          }
          case 'reopen': {
            coverage.reopens++;
            const open0 = readers[0];
            db.close();
            if (open0) expect(() => open0.txn.get('a')).toThrow(/closed/);
            writer = null;
            readers = [];
            // Another pageSize option must not matter: the file keeps its own.
            db = open(path, { pageSize: PAGE_SIZES[(PAGE_SIZES.indexOf(pageSize as (typeof PAGE_SIZES)[number]) + 1) % 4], sync: 'none' });
            if (db.stats().pageSize !== pageSize) throw new Error(`${what}: reopened with page size ${db.stats().pageSize}`);
            const r = db.beginRead();
            expectScan(r, committed, {}, what);
            r.close();
            expectVerified(db, what);
            break;
          }
          case 'beginRead': {
            readers.push({ txn: db.beginRead(), model: new Map(committed), txnId: db.txnId });
            if (readers.length > 6) readers.shift()!.txn.close();
            break;
          }
          case 'endRead': {
            if (readers.length > 0) readers.splice(cmd.reader % readers.length, 1)[0]!.txn.close();
            break;
          }
          case 'check': {
            const rd = reader(cmd.reader);
            coverage.readerChecks++;
            const w = `${what} on the reader of txn ${rd.txnId}`;
            expectGet(rd.txn, rd.model, makeKey(cmd.probe, pageSize), w);
            expectScan(rd.txn, rd.model, {}, w);
            expectScan(rd.txn, rd.model, makeRange(cmd.range, pageSize), w);
            break;
          }
          case 'checkWriter': {
            if (writer === null) break;
            expectGet(writer, pending, makeKey(cmd.probe, pageSize), what);
            expectScan(writer, pending, {}, what);
            expectScan(writer, pending, makeRange(cmd.range, pageSize), what);
            break;
          }
        }
      });
      // The end: every live reader still sees its snapshot, the last commit is durable across reopen.
      for (const rd of readers) expectScan(rd.txn, rd.model, {}, `end, reader of txn ${rd.txnId}`);
      (writer as WriteTxn | null)?.abort();
      expectVerified(db, 'end');
      db.close();
      db = open(path, { sync: 'none' });
      const r = db.beginRead();
      expectScan(r, committed, {}, 'end after reopen');
      expectScan(r, committed, { reverse: true }, 'end after reopen');
      r.close();
      expectVerified(db, 'end after reopen');
    } finally {
      db.close();
    }
  });
}

// ---- property 2: many small changes per commit on 4 KiB pages --------------------

/** A batch of random changes around a centre, a range wipe, or both. */
interface Batch {
  puts: number;
  dels: number;
  centre: number;
  spread: number;
  wipe: [number, number] | null;
  hold: boolean;
  reopen: boolean;
}

const KEYS = 4000;

/** Key i: sortable by i, 6 to 255 bytes long depending on i, so nodes hold uneven numbers of cells. */
function bulkKey(i: number): Buffer {
  return Buffer.from(`k${String(i).padStart(5, '0')}${'x'.repeat((i * 7919) % 250)}`);
}

function rngFrom(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function runBatches(runSeed: number, batches: Batch[]): void {
  withTempDir((dir) => {
    const path = nodePath.join(dir, 'db');
    let db = open(path, { pageSize: 4096, sync: 'none' });
    const r = rngFrom(runSeed);
    const model: Model = new Map();
    const held: { txn: ReadTxn; model: Model; txnId: number }[] = [];
    let shape = { nodes: 0, depth: 0 };
    coverage.runs++;
    const commitChecked = (w: WriteTxn, what: string): void => {
      w.commit();
      shape = noteCommit(db, shape, expectVerified(db, what), model);
      const s = db.stats();
      if (s.entries !== model.size) throw new Error(`${what}: stats().entries ${s.entries}, model has ${model.size}`);
      const rd = db.beginRead();
      expectScan(rd, model, {}, what);
      for (let j = 0; j < 20; j++) expectGet(rd, model, bulkKey(Math.floor(r() * KEYS)), what);
      rd.close();
    };
    try {
      // Bulk load in random order: several tree levels.
      const w0 = db.beginWrite();
      for (let i = 0; i < KEYS; i++) {
        if (r() < 0.15) continue;
        const v = valueOf(Math.floor(r() * 300), i);
        w0.put(bulkKey(i), v);
        model.set(hex(bulkKey(i)), v);
      }
      commitChecked(w0, 'bulk load');
      if (db.stats().depth < 3) throw new Error(`bulk load built depth ${db.stats().depth}, the test needs at least 3`);
      batches.forEach((batch, n) => {
        const what = `batch ${n}`;
        coverage.commands += batch.puts + batch.dels + (batch.wipe?.[1] ?? 0);
        for (const kind of ['batch', ...(batch.wipe ? ['wipe'] : []), ...(batch.hold ? ['hold'] : []), ...(batch.reopen ? ['reopen'] : [])]) coverage.ops[kind] = (coverage.ops[kind] ?? 0) + 1;
        const w = db.beginWrite();
        const pick = (): number => (((batch.centre + Math.floor((r() - 0.5) * batch.spread)) % KEYS) + KEYS) % KEYS;
        for (let j = 0; j < batch.puts; j++) {
          const i = pick();
          const v = valueOf(r() < 0.05 ? 0 : Math.floor(r() * 300), n * 100_000 + j);
          w.put(bulkKey(i), v);
          model.set(hex(bulkKey(i)), v);
        }
        for (let j = 0; j < batch.dels; j++) {
          const k = bulkKey(pick());
          const existed = w.del(k);
          if (existed !== model.delete(hex(k))) throw new Error(`${what}: del ${hex(k)} returned ${existed}`);
          if (!existed) coverage.missingDels++;
        }
        if (batch.wipe) {
          const [a, len] = batch.wipe;
          for (let i = a; i < Math.min(KEYS, a + len); i++) {
            w.del(bulkKey(i));
            model.delete(hex(bulkKey(i)));
          }
        }
        commitChecked(w, what);
        if (batch.hold) held.push({ txn: db.beginRead(), model: new Map(model), txnId: db.txnId });
        if (batch.reopen) {
          for (const h of held.splice(0)) {
            expectScan(h.txn, h.model, {}, `${what}, reader of txn ${h.txnId}`);
            h.txn.close();
          }
          db.close();
          db = open(path, { sync: 'none' });
          coverage.reopens++;
          expectVerified(db, `${what} after reopen`);
        }
      });
      for (const h of held.splice(0)) {
        expectScan(h.txn, h.model, {}, `end, reader of txn ${h.txnId}`);
        expectScan(h.txn, h.model, { reverse: true }, `end, reader of txn ${h.txnId}`);
        h.txn.close();
      }
      // Delete everything, in two commits: the tree shrinks level by level down to empty.
      const keys = [...model.keys()];
      for (const half of [keys.slice(0, keys.length >> 1), keys.slice(keys.length >> 1)]) {
        const w = db.beginWrite();
        for (const k of half) {
          if (!w.del(Buffer.from(k, 'hex'))) throw new Error(`final delete: ${k} missing`);
          model.delete(k);
        }
        commitChecked(w, 'final delete');
      }
      const s = db.stats();
      if (s.depth !== 0 || s.entries !== 0) throw new Error(`emptied tree has depth ${s.depth} and ${s.entries} entries`);
    } finally {
      for (const h of held) h.txn.close();
      db.close();
    }
  });
}

const batchArb: fc.Arbitrary<Batch> = fc.record({
  puts: fc.nat(700),
  dels: fc.nat(700),
  centre: fc.nat(KEYS - 1),
  spread: fc.integer({ min: 20, max: KEYS }),
  wipe: fc.option(fc.tuple(fc.nat(KEYS - 1), fc.integer({ min: 50, max: 1500 })), { freq: 3 }),
  hold: fc.boolean(),
  reopen: fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

/**
 * The least each property must exercise, for any seed. Each minimum sits far
 * below what the generator yields on average (measured over 21 seeds: the
 * lowest seen is in brackets), so a seed never fails it by chance, while a
 * generator that stops producing the case (a weight set to 0, sizes that no
 * longer overflow or split) fails it at once.
 */
const MIN_COMMANDS = {
  /**
   * Every command kind at least 10 times [32]: about 1,600 commands per run of
   * 60 sequences, a kind of weight 1 in 33 averages 48 (σ ≈ 7), so 10 is over
   * 5σ below the mean.
   */
  eachKind: 10,
  /** Values written to overflow chains [85]: about 80 single puts of up to 3 pages alone (σ ≈ 9), besides bursts. */
  overflowPuts: 20,
  /** Keys of exactly the page size's maximum [11]: about 18 (Poisson), P(fewer than 3) ≈ 1e-5. */
  maxKeyPuts: 3,
  /** del of an absent key (keys come from 84 short ones, many never put) [188]: about 220. */
  missingDels: 50,
  /** Commits that split nodes [46]: bursts of up to 300 puts split at every page size. */
  splitCommits: 15,
  /** Commits that gave a tree one more level [3]: about 9 (Poisson), P(none) ≈ 1e-4. */
  depthUps: 1,
  // Merges are not asserted here: range deletes rarely empty enough of a multi-node tree
  // (0 or 1 merging commit per seed); the batch property below is the one that merges.
};
/** As MIN_COMMANDS, for the batch property (12 runs of 1 to 8 batches, about 54 batches). */
const MIN_BATCHES = {
  /** Batches [34]: at least one per run. */
  batch: 12,
  /** Batches with a range wipe [25] (2 in 3 of batches) and with a reader held [16] (1 in 2). */
  wipe: 5,
  hold: 5,
  /**
   * Batches followed by a reopen: 1 in 3, about 18, P(none) ≈ 1e-8. At 1 in 5 (about 11,
   * P(none) ≈ 2e-5 on average) seed 1393591911 drew 44 batches and no reopen.
   */
  reopen: 1,
  /** del of an absent key [4,047]: random picks among 4,000 keys of which a share is absent. */
  missingDels: 500,
  /** Commits that split nodes [23]: each run's bulk load (12), then batches of up to 700 puts. */
  splitCommits: 15,
  /** Commits that merged nodes [46]: each run's two final deletes (24), then batches of up to 700 dels and wipes. */
  mergeCommits: 28,
  /** Commits that collapsed a branch root [12]: each run's final delete takes its tree of 3+ levels to empty. */
  depthDowns: 12,
};

/** Fails naming every figure below its minimum, with the seed to replay. */
function expectCoverage(what: string, mins: Record<string, number>, kinds: readonly string[], minPerKind: number): void {
  const short: string[] = [];
  for (const k of kinds) if ((coverage.ops[k] ?? 0) < minPerKind) short.push(`${k} commands: ${coverage.ops[k] ?? 0} < ${minPerKind}`);
  for (const [k, min] of Object.entries(mins)) {
    const got = k in coverage ? (coverage as unknown as Record<string, number>)[k]! : (coverage.ops[k] ?? 0);
    if (got < min) short.push(`${k}: ${got} < ${min}`);
  }
  expect(short, `${what} fell short of its minimum coverage (NORTHSTAR_SEED=${seed})`).toEqual([]);
}

function resetCoverage(): void {
  for (const k of Object.keys(coverage) as (keyof typeof coverage)[]) {
    if (k === 'ops') coverage.ops = {};
    else coverage[k] = 0;
  }
}

describe('the database against a sorted-map model', () => {
  it('random puts, dels, commits, aborts, reopens and snapshot checks agree with the model at every page size', () => {
    resetCoverage();
    fc.assert(
      fc.property(fc.constantFrom(...PAGE_SIZES), fc.array(cmdArb, { minLength: 1, maxLength: 60, size: 'max' }), (pageSize, cmds) => {
        runCommands(pageSize, cmds);
      }),
      { seed, numRuns: 60 },
    );
    console.log(`command sequences exercised: ${JSON.stringify(coverage)}`);
    const { eachKind, ...mins } = MIN_COMMANDS;
    expectCoverage('the command sequences', mins, CMD_KINDS, eachKind);
  }, 300_000);

  it('thousands of small puts and dels per commit on 4 KiB pages (splits, merges, redistribution over 3+ levels) agree with the model', () => {
    resetCoverage();
    fc.assert(
      fc.property(fc.nat(2 ** 31 - 1), fc.array(batchArb, { minLength: 1, maxLength: 8, size: 'max' }), (runSeed, batches) => {
        runBatches(runSeed, batches);
      }),
      { seed, numRuns: 12 },
    );
    console.log(`batches exercised: ${JSON.stringify(coverage)}`);
    expectCoverage('the batches', MIN_BATCHES, [], 0);
  }, 300_000);
});
