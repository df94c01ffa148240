//! page_verify and page_seal on arbitrary bytes (spec/file_format_v1.md §2).
//!
//! Input: byte 0 is a control byte, the rest fills a page (zero-padded or cut):
//! bits 0–1 choose the page size (4096 << n), bit 2 reseals the page before it
//! is verified (so the checks after the checksums are reached), bit 3 asks for
//! the wrong page id. The raw input is also verified as is, whatever its length.
//! Properties: no panic; a status is 0…7; a resealed page whose header fields are
//! all valid verifies OK; an unsealed input that differs from a sealed page fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use northstar_native::kernels::error::KernelError;
use northstar_native::kernels::layout::*;
use northstar_native::kernels::page::{page_seal, page_verify};

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64le(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fuzz_target!(|data: &[u8]| {
    // The raw input: only a page size is a page.
    match page_verify(data, 0) {
        Ok(s) => assert!(PAGE_SIZES.contains(&data.len()) && s <= status::BAD_PAGE_CHECKSUM),
        Err(e) => assert!(matches!(e, KernelError::Range(_)) && !PAGE_SIZES.contains(&data.len())),
    }
    let Some((&ctl, body)) = data.split_first() else { return };
    let size = 4096usize << (ctl & 3);
    let mut page = vec![0u8; size];
    let n = body.len().min(size);
    page[..n].copy_from_slice(&body[..n]);
    let id = u64le(&page, PAGE_ID_OFFSET) ^ u64::from((ctl >> 3) & 1);
    let reseal = ctl & 4 != 0;
    if reseal {
        page_seal(&mut page).expect("page_seal takes any page-sized buffer");
    }
    let s = page_verify(&page, id).expect("page_verify takes any page-sized buffer");
    assert!(s <= status::BAD_PAGE_CHECKSUM);
    let header_ok = u32le(&page, MAGIC_OFFSET) == PAGE_MAGIC
        && u16le(&page, VERSION_OFFSET) == FORMAT_VERSION
        && (PAGE_TYPE_META..=PAGE_TYPE_HISTORY).contains(&page[TYPE_OFFSET])
        && u64le(&page, PAGE_ID_OFFSET) == id
        && u32le(&page, PAYLOAD_LENGTH_OFFSET) as usize <= size - HEADER_SIZE;
    if reseal {
        assert_eq!(s == status::OK, header_ok, "a resealed page verifies exactly when its header is valid");
    }
    if s == status::OK {
        // Whatever verifies must survive a reseal unchanged (the checksums were right).
        let mut again = page.clone();
        page_seal(&mut again).unwrap();
        assert_eq!(again, page);
    }
});
