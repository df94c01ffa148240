//! The commit-log record kernels on arbitrary bytes (spec/commit_record_v0.md
//! §4–§5): record_seal, record_verify and record_decode never panic; verify
//! returns a total length that fits the buffer or a status −1 … −8; decode
//! succeeds exactly on valid commit records and reports ops inside the record.
//!
//! Input: byte 0 control (bit 0 reseals the record first, so the payload rules
//! are reached; bits 1–3 put the record at that offset in the buffer), then the
//! record bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use northstar_native::log::layout::*;
use northstar_native::log::{record_decode, record_seal, record_verify};

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
    match decoded {
        Ok(count) => {
            assert!(is_commit);
            for op in out[..count as usize * 4].chunks_exact(4) {
                let (key, klen, vlen) = (op[1] as usize, op[2] as usize, op[3] as usize);
                assert!(op[0] <= 1 && klen >= 1);
                assert!(key >= offset + RECORD_HEADER_SIZE && key + klen + vlen <= end - TRAILER_SIZE, "op outside its record");
            }
        }
        Err(_) => assert!(!is_commit, "decode refused a valid commit record"),
    }
});
