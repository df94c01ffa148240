//! Commit-log record kernels: `record_seal`, `record_verify`, `record_decode`
//! (spec/commit_record_v0.md §4, §5). TypeScript twins: `recordSeal`,
//! `recordVerify`, `recordDecode` in `ts/native/fallback_log.ts`; both are
//! checked against each other by `ts/log/parity.test.ts`.
//!
//! Every field is read through `layout::bytes`, which cannot read out of
//! bounds, and every range is checked before it is sliced: whatever the bytes
//! of a record say, these functions neither panic nor touch memory outside
//! the slices they are given.

use crate::kernels::crc32c::crc32c;
use crate::kernels::error::{range, KernelResult};
use crate::kernels::layout::bytes::{put_u32, u16_at, u32_at};

/// Byte layout of a v0 record, mirroring `ts/format/record.ts`; every offset
/// is derived from the one before it, and the tests below check every constant
/// against the spec's tables (`crate::spec_tables`) and pin the numbers by hand too.
pub mod layout {
    pub const RECORD_VERSION: u16 = 0;

    // Record header (spec §2), 40 bytes.
    pub const RECORD_MAGIC: u32 = 0x4C4F_4752; // "LOGR"
    pub const RECORD_MAGIC_OFFSET: usize = 0; // u32
    pub const RECORD_VERSION_OFFSET: usize = RECORD_MAGIC_OFFSET + 4; // u16
    pub const RECORD_TYPE_OFFSET: usize = RECORD_VERSION_OFFSET + 2; // u16
    pub const RECORD_HEADER_LENGTH_OFFSET: usize = RECORD_TYPE_OFFSET + 2; // u16
    pub const RECORD_FLAGS_OFFSET: usize = RECORD_HEADER_LENGTH_OFFSET + 2; // u16
    /// Flag bit 0: written while an earlier record was not yet known durable (spec §2.2).
    pub const RECORD_FLAG_UNSYNCED_BEFORE: u16 = 1;
    /// Flag bit 1: the commit payload ends in a pages section (spec §2.2, §3.5);
    /// commit records only.
    pub const RECORD_FLAG_PAGES: u16 = 2;
    /// Every flag bit a v0 reader accepts.
    pub const RECORD_FLAGS_KNOWN: u16 = RECORD_FLAG_UNSYNCED_BEFORE | RECORD_FLAG_PAGES;
    pub const RECORD_TXN_ID_OFFSET: usize = RECORD_FLAGS_OFFSET + 2; // u64
    pub const RECORD_PREV_POSITION_OFFSET: usize = RECORD_TXN_ID_OFFSET + 8; // u64
    pub const RECORD_PAYLOAD_LENGTH_OFFSET: usize = RECORD_PREV_POSITION_OFFSET + 8; // u32
    pub const RECORD_HEADER_CRC_OFFSET: usize = RECORD_PAYLOAD_LENGTH_OFFSET + 4; // u32
    pub const RECORD_PAYLOAD_CRC_OFFSET: usize = RECORD_HEADER_CRC_OFFSET + 4; // u32
    pub const RECORD_HEADER_SIZE: usize = RECORD_PAYLOAD_CRC_OFFSET + 4; // 40

    pub const RECORD_TYPE_COMMIT: u16 = 0;
    pub const RECORD_TYPE_CHECKPOINT: u16 = 1;
    // Every other type is BadHeader in v0 (spec §3.4).

    // Trailer (spec §4), offsets from its start.
    pub const TRAILER_MAGIC: u32 = 0x5247_4F4C; // "RGOL"
    pub const TRAILER_MAGIC_OFFSET: usize = 0; // u32
    pub const TRAILER_LENGTH_OFFSET: usize = TRAILER_MAGIC_OFFSET + 4; // u32
    pub const TRAILER_CRC_OFFSET: usize = TRAILER_LENGTH_OFFSET + 4; // u32
    pub const TRAILER_SIZE: usize = TRAILER_CRC_OFFSET + 4; // 12
    pub const RECORD_OVERHEAD: usize = RECORD_HEADER_SIZE + TRAILER_SIZE;

    // Commit payload (spec §3.1), offsets from the start of the payload.
    pub const COMMIT_MAGIC: u32 = 0x434D_4954; // "CMIT"
    pub const COMMIT_MAGIC_OFFSET: usize = 0; // u32
    pub const COMMIT_TXN_ID_OFFSET: usize = COMMIT_MAGIC_OFFSET + 4; // u64
    pub const COMMIT_ROOT_OFFSET: usize = COMMIT_TXN_ID_OFFSET + 8; // u64
    pub const COMMIT_OP_COUNT_OFFSET: usize = COMMIT_ROOT_OFFSET + 8; // u32
    pub const COMMIT_RESERVED_OFFSET: usize = COMMIT_OP_COUNT_OFFSET + 4; // u32, zero
    pub const COMMIT_OPS_OFFSET: usize = COMMIT_RESERVED_OFFSET + 4; // 28

    // Op (spec §3.2), offsets from the start of the op.
    pub const OP_TYPE_OFFSET: usize = 0; // u8
    pub const OP_FLAGS_OFFSET: usize = OP_TYPE_OFFSET + 1; // u8, zero
    pub const OP_KEY_LENGTH_OFFSET: usize = OP_FLAGS_OFFSET + 1; // u16
    pub const OP_VALUE_LENGTH_OFFSET: usize = OP_KEY_LENGTH_OFFSET + 2; // u32
    pub const OP_KEY_OFFSET: usize = OP_VALUE_LENGTH_OFFSET + 4; // 8
    pub const OP_PUT: u8 = 0;
    pub const OP_DEL: u8 = 1;

    // Checkpoint payload (spec §3.3), offsets from the payload.
    pub const CHECKPOINT_MAGIC: u32 = 0x4348_4B50; // "CHKP"
    pub const CHECKPOINT_MAGIC_OFFSET: usize = 0; // u32
    pub const CHECKPOINT_RESERVED_OFFSET: usize = CHECKPOINT_MAGIC_OFFSET + 4; // u32, zero
    pub const CHECKPOINT_TXN_ID_OFFSET: usize = CHECKPOINT_RESERVED_OFFSET + 4; // u64
    pub const CHECKPOINT_ROOT_OFFSET: usize = CHECKPOINT_TXN_ID_OFFSET + 8; // u64
    pub const CHECKPOINT_PAGE_COUNT_OFFSET: usize = CHECKPOINT_ROOT_OFFSET + 8; // u64
    pub const CHECKPOINT_REPLAY_FROM_OFFSET: usize = CHECKPOINT_PAGE_COUNT_OFFSET + 8; // u64
    pub const CHECKPOINT_PAYLOAD_SIZE: usize = CHECKPOINT_REPLAY_FROM_OFFSET + 8; // 40

