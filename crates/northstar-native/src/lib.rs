//! NorthstarDB hot kernels. Pure-Rust kernels live in their own modules and
//! never panic on bad input; `napi`, `napi_kernels`, `napi_log` and
//! `napi_shared` are the only modules that touch N-API.

pub mod crc32c;
mod napi;

// Page and node kernels (spec/file_format_v1.md §2, §4), twins of
// ts/native/fallback.ts, and their N-API exports.
pub mod error;
pub mod layout;
mod napi_kernels;
pub mod node;
pub mod page;
pub mod search;

// Commit-log record kernels (spec/commit_record_v0.md §4, §5), twins of
// ts/native/fallback_log.ts, and their N-API exports.
pub mod log;
mod napi_log;

// The mapped word table and OS lock of `<db>.lock`, shared across processes,
// and its N-API class `SharedFile`.
mod napi_shared;
pub mod shared;

// Read-only shared mappings of the data file, for page reads without a copy
// (spec/file_format_v1.md §9.3).
mod napi_map;
