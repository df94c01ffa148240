// The public surface of a handle (ts/db/database.ts): the API and nothing of
// the engine, at run time and in the published types.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { Database, ReadTxn, WriteTxn, open, type CommitEvent } from '../index.js';
import { ensureBuilt, root } from '../testing/build.js';
import { useTempDbs } from '../testing/fixtures.js';

const tmp = useTempDbs('northstar-surface-');

/** The methods and accessors a Database has beyond EventEmitter's. */
const PUBLIC = ['beginRead', 'beginWrite', 'beginWriteAsync', 'cartridges', 'checkpoint', 'close', 'logPath', 'maxKeySize', 'path', 'readLog', 'stats', 'sync', 'truncateLog', 'txnId', 'verify', 'write'];

/** What the engine held and Database exposed before it became a facade. */
const ENGINE = ['pager', 'log', 'freeList', 'latest', 'recordBuilder', 'source', 'committed', 'poison', 'writerDone', 'syncLogUpTo', 'releaseSnapshot', 'checkOpen', 'raiseSlot', 'coord', 'file', 'opts', 'published', 'durable'];

describe('Database', () => {
  it('has the public API only: no engine state to read or assign', () => {
    const db = tmp.openDb();
    const own = Object.getOwnPropertyNames(Database.prototype).filter((n) => n !== 'constructor').sort();
    expect(own).toEqual([...PUBLIC].sort());
    for (const name of ENGINE) expect((db as unknown as Record<string, unknown>)[name], name).toBeUndefined();
    // Own properties are EventEmitter's bookkeeping only.
    for (const key of Object.keys(db)) expect(key.startsWith('_'), key).toBe(true);
    // Assigning the old names changes nothing the database uses.
    (db as unknown as Record<string, unknown>).latest = { txnId: 99 };
    (db as unknown as Record<string, unknown>).pager = null;
    const w = db.beginWrite();
    w.put('k', 'v');
    expect(w.commit()).toBe(1);
    expect(() => ((db as unknown as { path: string }).path = '/elsewhere')).toThrow(TypeError);
    expect(db.path).toBe(tmp.dbPath());
  });

  it('transactions have no public constructor and hold no reachable host', () => {
    const db = tmp.openDb();
    expect(() => new (ReadTxn as unknown as new (...a: unknown[]) => unknown)({}, 1, 2)).toThrow(TypeError);
    expect(() => new (WriteTxn as unknown as new (...a: unknown[]) => unknown)({})).toThrow(TypeError);
    const r = db.beginRead();
    expect(r).toBeInstanceOf(ReadTxn);
    expect(Object.keys(r)).toEqual(['txnId']);
    r.close();
    const w = db.beginWrite();
    expect(w).toBeInstanceOf(WriteTxn);
    expect(Object.keys(w)).toEqual([]);
    w.abort();
  });

  it("types db.on('commit', ...) with CommitEvent", () => {
    const db = tmp.openDb();
    const seen: CommitEvent[] = [];
    db.on('commit', (e) => {
      expectTypeOf(e).toEqualTypeOf<CommitEvent>();
      seen.push(e);
    });
    const w = db.beginWrite();
    w.put('a', 'b');
    w.commit();
    expect(seen.map((e) => [e.txnId, e.opCount])).toEqual([[1, 1]]);
    expectTypeOf(open).returns.toEqualTypeOf<Database>();
  });

  it('the published types reach neither the engine, the pager, the lock-file coordinator nor the addon', () => {
    ensureBuilt();
    const reached = new Set<string>();
    const stack = [nodePath.join(root, 'dist', 'index.d.ts')];
    while (stack.length > 0) {
      const file = stack.pop()!;
      if (reached.has(file)) continue;
      reached.add(file);
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
        const target = nodePath.resolve(nodePath.dirname(file), m[1]!).replace(/\.js$/, '.d.ts').replace(/\.cjs$/, '.d.cts');
        expect(fs.existsSync(target), `${file} imports ${m[1]}`).toBe(true);
        stack.push(target);
      }
    }
    const names = [...reached].map((f) => nodePath.relative(root, f).split(nodePath.sep).join('/'));
    expect(names).toContain('dist/db/database.d.ts');
    const internal = names.filter((n) => /^dist\/(pager|shared\/(coordinator|store)|db\/(engine|open|writer|internal)|native\/(loader|shared_file))|^crates\//.test(n));
    expect(internal).toEqual([]);
    const dts = fs.readFileSync(nodePath.join(root, 'dist', 'txn', 'write.d.ts'), 'utf8');
    expect(dts).not.toMatch(/applyReplayed|static create|WriteHost/);
  });
});
