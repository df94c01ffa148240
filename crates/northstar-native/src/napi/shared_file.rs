//! N-API export of `os::shared_file::SharedFile` as the JavaScript class
//! `SharedFile`: the mapped word table and OS lock of `<db>.lock` (see
//! `os::shared_file` for the contract and what the mapping assumes).
//!
//! A `#[napi]` class, so napi-rs owns the wrapping and the finalizer that
//! unmaps a forgotten object when it is collected. Arguments arrive as
//! `Unknown` and are checked by hand in order, each for its type
//! (`TypeError`) and then its value (`RangeError`), with the helpers of
//! `napi::kernels`; every method is `catch_unwind`. A closed object throws
//! `Error('closed')` before any argument is checked. An OS failure throws an
//! `Error` whose `code` is the errno name ("EACCES") when there is one, as
//! Node's fs errors do.
//!
//! Cost: napi-rs's class-method glue (unwrap, borrow tracking) makes a call
//! about 250–300 ns, against ~70 ns for a raw N-API callback like those of
//! `napi::kernels` (measured on node 20 with `load`). Fine at a few calls per
//! transaction; a hot read takes `view()` once and reads words from
//! JavaScript with `Atomics`, with no native call at all.

use std::ffi::c_void;
use std::io;
use std::path::Path;
use std::ptr;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{Function, This, Unknown};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::sys;
use napi::{check_status, Env, Error, JsValue, Result, Status, ValueType};
use napi_derive::napi;

