// Hardening §5: fuzzing of every decoder that reads bytes from disk (issue 5).
//
// A corpus of valid pages (meta, branch, leaf, overflow, freelist, history at
// 4 KiB and 16 KiB) and log records (commit, checkpoint, and
// commits with a pages section) comes from real databases written by this code. fast-check mutates them: bit flips,
// byte writes, length and count fields pushed to interesting values (0, ±1
// around the page size, 0xFFFF, 2^31, 2^32 − 1, …), truncation and extension;
// optionally the page or record is resealed afterwards, so the mutation gets
// past the checksums to the checks behind them. Each case runs on every
// implementation present (fallback always, native when the addon is loaded)
// and the outcomes must agree exactly (differential). Properties:
//
// - page:   pageVerify returns a status 0…7 (RangeError only for a length
//           that is not a page size); an unsealed change of ≤ 3 bits fails.
// - node:   nodeDecode, leafSearch/branchSearch, leafInsert/branchInsert,
//           nodeRemove, nodeCompact, nodeSplit, nodeMerge return or throw
//           TypeError/RangeError (spec §4.4), never write outside their
//           buffers (guard bytes around each view), and decoded cells lie
//           inside the page.
// - meta:   decodeMeta never throws; an accepted meta satisfies spec §3 rule 2.
// - record: recordVerify never throws and returns a length inside the buffer
//           or a status −1…−8; recordDecode throws RangeError exactly when
//           the record is not a valid commit record; decodeRecord throws only
//           NorthstarError and its ops lie inside the record, before the
//           pages section when there is one; scanRecords ends with an 'end'
//           entry.
// - reader: open, get, a full scan and verify() of a database with one mutated,
//           resealed node (a stale or crafted page the checksums cannot
//           catch) throw only NorthstarError.
// - no case takes longer than HANG_MS; memory is sampled for the report.
//
// The corpus is also written to hard/fuzz/corpus/<target>/ for the cargo-fuzz
// targets of crates/northstar-native/fuzz (writeCorpus, scripts/fuzz-corpus.mjs).

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { open } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { readU16, readU32, writeU16, writeU32 } from '../format/bytes.js';
import {
  BRANCH_CELL_CHILD,
  BRANCH_CELL_CHILD_TXN,
  BRANCH_CELL_HEADER,
  BRANCH_CELL_KLEN,
  HEADER_SIZE,
  LEAF_CELL_KLEN,
  LEAF_CELL_VLEN,
  LOG_HEADER_SIZE,
  META_CRC_OFFSET,
  META_DEPTH_OFFSET,
  META_FREELIST_OFFSET,
  META_HISTORY_OFFSET,
  META_LOG_TAIL_OFFSET,
  META_PAGE_COUNT_OFFSET,
  META_PAGE_SIZE_OFFSET,
  META_ROOT_OFFSET,
  META_TXN_ID_OFFSET,
  META_VERSION_OFFSET,
  NODE_CELL_START_OFFSET,
  NODE_COUNT_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_LINK_OFFSET,
  NODE_LINK_TXN_OFFSET,
  NODE_SLOTS_OFFSET,
  PAGE_ID_OFFSET,
  PAYLOAD_LENGTH_OFFSET,
  PageType,
  TYPE_OFFSET,
  VERSION_OFFSET,
  FREELIST_COUNT_OFFSET,
  HISTORY_COUNT_OFFSET,
  OVERFLOW_NEXT_OFFSET,
} from '../format/constants.js';
import { initNode, pageTypeOf } from '../format/page.js';
import { FaultyFileSystem } from '../io/faulty.js';
import {
  COMMIT_OP_COUNT_OFFSET,
  COMMIT_OPS_OFFSET,
  OP_KEY_LENGTH_OFFSET,
  OP_KEY_OFFSET,
  OP_VALUE_LENGTH_OFFSET,
  PAGES_FREED_COUNT_OFFSET,
  PAGES_FREED_YOUNG_COUNT_OFFSET,
  PAGES_MAGIC_OFFSET,
  PAGES_PAGE_COUNT_OFFSET,
  PAGES_TAIL_SIZE,
  PAGES_WRITTEN_COUNT_OFFSET,
  RECORD_FLAG_PAGES,
  RECORD_HEADER_LENGTH_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_PAYLOAD_LENGTH_OFFSET,
  RECORD_FLAGS_OFFSET,
  RECORD_TYPE_OFFSET,
  RECORD_VERSION_OFFSET,
  RecordType,
  TRAILER_SIZE,
  MAX_RECORD_KEY_SIZE,
  MAX_RECORD_VALUE_SIZE,
} from '../format/record.js';
import { RecordBuilder, buildCheckpointRecord, decodeRecord, scanRecords } from '../log/record.js';
import { fallbackKernels, nativeKernels, type Kernels } from '../native/kernels.js';
import { decodeMeta } from '../pager/meta.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { repoRoot } from '../testing/rng.js';

/** A case slower than this is a hang. */
const HANG_MS = 2000;

// ---- corpus ------------------------------------------------------------------------

export interface CorpusPage {
  bytes: Uint8Array;
  id: number;
  type: number;
}

