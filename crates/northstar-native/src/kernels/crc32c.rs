//! CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value
//! 0xFFFFFFFF, final xor 0xFFFFFFFF. The TypeScript twin is
//! `ts/native/crc32c.ts`; both are checked against the same known answers
//! (CRC-32C of "123456789" is 0xE3069283).
//!
//! The arithmetic is the `crc32c` crate, which picks its path at run time:
//! SSE4.2 `crc32` with three interleaved streams on x86-64, the ARMv8 CRC
//! instructions on aarch64, and slice-by-8 tables elsewhere.

/// CRC-32C of `data`, continuing from `seed`, the CRC of the bytes before it
/// (0 for none): `crc32c(b, crc32c(a, 0)) == crc32c(a ++ b, 0)`.
///
/// Total over its inputs: any slice and any seed give a value, never a panic.
#[inline]
pub fn crc32c(data: &[u8], seed: u32) -> u32 {
    ::crc32c::crc32c_append(seed, data)
}

/// Which path `crc32c` takes on this CPU, decided the same way the crate
/// decides it: `"sse4.2"`, `"armv8-crc"` or `"table"`.
pub fn backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            return "sse4.2";
        }
    }
    // The crate enables its aarch64 path only on rustc >= 1.80 (its `armsimd`
    // cfg); this workspace needs a newer compiler than that anyway.
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("crc") {
            return "armv8-crc";
        }
    }
    "table"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(crc32c(b"", 0), 0);
        assert_eq!(crc32c(b"123456789", 0), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32], 0), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32], 0), 0x62A8_AB43);
    }

    #[test]
    fn seed_continues_a_previous_crc() {
        let data = b"The quick brown fox jumps over the lazy dog";
        for split in 0..=data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c(b, crc32c(a, 0)), crc32c(data, 0));
        }
    }

    #[test]
    fn backend_is_named() {
        assert!(["sse4.2", "armv8-crc", "table"].contains(&backend()));
    }
}
