// ReadTxn (ts/txn/read.ts), through the public API only: a read transaction is
// a snapshot of one commit for its whole life (later commits, however many
// pages they rewrite, change nothing it reads: spec §6.1), get returns a copy
// the caller owns, scan walks the snapshot in key order, and a closed
// transaction (closed itself, disposed, or its database closed) refuses
// everything with Closed and releases its snapshot exactly once.

import { describe, expect, it } from 'vitest';

import { open, type Database, type ReadTxn } from '../index.js';
import { expectCode, expectVerified, useTempDbs } from '../testing/fixtures.js';

const tmp = useTempDbs('northstar-readtxn-');

const key = (i: number): string => `k${String(i).padStart(5, '0')}`;
const val = (i: number, round: number): string => `v${round}-${i}-${'x'.repeat(i % 50)}`;

function commit(db: Database, puts: Array<[string, string]>, dels: string[] = []): number {
  const w = db.beginWrite();
  for (const [k, v] of puts) w.put(k, v);
  for (const k of dels) w.del(k);
  return w.commit();
}

const entries = (r: ReadTxn, o?: Parameters<ReadTxn['scan']>[0]): Array<[string, string]> => [...r.scan(o)].map(([k, v]) => [k.toString(), v.toString()]);

describe('a read transaction is a snapshot', () => {
  it('shows the commit it began on: later puts, overwrites and deletes are invisible to its gets and scans, visible to a new reader', () => {
    const db = tmp.openDb();
    commit(db, [
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
    const r = db.beginRead();
    expect(r.txnId).toBe(1);
    expect(commit(db, [['b', 'changed'], ['d', 'new']], ['a'])).toBe(2);
    expect(r.get('a')?.toString()).toBe('1');
    expect(r.get('b')?.toString()).toBe('2');
    expect(r.get('d')).toBeUndefined();
    expect(entries(r)).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
    const now = db.beginRead();
    expect(now.txnId).toBe(2);
    expect(entries(now)).toEqual([
      ['b', 'changed'],
      ['c', '3'],
      ['d', 'new'],
    ]);
    now.close();
    r.close();
  });

  it('an uncommitted write is invisible to a reader begun during it; its commit is not visible to that reader either', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    const w = db.beginWrite();
    w.put('a', '2');
    w.put('b', '2');
    const r = db.beginRead();
    expect(entries(r)).toEqual([['a', '1']]);
    w.commit();
    expect(entries(r)).toEqual([['a', '1']]);
    expect(r.txnId).toBe(1);
    r.close();
  });

  it('an iterator opened before a commit continues over the snapshot, not the new commit', () => {
    const db = tmp.openDb({ pageSize: 4096 });
    commit(db, Array.from({ length: 500 }, (_, i): [string, string] => [key(i), val(i, 0)]));
    const r = db.beginRead();
    const it = r.scan();
    const seen: string[] = [];
    for (let n = 0; n < 100; n++) seen.push(it.next().value![0].toString());
    // Rewrite and delete everything ahead of the iterator, in several commits.
    for (let round = 1; round <= 3; round++) commit(db, Array.from({ length: 500 }, (_, i): [string, string] => [key(i), val(i, round)]), [key(200 + round)]);
    commit(db, [], Array.from({ length: 400 }, (_, i) => key(i + 100)));
    for (const [k, v] of { [Symbol.iterator]: () => it }) {
      seen.push(k.toString());
      expect(v.toString()).toBe(val(Number(k.toString().slice(1)), 0));
    }
    expect(seen).toEqual(Array.from({ length: 500 }, (_, i) => key(i)));
    r.close();
    expectVerified(db);
  });

  it('the pages it reaches are not reused while it lives: 20 commits rewriting every value leave its view intact; once it closes the freed pages are reused', () => {
    // No retained history: only the reader keeps old pages.
    const db = tmp.openDb({ pageSize: 4096, history: { txns: 0 } });
    const n = 400;
    commit(db, Array.from({ length: n }, (_, i): [string, string] => [key(i), val(i, 0)]));
    const r = db.beginRead();
    for (let round = 1; round <= 20; round++) commit(db, Array.from({ length: n }, (_, i): [string, string] => [key(i), val(i, round)]));
    expect(db.stats().pendingPages, 'pages the reader reaches are held back').toBeGreaterThan(0);
    for (let i = 0; i < n; i++) expect(r.get(key(i))?.toString()).toBe(val(i, 0));
    expect(entries(r)).toEqual(Array.from({ length: n }, (_, i) => [key(i), val(i, 0)]));
    r.close();
    // Released: a commit or two later the held pages are free again, and commits stop growing the file.
    commit(db, [[key(0), 'x']]);
    commit(db, [[key(1), 'y']]);
    expect(db.stats().pendingPages).toBeLessThan(20);
    const pages = db.stats().pageCount;
    for (let round = 21; round <= 30; round++) commit(db, Array.from({ length: n }, (_, i): [string, string] => [key(i), val(i, round)]));
    expect(db.stats().pageCount, 'freed pages were reused').toBe(pages);
    expectVerified(db);
  });
});

describe('get and scan', () => {
  it('get returns a copy the caller owns: changing it changes neither the database nor the next get; absent keys are undefined', () => {
    const db = tmp.openDb();
    commit(db, [['k', 'value']]);
    const r = db.beginRead();
    const a = r.get('k')!;
    const b = r.get('k')!;
    expect(a).not.toBe(b);
    a.fill(0x21);
    expect(b.toString()).toBe('value');
    expect(r.get('k')!.toString()).toBe('value');
    expect(r.get('missing')).toBeUndefined();
    const [[sk, sv]] = [...r.scan()] as [[Buffer, Buffer]];
    sk.fill(0);
    sv.fill(0);
    expect(entries(r)).toEqual([['k', 'value']]);
    r.close();
    // The copy outlives the transaction.
    expect(b.toString()).toBe('value');
  });

  it('scan walks keys in byte order, forward or reverse, within its bounds and limit', () => {
    const db = tmp.openDb({ pageSize: 4096 });
    const keys = Array.from({ length: 300 }, (_, i) => key(i));
    commit(db, keys.map((k, i): [string, string] => [k, val(i, 0)]));
    const r = db.beginRead();
    expect(entries(r).map(([k]) => k)).toEqual(keys);
    expect(entries(r, { reverse: true }).map(([k]) => k)).toEqual([...keys].reverse());
    expect(entries(r, { gte: key(10), lt: key(20) }).map(([k]) => k)).toEqual(keys.slice(10, 20));
    expect(entries(r, { gt: key(10), lte: key(20), reverse: true, limit: 3 }).map(([k]) => k)).toEqual([key(20), key(19), key(18)]);
    expect(entries(r, { prefix: 'k001' }).map(([k]) => k)).toEqual(keys.slice(100, 200));
    expect(entries(r, { prefix: 'k0001' }).map(([k]) => k)).toEqual(keys.slice(10, 20));
    expect(entries(r, { gte: 'z' })).toEqual([]);
    r.close();
  });

  it('refuses bad keys and scan options with InvalidArgument and stays usable', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    const r = db.beginRead();
    expectCode(() => r.get(''), 'InvalidArgument');
    expectCode(() => r.get(5 as unknown as string), 'InvalidArgument');
    expectCode(() => r.get('x'.repeat(db.stats().maxKeySize + 1)), 'InvalidArgument');
    expectCode(() => r.scan({ limit: -1 }), 'InvalidArgument');
    expectCode(() => r.scan({ gte: {} as unknown as string }), 'InvalidArgument');
    expect(r.isClosed).toBe(false);
    expect(r.get('a')?.toString()).toBe('1');
    r.close();
  });
});

