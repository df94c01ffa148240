//! N-API export of `shared::SharedFile` as the JavaScript class `SharedFile`:
//! the mapped word table and OS lock of `<db>.lock` (see `shared` for the
//! contract and what the mapping assumes).
//!
//! A `#[napi]` class, so napi-rs owns the wrapping and the finalizer that
//! unmaps a forgotten object when it is collected. Arguments arrive as
//! `Unknown` and are checked by hand in order, each for its type
//! (`TypeError`) and then its value (`RangeError`), with the helpers of
//! `napi_kernels`; every method is `catch_unwind`. A closed object throws
//! `Error('closed')` before any argument is checked. An OS failure throws an
//! `Error` whose `code` is the errno name ("EACCES") when there is one, as
//! Node's fs errors do.
//!
//! Cost: napi-rs's class-method glue (unwrap, borrow tracking) makes a call
//! about 250–300 ns, against ~70 ns for a raw N-API callback like those of
//! `napi_kernels` (measured on node 20 with `load`). Fine at a few calls per
//! transaction; a hot loop over the table would want raw callbacks.

use std::io;
use std::path::Path;

use napi::bindgen_prelude::{This, Unknown};
use napi::sys;
use napi::{check_status, Env, Error, JsValue, Result, Status, ValueType};
use napi_derive::napi;

use crate::napi::{throw_error, throw_range_error, throw_type_error};
use crate::napi_kernels::{index, number, typed_array, Call, Cx};
use crate::shared::{self, SharedError, MAX_SAFE_INTEGER, MAX_SIZE, WORD_SIZE};

/// A file mapped shared read-write as a table of 64-bit words, with an
/// exclusive OS lock: NorthstarDB's cross-process primitive for `<db>.lock`.
///
/// Word `w` is the little-endian i64 at byte `8 * w`; values are integers in
/// ±(2^53 − 1). Every word access is a SeqCst atomic, visible at once to
/// every process and thread that maps the file. Arguments of the wrong type
/// throw `TypeError`, unusable values `RangeError`; after `close()` every
/// method but `close()` throws `Error('closed')`.
#[napi]
pub struct SharedFile {
    /// `None` once closed.
    file: Option<shared::SharedFile>,
    path: String,
    size: u32,
}

#[napi]
impl SharedFile {
    /// Opens `path` read-write (created with mode 0o644 if missing), grows it
    /// to at least `size` bytes by appending zeros (never shrinks it, never
    /// overwrites a word), and maps its first `size` bytes shared read-write.
    /// `size` is a positive multiple of 8, at most 64 MiB.
    ///
    /// Throws `TypeError` if `path` is not a string or `size` not a number,
    /// `RangeError` for a bad `size` or a path containing NUL, and `Error`
    /// (its message and `code` name the OS error, e.g. "EACCES", "EISDIR")
    /// when the file cannot be opened, grown or mapped.
    #[napi(constructor, catch_unwind, ts_args_type = "path: string, size: number")]
    pub fn new(env: Env, this: This<Unknown>, path: Unknown, size: Unknown) -> Result<Self> {
        if !constructing(&env, &this)? {
            return Err(throw_type_error(
                &env,
                "Class constructor SharedFile cannot be invoked without 'new'".to_owned(),
            ));
        }
        let path = string_arg(&env, path, "path")?;
        if path.contains('\0') {
            return Err(throw_range_error(
                &env,
                "path must not contain NUL bytes".to_owned(),
            ));
        }
        let n = js(number(Cx(env.raw()), size.raw(), "size"))?;
        if !(n.fract() == 0.0
            && n > 0.0
            && n <= MAX_SIZE as f64
            && (n as usize).is_multiple_of(WORD_SIZE))
        {
            return Err(throw_range_error(
                &env,
                format!("size {n} must be a positive multiple of 8 up to {MAX_SIZE}"),
            ));
        }
        let size = n as usize;
        match shared::SharedFile::open(Path::new(&path), size) {
            Ok(file) => Ok(SharedFile {
                file: Some(file),
                path,
                size: size as u32,
            }),
            Err(e) => Err(throw_shared_error(&env, &path, e)),
        }
    }

