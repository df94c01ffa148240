// Deterministic replay (ts/log/replay.ts): the state rebuilt from the log
// alone matches the database at every txn id, by content and by state hash.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { open } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { explain, replay, stateHashOf, StateHash } from './replay.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/log/replay.test.ts: NORTHSTAR_SEED=${seed}`);

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-replay-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

type Op = { del: boolean; key: number; value: number };
const opArb = fc.record({ del: fc.boolean(), key: fc.integer({ min: 0, max: 60 }), value: fc.integer({ min: 0, max: 3000 }) });
const commitsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 25 }), { minLength: 1, maxLength: 40 });

const keyOf = (k: number): Buffer => Buffer.from(`key-${k}`);
const valueOf = (v: number): Buffer => Buffer.alloc(v % 700, v & 0xff);

/** The sorted model state after applying commits, as [key, value] pairs. */
function modelAfter(commits: Op[][], upTo: number): Array<[Buffer, Buffer]> {
  const m = new Map<string, Buffer>();
  for (const ops of commits.slice(0, upTo)) {
    for (const o of ops) {
      if (o.del) m.delete(keyOf(o.key).toString('latin1'));
      else m.set(keyOf(o.key).toString('latin1'), valueOf(o.value));
    }
  }
  return [...m.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'))).map(([k, v]) => [Buffer.from(k, 'latin1'), v]);
}

describe('replay', () => {
  it('the state hash from replay equals the hash of beginRead({ txnId }) at every txn id, and the state equals the model', () => {
    let run = 0;
    fc.assert(
      fc.property(commitsArb, fc.constantFrom(4096, 16384), (commits, pageSize) => {
        const file = path.join(dir, `r${run++}.ndb`);
        const db = open(file, { pageSize, sync: 'none', checkpoint: { commits: 7 } });
        // Commits that change nothing (only deletes of missing keys) emit no record.
        const applied: Op[][] = [];
        for (const ops of commits) {
          const w = db.beginWrite();
          for (const o of ops) {
            if (o.del) w.del(keyOf(o.key));
            else w.put(keyOf(o.key), valueOf(o.value));
          }
          if (w.commit() === applied.length + 1) applied.push(ops);
        }
        const hashes: Array<{ txnId: number; stateHash: string }> = [];
        const result = replay(file, { onCommit: (c) => hashes.push({ txnId: c.txnId, stateHash: c.stateHash }) });
        expect(result.txnId).toBe(db.txnId);
        expect(hashes.map((h) => h.txnId)).toEqual(applied.map((_, i) => i + 1));
        for (const h of hashes) {
          const r = db.beginRead({ txnId: h.txnId });
          expect(stateHashOf(r.scan())).toBe(h.stateHash);
          r.close();
        }
        const model = modelAfter(applied, applied.length);
        expect([...result.state.entries()].length).toBe(model.length);
        for (const [k, v] of model) expect(result.state.get(k)?.equals(v)).toBe(true);
        expect(stateHashOf(model)).toBe(result.stateHash);
        // Part way: replay to a txn id gives the model at that point.
        const mid = Math.ceil(applied.length / 2);
        expect(replay(file, { toTxnId: mid }).stateHash).toBe(stateHashOf(modelAfter(applied, mid)));
        db.close();
      }),
      { seed, numRuns: 25 },
    );
  });

  it('explain yields every applied op in order with a running hash ending at the replay hash', () => {
    const file = path.join(dir, 'e.ndb');
    const db = open(file, { sync: 'none' });
    let w = db.beginWrite();
    w.put('a', '1');
    w.put('b', '2');
    w.commit();
    w = db.beginWrite();
    w.del('a');
    w.del('missing'); // not logged: it changed nothing
    w.put('b', '3');
    w.commit();
    db.close();
    const steps = [...explain(file)];
    expect(steps.map((s) => [s.txnId, s.op, s.key.toString(), s.value.toString()])).toEqual([
      [1, 'put', 'a', '1'],
      [1, 'put', 'b', '2'],
      [2, 'del', 'a', ''],
      [2, 'put', 'b', '3'],
    ]);
    expect(steps[1]!.stateHash).toBe(stateHashOf([[Buffer.from('a'), Buffer.from('1')], [Buffer.from('b'), Buffer.from('2')]]));
    expect(steps.at(-1)!.stateHash).toBe(replay(file).stateHash);
    expect(steps.at(-1)!.stateHash).toBe(stateHashOf([[Buffer.from('b'), Buffer.from('3')]]));
  });

  it('the state hash ignores order and sees every byte of keys and values', () => {
    const a: Array<[Buffer, Buffer]> = [
      [Buffer.from('k1'), Buffer.from('v1')],
      [Buffer.from('k2'), Buffer.from('v2')],
    ];
    expect(stateHashOf(a)).toBe(stateHashOf([...a].reverse()));
    expect(stateHashOf(a)).not.toBe(stateHashOf([a[0]!, [Buffer.from('k2'), Buffer.from('v3')]]));
    // Moving a byte between key and value changes the hash (the key length is mixed in).
    expect(stateHashOf([[Buffer.from('ab'), Buffer.from('c')]])).not.toBe(stateHashOf([[Buffer.from('a'), Buffer.from('bc')]]));
    expect(stateHashOf([])).toBe(new StateHash().toString());
  });

  it('replay to a txn id the log does not hold, or of a log truncated at its start, is SnapshotNotFound', () => {
    const file = path.join(dir, 't.ndb');
    const db = open(file, { sync: 'none' });
    for (let i = 0; i < 5; i++) {
      const w = db.beginWrite();
      w.put(`k${i}`, `v${i}`);
      w.commit();
    }
    expect(() => replay(file, { toTxnId: 9 })).toThrowError(expect.objectContaining({ code: 'SnapshotNotFound' }) as unknown as Error);
    db.checkpoint();
    db.truncateLog({ beforeTxnId: 3 });
    db.close();
    let err: unknown;
    try {
      replay(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NorthstarError);
    expect((err as NorthstarError).code).toBe('SnapshotNotFound');
  });

  it('a missing log is a clean NorthstarError', () => {
    expect(() => replay(path.join(dir, 'nope.ndb'))).toThrowError(NorthstarError);
  });
});
