// The commit log as the database uses it (spec/file_format_v1.md §8,
// spec/commit_record_v0.md), through the public API: the commit stream
// (readLog, the 'commit' event), recovery after a crash between the log
// fdatasync and the next checkpoint, torn and damaged logs, time travel over
// retained history, truncateLog, group commit and sync 'none'.
//
// A crash is simulated two ways: a copy of both files taken while the handle
// is open (what a crash leaves: pages written unsynced but present), and a
// child process killed with SIGKILL while it commits, printing each txn id
// once its commit is acknowledged. The child runs this source compiled by tsc
// into a temporary directory, so it tests the same code as the parent.
//
// The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectVerified, useTempDbs } from './testing/fixtures.js';

import { DEFAULT_HISTORY_BYTES, implementation, NorthstarError, open, type Database, type ReadTxn } from './index.js';

/** Timeout for the tests that do real volume or spawn processes. */
const SLOW = 120_000;

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/db.log.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

// ---- the workload: the same code in this process and in the child ----------------

/**
 * `opsFor(seed, txnId)`: the operations of commit `txnId`, as [op, key, value]
 * with string keys and values. Plain JavaScript, so the child can run the same
 * source. The first op is always a put, so every commit changes the tree; dels
 * often name keys that do not exist, puts and dels of one key may follow each
 * other, and now and then a value goes to an overflow chain.
 */
const WORKLOAD_JS = `
function opsFor(seed, txnId) {
  let a = (seed ^ Math.imul(txnId, 0x9e3779b9)) >>> 0;
  const r = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const key = () => 'k' + String(Math.floor(r() * 400)).padStart(4, '0');
  const value = (i) => txnId + '/' + i + ':' + 'v'.repeat(Math.floor(r() * 120));
  const ops = [['put', key(), value(0)]];
  const n = Math.floor(r() * 12);
  for (let i = 1; i <= n; i++) {
    const x = r();
    if (x < 0.55) ops.push(['put', key(), value(i)]);
    else if (x < 0.85) ops.push(['del', key()]);
    else if (x < 0.95) { const k = key(); ops.push(['put', k, value(i)], ['del', k]); }
    else ops.push(['put', 'big' + (txnId % 3), 'B'.repeat(20000 + (txnId % 1000))]);
  }
  return ops;
}`;

type WorkOp = ['put', string, string] | ['del', string];
const opsFor = new Function(`${WORKLOAD_JS}; return opsFor;`)() as (seed: number, txnId: number) => WorkOp[];

/** What the workload should leave: the state after each commit and the ops each one logs. */
class Expected {
  /** models[t]: key → value after commit t (models[0] is empty). */
  readonly models: Map<string, string>[] = [new Map()];
  /** logged[t]: the ops commit t's record holds: every put, and each del of a key that existed then. */
  readonly logged: WorkOp[][] = [[]];

  constructor(private readonly ops: (t: number) => WorkOp[] = (t) => opsFor(seed, t)) {}

  model(t: number): Map<string, string> {
    this.extend(t);
    return this.models[t]!;
  }

  log(t: number): WorkOp[] {
    this.extend(t);
    return this.logged[t]!;
  }

  private extend(t: number): void {
    while (this.models.length <= t) {
      const n = this.models.length;
      const m = new Map(this.models[n - 1]!);
      const logged: WorkOp[] = [];
      for (const op of this.ops(n)) {
        if (op[0] === 'put') {
          m.set(op[1], op[2]);
          logged.push(op);
        } else if (m.delete(op[1])) logged.push(op);
      }
      this.models.push(m);
      this.logged.push(logged);
    }
  }
}

// ---- fixtures ----------------------------------------------------------------

const tmp = useTempDbs('northstar-dblog-');
const { dbPath, logPath, openDb } = tmp;

