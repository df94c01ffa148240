//! NorthstarDB hot kernels. Pure-Rust kernels live in their own modules and
//! never panic on bad input; `napi` and `napi_kernels` are the only modules
//! that touch N-API.

pub mod crc32c;
mod napi;

// Page and node kernels (spec/file_format_v0.md §2, §4), twins of
// ts/native/fallback.ts, and their N-API exports.
pub mod error;
pub mod layout;
pub mod node;
pub mod page;
pub mod search;
mod napi_kernels;
