//! Operating-system pieces: memory shared across processes, file locks and
//! mappings. No N-API here; `crate::napi` wraps them as JavaScript classes.

// The mapped word table and OS lock of `<db>.lock` (spec/concurrency_v0.md §2),
// JavaScript's `SharedFile`.
pub mod shared_file;

// The read-only mapping window of the data file (spec/file_format_v1.md §9.3),
// under JavaScript's `FileMapping`.
pub mod window;

// Waking the handles of other processes when a lock-file word changes
// (spec/concurrency_v0.md §2.6): futexes on Linux, a timer elsewhere.
pub mod wake;
