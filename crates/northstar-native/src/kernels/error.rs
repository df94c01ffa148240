//! The error every kernel returns instead of panicking. The N-API layer turns
//! `Type` into a JavaScript `TypeError` and `Range` into a `RangeError`, the
//! classes the TypeScript twin (`ts/native/fallback.ts`) throws for the same
//! input (spec/file_format_v1.md §4.4, "Bad arguments").

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// An argument has the wrong JavaScript type.
    Type(String),
    /// An argument has the right type but an unusable value, or a node's own
    /// offsets point outside its buffer.
    Range(String),
}

impl KernelError {
    pub fn message(&self) -> &str {
        match self {
            KernelError::Type(m) | KernelError::Range(m) => m,
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Type(m) => write!(f, "TypeError: {m}"),
            KernelError::Range(m) => write!(f, "RangeError: {m}"),
        }
    }
}

impl std::error::Error for KernelError {}

pub type KernelResult<T> = Result<T, KernelError>;

/// A `RangeError` result; the message is built only on the error path.
#[cold]
pub fn range<T>(message: impl Into<String>) -> KernelResult<T> {
    Err(KernelError::Range(message.into()))
}