    // Pages section (spec §3.5) at the end of a commit payload with
    // RECORD_FLAG_PAGES: u64 page ids (written, freed, freedYoung), then the
    // tail, which ends at the end of the payload. Offsets from the tail's start.
    pub const PAGES_MAGIC: u32 = 0x5041_4753; // "PAGS"
    pub const PAGES_ID_SIZE: usize = 8;
    pub const PAGES_PAGE_COUNT_OFFSET: usize = 0; // u64
    pub const PAGES_ENTRY_COUNT_OFFSET: usize = PAGES_PAGE_COUNT_OFFSET + 8; // u64
    pub const PAGES_DEPTH_OFFSET: usize = PAGES_ENTRY_COUNT_OFFSET + 8; // u32
    pub const PAGES_WRITTEN_COUNT_OFFSET: usize = PAGES_DEPTH_OFFSET + 4; // u32
    pub const PAGES_FREED_COUNT_OFFSET: usize = PAGES_WRITTEN_COUNT_OFFSET + 4; // u32
    pub const PAGES_FREED_YOUNG_COUNT_OFFSET: usize = PAGES_FREED_COUNT_OFFSET + 4; // u32
    pub const PAGES_RESERVED_OFFSET: usize = PAGES_FREED_YOUNG_COUNT_OFFSET + 4; // u32, zero
    pub const PAGES_MAGIC_OFFSET: usize = PAGES_RESERVED_OFFSET + 4; // u32
    pub const PAGES_TAIL_SIZE: usize = PAGES_MAGIC_OFFSET + 4; // 40

    // Limits (spec §6).
    pub const MIN_RECORD_KEY_SIZE: usize = 1;
    pub const MAX_RECORD_KEY_SIZE: usize = 4096;
    pub const MAX_RECORD_VALUE_SIZE: usize = 16 * 1024 * 1024;
    pub const MAX_PAYLOAD_CEILING: usize = 1024 * 1024 * 1024;
    /// High word of a u64 that is still a safe integer (< 2^53).
    pub const MAX_SAFE_HI: u32 = 0x1F_FFFF;

    /// recordVerify results (spec §5.1) other than a total length, in check order.
    pub mod status {
        pub const INCOMPLETE: i32 = -1;
        pub const BAD_MAGIC: i32 = -2;
        pub const BAD_HEADER_CHECKSUM: i32 = -3;
        pub const UNSUPPORTED_VERSION: i32 = -4;
        pub const BAD_HEADER: i32 = -5;
        pub const BAD_PAYLOAD_CHECKSUM: i32 = -6;
        pub const BAD_TRAILER: i32 = -7;
        pub const BAD_PAYLOAD: i32 = -8;
    }
}

use layout::*;

/// Key offsets handed out by `record_decode` are u32: the record must end below 2^32.
const MAX_DECODE_END: usize = 0xFFFF_FFFF;

#[inline(always)]
fn u32f(b: &[u8], o: usize) -> u32 {
    u32_at(b, o).unwrap_or(0)
}

#[inline(always)]
fn u16f(b: &[u8], o: usize) -> u16 {
    u16_at(b, o).unwrap_or(0)
}

/// The 40 header bytes at `o`, copied; `None` when fewer are present.
#[inline(always)]
fn header_at(buf: &[u8], o: usize) -> Option<[u8; RECORD_HEADER_SIZE]> {
    let h = buf.get(o..o.checked_add(RECORD_HEADER_SIZE)?)?;
    let mut out = [0u8; RECORD_HEADER_SIZE];
    out.copy_from_slice(h);
    Some(out)
}

/// Header CRC (spec §4): the header with its header-CRC field read as zero.
#[inline(always)]
fn header_crc(header: &[u8; RECORD_HEADER_SIZE]) -> u32 {
    let mut h = *header;
    h[RECORD_HEADER_CRC_OFFSET..RECORD_HEADER_CRC_OFFSET + 4].fill(0);
    crc32c(&h, 0)
}

/// Trailer CRC (spec §4): the header as stored, then the trailer's first 8 bytes.
#[inline(always)]
fn trailer_crc(header: &[u8; RECORD_HEADER_SIZE], trailer_head: &[u8]) -> u32 {
    let mut b = [0u8; RECORD_HEADER_SIZE + TRAILER_CRC_OFFSET];
    b[..RECORD_HEADER_SIZE].copy_from_slice(header);
    let n = trailer_head.len().min(TRAILER_CRC_OFFSET);
    b[RECORD_HEADER_SIZE..RECORD_HEADER_SIZE + n].copy_from_slice(&trailer_head[..n]);
    crc32c(&b, 0)
}

#[inline(always)]
fn safe_u64(b: &[u8], o: usize) -> bool {
    u32f(b, o + 4) <= MAX_SAFE_HI
}

#[inline(always)]
fn same_u64(a: &[u8], ao: usize, b: &[u8], bo: usize) -> bool {
    u32f(a, ao) == u32f(b, bo) && u32f(a, ao + 4) == u32f(b, bo + 4)
}

/// Completes the record whose header fields (magic … payload length) and
/// payload are already at `buf[offset..]`: writes the payload CRC, the header
/// CRC and the trailer, and returns the total length. Checks only what it
/// needs to stay inside `buf`; the caller has checked `offset <= buf.len()`.
pub fn record_seal(buf: &mut [u8], offset: usize) -> KernelResult<u32> {
    let Some(mut header) = header_at(buf, offset) else {
        return range(format!(
            "record header at {offset} does not fit in a buffer of {} bytes",
            buf.len()
        ));
    };
    let payload_length = u32f(&header, RECORD_PAYLOAD_LENGTH_OFFSET) as usize;
    if payload_length > MAX_PAYLOAD_CEILING {
        return range(format!(
            "payload length {payload_length} exceeds the format's ceiling of {MAX_PAYLOAD_CEILING} bytes"
        ));
    }
    let total = RECORD_OVERHEAD + payload_length;
    let Some(record) = buf.get_mut(offset..).and_then(|r| r.get_mut(..total)) else {
        return range(format!(
            "record of {total} bytes at {offset} does not fit in a buffer of {} bytes",
            buf.len()
        ));
    };
    let t = RECORD_HEADER_SIZE + payload_length;
    let payload_crc = crc32c(&record[RECORD_HEADER_SIZE..t], 0);
    put_u32(&mut header, RECORD_PAYLOAD_CRC_OFFSET, payload_crc);
    let hcrc = header_crc(&header);
    put_u32(&mut header, RECORD_HEADER_CRC_OFFSET, hcrc);
    let mut trailer = [0u8; TRAILER_SIZE];
    put_u32(&mut trailer, TRAILER_MAGIC_OFFSET, TRAILER_MAGIC);
    put_u32(&mut trailer, TRAILER_LENGTH_OFFSET, total as u32);
    let tcrc = trailer_crc(&header, &trailer[..TRAILER_CRC_OFFSET]);
    put_u32(&mut trailer, TRAILER_CRC_OFFSET, tcrc);
    record[..RECORD_HEADER_SIZE].copy_from_slice(&header);
    record[t..].copy_from_slice(&trailer);
    Ok(total as u32)
}