export interface Corpus {
  pages: CorpusPage[];
  /** Pages by type. */
  byType: Map<number, CorpusPage[]>;
  records: Uint8Array[];
  /** A whole database (4 KiB pages), closed cleanly, that the reader target damages. */
  db: { file: Uint8Array; log: Uint8Array; path: string; pageSize: number; root: number; keys: Uint8Array[] };
}

/** Writes a small database in memory and returns its file and log bytes. */
function makeDatabase(pageSize: number, seed: number, commits: number): { file: Uint8Array; log: Uint8Array; path: string; keys: Uint8Array[] } {
  const files = new FaultyFileSystem();
  const path = `/fuzz-corpus/db-${pageSize}`;
  const db = open(path, { pageSize, sync: 'none', fileSystem: files, checkpoint: { commits: 7 } });
  let x = seed >>> 0 || 1;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const keys: Uint8Array[] = [];
  for (let c = 0; c < commits; c++) {
    const w = db.beginWrite();
    const n = c === 0 ? Math.floor(pageSize / 12) : 1 + (next() % 20);
    for (let i = 0; i < n; i++) {
      const key = Buffer.from(`k${String(next() % 2000).padStart(5, '0')}${'-'.repeat(next() % 9)}`);
      if (c > 0 && next() % 4 === 0) w.del(key);
      else {
        const big = next() % 40 === 0;
        w.put(key, Buffer.alloc(big ? pageSize + (next() % pageSize) : next() % 120, next() & 0xff));
        keys.push(key);
      }
    }
    w.commit();
  }
  db.close();
  return { file: files.bytes(path), log: files.bytes(`${path}.log`), path, keys };
}

/** The corpus of valid pages and records (deterministic for a seed up to database ids). */
export function buildCorpus(seed = 1): Corpus {
  const pages: CorpusPage[] = [];
  const byType = new Map<number, CorpusPage[]>();
  const records: Uint8Array[] = [];
  let small: Corpus['db'] | null = null;
  for (const pageSize of [4096, 16384]) {
    const { file, log, path, keys } = makeDatabase(pageSize, seed + pageSize, pageSize === 4096 ? 40 : 15);
    const perType = new Map<number, number>();
    for (let id = 0; id * pageSize < file.length; id++) {
      const bytes = file.slice(id * pageSize, (id + 1) * pageSize);
      const type = pageTypeOf(bytes);
      if (fallbackKernels.pageVerify(bytes, id) !== 0) continue; // never-written space
      const n = perType.get(type) ?? 0;
      if (n >= 12) continue;
      perType.set(type, n + 1);
      const p = { bytes, id, type };
      pages.push(p);
      if (!byType.has(type)) byType.set(type, []);
      byType.get(type)!.push(p);
    }
    for (const e of scanRecords(log.subarray(LOG_HEADER_SIZE), fallbackKernels)) {
      if (e.kind !== 'record' || records.length >= 40) continue;
      if (e.record.length <= 6000) records.push(log.slice(LOG_HEADER_SIZE + e.position, LOG_HEADER_SIZE + e.position + e.record.length));
    }
    if (pageSize === 4096) {
      const meta = decodeMeta(file.slice(0, pageSize), 0, file.length, fallbackKernels);
      const meta1 = decodeMeta(file.slice(pageSize, 2 * pageSize), 1, file.length, fallbackKernels);
      const m = [meta, meta1].flatMap((r) => (r.ok ? [r.meta] : [])).reduce((a, b) => (b.txnId > a.txnId ? b : a));
      small = { file, log, path, pageSize, root: m.root, keys };
    }
  }
  records.push(buildCheckpointRecord({ txnId: 9, rootPageId: 3, pageCount: 40, replayFrom: 4000 }, 3900, fallbackKernels));
  records.push(...pagesRecords());
  for (const t of [PageType.Meta, PageType.Branch, PageType.Leaf, PageType.Overflow, PageType.Freelist, PageType.History]) {
    if (!byType.get(t)?.length) throw new Error(`fuzz corpus: no page of type ${t}`);
  }
  return { pages, byType, records, db: small! };
}

/** Commit records with a pages section (spec/commit_record_v0.md §3.5): with ops and ids, and with neither. */
function pagesRecords(): Uint8Array[] {
  const b = new RecordBuilder({ initialCapacity: 256 });
  b.reset(12);
  b.put(Buffer.from('k00042'), Buffer.from('value with a pages section after it'));
  b.del(Buffer.from('k00007'));
  const full = b.seal(4300, 17, fallbackKernels, 0, { pageCount: 40, entryCount: 321, depth: 2, written: [17, 18, 39], freed: [5, 6], freedYoung: [30] }).slice();
  b.reset(13);
  const empty = b.seal(4300 + full.length, 0, fallbackKernels, 1, { pageCount: 40, entryCount: 0, depth: 0, written: [], freed: [17], freedYoung: [] }).slice();
  return [full, empty];
}