function expectError(f: () => unknown, code: string): NorthstarError {
  let thrown: unknown;
  try {
    f();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected NorthstarError ${code}`).toBeInstanceOf(NorthstarError);
  expect((thrown as NorthstarError).code, (thrown as Error).message).toBe(code);
  return thrown as NorthstarError;
}

/** Commits the workload's txns from db.txnId + 1 up to `to`, with commit(). */
function commitUpTo(db: Database, to: number, ops = (t: number) => opsFor(seed, t)): void {
  for (let t = db.txnId + 1; t <= to; t++) {
    const w = db.beginWrite();
    for (const op of ops(t)) {
      if (op[0] === 'put') w.put(op[1], op[2]);
      else w.del(op[1]);
    }
    expect(w.commit()).toBe(t);
  }
}

function entriesOf(r: ReadTxn): string[] {
  return [...r.scan()].map(([k, v]) => `${k.toString()}=${v.toString()}`);
}

function modelEntries(m: Map<string, string>): string[] {
  return [...m.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))).map((k) => `${k}=${m.get(k)}`);
}

/** The latest state and every snapshot beginRead({ txnId }) can open equal the expected models. */
function expectStateAndHistory(db: Database, exp: Expected, what: string): void {
  const t = db.txnId;
  const r = db.beginRead();
  expect(entriesOf(r), `${what}: latest (txn ${t})`).toEqual(modelEntries(exp.model(t)));
  r.close();
  const h = db.stats().history;
  const oldest = h.oldestTxnId ?? t;
  expect(h.retained, `${what}: retained history`).toBe(Math.min(h.limit, t + 1));
  for (let s = oldest; s <= t; s++) {
    const rs = db.beginRead({ txnId: s });
    expect(rs.txnId).toBe(s);
    expect(entriesOf(rs), `${what}: snapshot ${s}`).toEqual(modelEntries(exp.model(s)));
    rs.close();
  }
  if (oldest > 0) expectError(() => db.beginRead({ txnId: oldest - 1 }), 'SnapshotNotFound');
}

/** readLog from `from` gives exactly the logged ops of commits from..db.txnId. */
function expectLog(db: Database, exp: Expected, from: number, what: string): void {
  const got = [...db.readLog({ fromTxnId: from })].map((c) => ({
    txnId: c.txnId,
    ops: c.ops.map((o) => (o.type === 'put' ? ['put', o.key.toString(), o.value.toString()] : ['del', o.key.toString()])),
  }));
  const want = Array.from({ length: db.txnId - from + 1 }, (_, i) => ({ txnId: from + i, ops: exp.log(from + i) }));
  expect(got, what).toEqual(want);
}

/** Copies the database and its log into `to` (a crash image when the handle is still open). */
function copyFiles(to: string): void {
  fs.copyFileSync(dbPath(), dbPath(to));
  fs.copyFileSync(logPath(), logPath(to));
}

function flipByte(path: string, at: number, mask = 0x08): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= mask;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

// ==================================================================================

describe('the commit stream', () => {
  it('db.readLog returns every commit’s ops in the writer’s order (a del of a missing key is not logged), from any txn, and the same after reopen', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096, checkpoint: { commits: 9 } });
    commitUpTo(db, 60);
    expect(exp.log(7).length).toBeLessThanOrEqual(opsFor(seed, 7).length);
    const skipped = Array.from({ length: 60 }, (_, i) => opsFor(seed, i + 1).length - exp.log(i + 1).length).reduce((x, y) => x + y);
    expect(skipped, 'the workload deletes missing keys').toBeGreaterThan(0);
    expectLog(db, exp, 1, 'from the start');
    expectLog(db, exp, 37, 'from txn 37');
    expect([...db.readLog({ fromTxnId: 61 })]).toEqual([]);
    // Without fromTxnId: from the oldest record in the log.
    expect([...db.readLog()].map((c) => c.txnId)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const positions = [...db.readLog()].map((c) => c.position);
    for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeGreaterThan(positions[i - 1]!);
    expectVerified(db);
    db.close();
    const db2 = openDb();
    expectLog(db2, exp, 1, 'after reopen');
    expect([...db2.readLog()].map((c) => c.position)).toEqual(positions);
    expectStateAndHistory(db2, exp, 'after reopen');
    expectVerified(db2);
  });

  it('a transaction that changes nothing (no ops, or only dels of missing keys) commits no record and no event; a put and a del of one key are both logged, in order', () => {
    const db = openDb();
    const events: { txnId: number; opCount: number }[] = [];
    db.on('commit', (e: { txnId: number; opCount: number }) => events.push({ txnId: e.txnId, opCount: e.opCount }));
    const w0 = db.beginWrite();
    expect(w0.commit()).toBe(0);
    const w1 = db.beginWrite();
    expect(w1.del('missing')).toBe(false);
    expect(w1.commit()).toBe(0);
    expect(db.stats().logSize).toBe(32);
    const w2 = db.beginWrite();
    w2.put('a', '1');
    w2.put('b', '2');
    expect(w2.del('missing')).toBe(false);
    w2.put('a', '3');
    expect(w2.del('b')).toBe(true);
    w2.put(Buffer.from([0, 255]), Buffer.alloc(0));
    expect(w2.commit()).toBe(1);
    const [c] = [...db.readLog()];
    expect(c!.txnId).toBe(1);
    expect(c!.ops.map((o) => [o.type, o.key.toString('hex'), o.value.toString()])).toEqual([
      ['put', '61', '1'],
      ['put', '62', '2'],
      ['put', '61', '3'],
      ['del', '62', ''],
      ['put', '00ff', ''],
    ]);
    expect(events).toEqual([{ txnId: 1, opCount: 5 }]);
    expectVerified(db);
  });

  it("db.on('commit') fires once per commit, in order, with its txn id, op count and log position; never for aborted, failed or empty transactions", async () => {
    const exp = new Expected();
    const db = openDb({ sync: 'full', checkpoint: { commits: 4 } });
    const events: { txnId: number; opCount: number; position: number; visible: number }[] = [];
    db.on('commit', (e: { txnId: number; opCount: number; position: number }) => events.push({ ...e, visible: db.txnId }));
    commitUpTo(db, 10);
    const aborted = db.beginWrite();
    aborted.put('x', 'y');
    aborted.abort();
    const tooBig = db.beginWrite();
    expectError(() => tooBig.put('x', Buffer.alloc(16 * 1024 * 1024 + 1)), 'InvalidArgument');
    tooBig.abort();
    // commitAsync: events come when the sync lands, still in order.
    const promises: Promise<number>[] = [];
    for (let t = 11; t <= 30; t++) {
      const w = db.beginWrite();
      for (const op of opsFor(seed, t)) {
        if (op[0] === 'put') w.put(op[1], op[2]);
        else w.del(op[1]);
      }
      promises.push(w.commitAsync());
    }
    expect(await Promise.all(promises)).toEqual(Array.from({ length: 20 }, (_, i) => i + 11));
    commitUpTo(db, 33);
    expect(events.map((e) => e.txnId)).toEqual(Array.from({ length: 33 }, (_, i) => i + 1));
    expect(events.map((e) => e.opCount)).toEqual(Array.from({ length: 33 }, (_, i) => exp.log(i + 1).length));
    // A listener sees the commit already published.
    expect(events.every((e) => e.visible === e.txnId)).toBe(true);
    expect(events.map((e) => e.position)).toEqual([...db.readLog()].map((c) => c.position));
    expectVerified(db);
  });
});

describe('recovery after a crash between the log fdatasync and the checkpoint', () => {
  it('a copy of both files taken while the handle is open opens with every commit (replayed from the log), the same history, and verifies', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096, sync: 'full', checkpoint: { commits: 6 }, history: { txns: 20 } });
    for (const upTo of [5, 6, 7, 17, 40]) {
      commitUpTo(db, upTo);
      const name = `crash-${upTo}`;
      copyFiles(name);
      const checkpointed = db.stats().checkpoint.txnId;
      const db2 = openDb({ history: { txns: 20 } }, name);
      expect(db2.txnId, `crash after ${upTo}`).toBe(upTo);
      // Recovery replayed what the checkpoint lacked, then checkpointed it.
      expect(db2.stats().io.writes > 0, `crash after ${upTo}: replayed`).toBe(checkpointed < upTo);
      expect(db2.stats().checkpoint.txnId).toBe(upTo);
      expectStateAndHistory(db2, exp, `crash after ${upTo}`);
      expectLog(db2, exp, 1, `crash after ${upTo}`);
      expectVerified(db2);
      // It keeps working, and reopens cleanly.
      const w = db2.beginWrite();
      w.put('after', 'crash');
      expect(w.commit()).toBe(upTo + 1);
      db2.close();
      const db3 = openDb({}, name);
      expect(db3.txnId).toBe(upTo + 1);
      expect(db3.stats().io.writes).toBe(0);
      db3.close();
    }
    expectVerified(db);
  });

  it('the log cut at every byte inside its last record (a torn append) opens at the previous commit and cuts the log back to a whole record', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096, sync: 'full', checkpoint: { commits: 5 } });
    commitUpTo(db, 7);
    const w = db.beginWrite();
    w.put('last', 'one');
    expect(w.commit()).toBe(8);
    const records = [...db.readLog()];
    const last = records[7]!.position;
    const end = db.stats().logSize; // a new log: positions are file offsets
    expect(db.stats().checkpoint.txnId).toBe(5);
    copyFiles('image');
    const data = fs.readFileSync(dbPath('image'));
    // The records, then zeros the writer preallocated (spec/file_format_v1.md §8.5).
    const log = fs.readFileSync(logPath('image'));
    expect(log.subarray(end).every((x) => x === 0)).toBe(true);
    for (let cut = last; cut <= end; cut++) {
      fs.writeFileSync(dbPath('image'), data);
      fs.writeFileSync(logPath('image'), log.subarray(0, cut));
      const d = open(dbPath('image'), { sync: 'none' });
      try {
        const want = cut === end ? 8 : 7;
        expect(d.txnId, `cut at ${cut}`).toBe(want);
        expect(fs.statSync(logPath('image')).size, `cut at ${cut}`).toBe(cut === end ? end : last);
        const r = d.beginRead();
        const m = new Map(exp.model(7));
        if (want === 8) m.set('last', 'one');
        expect(entriesOf(r), `cut at ${cut}`).toEqual(modelEntries(m));
        r.close();
        if (cut === last + 1 || cut === end - 1 || cut === end) expectVerified(d);
      } finally {
        d.close();
      }
    }
  }, SLOW);

  it('a damaged record in the middle of the log (a flipped byte in record k of n) makes open throw Corrupt naming its position, and changes neither file; in the last record it is a torn tail', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096, sync: 'full' });
    const n = 9;
    commitUpTo(db, n);
    const records = [...db.readLog()];
    const ends = [...records.slice(1).map((c) => c.position), db.stats().logSize];
    copyFiles('image');
    const data = fs.readFileSync(dbPath('image'));
    const log = fs.readFileSync(logPath('image'));
    for (let k = 0; k < n; k++) {
      for (const at of [records[k]!.position + 1, records[k]!.position + 60, ends[k]! - 2]) {
        fs.writeFileSync(dbPath('image'), data);
        fs.writeFileSync(logPath('image'), log);
        flipByte(logPath('image'), at);
        const damagedLog = fs.readFileSync(logPath('image'));
        if (k < n - 1) {
          for (let i = 0; i < 2; i++) {
            const err = expectError(() => open(dbPath('image')), 'Corrupt');
            expect(err.message, `record ${k + 1}, byte ${at}`).toContain(`position ${records[k]!.position}`);
          }
          expect(fs.readFileSync(dbPath('image')).equals(data)).toBe(true);
          expect(fs.readFileSync(logPath('image')).equals(damagedLog)).toBe(true);
          continue;
        }
        const d = open(dbPath('image'), { sync: 'none' });
        try {
          expect(d.txnId).toBe(n - 1);
          expect(fs.statSync(logPath('image')).size).toBe(records[n - 1]!.position);
          const r = d.beginRead();
          expect(entriesOf(r)).toEqual(modelEntries(exp.model(n - 1)));
          r.close();
          expectVerified(d);
        } finally {
          d.close();
        }
      }
    }
    expectVerified(db);
  });

  it('a damaged record the last checkpoint already covers does not stop open (nothing before the checkpoint is replayed)', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096 });
    commitUpTo(db, 6);
    const records = [...db.readLog()];
    expectVerified(db);
    db.close();
    flipByte(logPath(), records[2]!.position + 50);
    const db2 = openDb();
    expect(db2.txnId).toBe(6);
    expect(db2.stats().io.writes).toBe(0);
    expectStateAndHistory(db2, exp, 'damaged covered record');
    expectVerified(db2);
  });

  it('readLog through a damaged record throws Corrupt instead of ending early', () => {
    const db = openDb({ pageSize: 4096 });
    commitUpTo(db, 6);
    const records = [...db.readLog()];
    db.close();
    flipByte(logPath(), records[2]!.position + 50);
    const db2 = openDb();
    let got: number[] | null = null;
    try {
      got = [...db2.readLog({ fromTxnId: 5 })].map((c) => c.txnId);
    } catch (err) {
      expect((err as NorthstarError).code).toBe('Corrupt');
    }
    // Either the commits asked for, or Corrupt; never fewer, silently.
    if (got !== null) expect(got).toEqual([5, 6]);
    expectError(() => [...db2.readLog()], 'Corrupt');
  });
});

// ---- a child process killed while it commits --------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let childDir: string;

beforeAll(() => {
  // This source, compiled for the child (no type check needed: vitest already runs it).
  childDir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-child-'));
  const tsc = spawnSync(
    process.execPath,
    [nodePath.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', nodePath.join(ROOT, 'tsconfig.json'), '--outDir', nodePath.join(childDir, 'dist'), '--declaration', 'false', '--sourceMap', 'false'],
    { encoding: 'utf8' },
  );
  if (!fs.existsSync(nodePath.join(childDir, 'dist', 'index.js'))) throw new Error(`tsc produced no dist/index.js: ${tsc.stdout}${tsc.stderr}`);
  // dist/native/loader.js finds the addon two levels up, as in the package.
  fs.symlinkSync(nodePath.join(ROOT, 'crates'), nodePath.join(childDir, 'crates'));
  fs.symlinkSync(nodePath.join(ROOT, 'node_modules'), nodePath.join(childDir, 'node_modules'));
  fs.copyFileSync(nodePath.join(ROOT, 'package.json'), nodePath.join(childDir, 'package.json')); // type: module, and the version the native loader checks the addon against
  fs.writeFileSync(
    nodePath.join(childDir, 'child.mjs'),
    `import { open, implementation } from './dist/index.js';
const [path, mode, seedArg, limitArg] = process.argv.slice(2);
const seed = Number(seedArg);
const limit = Number(limitArg);
${WORKLOAD_JS}
const db = open(path, { sync: 'full', checkpoint: { commits: 7 }, history: { txns: 40 } });
process.stdout.write('open ' + db.txnId + ' ' + implementation + '\\n');
const apply = (w, t) => { for (const [op, k, v] of opsFor(seed, t)) { if (op === 'put') w.put(k, v); else w.del(k); } };
let t = db.txnId + 1;
if (mode === 'commit') {
  for (; t <= limit; t++) {
    const w = db.beginWrite();
    apply(w, t);
    const id = w.commit();
    if (id !== t) throw new Error('committed ' + id + ', expected ' + t);
    process.stdout.write('ack ' + id + '\\n');
  }
} else {
  while (t <= limit) {
    const batch = [];
    for (let n = 1 + (t % 13); n > 0 && t <= limit; n--, t++) {
      const w = db.beginWrite();
      apply(w, t);
      const want = t;
      batch.push(w.commitAsync().then((id) => {
        if (id !== want) throw new Error('committed ' + id + ', expected ' + want);
        process.stdout.write('ack ' + id + '\\n');
      }));
    }
    await Promise.all(batch);
  }
}
process.stdout.write('done\\n');
`,
  );
});

afterAll(() => {
  if (childDir) fs.rmSync(childDir, { recursive: true, force: true });
});

/** Runs the child on dbPath() until it has acknowledged `killAfter` commits, then SIGKILLs it. */
function runChild(mode: 'commit' | 'commitAsync', killAfter: number, limit: number): Promise<{ opened: number; acked: number[]; killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [nodePath.join(childDir, 'child.mjs'), dbPath(), mode, String(seed), String(limit)], {
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    let opened = -1;
    const acked: number[] = [];
    let killed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const [word, n, impl] = line.split(' ');
        if (word === 'open') {
          opened = Number(n);
          if (impl !== implementation) reject(new Error(`child runs ${impl} kernels, this project ${implementation}`));
        } else if (word === 'ack') acked.push(Number(n));
      }
      if (!killed && acked.length >= killAfter) {
        killed = child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited with ${code}: ${stderr}`));
      else resolve({ opened, acked, killed: signal === 'SIGKILL', stderr });
    });
  });
}

