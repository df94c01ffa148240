// Byte layout of a NorthstarDB v1 file. Every offset is derived from the one
// before it; spec/file_format_v1.md has the same tables, and
// ts/format/constants.test.ts checks the two against each other.
// Little-endian everywhere.

/** Page sizes selectable at creation (spec §1). */
export const PAGE_SIZES = [4096, 8192, 16384, 32768] as const;
export const DEFAULT_PAGE_SIZE = 16384;
/**
 * Node kernels also accept a scratch node of twice the largest page size
 * (used when two siblings are redistributed). Slot offsets are u16, so no node
 * buffer may exceed 65536 bytes.
 */
export const MAX_NODE_BUFFER = 65536;

/** Format version of every page and meta (spec §2.1, §10); files of another version are UnsupportedFormat. */
export const FORMAT_VERSION = 1;

// ---- Page header (spec §2), 40 bytes at the start of every page ----------
export const PAGE_MAGIC = 0x4e534442; // "NSDB"
export const MAGIC_OFFSET = 0; // u32
export const VERSION_OFFSET = MAGIC_OFFSET + 4; // u16
export const TYPE_OFFSET = VERSION_OFFSET + 2; // u8
export const FLAGS_OFFSET = TYPE_OFFSET + 1; // u8
export const PAGE_ID_OFFSET = FLAGS_OFFSET + 1; // u64
export const TXN_ID_OFFSET = PAGE_ID_OFFSET + 8; // u64
export const PAYLOAD_LENGTH_OFFSET = TXN_ID_OFFSET + 8; // u32
export const HEADER_CRC_OFFSET = PAYLOAD_LENGTH_OFFSET + 4; // u32
export const PAGE_CRC_OFFSET = HEADER_CRC_OFFSET + 4; // u32
export const HEADER_RESERVED_OFFSET = PAGE_CRC_OFFSET + 4; // u32, zero
export const HEADER_SIZE = HEADER_RESERVED_OFFSET + 4; // 40

export const PageType = {
  Meta: 1,
  Branch: 2,
  Leaf: 3,
  Freelist: 4,
  Overflow: 5,
  History: 6,
} as const;
export type PageType = (typeof PageType)[keyof typeof PageType];

/** Result of pageVerify (spec §2.3); 0 means the page may be trusted. */
export const PageStatus = {
  Ok: 0,
  BadMagic: 1,
  BadHeaderChecksum: 2,
  UnsupportedVersion: 3,
  BadPageType: 4,
  WrongPageId: 5,
  BadPayloadLength: 6,
  BadPageChecksum: 7,
} as const;
export type PageStatus = (typeof PageStatus)[keyof typeof PageStatus];

// ---- Meta page payload (spec §3) -----------------------------------------
export const META_MAGIC = 0x4d455441; // "META"
export const META_MAGIC_OFFSET = HEADER_SIZE; // u32
export const META_VERSION_OFFSET = META_MAGIC_OFFSET + 4; // u16
export const META_RESERVED_OFFSET = META_VERSION_OFFSET + 2; // u16, zero
export const META_PAGE_SIZE_OFFSET = META_RESERVED_OFFSET + 2; // u32
export const META_FLAGS_OFFSET = META_PAGE_SIZE_OFFSET + 4; // u32, zero
export const META_TXN_ID_OFFSET = META_FLAGS_OFFSET + 4; // u64
export const META_ROOT_OFFSET = META_TXN_ID_OFFSET + 8; // u64
export const META_FREELIST_OFFSET = META_ROOT_OFFSET + 8; // u64
export const META_LOG_TAIL_OFFSET = META_FREELIST_OFFSET + 8; // u64
export const META_PAGE_COUNT_OFFSET = META_LOG_TAIL_OFFSET + 8; // u64
export const META_ENTRY_COUNT_OFFSET = META_PAGE_COUNT_OFFSET + 8; // u64
export const META_DEPTH_OFFSET = META_ENTRY_COUNT_OFFSET + 8; // u32
export const META_CHECKPOINT_SEQ_OFFSET = META_DEPTH_OFFSET + 4; // u32 checkpoint sequence, breaks txn-id ties
export const META_DB_ID_OFFSET = META_CHECKPOINT_SEQ_OFFSET + 4; // u64 random id, shared with the log header
export const META_HISTORY_OFFSET = META_DB_ID_OFFSET + 8; // u64 first history page, 0 = none
export const META_CRC_OFFSET = META_HISTORY_OFFSET + 8; // u32
export const META_END = META_CRC_OFFSET + 4;
export const META_PAYLOAD_LENGTH = META_END - HEADER_SIZE; // 92

export const META_PAGE_A = 0;
export const META_PAGE_B = 1;
export const FIRST_DATA_PAGE = 2;

// ---- B+tree nodes (spec §4): header shared by leaf and branch -------------
export const NODE_COUNT_OFFSET = HEADER_SIZE; // u16 number of cells
export const NODE_DEAD_OFFSET = NODE_COUNT_OFFSET + 2; // u16 bytes of unreferenced cells
export const NODE_CELL_START_OFFSET = NODE_DEAD_OFFSET + 2; // u32 lowest cell offset
export const NODE_LINK_OFFSET = NODE_CELL_START_OFFSET + 4; // u64 leaf: right sibling (always 0); branch: leftmost child
export const NODE_LINK_TXN_OFFSET = NODE_LINK_OFFSET + 8; // u64 leaf: 0; branch: txn id that wrote the leftmost child
export const NODE_SLOTS_OFFSET = NODE_LINK_TXN_OFFSET + 8; // u16[count] cell offsets in key order
export const SLOT_SIZE = 2;