/** Writes the seed corpus of the cargo-fuzz targets (see crates/northstar-native/fuzz/fuzz_targets). */
export function writeCorpus(dir = nodePath.join(repoRoot, 'hard', 'fuzz', 'corpus'), seed = 1): Record<string, number> {
  const c = buildCorpus(seed);
  const counts: Record<string, number> = {};
  const put = (target: string, name: string, bytes: Uint8Array): void => {
    const d = nodePath.join(dir, target);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(nodePath.join(d, name), bytes);
    counts[target] = (counts[target] ?? 0) + 1;
  };
  for (const target of ['page_verify', 'node', 'record']) fs.rmSync(nodePath.join(dir, target), { recursive: true, force: true });
  const sizeClass = (n: number): number => Math.log2(n / 4096);
  for (const [type, list] of c.byType) {
    // One page of each type and size: the targets' inputs stay a few KiB.
    const picks = [4096, 16384].flatMap((size) => list.filter((p) => p.bytes.length === size).slice(0, 1));
    for (const p of picks) {
      // page_verify: control byte (size class; bit 2 reseal), then the page.
      put('page_verify', `type${type}-${p.bytes.length}-${p.id}`, Buffer.concat([Buffer.from([sizeClass(p.bytes.length)]), p.bytes]));
      if ((type === PageType.Branch || type === PageType.Leaf) && p.bytes.length === 4096) {
        // node: control (size class, operation in bits 2–4), a u16 argument, the node, a key.
        for (let op = 0; op < 8; op++) {
          const key = c.db.keys[(op * 7 + p.id) % c.db.keys.length]!;
          put('node', `op${op}-type${type}-${p.bytes.length}-${p.id}`, Buffer.concat([Buffer.from([sizeClass(p.bytes.length) | (op << 2), op, 0]), p.bytes, key]));
        }
      }
    }
  }
  const hasPages = (r: Uint8Array): boolean => (readU16(r, RECORD_FLAGS_OFFSET) & RECORD_FLAG_PAGES) !== 0;
  const picked = c.records.filter((r) => r.length <= 2048).slice(0, 16);
  picked.push(...c.records.filter((r) => hasPages(r) && !picked.includes(r)).slice(0, 2));
  picked.forEach((r, i) => {
    // record: control (bit 0 reseal, bits 1–3 offset), then the record.
    put('record', `record${i}-type${readU16(r, RECORD_TYPE_OFFSET)}${hasPages(r) ? '-pages' : ''}`, Buffer.concat([Buffer.from([0]), r]));
  });
  return counts;
}

// ---- mutations ---------------------------------------------------------------------

/** An edit of a buffer: kinds are chosen so length and count fields get out-of-range values often. */
type Edit =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'byte'; pos: number; value: number }
  | { kind: 'field'; field: number; value: number }
  | { kind: 'cut'; to: number }
  | { kind: 'extend'; by: number; fill: number };

const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1001, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('byte' as const), pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('field' as const),
      field: fc.nat(),
      value: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: -64, max: 64 }), fc.nat({ max: 0xffffffff })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), to: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), by: fc.integer({ min: 1, max: 64 }), fill: fc.integer({ min: 0, max: 255 }) }) },
);

/** A field of a buffer: offset and width in bytes (2 or 4; 8-byte ids get their low word). */
type Field = [offset: number, width: 2 | 4];

/** The length, count and offset fields of a page, including those of its node cells. */
function pageFields(p: Uint8Array): Field[] {
  const out: Field[] = [
    [PAYLOAD_LENGTH_OFFSET, 4],
    [VERSION_OFFSET, 2],
    [TYPE_OFFSET, 2],
    [PAGE_ID_OFFSET, 4],
  ];
  const t = pageTypeOf(p);
  if (t === PageType.Leaf || t === PageType.Branch) {
    out.push([NODE_COUNT_OFFSET, 2], [NODE_DEAD_OFFSET, 2], [NODE_CELL_START_OFFSET, 4], [NODE_LINK_OFFSET, 4], [NODE_LINK_TXN_OFFSET, 4]);
    const count = Math.min(readU16(p, NODE_COUNT_OFFSET), 64);
    for (let i = 0; i < count; i++) {
      const s = NODE_SLOTS_OFFSET + 2 * i;
      if (s + 2 > p.length) break;
      out.push([s, 2]);
      const o = readU16(p, s);
      if (o + BRANCH_CELL_HEADER > p.length) continue;
      if (t === PageType.Leaf) out.push([o + LEAF_CELL_KLEN, 2], [o + LEAF_CELL_VLEN, 4]);
      else out.push([o + BRANCH_CELL_CHILD, 4], [o + BRANCH_CELL_CHILD_TXN, 4], [o + BRANCH_CELL_KLEN, 2]);
    }
  } else if (t === PageType.Meta) {
    for (const o of [META_PAGE_SIZE_OFFSET, META_TXN_ID_OFFSET, META_ROOT_OFFSET, META_FREELIST_OFFSET, META_LOG_TAIL_OFFSET, META_PAGE_COUNT_OFFSET, META_DEPTH_OFFSET, META_HISTORY_OFFSET]) {
      out.push([o, 4], [o + 4, 4]);
    }
    out.push([META_VERSION_OFFSET, 2]);
  } else if (t === PageType.Freelist) out.push([FREELIST_COUNT_OFFSET, 4], [HEADER_SIZE, 4]);
  else if (t === PageType.History) out.push([HISTORY_COUNT_OFFSET, 4], [HEADER_SIZE, 4]);
  else if (t === PageType.Overflow) out.push([OVERFLOW_NEXT_OFFSET, 4]);
  return out;
}