/// The total length (> 0) of the record at `buf[offset..]` if it is whole and
/// valid, else the first failing status of spec §5.1 (< 0). Total: any
/// `offset` gives a status, one past the end `Incomplete`.
pub fn record_verify(buf: &[u8], offset: usize) -> i32 {
    let Some(rest) = buf.get(offset..) else {
        return status::INCOMPLETE;
    };
    match u32_at(rest, RECORD_MAGIC_OFFSET) {
        None => return status::INCOMPLETE,
        Some(m) if m != RECORD_MAGIC => return status::BAD_MAGIC,
        Some(_) => {}
    }
    let Some(header) = header_at(rest, 0) else {
        return status::INCOMPLETE;
    };
    if u32f(&header, RECORD_HEADER_CRC_OFFSET) != header_crc(&header) {
        return status::BAD_HEADER_CHECKSUM;
    }
    if u16f(&header, RECORD_VERSION_OFFSET) != RECORD_VERSION {
        return status::UNSUPPORTED_VERSION;
    }
    let kind = u16f(&header, RECORD_TYPE_OFFSET);
    let flags = u16f(&header, RECORD_FLAGS_OFFSET);
    let payload_length = u32f(&header, RECORD_PAYLOAD_LENGTH_OFFSET) as usize;
    if u16f(&header, RECORD_HEADER_LENGTH_OFFSET) as usize != RECORD_HEADER_SIZE
        || flags & !RECORD_FLAGS_KNOWN != 0
        || (flags & RECORD_FLAG_PAGES != 0 && kind != RECORD_TYPE_COMMIT)
        || kind > RECORD_TYPE_CHECKPOINT
        || !safe_u64(&header, RECORD_TXN_ID_OFFSET)
        || !safe_u64(&header, RECORD_PREV_POSITION_OFFSET)
        || payload_length > MAX_PAYLOAD_CEILING
    {
        return status::BAD_HEADER;
    }
    let total = RECORD_OVERHEAD + payload_length;
    let Some(record) = rest.get(..total) else {
        return status::INCOMPLETE;
    };
    let t = RECORD_HEADER_SIZE + payload_length;
    let payload = &record[RECORD_HEADER_SIZE..t];
    if u32f(&header, RECORD_PAYLOAD_CRC_OFFSET) != crc32c(payload, 0) {
        return status::BAD_PAYLOAD_CHECKSUM;
    }
    let trailer = &record[t..];
    if u32f(trailer, TRAILER_MAGIC_OFFSET) != TRAILER_MAGIC
        || u32f(trailer, TRAILER_LENGTH_OFFSET) as usize != total
        || u32f(trailer, TRAILER_CRC_OFFSET) != trailer_crc(&header, &trailer[..TRAILER_CRC_OFFSET])
    {
        return status::BAD_TRAILER;
    }
    // The type is commit or checkpoint: any other is BadHeader above.
    let ok = if kind == RECORD_TYPE_COMMIT {
        commit_payload_valid(&header, payload, flags & RECORD_FLAG_PAGES != 0)
    } else {
        checkpoint_payload_valid(&header, payload)
    };
    if ok {
        total as i32
    } else {
        status::BAD_PAYLOAD
    }
}

/// Commit payload rules of spec §5.2; the payload ends in a pages section
/// when `pages` (header flag bit 1).
fn commit_payload_valid(header: &[u8], payload: &[u8], pages: bool) -> bool {
    if payload.len() < COMMIT_OPS_OFFSET
        || u32f(payload, COMMIT_MAGIC_OFFSET) != COMMIT_MAGIC
        || !same_u64(payload, COMMIT_TXN_ID_OFFSET, header, RECORD_TXN_ID_OFFSET)
        || !safe_u64(payload, COMMIT_ROOT_OFFSET)
        || u32f(payload, COMMIT_RESERVED_OFFSET) != 0
    {
        return false;
    }
    // The ops end where the pages section starts, or at the end of the payload.
    let ops_end = if pages {
        match pages_section_start(payload) {
            Some(start) => start,
            None => return false,
        }
    } else {
        payload.len()
    };
    let mut ops = &payload[COMMIT_OPS_OFFSET..ops_end];
    // Each op takes at least 9 bytes, so a huge count runs out of payload quickly.
    for _ in 0..u32f(payload, COMMIT_OP_COUNT_OFFSET) {
        let Some(op) = ops.get(..OP_KEY_OFFSET) else {
            return false;
        };
        let kind = op[OP_TYPE_OFFSET];
        let klen = u16f(op, OP_KEY_LENGTH_OFFSET) as usize;
        let vlen = u32f(op, OP_VALUE_LENGTH_OFFSET) as usize;
        if kind > OP_DEL
            || op[OP_FLAGS_OFFSET] != 0
            || !(MIN_RECORD_KEY_SIZE..=MAX_RECORD_KEY_SIZE).contains(&klen)
            || vlen > MAX_RECORD_VALUE_SIZE
            || (kind == OP_DEL && vlen != 0)
        {
            return false;
        }
        let Some(rest) = ops.get(OP_KEY_OFFSET + klen + vlen..) else {
            return false;
        };
        ops = rest;
    }
    ops.is_empty()
}

/// Where the pages section (spec §3.5) of a commit payload starts, or `None`
/// when it breaks a rule of spec §5.2: the tail fits after the commit header,
/// its magic matches, reserved is 0, the ids fit between the commit header and
/// the tail, and page count, entry count and every id are at most 2^53 − 1.
/// A returned start is at least `COMMIT_OPS_OFFSET`.
fn pages_section_start(payload: &[u8]) -> Option<usize> {
    let t = payload
        .len()
        .checked_sub(PAGES_TAIL_SIZE)
        .filter(|&t| t >= COMMIT_OPS_OFFSET)?;
    let tail = &payload[t..];
    if u32f(tail, PAGES_MAGIC_OFFSET) != PAGES_MAGIC
        || u32f(tail, PAGES_RESERVED_OFFSET) != 0
        || !safe_u64(tail, PAGES_PAGE_COUNT_OFFSET)
        || !safe_u64(tail, PAGES_ENTRY_COUNT_OFFSET)
    {
        return None;
    }
    // Below 3 × 2^32 ids: no overflow in u64.
    let ids = u64::from(u32f(tail, PAGES_WRITTEN_COUNT_OFFSET))
        + u64::from(u32f(tail, PAGES_FREED_COUNT_OFFSET))
        + u64::from(u32f(tail, PAGES_FREED_YOUNG_COUNT_OFFSET));
    let room = (t - COMMIT_OPS_OFFSET) as u64;
    if ids * PAGES_ID_SIZE as u64 > room {
        return None;
    }
    let start = t - ids as usize * PAGES_ID_SIZE;
    payload[start..t]
        .chunks_exact(PAGES_ID_SIZE)
        .all(|id| safe_u64(id, 0))
        .then_some(start)
}

