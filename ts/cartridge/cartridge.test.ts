// Cartridges (spec/cartridge_v1.md): the constants against the spec's tables,
// the header fields at the offsets the spec gives, exactness and determinism
// (a property test: at random txns of a random queue history, the build from
// the log alone is byte-identical to the encoding of the snapshot's ready keys,
// and its lookups answer what a scan of that snapshot answers), every damage
// refused, and the atomic, non-destructive file write. Runs on both kernel
// implementations (the checksum is a kernel).

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { open, type Database } from '../index.js';
import { kernels } from '../native/kernels.js';
import { openQueue } from '../queue/index.js';
import { QUEUE_KEY_PREFIX } from '../queue/keys.js';
import { expectCode, useTempDbs } from '../testing/fixtures.js';
import { parseTables, readSpec, tablesWithHeader } from '../testing/spec_tables.js';
import { buildCartridgeFromLog, cartridgeGroupsOf } from './build.js';
import { liveFromLog } from './delta.js';
import { readCartridgeFile, writeCartridgeFile } from './file.js';
import * as format from './format.js';

const { Cartridge, encodeCartridge } = format;
const tables = parseTables(readSpec('cartridge_v1.md'));
const tmp = useTempDbs('northstar-cartridge-');

describe('spec/cartridge_v1.md', () => {
  it('§2 constants have the values the code uses', () => {
    const [t] = tablesWithHeader(tables, 'constant', 'value');
    const code = format as unknown as Record<string, number>;
    expect(t!.rows.length).toBe(8);
    for (const r of t!.rows) {
      const name = /^`(\w+)`$/.exec(r.cells[0]!)![1]!;
      expect(code[name], `${name} (line ${r.line})`).toBe(Number(r.cells[1]!.replace(/`/g, '')));
    }
    expect(Buffer.from('NSCT').readUInt32LE(0)).toBe(format.CARTRIDGE_MAGIC);
  });

  it('§2 header fields lie at the offsets and sizes the spec gives', () => {
    const [t] = tablesWithHeader(tables, 'offset', 'size', 'field', 'meaning');
    const byField: Record<string, [number, number]> = {
      magic: [format.H_MAGIC, 4],
      version: [format.H_VERSION, 2],
      type: [format.H_TYPE, 2],
      dbId: [format.H_DB_ID, 8],
      txnId: [format.H_TXN_ID, 8],
      logEnd: [format.H_LOG_END, 8],
      queueLayout: [format.H_QUEUE_LAYOUT, 4],
      groupCount: [format.H_GROUP_COUNT, 4],
      entryCount: [format.H_ENTRY_COUNT, 8],
      groupsOffset: [format.H_GROUPS_OFFSET, 8],
      entriesOffset: [format.H_ENTRIES_OFFSET, 8],
      namesOffset: [format.H_NAMES_OFFSET, 8],
      fileLength: [format.H_FILE_LENGTH, 8],
      reserved: [80, 40],
      headerEnd: [format.H_HEADER_END, 8],
    };
    expect(t!.rows.length).toBe(Object.keys(byField).length);
    for (const r of t!.rows) expect([Number(r.cells[0]), Number(r.cells[1])], `${r.cells[2]} (line ${r.line})`).toEqual(byField[r.cells[2]!]);
    // And the bytes: a known header read back at those offsets.
    const bytes = encodeCartridge({ dbId: 0x0102030405, txnId: 77, logEnd: 9999, groups: [{ queue: Buffer.from('q'), type: Buffer.from('t'), entries: [{ rank: 5, readyAt: 6, id: 7 }] }] });
    const v = Buffer.from(bytes);
    expect(v.readUInt32LE(format.H_MAGIC)).toBe(format.CARTRIDGE_MAGIC);
    expect(v.readUInt16LE(format.H_VERSION)).toBe(1);
    expect(Number(v.readBigUInt64LE(format.H_DB_ID))).toBe(0x0102030405);
    expect(Number(v.readBigUInt64LE(format.H_TXN_ID))).toBe(77);
    expect(Number(v.readBigUInt64LE(format.H_LOG_END))).toBe(9999);
    expect(Number(v.readBigUInt64LE(format.H_FILE_LENGTH))).toBe(bytes.length);
    expect(v.readUInt32LE(bytes.length - 4)).toBe(kernels.crc32c(bytes.subarray(0, bytes.length - 4)));
    const entry = Number(v.readBigUInt64LE(format.H_ENTRIES_OFFSET));
    expect([v.readUInt32LE(entry), Number(v.readBigUInt64LE(entry + 8)), Number(v.readBigUInt64LE(entry + 16))]).toEqual([5, 6, 7]);
  });
});

/**
 * The oracle, written apart from the builder: each queue's ready index read
 * in key order (which is claim order) from a snapshot, by the queue's own
 * prefix, as (queue, type, ids), skipping nothing.
 */
function scanReady(db: Database, txnId: number): { queue: string; type: string; ids: number[] }[] {
  const r = db.beginRead({ txnId });
  try {
    const out: { queue: string; type: string; ids: number[] }[] = [];
    for (const queue of ['other', 'work']) {
      const prefix = Buffer.concat([QUEUE_KEY_PREFIX, Buffer.from(queue), Buffer.from([0, 0x52])]);
      for (const [k] of r.scan({ prefix })) {
        const key = Buffer.from(k);
        const type = key.subarray(prefix.length, key.length - 21).toString();
        const id = Number(key.readBigUInt64BE(key.length - 8));
        const last = out[out.length - 1];
        if (last?.queue === queue && last.type === type) last.ids.push(id);
        else out.push({ queue, type, ids: [id] });
      }
    }
    return out;
  } finally {
    r.close();
  }
}

describe('building from the log', () => {
  it('property: at every sampled txn of a random queue history, the build from the log is byte-identical to the snapshot\'s and answers what a scan answers; so does one brought up to date by the commits since, which folds into the same bytes', async () => {
    const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
    console.log(`ts/cartridge/cartridge.test.ts: NORTHSTAR_SEED=${seed}`);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('enqueue' as const), queue: fc.constantFrom('work', 'other'), type: fc.constantFrom('build', 'test', 'deploy', 'ü'), priority: fc.integer({ min: -3, max: 3 }), delay: fc.constantFrom(0, 0, 0, 60_000), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('claim' as const), queue: fc.constantFrom('work', 'other'), max: fc.integer({ min: 1, max: 3 }), then: fc.constantFrom('complete', 'fail', 'keep', 'cancel') }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const dir = fs.mkdtempSync(nodePath.join(tmp.dir, 'p-'));
        const path = nodePath.join(dir, 'q.ndb');
        const db = open(path, { sync: 'none', history: { txns: 10_000 } });
        const queues = { work: openQueue(db, 'work'), other: openQueue(db, 'other') };
        try {
          for (const o of ops) {
            const q = queues[o.queue];
            if (o.kind === 'enqueue') {
              await q.enqueue(Array.from({ length: o.n }, (_, i) => ({ type: o.type, payload: i, priority: o.priority, delayMs: o.delay })));
            } else {
              const got = await q.claim({ worker: 'w', max: o.max });
              for (const t of got) {
                if (o.then === 'complete') await q.complete(t);
                else if (o.then === 'fail') await q.fail(t, { error: 'x', retryInMs: 0 });
                else if (o.then === 'cancel') await q.cancel(t.id);
              }
            }
          }
          const last = db.txnId;
          for (const at of new Set([0, 1, Math.floor(last / 2), last].filter((t) => t <= last))) {
            const built = buildCartridgeFromLog(path, { at });
            const fromSnapshot = (() => {
              const r = db.beginRead({ txnId: at });
              try {
                const keys: Uint8Array[] = [];
                for (const [k] of r.scan({ prefix: QUEUE_KEY_PREFIX })) keys.push(Buffer.from(k));
                return encodeCartridge({ dbId: built.dbId, txnId: at, logEnd: built.logEnd, groups: cartridgeGroupsOf(keys) });
              } finally {
                r.close();
              }
            })();
            expect(Buffer.compare(Buffer.from(built.bytes), Buffer.from(fromSnapshot))).toBe(0);
            const c = Cartridge.decode(built.bytes);
            expect(c.header.txnId).toBe(at);
            const scanned = scanReady(db, at);
            expect(c.groups().map((g) => ({ queue: g.queue, type: g.type, ids: c.entries(g.queue, g.type).map((e) => e.id) }))).toEqual(scanned);
            for (const s of scanned) expect(c.count(s.queue, s.type)).toBe(s.ids.length);
            expect(c.count('work', 'no-such-type')).toBe(0);
          }
          // Incremental: from a cartridge at t1, the commits up to t2 applied as a delta answer
          // what the snapshot at t2 does, and fold into the very bytes of a full build at t2.
          for (const [t1, t2] of [[0, last], [Math.floor(last / 3), last], [Math.floor(last / 2), Math.floor(last / 2) + 1]] as const) {
            if (t2 > last) continue;
            const live = liveFromLog(Cartridge.decode(buildCartridgeFromLog(path, { at: t1 }).bytes), path, t2);
            expect(live.txnId).toBe(t2);
            const scanned = scanReady(db, t2);
            for (const s of scanned) {
              expect(live.entries(s.queue, s.type).map((e) => e.id), `${s.queue}/${s.type} from ${t1} to ${t2}`).toEqual(s.ids);
              expect(live.count(s.queue, s.type)).toBe(s.ids.length);
              expect(live.entries(s.queue, s.type, 1).map((e) => e.id)).toEqual(s.ids.slice(0, 1));
            }
            expect(Buffer.compare(Buffer.from(encodeCartridge(live.content())), Buffer.from(buildCartridgeFromLog(path, { at: t2 }).bytes)), `from ${t1} to ${t2}`).toBe(0);
          }
        } finally {
          await queues.work.close();
          await queues.other.close();
          db.close();
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { seed, numRuns: 15 },
    );
  }, 120_000);

  it('needs only the log (the data file may be gone), and says which txn and log position it describes', async () => {
    const db = tmp.openDb();
    const q = openQueue(db, 'work');
    await q.enqueue([{ type: 'a', payload: 1 }]);
    await q.close();
    db.close();
    const end = fs.statSync(tmp.logPath()).size; // a closed database's log ends at its last record
    fs.rmSync(tmp.dbPath());
    const built = buildCartridgeFromLog(tmp.dbPath());
    expect(built).toMatchObject({ txnId: 1, entries: 1, groups: 1, logEnd: end });
    expectCode(() => buildCartridgeFromLog(tmp.dbPath(), { at: 2 }), 'SnapshotNotFound');
  });
});

describe('checks (spec §3)', () => {
  const sample = (): Uint8Array =>
    encodeCartridge({
      dbId: 42,
      txnId: 3,
      logEnd: 1000,
      groups: [
        { queue: Buffer.from('a'), type: Buffer.from('x'), entries: [{ rank: 1, readyAt: 5, id: 1 }, { rank: 1, readyAt: 5, id: 2 }] },
        { queue: Buffer.from('a'), type: Buffer.from('y'), entries: [{ rank: 0, readyAt: 9, id: 3 }] },
      ],
    });

  it('every single flipped bit is refused with Corrupt or UnsupportedFormat', () => {
    const good = sample();
    for (let bit = 0; bit < good.length * 8; bit++) {
      const bad = Uint8Array.from(good);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      let code = '';
      try {
        Cartridge.decode(bad);
      } catch (err) {
        code = (err as { code: string }).code;
      }
      expect(['Corrupt', 'UnsupportedFormat'], `bit ${bit}`).toContain(code);
    }
  });

  it('a truncated or extended file is Corrupt (check 1); another version is UnsupportedFormat (check 3) even with a right checksum', () => {
    const good = sample();
    expect(expectCode(() => Cartridge.decode(good.subarray(0, good.length - 1)), 'Corrupt').message).toContain('check 1');
    expect(expectCode(() => Cartridge.decode(new Uint8Array(10)), 'Corrupt').message).toContain('check 1');
    const longer = new Uint8Array(good.length + 8);
    longer.set(good);
    expect(expectCode(() => Cartridge.decode(longer), 'Corrupt').message).toContain('check 1');
    const v2 = Uint8Array.from(good);
    new DataView(v2.buffer).setUint16(format.H_VERSION, 2, true);
    new DataView(v2.buffer).setUint32(v2.length - 4, kernels.crc32c(v2.subarray(0, v2.length - 4)), true);
    expect(expectCode(() => Cartridge.decode(v2), 'UnsupportedFormat').message).toContain('version 2');
  });

  it('a well-checksummed file with entries out of claim order is Corrupt (check 5)', () => {
    const bad = Uint8Array.from(sample());
    const v = new DataView(bad.buffer);
    const e = Number(v.getBigUint64(format.H_ENTRIES_OFFSET, true));
    v.setUint32(e + format.CARTRIDGE_ENTRY_SIZE + 16, 0, true); // the second entry's id 2 -> 0: before the first
    v.setUint32(bad.length - 4, kernels.crc32c(bad.subarray(0, bad.length - 4)), true);
    expect(expectCode(() => Cartridge.decode(bad), 'Corrupt').message).toContain('check 5');
  });
});

describe('the file (spec §5)', () => {
  it('replaces an older cartridge whole, leaves no temporary file, and never replaces a file that is not a cartridge', () => {
    const out = nodePath.join(tmp.dir, 'c.cartridge');
    const one = encodeCartridge({ dbId: 1, txnId: 1, logEnd: 100, groups: [] });
    const two = encodeCartridge({ dbId: 1, txnId: 2, logEnd: 200, groups: [] });
    writeCartridgeFile(out, one);
    writeCartridgeFile(out, two);
    expect(readCartridgeFile(out).header.txnId).toBe(2);
    expect(fs.readdirSync(tmp.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const precious = nodePath.join(tmp.dir, 'precious.ndb');
    fs.writeFileSync(precious, 'a database, say');
    expectCode(() => writeCartridgeFile(precious, one), 'InvalidArgument');
    expect(fs.readFileSync(precious, 'utf8')).toBe('a database, say');
    expectCode(() => readCartridgeFile(precious), 'Corrupt');
    expectCode(() => readCartridgeFile(nodePath.join(tmp.dir, 'missing')), 'IoError');
  });
});