/** The length and count fields of a record at `o`, including those of its first ops. */
function recordFields(b: Uint8Array, o: number): Field[] {
  const out: Field[] = [
    [o + RECORD_PAYLOAD_LENGTH_OFFSET, 4],
    [o + RECORD_HEADER_LENGTH_OFFSET, 2],
    [o + RECORD_TYPE_OFFSET, 2],
    [o + RECORD_VERSION_OFFSET, 2],
    [o + RECORD_FLAGS_OFFSET, 2],
  ];
  if (b.length < o + RECORD_HEADER_SIZE) return out;
  const len = readU32(b, o + RECORD_PAYLOAD_LENGTH_OFFSET);
  const end = o + RECORD_HEADER_SIZE + len;
  if (end + TRAILER_SIZE <= b.length) out.push([end + 4, 4]);
  // The pages-section tail (spec §3.5) sits just before the trailer.
  const t = end - PAGES_TAIL_SIZE;
  if ((readU16(b, o + RECORD_FLAGS_OFFSET) & RECORD_FLAG_PAGES) !== 0 && t >= o + RECORD_HEADER_SIZE && end <= b.length) {
    out.push(
      [t + PAGES_WRITTEN_COUNT_OFFSET, 4],
      [t + PAGES_FREED_COUNT_OFFSET, 4],
      [t + PAGES_FREED_YOUNG_COUNT_OFFSET, 4],
      [t + PAGES_PAGE_COUNT_OFFSET + 4, 4],
      [t + PAGES_MAGIC_OFFSET, 4],
      [t - 4, 4], // the high word of the last id
    );
  }
  const p = o + RECORD_HEADER_SIZE;
  if (readU16(b, o + RECORD_TYPE_OFFSET) !== RecordType.Commit || p + COMMIT_OPS_OFFSET > b.length) return out;
  out.push([p + COMMIT_OP_COUNT_OFFSET, 4]);
  let i = p + COMMIT_OPS_OFFSET;
  for (let n = 0; n < 16 && i + OP_KEY_OFFSET <= Math.min(end, b.length); n++) {
    out.push([i + OP_KEY_LENGTH_OFFSET, 2], [i + OP_VALUE_LENGTH_OFFSET, 4], [i, 2]);
    i += OP_KEY_OFFSET + readU16(b, i + OP_KEY_LENGTH_OFFSET) + readU32(b, i + OP_VALUE_LENGTH_OFFSET);
  }
  return out;
}

/** Applies edits to a copy of `src`; `fields` lists the fields of the (current) bytes. */
function mutate(src: Uint8Array, edits: readonly Edit[], fields: (b: Uint8Array) => Field[]): Uint8Array {
  let b = src.slice();
  for (const e of edits) {
    if (b.length === 0) break;
    switch (e.kind) {
      case 'flip':
        b[e.pos % b.length]! ^= 1 << e.bit;
        break;
      case 'byte':
        b[e.pos % b.length] = e.value;
        break;
      case 'field': {
        const fs = fields(b);
        if (fs.length === 0) break;
        const [o, w] = fs[e.field % fs.length]!;
        if (o + w > b.length) break;
        const cur = w === 2 ? readU16(b, o) : readU32(b, o);
        // Small values are offsets from the current value (±1 around a real length).
        const v = Math.abs(e.value) <= 64 ? cur + e.value : e.value;
        if (w === 2) writeU16(b, o, v & 0xffff);
        else writeU32(b, o, v >>> 0);
        break;
      }
      case 'cut':
        b = b.slice(0, e.to % b.length);
        break;
      case 'extend': {
        const g = new Uint8Array(b.length + e.by).fill(e.fill);
        g.set(b);
        b = g;
        break;
      }
    }
  }
  return b;
}

/** Number of bits in which two equal-length buffers differ. */
function bitDistance(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!;
    while (x !== 0) {
      x &= x - 1;
      n++;
    }
  }
  return n;
}

// ---- outcomes ------------------------------------------------------------------------

/** What a call did: its value, or the class of what it threw. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: string; message: string };

function outcome(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() };
  } catch (err) {
    const error = err instanceof NorthstarError ? `NorthstarError:${err.code}` : err instanceof Error ? err.constructor.name : typeof err;
    return { ok: false, error, message: err instanceof Error ? err.message : String(err) };
  }
}

const kernelError = (o: Outcome): boolean => !o.ok && (o.error === 'RangeError' || o.error === 'TypeError');
const same = (a: Outcome, b: Outcome): boolean => (a.ok && b.ok ? JSON.stringify(a.value) === JSON.stringify(b.value) : !a.ok && !b.ok && a.error === b.error);

/** A copy of `bytes` inside a larger buffer with guard bytes on both sides. */
function guarded(bytes: Uint8Array): { view: Uint8Array; intact: () => boolean } {
  const pad = 32;
  const all = new Uint8Array(bytes.length + 2 * pad).fill(0xa5);
  all.set(bytes, pad);
  const view = all.subarray(pad, pad + bytes.length);
  const intact = (): boolean => {
    for (let i = 0; i < pad; i++) if (all[i] !== 0xa5 || all[pad + bytes.length + i] !== 0xa5) return false;
    return true;
  };
  return { view, intact };
}

// ---- targets -------------------------------------------------------------------------

interface Ctx {
  corpus: Corpus;
  impls: Array<[string, Kernels]>;
  f: Record<string, number>;
}