    /// The mapped size in bytes, as passed to the constructor; still readable
    /// after `close()`.
    #[napi(getter, catch_unwind)]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// SeqCst atomic load of word `word`. Throws `RangeError` if the word
    /// holds a value outside ±(2^53 − 1) (a file written by something else),
    /// rather than returning a rounded number.
    #[napi(catch_unwind, ts_args_type = "word: number")]
    pub fn load(&self, env: Env, word: Unknown) -> Result<f64> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        self.check(&env, file.load(w)).map(|v| v as f64)
    }

    /// SeqCst atomic store of `value`, an integer in ±(2^53 − 1), into word `word`.
    #[napi(catch_unwind, ts_args_type = "word: number, value: number")]
    pub fn store(&self, env: Env, word: Unknown, value: Unknown) -> Result<()> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        let v = value_arg(&env, value, "value")?;
        self.check(&env, file.store(w, v))
    }

    /// SeqCst compare-exchange: true if word `word` held `expected` and now
    /// holds `value`; false, word unchanged, otherwise.
    #[napi(
        catch_unwind,
        ts_args_type = "word: number, expected: number, value: number"
    )]
    pub fn compare_exchange(
        &self,
        env: Env,
        word: Unknown,
        expected: Unknown,
        value: Unknown,
    ) -> Result<bool> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        let e = value_arg(&env, expected, "expected")?;
        let v = value_arg(&env, value, "value")?;
        self.check(&env, file.compare_exchange(w, e, v))
    }

    /// SeqCst atomic add of `delta` to word `word`; returns the previous
    /// value. Throws `RangeError`, word unchanged, if the sum would leave
    /// ±(2^53 − 1).
    #[napi(catch_unwind, ts_args_type = "word: number, delta: number")]
    pub fn fetch_add(&self, env: Env, word: Unknown, delta: Unknown) -> Result<f64> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        let d = value_arg(&env, delta, "delta")?;
        self.check(&env, file.fetch_add(w, d)).map(|v| v as f64)
    }

    /// Loads `out.length` consecutive words from word `word` into `out`, each
    /// word atomically (not the range as a whole: a concurrent store may land
    /// between two of them). `word + out.length` must be at most `size / 8`.
    /// When it throws, `out` may be partly written.
    #[napi(catch_unwind, ts_args_type = "word: number, out: Float64Array")]
    pub fn load_many(&self, env: Env, word: Unknown, out: Unknown) -> Result<()> {
        let file = self.file(&env)?;
        let cx = Cx(env.raw());
        let first = js(index(cx, word.raw(), file.words() as f64, "word"))?;
        let o = js(typed_array(
            cx,
            out.raw(),
            sys::TypedarrayType::float64_array,
            "out",
            "Float64Array",
        ))?;
        let out: &mut [f64] = if o.len == 0 {
            // Empty or detached: the view's pointer is a dangling placeholder.
            &mut []
        } else if (o.ptr as usize).is_multiple_of(align_of::<f64>()) {
            // Safety: aligned, valid for o.len bytes for this call (no
            // JavaScript runs meanwhile), and no other slice of it exists:
            // the mapping is never exposed as an ArrayBuffer.
            unsafe { std::slice::from_raw_parts_mut(o.ptr.cast::<f64>(), o.len / 8) }
        } else {
            // Unreachable: a Float64Array's byteOffset is a multiple of 8 and
            // ArrayBuffer storage is at least 8-byte aligned.
            return Err(throw_range_error(
                &env,
                "out is not 8-byte aligned".to_owned(),
            ));
        };
        self.check(&env, file.load_many(first, out))
    }

    /// Takes the exclusive OS lock on the file without blocking (flock on
    /// Linux and macOS, LockFileEx on Windows); true if this object now holds
    /// it. The lock belongs to this object: another `SharedFile` on the same
    /// path, in this process, a worker or another process, gets false until
    /// this one unlocks, closes, is collected, or its process dies.
    /// Idempotent: on an object that already holds the lock it returns true
    /// (the lock is not counted; one `unlock()` releases it).
    #[napi(catch_unwind)]
    pub fn try_lock(&mut self, env: Env) -> Result<bool> {
        let path = &self.path;
        let Some(file) = self.file.as_mut() else {
            return Err(closed(&env));
        };
        file.try_lock()
            .map_err(|e| throw_shared_error(&env, path, e))
    }

    /// Releases the lock if this object holds it; does nothing otherwise.
    #[napi(catch_unwind)]
    pub fn unlock(&mut self, env: Env) -> Result<()> {
        let path = &self.path;
        let Some(file) = self.file.as_mut() else {
            return Err(closed(&env));
        };
        file.unlock().map_err(|e| throw_shared_error(&env, path, e))
    }

    /// Unmaps the table and closes the file, which releases the lock.
    /// Idempotent. If JavaScript never calls it, the garbage collector's
    /// finalizer does the same when the object is collected.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.file = None;
    }
}

