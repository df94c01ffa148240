// The commit log file `<db>.log` (ts/log/file.ts) on its own, through the
// kernels of the project (native or fallback): its header, appends and
// positions, and how a scan ends (spec/commit_record_v0.md §7): at a clean
// end, at a torn tail (an append cut short, or a damaged last record with
// nothing valid after it), or at damage followed by a valid record.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { NorthstarError } from '../errors.js';
import { readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import { implementation, kernels } from '../native/kernels.js';
import {
  LOG_BASE_OFFSET,
  LOG_DB_ID_OFFSET,
  LOG_FILE_MAGIC,
  LOG_HEADER_CRC_OFFSET,
  LOG_HEADER_LENGTH_OFFSET,
  LOG_HEADER_SIZE,
  LOG_MAGIC_OFFSET,
  LOG_SECTOR_SIZE_OFFSET,
  LOG_VERSION_OFFSET,
} from '../format/constants.js';
import { RECORD_OVERHEAD, RECORD_PREV_POSITION_OFFSET } from '../format/record.js';
import { LOG_PREALLOC_BYTES, LOG_PREALLOC_CHUNK, LogFile, type ScanEnd, type ScannedRecord } from './file.js';
import { RecordBuilder } from './record.js';
import { FaultyFileSystem } from '../io/faulty.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/log/file.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

let dir: string;
const logs: LogFile[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-log-'));
});