/** A failed property: thrown inside a fast-check predicate so it shrinks and reports the case. */
class Violation extends Error {}
function must(cond: boolean, what: string): void {
  if (!cond) throw new Violation(what);
}

const pageCase = fc.record({ i: fc.nat(), edits: fc.array(editArb, { minLength: 1, maxLength: 4 }), reseal: fc.boolean(), wrongId: fc.boolean() });
type PageCase = typeof pageCase extends fc.Arbitrary<infer T> ? T : never;

function pageTarget(ctx: Ctx, c: PageCase): void {
  const orig = ctx.corpus.pages[c.i % ctx.corpus.pages.length]!;
  const page = mutate(orig.bytes, c.edits, pageFields);
  const sized = page.length === orig.bytes.length;
  if (c.reseal && sized) fallbackKernels.pageSeal(page);
  const id = c.wrongId ? orig.id + 1 : orig.id;
  const outs = ctx.impls.map(([, k]) => outcome(() => k.pageVerify(page, id)));
  ctx.f.kernelCalls! += outs.length;
  for (const o of outs) {
    if ([4096, 8192, 16384, 32768].includes(page.length)) must(o.ok && Number.isInteger(o.value) && (o.value as number) >= 0 && (o.value as number) <= 7, `pageVerify: ${JSON.stringify(o)}`);
    else must(!o.ok && o.error === 'RangeError', `pageVerify of ${page.length} bytes: ${JSON.stringify(o)}`);
  }
  must(outs.every((o) => same(o, outs[0]!)), `pageVerify implementations disagree: ${JSON.stringify(outs)}`);
  const first = outs[0]!;
  if (sized && !c.reseal && first.ok) {
    const d = bitDistance(page, orig.bytes);
    if (d === 0 && !c.wrongId) must(first.value === 0, 'an unchanged page fails');
    if (d > 0 && d <= 3) {
      must(first.value !== 0, `a change of ${d} bits went undetected`);
      ctx.f.pageChangesDetected!++;
    }
  }
}

const NODE_OPS = ['decode', 'search', 'leafInsert', 'branchInsert', 'remove', 'compact', 'split', 'merge'] as const;
const nodeCase = fc.record({
  i: fc.nat(),
  edits: fc.array(editArb, { minLength: 0, maxLength: 4 }),
  op: fc.constantFrom(...NODE_OPS),
  arg: fc.integer({ min: -2, max: 600 }),
  key: fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.nat().map((n) => n)),
});
type NodeCase = typeof nodeCase extends fc.Arbitrary<infer T> ? T : never;

/** Decodes a node with `k` and checks every cell lies inside it; returns the outcome. */
function decodeChecked(k: Kernels, page: Uint8Array): Outcome {
  return outcome(() => {
    const count = page.length >= NODE_SLOTS_OFFSET ? readU16(page, NODE_COUNT_OFFSET) : 0;
    const out = new Uint32Array(Math.max(4, count * 4));
    const n = k.nodeDecode(page, out);
    for (let j = 0; j < n; j++) {
      const end = out[j * 4]! + out[j * 4 + 1]!;
      if (end > page.length) throw new Violation(`nodeDecode: cell ${j} key ends at ${end}, past ${page.length}`);
      if (page[TYPE_OFFSET] === PageType.Leaf) {
        const vlen = out[j * 4 + 3]! >= 0x80000000 ? 8 : out[j * 4 + 3]!;
        if (out[j * 4 + 2]! + vlen > page.length) throw new Violation(`nodeDecode: cell ${j} value runs past the page`);
      }
    }
    return Array.from(out.subarray(0, n * 4));
  });
}

function nodeTarget(ctx: Ctx, c: NodeCase): void {
  const nodes = [...(ctx.corpus.byType.get(PageType.Leaf) ?? []), ...(ctx.corpus.byType.get(PageType.Branch) ?? [])];
  const orig = nodes[c.i % nodes.length]!;
  const page = mutate(orig.bytes, c.edits, pageFields);
  const key = typeof c.key === 'number' ? ctx.corpus.db.keys[c.key % ctx.corpus.db.keys.length]! : c.key;
  const sameType = (ctx.corpus.byType.get(orig.type) ?? []).filter((p) => p.bytes.length === orig.bytes.length);
  const partner = sameType[(c.i >>> 3) % sameType.length]!.bytes;
  const results = ctx.impls.map(([, k]) => {
    const g = guarded(page);
    const empty = new Uint8Array(page.length >= 4096 && (page.length & (page.length - 1)) === 0 ? page.length : 4096);
    initNode(empty, orig.type === PageType.Leaf ? PageType.Leaf : PageType.Branch, 77);
    const other = guarded(c.arg % 2 === 0 ? empty : partner);
    const arg = c.arg;
    const o = outcome(() => {
      switch (c.op) {
        case 'decode':
          return null;
        case 'search':
          return [outcome(() => k.leafSearch(g.view, key)), outcome(() => k.branchSearch(g.view, key))];
        case 'leafInsert': {
          const inline = arg % 3 === 0 ? new Uint8Array(8).fill(9) : Uint8Array.from(key).reverse();
          return k.leafInsert(g.view, arg, key, inline, arg % 3 === 0 ? 0x80000000 | (arg * 997) : inline.length);
        }
        case 'branchInsert':
          return k.branchInsert(g.view, arg, key, arg * 3 + 2, arg);
        case 'remove':
          k.nodeRemove(g.view, arg);
          return null;
        case 'compact':
          k.nodeCompact(g.view);
          return null;
        case 'split':
          return k.nodeSplit(g.view, other.view, arg);
        case 'merge':
          return arg % 4 < 2 ? k.nodeMerge(g.view, other.view) : k.nodeMerge(other.view, g.view);
      }
    });
    return { o, after: g.view.slice(), otherAfter: other.view.slice(), decoded: decodeChecked(k, g.view), intact: g.intact() && other.intact() };
  });
  ctx.f.kernelCalls! += results.length * 2;
  for (const r of results) {
    must(r.intact, `${c.op} wrote outside its buffers`);
    must(r.o.ok || kernelError(r.o), `${c.op} threw ${JSON.stringify(r.o)}`);
    must(r.decoded.ok || kernelError(r.decoded), `nodeDecode after ${c.op}: ${JSON.stringify(r.decoded)}`);
    if (!r.o.ok) ctx.f.nodeRangeErrors!++;
  }
  const a = results[0]!;
  for (const r of results.slice(1)) {
    must(same(r.o, a.o), `${c.op}: implementations disagree: ${JSON.stringify(a.o)} vs ${JSON.stringify(r.o)}`);
    must(same(r.decoded, a.decoded), `nodeDecode after ${c.op}: implementations disagree`);
    if (a.o.ok) must(Buffer.from(r.after).equals(a.after) && Buffer.from(r.otherAfter).equals(a.otherAfter), `${c.op}: implementations left different bytes`);
  }
}

