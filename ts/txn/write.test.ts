// WriteTxn (ts/txn/write.ts), through the public API only: the transaction
// reads its own writes (get and scan, a scan continuing after the last key it
// returned while the transaction changes), commits once (commit or
// commitAsync, which resolves when the record is durable), commits nothing
// when nothing changed, discards everything on abort or disposal, refuses a
// rejected call without a trace, and once closed refuses everything with
// Closed. Other transactions see nothing of it before commit.

import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { MAX_VALUE_SIZE, open, type Database, type WriteTxn } from '../index.js';
import { expectCode, expectVerified, useTempDbs } from '../testing/fixtures.js';

const tmp = useTempDbs('northstar-writetxn-');

const key = (i: number): string => `k${String(i).padStart(5, '0')}`;

function all(t: { scan(): IterableIterator<[Buffer, Buffer]> }): Array<[string, string]> {
  return [...t.scan()].map(([k, v]) => [k.toString(), v.toString()]);
}

function committed(db: Database): Array<[string, string]> {
  const r = db.beginRead();
  try {
    return all(r);
  } finally {
    r.close();
  }
}

function commit(db: Database, puts: Array<[string, string]>): number {
  const w = db.beginWrite();
  for (const [k, v] of puts) w.put(k, v);
  return w.commit();
}

describe('reading its own writes', () => {
  it('get and scan see its puts, overwrites and deletes before commit; del says whether the key was there', () => {
    const db = tmp.openDb();
    commit(db, [
      ['a', '1'],
      ['b', '2'],
    ]);
    const w = db.beginWrite();
    w.put('c', '3');
    w.put('a', 'one');
    expect(w.del('b')).toBe(true);
    expect(w.del('b')).toBe(false);
    expect(w.del('never')).toBe(false);
    expect(w.get('a')?.toString()).toBe('one');
    expect(w.get('b')).toBeUndefined();
    expect(w.get('c')?.toString()).toBe('3');
    expect(all(w)).toEqual([
      ['a', 'one'],
      ['c', '3'],
    ]);
    expect([...w.scan({ reverse: true, limit: 1 })].map(([k]) => k.toString())).toEqual(['c']);
    expect(w.commit()).toBe(2);
    expect(committed(db)).toEqual([
      ['a', 'one'],
      ['c', '3'],
    ]);
  });

  it('a scan open while the transaction changes continues after the last key it returned: it sees keys put ahead of it, not keys deleted ahead of it, and repeats none', () => {
    const db = tmp.openDb({ pageSize: 4096 });
    commit(
      db,
      Array.from({ length: 600 }, (_, i): [string, string] => [key(i * 2), 'old']),
    );
    // The same changes on a plain set: the scan's next key is the least key above the last one returned.
    const model = new Set(Array.from({ length: 600 }, (_, i) => key(i * 2)));
    const change = (i: number, put: (k: string) => void, del: (k: string) => void): void => {
      // Ahead of the scan: a new odd key (splits pages) and a deleted even one.
      if (i + 3 < 1200) put(key(i + 3));
      del(key(i + 4));
      // Behind it: never revisited.
      if (i > 0) put(key(i - 1));
    };
    const expected: string[] = [];
    for (let last = ''; ; ) {
      const next = [...model].filter((k) => k > last).sort()[0];
      if (next === undefined) break;
      expected.push(next);
      change(Number(next.slice(1)), (k) => model.add(k), (k) => model.delete(k));
      last = next;
    }
    const w = db.beginWrite();
    const seen: string[] = [];
    for (const [k] of w.scan()) {
      seen.push(k.toString());
      change(Number(k.toString().slice(1)), (k) => w.put(k, 'new'), (k) => void w.del(k));
      if (seen.length > 5000) throw new Error('scan does not end');
    }
    expect(seen).toEqual(expected);
    expect(seen.some((k) => Number(k.slice(1)) % 2 === 1), 'keys put ahead were seen').toBe(true);
    expect(all(w).map(([k]) => k)).toEqual([...model].sort());
    w.abort();
    expect(committed(db)).toHaveLength(600);
  });

  it('txnId is the id it will commit as; commit returns it and the database moves to it', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    const w = db.beginWrite();
    expect(w.txnId).toBe(2);
    w.put('b', '2');
    expect(db.txnId, 'not before commit').toBe(1);
    expect(w.commit()).toBe(2);
    expect(db.txnId).toBe(2);
  });
});

