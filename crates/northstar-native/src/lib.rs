//! NorthstarDB hot kernels. Pure-Rust kernels live in their own modules and
//! never panic on bad input; `napi` is the only module that touches N-API.

pub mod crc32c;
mod napi;