afterEach(() => {
  for (const l of logs.splice(0)) l.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const path = (): string => nodePath.join(dir, 'db.log');
const DB_ID = 0x1234_5678_9abc;

function create(dbId = DB_ID): LogFile {
  const log = LogFile.create(path(), dbId, kernels);
  logs.push(log);
  return log;
}

function reopen(dbId: number | null = DB_ID): LogFile {
  const log = LogFile.open(path(), dbId, kernels);
  logs.push(log);
  return log;
}

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

/** A commit record of txnId with `ops` puts of values sized by `size`; a copy. */
function commitRecord(txnId: number, prev: number, ops: number, size = 40): Uint8Array {
  const rb = new RecordBuilder();
  rb.reset(txnId);
  for (let i = 0; i < ops; i++) rb.put(Buffer.from(`key-${txnId}-${i}`), Buffer.alloc(size, (txnId + i) & 0xff));
  if (txnId % 3 === 0) rb.del(Buffer.from(`key-${txnId - 1}-0`));
  return rb.seal(prev, txnId * 10, kernels).slice();
}

/** Appends records of txns 1..n chained as a writer chains them; returns their positions and ends. */
function appendCommits(log: LogFile, n: number, size = 40): { positions: number[]; ends: number[] } {
  const positions: number[] = [];
  const ends: number[] = [];
  for (let t = 1; t <= n; t++) {
    const prev = positions.length === 0 ? log.end : positions[positions.length - 1]!;
    positions.push(log.append(commitRecord(t, prev, 1 + (t % 4), size)));
    ends.push(log.end);
  }
  return { positions, ends };
}

/** Every record a scan from `from` yields (copies of the fields) and how it ended. */
function scanAll(log: LogFile, from = log.base): { records: Omit<ScannedRecord, 'bytes'>[]; end: ScanEnd } {
  const records: Omit<ScannedRecord, 'bytes'>[] = [];
  const it = log.scan(from);
  for (;;) {
    const s = it.next();
    if (s.done) return { records, end: s.value };
    records.push({ position: s.value.position, length: s.value.length, txnId: s.value.txnId });
  }
}

function flipByte(at: number, mask = 0x20): void {
  const fd = fs.openSync(path(), 'r+');
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

describe('log header', () => {
  it('a new log is its 32-byte header alone: magic, version 0, header length, database id, base 32, CRC32C of the bytes before it', () => {
    const log = create();
    expect(log.base).toBe(LOG_HEADER_SIZE);
    expect(log.end).toBe(LOG_HEADER_SIZE);
    expect(log.dbId).toBe(DB_ID);
    const h = fs.readFileSync(path());
    expect(h.length).toBe(LOG_HEADER_SIZE);
    expect(LOG_HEADER_SIZE).toBe(32);
    expect(h.readUInt32LE(LOG_MAGIC_OFFSET)).toBe(LOG_FILE_MAGIC);
    expect(h.readUInt16LE(LOG_VERSION_OFFSET)).toBe(0);
    expect(h.readUInt16LE(LOG_HEADER_LENGTH_OFFSET)).toBe(LOG_HEADER_SIZE);
    expect(readU64(h, LOG_DB_ID_OFFSET)).toBe(DB_ID);
    expect(readU64(h, LOG_BASE_OFFSET)).toBe(LOG_HEADER_SIZE);
    expect(h.readUInt32LE(LOG_SECTOR_SIZE_OFFSET), "sector size: none").toBe(0);
    expect(h.readUInt32LE(LOG_HEADER_CRC_OFFSET)).toBe(kernels.crc32c(h.subarray(0, LOG_HEADER_CRC_OFFSET)));
    expect(scanAll(log)).toEqual({ records: [], end: { kind: 'end', position: LOG_HEADER_SIZE } });
  });

  it('open checks the header: another database id, a short, garbled or re-sealed bad header is Corrupt; a newer version is UnsupportedFormat; a null id accepts any database', () => {
    create().close();
    logs.length = 0;
    const good = fs.readFileSync(path());
    expect(reopen(null).dbId).toBe(DB_ID);
    logs.pop()!.close();
    expect(expectError(() => LogFile.open(path(), DB_ID + 1, kernels), 'Corrupt').message).toContain('another database');
    const resealed = (edit: (h: Buffer) => void): Buffer => {
      const h = Buffer.from(good);
      edit(h);
      writeU32(h, LOG_HEADER_CRC_OFFSET, kernels.crc32c(h.subarray(0, LOG_HEADER_CRC_OFFSET)));
      return h;
    };
    const cases: [string, Buffer, string][] = [
      ['empty', Buffer.alloc(0), 'Corrupt'],
      ['31 bytes', good.subarray(0, 31), 'Corrupt'],
      ['bad magic', resealed((h) => writeU32(h, LOG_MAGIC_OFFSET, 0x4e534c48)), 'Corrupt'],
      ['a flipped bit in the database id', Buffer.concat([good.subarray(0, LOG_DB_ID_OFFSET), Buffer.from([good[LOG_DB_ID_OFFSET]! ^ 1]), good.subarray(LOG_DB_ID_OFFSET + 1)]), 'Corrupt'],
      ['header length 40', resealed((h) => writeU16(h, LOG_HEADER_LENGTH_OFFSET, 40)), 'Corrupt'],
      ['base 31', resealed((h) => writeU64(h, LOG_BASE_OFFSET, 31)), 'Corrupt'],
      ['version 1', resealed((h) => writeU16(h, LOG_VERSION_OFFSET, 1)), 'UnsupportedFormat'],
      ['zeros', Buffer.alloc(64), 'Corrupt'],
    ];
    for (const [what, bytes, code] of cases) {
      fs.writeFileSync(path(), bytes);
      const err = expectError(() => LogFile.open(path(), DB_ID, kernels), code);
      expect(err.path, what).toBe(path());
      expect(fs.readFileSync(path()).equals(bytes), `${what}: left as it was`).toBe(true);
    }
  });
});

describe('appends and scans', () => {
  it('append returns each record’s position (its byte offset, the header counted); a scan from the start or from any record boundary yields them in order and ends cleanly; a reopened log sees the same', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 25);
    expect(positions[0]).toBe(LOG_HEADER_SIZE);
    for (let i = 1; i < positions.length; i++) expect(positions[i]).toBe(ends[i - 1]);
    // The records, then the zeros the first append preallocated (spec/file_format_v1.md §8.5).
    expect(fs.statSync(path()).size).toBe(ends[0]! + LOG_PREALLOC_BYTES);
    const all = scanAll(log);
    expect(all.records.map((r) => r.txnId)).toEqual(positions.map((_, i) => i + 1));
    expect(all.records.map((r) => r.position)).toEqual(positions);
    expect(all.records.map((r) => r.position + r.length)).toEqual(ends);
    expect(all.end).toEqual({ kind: 'end', position: log.end });
    for (const [i, p] of positions.entries()) expect(scanAll(log, p).records.map((r) => r.txnId)[0]).toBe(i + 1);
    expect(scanAll(log, log.end)).toEqual({ records: [], end: { kind: 'end', position: log.end } });
    // The first record points at itself, every other at the one before (spec/commit_record_v0.md §1).
    const bytes = fs.readFileSync(path());
    expect(positions.map((p) => readU64(bytes, p + RECORD_PREV_POSITION_OFFSET))).toEqual([positions[0], ...positions.slice(0, -1)]);
    // A read of whole records round-trips the bytes appended.
    expect(Buffer.from(log.read(positions[3]!, ends[3]! - positions[3]!)).equals(Buffer.from(commitRecord(4, positions[2]!, 1)))).toBe(true);
    log.trimPreallocated();
    expect(fs.statSync(path()).size).toBe(log.end);
    log.close();
    logs.length = 0;
    const again = reopen();
    expect(again.end).toBe(ends[ends.length - 1]);
    expect(scanAll(again)).toEqual(all);
  });

  it('a scan outside the log (before its base, past its end) is Corrupt', () => {
    const log = create();
    appendCommits(log, 3);
    expectError(() => log.scan(LOG_HEADER_SIZE - 1).next(), 'Corrupt');
    expectError(() => log.scan(log.end + 1).next(), 'Corrupt');
  });

  it('records larger than the scan buffer (1 MiB) and records straddling it scan whole', () => {
    const log = create();
    const sizes = [700_000, 700_000, 3_000_000, 10, 1_048_576, 200_000];
    const positions: number[] = [];
    for (const [i, size] of sizes.entries()) {
      const prev = positions.length === 0 ? log.end : positions[positions.length - 1]!;
      positions.push(log.append(commitRecord(i + 1, prev, 1, size)));
    }
    const all = scanAll(log);
    expect(all.records.map((r) => r.position)).toEqual(positions);
    expect(all.end).toEqual({ kind: 'end', position: log.end });
  });
});

describe('torn tails and damage (spec/commit_record_v0.md §7)', () => {
  it('a log cut at every byte inside its last record scans as a torn tail at that record; truncateTail cuts it back to a whole record', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 6);
    const last = positions[5]!;
    const whole = fs.readFileSync(path());
    log.close();
    logs.length = 0;
    expect(ends[5]! - last).toBeGreaterThan(RECORD_OVERHEAD);
    for (let cut = last; cut < ends[5]!; cut++) {
      fs.writeFileSync(path(), whole.subarray(0, cut));
      const l = reopen();
      const r = scanAll(l);
      expect(r.records.map((x) => x.txnId), `cut at ${cut}`).toEqual([1, 2, 3, 4, 5]);
      expect(r.end.position, `cut at ${cut}`).toBe(last);
      expect(r.end.kind, `cut at ${cut}`).toBe(cut === last ? 'end' : 'torn');
      if (cut > last) expect(r.end.status, `cut at ${cut}`).toBe('Incomplete');
      l.truncateTail(r.end.position);
      expect(l.end).toBe(last);
      expect(fs.statSync(path()).size).toBe(last);
      expect(scanAll(l).end).toEqual({ kind: 'end', position: last });
      l.close();
      logs.pop();
    }
  });

  it('garbage after the last record (zeros, or a record started and never finished, inside space the file already had) is a torn tail', () => {
    const log = create();
    const { ends } = appendCommits(log, 4);
    const end = ends[3]!;
    const partial = commitRecord(5, end, 3).subarray(0, 50);
    for (const [what, tail] of [
      ['zeros', Buffer.alloc(300)],
      ['a half record then zeros', Buffer.concat([partial, Buffer.alloc(300)])],
      ['0xff bytes', Buffer.alloc(100, 0xff)],
    ] as const) {
      fs.truncateSync(path(), end);
      fs.appendFileSync(path(), tail);
      const l = reopen();
      const r = scanAll(l);
      expect(r.records.length, what).toBe(4);
      expect(r.end.kind, what).toBe('torn');
      expect(r.end.position, what).toBe(end);
      l.close();
      logs.pop();
    }
  });

  it('a flipped byte in record k of n: damaged (naming k’s position) when a valid record follows, torn when k is the last', () => {
    const log = create();
    const n = 8;
    const { positions, ends } = appendCommits(log, n);
    const whole = fs.readFileSync(path());
    log.close();
    logs.length = 0;
    for (let k = 0; k < n; k++) {
      // Header, payload and trailer bytes of record k.
      for (const at of [positions[k]! + 3, positions[k]! + 20, positions[k]! + 45, ends[k]! - 5]) {
        fs.writeFileSync(path(), whole);
        flipByte(at);
        const l = reopen();
        const r = scanAll(l);
        expect(r.records.map((x) => x.txnId), `record ${k + 1}, byte ${at}`).toEqual(Array.from({ length: k }, (_, i) => i + 1));
        expect(r.end.position).toBe(positions[k]);
        expect(r.end.kind, `record ${k + 1} of ${n}, byte ${at}`).toBe(k === n - 1 ? 'torn' : 'damaged');
        expect(r.end.status).toMatch(/^Bad/);
        l.close();
        logs.pop();
      }
    }
  });
});

