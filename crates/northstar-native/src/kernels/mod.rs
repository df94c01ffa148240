//! The pure-Rust kernels: byte-slice functions with no I/O, each the twin of
//! a TypeScript function checked against it by `ts/native/parity*.test.ts`.

pub mod crc32c;
pub mod error;

// Page and node kernels (spec/file_format_v1.md §2, §4), twins of
// ts/native/fallback.ts.
pub mod layout;
pub mod node;
pub mod page;
pub mod search;

// Commit-log record kernels (spec/commit_record_v0.md §4, §5), twins of
// ts/native/fallback_log.ts.
pub mod log;

// The cartridge file's constants and its entry-order check
// (spec/cartridge_v1.md §2, §3), twin of ts/native/fallback_cartridge.ts.
pub mod cartridge;
