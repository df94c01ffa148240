// MemTable (ts/log/memtable.ts): the replay state's hash table, against a Map.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemTable } from './memtable.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/log/memtable.test.ts: NORTHSTAR_SEED=${seed}`);

/** Puts key ‖ value into a fresh chunk and applies it, as replay does. */
function put(m: MemTable, key: Uint8Array, value: Uint8Array): void {
  const chunk = new Uint8Array(key.length + value.length);
  chunk.set(key);
  chunk.set(value, key.length);
  const c = m.addChunk(chunk);
  m.set(m.entry(c, 0, key.length), c, 0, value.length);
}

function del(m: MemTable, key: Uint8Array): void {
  const c = m.addChunk(key.slice());
  m.delete(m.entry(c, 0, key.length));
}

describe('MemTable', () => {
  it('matches a Map through puts, overwrites and deletes, across growth and rehashing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ del: fc.boolean(), key: fc.uint8Array({ minLength: 1, maxLength: 6 }), value: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 3000 }),
        (ops) => {
          const m = new MemTable();
          const model = new Map<string, Buffer>();
          for (const o of ops) {
            const name = Buffer.from(o.key).toString('hex');
            if (o.del) {
              del(m, o.key);
              model.delete(name);
            } else {
              put(m, o.key, o.value);
              model.set(name, Buffer.from(o.value));
            }
          }
          expect(m.size).toBe(model.size);
          for (const [name, v] of model) expect(m.get(Buffer.from(name, 'hex'))?.equals(v)).toBe(true);
          const seen = [...m.entries()].map(([k, v]) => [k.toString('hex'), v.toString('hex')]);
          expect(seen.sort()).toEqual([...model].map(([k, v]) => [k, v.toString('hex')]).sort());
        },
      ),
      { seed, numRuns: 40 },
    );
  });

  it('returns undefined for a deleted or absent key, and strings are UTF-8', () => {
    const m = new MemTable();
    put(m, Buffer.from('ключ'), Buffer.from('v'));
    expect(m.get('ключ')?.toString()).toBe('v');
    del(m, Buffer.from('ключ'));
    expect(m.get('ключ')).toBeUndefined();
    expect(m.get('other')).toBeUndefined();
    expect(m.size).toBe(0);
  });
});
