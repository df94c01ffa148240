//! Page checksums: `page_seal` and `page_verify` (spec/file_format_v1.md §2.2,
//! §2.3). TypeScript twin: `pageSeal`/`pageVerify` in `ts/native/fallback.ts`.

use crate::kernels::crc32c::crc32c;
use crate::kernels::error::{range, KernelResult};
use crate::kernels::layout::bytes::{put_u32, u16_at, u32_at};
use crate::kernels::layout::*;

/// Rejects a buffer whose length is not one of the page sizes of spec §1.
pub fn check_page(page: &[u8]) -> KernelResult<()> {
    if PAGE_SIZES.contains(&page.len()) {
        Ok(())
    } else {
        range(format!(
            "page length {} is not a page size (4096, 8192, 16384, 32768)",
            page.len()
        ))
    }
}

/// Header CRC: bytes [0, HEADER_SIZE) with the header-CRC field read as zero.
/// `page` is at least HEADER_SIZE long (checked by `check_page`).
fn header_crc(page: &[u8]) -> u32 {
    let c = crc32c(page.get(..HEADER_CRC_OFFSET).unwrap_or(&[]), 0);
    let c = crc32c(&[0u8; 4], c);
    crc32c(page.get(PAGE_CRC_OFFSET..HEADER_SIZE).unwrap_or(&[]), c)
}

/// Page CRC: bytes [HEADER_SIZE, end), unused bytes included.
fn body_crc(page: &[u8]) -> u32 {
    crc32c(page.get(HEADER_SIZE..).unwrap_or(&[]), 0)
}

/// Writes the page CRC and then the header CRC (which covers the page CRC).
pub fn page_seal(page: &mut [u8]) -> KernelResult<()> {
    check_page(page)?;
    let body = body_crc(page);
    put_u32(page, PAGE_CRC_OFFSET, body);
    let header = header_crc(page);
    put_u32(page, HEADER_CRC_OFFSET, header);
    Ok(())
}

