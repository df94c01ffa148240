//! Byte layout of a NorthstarDB v1 page, mirroring `ts/format/constants.ts`.
//! The normative tables are in `spec/file_format_v1.md` (§2 page header, §4
//! B+tree nodes); every offset is derived from the one before it, as in the
//! TypeScript file, and the unit test at the bottom pins the spec's numbers.
//! Little-endian everywhere: fields are read and written through `bytes`
//! helpers below, never by casting.

/// Page sizes selectable at creation (spec §1); `page_seal`/`page_verify` accept only these.
pub const PAGE_SIZES: [usize; 4] = [4096, 8192, 16384, 32768];
/// Smallest node buffer (spec §4.4).
pub const MIN_NODE_BUFFER: usize = 4096;
/// Largest node buffer: a double-size scratch node; slot offsets are u16 (spec §4.4).
pub const MAX_NODE_BUFFER: usize = 65536;

pub const FORMAT_VERSION: u16 = 1;

// ---- Page header (spec §2.1), 40 bytes at the start of every page ----------
pub const PAGE_MAGIC: u32 = 0x4E53_4442; // "NSDB"
pub const MAGIC_OFFSET: usize = 0; // u32
pub const VERSION_OFFSET: usize = MAGIC_OFFSET + 4; // u16
pub const TYPE_OFFSET: usize = VERSION_OFFSET + 2; // u8
pub const FLAGS_OFFSET: usize = TYPE_OFFSET + 1; // u8
pub const PAGE_ID_OFFSET: usize = FLAGS_OFFSET + 1; // u64
pub const TXN_ID_OFFSET: usize = PAGE_ID_OFFSET + 8; // u64
pub const PAYLOAD_LENGTH_OFFSET: usize = TXN_ID_OFFSET + 8; // u32
pub const HEADER_CRC_OFFSET: usize = PAYLOAD_LENGTH_OFFSET + 4; // u32
pub const PAGE_CRC_OFFSET: usize = HEADER_CRC_OFFSET + 4; // u32
pub const HEADER_RESERVED_OFFSET: usize = PAGE_CRC_OFFSET + 4; // u32, zero
pub const HEADER_SIZE: usize = HEADER_RESERVED_OFFSET + 4; // 40

/// Page types (spec §2.1).
pub const PAGE_TYPE_META: u8 = 1;
pub const PAGE_TYPE_BRANCH: u8 = 2;
pub const PAGE_TYPE_LEAF: u8 = 3;
pub const PAGE_TYPE_FREELIST: u8 = 4;
pub const PAGE_TYPE_OVERFLOW: u8 = 5;
pub const PAGE_TYPE_HISTORY: u8 = 6;

/// Results of `page_verify` (spec §2.3), in check order; 0 means the page may be trusted.
pub mod status {
    pub const OK: u32 = 0;
    pub const BAD_MAGIC: u32 = 1;
    pub const BAD_HEADER_CHECKSUM: u32 = 2;
    pub const UNSUPPORTED_VERSION: u32 = 3;
    pub const BAD_PAGE_TYPE: u32 = 4;
    pub const WRONG_PAGE_ID: u32 = 5;
    pub const BAD_PAYLOAD_LENGTH: u32 = 6;
    pub const BAD_PAGE_CHECKSUM: u32 = 7;
}

// ---- B+tree nodes (spec §4.1): header shared by leaf and branch -------------
pub const NODE_COUNT_OFFSET: usize = HEADER_SIZE; // u16 number of cells
pub const NODE_DEAD_OFFSET: usize = NODE_COUNT_OFFSET + 2; // u16 bytes of unreferenced cells
pub const NODE_CELL_START_OFFSET: usize = NODE_DEAD_OFFSET + 2; // u32 lowest cell offset
pub const NODE_LINK_OFFSET: usize = NODE_CELL_START_OFFSET + 4; // u64 leaf: 0; branch: leftmost child
pub const NODE_LINK_TXN_OFFSET: usize = NODE_LINK_OFFSET + 8; // u64 leaf: 0; branch: txn that wrote the leftmost child
pub const NODE_SLOTS_OFFSET: usize = NODE_LINK_TXN_OFFSET + 8; // u16[count] cell offsets in key order
pub const SLOT_SIZE: usize = 2;