const metaCase = fc.record({
  i: fc.nat(),
  edits: fc.array(editArb, { minLength: 1, maxLength: 4 }),
  reseal: fc.constantFrom('none', 'page', 'meta+page'),
  fileSize: fc.oneof(fc.constant(-1), fc.nat({ max: 1 << 24 })),
});
type MetaCase = typeof metaCase extends fc.Arbitrary<infer T> ? T : never;

function metaTarget(ctx: Ctx, c: MetaCase): void {
  const metas = ctx.corpus.byType.get(PageType.Meta)!;
  const orig = metas[c.i % metas.length]!;
  let page = mutate(orig.bytes, c.edits.filter((e) => e.kind !== 'cut' && e.kind !== 'extend'), pageFields);
  if (page.length !== orig.bytes.length) page = orig.bytes.slice();
  if (c.reseal === 'meta+page') writeU32(page, META_CRC_OFFSET, fallbackKernels.crc32c(page.subarray(HEADER_SIZE, META_CRC_OFFSET)));
  if (c.reseal !== 'none') fallbackKernels.pageSeal(page);
  const pageCount = readU32(orig.bytes, META_PAGE_COUNT_OFFSET);
  const fileSize = c.fileSize === -1 ? pageCount * page.length : c.fileSize;
  const outs = ctx.impls.map(([, k]) => outcome(() => decodeMeta(page, orig.id, fileSize, k)));
  ctx.f.kernelCalls! += outs.length;
  for (const o of outs) {
    must(o.ok, `decodeMeta threw ${JSON.stringify(o)}`);
    const r = (o as { value: ReturnType<typeof decodeMeta> }).value;
    if (r.ok) {
      const m = r.meta;
      ctx.f.metasAccepted!++;
      for (const v of Object.values(m)) must(Number.isSafeInteger(v) && v >= 0, `decodeMeta accepted a field ${v}`);
      must(m.pageSize === page.length && m.pageCount * m.pageSize <= fileSize && m.root < m.pageCount && m.freelist < m.pageCount && m.history < m.pageCount, `decodeMeta accepted ${JSON.stringify(m)} for a file of ${fileSize} bytes`);
    }
  }
  must(outs.every((o) => same(o, outs[0]!)), `decodeMeta implementations disagree: ${JSON.stringify(outs)}`);
}

const recordCase = fc.record({
  i: fc.nat(),
  edits: fc.array(editArb, { minLength: 0, maxLength: 4 }),
  reseal: fc.boolean(),
  offset: fc.integer({ min: 0, max: 9 }),
  tail: fc.integer({ min: 0, max: 3 }),
});
type RecordCase = typeof recordCase extends fc.Arbitrary<infer T> ? T : never;

