//! Byte layout of a NorthstarDB v1 page, mirroring `ts/format/constants.ts`.
//! The normative tables are in `spec/file_format_v1.md` (§2 page header, §4
//! B+tree nodes); every offset is derived from the one before it, as in the
//! TypeScript file, and the tests at the bottom check every constant against
//! the spec's tables (`crate::spec_tables`) and pin the numbers by hand too.
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

// Overflow reference (spec §4.2): the inline bytes of an overflowed value.
pub const OVERFLOW_REF_PAGE: usize = 0; // u64 first overflow page id
pub const OVERFLOW_REF_TXN: usize = OVERFLOW_REF_PAGE + 8; // u64 txn id that wrote the chain
pub const OVERFLOW_REF_SIZE: usize = OVERFLOW_REF_TXN + 8; // 16

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
    pub fn u64_at(b: &[u8], o: usize) -> Option<u64> {
        let s = b.get(o..o.checked_add(8)?)?;
        Some(u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
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
    use crate::spec_tables::*;

    /// The numbers of the tables in spec/file_format_v1.md §2.1, §4.1, §4.2,
    /// typed by hand: a check that does not rely on the table parser of
    /// `check_against_the_spec`.
    #[test]
    fn offsets_are_the_known_numbers() {
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

    /// Every constant against its row in spec/file_format_v1.md, read from
    /// the spec's own tables; fails on a missing, extra or different row.
    fn check_against_the_spec() -> Report {
        let spec = FILE_FORMAT_V1;
        let tables = parse_tables(spec);
        let layouts = layout_tables(&tables);
        let mut r = Report::default();

        // Byte tables (§2.1, §4.1, §4.2), row by row.
        check_layout(
            &mut r,
            &layouts,
            &[
                ("MAGIC_OFFSET", MAGIC_OFFSET),
                ("VERSION_OFFSET", VERSION_OFFSET),
                ("TYPE_OFFSET", TYPE_OFFSET),
                ("FLAGS_OFFSET", FLAGS_OFFSET),
                ("PAGE_ID_OFFSET", PAGE_ID_OFFSET),
                ("TXN_ID_OFFSET", TXN_ID_OFFSET),
                ("PAYLOAD_LENGTH_OFFSET", PAYLOAD_LENGTH_OFFSET),
                ("HEADER_CRC_OFFSET", HEADER_CRC_OFFSET),
                ("PAGE_CRC_OFFSET", PAGE_CRC_OFFSET),
                ("HEADER_RESERVED_OFFSET", HEADER_RESERVED_OFFSET),
                ("HEADER_SIZE", HEADER_SIZE),
            ],
        );
        check_layout(
            &mut r,
            &layouts,
            &[
                ("NODE_COUNT_OFFSET", NODE_COUNT_OFFSET),
                ("NODE_DEAD_OFFSET", NODE_DEAD_OFFSET),
                ("NODE_CELL_START_OFFSET", NODE_CELL_START_OFFSET),
                ("NODE_LINK_OFFSET", NODE_LINK_OFFSET),
                ("NODE_LINK_TXN_OFFSET", NODE_LINK_TXN_OFFSET),
                ("NODE_SLOTS_OFFSET", NODE_SLOTS_OFFSET),
            ],
        );
        check_layout(
            &mut r,
            &layouts,
            &[
                ("LEAF_CELL_KLEN", LEAF_CELL_KLEN),
                ("LEAF_CELL_VLEN", LEAF_CELL_VLEN),
                ("LEAF_CELL_HEADER", LEAF_CELL_HEADER),
            ],
        );
        check_layout(
            &mut r,
            &layouts,
            &[
                ("OVERFLOW_REF_PAGE", OVERFLOW_REF_PAGE),
                ("OVERFLOW_REF_TXN", OVERFLOW_REF_TXN),
                ("OVERFLOW_REF_SIZE", OVERFLOW_REF_SIZE),
            ],
        );
        check_layout(
            &mut r,
            &layouts,
            &[
                ("BRANCH_CELL_CHILD", BRANCH_CELL_CHILD),
                ("BRANCH_CELL_CHILD_TXN", BRANCH_CELL_CHILD_TXN),
                ("BRANCH_CELL_KLEN", BRANCH_CELL_KLEN),
                ("BRANCH_CELL_HEADER", BRANCH_CELL_HEADER),
            ],
        );
        // The tables of pages only the TypeScript pager reads or writes: a new
        // table must be added here or above, so none goes unnoticed.
        let typescript_only = [
            "META_MAGIC_OFFSET",
            "OVERFLOW_NEXT_OFFSET",
            "FREELIST_NEXT_OFFSET",
            "HISTORY_NEXT_OFFSET",
            "LOG_MAGIC_OFFSET",
        ];
        for (section, rows) in &layouts {
            let first = rows.first().map_or("", |row| row.name);
            if !typescript_only.contains(&first) && !r.checked.contains(first) {
                let line = rows.first().map_or(0, |row| row.line);
                r.problem(
                    line,
                    format!("§{section}: a layout table the Rust test does not know"),
                );
            }
        }

        let row = |name: &str| layout_row(&layouts, name);
        // §2.1: the magic as a u32 and as its bytes on disk, the version, the page types.
        if let Some(magic) = row("MAGIC_OFFSET") {
            r.expect("PAGE_MAGIC", PAGE_MAGIC, hex_u32(magic.field), magic.line);
            r.expect(
                "PAGE_MAGIC",
                PAGE_MAGIC.to_le_bytes(),
                hex_bytes(magic.field),
                magic.line,
            );
        }
        if let Some(version) = row("VERSION_OFFSET") {
            let want = number_after(version.field, "u16 = ").map(|v| v as u16);
            r.expect("FORMAT_VERSION", FORMAT_VERSION, want, version.line);
        }
        if let Some(types) = row("TYPE_OFFSET") {
            let code = [
                ("meta", "PAGE_TYPE_META", PAGE_TYPE_META),
                ("branch", "PAGE_TYPE_BRANCH", PAGE_TYPE_BRANCH),
                ("leaf", "PAGE_TYPE_LEAF", PAGE_TYPE_LEAF),
                ("freelist", "PAGE_TYPE_FREELIST", PAGE_TYPE_FREELIST),
                ("overflow", "PAGE_TYPE_OVERFLOW", PAGE_TYPE_OVERFLOW),
                ("history", "PAGE_TYPE_HISTORY", PAGE_TYPE_HISTORY),
            ];
            check_enumeration(&mut r, types, "page types", &code, |n| n as u8);
        }
        // §4.2: the overflow bit of the value-length field, and the slot size of §4.1.
        if let Some(vlen) = row("LEAF_CELL_VLEN") {
            let want = number_after(vlen.field, "bit ")
                .filter(|_| vlen.field.contains("`VALUE_OVERFLOW_BIT`"))
                .map(|bit| 1u32 << bit);
            r.expect("VALUE_OVERFLOW_BIT", VALUE_OVERFLOW_BIT, want, vlen.line);
        }
        if let Some(slots) = row("NODE_SLOTS_OFFSET") {
            let want = tables
                .iter()
                .flat_map(|t| &t.rows)
                .find(|row| row.line == slots.line)
                .and_then(|row| row.cell(1).strip_suffix(" × count"))
                .and_then(|n| n.parse().ok());
            r.expect("SLOT_SIZE", SLOT_SIZE, want, slots.line);
        }

        // §2.3: the pageVerify statuses, in check order, and 0 for a page that passes.
        let code = [
            ("BAD_MAGIC", status::BAD_MAGIC),
            ("BAD_HEADER_CHECKSUM", status::BAD_HEADER_CHECKSUM),
            ("UNSUPPORTED_VERSION", status::UNSUPPORTED_VERSION),
            ("BAD_PAGE_TYPE", status::BAD_PAGE_TYPE),
            ("WRONG_PAGE_ID", status::WRONG_PAGE_ID),
            ("BAD_PAYLOAD_LENGTH", status::BAD_PAYLOAD_LENGTH),
            ("BAD_PAGE_CHECKSUM", status::BAD_PAGE_CHECKSUM),
        ];
        check_statuses(&mut r, &tables, "pageVerify", "§2.3", &code);
        let (line, text) = line_with(spec, "`pageVerify(page, expectedPageId)` returns");
        let want = number_after(text, "the first failing status, or ").map(|v| v as u32);
        r.expect("status::OK", status::OK, want, line);

        // §1 page sizes and §4.4 node buffers, stated in prose.
        let (line, text) = line_with(spec, "`pageSize` is ");
        let want: Vec<usize> = text
            .split(" bytes")
            .next()
            .unwrap_or("")
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        r.expect("PAGE_SIZES", PAGE_SIZES.to_vec(), Some(want), line);
        let (line, text) = line_with(spec, "Node kernels accept buffers of ");
        let want = number_after(text, "buffers of ").map(|n| n as usize);
        r.expect("MIN_NODE_BUFFER", MIN_NODE_BUFFER, want, line);
        let want = number_after(text, " … ").map(|n| n as usize);
        r.expect("MAX_NODE_BUFFER", MAX_NODE_BUFFER, want, line);
        r
    }

    #[test]
    fn constants_match_the_spec_tables() {
        check_against_the_spec().assert_ok("spec/file_format_v1.md");
    }

    #[test]
    fn every_constant_is_checked_against_the_spec() {
        let declared = pub_consts(include_str!("layout.rs"), "");
        check_against_the_spec().assert_covers(&declared, "kernels/layout.rs");
    }
}
