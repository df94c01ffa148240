//! N-API class `FileMapping`: a window of an open file mapped read-only and
//! shared, seen from JavaScript as one ArrayBuffer, so a reader takes page
//! bytes straight from the operating system's page cache instead of copying
//! each page with `pread` (spec/file_format_v1.md §9.3 says what the pager
//! relies on).
//!
//! The window is an address range reserved once at its full length (an
//! anonymous read-only mapping: zeros, no memory). The file's bytes are
//! mapped over the start of it as far as the file reaches, and `refresh()`
//! maps more in place (MAP_FIXED) as the file grows. So:
//! - the ArrayBuffer never changes, however the file grows (a new
//!   ArrayBuffer per growth made V8 count tens of MiB of external memory
//!   each time, and collect garbage for it: 25× the CPU per read);
//! - no byte of it is ever a file page past the end of the file as it was
//!   when mapped, so reading any byte of the buffer is safe: past what is
//!   mapped it reads zeros;
//! - the one thing that breaks it is another program truncating the file
//!   below what is mapped while the mapping lives: touching such a page is
//!   SIGBUS, which kills the process. NorthstarDB's data file only ever
//!   grows (spec/file_format_v1.md §9.3).
//!
//! The mapping is read-only: a write through the ArrayBuffer is SIGSEGV, so
//! callers treat its bytes as immutable (the pager's cached pages already
//! are). It holds a duplicate of the descriptor, so the caller may close its
//! own: `refresh()` always maps the file it was made on.
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

