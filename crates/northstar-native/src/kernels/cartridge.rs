//! The cartridge file (spec/cartridge_v1.md): its constants (§2), mirroring
//! `ts/cartridge/format.ts`, and `entry_disorder`, the entry-order part of
//! check 5 of §3. TypeScript twin: `cartridgeDisorder` in
//! `ts/native/fallback_cartridge.ts`; both are checked against each other by
//! `ts/native/parity_cartridge.test.ts`, and against the same known answers
//! here and in `ts/native/fallback_cartridge.test.ts`.
//!
//! Every offset is derived from the one before it, and the tests at the
//! bottom check every constant against the spec's tables
//! (`crate::spec_tables`). Little-endian everywhere: entries are read through
//! `layout::bytes`, never by casting, and `entry_disorder` checks the range
//! it is given before it reads a byte, so it neither panics nor reads outside
//! `bytes`, whatever they hold.

use crate::kernels::error::{range, KernelResult};
use crate::kernels::layout::bytes::{u32_at, u64_at};

pub const CARTRIDGE_MAGIC: u32 = 0x5443_534E; // "NSCT" read as a little-endian u32
pub const CARTRIDGE_VERSION: u16 = 1;
pub const CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE: u16 = 1;
/// The task_queue_v0 key layout the entries come from.
pub const QUEUE_LAYOUT_VERSION: u32 = 0;

// ---- Header (spec §2), at the start of the file ------------------------------
pub const H_MAGIC: usize = 0; // u32, CARTRIDGE_MAGIC
pub const H_VERSION: usize = H_MAGIC + 4; // u16
pub const H_TYPE: usize = H_VERSION + 2; // u16
pub const H_DB_ID: usize = H_TYPE + 2; // u64
pub const H_TXN_ID: usize = H_DB_ID + 8; // u64
pub const H_LOG_END: usize = H_TXN_ID + 8; // u64
pub const H_QUEUE_LAYOUT: usize = H_LOG_END + 8; // u32
pub const H_GROUP_COUNT: usize = H_QUEUE_LAYOUT + 4; // u32
pub const H_ENTRY_COUNT: usize = H_GROUP_COUNT + 4; // u64
pub const H_GROUPS_OFFSET: usize = H_ENTRY_COUNT + 8; // u64
pub const H_ENTRIES_OFFSET: usize = H_GROUPS_OFFSET + 8; // u64
pub const H_NAMES_OFFSET: usize = H_ENTRIES_OFFSET + 8; // u64
pub const H_FILE_LENGTH: usize = H_NAMES_OFFSET + 8; // u64
/// 40 zero bytes (`format.ts` checks them from the literal 80).
pub const H_RESERVED: usize = H_FILE_LENGTH + 8;
pub const H_HEADER_END: usize = H_RESERVED + 40; // u64, CARTRIDGE_HEADER_SIZE
pub const CARTRIDGE_HEADER_SIZE: usize = H_HEADER_END + 8; // 128

/// A group table record (§2 item 1).
pub const CARTRIDGE_GROUP_SIZE: usize = 32;

// ---- Entry (spec §2 item 2), offsets from the start of the entry --------------
pub const ENTRY_RANK: usize = 0; // u32
pub const ENTRY_RESERVED: usize = ENTRY_RANK + 4; // u32, zero
pub const ENTRY_READY_AT: usize = ENTRY_RESERVED + 4; // u64
pub const ENTRY_ID: usize = ENTRY_READY_AT + 8; // u64
pub const CARTRIDGE_ENTRY_SIZE: usize = ENTRY_ID + 8; // 24

/// 4 zero bytes, then the CRC-32C of the file before it (§2 item 4).
pub const CARTRIDGE_TRAILER_SIZE: usize = 8;

type Entry = [u8; CARTRIDGE_ENTRY_SIZE];

/// An entry's place in claim order: (rank, readyAt, id), compared as unsigned.
#[inline(always)]
fn claim_order(e: &Entry) -> (u32, u64, u64) {
    // In bounds: constant offsets inside a fixed-size entry.
    (
        u32_at(e, ENTRY_RANK).unwrap_or(0),
        u64_at(e, ENTRY_READY_AT).unwrap_or(0),
        u64_at(e, ENTRY_ID).unwrap_or(0),
    )
}

