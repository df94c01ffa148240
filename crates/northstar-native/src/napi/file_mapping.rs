//! N-API class `FileMapping`: a window of an open file mapped read-only and
//! shared, seen from JavaScript as one ArrayBuffer, so a reader takes page
//! bytes straight from the operating system's page cache instead of copying
//! each page with `pread` (spec/file_format_v1.md §9.3 says what the pager
//! relies on).
//!
//! The window (`os::window`, which states what it relies on) is reserved
//! once at its full length and the file is mapped into it in place as it
//! grows, so the ArrayBuffer never changes, however the file grows (a new
//! ArrayBuffer per growth made V8 count tens of MiB of external memory each
//! time, and collect garbage for it: 25× the CPU per read), and reading any
//! byte of it is safe: past what is mapped it reads zeros. The one thing that
//! breaks it is another program truncating the file below what is mapped
//! while the mapping lives (SIGBUS). The mapping is read-only: a write
//! through the ArrayBuffer is SIGSEGV, so callers treat its bytes as
//! immutable (the pager's cached pages already are).
//!
//! `close()` releases everything at once: it detaches every `buffer()` it
//! made (their views read as empty from then on, so no JavaScript can reach
//! the range), unmaps the range and closes the descriptor. Left to the
//! garbage collector instead, a process that opened and closed databases in
//! a loop held one descriptor and 64 MiB of address space per window until a
//! full collection, which V8 does not run for external memory: 3,021 open
//! descriptors after 3,000 open/close cycles. An object collected without
//! `close()` leaves the range to its buffers, which unmap it when the last is
//! collected.
//!
//! Unix only: on Windows a mapped file cannot be replaced or deleted until
//! every view is collected, so there the constructor throws `Error` with
//! code "ENOTSUP" and callers read with `pread`.

use napi::bindgen_prelude::{ObjectFinalize, This, Unknown};
use napi::{check_status, Env, JsValue, Result};
use napi_derive::napi;

use crate::napi::kernels::{index, number, Cx};
use crate::napi::shared_file::js;
use crate::napi::{throw_error, throw_range_error, throw_type_error};
use crate::os::window::Window;

/// `offset` must be a multiple of this (64 KiB: a multiple of every Unix
/// page size we run on, and Windows's allocation granularity).
pub const MAP_ALIGN: u64 = 1 << 16;
/// Largest window (1 GiB, within every runtime's ArrayBuffer limit).
pub const MAX_MAP_LENGTH: u64 = 1 << 30;

/// A read-only shared window of `length` bytes onto an open file from
/// `offset`, mapped as far as the file reaches (see the module notes).
///
/// Arguments of the wrong type throw `TypeError`, unusable values
/// `RangeError`; after `close()` every method but `close()` throws
/// `Error('closed')`.
#[napi(custom_finalize)]
pub struct FileMapping {
    /// `None` once closed.
    window: Option<std::sync::Arc<Window>>,
    /// Weak references to every `buffer()` made, detached by `close()`.
    buffers: Vec<napi::sys::napi_ref>,
}