/// Checkpoint payload rules of spec §3.3.
fn checkpoint_payload_valid(header: &[u8], payload: &[u8]) -> bool {
    payload.len() == CHECKPOINT_PAYLOAD_SIZE
        && u32f(payload, CHECKPOINT_MAGIC_OFFSET) == CHECKPOINT_MAGIC
        && u32f(payload, CHECKPOINT_RESERVED_OFFSET) == 0
        && same_u64(
            payload,
            CHECKPOINT_TXN_ID_OFFSET,
            header,
            RECORD_TXN_ID_OFFSET,
        )
        && safe_u64(payload, CHECKPOINT_ROOT_OFFSET)
        && safe_u64(payload, CHECKPOINT_PAGE_COUNT_OFFSET)
        && safe_u64(payload, CHECKPOINT_REPLAY_FROM_OFFSET)
}

/// For the valid commit record at `buf[offset..]`: four u32 per op into
/// `out`, `[opType, keyOffset, keyLength, valueLength]` with `keyOffset` an
/// index into `buf`; returns the op count. Runs every check of
/// `record_verify` first: a record it rejects is a `RangeError` here.
pub fn record_decode(buf: &[u8], offset: usize, out: &mut [u32]) -> KernelResult<u32> {
    let total = record_verify(buf, offset);
    if total < 0 {
        return range(format!("record at {offset} is not valid (status {total})"));
    }
    if u16f(buf, offset + RECORD_TYPE_OFFSET) != RECORD_TYPE_COMMIT {
        return range(format!("record at {offset} is not a commit record"));
    }
    if offset + total as usize > MAX_DECODE_END {
        return range(format!(
            "record at {offset} ends beyond 2^32 − 1: key offsets would not fit in a u32"
        ));
    }
    let p = offset + RECORD_HEADER_SIZE;
    let count = u32f(buf, p + COMMIT_OP_COUNT_OFFSET) as usize;
    if out.len() / 4 < count {
        return range(format!(
            "out holds {} ops, record has {count}",
            out.len() / 4
        ));
    }
    // Verified above: every op lies inside the record.
    let mut i = p + COMMIT_OPS_OFFSET;
    for entry in out.chunks_exact_mut(4).take(count) {
        let klen = u16f(buf, i + OP_KEY_LENGTH_OFFSET) as u32;
        let vlen = u32f(buf, i + OP_VALUE_LENGTH_OFFSET);
        entry[0] = u32::from(buf.get(i + OP_TYPE_OFFSET).copied().unwrap_or(0));
        entry[1] = (i + OP_KEY_OFFSET) as u32;
        entry[2] = klen;
        entry[3] = vlen;
        i += OP_KEY_OFFSET + klen as usize + vlen as usize;
    }
    Ok(count as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::layout::bytes::{put_u16, put_u64};
    use crate::spec_tables::*;

    /// A sealed commit record of `ops` (key, value, del) at `offset` in a fresh buffer.
    fn commit(txn: u64, ops: &[(&[u8], &[u8], bool)], offset: usize) -> Vec<u8> {
        commit_with(txn, ops, offset, None)
    }

    /// Page ids and counts of a pages section (spec §3.5).
    struct Pages<'a> {
        page_count: u64,
        entry_count: u64,
        depth: u32,
        written: &'a [u64],
        freed: &'a [u64],
        freed_young: &'a [u64],
    }

    /// `commit`, with a pages section and flag bit 1 when `pages` is given.
    fn commit_with(
        txn: u64,
        ops: &[(&[u8], &[u8], bool)],
        offset: usize,
        pages: Option<&Pages>,
    ) -> Vec<u8> {
        let mut payload = vec![0u8; COMMIT_OPS_OFFSET];
        put_u32(&mut payload, COMMIT_MAGIC_OFFSET, COMMIT_MAGIC);
        put_u64(&mut payload, COMMIT_TXN_ID_OFFSET, txn);
        put_u64(&mut payload, COMMIT_ROOT_OFFSET, 7);
        put_u32(&mut payload, COMMIT_OP_COUNT_OFFSET, ops.len() as u32);
        for (k, v, del) in ops {
            let mut h = [0u8; OP_KEY_OFFSET];
            h[OP_TYPE_OFFSET] = if *del { OP_DEL } else { OP_PUT };
            put_u16(&mut h, OP_KEY_LENGTH_OFFSET, k.len() as u16);
            put_u32(&mut h, OP_VALUE_LENGTH_OFFSET, v.len() as u32);
            payload.extend_from_slice(&h);
            payload.extend_from_slice(k);
            payload.extend_from_slice(v);
        }
        if let Some(p) = pages {
            for id in p.written.iter().chain(p.freed).chain(p.freed_young) {
                payload.extend_from_slice(&id.to_le_bytes());
            }
            let mut tail = [0u8; PAGES_TAIL_SIZE];
            put_u64(&mut tail, PAGES_PAGE_COUNT_OFFSET, p.page_count);
            put_u64(&mut tail, PAGES_ENTRY_COUNT_OFFSET, p.entry_count);
            put_u32(&mut tail, PAGES_DEPTH_OFFSET, p.depth);
            put_u32(
                &mut tail,
                PAGES_WRITTEN_COUNT_OFFSET,
                p.written.len() as u32,
            );
            put_u32(&mut tail, PAGES_FREED_COUNT_OFFSET, p.freed.len() as u32);
            put_u32(
                &mut tail,
                PAGES_FREED_YOUNG_COUNT_OFFSET,
                p.freed_young.len() as u32,
            );
            put_u32(&mut tail, PAGES_MAGIC_OFFSET, PAGES_MAGIC);
            payload.extend_from_slice(&tail);
        }
        let mut buf = vec![0u8; offset + RECORD_OVERHEAD + payload.len()];
        let r = &mut buf[offset..];
        put_u32(r, RECORD_MAGIC_OFFSET, RECORD_MAGIC);
        if pages.is_some() {
            put_u16(r, RECORD_FLAGS_OFFSET, RECORD_FLAG_PAGES);
        }
        put_u16(r, RECORD_HEADER_LENGTH_OFFSET, RECORD_HEADER_SIZE as u16);
        put_u64(r, RECORD_TXN_ID_OFFSET, txn);
        put_u64(r, RECORD_PREV_POSITION_OFFSET, 123);
        put_u32(r, RECORD_PAYLOAD_LENGTH_OFFSET, payload.len() as u32);
        r[RECORD_HEADER_SIZE..RECORD_HEADER_SIZE + payload.len()].copy_from_slice(&payload);
        let total = record_seal(&mut buf, offset).unwrap() as usize;
        assert_eq!(total, buf.len() - offset);
        buf
    }

    /// The spec's numbers typed by hand: a check that does not rely on the
    /// table parser of `check_against_the_spec`.
    #[test]
    fn offsets_are_the_known_numbers() {
        assert_eq!(
            [
                RECORD_VERSION_OFFSET,
                RECORD_TYPE_OFFSET,
                RECORD_HEADER_LENGTH_OFFSET,
                RECORD_FLAGS_OFFSET,
                RECORD_TXN_ID_OFFSET,
                RECORD_PREV_POSITION_OFFSET,
                RECORD_PAYLOAD_LENGTH_OFFSET,
                RECORD_HEADER_CRC_OFFSET,
                RECORD_PAYLOAD_CRC_OFFSET,
                RECORD_HEADER_SIZE
            ],
            [4, 6, 8, 10, 12, 20, 28, 32, 36, 40]
        );
        assert_eq!(
            [TRAILER_LENGTH_OFFSET, TRAILER_CRC_OFFSET, TRAILER_SIZE],
            [4, 8, 12]
        );
        assert_eq!(
            [
                COMMIT_TXN_ID_OFFSET,
                COMMIT_ROOT_OFFSET,
                COMMIT_OP_COUNT_OFFSET,
                COMMIT_RESERVED_OFFSET,
                COMMIT_OPS_OFFSET
            ],
            [4, 12, 20, 24, 28]
        );
        assert_eq!(
            [
                OP_FLAGS_OFFSET,
                OP_KEY_LENGTH_OFFSET,
                OP_VALUE_LENGTH_OFFSET,
                OP_KEY_OFFSET
            ],
            [1, 2, 4, 8]
        );
        assert_eq!(CHECKPOINT_PAYLOAD_SIZE, 40);
        assert_eq!(
            [
                PAGES_ENTRY_COUNT_OFFSET,
                PAGES_DEPTH_OFFSET,
                PAGES_WRITTEN_COUNT_OFFSET,
                PAGES_FREED_COUNT_OFFSET,
                PAGES_FREED_YOUNG_COUNT_OFFSET,
                PAGES_RESERVED_OFFSET,
                PAGES_MAGIC_OFFSET,
                PAGES_TAIL_SIZE
            ],
            [8, 16, 20, 24, 28, 32, 36, 40]
        );
        assert_eq!(PAGES_MAGIC.to_le_bytes(), *b"SGAP");
        assert_eq!(RECORD_MAGIC.to_le_bytes(), *b"RGOL");
        assert_eq!(TRAILER_MAGIC.to_le_bytes(), *b"LOGR");
        assert_eq!(COMMIT_MAGIC.to_le_bytes(), *b"TIMC");
        assert_eq!(CHECKPOINT_MAGIC.to_le_bytes(), *b"PKHC");
    }

    /// Every constant against its row in spec/commit_record_v0.md, read from
    /// the spec's own tables; fails on a missing, extra or different row.
    fn check_against_the_spec() -> Report {
        let spec = COMMIT_RECORD_V0;
        let tables = parse_tables(spec);
        let layouts = layout_tables(&tables);
        let mut r = Report::default();

        // Byte tables (§2.1, §3.1, §3.2, §3.3, §3.5, §4.1), row by row.
        let code: [&[(&str, usize)]; 6] = [
            &[
                ("RECORD_MAGIC_OFFSET", RECORD_MAGIC_OFFSET),
                ("RECORD_VERSION_OFFSET", RECORD_VERSION_OFFSET),
                ("RECORD_TYPE_OFFSET", RECORD_TYPE_OFFSET),
                ("RECORD_HEADER_LENGTH_OFFSET", RECORD_HEADER_LENGTH_OFFSET),
                ("RECORD_FLAGS_OFFSET", RECORD_FLAGS_OFFSET),
                ("RECORD_TXN_ID_OFFSET", RECORD_TXN_ID_OFFSET),
                ("RECORD_PREV_POSITION_OFFSET", RECORD_PREV_POSITION_OFFSET),
                ("RECORD_PAYLOAD_LENGTH_OFFSET", RECORD_PAYLOAD_LENGTH_OFFSET),
                ("RECORD_HEADER_CRC_OFFSET", RECORD_HEADER_CRC_OFFSET),
                ("RECORD_PAYLOAD_CRC_OFFSET", RECORD_PAYLOAD_CRC_OFFSET),
                ("RECORD_HEADER_SIZE", RECORD_HEADER_SIZE),
            ],
            &[
                ("COMMIT_MAGIC_OFFSET", COMMIT_MAGIC_OFFSET),
                ("COMMIT_TXN_ID_OFFSET", COMMIT_TXN_ID_OFFSET),
                ("COMMIT_ROOT_OFFSET", COMMIT_ROOT_OFFSET),
                ("COMMIT_OP_COUNT_OFFSET", COMMIT_OP_COUNT_OFFSET),
                ("COMMIT_RESERVED_OFFSET", COMMIT_RESERVED_OFFSET),
                ("COMMIT_OPS_OFFSET", COMMIT_OPS_OFFSET),
            ],
            &[
                ("OP_TYPE_OFFSET", OP_TYPE_OFFSET),
                ("OP_FLAGS_OFFSET", OP_FLAGS_OFFSET),
                ("OP_KEY_LENGTH_OFFSET", OP_KEY_LENGTH_OFFSET),
                ("OP_VALUE_LENGTH_OFFSET", OP_VALUE_LENGTH_OFFSET),
                ("OP_KEY_OFFSET", OP_KEY_OFFSET),
            ],
            &[
                ("CHECKPOINT_MAGIC_OFFSET", CHECKPOINT_MAGIC_OFFSET),
                ("CHECKPOINT_RESERVED_OFFSET", CHECKPOINT_RESERVED_OFFSET),
                ("CHECKPOINT_TXN_ID_OFFSET", CHECKPOINT_TXN_ID_OFFSET),
                ("CHECKPOINT_ROOT_OFFSET", CHECKPOINT_ROOT_OFFSET),
                ("CHECKPOINT_PAGE_COUNT_OFFSET", CHECKPOINT_PAGE_COUNT_OFFSET),
                (
                    "CHECKPOINT_REPLAY_FROM_OFFSET",
                    CHECKPOINT_REPLAY_FROM_OFFSET,
                ),
                ("CHECKPOINT_PAYLOAD_SIZE", CHECKPOINT_PAYLOAD_SIZE),
            ],
            &[
                ("PAGES_PAGE_COUNT_OFFSET", PAGES_PAGE_COUNT_OFFSET),
                ("PAGES_ENTRY_COUNT_OFFSET", PAGES_ENTRY_COUNT_OFFSET),
                ("PAGES_DEPTH_OFFSET", PAGES_DEPTH_OFFSET),
                ("PAGES_WRITTEN_COUNT_OFFSET", PAGES_WRITTEN_COUNT_OFFSET),
                ("PAGES_FREED_COUNT_OFFSET", PAGES_FREED_COUNT_OFFSET),
                (
                    "PAGES_FREED_YOUNG_COUNT_OFFSET",
                    PAGES_FREED_YOUNG_COUNT_OFFSET,
                ),
                ("PAGES_RESERVED_OFFSET", PAGES_RESERVED_OFFSET),
                ("PAGES_MAGIC_OFFSET", PAGES_MAGIC_OFFSET),
                ("PAGES_TAIL_SIZE", PAGES_TAIL_SIZE),
            ],
            &[
                ("TRAILER_MAGIC_OFFSET", TRAILER_MAGIC_OFFSET),
                ("TRAILER_LENGTH_OFFSET", TRAILER_LENGTH_OFFSET),
                ("TRAILER_CRC_OFFSET", TRAILER_CRC_OFFSET),
                ("TRAILER_SIZE", TRAILER_SIZE),
            ],
        ];
        for table in code {
            check_layout(&mut r, &layouts, table);
        }
        // The Rust kernels read every record structure: no table is TypeScript's only.
        if layouts.len() != code.len() {
            let sections: Vec<&str> = layouts.iter().map(|&(s, _)| s).collect();
            r.problem(
                0,
                format!(
                    "layout tables {sections:?}, the code mirrors {}",
                    code.len()
                ),
            );
        }

        let row = |name: &str| layout_row(&layouts, name);
        // Each magic as a u32, its ASCII name read most significant byte first, its bytes on disk.
        for (offset, name, magic) in [
            ("RECORD_MAGIC_OFFSET", "RECORD_MAGIC", RECORD_MAGIC),
            ("COMMIT_MAGIC_OFFSET", "COMMIT_MAGIC", COMMIT_MAGIC),
            (
                "CHECKPOINT_MAGIC_OFFSET",
                "CHECKPOINT_MAGIC",
                CHECKPOINT_MAGIC,
            ),
            ("PAGES_MAGIC_OFFSET", "PAGES_MAGIC", PAGES_MAGIC),
            ("TRAILER_MAGIC_OFFSET", "TRAILER_MAGIC", TRAILER_MAGIC),
        ] {
            let Some(row) = row(offset) else { continue };
            r.expect(name, magic, hex_u32(row.field), row.line);
            let ascii = quoted_name(row.field).and_then(|a| <[u8; 4]>::try_from(a.as_bytes()).ok());
            r.expect(name, magic, ascii.map(u32::from_be_bytes), row.line);
            r.expect(name, magic.to_le_bytes(), hex_bytes(row.field), row.line);
        }
        if let Some(version) = row("RECORD_VERSION_OFFSET") {
            let want = number_after(version.field, "u16 = ").map(|v| v as u16);
            r.expect("RECORD_VERSION", RECORD_VERSION, want, version.line);
        }
        if let Some(length) = row("RECORD_HEADER_LENGTH_OFFSET") {
            let want = number_after(length.field, "u16 = ").map(|v| v as usize);
            r.expect("RECORD_HEADER_SIZE", RECORD_HEADER_SIZE, want, length.line);
        }
        // Record and op types: exactly the ones the spec lists.
        for (offset, code) in [
            (
                "RECORD_TYPE_OFFSET",
                &[
                    ("commit", "RECORD_TYPE_COMMIT", RECORD_TYPE_COMMIT),
                    (
                        "checkpoint",
                        "RECORD_TYPE_CHECKPOINT",
                        RECORD_TYPE_CHECKPOINT,
                    ),
                ][..],
            ),
            (
                "OP_TYPE_OFFSET",
                &[
                    ("put", "OP_PUT", OP_PUT as u16),
                    ("del", "OP_DEL", OP_DEL as u16),
                ][..],
            ),
        ] {
            let Some(row) = row(offset) else { continue };
            check_enumeration(&mut r, row, "types", code, |n| n as u16);
        }
        // §4.1: total record length = header + payload + trailer.
        if let Some(length) = row("TRAILER_LENGTH_OFFSET") {
            let header = number_after(length.field, "total record length: ").map(|v| v as usize);
            let trailer = number_after(length.field, "payload length + ").map(|v| v as usize);
            r.expect(
                "RECORD_OVERHEAD",
                RECORD_OVERHEAD,
                header.zip(trailer).map(|(h, t)| h + t),
                length.line,
            );
        }
        // §3.5: the size of a page id in the pages section.
        let (line, text) = line_with(spec, "(`PAGES_ID_SIZE` = ");
        let want = number_after(text, "(`PAGES_ID_SIZE` = ").map(|v| v as usize);
        r.expect("PAGES_ID_SIZE", PAGES_ID_SIZE, want, line);

        // §2.2: the flag bits, and every known flag listed.
        match tables_with_header(&tables, &["bit", "value", "name", "meaning"]).first() {
            Some(t) => {
                let code = [
                    ("RECORD_FLAG_UNSYNCED_BEFORE", RECORD_FLAG_UNSYNCED_BEFORE),
                    ("RECORD_FLAG_PAGES", RECORD_FLAG_PAGES),
                ];
                let mut known = 0u16;
                for row in &t.rows {
                    let name = backticked(row.cell(2)).unwrap_or("");
                    let value: Option<u16> = row.cell(1).parse().ok();
                    let bit: Option<u32> = row.cell(0).parse().ok();
                    if value.is_none() || value != bit.map(|b| 1 << b) {
                        r.problem(
                            row.line,
                            format!(
                                "{name}: value {:?} is not bit {:?}",
                                row.cell(1),
                                row.cell(0)
                            ),
                        );
                    }
                    match code.iter().find(|&&(n, _)| n == name) {
                        Some(&(_, flag)) => r.expect(name, flag, value, row.line),
                        None => r.problem(row.line, format!("flag `{name}`, which the code lacks")),
                    }
                    known |= value.unwrap_or(0);
                }
                if t.rows.len() != code.len() {
                    r.problem(
                        t.rows[0].line,
                        format!("{} flags, the code has {}", t.rows.len(), code.len()),
                    );
                }
                r.expect(
                    "RECORD_FLAGS_KNOWN",
                    RECORD_FLAGS_KNOWN,
                    Some(known),
                    t.rows[0].line,
                );
            }
            None => r.problem(0, "no flags table (§2.2)".to_owned()),
        }

        // §5.1: the recordVerify statuses, in check order.
        let code = [
            ("INCOMPLETE", status::INCOMPLETE),
            ("BAD_MAGIC", status::BAD_MAGIC),
            ("BAD_HEADER_CHECKSUM", status::BAD_HEADER_CHECKSUM),
            ("UNSUPPORTED_VERSION", status::UNSUPPORTED_VERSION),
            ("BAD_HEADER", status::BAD_HEADER),
            ("BAD_PAYLOAD_CHECKSUM", status::BAD_PAYLOAD_CHECKSUM),
            ("BAD_TRAILER", status::BAD_TRAILER),
            ("BAD_PAYLOAD", status::BAD_PAYLOAD),
        ];
        check_statuses(&mut r, &tables, "recordVerify", "§5.1", &code);

        // §6: the limits.
        match tables
            .iter()
            .find(|t| t.header.first() == Some(&"limit") && t.section.ends_with("Limits"))
        {
            Some(t) => {
                let cell = |name: &str| {
                    t.rows
                        .iter()
                        .find(|row| row.cell(0) == name)
                        .map(|row| (row.line, row.cell(1)))
                };
                let (line, key) = cell("key length").unwrap_or((0, ""));
                let want = key.split(' ').next().and_then(|n| n.parse().ok());
                r.expect("MIN_RECORD_KEY_SIZE", MIN_RECORD_KEY_SIZE, want, line);
                let want = number_after(key, " … ")
                    .filter(|_| key.contains("bytes (`MAX_RECORD_KEY_SIZE`)"));
                r.expect(
                    "MAX_RECORD_KEY_SIZE",
                    MAX_RECORD_KEY_SIZE,
                    want.map(|v| v as usize),
                    line,
                );
                let (line, value) = cell("value length").unwrap_or((0, ""));
                let want = number_after(value, " … ")
                    .filter(|_| value.contains("MiB (`MAX_RECORD_VALUE_SIZE`)"));
                r.expect(
                    "MAX_RECORD_VALUE_SIZE",
                    MAX_RECORD_VALUE_SIZE,
                    want.map(|v| v as usize * 1024 * 1024),
                    line,
                );
                let (line, payload) = cell("payload length, any reader").unwrap_or((0, ""));
                let want = number_after(payload, "≤ ")
                    .filter(|_| payload.contains("GiB (`MAX_PAYLOAD_CEILING`)"));
                r.expect(
                    "MAX_PAYLOAD_CEILING",
                    MAX_PAYLOAD_CEILING,
                    want.map(|v| (v as usize) << 30),
                    line,
                );
                // "≤ 2^53 − 1": a u64's high word is at most 2^(53 − 32) − 1.
                let (line, ids) = cell("txn ids, page ids, positions").unwrap_or((0, ""));
                let want = number_after(ids, "≤ 2^")
                    .filter(|_| ids.contains(" − 1"))
                    .map(|bits| (1u32 << (bits - 32)) - 1);
                r.expect("MAX_SAFE_HI", MAX_SAFE_HI, want, line);
            }
            None => r.problem(0, "no limits table (§6)".to_owned()),
        }
        r
    }

    #[test]
    fn constants_match_the_spec_tables() {
        check_against_the_spec().assert_ok("spec/commit_record_v0.md");
    }

    #[test]
    fn every_constant_is_checked_against_the_spec() {
        let declared = pub_consts(include_str!("log.rs"), "layout");
        check_against_the_spec().assert_covers(&declared, "kernels/log.rs");
    }

    /// Txn 1, first record at 0, root 3, put "k" = "v": the bytes
    /// ts/log/record.test.ts pins too (there with prevPosition 0).
    #[test]
    fn known_answer() {
        let mut buf = commit(1, &[(b"k", b"v", false)], 0);
        put_u64(&mut buf, RECORD_PREV_POSITION_OFFSET, 0);
        put_u64(&mut buf, RECORD_HEADER_SIZE + COMMIT_ROOT_OFFSET, 3);
        assert_eq!(record_seal(&mut buf, 0).unwrap(), 90);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "52474f4c00000000280000000100000000000000",
                "0000000000000000260000005e6f40be54d5952c",
                "54494d4301000000000000000300000000000000",
                "010000000000000000000100010000006b764c4f",
                "47525a0000008ce5a583"
            )
        );
        assert_eq!(record_verify(&buf, 0), 90);
    }

    #[test]
    fn seal_writes_the_crcs_the_spec_defines() {
        let buf = commit(5, &[(b"k", b"value", false)], 0);
        let pl = u32f(&buf, RECORD_PAYLOAD_LENGTH_OFFSET) as usize;
        let t = RECORD_HEADER_SIZE + pl;
        assert_eq!(
            u32f(&buf, RECORD_PAYLOAD_CRC_OFFSET),
            crc32c(&buf[RECORD_HEADER_SIZE..t], 0)
        );
        let mut h = buf[..RECORD_HEADER_SIZE].to_vec();
        h[RECORD_HEADER_CRC_OFFSET..RECORD_HEADER_CRC_OFFSET + 4].fill(0);
        assert_eq!(u32f(&buf, RECORD_HEADER_CRC_OFFSET), crc32c(&h, 0));
        let mut bound = buf[..RECORD_HEADER_SIZE].to_vec();
        bound.extend_from_slice(&buf[t..t + 8]);
        assert_eq!(u32f(&buf, t + TRAILER_CRC_OFFSET), crc32c(&bound, 0));
        assert_eq!(u32f(&buf, t + TRAILER_LENGTH_OFFSET) as usize, buf.len());
    }

    #[test]
    fn verify_and_decode_a_record_at_an_offset() {
        let buf = commit(9, &[(b"key", b"val", false), (b"gone", b"", true)], 3);
        assert_eq!(record_verify(&buf, 3), (buf.len() - 3) as i32);
        let mut out = [0u32; 8];
        assert_eq!(record_decode(&buf, 3, &mut out).unwrap(), 2);
        let k0 = 3 + RECORD_HEADER_SIZE + COMMIT_OPS_OFFSET + OP_KEY_OFFSET;
        assert_eq!(out[..4], [0, k0 as u32, 3, 3]);
        assert_eq!(&buf[k0..k0 + 3], b"key");
        assert_eq!(out[4..], [1, (k0 + 6 + OP_KEY_OFFSET) as u32, 4, 0]);
        assert!(record_decode(&buf, 3, &mut out[..7]).is_err());
    }

    #[test]
    fn every_truncation_is_incomplete_and_every_bit_flip_is_caught() {
        let buf = commit(1, &[(b"a", b"bc", false)], 0);
        for len in 0..buf.len() {
            assert_eq!(
                record_verify(&buf[..len], 0),
                status::INCOMPLETE,
                "length {len}"
            );
        }
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(record_verify(&b, 0) < 0, "bit {bit}");
        }
        assert_eq!(record_verify(&buf, buf.len() + 1), status::INCOMPLETE);
    }

    #[test]
    fn seal_rejects_records_that_do_not_fit() {
        let mut buf = commit(1, &[(b"a", b"bc", false)], 0);
        let n = buf.len();
        assert!(record_seal(&mut buf[..n - 1], 0).is_err());
        assert!(record_seal(&mut buf[..39], 0).is_err());
        put_u32(&mut buf, RECORD_PAYLOAD_LENGTH_OFFSET, u32::MAX);
        assert!(record_seal(&mut buf, 0).is_err());
    }

    const PAGES: Pages<'static> = Pages {
        page_count: 40,
        entry_count: 1234,
        depth: 3,
        written: &[7, 8, 9],
        freed: &[2],
        freed_young: &[(1 << 53) - 1, 5],
    };

    /// Start of the pages tail of the record at 0 of `buf`.
    fn tail_at(buf: &[u8]) -> usize {
        buf.len() - TRAILER_SIZE - PAGES_TAIL_SIZE
    }

    #[test]
    fn a_pages_section_ends_the_ops_and_decode_is_unchanged() {
        let ops: &[(&[u8], &[u8], bool)] = &[(b"key", b"val", false), (b"gone", b"", true)];
        let plain = commit(9, ops, 3);
        let buf = commit_with(9, ops, 3, Some(&PAGES));
        assert_eq!(buf.len(), plain.len() + 6 * PAGES_ID_SIZE + PAGES_TAIL_SIZE);
        assert_eq!(record_verify(&buf, 3), (buf.len() - 3) as i32);
        let (mut a, mut b) = ([0u32; 8], [0u32; 8]);
        assert_eq!(record_decode(&buf, 3, &mut a).unwrap(), 2);
        assert_eq!(record_decode(&plain, 3, &mut b).unwrap(), 2);
        assert_eq!(a, b);
        // No ops, no ids: the smallest payload with a section.
        let empty = Pages {
            written: &[],
            freed: &[],
            freed_young: &[],
            ..PAGES
        };
        let buf = commit_with(1, &[], 0, Some(&empty));
        assert_eq!(
            buf.len(),
            RECORD_OVERHEAD + COMMIT_OPS_OFFSET + PAGES_TAIL_SIZE
        );
        assert_eq!(record_verify(&buf, 0), buf.len() as i32);
    }

    #[test]
    fn a_broken_pages_section_is_bad_payload() {
        let ops: &[(&[u8], &[u8], bool)] = &[(b"a", b"bc", false)];
        let good = commit_with(4, ops, 0, Some(&PAGES));
        let t = tail_at(&good);
        let ids = t - 6 * PAGES_ID_SIZE;
        let damages: Vec<(&str, Box<dyn Fn(&mut Vec<u8>)>)> = vec![
            ("magic", Box::new(move |b| b[t + PAGES_MAGIC_OFFSET] ^= 1)),
            (
                "reserved",
                Box::new(move |b| put_u32(b, t + PAGES_RESERVED_OFFSET, 1)),
            ),
            (
                "page count",
                Box::new(move |b| put_u64(b, t + PAGES_PAGE_COUNT_OFFSET, 1 << 53)),
            ),
            (
                "entry count",
                Box::new(move |b| put_u64(b, t + PAGES_ENTRY_COUNT_OFFSET, u64::MAX)),
            ),
            ("id", Box::new(move |b| put_u64(b, ids + 8, 1 << 53))),
            ("last id", Box::new(move |b| put_u64(b, t - 8, u64::MAX))),
            // One id more: the section reaches into the op.
            (
                "overlap",
                Box::new(move |b| put_u32(b, t + PAGES_FREED_COUNT_OFFSET, 2)),
            ),
            // One id fewer: a gap of 8 bytes between the op and the ids.
            (
                "gap",
                Box::new(move |b| put_u32(b, t + PAGES_WRITTEN_COUNT_OFFSET, 2)),
            ),
            (
                "count",
                Box::new(move |b| put_u32(b, t + PAGES_FREED_YOUNG_COUNT_OFFSET, u32::MAX)),
            ),
            (
                "counts",
                Box::new(move |b| {
                    for f in [
                        PAGES_WRITTEN_COUNT_OFFSET,
                        PAGES_FREED_COUNT_OFFSET,
                        PAGES_FREED_YOUNG_COUNT_OFFSET,
                    ] {
                        put_u32(b, t + f, u32::MAX);
                    }
                }),
            ),
            (
                "flag clear",
                Box::new(|b| put_u16(b, RECORD_FLAGS_OFFSET, 0)),
            ),
        ];
        for (what, damage) in damages {
            let mut b = good.clone();
            damage(&mut b);
            record_seal(&mut b, 0).unwrap();
            assert_eq!(record_verify(&b, 0), status::BAD_PAYLOAD, "{what}");
            assert!(record_decode(&b, 0, &mut [0u32; 64]).is_err(), "{what}");
        }
        // The flag on a record whose payload is too short for a tail, or has none.
        for len in [0usize, 1] {
            let ops: &[(&[u8], &[u8], bool)] = &[(b"k", b"v", false)];
            let mut b = commit(2, &ops[..len], 0);
            put_u16(&mut b, RECORD_FLAGS_OFFSET, RECORD_FLAG_PAGES);
            record_seal(&mut b, 0).unwrap();
            assert_eq!(record_verify(&b, 0), status::BAD_PAYLOAD, "{len} ops");
        }
        // Both flags together are fine.
        let mut b = good.clone();
        put_u16(
            &mut b,
            RECORD_FLAGS_OFFSET,
            RECORD_FLAG_PAGES | RECORD_FLAG_UNSYNCED_BEFORE,
        );
        record_seal(&mut b, 0).unwrap();
        assert_eq!(record_verify(&b, 0), b.len() as i32);
        // Bit 2 and up are still BadHeader.
        put_u16(&mut b, RECORD_FLAGS_OFFSET, RECORD_FLAG_PAGES << 1);
        record_seal(&mut b, 0).unwrap();
        assert_eq!(record_verify(&b, 0), status::BAD_HEADER);
    }

    /// A sealed checkpoint record at offset 0: its magics, type and lengths set,
    /// every other field zero.
    fn checkpoint_record() -> Vec<u8> {
        let mut b = vec![0u8; RECORD_OVERHEAD + CHECKPOINT_PAYLOAD_SIZE];
        put_u32(&mut b, RECORD_MAGIC_OFFSET, RECORD_MAGIC);
        put_u16(&mut b, RECORD_TYPE_OFFSET, RECORD_TYPE_CHECKPOINT);
        put_u16(
            &mut b,
            RECORD_HEADER_LENGTH_OFFSET,
            RECORD_HEADER_SIZE as u16,
        );
        put_u32(
            &mut b,
            RECORD_PAYLOAD_LENGTH_OFFSET,
            CHECKPOINT_PAYLOAD_SIZE as u32,
        );
        put_u32(
            &mut b,
            RECORD_HEADER_SIZE + CHECKPOINT_MAGIC_OFFSET,
            CHECKPOINT_MAGIC,
        );
        record_seal(&mut b, 0).unwrap();
        b
    }

    #[test]
    fn the_pages_flag_on_a_record_that_is_not_a_commit_is_bad_header() {
        let mut b = checkpoint_record();
        assert_eq!(record_verify(&b, 0), b.len() as i32);
        put_u16(&mut b, RECORD_FLAGS_OFFSET, RECORD_FLAG_PAGES);
        record_seal(&mut b, 0).unwrap();
        assert_eq!(record_verify(&b, 0), status::BAD_HEADER);
    }

    #[test]
    fn a_type_other_than_commit_and_checkpoint_is_bad_header() {
        let mut b = checkpoint_record();
        assert_eq!(record_verify(&b, 0), b.len() as i32);
        // Type 2 (once reserved for cartridge metadata) and up: unassigned in v0.
        for kind in [2, 3, u16::MAX] {
            put_u16(&mut b, RECORD_TYPE_OFFSET, kind);
            record_seal(&mut b, 0).unwrap();
            assert_eq!(record_verify(&b, 0), status::BAD_HEADER, "type {kind}");
        }
    }
}