describe('a process killed with SIGKILL while it commits', () => {
  it.each(['commit', 'commitAsync'] as const)(
    'every kill (with %s) leaves exactly a prefix of the commits that contains every acknowledged one; history and the log recover with it',
    async (mode) => {
      const exp = new Expected();
      const rounds = 5;
      let previous = 0;
      const r = (salt: number): number => ((seed ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0) % 1000;
      for (let round = 0; round < rounds; round++) {
        const { opened, acked, killed } = await runChild(mode, 15 + (r(round) % 60), previous + 5000);
        expect(killed, 'the child was killed before it finished').toBe(true);
        // The child recovered the previous crash to exactly what this process saw in its copy.
        expect(opened, `round ${round}: the child opened at`).toBe(previous);
        expect(acked.length).toBeGreaterThan(0);
        // Each commit acknowledged once, in commit order, all of them after the recovered start.
        for (let i = 1; i < acked.length; i++) expect(acked[i]).toBe(acked[i - 1]! + 1);
        expect(Math.min(...acked)).toBeGreaterThan(previous);
        const lastAck = Math.max(...acked);
        // Check a copy of the crash image, and leave the original for the next child to recover.
        const name = `image-${round}`;
        copyFiles(name);
        const db = openDb({ history: { txns: 40 } }, name);
        const recovered = db.txnId;
        console.log(`${mode} round ${round}: opened at ${opened}, last acknowledged ${lastAck}, recovered ${recovered}`);
        expect(recovered, `round ${round}: recovered txn against the last acknowledged`).toBeGreaterThanOrEqual(lastAck);
        expectStateAndHistory(db, exp, `round ${round}`);
        expectLog(db, exp, Math.max(1, previous - 10), `round ${round}`);
        expectVerified(db);
        db.close();
        previous = recovered;
      }
      // The original, recovered by this process this time.
      const db = openDb({ history: { txns: 40 } });
      expect(db.txnId).toBe(previous);
      expectStateAndHistory(db, exp, 'the original');
      expectLog(db, exp, 1, 'the original');
      expectVerified(db);
    },
    SLOW,
  );
});

// ---- time travel ---------------------------------------------------------------------

describe('time travel', () => {
  it('beginRead({ txnId }) of every retained commit equals the model at that commit, across checkpoints and after reopen; older than history is SnapshotNotFound', () => {
    const exp = new Expected();
    const history = { txns: 25 };
    const db = openDb({ pageSize: 4096, history, checkpoint: { commits: 7 } });
    commitUpTo(db, 10);
    expectStateAndHistory(db, exp, 'after 10');
    expect(db.stats().history.oldestTxnId).toBe(0);
    commitUpTo(db, 60);
    expect(db.stats().history.oldestTxnId).toBe(36);
    // Readers of old snapshots stay correct while commits continue.
    const old = db.beginRead({ txnId: 40 });
    commitUpTo(db, 64);
    expect(entriesOf(old)).toEqual(modelEntries(exp.model(40)));
    old.close();
    expectStateAndHistory(db, exp, 'after 64');
    for (const t of [0, 1, 39, 65, 1000]) expectError(() => db.beginRead({ txnId: t }), 'SnapshotNotFound');
    expectVerified(db);
    db.close();
    const db2 = openDb({ history });
    expectStateAndHistory(db2, exp, 'after reopen');
    expectVerified(db2);
    db2.close();
    // A smaller history at open keeps only the latest of what the file retains.
    const db3 = openDb({ history: { txns: 5 } });
    expect(db3.stats().history).toEqual({ retained: 5, oldestTxnId: 60, limit: 5, bytesLimit: DEFAULT_HISTORY_BYTES });
    expectStateAndHistory(db3, exp, 'reopened with history 5');
    expectVerified(db3);
  });

  it('history: { txns: 0 } keeps no snapshot but the latest', () => {
    const db = openDb({ history: { txns: 0 } });
    commitUpTo(db, 5);
    expectError(() => db.beginRead({ txnId: 4 }), 'SnapshotNotFound');
    const r = db.beginRead({ txnId: 5 });
    expect(entriesOf(r)).toEqual(modelEntries(new Expected().model(5)));
    r.close();
    expectVerified(db);
  });
});

describe('truncateLog', () => {
  it('truncateLog({ beforeTxnId }) drops older records: time travel and readLog before it give SnapshotNotFound, after it still work, also after reopen; past the last checkpoint is InvalidArgument', () => {
    const exp = new Expected();
    const db = openDb({ pageSize: 4096 });
    commitUpTo(db, 20);
    db.checkpoint();
    commitUpTo(db, 30);
    expect(db.stats().checkpoint.txnId).toBe(20);
    const logSize = db.stats().logSize;
    for (const bad of [22, 31, -1, 1.5, Number.NaN, '5' as never]) expectError(() => db.truncateLog({ beforeTxnId: bad }), 'InvalidArgument');
    expectError(() => db.truncateLog(undefined as never), 'InvalidArgument');
    expect(db.stats().logSize).toBe(logSize);
    db.truncateLog({ beforeTxnId: 15 });
    expect(db.stats().logSize).toBeLessThan(logSize);
    const check = (d: Database, what: string): void => {
      expectError(() => [...d.readLog({ fromTxnId: 14 })], 'SnapshotNotFound');
      expectError(() => [...d.readLog({ fromTxnId: 1 })], 'SnapshotNotFound');
      expect([...d.readLog()].map((c) => c.txnId)[0], what).toBe(15);
      expectLog(d, exp, 15, what);
      for (const t of [0, 1, 14]) expectError(() => d.beginRead({ txnId: t }), 'SnapshotNotFound');
      for (const t of [15, 21, 30]) {
        const r = d.beginRead({ txnId: t });
        expect(entriesOf(r), `${what}: snapshot ${t}`).toEqual(modelEntries(exp.model(t)));
        r.close();
      }
    };
    check(db, 'after truncateLog');
    // Up to the checkpoint itself (the record after it stays).
    db.truncateLog({ beforeTxnId: 21 });
    expect([...db.readLog()].map((c) => c.txnId)[0]).toBe(21);
    expectError(() => db.beginRead({ txnId: 20 }), 'SnapshotNotFound');
    expectLog(db, exp, 21, 'after truncating to the checkpoint');
    commitUpTo(db, 32);
    expectVerified(db);
    db.close();
    const db2 = openDb();
    expect(db2.txnId).toBe(32);
    expectError(() => db2.beginRead({ txnId: 20 }), 'SnapshotNotFound');
    expectError(() => [...db2.readLog({ fromTxnId: 20 })], 'SnapshotNotFound');
    expectLog(db2, exp, 21, 'after reopen');
    expectVerified(db2);
  });

  // KNOWN ENGINE BUG (reported): truncateLog drops snapshots from the in-memory history only; close()
  // writes no checkpoint when no commit followed, so the history chain of the last checkpoint brings
  // them back at reopen. Remove `.fails` once fixed.
  it('a truncateLog with no commit after it still hides the dropped snapshots after reopen', () => {
    const db = openDb({ pageSize: 4096 });
    commitUpTo(db, 12);
    db.checkpoint();
    db.truncateLog({ beforeTxnId: 10 });
    expectError(() => db.beginRead({ txnId: 9 }), 'SnapshotNotFound');
    db.close();
    const db2 = openDb();
    expectError(() => [...db2.readLog({ fromTxnId: 9 })], 'SnapshotNotFound');
    expectError(() => db2.beginRead({ txnId: 9 }), 'SnapshotNotFound');
    expectVerified(db2);
  });
});

describe('group commit and sync modes', () => {
  it('1000 commitAsync() calls issued back to back all resolve in order, share at most 100 log fdatasyncs, and each resolved commit is visible', async () => {
    // No automatic checkpoint in between: it would sync the log itself.
    const db = openDb({ sync: 'full', checkpoint: { commits: 100_000 } });
    const before = db.stats().logIo.fdatasyncs;
    const n = 1000;
    const resolved: number[] = [];
    const problems: string[] = [];
    const promises: Promise<number>[] = [];
    for (let i = 1; i <= n; i++) {
      const w = db.beginWrite();
      w.put(`key${String(i).padStart(4, '0')}`, `value ${i}`);
      promises.push(
        w.commitAsync().then((id) => {
          resolved.push(id);
          if (db.txnId < id) problems.push(`txn ${id} resolved while readers see ${db.txnId}`);
          const r = db.beginRead();
          if (r.get(`key${String(id).padStart(4, '0')}`)?.toString() !== `value ${id}`) problems.push(`txn ${id} not visible`);
          r.close();
          return id;
        }),
      );
    }
    // Nothing is durable yet, so nothing is visible yet.
    expect(db.txnId).toBe(0);
    expect(db.beginRead().get('key0001')).toBeUndefined();
    expect(await Promise.all(promises)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(resolved).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(problems).toEqual([]);
    const syncs = db.stats().logIo.fdatasyncs - before;
    console.log(`1000 commitAsync: ${syncs} log fdatasyncs`);
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThanOrEqual(100);
    expect(db.txnId).toBe(n);
    expect([...db.readLog()].length).toBe(n);
    expectVerified(db);
    db.close();
    const db2 = openDb();
    expect(db2.txnId).toBe(n);
    expect(db2.stats().entries).toBe(n);
    expectVerified(db2);
  });

  // An automatic checkpoint among them syncs the log itself: the commit that triggered it is durable
  // at once, yet must not resolve before earlier commits still waiting for the fdatasync in flight.
  it('commitAsync promises resolve in commit order when an automatic checkpoint runs among them', async () => {
    const db = openDb({ sync: 'full', checkpoint: { commits: 7 } });
    const order: number[] = [];
    const promises: Promise<number>[] = [];
    for (let i = 1; i <= 20; i++) {
      const w = db.beginWrite();
      w.put(`k${i}`, 'v');
      promises.push(w.commitAsync().then((id) => (order.push(id), id)));
    }
    await Promise.all(promises);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("sync 'full' does one log fdatasync per commit() and none of the data file until a checkpoint", () => {
    const db = openDb({ sync: 'full', checkpoint: { commits: 100_000 } });
    commitUpTo(db, 20);
    expect(db.stats().logIo.fdatasyncs).toBe(20);
    expect(db.stats().io.fdatasyncs).toBe(0);
    db.checkpoint();
    expect(db.stats().io.fdatasyncs).toBe(2);
    expectVerified(db);
  });

  it("sync 'none' does no fdatasync at all: commits, commitAsync, automatic and explicit checkpoints", async () => {
    const exp = new Expected();
    const db = openDb({ sync: 'none', checkpoint: { commits: 3 } });
    commitUpTo(db, 10);
    const w = db.beginWrite();
    w.put('async', '1');
    const p = w.commitAsync();
    expect(db.txnId, "sync 'none': visible at once").toBe(11);
    expect(await p).toBe(11);
    db.checkpoint();
    expect(db.stats().checkpoint.txnId).toBe(11);
    expectVerified(db);
    expect(db.stats().logIo.fdatasyncs).toBe(0);
    expect(db.stats().io.fdatasyncs).toBe(0);
    db.close();
    const db2 = openDb();
    expect(db2.txnId).toBe(11);
    const m = new Map(exp.model(10));
    m.set('async', '1');
    const r = db2.beginRead();
    expect(entriesOf(r)).toEqual(modelEntries(m));
    r.close();
    expectVerified(db2);
  });
});

describe('a log aligned to sectors (sectorSize, spec/file_format_v1.md §8.4)', () => {
  it('starts every append on a 4 KiB file offset; recovery, time travel, readLog, replay and truncateLog work across the gaps; a torn append after a gap is cut off', async () => {
    const { LogFile } = await import('./log/file.js');
    const { LOG_HEADER_SIZE } = await import('./format/constants.js');
    const { kernels } = await import('./native/kernels.js');
    const { replay } = await import('./log/replay.js');
    expectError(() => open(dbPath('bad'), { sectorSize: 1000 }), 'InvalidArgument');
    const exp = new Expected();
    const db = openDb({ sectorSize: 4096, sync: 'full', checkpoint: { commits: 1000 } });
    commitUpTo(db, 12);
    const w = db.beginWrite();
    for (const op of opsFor(seed, 13)) {
      if (op[0] === 'put') w.put(op[1], op[2]);
      else w.del(op[1]);
    }
    expect(await w.commitAsync()).toBe(13);
    const log = LogFile.open(logPath(), null, kernels);
    expect(log.sectorSize).toBe(4096);
    const positions: number[] = [];
    const it = log.scan(log.base);
    for (let s = it.next(); !s.done; s = it.next()) positions.push(s.value.position);
    const base = log.base;
    log.close();
    expect(positions).toHaveLength(13);
    for (const p of positions) expect((p - base + LOG_HEADER_SIZE) % 4096, `file offset of the record at ${p}`).toBe(0);
    // A crash image with a torn append (garbage after the last gap) recovers to txn 13.
    copyFiles('crash');
    const size = db.stats().logSize;
    fs.truncateSync(logPath('crash'), size); // the records, without the preallocated zeros
    fs.appendFileSync(logPath('crash'), Buffer.concat([Buffer.alloc(4096 - (size % 4096)), Buffer.from('RGOL-torn-record')]));
    const crashed = tmp.track(open(dbPath('crash'), { sync: 'none' }));
    expect(crashed.txnId).toBe(13);
    expect(fs.statSync(logPath('crash')).size).toBe(size);
    expectStateAndHistory(crashed, exp, 'aligned crash image');
    crashed.close();
    expect(replay(dbPath()).txnId).toBe(13);
    expectLog(db, exp, 1, 'aligned readLog');
    db.checkpoint();
    db.truncateLog({ beforeTxnId: 5 });
    commitUpTo(db, 20);
    expectLog(db, exp, 5, 'after truncateLog');
    db.close();
    const db2 = openDb();
    expect(db2.txnId).toBe(20);
    for (const t of [5, 13, 20]) {
      const r = db2.beginRead({ txnId: t });
      expect(entriesOf(r), `aligned reopen: snapshot ${t}`).toEqual(modelEntries(exp.model(t)));
      r.close();
    }
    expectVerified(db2);
  });
});