#[napi]
impl FileMapping {
    /// Reserves a window of `length` bytes and maps the file open as `fd`
    /// over it from `offset`, as far as the file reaches now.
    ///
    /// Throws `TypeError` for a non-number argument; `RangeError` for an `fd`
    /// outside 0..2^31−1, an `offset` that is not a multiple of 65,536 up to
    /// 2^53−1, or a `length` not a multiple of 65,536 from 65,536 to 2^30;
    /// `Error` with the errno name as `code` when the descriptor cannot be
    /// duplicated, stat'ed or mapped ("EBADF", "ENOMEM"), with code "EINVAL"
    /// when it is not a regular file, and with code "ENOTSUP" on Windows.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "fd: number, offset: number, length: number"
    )]
    pub fn new(
        env: Env,
        this: This<Unknown>,
        fd: Unknown,
        offset: Unknown,
        length: Unknown,
    ) -> Result<Self> {
        if !crate::napi::shared_file::constructing(&env, &this)? {
            return Err(throw_type_error(
                &env,
                "Class constructor FileMapping cannot be invoked without 'new'".to_owned(),
            ));
        }
        let cx = Cx(env.raw());
        let fd = js(index(cx, fd.raw(), i32::MAX as f64, "fd"))?;
        let offset = aligned(
            &env,
            offset,
            "offset",
            crate::os::shared_file::MAX_SAFE_INTEGER as f64,
        )?;
        let length = aligned(&env, length, "length", MAX_MAP_LENGTH as f64)?;
        if length == 0 {
            return Err(throw_range_error(
                &env,
                format!("length must be at least {MAP_ALIGN}"),
            ));
        }
        match Window::new(fd as i32, offset, length as usize) {
            Ok(window) => Ok(FileMapping {
                window: Some(std::sync::Arc::new(window)),
                buffers: Vec::new(),
            }),
            Err(e) => Err(throw_os_error(&env, e, fd)),
        }
    }

    /// Bytes of the window the file is mapped over (from its start), as of
    /// the last `refresh()` or the constructor.
    #[napi(getter, catch_unwind)]
    pub fn mapped(&self, env: Env) -> Result<f64> {
        Ok(self.window(&env)?.mapped() as f64)
    }

    /// Maps whatever the file grew by since the last call into the window,
    /// in place; returns the bytes mapped now (never fewer than before).
    /// Learns the file's length with `lseek`, never `fstat` (which would read
    /// the change time: spec/file_format_v1.md §8.5). Throws `Error` with the
    /// errno name as `code` when the length cannot be had or the file cannot
    /// be mapped (the bytes mapped before stay mapped).
    #[napi(catch_unwind)]
    pub fn refresh(&self, env: Env) -> Result<f64> {
        let w = self.window(&env)?;
        w.refresh()
            .map(|n| n as f64)
            .map_err(|e| throw_os_error(&env, e, w.fd()))
    }

    /// The whole window as an ArrayBuffer of `length` bytes: the file's bytes
    /// where mapped (see `mapped`), zeros past that. `close()` detaches it
    /// (length 0 from then on); a FileMapping collected without `close()`
    /// leaves the window reserved until the buffer is collected too. Throws
    /// `Error('closed')` after `close()`, and an `Error` with code
    /// "ERR_NO_EXTERNAL_BUFFERS" in a runtime that forbids ArrayBuffers over
    /// outside memory (V8 sandbox, as in Electron): callers then use `pread`.
    #[napi(catch_unwind, ts_return_type = "ArrayBuffer")]
    pub fn buffer(&mut self, env: Env) -> Result<Unknown<'_>> {
        let w = self.window(&env)?.clone();
        let (data, len) = (w.ptr(), w.len());
        // Safety: the window is reserved for `len` bytes at `data` for as long
        // as the Arc lives, and the buffer owns a clone of it.
        let buffer: Unknown<'_> = unsafe {
            crate::napi::shared_file::external_arraybuffer(&env, data, len, w, "read with pread")?
        };
        let mut r = std::ptr::null_mut();
        // Safety: a weak reference (count 0) to a value of this call's scope.
        check_status!(unsafe {
            napi::sys::napi_create_reference(env.raw(), buffer.raw(), 0, &mut r)
        })?;
        self.buffers.push(r);
        Ok(buffer)
    }

    /// Detaches every `buffer()` made (their views become empty), unmaps the
    /// window and closes the duplicated descriptor. Idempotent. Call it only
    /// when no code will read the buffers again: they read as empty after.
    #[napi(catch_unwind)]
    pub fn close(&mut self, env: Env) -> Result<()> {
        let Some(w) = self.window.take() else {
            return Ok(());
        };
        let mut detached = true;
        for r in self.buffers.drain(..) {
            let mut value = std::ptr::null_mut();
            // Safety: `r` is a live reference this object made in this env.
            unsafe {
                // A buffer collected already reads as null; one we cannot
                // look up or detach keeps the range mapped (never seen).
                let found = napi::sys::napi_get_reference_value(env.raw(), r, &mut value)
                    == napi::sys::Status::napi_ok;
                if !found
                    || (!value.is_null()
                        && napi::sys::napi_detach_arraybuffer(env.raw(), value)
                            != napi::sys::Status::napi_ok)
                {
                    detached = false;
                }
                napi::sys::napi_delete_reference(env.raw(), r);
            }
        }
        // With every buffer detached no JavaScript can reach the range: unmap
        // it now. If one refused (never seen), it stays mapped until collected.
        w.release(detached);
        Ok(())
    }
}

impl ObjectFinalize for FileMapping {
    /// Collected without `close()`: drop the references; the buffers, if any
    /// live, keep the window mapped until they are collected too.
    fn finalize(mut self, env: Env) -> Result<()> {
        for r in self.buffers.drain(..) {
            // Safety: a reference this object made in this env, deleted once.
            unsafe { napi::sys::napi_delete_reference(env.raw(), r) };
        }
        Ok(())
    }
}

impl FileMapping {
    fn window(&self, env: &Env) -> Result<&std::sync::Arc<Window>> {
        self.window
            .as_ref()
            .ok_or_else(|| throw_error(env, "closed".to_owned(), None))
    }
}

/// A multiple of MAP_ALIGN from 0 to `max`.
fn aligned(env: &Env, value: Unknown, name: &str, max: f64) -> Result<u64> {
    let n = js(number(Cx(env.raw()), value.raw(), name))?;
    if n.fract() == 0.0 && n >= 0.0 && n <= max && (n as u64).is_multiple_of(MAP_ALIGN) {
        Ok(n as u64)
    } else {
        Err(throw_range_error(
            env,
            format!("{name} {n} must be a multiple of {MAP_ALIGN} from 0 to {max}"),
        ))
    }
}

#[cold]
fn throw_os_error(
    env: &Env,
    (op, error): (&'static str, std::io::Error),
    fd: impl std::fmt::Display,
) -> napi::Error {
    let code = crate::napi::shared_file::errno_name(&error);
    let message = match code {
        Some(code) => format!("{code}: {error}, {op} fd {fd}"),
        None => format!("{error}, {op} fd {fd}"),
    };
    throw_error(env, message, code)
}
