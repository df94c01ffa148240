// openCartridge (ts/cartridge/serve.ts, spec/cartridge_v1.md §7): a cartridge
// served beside a running database answers exactly what the tree says at the
// latest commit, before, during and after its background builds; a missing,
// damaged or foreign file is reported with its reason and rebuilt, and a file
// at its path that is not a cartridge is never replaced. Both implementations.

import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Database } from '../index.js';
import { openQueue } from '../queue/index.js';
import { QUEUE_KEY_PREFIX } from '../queue/keys.js';
import { implementation } from '../native/kernels.js';
import { useTempDbs } from '../testing/fixtures.js';
import { buildCartridgeFromLog } from './build.js';
import { openCartridge } from './serve.js';

const tmp = useTempDbs('northstar-cartridge-serve-');

/** The oracle: ready task ids of (queue, type) in key order, read straight from the tree. */
function readyIds(db: Database, queue: string, type: string): number[] {
  const prefix = Buffer.concat([QUEUE_KEY_PREFIX, Buffer.from(queue), Buffer.from([0, 0x52]), Buffer.from(type), Buffer.from([0])]);
  const r = db.beginRead();
  try {
    return [...r.scan({ prefix })].map(([k]) => Number(Buffer.from(k).readBigUInt64BE(k.length - 8)));
  } finally {
    r.close();
  }
}

async function seed(db: Database): Promise<void> {
  const q = openQueue(db, 'work');
  await q.enqueue(Array.from({ length: 30 }, (_, i) => ({ type: i % 3 === 0 ? 'test' : 'build', payload: i, priority: i % 4 })));
  await q.close();
}

function expectExact(db: Database, c: ReturnType<typeof openCartridge>): void {
  for (const type of ['build', 'test', 'none']) {
    const ids = readyIds(db, 'work', type);
    expect(c.count('work', type), type).toBe(ids.length);
    expect(c.next('work', type, 5).map((t) => t.id), type).toEqual(ids.slice(0, 5));
    expect(c.next('work', type, Infinity).map((t) => t.id), type).toEqual(ids);
  }
}

describe('openCartridge', () => {
  it('builds a missing cartridge in the background, answering from the tree meanwhile; the file equals an offline build; lookups stay exact as commits land', async () => {
    const db = tmp.openDb();
    await seed(db);
    const c = openCartridge(db);
    expect(c.info()).toMatchObject({ state: 'building', lastRebuildReason: 'missing' });
    expectExact(db, c); // from the tree
    await c.rebuild(); // joins the running build
    const info = c.info();
    expect(info).toMatchObject({ state: 'valid', why: null, builtAtTxn: db.txnId, lagCommits: 0, entries: 30, rebuilds: 1 });
    expect(Buffer.compare(fs.readFileSync(c.file), Buffer.from(buildCartridgeFromLog(tmp.dbPath()).bytes))).toBe(0);
    const q = openQueue(db, 'work');
    const claimed = await q.claim({ worker: 'w', types: ['build'], max: 4 });
    await q.complete(claimed[0]!);
    await q.fail(claimed[1]!, { error: 'x', retryInMs: 0 });
    await q.enqueue([{ type: 'test', priority: 9 }, { type: 'deploy' }]);
    expectExact(db, c);
    expect(c.count('work', 'deploy')).toBe(1);
    expect(c.info().lagCommits).toBeGreaterThanOrEqual(4);
    expect(c.info().deltaEntries).toBeGreaterThan(0);
    expect(db.cartridges()).toEqual([c.info()]);
    await q.close();
    await c.close();
    expect(db.cartridges()).toEqual([]);
  });

  it('rebuilds after everyCommits commits (and on demand), without a wrong answer in between', async () => {
    const db = tmp.openDb();
    await seed(db);
    const c = openCartridge(db, { everyCommits: 3, sliceKeys: 7 });
    await c.rebuild();
    const q = openQueue(db, 'work');
    for (let i = 0; i < 4; i++) await q.enqueue([{ type: 'build', payload: i }]);
    expectExact(db, c); // this lookup sees 4 commits: it starts a rebuild and still answers from the delta
    expect(c.info().lastRebuildReason).toBe('commits');
    await c.rebuild();
    expect(c.info()).toMatchObject({ state: 'valid', rebuilds: 2, builtAtTxn: db.txnId, lagCommits: 0 });
    expectExact(db, c);
    await c.rebuild('on demand');
    expect(c.info().lastRebuildReason).toBe('on demand');
    await q.close();
    await c.close();
  });

  it('a damaged file or one of another database is not used: the reason shows, answers come from the tree, and it is rebuilt', async () => {
    const db = tmp.openDb();
    await seed(db);
    const c1 = openCartridge(db);
    await c1.rebuild();
    await c1.close();
    const bytes = fs.readFileSync(c1.file);
    bytes[200]! ^= 0x04;
    fs.writeFileSync(c1.file, bytes);
    const c2 = openCartridge(db);
    expect(c2.info().state).toBe('building');
    expect(c2.info().why).toContain('checksum mismatch');
    expect(c2.info().lastRebuildReason).toMatch(/^invalid: .*check 2/);
    expectExact(db, c2);
    await c2.rebuild();
    expect(c2.info().state).toBe('valid');
    await c2.close();

    const other = tmp.openDb({}, 'other');
    await seed(other);
    fs.copyFileSync(c2.file, `${other.path}.pending_tasks_by_type.cartridge`);
    const c3 = openCartridge(other);
    expect(c3.info().why).toMatch(/built from database \d+, this is database \d+/);
    expectExact(other, c3);
    await c3.rebuild();
    expectExact(other, c3);
    await c3.close();
  });

  it('serves a mapped file (native) that another service replaces by rename, unchanged; releases it on swap and close', async () => {
    const db = tmp.openDb();
    await seed(db);
    const a = openCartridge(db);
    await a.rebuild();
    await a.close();
    const served = openCartridge(db);
    expect(served.info()).toMatchObject({ state: 'valid', mapped: implementation === 'native' && process.platform !== 'win32' });
    const q = openQueue(db, 'work');
    await q.claim({ worker: 'w', max: 3 });
    // Another service writes a newer cartridge over the same path (rename): the mapped one keeps its inode.
    const writer = openCartridge(db);
    await writer.rebuild('on demand');
    await writer.close();
    expectExact(db, served);
    await q.enqueue([{ type: 'build', priority: 3 }]);
    await served.rebuild();
    expect(served.info()).toMatchObject({ state: 'valid', builtAtTxn: db.txnId, mapped: implementation === 'native' && process.platform !== 'win32' });
    expectExact(db, served);
    await q.close();
    await served.close();
    expect(served.info()).toMatchObject({ mapped: false, builtAtTxn: null });
  });

  it('never replaces a file at its path that is not a cartridge: stays invalid and answers from the tree', async () => {
    const db = tmp.openDb();
    await seed(db);
    const file = `${tmp.dbPath()}.mine`;
    fs.writeFileSync(file, 'precious');
    const c = openCartridge(db, { file });
    await expect(c.rebuild()).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect(fs.readFileSync(file, 'utf8')).toBe('precious');
    expect(c.info().state).not.toBe('valid');
    expectExact(db, c);
    await c.close();
    await expect(c.rebuild()).rejects.toMatchObject({ code: 'Closed' });
  });
});