describe('isolation', () => {
  it('readers see nothing of a live transaction, and a reader begun before its commit keeps its snapshot after it', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    const w = db.beginWrite();
    w.put('a', '2');
    w.put('b', '2');
    const before = db.beginRead();
    expect(all(before)).toEqual([['a', '1']]);
    w.commit();
    expect(all(before)).toEqual([['a', '1']]);
    expect(committed(db)).toEqual([
      ['a', '2'],
      ['b', '2'],
    ]);
    before.close();
  });

  it('one write transaction per handle at a time: beginWrite throws WriteBusy until it commits or aborts', () => {
    const db = tmp.openDb();
    const w = db.beginWrite();
    expectCode(() => db.beginWrite(), 'WriteBusy');
    w.abort();
    const w2 = db.beginWrite();
    expectCode(() => db.beginWrite(), 'WriteBusy');
    w2.put('a', '1');
    w2.commit();
    expect(db.stats().writer).toBe(false);
    db.beginWrite().abort();
  });
});

describe('commit', () => {
  it('commits once: after commit every call throws Closed, abort is a no-op, and the commit stays', () => {
    const db = tmp.openDb();
    const w = db.beginWrite();
    w.put('a', '1');
    const it = w.scan();
    expect(w.commit()).toBe(1);
    expect(w.isClosed).toBe(true);
    expect(expectCode(() => w.commit(), 'Closed').message).toMatch(/committed/);
    for (const f of [() => w.put('b', '2'), () => w.del('a'), () => w.get('a'), () => w.scan(), () => it.next()]) expectCode(f, 'Closed');
    w.abort();
    expect(committed(db)).toEqual([['a', '1']]);
    expect(db.txnId).toBe(1);
  });

  it('a transaction that changed nothing (no calls, only gets, or only dels of absent keys) commits nothing: same txn id, log unchanged', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    const log = fs.statSync(tmp.logPath()).size;
    const runs: Array<(w: WriteTxn) => void> = [() => {}, (w) => void w.get('a'), (w) => void w.del('absent')];
    for (const run of runs) {
      const w = db.beginWrite();
      run(w);
      expect(w.commit()).toBe(1);
      expect(w.isClosed).toBe(true);
    }
    expect(db.txnId).toBe(1);
    expect(fs.statSync(tmp.logPath()).size).toBe(log);
    expect(db.stats().writer).toBe(false);
  });

  it('commitAsync resolves with the txn id once durable; new readers see it by then; calls in a row resolve in commit order', async () => {
    const db = tmp.openDb({ sync: 'full' });
    const order: number[] = [];
    const pending: Promise<number>[] = [];
    for (let i = 1; i <= 5; i++) {
      const w = db.beginWrite();
      w.put(key(i), String(i));
      pending.push(
        w.commitAsync().then((id) => {
          order.push(id);
          expect(committed(db).length, `readers see commit ${id} when it resolves`).toBeGreaterThanOrEqual(id);
          return id;
        }),
      );
      expect(w.isClosed).toBe(true);
    }
    expect(await Promise.all(pending)).toEqual([1, 2, 3, 4, 5]);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    // Nothing changed: resolves with the current id.
    expect(await db.beginWrite().commitAsync()).toBe(5);
    db.close();
    const again = open(tmp.dbPath(), { sync: 'none' });
    expect(committed(again)).toHaveLength(5);
    again.close();
  });

  it('commitAsync on a closed transaction rejects with Closed instead of throwing', async () => {
    const db = tmp.openDb();
    const w = db.beginWrite();
    w.put('a', '1');
    w.commit();
    let p: Promise<number> | undefined;
    expect(() => (p = w.commitAsync())).not.toThrow();
    await expect(p).rejects.toMatchObject({ code: 'Closed' });
  });

  it('a rejected put or del (bad key or value) leaves no trace: the transaction stays open and commits what it had', () => {
    const db = tmp.openDb();
    const w = db.beginWrite();
    w.put('a', '1');
    expectCode(() => w.put('', 'x'), 'InvalidArgument');
    expectCode(() => w.put('b', 7 as unknown as string), 'InvalidArgument');
    expectCode(() => w.put('x'.repeat(db.stats().maxKeySize + 1), 'x'), 'InvalidArgument');
    expectCode(() => w.del(null as unknown as string), 'InvalidArgument');
    expectCode(() => w.scan({ limit: 0.5 }), 'InvalidArgument');
    expect(w.isClosed).toBe(false);
    expect(all(w)).toEqual([['a', '1']]);
    expect(w.commit()).toBe(1);
    expect(committed(db)).toEqual([['a', '1']]);
    expectVerified(db);
  });

  it('a put too large for the commit record (maxTxnBytes) is refused before the tree changes: the transaction commits what it had', () => {
    // A limit must take one value of MAX_VALUE_SIZE (16 MiB); 1 MiB over that, a second MiB does not fit.
    const db = tmp.openDb({ maxTxnBytes: MAX_VALUE_SIZE + 1024 * 1024 });
    const w = db.beginWrite();
    w.put('a', Buffer.alloc(MAX_VALUE_SIZE, 1));
    expect(expectCode(() => w.put('b', Buffer.alloc(1024 * 1024, 2)), 'InvalidArgument').message).toMatch(/transaction too large/);
    expect(w.get('b')).toBeUndefined();
    expect(w.isClosed).toBe(false);
    expect(w.commit()).toBe(1);
    expect(committed(db).map(([k]) => k)).toEqual(['a']);
    expectVerified(db);
  });
});