// Leaf cell (spec §4.2): key length u16, value length u32, key, value (or overflow ref).
pub const LEAF_CELL_KLEN: usize = 0;
pub const LEAF_CELL_VLEN: usize = LEAF_CELL_KLEN + 2;
pub const LEAF_CELL_HEADER: usize = LEAF_CELL_VLEN + 4; // 6
/// Bit 31 of the value-length field: the value lives in an overflow chain.
pub const VALUE_OVERFLOW_BIT: u32 = 0x8000_0000;
/// Inline bytes of an overflowed value: the first overflow page id (u64), then
/// the txn id that wrote the chain (u64).
pub const OVERFLOW_REF_SIZE: usize = 16;

// Branch cell (spec §4.2): child page id u64, txn id that wrote the child u64,
// key length u16, key.
pub const BRANCH_CELL_CHILD: usize = 0;
pub const BRANCH_CELL_CHILD_TXN: usize = BRANCH_CELL_CHILD + 8;
pub const BRANCH_CELL_KLEN: usize = BRANCH_CELL_CHILD_TXN + 8;
pub const BRANCH_CELL_HEADER: usize = BRANCH_CELL_KLEN + 2; // 18

/// Little-endian field access that cannot read out of bounds: a field that
/// would leave the slice reads as `None`. Writers are only called at offsets
/// the caller has already bounds-checked and are written with `get_mut` too,
/// so a mistake there drops the write instead of panicking.
pub mod bytes {
    #[inline(always)]
    pub fn u16_at(b: &[u8], o: usize) -> Option<u16> {
        let s = b.get(o..o.checked_add(2)?)?;
        Some(u16::from_le_bytes([s[0], s[1]]))
    }

    #[inline(always)]
    pub fn u32_at(b: &[u8], o: usize) -> Option<u32> {
        let s = b.get(o..o.checked_add(4)?)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    #[inline(always)]
    pub fn put_u16(b: &mut [u8], o: usize, v: u16) {
        if let Some(s) = o.checked_add(2).and_then(|e| b.get_mut(o..e)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    #[inline(always)]
    pub fn put_u32(b: &mut [u8], o: usize, v: u32) {
        if let Some(s) = o.checked_add(4).and_then(|e| b.get_mut(o..e)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    #[inline(always)]
    pub fn put_u64(b: &mut [u8], o: usize, v: u64) {
        if let Some(s) = o.checked_add(8).and_then(|e| b.get_mut(o..e)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of the tables in spec/file_format_v1.md §2.1, §4.1, §4.2.
    #[test]
    fn offsets_match_the_spec_tables() {
        assert_eq!(
            [
                MAGIC_OFFSET,
                VERSION_OFFSET,
                TYPE_OFFSET,
                FLAGS_OFFSET,
                PAGE_ID_OFFSET,
                TXN_ID_OFFSET
            ],
            [0, 4, 6, 7, 8, 16]
        );
        assert_eq!(
            [
                PAYLOAD_LENGTH_OFFSET,
                HEADER_CRC_OFFSET,
                PAGE_CRC_OFFSET,
                HEADER_RESERVED_OFFSET,
                HEADER_SIZE
            ],
            [24, 28, 32, 36, 40]
        );
        assert_eq!(
            [
                NODE_COUNT_OFFSET,
                NODE_DEAD_OFFSET,
                NODE_CELL_START_OFFSET,
                NODE_LINK_OFFSET,
                NODE_LINK_TXN_OFFSET,
                NODE_SLOTS_OFFSET
            ],
            [40, 42, 44, 48, 56, 64]
        );
        assert_eq!(
            [LEAF_CELL_KLEN, LEAF_CELL_VLEN, LEAF_CELL_HEADER],
            [0, 2, 6]
        );
        assert_eq!(
            [
                BRANCH_CELL_CHILD,
                BRANCH_CELL_CHILD_TXN,
                BRANCH_CELL_KLEN,
                BRANCH_CELL_HEADER
            ],
            [0, 8, 16, 18]
        );
        assert_eq!(OVERFLOW_REF_SIZE, 16);
        assert_eq!(FORMAT_VERSION, 1);
        assert_eq!(PAGE_MAGIC.to_le_bytes(), *b"BDSN");
    }
}
