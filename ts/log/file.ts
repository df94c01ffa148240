// The commit log file `<db>.log` (spec/commit_record_v0.md §7): a 32-byte
// header (laid out in ts/format/constants.ts, spec/file_format_v1.md §8.4),
// then records back to back. Positions are logical: position p is at
// file offset p − base + LOG_HEADER_SIZE, so dropping old records (which
// rewrites the file with a larger base) never changes a record's position.
// A new log has base = LOG_HEADER_SIZE, so positions start at 32 and 0 can
// mean "no record".

import { NorthstarError } from '../errors.js';
import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import {
  LOG_BASE_OFFSET,
  LOG_DB_ID_OFFSET,
  LOG_FILE_MAGIC,
  LOG_FILE_VERSION,
  LOG_HEADER_CRC_OFFSET,
  LOG_HEADER_LENGTH_OFFSET,
  LOG_HEADER_SIZE,
  LOG_MAGIC_OFFSET,
  LOG_SECTOR_SIZE_OFFSET,
  LOG_SECTOR_SIZES,
  LOG_VERSION_OFFSET,
} from '../format/constants.js';
import { addIoStats, nodeFileSystem, type DbFile, type FileSystem, type IoStats } from '../io/file.js';
import { failpoint } from '../io/failpoint.js';
import type { Kernels } from '../native/kernels.js';
import { RECORD_FLAG_UNSYNCED_BEFORE, RECORD_FLAGS_OFFSET, RECORD_HEADER_SIZE, RECORD_MAGIC, RECORD_MAGIC_OFFSET, RECORD_PAYLOAD_LENGTH_OFFSET, RECORD_PREV_POSITION_OFFSET, RECORD_TXN_ID_OFFSET, RecordStatus, recordStatusName, RECORD_OVERHEAD } from '../format/record.js';

/** One record found by a scan; `bytes` is a view valid until the scan moves on. */
export interface ScannedRecord {
  position: number;
  length: number;
  txnId: number;
  bytes: Uint8Array;
}

/** How a scan ended: at the end of the log, at a torn tail, or at damage followed by valid records. */
export interface ScanEnd {
  kind: 'end' | 'torn' | 'damaged';
  /** Position just after the last valid record. */
  position: number;
  /** For torn and damaged: what recordVerify said at `position`. */
  status?: string;
  /**
   * For torn: set when everything from `position` to the end is zeros, their
   * byte count. That is preallocated space (spec/file_format_v1.md §8.5) or
   * an append of which nothing reached the file: no record was cut short, so
   * tools show it as a clean end. Recovery cuts it like any torn tail.
   */
  zeroTail?: number;
}

function encodeHeader(dbId: number, base: number, kernels: Kernels, sectorSize: number): Uint8Array {
  const h = new Uint8Array(LOG_HEADER_SIZE);
  writeU32(h, LOG_MAGIC_OFFSET, LOG_FILE_MAGIC);
  writeU16(h, LOG_VERSION_OFFSET, LOG_FILE_VERSION);
  writeU16(h, LOG_HEADER_LENGTH_OFFSET, LOG_HEADER_SIZE);
  writeU64(h, LOG_DB_ID_OFFSET, dbId);
  writeU64(h, LOG_BASE_OFFSET, base);
  writeU32(h, LOG_SECTOR_SIZE_OFFSET, sectorSize);
  writeU32(h, LOG_HEADER_CRC_OFFSET, kernels.crc32c(h.subarray(0, LOG_HEADER_CRC_OFFSET)));
  return h;
}

const SCAN_CHUNK = 1 << 20;

/**
 * Zeros an append writes past its record when the file does not reach that
 * far yet (spec/file_format_v1.md §8.5), so the appends after it overwrite
 * space the file already has: their fdatasync then writes no inode (the size
 * is unchanged), one device request fewer per commit. Records at least this
 * long just extend the file.
 */
export const LOG_PREALLOC_BYTES = 256 << 10;
/**
 * The zeros go in writes of this many bytes, not one: Linux sizes the page
 * cache's folios by the write that fills them, and a record written into a
 * 256 KiB folio made each commit's fdatasync slower (on this project's
 * machine a 582-byte write + fdatasync had a p50 of 92-100 µs into space
 * zeroed by one write, 84-85 µs into space zeroed 4 KiB at a time).
 */
export const LOG_PREALLOC_CHUNK = 4096;
let zeros: Uint8Array | null = null;