describe('abort', () => {
  it('discards every change: readers, the next writer and the data file see none of it; abort twice is a no-op', () => {
    const db = tmp.openDb({ pageSize: 4096 });
    commit(
      db,
      Array.from({ length: 300 }, (_, i): [string, string] => [key(i), 'v']),
    );
    db.checkpoint();
    const data = fs.readFileSync(tmp.dbPath());
    const pages = db.stats().pageCount;
    const w = db.beginWrite();
    for (let i = 0; i < 300; i += 2) w.del(key(i));
    for (let i = 300; i < 900; i++) w.put(key(i), 'x'.repeat(200));
    w.abort();
    w.abort();
    expect(w.isClosed).toBe(true);
    expectCode(() => w.put('a', '1'), 'Closed');
    expectCode(() => w.commit(), 'Closed');
    expect(db.txnId).toBe(1);
    expect(db.stats().pageCount).toBe(pages);
    expect(fs.readFileSync(tmp.dbPath()).equals(data), 'data file untouched').toBe(true);
    const next = db.beginWrite();
    expect(next.get(key(0))?.toString()).toBe('v');
    expect(next.get(key(300))).toBeUndefined();
    next.abort();
    expect(committed(db)).toHaveLength(300);
    expectVerified(db);
  });

  it('`using` aborts a transaction left uncommitted, also when the block throws; a committed one stays', () => {
    const db = tmp.openDb();
    let kept: WriteTxn;
    {
      using w = db.beginWrite();
      w.put('gone', '1');
      kept = w;
    }
    expect(kept.isClosed).toBe(true);
    expect(() => {
      using w = db.beginWrite();
      w.put('gone too', '1');
      kept = w;
      throw new Error('boom');
    }).toThrow('boom');
    expect(kept.isClosed).toBe(true);
    {
      using w = db.beginWrite();
      w.put('kept', '1');
      w.commit();
    }
    expect(committed(db)).toEqual([['kept', '1']]);
    expect(db.stats().writer).toBe(false);
  });

  it('closing the database aborts its live transaction: its calls then throw Closed and nothing of it survives reopen', () => {
    const db = open(tmp.dbPath(), { sync: 'none' });
    commit(db, [['a', '1']]);
    const w = db.beginWrite();
    w.put('b', '2');
    db.close();
    expect(w.isClosed).toBe(true);
    expectCode(() => w.put('c', '3'), 'Closed');
    expectCode(() => w.commit(), 'Closed');
    const again = tmp.openDb();
    expect(committed(again)).toEqual([['a', '1']]);
  });
});
