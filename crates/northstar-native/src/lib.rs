//! NorthstarDB's native addon, in three layers, each using only the ones
//! below it:
//! - `kernels`: pure-Rust page, node, search, CRC-32C, commit-log record and
//!   cartridge kernels over byte slices, the twins of `ts/native/fallback*.ts`;
//!   they never panic on bad input and touch no operating-system resource.
//! - `os`: the operating-system pieces, the lock file's mapped word table and
//!   OS lock (`SharedFile`) and the read-only mapping window of the data file.
//! - `napi`: the only layer that touches N-API; it checks JavaScript
//!   arguments, calls the layers below and converts their results and errors.

pub mod kernels;
mod napi;
pub mod os;

// The spec's tables, for the tests of the constants.
#[cfg(test)]
mod spec_tables;