// Leaf cell: key length u16, value length u32, key, value (or overflow ref).
export const LEAF_CELL_KLEN = 0;
export const LEAF_CELL_VLEN = LEAF_CELL_KLEN + 2;
export const LEAF_CELL_HEADER = LEAF_CELL_VLEN + 4; // 6
/** Bit 31 of the value-length field: value lives in an overflow chain. */
export const VALUE_OVERFLOW_BIT = 0x80000000;
// Inline bytes of an overflowed value (the overflow reference): the first
// overflow page id, then the txn id that wrote the whole chain.
export const OVERFLOW_REF_PAGE = 0; // u64
export const OVERFLOW_REF_TXN = OVERFLOW_REF_PAGE + 8; // u64
export const OVERFLOW_REF_SIZE = OVERFLOW_REF_TXN + 8; // 16

// Branch cell: child page id u64, txn id that wrote the child u64, key length
// u16, key. The child holds keys >= key.
export const BRANCH_CELL_CHILD = 0;
export const BRANCH_CELL_CHILD_TXN = BRANCH_CELL_CHILD + 8;
export const BRANCH_CELL_KLEN = BRANCH_CELL_CHILD_TXN + 8;
export const BRANCH_CELL_HEADER = BRANCH_CELL_KLEN + 2; // 18

// ---- Overflow pages (spec §5) ---------------------------------------------
export const OVERFLOW_NEXT_OFFSET = HEADER_SIZE; // u64, 0 ends the chain
export const OVERFLOW_DATA_OFFSET = OVERFLOW_NEXT_OFFSET + 8;

// ---- Freelist pages (spec §6) ---------------------------------------------
export const FREELIST_NEXT_OFFSET = HEADER_SIZE; // u64, 0 ends the chain
export const FREELIST_COUNT_OFFSET = FREELIST_NEXT_OFFSET + 8; // u32
export const FREELIST_RESERVED_OFFSET = FREELIST_COUNT_OFFSET + 4; // u32, zero
export const FREELIST_ENTRIES_OFFSET = FREELIST_RESERVED_OFFSET + 4;
/** Entry: page id u64, txn id that freed it u64. */
export const FREELIST_ENTRY_SIZE = 16;

// ---- History pages (spec §6.2): roots of retained snapshots --------------------
export const HISTORY_NEXT_OFFSET = HEADER_SIZE; // u64, 0 ends the chain
export const HISTORY_COUNT_OFFSET = HISTORY_NEXT_OFFSET + 8; // u32
export const HISTORY_RESERVED_OFFSET = HISTORY_COUNT_OFFSET + 4; // u32, zero
export const HISTORY_ENTRIES_OFFSET = HISTORY_RESERVED_OFFSET + 4;
/** Entry: txn id u64, root page id u64, entry count u64. */
export const HISTORY_ENTRY_SIZE = 24;

// ---- The log file's header (spec §8.4), 32 bytes before the first record ----
// The records after it are laid out in ts/format/record.ts
// (spec/commit_record_v0.md); ts/log/file.ts reads and writes the file.
export const LOG_FILE_MAGIC = 0x4e534c47; // "NSLG"
export const LOG_FILE_VERSION = 0;
export const LOG_MAGIC_OFFSET = 0; // u32
export const LOG_VERSION_OFFSET = LOG_MAGIC_OFFSET + 4; // u16
export const LOG_HEADER_LENGTH_OFFSET = LOG_VERSION_OFFSET + 2; // u16, = LOG_HEADER_SIZE
export const LOG_DB_ID_OFFSET = LOG_HEADER_LENGTH_OFFSET + 2; // u64, the meta's database id
export const LOG_BASE_OFFSET = LOG_DB_ID_OFFSET + 8; // u64, logical position of the first record byte
/** u32: 0, or the sector size appends are aligned to (one of LOG_SECTOR_SIZES). */
export const LOG_SECTOR_SIZE_OFFSET = LOG_BASE_OFFSET + 8;
export const LOG_HEADER_CRC_OFFSET = LOG_SECTOR_SIZE_OFFSET + 4; // u32, CRC32C of bytes [0, 28)
export const LOG_HEADER_SIZE = LOG_HEADER_CRC_OFFSET + 4; // 32
/** Sector sizes a log can align its appends to (0: none). */
export const LOG_SECTOR_SIZES = [0, 512, 4096] as const;

// ---- Limits (spec §7) ------------------------------------------------------
export const MAX_KEY_SIZE = 4096;
export const MAX_VALUE_SIZE = 16 * 1024 * 1024;
/**
 * Deepest tree any reader descends (spec §4.5): every node holds at least three
 * cells, so 2^53 pages need fewer than 40 levels; a deeper path is a cycle in a
 * damaged or crafted file and is Corrupt, never an endless loop.
 */
export const MAX_TREE_DEPTH = 64;
