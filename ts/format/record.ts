// Byte layout of a NorthstarDB commit-log record, version 0. Every offset is
// derived from the one before it; spec/commit_record_v0.md has the same
// tables, and ts/format/record.test.ts checks the two against each other.
// Little-endian everywhere. The Rust twin is crates/northstar-native/src/kernels/log.rs.

export const RECORD_VERSION = 0;

// ---- Record header (spec §2), 40 bytes at the start of every record --------
export const RECORD_MAGIC = 0x4c4f4752; // "LOGR"
export const RECORD_MAGIC_OFFSET = 0; // u32
export const RECORD_VERSION_OFFSET = RECORD_MAGIC_OFFSET + 4; // u16
export const RECORD_TYPE_OFFSET = RECORD_VERSION_OFFSET + 2; // u16
export const RECORD_HEADER_LENGTH_OFFSET = RECORD_TYPE_OFFSET + 2; // u16, = RECORD_HEADER_SIZE
export const RECORD_FLAGS_OFFSET = RECORD_HEADER_LENGTH_OFFSET + 2; // u16
/** Flag bit 0: written while an earlier record was not yet known durable (spec §2.2). */
export const RECORD_FLAG_UNSYNCED_BEFORE = 1;
/** Flag bit 1: the commit payload ends in a pages section (spec §2.2, §3.5); commit records only. */
export const RECORD_FLAG_PAGES = 2;
/** Every flag bit a v0 reader accepts; any other set bit is BadHeader. */
export const RECORD_FLAGS_KNOWN = RECORD_FLAG_UNSYNCED_BEFORE | RECORD_FLAG_PAGES;
export const RECORD_TXN_ID_OFFSET = RECORD_FLAGS_OFFSET + 2; // u64
export const RECORD_PREV_POSITION_OFFSET = RECORD_TXN_ID_OFFSET + 8; // u64
export const RECORD_PAYLOAD_LENGTH_OFFSET = RECORD_PREV_POSITION_OFFSET + 8; // u32
export const RECORD_HEADER_CRC_OFFSET = RECORD_PAYLOAD_LENGTH_OFFSET + 4; // u32
export const RECORD_PAYLOAD_CRC_OFFSET = RECORD_HEADER_CRC_OFFSET + 4; // u32
export const RECORD_HEADER_SIZE = RECORD_PAYLOAD_CRC_OFFSET + 4; // 40

