// The freelist and history chains of a meta (spec/file_format_v1.md §6): read
// at open and whenever a handle reloads from the durable meta. A chain page
// must be written by the meta's own checkpoint (spec §4.5, rule 13), so a stale
// or misplaced page is Corrupt, never silently used.

import { NorthstarError } from '../errors.js';
import { FIRST_DATA_PAGE, PageType } from '../format/constants.js';
import { pageTxnId, pageTypeOf } from '../format/page.js';
import { FreeList, readFreelistPage } from '../pager/freelist.js';
import { readHistoryPage, type History } from '../pager/history.js';
import type { Meta } from '../pager/meta.js';
import type { Pager } from '../pager/pager.js';

/** Reads the freelist chain of the chosen meta (spec §6.1). */
export function loadFreeList(pager: Pager, meta: Meta, floor: number): { list: FreeList; chain: number[] } {
  const ids: number[] = [];
  const txnIds: number[] = [];
  const chain = readChain(pager, meta, meta.freelist, PageType.Freelist, 'freelist', (page, id) => {
    const body = readFreelistPage(page);
    if (body === null) return null;
    for (let i = 0; i < body.ids.length; i++) {
      const f = body.ids[i]!;
      if (f < FIRST_DATA_PAGE || f >= meta.pageCount) {
        throw new NorthstarError('Corrupt', `${pager.file.path}: freelist page ${id} lists invalid page ${f}`, { pageId: id, path: pager.file.path });
      }
      ids.push(f);
      txnIds.push(body.txnIds[i]!);
    }
    return body.next;
  });
  return { list: FreeList.fromEntries(ids, txnIds, floor), chain };
}

/**
 * Reads the history chain of the chosen meta into `history`; returns the
 * chain's pages and the oldest txn it lists (the meta's own when none): the
 * oldest snapshot a recovery from this meta may offer, whatever `history`
 * keeps of it (spec §6.1).
 */
export function loadHistory(pager: Pager, meta: Meta, history: History): { chain: number[]; oldest: number } {
  let oldest = meta.txnId;
  const chain = readChain(pager, meta, meta.history, PageType.History, 'history', (page) => {
    const body = readHistoryPage(page);
    if (body === null) return null;
    for (const e of body.entries) {
      if (e.txnId <= meta.txnId && e.root < meta.pageCount) {
        history.add(e);
        if (e.txnId < oldest) oldest = e.txnId;
      }
    }
    return body.next;
  });
  return { chain, oldest };
}

/** Walks a chain of pages of one type from `head`; `each` returns the next id, or null if the page is malformed. */
function readChain(pager: Pager, meta: Meta, head: number, type: number, what: string, each: (page: Uint8Array, id: number) => number | null): number[] {
  const chain: number[] = [];
  const seen = new Set<number>();
  let id = head;
  while (id !== 0) {
    if (id < FIRST_DATA_PAGE || id >= meta.pageCount || seen.has(id)) {
      throw new NorthstarError('Corrupt', `${pager.file.path}: ${what} chain reaches invalid page ${id}`, { pageId: id, path: pager.file.path });
    }
    seen.add(id);
    chain.push(id);
    const page = pager.readUncached(id);
    // The checkpoint that wrote the meta wrote its whole chain (spec §4.5, rule 13).
    if (pageTxnId(page) !== meta.txnId) {
      throw new NorthstarError('Corrupt', `${pager.file.path}: page ${id}: ${what} page written by txn ${pageTxnId(page)}, but the meta expects txn ${meta.txnId} (a stale or misplaced page)`, {
        pageId: id,
        path: pager.file.path,
      });
    }
    const next = pageTypeOf(page) === type ? each(page, id) : null;
    if (next === null) throw new NorthstarError('Corrupt', `${pager.file.path}: page ${id} is not a valid ${what} page`, { pageId: id, path: pager.file.path });
    id = next;
  }
  return chain;
}