function recordTarget(ctx: Ctx, c: RecordCase): void {
  const recs = ctx.corpus.records;
  const orig = recs[c.i % recs.length]!;
  const rec = mutate(orig, c.edits, (b) => recordFields(b, 0));
  // The record at an offset (odd offsets give unaligned views), maybe followed by another record.
  const after = c.tail === 1 ? recs[(c.i + 1) % recs.length]! : c.tail === 2 ? new Uint8Array(7).fill(0xee) : new Uint8Array(0);
  const buf = new Uint8Array(c.offset + rec.length + after.length);
  buf.fill(0x5c, 0, c.offset);
  buf.set(rec, c.offset);
  buf.set(after, c.offset + rec.length);
  if (c.reseal) {
    const s = outcome(() => fallbackKernels.recordSeal(buf, c.offset));
    must(s.ok || s.error === 'RangeError', `recordSeal threw ${JSON.stringify(s)}`);
  }
  const view = c.tail === 3 ? buf.subarray(1) : buf;
  const off = c.tail === 3 ? Math.max(0, c.offset - 1) : c.offset;
  const results = ctx.impls.map(([, k]) => {
    const verify = outcome(() => k.recordVerify(view, off));
    const out = new Uint32Array(4 * (Math.floor(view.length / 9) + 1));
    const decode = outcome(() => {
      const n = k.recordDecode(view, off, out);
      return Array.from(out.subarray(0, 4 * n));
    });
    const high = outcome(() => {
      const r = decodeRecord(view, off, k);
      if (r.type === RecordType.Commit) {
        for (const op of r.ops) {
          if (op.key.length < 1 || op.key.length > MAX_RECORD_KEY_SIZE || op.value.length > MAX_RECORD_VALUE_SIZE) throw new Violation('decodeRecord: op limits');
          if (op.key.buffer !== view.buffer || op.key.byteOffset < view.byteOffset + off || op.value.byteOffset + op.value.length > view.byteOffset + off + r.length) {
            throw new Violation('decodeRecord: an op lies outside its record');
          }
        }
        // Ops end where the pages section starts.
        const opsEnd = view.byteOffset + off + r.length - TRAILER_SIZE - (r.pages ? PAGES_TAIL_SIZE + 8 * (r.pages.written.length + r.pages.freed.length + r.pages.freedYoung.length) : 0);
        const last = r.ops.at(-1);
        if (last && last.value.byteOffset + last.value.length > opsEnd) throw new Violation('decodeRecord: an op reaches into the pages section');
        const pages = r.pages && [r.pages.pageCount, r.pages.entryCount, r.pages.depth, r.pages.written.length, r.pages.freed.length, r.pages.freedYoung.length];
        return { type: r.type, length: r.length, txnId: r.txnId, ops: r.ops.length, pages };
      }
      return { type: r.type, length: r.length, txnId: r.txnId };
    });
    const scan = outcome(() => {
      const entries = [...scanRecords(view.subarray(off), k)];
      if (entries.at(-1)?.kind !== 'end') throw new Violation('scanRecords did not end with an end entry');
      return entries.map((e) => (e.kind === 'end' ? `end@${e.position}:${e.status}` : `rec@${e.position}`));
    });
    return { verify, decode, high, scan };
  });
  ctx.f.kernelCalls! += results.length * 4;
  for (const r of results) {
    must(r.verify.ok, `recordVerify threw ${JSON.stringify(r.verify)}`);
    const v = (r.verify as { value: number }).value;
    must(Number.isInteger(v) && v !== 0 && v >= -8 && off + v <= view.length, `recordVerify returned ${v}`);
    const commit = v > 0 && readU16(view, off + RECORD_TYPE_OFFSET) === RecordType.Commit;
    must(commit ? r.decode.ok : !r.decode.ok && r.decode.error === 'RangeError', `recordDecode (verify ${v}, commit ${commit}): ${JSON.stringify(r.decode)}`);
    must(r.high.ok || r.high.error.startsWith('NorthstarError:'), `decodeRecord threw ${JSON.stringify(r.high)}`);
    must(r.high.ok === v > 0, 'decodeRecord and recordVerify disagree');
    must(r.scan.ok, `scanRecords threw ${JSON.stringify(r.scan)}`);
    if (v > 0) ctx.f.recordsAccepted!++;
  }
  const a = results[0]!;
  for (const r of results.slice(1)) {
    for (const key of ['verify', 'decode', 'high', 'scan'] as const) must(same(r[key], a[key]), `${key}: implementations disagree: ${JSON.stringify(a[key])} vs ${JSON.stringify(r[key])}`);
  }
}

const readerCase = fc.record({ target: fc.nat(), edits: fc.array(editArb, { minLength: 1, maxLength: 3 }), keys: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), reverse: fc.boolean() });
type ReaderCase = typeof readerCase extends fc.Arbitrary<infer T> ? T : never;

/**
 * Reads through the public API of a database in which one tree node was
 * mutated and resealed (a stale or crafted page the checksums cannot catch):
 * only NorthstarError may escape. Uses the process's kernels (NORTHSTAR_NATIVE).
 */
function readerTarget(ctx: Ctx, c: ReaderCase): void {
  const { file, log, path, pageSize, root, keys } = ctx.corpus.db;
  const nodes = treeNodes(file, pageSize, root);
  const victim = nodes[c.target % nodes.length]!;
  const mutated = mutate(file.slice(victim * pageSize, (victim + 1) * pageSize), c.edits.filter((e) => e.kind !== 'cut' && e.kind !== 'extend'), pageFields);
  fallbackKernels.pageSeal(mutated);
  const image = file.slice();
  image.set(mutated, victim * pageSize);
  const files = new FaultyFileSystem();
  files.setBytes(path, image);
  files.setBytes(`${path}.log`, log);
  const check = (what: string, f: () => unknown): void => {
    const o = outcome(f);
    ctx.f.readerReads!++;
    if (o.ok) return;
    if (o.error.startsWith('NorthstarError:')) ctx.f.readerCorrupt!++;
    else {
      ctx.f.readerOtherErrors!++;
      throw new Violation(`${what} through mutated node ${victim} threw ${o.error}: ${o.message}`);
    }
  };
  let db: ReturnType<typeof open> | null = null;
  check('open', () => (db = open(path, { fileSystem: files, sync: 'none' })));
  if (db === null) return;
  const d = db as ReturnType<typeof open>;
  try {
    const txn = d.beginRead();
    for (const n of c.keys) check('get', () => txn.get(keys[n % keys.length]!));
    check('scan', () => {
      let n = 0;
      for (const _ of txn.scan({ reverse: c.reverse })) if (++n > 100_000) throw new Violation('scan does not end');
      return n;
    });
    check('verify', () => d.verify());
    txn.close();
  } finally {
    check('close', () => d.close());
  }
}