/** How many zero bytes buf holds from `from` (up to `to`). */
export function zeroRun(buf: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i < to && buf[i] === 0) i++;
  return i - from;
}

export class LogFile {
  /** Logical position just past the last byte of the log. */
  end: number;
  /**
   * File offset this object knows the file reaches (it wrote or cut it
   * there), or -1: not known yet. Past `end` the file holds zeros this
   * object or another writer preallocated (§8.5).
   */
  private reach = -1;
  /** cutUnpublished's 4 bytes, read on every writer takeover. */
  private readonly head = new Uint8Array(4);

  private constructor(
    readonly path: string,
    private file: DbFile,
    readonly dbId: number,
    /** Logical position of the first byte after the header. */
    public base: number,
    /**
     * 0, or the sector size each append starts on (a file offset multiple of
     * it), leaving zeros between records, so that a power cut garbling whole
     * sectors of an unsynced append cannot reach a synced record (§8.4).
     */
    readonly sectorSize: number,
    private readonly kernels: Kernels,
    private readonly fs: FileSystem,
  ) {
    this.end = base + (file.size() - LOG_HEADER_SIZE);
  }

  /** I/O of files this log had open before its current one (replaced by dropBefore, or a reopen). */
  private carried: IoStats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fdatasyncs: 0, fsyncs: 0 };

  /** This log's I/O since it was opened, across the files it replaced (stats().logIo). */
  get stats(): IoStats {
    const total = { ...this.carried };
    addIoStats(total, this.file.stats);
    return total;
  }

  /** Counts `prev` as I/O of this log: a handle's log I/O stays cumulative when it reopens the log. */
  carryStats(prev: IoStats): void {
    addIoStats(this.carried, prev);
  }

  /** Creates an empty log (atomically, like the database file). */
  static create(path: string, dbId: number, kernels: Kernels, fs: FileSystem = nodeFileSystem, sectorSize = 0): LogFile {
    fs.createAtomically(path, encodeHeader(dbId, LOG_HEADER_SIZE, kernels, sectorSize));
    return LogFile.open(path, dbId, kernels, fs);
  }

  /** Opens the log and checks that it belongs to database dbId (null: any database, for tools). */
  static open(path: string, dbId: number | null, kernels: Kernels, fs: FileSystem = nodeFileSystem): LogFile {
    const file = fs.open(path);
    try {
      const h = new Uint8Array(LOG_HEADER_SIZE);
      const n = file.read(h, 0);
      const corrupt = (why: string) => new NorthstarError('Corrupt', `${path}: ${why}`, { path });
      if (n < LOG_HEADER_SIZE) throw corrupt(`log header is short (${n} bytes)`);
      if (readU32(h, LOG_MAGIC_OFFSET) !== LOG_FILE_MAGIC) throw corrupt('not a NorthstarDB commit log (bad magic)');
      if (readU32(h, LOG_HEADER_CRC_OFFSET) !== kernels.crc32c(h.subarray(0, LOG_HEADER_CRC_OFFSET))) throw corrupt('log header checksum mismatch');
      if (readU16(h, LOG_VERSION_OFFSET) !== LOG_FILE_VERSION) {
        throw new NorthstarError('UnsupportedFormat', `${path}: log format version ${readU16(h, LOG_VERSION_OFFSET)} is newer than ${LOG_FILE_VERSION}`, { path });
      }
      if (readU16(h, LOG_HEADER_LENGTH_OFFSET) !== LOG_HEADER_SIZE) throw corrupt('bad log header length');
      const id = readU64(h, LOG_DB_ID_OFFSET);
      if (dbId !== null && id !== dbId) throw corrupt(`log belongs to another database (id ${id}, database ${dbId})`);
      const base = readU64(h, LOG_BASE_OFFSET);
      if (base < LOG_HEADER_SIZE) throw corrupt(`bad log base position ${base}`);
      const sectorSize = readU32(h, LOG_SECTOR_SIZE_OFFSET);
      if (!(LOG_SECTOR_SIZES as readonly number[]).includes(sectorSize)) throw corrupt(`bad log sector size ${sectorSize}`);
      return new LogFile(path, file, id, base, sectorSize, kernels, fs);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  private offset(position: number): number {
    return position - this.base + LOG_HEADER_SIZE;
  }

  /** Where the next append will put its record: `end`, or the next sector boundary. */
  nextAppendPosition(): number {
    if (this.sectorSize === 0) return this.end;
    const misalign = this.offset(this.end) % this.sectorSize;
    return misalign === 0 ? this.end : this.end + this.sectorSize - misalign;
  }

  /** Appends a sealed record at nextAppendPosition(); returns that position. Not durable until datasync(). */
  append(record: Uint8Array): number {
    const at = this.nextAppendPosition();
    failpoint('beforeLogAppend');
    const off = this.offset(at);
    this.file.write(record, off);
    this.end = at + record.length;
    const need = off + record.length;
    if (need > this.reach) this.preallocate(need, record.length);
    return at;
  }

  /**
   * After an append that ended at file offset `need`, past where this object
   * knows the file reaches: LOG_PREALLOC_BYTES of zeros after the record, so
   * the next appends overwrite space the file has (spec/file_format_v1.md
   * §8.5). Only ever after the record just written: what lies past the
   * published end is this writer's to overwrite (concurrency_v0 §5 step 4),
   * and `reach` may be stale (another handle may have cut or grown the file),
   * so nothing here depends on it but whether to write zeros at all. A
   * record that long itself just extends the file. Zeros past the last
   * record read as a torn tail, which recovery cuts (§8.3).
   */
  private preallocate(need: number, recordLength: number): void {
    if (recordLength >= LOG_PREALLOC_BYTES) {
      this.reach = need;
      return;
    }
    zeros ??= new Uint8Array(LOG_PREALLOC_CHUNK);
    try {
      for (let at = 0; at < LOG_PREALLOC_BYTES; at += LOG_PREALLOC_CHUNK) this.file.write(zeros, need + at);
    } catch (err) {
      // A full disk still takes records that fit: the zeros only save the next syncs an
      // inode write, so without room for them the appends just extend the file. Whatever
      // part of them was written is zeros past the record, as preallocation leaves.
      if (err instanceof NorthstarError && err.code === 'OutOfSpace') return;
      throw err;
    }
    this.reach = need + LOG_PREALLOC_BYTES;
  }

  /**
   * Spec/concurrency_v0.md §5 step 4, for a writer taking over at `end` (the
   * published end): a writer killed after appending and before publishing
   * left a record at the next append position; cut the log there if so.
   * Zeros there (preallocated, §8.5) are kept: an append always starts with
   * its record's header, and a killed write leaves a prefix of it, so no
   * header means nothing was appended. Reads 4 bytes and asks nothing of the
   * file's metadata (a read change time makes the log's next fdatasync write
   * its inode as well, §8.5).
   */
  cutUnpublished(end: number): void {
    this.end = end;
    const at = this.nextAppendPosition();
    const head = this.head;
    head.fill(0);
    const n = this.file.read(head, this.offset(at));
    if ((head[0]! | head[1]! | head[2]! | head[3]!) !== 0) {
      this.truncateTail(end);
      return;
    }
    // The file ends there (another handle cut its zeros): preallocate at the next append.
    if (n < head.length) this.reach = -1;
  }

  /** True when the file ends at `position`: nothing past it, not even preallocated zeros (asks the file its size). */
  endsAt(position: number): boolean {
    return this.file.size() === this.offset(position);
  }

  /** Cuts preallocated zeros off the end of the file (a clean close). */
  trimPreallocated(): void {
    if (this.file.size() > this.offset(this.end)) this.truncateTail(this.end);
  }

  datasync(): void {
    failpoint('beforeLogSync');
    this.file.datasync();
    failpoint('afterLogSync');
  }

  /** datasync() on the thread pool (group commit); passes the same crash windows. */
  datasyncAsync(): Promise<void> {
    try {
      failpoint('beforeLogSync');
    } catch (err) {
      return Promise.reject(err);
    }
    // The file this sync runs on stays open until the sync ends, even if dropBefore
    // replaces it or close() closes it meanwhile: DbFile.close() leaves its descriptor
    // to a running datasyncAsync.
    return this.file.datasyncAsync().then(() => failpoint('afterLogSync'));
  }

  /**
   * How many times truncateTail has run (or begun): a sync that started before a
   * cut covers nothing after it, not even bytes written at the same positions
   * since (ts/db/groupcommit.ts, startSync).
   */
  cuts = 0;

  /** Cuts the log at position (dropping a torn tail or a failed append) and syncs. */
  truncateTail(position: number): void {
    failpoint('beforeLogTruncate');
    this.cuts++;
    this.reach = -1; // a failed truncate leaves the size unknown
    this.file.truncate(this.offset(position));
    failpoint('midLogTruncate');
    this.reach = this.offset(position);
    this.file.datasync();
    this.end = position;
  }

  /**
   * Drops every byte before `position` (a record boundary): copies the rest to
   * a new file whose header has base = position, syncs it and renames it over
   * the log. Positions of the kept records do not change.
   */
  dropBefore(position: number): void {
    if (position <= this.base) return;
    const tmp = `${this.path}.compact-${process.pid}`;
    const rest = this.end - position;
    const buf = new Uint8Array(Math.min(SCAN_CHUNK * 4, Math.max(rest, 1)));
    // A copy a compaction of this process left when it died: nobody else's (the name has our pid).
    if (this.fs.exists(tmp)) this.fs.remove(tmp);
    this.fs.createAtomically(tmp, encodeHeader(this.dbId, position, this.kernels, this.sectorSize));
    const out = this.fs.open(tmp);
    try {
      let done = 0;
      while (done < rest) {
        const n = this.file.read(buf.subarray(0, Math.min(buf.length, rest - done)), this.offset(position + done));
        if (n === 0) {
          // The log is shorter than its records say: never replace it with a copy that lacks some.
          throw new NorthstarError('Corrupt', `${this.path}: ends at ${position + done}, before its last record's end ${this.end}; not compacted`, { path: this.path });
        }
        out.write(buf.subarray(0, n), LOG_HEADER_SIZE + done);
        done += n;
      }
      out.datasync();
    } catch (err) {
      out.close();
      this.fs.remove(tmp);
      throw err;
    }
    out.close();
    // The copy's writes and sync are this log's I/O too (write amplification).
    this.carryStats(out.stats);
    failpoint('beforeLogCompactRename');
    this.fs.rename(tmp, this.path);
    this.carryStats(this.file.stats);
    this.file.close();
    this.file = this.fs.open(this.path);
    this.base = position;
    this.reach = -1;
  }

  /**
   * The txn id of the first record the log holds, null when it holds none: the
   * record's header, one small read (a log that starts with an alignment gap,
   * §8.4, is scanned to its first record instead).
   */
  firstTxnId(): number | null {
    if (this.end <= this.base) return null;
    const h = this.read(this.base, RECORD_TXN_ID_OFFSET + 8);
    if (h.length === RECORD_TXN_ID_OFFSET + 8 && readU32(h, RECORD_MAGIC_OFFSET) === RECORD_MAGIC) return readU64(h, RECORD_TXN_ID_OFFSET);
    for (const r of this.scan(this.base)) return r.txnId;
    return null;
  }

  /** Reads length bytes at a logical position. */
  read(position: number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    const n = this.file.read(buf, this.offset(position));
    return n === length ? buf : buf.subarray(0, n);
  }

  /**
   * Records from `from` (a record boundary) to the end. The generator's return
   * value says how it ended; a damaged record followed by a valid one is
   * 'damaged' (not a crash pattern), anything else after the last valid record
   * is 'torn' (a crash cut the last append short).
   */
  *scan(from: number): Generator<ScannedRecord, ScanEnd, void> {
    const k = this.kernels;
    let chunk = new Uint8Array(0);
    let chunkPos = from;
    let chunkLen = 0;
    let pos = from;
    let prev = -1;
    let gapStart = -1;
    // Reads from `at`: up to SCAN_CHUNK bytes, no more than the log holds (a scan of one
    // small record, as a catch-up on another handle's commit is, allocates a small buffer),
    // and at least `need` (a record longer than a chunk).
    const fill = (at: number, need: number): void => {
      const size = Math.max(need, RECORD_OVERHEAD, Math.min(SCAN_CHUNK, this.end - at));
      if (chunk.length < size) chunk = new Uint8Array(size);
      chunkPos = at;
      chunkLen = this.file.read(chunk.subarray(0, size), this.offset(at));
    };
    if (pos < this.base || pos > this.end) {
      throw new NorthstarError('Corrupt', `${this.path}: position ${pos} is outside the log (${this.base}..${this.end})`, { path: this.path });
    }
    fill(pos, 0);
    while (pos < this.end) {
      let at = pos - chunkPos;
      if (at + RECORD_OVERHEAD > chunkLen && chunkPos + chunkLen < this.end) {
        fill(pos, 0);
        at = 0;
      }
      if (this.sectorSize > 0 && at < chunkLen && chunk[at] === 0) {
        // The zeros an aligned append left before its record (§8.4).
        const gap = this.gapAt(pos);
        if (gap <= 0) return this.classify(pos, RecordStatus.BadMagic);
        pos += gap;
        gapStart = pos - gap;
        continue;
      }
      let r = k.recordVerify(chunk.subarray(0, chunkLen), at);
      if (r === RecordStatus.Incomplete && chunkPos + chunkLen < this.end && at + RECORD_HEADER_SIZE <= chunkLen) {
        // The record runs past this chunk: read it whole.
        const total = readU32(chunk, at + RECORD_PAYLOAD_LENGTH_OFFSET) + RECORD_OVERHEAD;
        fill(pos, total);
        at = 0;
        r = k.recordVerify(chunk.subarray(0, chunkLen), 0);
      }
      if (r === RecordStatus.UnsupportedVersion) {
        // A newer writer's record: never truncate it, never skip it (spec/commit_record_v0.md §7, rule 4).
        throw new NorthstarError('UnsupportedFormat', `${this.path}: record at position ${pos} was written by a newer record version`, { path: this.path });
      }
      // A bad record after a gap: the log's valid part ends where the gap began.
      if (r < 0) return this.classify(gapStart >= 0 ? gapStart : pos, r);
      // The chain (spec/commit_record_v0.md §7 rule 1): a valid record that does not
      // point back at the one before it is stale bytes, i.e. damage.
      if (prev >= 0 && readU64(chunk, at + RECORD_PREV_POSITION_OFFSET) !== prev) return this.classify(pos, RecordStatus.BadHeader);
      yield { position: pos, length: r, txnId: readU64(chunk, at + RECORD_TXN_ID_OFFSET), bytes: chunk.subarray(at, at + r) };
      prev = pos;
      pos += r;
      gapStart = -1;
    }
    return { kind: 'end', position: pos };
  }

  /**
   * Length of the run of zeros at pos that an aligned append left before the
   * next record (shorter than a sector, followed by a non-zero byte), or 0 if
   * the zeros at pos are no such gap (they run to the end or for a sector).
   */
  private gapAt(pos: number): number {
    const buf = this.read(pos, Math.min(this.sectorSize, this.end - pos));
    const n = zeroRun(buf, 0, buf.length);
    return n < buf.length ? n : 0;
  }

  /**
   * A bad record at pos (spec/commit_record_v0.md §7, rules 3 and 3a): a torn
   * tail if no valid record follows it, or if every valid record after it was
   * appended while something before it was unsynced (a crash during a group
   * commit); damaged if one was written when all before it was durable.
   */
  private classify(pos: number, status: number): ScanEnd {
    const name = recordStatusName(status);
    const magic = Buffer.alloc(4);
    writeU32(magic, 0, RECORD_MAGIC);
    const buf = this.read(pos, this.end - pos);
    if (buf.length > 0 && zeroRun(buf, 0, buf.length) === buf.length) return { kind: 'torn', position: pos, status: name, zeroTail: buf.length };
    // Buffer.indexOf finds the candidates (a tail of preallocated zeros is 256 KiB long: §8.5).
    const hay = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    for (let i = hay.indexOf(magic, 1); i >= 0 && i + RECORD_OVERHEAD <= buf.length; i = hay.indexOf(magic, i + 1)) {
      let len = this.kernels.recordVerify(buf, i);
      if (len <= 0) continue;
      // Walk the valid records from here (over alignment gaps): one written when all before it
      // was durable means damage.
      for (let at = i; len > 0; ) {
        if ((readU16(buf, at + RECORD_FLAGS_OFFSET) & RECORD_FLAG_UNSYNCED_BEFORE) === 0) return { kind: 'damaged', position: pos, status: name };
        at += len;
        if (this.sectorSize > 0) at += zeroRun(buf, at, Math.min(buf.length, at + this.sectorSize - 1));
        len = at < buf.length ? this.kernels.recordVerify(buf, at) : 0;
      }
      return { kind: 'torn', position: pos, status: `${name}; later records were never synced` };
    }
    return { kind: 'torn', position: pos, status: name };
  }

  /** A sync still running on the file (commitAsync) keeps it open until it ends (DbFile.close). */
  close(): void {
    this.file.close();
  }
}