describe('closing', () => {
  it('close() ends it: get, scan and its open iterators throw Closed; a second close releases nothing more', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1'], ['b', '2']]);
    const r1 = db.beginRead();
    const r2 = db.beginRead();
    expect(db.stats().readers.live).toBe(2);
    const it = r1.scan();
    expect(it.next().value![0].toString()).toBe('a');
    r1.close();
    r1.close();
    expect(r1.isClosed).toBe(true);
    expect(db.stats().readers.live, 'released once, not twice').toBe(1);
    expectCode(() => r1.get('a'), 'Closed');
    expectCode(() => r1.scan(), 'Closed');
    expectCode(() => it.next(), 'Closed');
    // The other reader of the same snapshot is unaffected.
    expect(r2.get('b')?.toString()).toBe('2');
    r2.close();
    expect(db.stats().readers.live).toBe(0);
  });

  it('`using` closes it at the end of the block, also when the block throws', () => {
    const db = tmp.openDb();
    commit(db, [['a', '1']]);
    let kept: ReadTxn;
    {
      using r = db.beginRead();
      kept = r;
      expect(db.stats().readers.live).toBe(1);
    }
    expect(kept.isClosed).toBe(true);
    expect(() => {
      using r = db.beginRead();
      kept = r;
      throw new Error('boom');
    }).toThrow('boom');
    expect(kept.isClosed).toBe(true);
    expect(db.stats().readers.live).toBe(0);
  });

  it('closing its database makes it throw Closed, though it was never closed itself', () => {
    const db = open(tmp.dbPath(), { sync: 'none' });
    commit(db, [['a', '1']]);
    const r = db.beginRead();
    const it = r.scan();
    db.close();
    expect(r.isClosed).toBe(false);
    expect(expectCode(() => r.get('a'), 'Closed').message).toMatch(/database is closed/);
    expectCode(() => r.scan(), 'Closed');
    expectCode(() => it.next(), 'Closed');
    r.close(); // still safe
  });
});