use crate::napi::{throw_error, throw_range_error, throw_type_error};
use crate::napi_kernels::{index, number, Cx};
use crate::napi_shared::js;

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
    window: Option<std::sync::Arc<sys::Window>>,
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
        if !crate::napi_shared::constructing(&env, &this)? {
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
            crate::shared::MAX_SAFE_INTEGER as f64,
        )?;
        let length = aligned(&env, length, "length", MAX_MAP_LENGTH as f64)?;
        if length == 0 {
            return Err(throw_range_error(
                &env,
                format!("length must be at least {MAP_ALIGN}"),
            ));
        }
        match sys::Window::new(fd as i32, offset, length as usize) {
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
            crate::napi_shared::external_arraybuffer(&env, data, len, w, "read with pread")?
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
    fn window(&self, env: &Env) -> Result<&std::sync::Arc<sys::Window>> {
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
    let code = crate::napi_shared::errno_name(&error);
    let message = match code {
        Some(code) => format!("{code}: {error}, {op} fd {fd}"),
        None => format!("{error}, {op} fd {fd}"),
    };
    throw_error(env, message, code)
}

#[cfg(unix)]
mod sys {
    use std::io;
    use std::sync::Mutex;

    type OsResult<T> = std::result::Result<T, (&'static str, io::Error)>;

    /// The reserved range and, under the lock, the duplicated descriptor (-1
    /// once released), how much of the file is mapped over the range, and
    /// whether `release` unmapped it already.
    pub struct Window {
        ptr: *mut u8,
        len: usize,
        offset: u64,
        state: Mutex<State>,
    }

    struct State {
        fd: i32,
        mapped: usize,
        unmapped: bool,
    }

    // Safety: the range is only read through the pointers handed to
    // JavaScript, and changed (mmap MAP_FIXED, munmap) under `state`'s lock.
    unsafe impl Send for Window {}
    unsafe impl Sync for Window {}

    impl Window {
        pub fn new(fd: i32, offset: u64, len: usize) -> OsResult<Window> {
            // Safety: dup of a caller's descriptor; a bad one gives EBADF.
            let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if own < 0 {
                return Err(("dup", io::Error::last_os_error()));
            }
            // Safety: a fresh anonymous read-only reservation; checked below.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                // Safety: our own descriptor, closed once.
                unsafe { libc::close(own) };
                return Err(("reserve", e));
            }
            // From here Drop unmaps the range and closes the descriptor.
            let w = Window {
                ptr: ptr.cast(),
                len,
                offset,
                state: Mutex::new(State {
                    fd: own,
                    mapped: 0,
                    unmapped: false,
                }),
            };
            // A regular file only (mmap of anything else fails or means nothing).
            // Checked once here: refresh() asks only for the size (see there).
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // Safety: fstat of our own descriptor into a local.
            if unsafe { libc::fstat(own, st.as_mut_ptr()) } != 0 {
                return Err(("stat", io::Error::last_os_error()));
            }
            // Safety: fstat succeeded, so it filled `st`.
            if (unsafe { st.assume_init() }.st_mode & libc::S_IFMT) != libc::S_IFREG {
                return Err(("stat", io::Error::from_raw_os_error(libc::EINVAL)));
            }
            w.refresh()?;
            Ok(w)
        }

        pub fn ptr(&self) -> *mut u8 {
            self.ptr
        }

        pub fn len(&self) -> usize {
            self.len
        }

        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        pub fn fd(&self) -> i32 {
            self.state().fd
        }

        pub fn mapped(&self) -> usize {
            self.state().mapped
        }

        /// Maps the file from `offset + mapped` to its current end (whole OS
        /// pages, at most the window) over the range; returns `mapped`.
        pub fn refresh(&self) -> OsResult<usize> {
            let mut s = self.state();
            if s.fd < 0 {
                return Err(("map", io::Error::from_raw_os_error(libc::EBADF)));
            }
            // The size by lseek, not fstat: fstat also reads the file's change
            // time, and on Linux 6.13+ (multigrain timestamps) a change time that
            // was read makes the next write to the file dirty its inode, which an
            // fdatasync of the log then writes too: one more device request per
            // commit (spec/file_format_v1.md §8.5). Our own descriptor's offset
            // is not used by anything (all I/O is positional).
            // Safety: lseek on our own descriptor.
            let end = unsafe { libc::lseek(s.fd, 0, libc::SEEK_END) };
            if end < 0 {
                return Err(("stat", io::Error::last_os_error()));
            }
            // Safety: sysconf has no preconditions.
            let os_page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
            let size = (end as u64).saturating_sub(self.offset);
            let want = (size.min(self.len as u64) / os_page * os_page) as usize;
            if want > s.mapped {
                // Safety: [ptr + mapped, ptr + want) lies inside our reserved
                // range (want ≤ len), still mapped (fd ≥ 0: not released),
                // MAP_FIXED replaces only our own pages there, and the file
                // reaches past `offset + want` now.
                let at = unsafe {
                    libc::mmap(
                        self.ptr.add(s.mapped).cast(),
                        want - s.mapped,
                        libc::PROT_READ,
                        libc::MAP_SHARED | libc::MAP_FIXED,
                        s.fd,
                        (self.offset + s.mapped as u64) as libc::off_t,
                    )
                };
                if at == libc::MAP_FAILED {
                    return Err(("map", io::Error::last_os_error()));
                }
                s.mapped = want;
            }
            Ok(s.mapped)
        }

        /// Closes the descriptor, and with `unmap` unmaps the range now (the
        /// caller has made sure nothing reads it again). Idempotent.
        pub fn release(&self, unmap: bool) {
            let mut s = self.state();
            if s.fd >= 0 {
                // Safety: our own descriptor, closed once (set to -1 under the lock).
                unsafe { libc::close(s.fd) };
                s.fd = -1;
            }
            if unmap && !s.unmapped {
                // Safety: our own range, unmapped once (flag under the lock).
                unsafe { libc::munmap(self.ptr.cast(), self.len) };
                s.unmapped = true;
            }
        }
    }

    impl Drop for Window {
        fn drop(&mut self) {
            // Nothing references the range once the last Arc (FileMapping or
            // ArrayBuffer) is dropped.
            self.release(true);
        }
    }
}

#[cfg(not(unix))]
mod sys {
    use std::io;

    type OsResult<T> = std::result::Result<T, (&'static str, io::Error)>;

    pub struct Window;

    impl Window {
        pub fn new(_fd: i32, _offset: u64, _len: usize) -> OsResult<Window> {
            Err(("map", io::Error::from(io::ErrorKind::Unsupported)))
        }
        pub fn ptr(&self) -> *mut u8 {
            std::ptr::null_mut()
        }
        pub fn len(&self) -> usize {
            0
        }
        pub fn fd(&self) -> i32 {
            -1
        }
        pub fn mapped(&self) -> usize {
            0
        }
        pub fn refresh(&self) -> OsResult<usize> {
            Err(("map", io::Error::from(io::ErrorKind::Unsupported)))
        }
        pub fn release(&self, _unmap: bool) {}
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::sys::Window;
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;

    const W: usize = 1 << 16;

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "northstar-map-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(bytes).unwrap();
        (path, f)
    }

    fn byte(w: &Window, at: usize) -> u8 {
        assert!(at < w.len());
        // Safety: inside the reserved range, which stays mapped while `w` lives.
        unsafe { *w.ptr().add(at) }
    }

    #[test]
    fn maps_what_the_file_holds_reads_zeros_past_it_and_maps_growth_in_place() {
        let (path, f) = temp_file(&vec![7u8; W + 10]);
        let w = Window::new(f.as_raw_fd(), 0, 4 * W).unwrap();
        // Whole OS pages only: the tail of the file's last partial page waits for more.
        assert_eq!(w.mapped(), W);
        assert_eq!(byte(&w, 0), 7);
        assert_eq!(byte(&w, 3 * W), 0);
        let ptr = w.ptr();
        f.write_at(&vec![9u8; 2 * W], W as u64).unwrap();
        assert_eq!(w.refresh().unwrap(), 3 * W);
        assert_eq!(w.ptr(), ptr);
        assert_eq!(byte(&w, W + 5), 9);
        // Never past the window, however far the file reaches.
        f.write_at(&[1u8; 16], 10 * W as u64).unwrap();
        assert_eq!(w.refresh().unwrap(), 4 * W);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_offset_window_starts_at_its_offset() {
        let mut bytes = vec![1u8; W];
        bytes.extend(vec![2u8; W]);
        let (path, f) = temp_file(&bytes);
        let w = Window::new(f.as_raw_fd(), W as u64, W).unwrap();
        assert_eq!(w.mapped(), W);
        assert_eq!(byte(&w, 0), 2);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn release_closes_the_descriptor_once_and_refresh_then_fails() {
        let (path, f) = temp_file(&vec![3u8; W]);
        let w = Window::new(f.as_raw_fd(), 0, W).unwrap();
        let own = w.fd();
        assert!(own >= 0 && own != f.as_raw_fd());
        w.release(false);
        w.release(false);
        assert_eq!(w.fd(), -1);
        assert!(w.refresh().is_err());
        // Still mapped (release(false) keeps the range): readable.
        assert_eq!(byte(&w, 1), 3);
        drop(f);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_descriptors_are_errors_not_panics() {
        assert!(Window::new(-1, 0, W).is_err());
        assert!(Window::new(1 << 30, 0, W).is_err());
        let dir = File::open(std::env::temp_dir()).unwrap();
        let e = Window::new(dir.as_raw_fd(), 0, W).err().unwrap();
        assert_eq!(e.1.raw_os_error(), Some(libc::EINVAL));
    }
}