describe('the chain (spec/commit_record_v0.md §7 rule 1)', () => {
  it('a valid record that does not chain (stale bytes: a copy of an earlier record after the last one) is not read as the next record', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 4);
    const stale = log.read(positions[1]!, ends[1]! - positions[1]!);
    log.append(stale);
    const r = scanAll(log);
    expect(r.records.map((x) => x.txnId)).toEqual([1, 2, 3, 4]);
    expect(r.end.kind).toBe('torn');
    expect(r.end.position).toBe(ends[3]);
  });
});

describe('dropping old records', () => {
  it('dropBefore keeps every later record at its position (the base moves), survives reopen, and refuses scans before the new base', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 10);
    const cut = positions[4]!;
    const before = scanAll(log);
    log.dropBefore(cut);
    expect(log.base).toBe(cut);
    expect(log.end).toBe(ends[9]);
    expect(fs.statSync(path()).size).toBe(LOG_HEADER_SIZE + ends[9]! - cut);
    expect(readU64(fs.readFileSync(path()), LOG_BASE_OFFSET)).toBe(cut);
    const after = scanAll(log);
    expect(after.records).toEqual(before.records.slice(4));
    expect(after.end).toEqual(before.end);
    expectError(() => log.scan(positions[3]!).next(), 'Corrupt');
    // Appends continue at the same positions as before.
    const p = log.append(commitRecord(11, positions[9]!, 2));
    expect(p).toBe(ends[9]);
    log.close();
    logs.length = 0;
    const again = reopen();
    expect(again.base).toBe(cut);
    expect(scanAll(again).records.map((r) => [r.txnId, r.position])).toEqual([...before.records.slice(4).map((r) => [r.txnId, r.position]), [11, ends[9]]]);
    // Dropping nothing (at or before the base) changes nothing.
    again.dropBefore(cut);
    again.dropBefore(LOG_HEADER_SIZE);
    expect(again.base).toBe(cut);
    expect(fs.readdirSync(dir)).toEqual(['db.log']);
  });

  it('dropBefore refuses (Corrupt) to replace a log shorter than its records say, and leaves it and no copy behind (spec §8.6)', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 6);
    // Another program cut the file under the handle: the last record's bytes are gone.
    fs.truncateSync(path(), LOG_HEADER_SIZE + ends[4]! - 5);
    const bytes = fs.readFileSync(path());
    expect(log.end).toBe(ends[5]);
    expectError(() => log.dropBefore(positions[2]!), 'Corrupt');
    expect(fs.readFileSync(path())).toEqual(bytes);
    expect(fs.readdirSync(dir)).toEqual(['db.log']);
  });

  it('dropBefore replaces a compaction copy its own process left when it died (the name carries the pid)', () => {
    const log = create();
    const { positions } = appendCommits(log, 4);
    fs.writeFileSync(`${path()}.compact-${process.pid}`, 'half a copy');
    log.dropBefore(positions[2]!);
    expect(scanAll(log).records.map((r) => r.txnId)).toEqual([3, 4]);
    expect(fs.readdirSync(dir)).toEqual(['db.log']);
  });
});