/// Within the `count` entries of `CARTRIDGE_ENTRY_SIZE` bytes at `bytes[at..]`:
/// 0 when every reserved word is 0 and each entry is strictly after the one
/// before in (rank, readyAt, id); else, for the first entry `i` that breaks
/// this, `i` (> 0) when it is not after entry `i − 1`, or `−(i + 1)` when its
/// reserved word is not 0 (checked before it is compared with entry `i − 1`).
///
/// `RangeError` when the entries do not lie inside `bytes`
/// (`at + count × CARTRIDGE_ENTRY_SIZE > bytes.len()`).
pub fn entry_disorder(bytes: &[u8], at: usize, count: usize) -> KernelResult<i64> {
    let table = count
        .checked_mul(CARTRIDGE_ENTRY_SIZE)
        .and_then(|n| n.checked_add(at))
        .and_then(|end| bytes.get(at..end));
    let Some(table) = table else {
        return range(format!(
            "{count} entries at {at} pass the end of {} bytes",
            bytes.len()
        ));
    };
    let (entries, _) = table.as_chunks::<CARTRIDGE_ENTRY_SIZE>();
    let mut prev = (0, 0, 0);
    for (i, e) in entries.iter().enumerate() {
        if u32_at(e, ENTRY_RESERVED) != Some(0) {
            return Ok(-(i as i64) - 1);
        }
        let key = claim_order(e);
        if i > 0 && key <= prev {
            return Ok(i as i64);
        }
        prev = key;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::error::KernelError;
    use crate::kernels::layout::bytes::{put_u32, put_u64};
    use crate::spec_tables::*;

    /// The numbers of spec/cartridge_v1.md §2, typed by hand: a check that
    /// does not rely on the table parser of `check_against_the_spec`.
    #[test]
    fn offsets_are_the_known_numbers() {
        assert_eq!(
            [H_MAGIC, H_VERSION, H_TYPE, H_DB_ID, H_TXN_ID, H_LOG_END],
            [0, 4, 6, 8, 16, 24]
        );
        assert_eq!(
            [
                H_QUEUE_LAYOUT,
                H_GROUP_COUNT,
                H_ENTRY_COUNT,
                H_GROUPS_OFFSET,
                H_ENTRIES_OFFSET,
                H_NAMES_OFFSET,
                H_FILE_LENGTH,
                H_RESERVED,
                H_HEADER_END,
                CARTRIDGE_HEADER_SIZE
            ],
            [32, 36, 40, 48, 56, 64, 72, 80, 120, 128]
        );
        assert_eq!(
            [
                ENTRY_RANK,
                ENTRY_RESERVED,
                ENTRY_READY_AT,
                ENTRY_ID,
                CARTRIDGE_ENTRY_SIZE
            ],
            [0, 4, 8, 16, 24]
        );
        assert_eq!([CARTRIDGE_GROUP_SIZE, CARTRIDGE_TRAILER_SIZE], [32, 8]);
        assert_eq!(CARTRIDGE_MAGIC.to_le_bytes(), *b"NSCT");
        assert_eq!(
            (
                CARTRIDGE_VERSION,
                CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE,
                QUEUE_LAYOUT_VERSION
            ),
            (1, 1, 0)
        );
    }

    /// The first word of a table's field cell: "queueNameAt: offset …" gives
    /// "queueNameAt", "rank (`2^31 − 1 − priority`)" gives "rank".
    fn field_name(cell: &str) -> &str {
        cell.split([' ', ':']).next().unwrap_or("")
    }

    /// Offset plus size of a byte-table row.
    fn end_of(row: &Row) -> Option<usize> {
        Some(row.cell(0).parse::<usize>().ok()? + row.cell(1).parse::<usize>().ok()?)
    }

    /// Checks a byte table of §2 (`| offset | size | field | … |`) against
    /// `code`'s (field, constant name, offset): exactly these fields, in
    /// order, at these offsets, each row ending where the next starts and the
    /// last at `size` (its constant named `size_name`).
    fn check_table(
        r: &mut Report,
        what: &str,
        t: Option<&Table>,
        code: &[(&str, &str, usize)],
        size: (&str, usize),
    ) {
        let Some(t) = t else {
            r.problem(0, format!("no {what} table (§2)"));
            return;
        };
        if t.rows.len() != code.len() {
            r.problem(
                t.rows.first().map_or(0, |row| row.line),
                format!(
                    "{} rows in the {what} table, the code has {}",
                    t.rows.len(),
                    code.len()
                ),
            );
        }
        for (&(field, name, value), row) in code.iter().zip(&t.rows) {
            if field_name(row.cell(2)) != field {
                r.problem(
                    row.line,
                    format!(
                        "the {what} table has {:?} where the code has {name}",
                        row.cell(2)
                    ),
                );
            }
            r.expect(name, value, row.cell(0).parse().ok(), row.line);
        }
        for pair in t.rows.windows(2) {
            if end_of(&pair[0]) != pair[1].cell(0).parse().ok() {
                r.problem(
                    pair[0].line,
                    format!(
                        "{what} field {:?} does not end where the next starts",
                        pair[0].cell(2)
                    ),
                );
            }
        }
        if let Some(last) = t.rows.last() {
            r.expect(size.0, size.1, end_of(last), last.line);
        }
    }

    /// Every constant against spec/cartridge_v1.md §2, read from the spec's
    /// own tables; fails on a missing, extra or different row.
    fn check_against_the_spec() -> Report {
        let tables = parse_tables(CARTRIDGE_V1);
        let mut r = Report::default();

        // The header table, row by row; the fields' constants are named in format.ts.
        let header = tables_with_header(&tables, &["offset", "size", "field", "meaning"]);
        let code = [
            ("magic", "H_MAGIC", H_MAGIC),
            ("version", "H_VERSION", H_VERSION),
            ("type", "H_TYPE", H_TYPE),
            ("dbId", "H_DB_ID", H_DB_ID),
            ("txnId", "H_TXN_ID", H_TXN_ID),
            ("logEnd", "H_LOG_END", H_LOG_END),
            ("queueLayout", "H_QUEUE_LAYOUT", H_QUEUE_LAYOUT),
            ("groupCount", "H_GROUP_COUNT", H_GROUP_COUNT),
            ("entryCount", "H_ENTRY_COUNT", H_ENTRY_COUNT),
            ("groupsOffset", "H_GROUPS_OFFSET", H_GROUPS_OFFSET),
            ("entriesOffset", "H_ENTRIES_OFFSET", H_ENTRIES_OFFSET),
            ("namesOffset", "H_NAMES_OFFSET", H_NAMES_OFFSET),
            ("fileLength", "H_FILE_LENGTH", H_FILE_LENGTH),
            ("reserved", "H_RESERVED", H_RESERVED),
            ("headerEnd", "H_HEADER_END", H_HEADER_END),
        ];
        let size = ("CARTRIDGE_HEADER_SIZE", CARTRIDGE_HEADER_SIZE);
        check_table(&mut r, "header", header.first().copied(), &code, size);
        // The header's own mentions of its constants: the magic, and headerEnd's value.
        for (field, constant) in [
            ("magic", "CARTRIDGE_MAGIC"),
            ("headerEnd", "CARTRIDGE_HEADER_SIZE"),
        ] {
            let row = header
                .first()
                .and_then(|t| t.rows.iter().find(|row| row.cell(2) == field));
            if !row.is_some_and(|row| spans(row.cell(3)).contains(&constant)) {
                let line = row.map_or(0, |row| row.line);
                r.problem(line, format!("the {field} row does not name `{constant}`"));
            }
        }

        // The group and entry tables; only the entry's fields have constants.
        let records = tables_with_header(&tables, &["offset", "size", "field"]);
        let starting = |field: &str| {
            records.iter().copied().find(|t| {
                t.rows
                    .first()
                    .is_some_and(|row| field_name(row.cell(2)) == field)
            })
        };
        let code = [
            ("rank", "ENTRY_RANK", ENTRY_RANK),
            ("reserved", "ENTRY_RESERVED", ENTRY_RESERVED),
            ("readyAt", "ENTRY_READY_AT", ENTRY_READY_AT),
            ("id", "ENTRY_ID", ENTRY_ID),
        ];
        let size = ("CARTRIDGE_ENTRY_SIZE", CARTRIDGE_ENTRY_SIZE);
        check_table(&mut r, "entry", starting("rank"), &code, size);
        match starting("queueNameAt") {
            Some(t) => {
                let last = t.rows.last();
                let line = last.map_or(0, |row| row.line);
                let end = last.and_then(end_of);
                r.expect("CARTRIDGE_GROUP_SIZE", CARTRIDGE_GROUP_SIZE, end, line);
            }
            None => r.problem(0, "no group table (§2)".to_owned()),
        }
        if records.len() != 2 {
            r.problem(
                0,
                format!("{} record tables in §2, the test knows 2", records.len()),
            );
        }

        // The constants table: exactly the code's, at the code's values.
        let code: [(&str, u64); 8] = [
            ("CARTRIDGE_MAGIC", CARTRIDGE_MAGIC.into()),
            ("CARTRIDGE_VERSION", CARTRIDGE_VERSION.into()),
            (
                "CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE",
                CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE.into(),
            ),
            ("QUEUE_LAYOUT_VERSION", QUEUE_LAYOUT_VERSION.into()),
            ("CARTRIDGE_HEADER_SIZE", CARTRIDGE_HEADER_SIZE as u64),
            ("CARTRIDGE_GROUP_SIZE", CARTRIDGE_GROUP_SIZE as u64),
            ("CARTRIDGE_ENTRY_SIZE", CARTRIDGE_ENTRY_SIZE as u64),
            ("CARTRIDGE_TRAILER_SIZE", CARTRIDGE_TRAILER_SIZE as u64),
        ];
        match tables_with_header(&tables, &["constant", "value"]).first() {
            Some(t) => {
                for row in &t.rows {
                    let name = backticked(row.cell(0)).unwrap_or("");
                    let cell = row.cell(1);
                    let want = match backticked(cell).and_then(|v| v.strip_prefix("0x")) {
                        Some(hex) => u64::from_str_radix(hex, 16).ok(),
                        None => cell.parse().ok(),
                    };
                    match code.iter().find(|&&(n, _)| n == name) {
                        Some(&(_, value)) => r.expect(name, value, want, row.line),
                        None => r.problem(row.line, format!("`{name}`, which the code lacks")),
                    }
                }
                for &(name, _) in &code {
                    if !t
                        .rows
                        .iter()
                        .any(|row| backticked(row.cell(0)) == Some(name))
                    {
                        r.problem(t.rows[0].line, format!("no row for {name}"));
                    }
                }
            }
            None => r.problem(0, "no constants table (§2)".to_owned()),
        }
        r
    }

    #[test]
    fn constants_match_the_spec_tables() {
        check_against_the_spec().assert_ok("spec/cartridge_v1.md");
    }

    #[test]
    fn every_constant_is_checked_against_the_spec() {
        let declared = pub_consts(include_str!("cartridge.rs"), "");
        check_against_the_spec().assert_covers(&declared, "kernels/cartridge.rs");
    }

    /// An entry's fields: rank, reserved, readyAt, id.
    type Fields = (u32, u32, u64, u64);

    /// Entries laid out back to back after `at` bytes of 0xEE.
    fn table(at: usize, entries: &[Fields]) -> Vec<u8> {
        let mut b = vec![0xEE; at + entries.len() * CARTRIDGE_ENTRY_SIZE];
        for (i, &(rank, reserved, ready_at, id)) in entries.iter().enumerate() {
            let e = at + i * CARTRIDGE_ENTRY_SIZE;
            put_u32(&mut b, e + ENTRY_RANK, rank);
            put_u32(&mut b, e + ENTRY_RESERVED, reserved);
            put_u64(&mut b, e + ENTRY_READY_AT, ready_at);
            put_u64(&mut b, e + ENTRY_ID, id);
        }
        b
    }

    fn disorder(entries: &[Fields]) -> i64 {
        entry_disorder(&table(0, entries), 0, entries.len()).unwrap()
    }

    /// The vector ts/native/fallback_cartridge.test.ts pins too: three entries
    /// in claim order at byte 3 of the buffer, then one out of order.
    #[test]
    fn known_answer() {
        let hex = concat!(
            "eeeeee",
            "01000000000000000500000000000000",
            "0900000000000000",
            "01000000000000000500000000000000",
            "0a00000000000000",
            "02000000000000000000000000000000",
            "0000000000000000",
            "01000000000000000000000000000000",
            "0000000000000000",
        );
        let b: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            b,
            table(
                3,
                &[(1, 0, 5, 9), (1, 0, 5, 10), (2, 0, 0, 0), (1, 0, 0, 0)]
            )
        );
        assert_eq!(entry_disorder(&b, 3, 3), Ok(0));
        assert_eq!(entry_disorder(&b, 3, 4), Ok(3));
        assert_eq!(entry_disorder(&b, 3 + CARTRIDGE_ENTRY_SIZE, 3), Ok(2));
        assert_eq!(entry_disorder(&b, 3 + 3 * CARTRIDGE_ENTRY_SIZE, 1), Ok(0));
        // Read 4 bytes early, entry 0's readyAt (5) is the reserved word.
        assert_eq!(entry_disorder(&b, 7, 1), Ok(-1));
    }

    #[test]
    fn empty_and_single_tables_are_in_order() {
        assert_eq!(entry_disorder(&[], 0, 0), Ok(0));
        assert_eq!(entry_disorder(&[1, 2, 3], 3, 0), Ok(0));
        assert_eq!(disorder(&[(u32::MAX, 0, u64::MAX, u64::MAX)]), 0);
    }

    #[test]
    fn orders_by_rank_then_ready_at_then_id_unsigned() {
        let max = u64::MAX;
        let cases: &[(&[Fields], i64)] = &[
            (&[(1, 0, 9, 9), (2, 0, 0, 0)], 0),
            (&[(1, 0, 0, 0), (1, 0, 1, 0)], 0),
            (&[(1, 0, 1, 0), (1, 0, 1, 1)], 0),
            (&[(2, 0, 0, 0), (1, 0, 9, 9)], 1),
            (&[(1, 0, 1, 0), (1, 0, 0, 9)], 1),
            (&[(1, 0, 1, 2), (1, 0, 1, 1)], 1),
            // Equal entries are not strictly after each other.
            (&[(1, 0, 1, 1), (1, 0, 1, 1)], 1),
            (&[(0, 0, 0, 0), (0, 0, 0, 0)], 1),
            // Unsigned words: the top bit is large, not negative.
            (&[(1, 0, 0, 0), (0x8000_0000, 0, 0, 0)], 0),
            (&[(0x8000_0000, 0, 0, 0), (1, 0, 0, 0)], 1),
            (&[(1, 0, 1 << 63, 0), (1, 0, max, 0)], 0),
            (&[(1, 0, 0, max), (1, 0, 1, 0)], 0),
            // The high word of readyAt and id decides before the low word.
            (&[(1, 0, 0xFFFF_FFFF, 0), (1, 0, 1 << 32, 0)], 0),
            (&[(1, 0, 1 << 32, 0), (1, 0, 0xFFFF_FFFF, 0)], 1),
            (&[(1, 0, 7, 0xFFFF_FFFF), (1, 0, 7, 1 << 32)], 0),
            (&[(1, 0, 7, 1 << 32), (1, 0, 7, 0xFFFF_FFFF)], 1),
            // The first break counts, wherever it is.
            (
                &[
                    (1, 0, 0, 0),
                    (2, 0, 0, 0),
                    (3, 0, 0, 0),
                    (3, 0, 0, 0),
                    (1, 0, 0, 0),
                ],
                3,
            ),
        ];
        for (i, &(entries, want)) in cases.iter().enumerate() {
            assert_eq!(disorder(entries), want, "case {i}: {entries:?}");
        }
    }

    #[test]
    fn a_nonzero_reserved_word_is_minus_its_index_plus_one() {
        assert_eq!(disorder(&[(1, 1, 0, 0)]), -1);
        assert_eq!(disorder(&[(1, 0, 0, 0), (2, 0x8000_0000, 0, 0)]), -2);
        // Checked before entry i is compared with entry i − 1.
        assert_eq!(disorder(&[(2, 0, 0, 0), (1, 1, 0, 0)]), -2);
        // A disorder before it wins.
        assert_eq!(disorder(&[(2, 0, 0, 0), (1, 0, 0, 0), (3, 1, 0, 0)]), 1);
        assert_eq!(
            disorder(&[(1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0), (4, 7, 0, 0)]),
            -4
        );
    }

    #[test]
    fn every_first_break_is_found_at_every_offset() {
        let n = 40;
        for at in 0..8 {
            let sorted: Vec<_> = (0..n as u64).map(|i| (i as u32 / 4, 0, i % 4, i)).collect();
            assert_eq!(entry_disorder(&table(at, &sorted), at, n), Ok(0));
            for i in 1..n {
                let mut e = sorted.clone();
                e[i] = e[i - 1];
                assert_eq!(entry_disorder(&table(at, &e), at, n), Ok(i as i64));
                let mut e = sorted.clone();
                e[i].1 = 1 << (i % 32);
                assert_eq!(entry_disorder(&table(at, &e), at, n), Ok(-(i as i64) - 1));
            }
        }
    }

    #[test]
    fn entries_outside_the_bytes_are_a_range_error() {
        let b = table(0, &[(1, 0, 0, 0), (2, 0, 0, 0)]);
        assert_eq!(entry_disorder(&b, 0, 2), Ok(0));
        assert_eq!(entry_disorder(&b, 48, 0), Ok(0));
        assert_eq!(
            entry_disorder(&b, 1, 2),
            Err(KernelError::Range(
                "2 entries at 1 pass the end of 48 bytes".to_owned()
            ))
        );
        for (at, count) in [
            (0, 3),
            (49, 0),
            (25, 1),
            (usize::MAX, 0),
            (usize::MAX, 1),
            (0, usize::MAX),
            (1, usize::MAX / CARTRIDGE_ENTRY_SIZE),
        ] {
            assert!(
                matches!(entry_disorder(&b, at, count), Err(KernelError::Range(_))),
                "at {at}, count {count}"
            );
        }
    }
}