/// Checks a page read as page `expected_page_id` in the order of spec §2.3 and
/// returns the first failing status, or `status::OK`. The caller has checked
/// that the id is a safe integer (the TypeScript twin's `checkId`).
pub fn page_verify(page: &[u8], expected_page_id: u64) -> KernelResult<u32> {
    check_page(page)?;
    let u32f = |o| u32_at(page, o).unwrap_or(0);
    if u32f(MAGIC_OFFSET) != PAGE_MAGIC {
        return Ok(status::BAD_MAGIC);
    }
    if u32f(HEADER_CRC_OFFSET) != header_crc(page) {
        return Ok(status::BAD_HEADER_CHECKSUM);
    }
    if u16_at(page, VERSION_OFFSET) != Some(FORMAT_VERSION) {
        return Ok(status::UNSUPPORTED_VERSION);
    }
    let t = page.get(TYPE_OFFSET).copied().unwrap_or(0);
    if !(PAGE_TYPE_META..=PAGE_TYPE_HISTORY).contains(&t) {
        return Ok(status::BAD_PAGE_TYPE);
    }
    let id = u64::from(u32f(PAGE_ID_OFFSET)) | (u64::from(u32f(PAGE_ID_OFFSET + 4)) << 32);
    if id != expected_page_id {
        return Ok(status::WRONG_PAGE_ID);
    }
    if u32f(PAYLOAD_LENGTH_OFFSET) as usize > page.len() - HEADER_SIZE {
        return Ok(status::BAD_PAYLOAD_LENGTH);
    }
    if u32f(PAGE_CRC_OFFSET) != body_crc(page) {
        return Ok(status::BAD_PAGE_CHECKSUM);
    }
    Ok(status::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::error::KernelError;
    use crate::kernels::layout::bytes::{put_u16, put_u64};

    fn sealed_leaf(size: usize, id: u64) -> Vec<u8> {
        let mut p = vec![0u8; size];
        put_u32(&mut p, MAGIC_OFFSET, PAGE_MAGIC);
        put_u16(&mut p, VERSION_OFFSET, FORMAT_VERSION);
        p[TYPE_OFFSET] = PAGE_TYPE_LEAF;
        put_u64(&mut p, PAGE_ID_OFFSET, id);
        put_u64(&mut p, TXN_ID_OFFSET, 7);
        put_u32(&mut p, PAYLOAD_LENGTH_OFFSET, (size - HEADER_SIZE) as u32);
        p[100] = 0xAB;
        page_seal(&mut p).unwrap();
        p
    }

    #[test]
    fn seal_writes_both_crcs_as_the_spec_defines_them() {
        let p = sealed_leaf(4096, 9);
        assert_eq!(
            u32_at(&p, PAGE_CRC_OFFSET).unwrap(),
            crc32c(&p[HEADER_SIZE..], 0)
        );
        let mut h = p[..HEADER_SIZE].to_vec();
        h[HEADER_CRC_OFFSET..HEADER_CRC_OFFSET + 4].fill(0);
        assert_eq!(u32_at(&p, HEADER_CRC_OFFSET).unwrap(), crc32c(&h, 0));
    }

    #[test]
    fn known_answer_all_zero_body() {
        // Page CRC of a 4096-byte page whose body is all zero: CRC32C of 4056 zero bytes.
        let mut p = vec![0u8; 4096];
        page_seal(&mut p).unwrap();
        assert_eq!(
            u32_at(&p, PAGE_CRC_OFFSET).unwrap(),
            crc32c(&[0u8; 4056], 0)
        );
    }

    #[test]
    fn verify_statuses_in_order() {
        for size in PAGE_SIZES {
            let p = sealed_leaf(size, 9);
            assert_eq!(page_verify(&p, 9), Ok(status::OK));
            assert_eq!(page_verify(&p, 10), Ok(status::WRONG_PAGE_ID));
            assert_eq!(page_verify(&vec![0u8; size], 0), Ok(status::BAD_MAGIC));

            let mut q = p.clone();
            q[20] ^= 1; // txn id: covered by the header CRC
            assert_eq!(page_verify(&q, 9), Ok(status::BAD_HEADER_CHECKSUM));

            let mut q = p.clone();
            q[size - 1] ^= 0x80; // body
            assert_eq!(page_verify(&q, 9), Ok(status::BAD_PAGE_CHECKSUM));

            let mut q = p.clone();
            q[PAGE_CRC_OFFSET] ^= 1; // page CRC is covered by the header CRC
            assert_eq!(page_verify(&q, 9), Ok(status::BAD_HEADER_CHECKSUM));

            let mut q = p.clone();
            put_u16(&mut q, VERSION_OFFSET, FORMAT_VERSION - 1); // a v0 page
            page_seal(&mut q).unwrap();
            assert_eq!(page_verify(&q, 9), Ok(status::UNSUPPORTED_VERSION));

            let mut q = p.clone();
            q[TYPE_OFFSET] = 7;
            page_seal(&mut q).unwrap();
            assert_eq!(page_verify(&q, 9), Ok(status::BAD_PAGE_TYPE));

            let mut q = p.clone();
            put_u32(
                &mut q,
                PAYLOAD_LENGTH_OFFSET,
                (size - HEADER_SIZE + 1) as u32,
            );
            page_seal(&mut q).unwrap();
            assert_eq!(page_verify(&q, 9), Ok(status::BAD_PAYLOAD_LENGTH));
        }
        let big = sealed_leaf(4096, (1 << 53) - 1);
        assert_eq!(page_verify(&big, (1 << 53) - 1), Ok(status::OK));
    }

    #[test]
    fn wrong_lengths_are_range_errors() {
        for len in [0usize, 40, 4095, 4097, 65536] {
            let mut p = vec![0u8; len];
            assert!(matches!(page_seal(&mut p), Err(KernelError::Range(_))));
            assert!(matches!(page_verify(&p, 0), Err(KernelError::Range(_))));
        }
    }
}