describe('preallocation (spec/file_format_v1.md §8.5)', () => {
  const zerosPast = (offset: number): boolean => fs.readFileSync(path()).subarray(offset).every((b) => b === 0);

  it('an append past the known end writes LOG_PREALLOC_BYTES of zeros after its record, LOG_PREALLOC_CHUNK at a time; the appends into them leave the size alone; a record that long just extends the file', () => {
    const log = create();
    const writes = log.stats.writes;
    const { positions, ends } = appendCommits(log, 40);
    expect(log.stats.writes - writes, '40 records and the zeros in chunks').toBe(40 + LOG_PREALLOC_BYTES / LOG_PREALLOC_CHUNK);
    let size = ends[0]! + LOG_PREALLOC_BYTES;
    expect(fs.statSync(path()).size).toBe(size);
    expect(zerosPast(log.end)).toBe(true);
    // An append that runs past the zeros preallocates again, after its own record.
    log.end = size - 10;
    log.append(commitRecord(41, positions[39]!, 1));
    size = log.end + LOG_PREALLOC_BYTES;
    expect(fs.statSync(path()).size).toBe(size);
    expect(zerosPast(log.end)).toBe(true);
    // A record as long as the chunk is followed by no zeros.
    const huge = new RecordBuilder();
    huge.reset(42);
    huge.put(Buffer.from('h'), Buffer.alloc(LOG_PREALLOC_BYTES, 2));
    log.end = size;
    log.append(huge.seal(positions[39]!, 420, kernels).slice());
    expect(fs.statSync(path()).size).toBe(log.end);
  });

  it('a disk with no room for the zeros still takes the record (OutOfSpace on the zeros only skips them); a failed write of the record itself still fails', () => {
    const ffs = new FaultyFileSystem();
    const log = LogFile.create('/db.log', DB_ID, kernels, ffs);
    logs.push(log);
    ffs.arm({ fail: { call: 2, errno: 'ENOSPC', on: ['write'] } }); // write 1: the record; write 2: its zeros
    const first = log.append(commitRecord(1, log.end, 1));
    expect(ffs.injected.fail).toBe(1);
    expect(ffs.bytes('/db.log').length, 'no zeros').toBe(log.end);
    ffs.arm({});
    log.append(commitRecord(2, first, 1));
    expect(ffs.bytes('/db.log').length, 'the next append preallocates').toBe(log.end + LOG_PREALLOC_BYTES);
    ffs.arm({ fail: { call: 1, errno: 'ENOSPC', on: ['write'] } });
    log.end = ffs.bytes('/db.log').length; // past the zeros: the record is the first write
    expectError(() => log.append(commitRecord(3, first, 1)), 'OutOfSpace');
  });

  it('zeros past the last record scan as a torn tail (what recovery cuts); trimPreallocated leaves the records only', () => {
    const log = create();
    const { ends } = appendCommits(log, 5);
    log.close();
    logs.length = 0;
    const again = reopen();
    expect(again.end, 'a reopened log ends where the file does').toBe(ends[0]! + LOG_PREALLOC_BYTES);
    const all = scanAll(again);
    expect(all.records).toHaveLength(5);
    expect(all.end.kind).toBe('torn');
    expect(all.end.position).toBe(ends[4]);
    again.end = ends[4]!;
    again.trimPreallocated();
    expect(fs.statSync(path()).size).toBe(ends[4]);
    expect(scanAll(again).end).toEqual({ kind: 'end', position: ends[4] });
  });

  it('cutUnpublished keeps preallocated zeros past the published end and cuts a record a dead writer appended there; after a cut the next append preallocates again', () => {
    const log = create();
    const { positions, ends } = appendCommits(log, 3);
    const size = fs.statSync(path()).size;
    log.cutUnpublished(ends[2]!);
    expect(fs.statSync(path()).size, 'zeros only: nothing cut').toBe(size);
    // A second writer on the same file appends one record past the published end and "dies".
    const other = reopen();
    other.end = ends[2]!;
    other.append(commitRecord(4, positions[2]!, 1));
    expect(zerosPast(other.end)).toBe(true);
    log.cutUnpublished(ends[2]!);
    expect(fs.statSync(path()).size, 'the unpublished record is cut').toBe(ends[2]);
    expect(scanAll(log).end).toEqual({ kind: 'end', position: ends[2] });
    log.append(commitRecord(4, positions[2]!, 2));
    expect(fs.statSync(path()).size).toBe(log.end + LOG_PREALLOC_BYTES);
    // Another handle trims the zeros (its close); this one finds the file ending at the
    // append position and preallocates at its next append.
    other.end = log.end;
    other.trimPreallocated();
    log.cutUnpublished(log.end);
    const before = log.end;
    log.append(commitRecord(5, ends[2]!, 1));
    expect(fs.statSync(path()).size).toBe(log.end + LOG_PREALLOC_BYTES);
    expect(scanAll(log, before).records.map((r) => r.txnId)).toEqual([5]);
  });
});