/** Branch and leaf page ids reachable from root in a file image (raw walk, no checks). */
const treeNodesCache = new WeakMap<Uint8Array, number[]>();
function treeNodes(file: Uint8Array, pageSize: number, root: number): number[] {
  const cached = treeNodesCache.get(file);
  if (cached) return cached;
  const nodes: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const id = stack.pop()!;
    nodes.push(id);
    const p = file.subarray(id * pageSize, (id + 1) * pageSize);
    if (p[TYPE_OFFSET] === PageType.Branch) {
      stack.push(readU32(p, NODE_LINK_OFFSET));
      for (let i = 0; i < readU16(p, NODE_COUNT_OFFSET); i++) stack.push(readU32(p, readU16(p, NODE_SLOTS_OFFSET + 2 * i)));
    }
  }
  treeNodesCache.set(file, nodes);
  return nodes;
}

// ---- the suite -------------------------------------------------------------------------

export interface FuzzOptions extends SuiteOptions {
  /** Total cases over all targets (default 1,000,000 long, 4,000 short). */
  cases?: number;
  /** Only these targets (default all). */
  targets?: string[];
}

/**
 * Share of the cases each target gets. The decoder targets share the total; the
 * reader target (a database open per case) runs 5% on top, so a failure there,
 * which ends that target early, does not bring the total under the figure asked.
 */
const WEIGHTS: Record<string, number> = { page: 0.25, node: 0.3, meta: 0.15, record: 0.3, reader: 0.05 };

export async function runFuzz(opts: FuzzOptions): Promise<Figures> {
  const total = opts.cases ?? (opts.long ? 1_000_000 : 4000);
  const corpus = buildCorpus(opts.seed);
  const impls: Array<[string, Kernels]> = [['fallback', fallbackKernels]];
  if (nativeKernels !== null) impls.push(['native', nativeKernels]);
  const f: Record<string, number> = {
    fuzzCases: 0,
    kernelCalls: 0,
    pageChangesDetected: 0,
    nodeRangeErrors: 0,
    metasAccepted: 0,
    recordsAccepted: 0,
    readerReads: 0,
    readerCorrupt: 0,
    readerOtherErrors: 0,
    hangs: 0,
    maxCaseMs: 0,
    peakArrayBuffersMiB: 0,
    failures: 0,
  };
  const ctx: Ctx = { corpus, impls, f };
  opts.log(`corpus: ${corpus.pages.length} pages, ${corpus.records.length} records; implementations: ${impls.map(([n]) => n).join(', ')}`);
  const targets: Array<[string, fc.Arbitrary<never>, (ctx: Ctx, c: never) => void]> = [
    ['page', pageCase as never, pageTarget as never],
    ['node', nodeCase as never, nodeTarget as never],
    ['meta', metaCase as never, metaTarget as never],
    ['record', recordCase as never, recordTarget as never],
    ['reader', readerCase as never, readerTarget as never],
  ];
  const figures: Figures = {};
  for (const [name, arb, run] of targets) {
    if (opts.targets && !opts.targets.includes(name)) continue;
    const numRuns = Math.max(1, Math.round(total * WEIGHTS[name]!));
    let cases = 0;
    const t0 = performance.now();
    const prop = fc.property(arb, (c) => {
      const s = performance.now();
      run(ctx, c);
      const ms = performance.now() - s;
      if (ms > f.maxCaseMs!) f.maxCaseMs = Math.round(ms * 10) / 10;
      if (ms > HANG_MS) {
        f.hangs!++;
        throw new Violation(`case took ${Math.round(ms)} ms`);
      }
      if (++cases % 20_000 === 0) {
        const mib = process.memoryUsage().arrayBuffers / 2 ** 20;
        if (mib > f.peakArrayBuffersMiB!) f.peakArrayBuffersMiB = Math.round(mib);
        if (cases % 100_000 === 0) opts.log(`${name}: ${cases}/${numRuns} cases`);
      }
    });
    const details = fc.check(prop, { numRuns, seed: opts.seed ^ name.length, endOnFailure: false });
    f.fuzzCases! += details.numRuns;
    figures[`${name}Cases`] = details.numRuns;
    figures[`${name}Seconds`] = Math.round((performance.now() - t0) / 100) / 10;
    if (details.failed) {
      f.failures!++;
      opts.log(
        `FAIL ${name}: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}; counterexample ${JSON.stringify(details.counterexample)?.slice(0, 600)} (seed ${details.seed}, path ${details.counterexamplePath})`,
      );
    }
  }
  return { ...f, ...figures, implementations: impls.map(([n]) => n).join('+') };
}

export const fuzzSuite: HardeningSuite = { name: 'fuzz', run: runFuzz };