use crate::napi::kernels::{index, number, typed_array, Call, Cx, View};
use crate::napi::{throw_error, throw_range_error, throw_type_error};
use crate::os::shared_file::{self as os, SharedError, MAX_SAFE_INTEGER, MAX_SIZE, WORD_SIZE};
use crate::os::wake;

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
    file: Option<os::SharedFile>,
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
        match os::SharedFile::open(Path::new(&path), size) {
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
    /// between two of them). `word + out.length` must be at most `size / 8`,
    /// and `out` must not lie in this object's `view()` (`RangeError`).
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
        let table = file.mapping();
        if o.overlaps(View {
            ptr: table.as_ptr(),
            len: table.size(),
        }) {
            // The table would be read through atomics and written through
            // the slice below at once, and its words overwritten with floats.
            return Err(throw_range_error(
                &env,
                "out must not be a view of the table it loads from".to_owned(),
            ));
        }
        let out: &mut [f64] = if o.len == 0 {
            // Empty or detached: the view's pointer is a dangling placeholder.
            &mut []
        } else if (o.ptr as usize).is_multiple_of(align_of::<f64>()) {
            // Safety: aligned, valid for o.len bytes for this call (no
            // JavaScript runs meanwhile), and no other Rust reference to it
            // exists: it is not in this table's mapping (checked above). If
            // it is in another mapping of the file, this is one more writer
            // that breaks the words' contract, as any write through a view.
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

    /// An `ArrayBuffer` over the mapped table itself, so that JavaScript
    /// reads words with `Atomics.load` and no native call: `size` bytes,
    /// word `w` the little-endian i64 at byte `8 * w`. Each call makes a new
    /// `ArrayBuffer` over the same memory: take one and keep it.
    ///
    /// Reading (typed arrays use the CPU's byte order, so this holds on a
    /// little-endian CPU only): `Atomics.load(new BigInt64Array(buffer), w)`
    /// is word `w`, read whole in one SeqCst atomic load, like `load(w)`
    /// (`wordReader` in ts/native/shared_file.ts wraps it). With `i32 = new
    /// Int32Array(buffer)`, `Atomics.load(i32, 2 * w)` is the word's low
    /// half and `2 * w + 1` its high half: each half is read atomically, the
    /// pair is not. Reading high, low, high again and retrying until both
    /// highs agree yields a value the word held, but only for a word whose
    /// value only ever moves one way (a counter): otherwise the high half can
    /// change and change back between the reads, and the pair is a value no
    /// one stored. Plain (non-`Atomics`) reads are not atomic for
    /// JavaScript: the compiler may merge or hoist them.
    ///
    /// Writing through the buffer is possible but breaks the table's
    /// contract: it bypasses the ±(2^53 − 1) check, and a write of part of
    /// a word tears it for every reader. Store with `store()` and friends.
    ///
    /// Lifetime: the buffer keeps the mapping mapped for as long as it is
    /// reachable, also after `close()` (which still releases the lock and
    /// closes the file at once) and after this object is collected; the
    /// table is unmapped once neither is left. Until then the buffer is a
    /// shared mapping of the same file: after `close()` it still sees every
    /// store to the file's words, by any object or process (if the path is
    /// later unlinked or renamed over, it keeps seeing the old file). Reading
    /// it never faults, unless an outside program truncates the file (SIGBUS,
    /// as for every mapping of it). No JavaScript operation can leave the
    /// buffer over unmapped memory: the table is unmapped only when V8 frees
    /// the buffer's backing store. Node marks the buffer untransferable (in a
    /// `transfer` list it is copied on Node 20, refused with a DataCloneError
    /// on Node 21 and later), and detaches it (length 0) and releases the
    /// mapping when its thread's environment shuts down (a worker's exit).
    ///
    /// Throws `Error('closed')` after `close()`, and an `Error` with `code`
    /// "ERR_NO_EXTERNAL_BUFFERS" in a runtime that forbids ArrayBuffers over
    /// outside memory (Node built with the V8 sandbox, as Electron is):
    /// callers then read with `load()`.
    #[napi(catch_unwind, ts_return_type = "ArrayBuffer")]
    pub fn view(&self, env: Env) -> Result<Unknown<'_>> {
        let mapping = self.file(&env)?.mapping();
        let (data, len) = (mapping.as_ptr(), mapping.size());
        // Safety: `data` is valid for `len` bytes for as long as `mapping` lives.
        unsafe { external_arraybuffer(&env, data, len, mapping, "read words with load()") }
    }

    /// Adds 1 to word `word` and wakes every `watch()` of it, in every process
    /// (spec/concurrency_v0.md §2.6); returns the previous value.
    #[napi(catch_unwind, ts_args_type = "word: number")]
    pub fn bump_and_wake(&self, env: Env, word: Unknown) -> Result<f64> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        self.check(&env, file.bump_and_wake(w)).map(|v| v as f64)
    }

    /// Calls `onChange` (on this thread, from its event loop) soon after each
    /// `bumpAndWake(word)` by any handle in any process; changes close
    /// together may be reported once. A thread of its own waits for them, so
    /// nothing blocks here and the watch does not keep the event loop alive.
    /// Returns `null` where the OS offers no such wake-up (only Linux does):
    /// callers then look on a timer. `close()` the watch to stop it; the
    /// `SharedFile` may close first (the watch keeps the mapping).
    #[napi(catch_unwind, ts_args_type = "word: number, onChange: () => void")]
    pub fn watch(&self, env: Env, word: Unknown, on_change: Function<(), ()>) -> Result<Option<WordWatch>> {
        let file = self.file(&env)?;
        let w = word_arg(&env, file, word)?;
        if !wake::SUPPORTED {
            return Ok(None);
        }
        // One call in flight at a time: the thread calls again only after the
        // event loop has run the last one (it clears `queued` first).
        let queued = Arc::new(AtomicBool::new(false));
        let cleared = Arc::clone(&queued);
        let tsfn = on_change
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_ctx| {
                cleared.store(false, Ordering::SeqCst);
                Ok(())
            })?;
        let watch = os::Watch::spawn(file.mapping(), w, move || {
            if queued.swap(true, Ordering::SeqCst) {
                return true;
            }
            // Closing: the environment is going away (a worker thread ends).
            tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking) != Status::Closing
        })
        .map_err(|e| throw_shared_error(&env, &self.path, SharedError::Os { op: "watch", error: e }))?;
        Ok(Some(WordWatch { watch: Some(watch) }))
    }

    /// Releases the lock, closes the file, and unmaps the table unless a
    /// `view()` of it is still reachable (then the last one's collection
    /// unmaps it). Idempotent. If JavaScript never calls it, the garbage
    /// collector's finalizer does the same when the object is collected.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.file = None;
    }
}

