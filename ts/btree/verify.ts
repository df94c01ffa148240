// verify(): walks the whole committed state and names every problem with its
// page (spec §4.5 lists the invariants, numbered as in the messages here).
// Reads bypass the cache so the bytes on disk are what gets checked.

import type { VerifyProblem, VerifyReport } from './verify_report.js';
import { NorthstarError } from '../errors.js';
import { compareBytes, readU32, readU64 } from '../format/bytes.js';
import {
  FIRST_DATA_PAGE,
  NODE_CELL_START_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_LINK_OFFSET,
  OVERFLOW_DATA_OFFSET,
  OVERFLOW_NEXT_OFFSET,
  OVERFLOW_REF_PAGE,
  OVERFLOW_REF_TXN,
  PageType,
  SLOT_SIZE,
  VALUE_OVERFLOW_BIT,
} from '../format/constants.js';
import { cellFootprint, childTxnAt, nodeCount, pageTxnId, pageTypeOf } from '../format/page.js';
import { readFreelistPage } from '../pager/freelist.js';
import { readHistoryPage } from '../pager/history.js';
import type { Meta } from '../pager/meta.js';
import type { Pager } from '../pager/pager.js';

/** Stops a run on a badly damaged file from listing millions of problems. */
const MAX_PROBLEMS = 10_000;

