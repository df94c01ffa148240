//! The mapping window under JavaScript's `FileMapping` (`napi::file_mapping`):
//! an address range reserved once at its full length (an anonymous read-only
//! mapping: zeros, no memory), over whose start the file's bytes are mapped
//! as far as the file reaches; `refresh()` maps more in place (MAP_FIXED) as
//! the file grows. So the range never moves, and no byte of it is ever a file
//! page past the end of the file as it was when mapped: reading any byte of
//! it is safe, and past what is mapped it reads zeros (or, in the OS page
//! holding the file's last bytes, which is mapped whole, what the file has
//! grown by since).
//!
//! What must hold, and what breaks if not:
//! - Nothing truncates the file below what is mapped while the window lives:
//!   touching such a page is SIGBUS, which kills the process. NorthstarDB's
//!   data file only ever grows (spec/file_format_v1.md §9.3).
//! - Nothing writes through the range: it is mapped read-only, so a write is
//!   SIGSEGV.
//! - Nothing reads the range after `release(true)` or the drop of the last
//!   owner: the caller (an `Arc` shared with every ArrayBuffer handed out)
//!   makes sure of it.
//!
//! The window holds a duplicate of the descriptor, so the caller may close
//! its own: `refresh()` always maps the file it was made on.
//!
//! Unix only: elsewhere `Window::new` fails with `ErrorKind::Unsupported`.

use std::io;

/// An OS failure: the operation ("dup", "reserve", "stat", "map") and its error.
pub type OsResult<T> = std::result::Result<T, (&'static str, io::Error)>;

#[cfg(unix)]
pub use unix::Window;
#[cfg(not(unix))]
pub use unsupported::Window;

#[cfg(unix)]
mod unix {
    use std::io;
    use std::sync::Mutex;

    use super::OsResult;

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

        // No is_empty: FileMapping only makes windows of 64 KiB or more.
        #[allow(clippy::len_without_is_empty)]
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

        /// Maps the file from `offset + mapped` to its current end (at most the
        /// window) over the range; returns `mapped`, the file's bytes now seen
        /// through the window. The OS page holding the file's last bytes is
        /// mapped whole: its bytes past the end of the file read as zeros (it is
        /// not a page past the end, so touching it is no SIGBUS), and a later
        /// refresh maps that page again, with whatever the file grew by in it.
        /// A file whose size is a multiple of the OS page (the data file) maps
        /// exactly as far as it reaches.
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
            let os_page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
            let size = (end as u64).saturating_sub(self.offset).min(self.len as u64) as usize;
            if size > s.mapped {
                // From the page holding the first byte not mapped yet (a partial
                // page the last refresh mapped is mapped again) to the page
                // holding the file's last byte; `len` is a multiple of 64 KiB, so
                // that page lies inside the window.
                let from = s.mapped / os_page * os_page;
                let to = size.div_ceil(os_page) * os_page;
                // Safety: [ptr + from, ptr + to) lies inside our reserved range
                // (to ≤ len), still mapped (fd ≥ 0: not released), MAP_FIXED
                // replaces only our own pages there, and the file reaches into
                // the page before `offset + to`, so no page mapped is past its end.
                let at = unsafe {
                    libc::mmap(
                        self.ptr.add(from).cast(),
                        to - from,
                        libc::PROT_READ,
                        libc::MAP_SHARED | libc::MAP_FIXED,
                        s.fd,
                        (self.offset + from as u64) as libc::off_t,
                    )
                };
                if at == libc::MAP_FAILED {
                    return Err(("map", io::Error::last_os_error()));
                }
                s.mapped = size;
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
mod unsupported {
    use std::io;

    use super::OsResult;

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
    use super::Window;
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
        // Every byte of the file, its last partial page mapped whole: zeros after its end in that page.
        assert_eq!(w.mapped(), W + 10);
        assert_eq!(byte(&w, 0), 7);
        assert_eq!(byte(&w, W + 9), 7);
        assert_eq!(byte(&w, W + 10), 0);
        assert_eq!(byte(&w, 3 * W), 0);
        let ptr = w.ptr();
        // Growth inside and after the partial page is mapped in place.
        f.write_at(&vec![9u8; 2 * W], W as u64).unwrap();
        assert_eq!(w.refresh().unwrap(), 3 * W);
        assert_eq!(w.ptr(), ptr);
        assert_eq!(byte(&w, W + 5), 9);
        assert_eq!(byte(&w, W + 10), 9);
        assert_eq!(byte(&w, 3 * W - 1), 9);
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