impl SharedFile {
    /// The open table, or `Error('closed')`.
    #[inline(always)]
    fn file(&self, env: &Env) -> Result<&os::SharedFile> {
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

/// A `Call` of the `napi::kernels` helpers as a napi-rs result: their error
/// means a JavaScript exception is already pending.
#[inline(always)]
pub(crate) fn js<T>(r: Call<T>) -> Result<T> {
    r.map_err(|_| Error::new(Status::PendingException, String::new()))
}

/// False when the constructor runs as a plain call (`SharedFile(path, size)`):
/// `this` is then `undefined` in strict code, where napi-rs's wrap would fail
/// after the file was opened, or the global object in sloppy code, which it
/// would wrap, leaking the mapping and file for the life of the process.
pub(crate) fn constructing(env: &Env, this: &This<Unknown>) -> Result<bool> {
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
fn word_arg(env: &Env, file: &os::SharedFile, word: Unknown) -> Result<usize> {
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
pub(crate) fn throw_shared_error(env: &Env, path: &str, e: SharedError) -> Error {
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
pub(crate) fn errno_name(error: &io::Error) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match error.kind() {
        NotFound => "ENOENT",
        // EPERM is 1 on every Unix.
        PermissionDenied if cfg!(unix) && error.raw_os_error() == Some(1) => "EPERM",
        PermissionDenied => "EACCES",
        // EBADF is 9 on every Unix; it has no portable kind.
        _ if cfg!(unix) && error.raw_os_error() == Some(9) => "EBADF",
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
        Unsupported => "ENOTSUP",
        _ => return None,
    })
}

/// An ArrayBuffer over `len` bytes at `data` that keeps `owner` alive until
/// the buffer is collected (then drops it, e.g. to unmap). In a runtime that
/// forbids ArrayBuffers over outside memory (V8 sandbox, as in Electron) it
/// throws an `Error` with code "ERR_NO_EXTERNAL_BUFFERS" whose message ends
/// with `otherwise` (what the caller should do instead).
///
/// # Safety
/// `data` must be valid for reads of `len` bytes for as long as `owner` lives.
pub(crate) unsafe fn external_arraybuffer<'out, T: 'static>(
    env: &Env,
    data: *mut u8,
    len: usize,
    owner: T,
    otherwise: &str,
) -> Result<Unknown<'out>> {
    let hint = Box::into_raw(Box::new(owner));
    let mut buffer = ptr::null_mut();
    // Safety: as the caller promises; N-API calls `release::<T>` with `hint`
    // exactly once, when the ArrayBuffer's backing store is freed.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env.raw(),
            data.cast(),
            len,
            Some(release::<T>),
            hint.cast(),
            &mut buffer,
        )
    };
    match status {
        // Safety: a value N-API just created in this call's scope.
        sys::Status::napi_ok => Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), buffer) }),
        sys::Status::napi_no_external_buffers_allowed => {
            // Refused before any finalizer was registered: `hint` is still ours.
            // Safety: from `Box::into_raw` above, not yet freed.
            drop(unsafe { Box::from_raw(hint) });
            Err(throw_error(
                env,
                format!("this runtime does not allow an ArrayBuffer over outside memory (V8 sandbox); {otherwise}"),
                Some("ERR_NO_EXTERNAL_BUFFERS"),
            ))
        }
        // On other failures Node may already have registered the finalizer,
        // so `hint` is leaked rather than risk freeing it twice: memory left
        // mapped, never a dangling view.
        status => Err(throw_error(
            env,
            format!("napi_create_external_arraybuffer failed with status {status}"),
            None,
        )),
    }
}

/// The finalizer of an `external_arraybuffer`: drops its owner.
unsafe extern "C" fn release<T>(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // Safety: `hint` is the `Box<T>` that `external_arraybuffer` leaked for
    // this buffer, and N-API calls the finalizer once. Dropping a mapping
    // (unmapping) cannot panic.
    drop(unsafe { Box::from_raw(hint.cast::<T>()) });
}

/// A running `SharedFile.watch()`: `close()` stops it (idempotent); so does
/// the garbage collector's finalizer of a forgotten one.
#[napi]
pub struct WordWatch {
    /// `None` once closed; dropping the `os::Watch` stops its thread.
    watch: Option<os::Watch>,
}

#[napi]
impl WordWatch {
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.watch = None;
    }
}
