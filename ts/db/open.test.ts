// Creating and opening (ts/db/open.ts, spec/file_format_v1.md §8.6): no path
// removes or overwrites a file the user may need. A missing data file beside
// a complete log is rebuilt from the log; anything else that is not a
// NorthstarDB database is refused with UnsupportedFormat or Corrupt, and
// nothing in its directory changes. openAsync waits without blocking.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NorthstarError, open, openAsync, type Database } from '../index.js';
import { W_BOOT } from '../shared/layout.js';
import { openStore } from '../shared/store.js';
import { expectCode, expectVerified, useTempDbs } from '../testing/fixtures.js';

const tmp = useTempDbs('northstar-open-');

const SEED = Number(process.env.NORTHSTAR_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`ts/db/open.test.ts: NORTHSTAR_SEED=${SEED}`);

/** Every file under `dir` with its bytes: what "nothing changed" is checked against. */
function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = nodePath.join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${p}/`, 'dir');
        walk(p);
      } else out.set(p, fs.readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

function fill(db: Database, commits: number): void {
  for (let i = 0; i < commits; i++) {
    const w = db.beginWrite();
    w.put(`k${String(i).padStart(4, '0')}`, `v${i}`);
    if (i % 10 === 9) w.del(`k${String(i - 5).padStart(4, '0')}`);
    w.commit();
  }
}

function entries(db: Database): Array<[string, string]> {
  const r = db.beginRead();
  try {
    return [...r.scan()].map(([k, v]) => [k.toString(), v.toString()]);
  } finally {
    r.close();
  }
}

/** Opening `path` fails with one of `codes` and changes nothing in the directory. */
function expectRefused(path: string, codes: string[]): NorthstarError {
  const before = snapshotDir(tmp.dir);
  let thrown: unknown = null;
  try {
    open(path).close();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `open(${path}) should have been refused`).toBeInstanceOf(NorthstarError);
  expect(codes, String(thrown)).toContain((thrown as NorthstarError).code);
  expect(snapshotDir(tmp.dir)).toEqual(before);
  return thrown as NorthstarError;
}

describe('a missing data file (spec/file_format_v1.md §8.6)', () => {
  it('is rebuilt from a complete log: 100 commits, the data file removed by mistake, open() again has every commit and the log is untouched', () => {
    const db = open(tmp.dbPath(), { sync: 'full', checkpoint: { commits: 7 } });
    fill(db, 100);
    const want = entries(db);
    db.close();
    const log = fs.readFileSync(tmp.logPath());
    fs.rmSync(tmp.dbPath());
    const again = tmp.track(open(tmp.dbPath()));
    expect(again.txnId).toBe(100);
    expect(entries(again)).toEqual(want);
    expect(fs.readFileSync(tmp.logPath()).subarray(0, log.length)).toEqual(log);
    // Time travel and the log survive as they were.
    const r = again.beginRead({ txnId: 50 });
    expect(r.get('k0049')?.toString()).toBe('v49');
    r.close();
    expect([...again.readLog()].length).toBe(100);
    expectVerified(again);
  });

  it('beside a log truncateLog() shortened is refused with Corrupt, and both stay as they are', () => {
    const db = open(tmp.dbPath(), { sync: 'none' });
    fill(db, 20);
    db.checkpoint();
    db.truncateLog({ beforeTxnId: 10 });
    db.close();
    fs.rmSync(tmp.dbPath());
    const err = expectRefused(tmp.dbPath(), ['Corrupt']);
    expect(err.message).toContain('truncateLog');
    expect(fs.existsSync(tmp.dbPath())).toBe(false);
  });

  it('beside a file that is not a NorthstarDB log is refused, and that file is left alone', () => {
    fs.writeFileSync(tmp.logPath(), 'my notes, not a commit log\n');
    expectRefused(tmp.dbPath(), ['Corrupt', 'UnsupportedFormat']);
    fs.writeFileSync(tmp.logPath(), '');
    expectRefused(tmp.dbPath(), ['Corrupt', 'UnsupportedFormat']);
    fs.rmSync(tmp.logPath());
    fs.mkdirSync(tmp.logPath());
    expectRefused(tmp.dbPath(), ['Corrupt', 'UnsupportedFormat']);
  });
});

describe('open() on files that are not NorthstarDB files refuses, changing nothing', () => {
  it('an empty file, a directory, a file of zeros', () => {
    fs.writeFileSync(tmp.dbPath('empty'), '');
    expectRefused(tmp.dbPath('empty'), ['Corrupt', 'UnsupportedFormat']);
    fs.mkdirSync(tmp.dbPath('dir'));
    expectRefused(tmp.dbPath('dir'), ['UnsupportedFormat']);
    fs.writeFileSync(tmp.dbPath('zeros'), new Uint8Array(64 * 1024));
    expectRefused(tmp.dbPath('zeros'), ['Corrupt', 'UnsupportedFormat']);
  });

  it('files of random content and length (fast-check, seed printed), with and without a log beside them', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 70_000 }), fc.boolean(), (bytes, withLog) => {
        const path = tmp.dbPath(`random${n++}`);
        fs.writeFileSync(path, bytes);
        if (withLog) fs.writeFileSync(`${path}.log`, bytes.subarray(0, 100));
        expectRefused(path, ['Corrupt', 'UnsupportedFormat']);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('a random file that starts like a NorthstarDB meta page is still refused (checksums)', () => {
    const good = tmp.openDb({ pageSize: 4096 }, 'good');
    good.close();
    const image = fs.readFileSync(tmp.dbPath('good'));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8191 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Buffer.from(image);
        bad[at]! ^= x;
        bad[(at + 4096) % 8192]! ^= x;
        const path = tmp.dbPath('flipped');
        fs.rmSync(path, { force: true });
        fs.writeFileSync(path, bad);
        fs.copyFileSync(tmp.logPath('good'), `${path}.log`);
        // Both metas damaged: nothing to open from.
        expectRefused(path, ['Corrupt', 'UnsupportedFormat']);
        fs.rmSync(`${path}.log`);
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it("a file of another database engine (lmdb-js's data.mdb)", async () => {
    const { open: openLmdb } = await import('lmdb');
    const dir = nodePath.join(tmp.dir, 'lmdb');
    const env = openLmdb({ path: dir });
    for (let i = 0; i < 100; i++) await env.put(`key${i}`, { value: i });
    await env.close();
    const mdb = fs.readdirSync(dir).find((f) => f.endsWith('.mdb') && !f.includes('lock'));
    expect(mdb, fs.readdirSync(dir).join(', ')).toBeDefined();
    expectRefused(nodePath.join(dir, mdb!), ['Corrupt', 'UnsupportedFormat']);
  });
});

describe('openAsync', () => {
  it('opens like open(), and waits without blocking while another holds the writer lock it needs to recover', async () => {
    const db = await openAsync(tmp.dbPath(), { sync: 'none' });
    fill(db, 3);
    db.close();
    // A stand-in for a handle that is recovering: the writer lock held through the raw lock file.
    const words = openStore(tmp.dbPath(), null);
    expect(words.tryLockWriter()).toBe(true);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      let opened: Database | null = null;
      const p = openAsync(tmp.dbPath(), { sync: 'none' }).then((d) => (opened = tmp.track(d)));
      const seen = ticks;
      while (ticks < seen + 20) await new Promise((resolve) => setTimeout(resolve, 1));
      expect(opened).toBeNull();
      words.unlockWriter();
      const again = await p;
      expect(again.txnId).toBe(3);
    } finally {
      clearInterval(timer);
      words.close();
    }
  });

  it('also waits, without blocking, for the writer lock it needs to reset a lock file of an earlier boot', async () => {
    tmp.openDb().close();
    const words = openStore(tmp.dbPath(), null);
    words.store(W_BOOT, words.load(W_BOOT) + 1);
    expect(words.tryLockWriter()).toBe(true);
    try {
      let opened = false;
      const p = openAsync(tmp.dbPath()).then((d) => {
        opened = true;
        return tmp.track(d);
      });
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(opened).toBe(false);
      words.unlockWriter();
      expect((await p).txnId).toBe(0);
    } finally {
      words.close();
    }
  });

  it('gives up with WriteBusy after timeoutMs and Aborted on its signal, leaving nothing open', async () => {
    tmp.openDb().close();
    const words = openStore(tmp.dbPath(), null);
    expect(words.tryLockWriter()).toBe(true);
    try {
      await expect(openAsync(tmp.dbPath(), { timeoutMs: 30 })).rejects.toMatchObject({ code: 'WriteBusy' });
      const ac = new AbortController();
      const p = openAsync(tmp.dbPath(), { signal: ac.signal });
      setTimeout(() => ac.abort(), 20);
      await expect(p).rejects.toMatchObject({ code: 'Aborted' });
    } finally {
      words.unlockWriter();
      words.close();
    }
    // Every slot the attempts claimed was given back: a handle opens alone and recovers.
    const db = tmp.track(open(tmp.dbPath()));
    expect(db.stats().readers.others).toEqual([]);
  });

  it('bad arguments are InvalidArgument', async () => {
    await expect(openAsync('')).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(openAsync(tmp.dbPath(), { timeoutMs: -1 })).rejects.toMatchObject({ code: 'InvalidArgument' });
    expectCode(() => open(tmp.dbPath(), { pageSize: 3 }), 'InvalidArgument');
  });
});