export function verifyDatabase(pager: Pager, meta: Meta): VerifyReport {
  const fileSize = pager.file.size();
  const problems: VerifyProblem[] = [];
  const report = (pageId: number | null, code: VerifyProblem['code'], message: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push({ pageId, code, message });
  };
  const k = pager.kernels;
  const owner = new Map<number, string>();
  let entries = 0;
  let treePages = 0;
  let decoded = new Uint32Array(4096);

  /** A page reached through a reference must carry the txn id the reference names (13). */
  const writtenBy = (id: number, p: Uint8Array, expected: number, what: string): boolean => {
    const actual = pageTxnId(p);
    if (actual === expected) return true;
    report(id, 'txn', `(13) ${what}: page ${id} was written by txn ${actual}, its reference expects txn ${expected} (a stale or misplaced page)`);
    return false;
  };

  const read = (id: number, what: string): Uint8Array | null => {
    if (!Number.isSafeInteger(id) || id < FIRST_DATA_PAGE || id >= meta.pageCount) {
      report(id, 'range', `${what}: page id ${id} outside ${FIRST_DATA_PAGE}..${meta.pageCount - 1}`);
      return null;
    }
    if (owner.has(id)) {
      report(id, 'shared', `${what}: page ${id} is already used as ${owner.get(id)}`);
      return null;
    }
    owner.set(id, what);
    try {
      return pager.readUncached(id);
    } catch (err) {
      report(id, 'unreadable', err instanceof NorthstarError ? err.message : String(err));
      return null;
    }
  };

  const checkOverflow = (leafId: number, first: number, txn: number, length: number): void => {
    const per = pager.pageSize - OVERFLOW_DATA_OFFSET;
    const n = Math.ceil(length / per);
    let id = first;
    for (let j = 0; j < n; j++) {
      const p = read(id, `overflow page ${j} of a value in leaf ${leafId}`);
      if (p === null) return;
      treePages++;
      if (!writtenBy(id, p, txn, `overflow page ${j} of a value in leaf ${leafId}`)) return;
      if (pageTypeOf(p) !== PageType.Overflow) {
        report(id, 'type', `(7) expected an overflow page, found type ${pageTypeOf(p)}`);
        return;
      }
      const next = readU64(p, OVERFLOW_NEXT_OFFSET);
      if (j + 1 === n && next !== 0) report(id, 'overflow', `(7) overflow chain longer than its value of ${length} bytes`);
      id = next;
    }
  };

  /** Checks the subtree at id, which txn `txn` wrote; keys must lie in [lower, upper). */
  const walk = (id: number, txn: number, level: number, lower: Uint8Array | null, upper: Uint8Array | null, isRoot: boolean): void => {
    const p = read(id, `tree node at depth ${level}`);
    if (p === null) return;
    treePages++;
    // A stale page's contents describe an older tree: checking them would only add noise.
    if (!writtenBy(id, p, txn, `tree node at depth ${level}`)) return;
    const type = pageTypeOf(p);
    if (type !== PageType.Leaf && type !== PageType.Branch) {
      report(id, 'type', `(1) expected a tree node, found page type ${type}`);
      return;
    }
    let count: number;
    try {
      count = nodeCount(p);
      if (decoded.length < count * 4) decoded = new Uint32Array(count * 4);
      k.nodeDecode(p, decoded);
      let live = 0;
      for (let i = 0; i < count; i++) live += cellFootprint(p, i) - SLOT_SIZE;
      const cellStart = readU32(p, NODE_CELL_START_OFFSET);
      const dead = p[NODE_DEAD_OFFSET]! | (p[NODE_DEAD_OFFSET + 1]! << 8);
      if (live + dead !== p.length - cellStart) report(id, 'layout', `(2) cells use ${live} + ${dead} dead bytes but the cell area is ${p.length - cellStart}`);
    } catch (err) {
      report(id, 'layout', `(2) node layout: ${(err as Error).message}`);
      return;
    }
    const leaf = type === PageType.Leaf;
    if (leaf && level + 1 !== meta.depth) report(id, 'depth', `(4) leaf at depth ${level + 1}, tree depth is ${meta.depth}`);
    if (!leaf && level + 1 >= meta.depth) report(id, 'depth', `(4) branch at depth ${level + 1}, tree depth is ${meta.depth}`);
    if (leaf && count === 0) report(id, 'empty', '(6) leaf without cells');
    if (!leaf && isRoot && count === 0) report(id, 'empty', '(6) root branch without separators');
    if (leaf && readU64(p, NODE_LINK_OFFSET) !== 0) report(id, 'link', '(10) leaf right-sibling link is not 0');
    // Keys: strictly increasing and inside the bounds from the ancestors.
    const keys: Uint8Array[] = [];
    for (let i = 0; i < count; i++) keys.push(p.subarray(decoded[i * 4]!, decoded[i * 4]! + decoded[i * 4 + 1]!));
    const children: number[] = [];
    const vlens: number[] = [];
    for (let i = 0; i < count; i++) {
      if (leaf) vlens.push(decoded[i * 4 + 3]!);
      else children.push(decoded[i * 4 + 3]! * 0x1_0000_0000 + decoded[i * 4 + 2]!);
    }
    for (let i = 0; i < count; i++) {
      const key = keys[i]!;
      if (i > 0 && compareBytes(keys[i - 1]!, 0, keys[i - 1]!.length, key) >= 0) report(id, 'order', `(2) key ${i} is not greater than key ${i - 1}`);
      if (lower && compareBytes(key, 0, key.length, lower) < 0) report(id, 'range', `(3) key ${i} is below its separator range`);
      if (upper && compareBytes(key, 0, key.length, upper) >= 0) report(id, 'range', `(3) key ${i} is above its separator range`);
    }
    if (leaf) {
      entries += count;
      for (let i = 0; i < count; i++) {
        const vlen = vlens[i]!;
        const ref = decoded[i * 4 + 2]!;
        if (vlen >= VALUE_OVERFLOW_BIT) checkOverflow(id, readU64(p, ref + OVERFLOW_REF_PAGE), readU64(p, ref + OVERFLOW_REF_TXN), vlen - VALUE_OVERFLOW_BIT);
      }
      return;
    }
    const leftmost = readU64(p, NODE_LINK_OFFSET);
    const kids = [leftmost, ...children];
    for (let c = 0; c < kids.length; c++) {
      const lo = c === 0 ? lower : keys[c - 1]!;
      const hi = c === count ? upper : keys[c]!;
      walk(kids[c]!, childTxnAt(p, c), level + 1, lo, hi, false);
    }
  };

  if (fileSize < meta.pageCount * pager.pageSize) {
    report(null, 'range', `(11) file holds ${Math.floor(fileSize / pager.pageSize)} pages, meta needs ${meta.pageCount}`);
  }
  // The root of a commit is always rewritten by that commit (spec §4.5, rule 13).
  if (meta.root !== 0) walk(meta.root, meta.txnId, 0, null, null, true);
  else if (meta.depth !== 0) report(null, 'depth', '(4) empty tree with non-zero depth');
  if (entries !== meta.entryCount) report(null, 'count', `(8) meta says ${meta.entryCount} entries, leaves hold ${entries}`);

  // Freelist: its pages and entries must not be reachable, nor listed twice (5, 9).
  let freelistPages = 0;
  const free = new Set<number>();
  let id = meta.freelist;
  while (id !== 0) {
    const p = read(id, 'freelist page');
    if (p === null) break;
    freelistPages++;
    // The checkpoint that wrote the meta wrote its whole freelist and history chains.
    if (!writtenBy(id, p, meta.txnId, 'freelist page')) break;
    const body = pageTypeOf(p) === PageType.Freelist ? readFreelistPage(p) : null;
    if (body === null) {
      report(id, 'freelist', 'not a valid freelist page');
      break;
    }
    for (const f of body.ids) {
      if (f < FIRST_DATA_PAGE || f >= meta.pageCount) report(id, 'freelist', `lists page ${f} outside the file`);
      else if (owner.has(f)) report(f, 'freelist', `(5) page ${f} is listed free but used as ${owner.get(f)}`);
      else if (free.has(f)) report(f, 'freelist', `page ${f} is listed free twice`);
      else free.add(f);
    }
    id = body.next;
  }
  // History chain (spec §6.2): its pages are owned; entries ascend and name pages in the file.
  let historyPages = 0;
  let lastTxn = -1;
  id = meta.history;
  while (id !== 0) {
    const p = read(id, 'history page');
    if (p === null) break;
    historyPages++;
    if (!writtenBy(id, p, meta.txnId, 'history page')) break;
    const body = pageTypeOf(p) === PageType.History ? readHistoryPage(p) : null;
    if (body === null) {
      report(id, 'history', 'not a valid history page');
      break;
    }
    for (const e of body.entries) {
      if (e.txnId <= lastTxn || e.txnId > meta.txnId) report(id, 'history', `(12) snapshot ${e.txnId} out of order or after the meta's txn ${meta.txnId}`);
      if (e.root !== 0 && (e.root < FIRST_DATA_PAGE || e.root >= meta.pageCount)) report(id, 'history', `(12) snapshot ${e.txnId} has root ${e.root} outside the file`);
      lastTxn = e.txnId;
    }
    id = body.next;
  }
  for (let p = FIRST_DATA_PAGE; p < meta.pageCount; p++) {
    if (!owner.has(p) && !free.has(p)) report(p, 'leak', `(9) page ${p} is neither reachable nor free`);
  }
  return {
    ok: problems.length === 0,
    problems,
    txnId: meta.txnId,
    pageCount: meta.pageCount,
    treePages,
    freelistPages,
    historyPages,
    freePages: free.size,
    entries,
  };
}