/** Record types (spec §2.1); every other value is BadHeader in v0. */
export const RecordType = {
  Commit: 0,
  Checkpoint: 1,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Whether the record in `record` (from its first byte) is a commit, by its type field. */
export function isCommitRecord(record: Uint8Array): boolean {
  return (record[RECORD_TYPE_OFFSET]! | (record[RECORD_TYPE_OFFSET + 1]! << 8)) === RecordType.Commit;
}

// ---- Trailer (spec §4), 12 bytes after the payload; offsets from its start --
export const TRAILER_MAGIC = 0x52474f4c; // "RGOL"
export const TRAILER_MAGIC_OFFSET = 0; // u32
export const TRAILER_LENGTH_OFFSET = TRAILER_MAGIC_OFFSET + 4; // u32, whole record
export const TRAILER_CRC_OFFSET = TRAILER_LENGTH_OFFSET + 4; // u32
export const TRAILER_SIZE = TRAILER_CRC_OFFSET + 4; // 12

/** Header and trailer together: the size of a record with an empty payload. */
export const RECORD_OVERHEAD = RECORD_HEADER_SIZE + TRAILER_SIZE;

// ---- Commit payload (spec §3.1); offsets from the start of the payload -----
export const COMMIT_MAGIC = 0x434d4954; // "CMIT"
export const COMMIT_MAGIC_OFFSET = 0; // u32
export const COMMIT_TXN_ID_OFFSET = COMMIT_MAGIC_OFFSET + 4; // u64, = header txn id
export const COMMIT_ROOT_OFFSET = COMMIT_TXN_ID_OFFSET + 8; // u64
export const COMMIT_OP_COUNT_OFFSET = COMMIT_ROOT_OFFSET + 8; // u32
export const COMMIT_RESERVED_OFFSET = COMMIT_OP_COUNT_OFFSET + 4; // u32, zero
export const COMMIT_OPS_OFFSET = COMMIT_RESERVED_OFFSET + 4; // 28: first op

// Op (spec §3.2); offsets from the start of the op.
export const OP_TYPE_OFFSET = 0; // u8
export const OP_FLAGS_OFFSET = OP_TYPE_OFFSET + 1; // u8, zero
export const OP_KEY_LENGTH_OFFSET = OP_FLAGS_OFFSET + 1; // u16
export const OP_VALUE_LENGTH_OFFSET = OP_KEY_LENGTH_OFFSET + 2; // u32, 0 for del
export const OP_KEY_OFFSET = OP_VALUE_LENGTH_OFFSET + 4; // 8: key bytes, then value bytes

export const OpType = {
  Put: 0,
  Del: 1,
} as const;
export type OpType = (typeof OpType)[keyof typeof OpType];

// ---- Checkpoint payload (spec §3.3); offsets from the payload ---------------
export const CHECKPOINT_MAGIC = 0x43484b50; // "CHKP"
export const CHECKPOINT_MAGIC_OFFSET = 0; // u32
export const CHECKPOINT_RESERVED_OFFSET = CHECKPOINT_MAGIC_OFFSET + 4; // u32, zero
export const CHECKPOINT_TXN_ID_OFFSET = CHECKPOINT_RESERVED_OFFSET + 4; // u64, = header txn id
export const CHECKPOINT_ROOT_OFFSET = CHECKPOINT_TXN_ID_OFFSET + 8; // u64
export const CHECKPOINT_PAGE_COUNT_OFFSET = CHECKPOINT_ROOT_OFFSET + 8; // u64
export const CHECKPOINT_REPLAY_FROM_OFFSET = CHECKPOINT_PAGE_COUNT_OFFSET + 8; // u64
export const CHECKPOINT_PAYLOAD_SIZE = CHECKPOINT_REPLAY_FROM_OFFSET + 8; // 40

// ---- Pages section (spec §3.5): the end of a commit payload whose header has
// RECORD_FLAG_PAGES. The page ids come first, u64 each: written, then freed,
// then freedYoung; the fixed tail follows and ends exactly at the end of the
// payload, so a reader finds it from the record's end. Offsets from the
// start of the tail.
export const PAGES_MAGIC = 0x50414753; // "PAGS"
/** Bytes per page id before the tail (u64). */
export const PAGES_ID_SIZE = 8;
export const PAGES_PAGE_COUNT_OFFSET = 0; // u64
export const PAGES_ENTRY_COUNT_OFFSET = PAGES_PAGE_COUNT_OFFSET + 8; // u64
export const PAGES_DEPTH_OFFSET = PAGES_ENTRY_COUNT_OFFSET + 8; // u32
export const PAGES_WRITTEN_COUNT_OFFSET = PAGES_DEPTH_OFFSET + 4; // u32
export const PAGES_FREED_COUNT_OFFSET = PAGES_WRITTEN_COUNT_OFFSET + 4; // u32
export const PAGES_FREED_YOUNG_COUNT_OFFSET = PAGES_FREED_COUNT_OFFSET + 4; // u32
export const PAGES_RESERVED_OFFSET = PAGES_FREED_YOUNG_COUNT_OFFSET + 4; // u32, zero
export const PAGES_MAGIC_OFFSET = PAGES_RESERVED_OFFSET + 4; // u32
export const PAGES_TAIL_SIZE = PAGES_MAGIC_OFFSET + 4; // 40

// ---- Limits (spec §6) ---------------------------------------------------------
export const MIN_RECORD_KEY_SIZE = 1;
/** Same as the tree's largest key (spec/file_format_v1.md §7). */
export const MAX_RECORD_KEY_SIZE = 4096;
/** Same as the tree's largest value (spec/file_format_v1.md §7). */
export const MAX_RECORD_VALUE_SIZE = 16 * 1024 * 1024;
/**
 * Largest payload any v0 reader accepts (recordVerify: BadHeader above it).
 * Fixed by the format so a log written with any allowed `maxPayload` stays
 * readable everywhere; keeps a whole record's length within its u32 field.
 */
export const MAX_PAYLOAD_CEILING = 1024 * 1024 * 1024;
/** Default `maxPayload` of a RecordBuilder: the largest transaction a commit may write. */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;
/** The smallest `maxPayload`: a commit of one put of a 4096-byte key and a 16 MiB value. */
export const MIN_MAX_PAYLOAD = COMMIT_OPS_OFFSET + OP_KEY_OFFSET + MAX_RECORD_KEY_SIZE + MAX_RECORD_VALUE_SIZE;
/** Largest u64 field value a reader accepts (2^53 − 1, spec/file_format_v1.md §0). */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

/**
 * Result of recordVerify (spec §5) when the record is not whole and valid;
 * a valid record gives its total length instead (> 0).
 */
export const RecordStatus = {
  Incomplete: -1,
  BadMagic: -2,
  BadHeaderChecksum: -3,
  UnsupportedVersion: -4,
  BadHeader: -5,
  BadPayloadChecksum: -6,
  BadTrailer: -7,
  BadPayload: -8,
} as const;
export type RecordStatus = (typeof RecordStatus)[keyof typeof RecordStatus];

/** The name of a negative recordVerify status, e.g. "BadTrailer"; "Ok" for a length. */
export function recordStatusName(status: number): string {
  if (status > 0) return 'Ok';
  for (const [name, s] of Object.entries(RecordStatus)) if (s === status) return name;
  return `Unknown(${status})`;
}
