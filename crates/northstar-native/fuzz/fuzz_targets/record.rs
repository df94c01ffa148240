//! The commit-log record kernels on arbitrary bytes (spec/commit_record_v0.md
//! §4–§5): record_seal, record_verify and record_decode never panic; verify
//! returns a total length that fits the buffer or a status −1 … −8; decode
//! succeeds exactly on valid commit records and reports ops inside the record,
//! before its pages section when it has one (flag bit 1, spec §3.5).
//!
//! Input: byte 0 control (bit 0 reseals the record first, so the payload rules
//! are reached; bits 1–3 put the record at that offset in the buffer), then the
//! record bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use northstar_native::kernels::log::layout::*;
use northstar_native::kernels::log::{record_decode, record_seal, record_verify};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else { return };
    let offset = usize::from((ctl >> 1) & 7);
    let mut buf = vec![0u8; offset + body.len()];
    buf[offset..].copy_from_slice(body);
    if ctl & 1 != 0 {
        if let Ok(total) = record_seal(&mut buf, offset) {
            assert!(offset + total as usize <= buf.len());
        }
    }
    let v = record_verify(&buf, offset);
    assert!(v != 0 && v >= -8, "status {v}");
    // Room for every op a record of this buffer could hold (an op is at least 9 bytes).
    let mut out = vec![0u32; 4 * (buf.len() / 8 + 1)];
    let decoded = record_decode(&buf, offset, &mut out);
    if v < 0 {
        assert!(decoded.is_err(), "decode accepted a record verify rejects");
        return;
    }
    let end = offset + v as usize;
    assert!(end <= buf.len());
    let is_commit = u16::from_le_bytes([buf[offset + RECORD_TYPE_OFFSET], buf[offset + RECORD_TYPE_OFFSET + 1]]) == RECORD_TYPE_COMMIT;
    let flags = u16::from_le_bytes([buf[offset + RECORD_FLAGS_OFFSET], buf[offset + RECORD_FLAGS_OFFSET + 1]]);
    // Where the ops must end: the start of the pages section, or the end of the payload.
    let mut ops_end = end - TRAILER_SIZE;
    if flags & RECORD_FLAG_PAGES != 0 {
        assert!(is_commit, "pages flag accepted on a record that is not a commit");
        let tail = ops_end - PAGES_TAIL_SIZE;
        let count = |f: usize| u32::from_le_bytes(buf[tail + f..tail + f + 4].try_into().unwrap()) as usize;
        let ids = count(PAGES_WRITTEN_COUNT_OFFSET) + count(PAGES_FREED_COUNT_OFFSET) + count(PAGES_FREED_YOUNG_COUNT_OFFSET);
        assert_eq!(u32::from_le_bytes(buf[tail + PAGES_MAGIC_OFFSET..tail + PAGES_MAGIC_OFFSET + 4].try_into().unwrap()), PAGES_MAGIC);
        ops_end = tail - ids * PAGES_ID_SIZE;
        assert!(ops_end >= offset + RECORD_HEADER_SIZE + COMMIT_OPS_OFFSET, "pages section overlaps the commit header");
    }
    match decoded {
        Ok(count) => {
            assert!(is_commit);
            for op in out[..count as usize * 4].chunks_exact(4) {
                let (key, klen, vlen) = (op[1] as usize, op[2] as usize, op[3] as usize);
                assert!(op[0] <= 1 && klen >= 1);
                assert!(key >= offset + RECORD_HEADER_SIZE && key + klen + vlen <= ops_end, "op outside its record or in its pages section");
            }
        }
        Err(_) => assert!(!is_commit, "decode refused a valid commit record"),
    }
});