impl SharedFile {
    /// The open table, or `Error('closed')`.
    #[inline(always)]
    fn file(&self, env: &Env) -> Result<&shared::SharedFile> {
        self.file.as_ref().ok_or_else(|| closed(env))
    }

    #[inline(always)]
    fn check<T>(&self, env: &Env, r: std::result::Result<T, SharedError>) -> Result<T> {
        r.map_err(|e| throw_shared_error(env, &self.path, e))
    }
}

#[cold]
fn closed(env: &Env) -> Error {
    throw_error(env, "closed".to_owned(), None)
}

/// A `Call` of the `napi_kernels` helpers as a napi-rs result: their error
/// means a JavaScript exception is already pending.
#[inline(always)]
fn js<T>(r: Call<T>) -> Result<T> {
    r.map_err(|_| Error::new(Status::PendingException, String::new()))
}

/// False when the constructor runs as a plain call (`SharedFile(path, size)`):
/// `this` is then `undefined` in strict code, where napi-rs's wrap would fail
/// after the file was opened, or the global object in sloppy code, which it
/// would wrap, leaking the mapping and file for the life of the process.
fn constructing(env: &Env, this: &This<Unknown>) -> Result<bool> {
    if this.get_type()? != ValueType::Object {
        return Ok(false);
    }
    let mut global = std::ptr::null_mut();
    let mut same = false;
    // Safety: live env and values of this call.
    unsafe {
        check_status!(sys::napi_get_global(env.raw(), &mut global))?;
        check_status!(sys::napi_strict_equals(
            env.raw(),
            this.raw(),
            global,
            &mut same
        ))?;
    }
    Ok(!same)
}

/// The `word` argument: an integer from 0 to the last word.
#[inline(always)]
fn word_arg(env: &Env, file: &shared::SharedFile, word: Unknown) -> Result<usize> {
    js(index(
        Cx(env.raw()),
        word.raw(),
        (file.words() - 1) as f64,
        "word",
    ))
}

/// A value argument: an integer in ±(2^53 − 1).
#[inline(always)]
fn value_arg(env: &Env, value: Unknown, name: &str) -> Result<i64> {
    let n = js(number(Cx(env.raw()), value.raw(), name))?;
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 {
        Ok(n as i64)
    } else {
        Err(throw_range_error(
            env,
            format!("{name} {n} must be an integer in ±(2^53 − 1)"),
        ))
    }
}

/// A string argument; `TypeError` for any other type.
fn string_arg(env: &Env, value: Unknown, name: &str) -> Result<String> {
    match value.get_type() {
        // Safety: the value is a string (checked just above).
        Ok(ValueType::String) => unsafe { value.cast::<String>() },
        _ => Err(throw_type_error(env, format!("{name} must be a string"))),
    }
}

#[cold]
fn throw_shared_error(env: &Env, path: &str, e: SharedError) -> Error {
    match e {
        SharedError::Range(message) => throw_range_error(env, message),
        SharedError::Os { op, error } => {
            let code = errno_name(&error);
            let message = match code {
                Some(code) => format!("{code}: {error}, {op} '{path}'"),
                None => format!("{error}, {op} '{path}'"),
            };
            throw_error(env, message, code)
        }
    }
}

/// The errno name Node gives an OS error ("EACCES"), from its portable kind
/// (errno numbers differ between platforms), or `None` for a kind without
/// one; the message keeps the OS's own text and number either way.
fn errno_name(error: &io::Error) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match error.kind() {
        NotFound => "ENOENT",
        // EPERM is 1 on every Unix.
        PermissionDenied if cfg!(unix) && error.raw_os_error() == Some(1) => "EPERM",
        PermissionDenied => "EACCES",
        AlreadyExists => "EEXIST",
        WouldBlock => "EAGAIN",
        InvalidInput => "EINVAL",
        Interrupted => "EINTR",
        OutOfMemory => "ENOMEM",
        NotADirectory => "ENOTDIR",
        IsADirectory => "EISDIR",
        ReadOnlyFilesystem => "EROFS",
        StorageFull => "ENOSPC",
        QuotaExceeded => "EDQUOT",
        FileTooLarge => "EFBIG",
        ResourceBusy => "EBUSY",
        ExecutableFileBusy => "ETXTBSY",
        Deadlock => "EDEADLK",
        TooManyLinks => "EMLINK",
        InvalidFilename => "ENAMETOOLONG",
        StaleNetworkFileHandle => "ESTALE",
        _ => return None,
    })
}
