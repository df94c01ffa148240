// The lock-file table through Coordinator (spec/concurrency_v0.md §2–§3), with
// slots written by hand where a race or a dead process is needed.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Coordinator } from './coordinator.js';
import { FLAG_READY, LOCK_FILE_SIZE, OWNER_PID_SCALE, SLOT_FLAGS, SLOT_OWNER, W_BOOT, slotFlagsWord, slotWord } from './layout.js';
import { openStore } from './store.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-coordinator-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// Found by the multi-process crash torture (ts/hard/crashmulti.ts): a process claiming the slot
// of a SIGKILLed one showed that one's FLAG_READY until it wrote its own flags, so a process
// opening at that moment adopted the dead processes' published state instead of recovering.
it('a slot claimed from a dead process is not ready until its new owner says so', () => {
  const db = nodePath.join(dir, 'db');
  const c = Coordinator.open(db, null, 7, 1000);
  const words = openStore(db, null);
  try {
    const slot = c.slot + 1;
    const dead = 4_000_000 * OWNER_PID_SCALE + 2 * 1234;
    const claimer = process.pid * OWNER_PID_SCALE + 2 * 4321;
    // The dead handle had finished opening; the claimer has won the compare-and-swap, no more.
    words.store(slotWord(slot, SLOT_FLAGS), slotFlagsWord(dead, FLAG_READY));
    words.store(slotWord(slot, SLOT_OWNER), claimer);
    expect(c.othersReady()).toBe(false);
    words.store(slotWord(slot, SLOT_FLAGS), slotFlagsWord(claimer, 0));
    expect(c.othersReady()).toBe(false);
    words.store(slotWord(slot, SLOT_FLAGS), slotFlagsWord(claimer, FLAG_READY));
    expect(c.othersReady()).toBe(true);
    words.store(slotWord(slot, SLOT_OWNER), 0);
  } finally {
    words.close();
    c.close();
  }
});

it('markReady keeps the slot’s other flags and makes the handle ready for the others', () => {
  const db = nodePath.join(dir, 'db');
  const a = Coordinator.open(db, null, 7, 1000);
  const b = Coordinator.open(db, null, 7, 1000);
  try {
    expect(b.othersReady()).toBe(false);
    a.markReady();
    expect(b.othersReady()).toBe(true);
    expect(a.othersReady()).toBe(false);
  } finally {
    b.close();
    a.close();
  }
});

it('a lock file of an earlier boot or another database is reset whole at open (spec §2.1): derived state, never data', () => {
  const dbPath = nodePath.join(dir, 'db');
  const DB_ID = 77;
  const first = Coordinator.open(dbPath, null, DB_ID, 1000);
  first.publish({ txnId: 9, root: 3, depth: 1, entryCount: 1, pageCount: 4, logEnd: 100, recordPosition: 50, logGeneration: 2, historyFloor: 9, checkpointTxn: 9, writer: first.owner });
  first.close();
  // Same boot and id: the table is kept.
  const again = Coordinator.open(dbPath, null, DB_ID, 1000);
  expect(again.publishedTxn()).toBe(9);
  again.close();
  // Another database id (the data file was recreated): zeroed, the header rewritten for the new id.
  const other = Coordinator.open(dbPath, null, DB_ID + 1, 1000);
  expect(other.publishedTxn()).toBe(0);
  expect(other.otherReaders().slots).toEqual([]);
  other.close();
  // An earlier boot: likewise.
  const words = openStore(dbPath, null);
  words.store(W_BOOT, words.load(W_BOOT) + 1);
  words.store(slotWord(7, SLOT_OWNER), process.pid * OWNER_PID_SCALE + 2);
  words.close();
  const afterBoot = Coordinator.open(dbPath, null, DB_ID + 1, 1000);
  expect(afterBoot.otherReaders().slots).toEqual([]);
  expect(fs.statSync(`${dbPath}.lock`).size).toBe(LOCK_FILE_SIZE);
  afterBoot.close();
});

// A word is an integer in 0 … 2^53 − 1 (spec §2) stored as two 32-bit halves; the file
// store reads ranges through a 32-bit view, so both halves and the carry between them count.
it('words of every width read back the same one at a time and as a range', () => {
  const words = openStore(nodePath.join(dir, 'db'), null);
  try {
    const values = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 0xdead_beef * 2 ** 20 + 7, 2 ** 53 - 1, 123_456_789];
    const first = slotWord(3, 0);
    words.storeMany(first, values);
    expect(values.map((_, i) => words.load(first + i))).toEqual(values);
    const out = new Float64Array(values.length);
    words.loadMany(first, out);
    expect([...out]).toEqual(values);
    // The whole reader table, as an open reads it.
    words.store(slotWord(1023, 3), 2 ** 53 - 2);
    const table = new Float64Array(1024 * 4);
    words.loadMany(slotWord(0, 0), table);
    expect(table[slotWord(1023, 3) - slotWord(0, 0)]).toBe(2 ** 53 - 2);
    expect(table[slotWord(3, 0) - slotWord(0, 0) + 6]).toBe(2 ** 53 - 1);
  } finally {
    words.close();
  }
});
