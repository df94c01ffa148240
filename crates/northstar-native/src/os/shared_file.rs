//! A file mapped shared read-write as a table of 64-bit words, plus an
//! exclusive OS lock on the file: the cross-process primitive under
//! NorthstarDB's `<db>.lock` (published latest commit, reader slots, and the
//! writer lock, which the kernel releases when its holder dies, even by
//! SIGKILL). `napi::shared_file` exposes it to JavaScript as `SharedFile`.
//!
//! Word `w` is the little-endian i64 at byte `8 × w`, whatever the CPU's byte
//! order, so the file reads the same to the pread/pwrite fallback. Every
//! access to the mapping is a SeqCst atomic on one 8-aligned word; nothing
//! here takes a slice of it, because other processes write it at any time.
//! Words hold integers in ±(2^53 − 1), the range a JavaScript number holds
//! exactly: a store outside it is refused, and reading a word outside it
//! (a file written by something else) is a `Range` error, never a rounded
//! number.
//!
//! What must hold for the mapping to be sound, and what breaks if not:
//! - Nothing truncates the file below a live mapping's size: touching a
//!   mapped page past the end of the file is SIGBUS, which kills the process.
//!   `open` only ever appends (see `grow`), so only an outside program
//!   truncating the file can cause this.
//! - Every writer of the words uses atomics (this module, in any process): a
//!   plain `write(2)` into a live table can tear against them.
//!
//! Locking is `File::try_lock` (flock on Linux and macOS, LockFileEx on
//! Windows): the lock belongs to the open file description, so two
//! `SharedFile`s on one path exclude each other even within one process, and
//! std opens with O_CLOEXEC, so a spawned child never inherits a held lock.
//!
//! The mapping can outlive its `SharedFile`: `mapping()` hands out a
//! `Mapping` that keeps it mapped (JavaScript's `SharedFile.view()` hands the
//! memory to V8 this way). The kernel ties an flock to the open file
//! description, which a live mapping keeps open after the descriptor is
//! closed (Windows: memmap2 keeps a duplicated handle), so dropping a
//! `SharedFile` that holds the lock unlocks it explicitly first instead of
//! relying on the close.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};

use super::wake;

/// Bytes per word.
pub const WORD_SIZE: usize = 8;
/// Largest mapping `open` accepts (64 MiB): the table is small and fixed; a
/// bigger size is a caller's mistake, not a table.
pub const MAX_SIZE: usize = 64 << 20;
/// Largest magnitude a word may hold: 2^53 − 1, JavaScript's MAX_SAFE_INTEGER.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Debug)]
pub enum SharedError {
    /// An argument or a word's content is out of range (a JavaScript RangeError).
    Range(String),
    /// The operating system refused `op` ("open", "grow", "map", "lock", "unlock").
    Os { op: &'static str, error: io::Error },
}

pub type SharedResult<T> = Result<T, SharedError>;

#[cold]
fn range<T>(message: String) -> SharedResult<T> {
    Err(SharedError::Range(message))
}

fn os(op: &'static str) -> impl FnOnce(io::Error) -> SharedError {
    move |error| SharedError::Os { op, error }
}

/// True when `v` is an integer a JavaScript number holds exactly.
#[inline(always)]
pub fn is_safe(v: i64) -> bool {
    (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v)
}

#[inline(always)]
fn check_value(v: i64, name: &str) -> SharedResult<i64> {
    if is_safe(v) {
        Ok(v)
    } else {
        range(format!("{name} {v} is outside ±(2^53 − 1)"))
    }
}

/// A mapped word table and the file under it. Dropping it releases the lock
/// (explicitly, see `Drop`), closes the file, and unmaps the table unless a
/// `Mapping` of it is still alive.
pub struct SharedFile {
    /// Shared with every `Mapping` handed out; unmapped when the last goes.
    map: Arc<MmapRaw>,
    file: File,
    size: usize,
    /// This object holds the OS lock: `try_lock` is then idempotent and
    /// `unlock` of an unheld lock is a no-op on every platform (LockFileEx
    /// would otherwise fail a second lock, and UnlockFileEx an unheld one).
    locked: bool,
}

impl SharedFile {
    /// Opens `path` read-write (created with mode 0o644 if missing), grows it
    /// to at least `size` bytes, and maps its first `size` bytes shared.
    /// `size` is a positive multiple of 8, at most `MAX_SIZE`.
    pub fn open(path: &Path, size: usize) -> SharedResult<SharedFile> {
        if size == 0 || !size.is_multiple_of(WORD_SIZE) || size > MAX_SIZE {
            return range(format!(
                "size {size} must be a positive multiple of 8 up to {MAX_SIZE}"
            ));
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let file = options.open(path).map_err(os("open"))?;
        let meta = file.metadata().map_err(os("open"))?;
        if !meta.is_file() {
            // A FIFO or a device opens read-write but cannot hold a table.
            return Err(SharedError::Os {
                op: "open",
                error: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        if meta.len() < size as u64 {
            grow(path, size as u64)?;
        }
        // `path` may name another file by now (renamed over): map only if the
        // file actually opened is long enough, else the mapping would SIGBUS.
        if file.metadata().map_err(os("grow"))?.len() < size as u64 {
            return Err(SharedError::Os {
                op: "grow",
                error: io::Error::other("the file was replaced or truncated while opening"),
            });
        }
        let map = MmapOptions::new()
            .len(size)
            .map_raw(&file)
            .map_err(os("map"))?;
        if !(map.as_mut_ptr() as usize).is_multiple_of(align_of::<AtomicI64>()) {
            // Unreachable: mappings are page-aligned.
            return Err(SharedError::Os {
                op: "map",
                error: io::Error::other("mapping is not 8-byte aligned"),
            });
        }
        Ok(SharedFile {
            map: Arc::new(map),
            file,
            size,
            locked: false,
        })
    }

    /// The mapped size in bytes, as passed to `open`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The number of words: `size / 8`.
    pub fn words(&self) -> usize {
        self.size / WORD_SIZE
    }

    /// A handle on the mapping that keeps it mapped after this object is
    /// dropped. It holds neither the lock nor (on Unix) a file descriptor,
    /// and it stays a shared mapping of the same file: it keeps seeing every
    /// store made to the file's words, by any process, after the drop.
    pub fn mapping(&self) -> Mapping {
        Mapping(Arc::clone(&self.map))
    }

    /// Word `w`, or `Range` when `8 × w + 8 > size`.
    #[inline(always)]
    fn word(&self, w: usize) -> SharedResult<&AtomicI64> {
        if w >= self.words() {
            return range(format!("word {w} out of range 0..{}", self.words() - 1));
        }
        // Safety: the mapping is `size` bytes, page-aligned (checked 8-aligned
        // in `open`), so bytes 8w..8w+8 are an aligned i64 inside it, valid as
        // long as `&self`. Every access to it, in any process, is atomic (the
        // module's contract).
        Ok(unsafe { AtomicI64::from_ptr(self.map.as_mut_ptr().add(w * WORD_SIZE).cast()) })
    }

    /// SeqCst load of word `w`; `Range` if it holds a value outside ±(2^53 − 1).
    #[inline]
    pub fn load(&self, w: usize) -> SharedResult<i64> {
        let v = i64::from_le(self.word(w)?.load(SeqCst));
        if is_safe(v) {
            Ok(v)
        } else {
            range(format!("word {w} holds {v}, outside ±(2^53 − 1)"))
        }
    }

    /// SeqCst store of `value` (within ±(2^53 − 1)) into word `w`.
    #[inline]
    pub fn store(&self, w: usize, value: i64) -> SharedResult<()> {
        let word = self.word(w)?;
        check_value(value, "value")?;
        word.store(value.to_le(), SeqCst);
        Ok(())
    }

    /// SeqCst compare-exchange: true if word `w` held `expected` and now holds `value`.
    #[inline]
    pub fn compare_exchange(&self, w: usize, expected: i64, value: i64) -> SharedResult<bool> {
        let word = self.word(w)?;
        check_value(expected, "expected")?;
        check_value(value, "value")?;
        Ok(word
            .compare_exchange(expected.to_le(), value.to_le(), SeqCst, SeqCst)
            .is_ok())
    }

    /// Atomically adds `delta` to word `w`; returns the previous value. A sum
    /// outside ±(2^53 − 1) is `Range` and leaves the word unchanged, so no
    /// reader ever sees it: hence a compare-exchange loop, not `fetch_add`
    /// (which would also add in the wrong byte order on a big-endian CPU).
    #[inline]
    pub fn fetch_add(&self, w: usize, delta: i64) -> SharedResult<i64> {
        let word = self.word(w)?;
        check_value(delta, "delta")?;
        let mut current = word.load(SeqCst);
        loop {
            let old = i64::from_le(current);
            if !is_safe(old) {
                return range(format!("word {w} holds {old}, outside ±(2^53 − 1)"));
            }
            // Both within ±(2^53 − 1): the sum cannot overflow an i64.
            let new = old + delta;
            if !is_safe(new) {
                return range(format!("word {w} + {delta} = {new} is outside ±(2^53 − 1)"));
            }
            match word.compare_exchange_weak(current, new.to_le(), SeqCst, SeqCst) {
                Ok(_) => return Ok(old),
                Err(actual) => current = actual,
            }
        }
    }

    /// Adds 1 to word `w` and wakes every waiter of it, in every process
    /// (spec/concurrency_v0.md §2.6); returns the previous value.
    pub fn bump_and_wake(&self, w: usize) -> SharedResult<i64> {
        let old = self.fetch_add(w, 1)?;
        wake::wake_all(self.mapping().low_half(w));
        Ok(old)
    }

    /// Loads words `first .. first + out.len()` into `out`, each one atomically
    /// (the range is not a snapshot). On `Range` (the range does not fit, or a
    /// word holds an unsafe value) `out` is partly written.
    pub fn load_many(&self, first: usize, out: &mut [f64]) -> SharedResult<()> {
        let words = self.words();
        if first > words || out.len() > words - first {
            return range(format!(
                "words {first}..{first}+{} out of range 0..{words}",
                out.len()
            ));
        }
        for (i, slot) in out.iter_mut().enumerate() {
            // Exact: a safe integer converts to f64 without rounding.
            *slot = self.load(first + i)? as f64;
        }
        Ok(())
    }

    /// Takes the exclusive OS lock without blocking; true if this object now
    /// holds it (also when it already did), false if another holds it.
    pub fn try_lock(&mut self) -> SharedResult<bool> {
        if self.locked {
            return Ok(true);
        }
        match self.file.try_lock() {
            Ok(()) => {
                self.locked = true;
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(error)) => Err(SharedError::Os { op: "lock", error }),
        }
    }

    /// Releases the lock if this object holds it; otherwise does nothing.
    pub fn unlock(&mut self) -> SharedResult<()> {
        if self.locked {
            self.file.unlock().map_err(os("unlock"))?;
            self.locked = false;
        }
        Ok(())
    }

    /// True while this object holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Drop for SharedFile {
    /// Unlocks before the file closes: if a `Mapping` outlives this object,
    /// closing the descriptor alone would leave the lock held (the mapping
    /// keeps the open file description alive) until the mapping is gone.
    fn drop(&mut self) {
        // An unlock error leaves nothing to do: the close that follows is
        // the only other release there is.
        let _ = self.unlock();
    }
}

/// A shared owner of a `SharedFile`'s mapping: the `size` bytes at `as_ptr()`
/// stay mapped, readable and writable, as long as any `Mapping` or the
/// `SharedFile` itself is alive. The same contract as the words of
/// `SharedFile` holds for the memory: other processes store into it at any
/// time, so only atomic, aligned accesses are sound.
#[derive(Clone)]
pub struct Mapping(Arc<MmapRaw>);

impl Mapping {
    /// The first byte of the mapping: page-aligned, never null.
    pub fn as_ptr(&self) -> *mut u8 {
        self.0.as_mut_ptr()
    }

    /// Its length in bytes: the `size` the `SharedFile` was opened with.
    pub fn size(&self) -> usize {
        self.0.len()
    }

    /// The low 32 bits of word `w` (bytes 8w..8w+4: the words are little-endian),
    /// the futex of `wake`. Panics if the word is outside the mapping.
    pub fn low_half(&self, w: usize) -> &AtomicU32 {
        assert!(w * WORD_SIZE + WORD_SIZE <= self.size(), "word {w} outside the mapping");
        // Safety: in bounds (above) and 4-aligned (the mapping is page-aligned);
        // valid while `&self` keeps the mapping alive; every access is atomic.
        unsafe { AtomicU32::from_ptr(self.as_ptr().add(w * WORD_SIZE).cast()) }
    }
}

/// A thread that calls `notify` each time word `w` of a mapping changes (after
/// a `bump_and_wake` of it, in any process) from the value it held when
/// `spawn` was called, until `notify` returns false or the `Watch` is dropped.
/// Changes close together may be reported once.
pub struct Watch {
    stop: Arc<AtomicBool>,
    mapping: Mapping,
    w: usize,
}

impl Watch {
    pub fn spawn(mapping: Mapping, w: usize, mut notify: impl FnMut() -> bool + Send + 'static) -> io::Result<Watch> {
        // Read here, not in the thread: a change between this call's return and
        // the thread's first look must count (the thread may start late).
        let mut last = mapping.low_half(w).load(SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let watch = Watch { stop: Arc::clone(&stop), mapping: mapping.clone(), w };
        std::thread::Builder::new().name("northstar-watch".to_owned()).spawn(move || {
            let word = mapping.low_half(w);
            while !stop.load(SeqCst) {
                // The timeout only bounds how long a missed stop could go unseen.
                wake::wait(word, last, Duration::from_millis(250));
                let now = word.load(SeqCst);
                if now != last && !stop.load(SeqCst) {
                    last = now;
                    if !notify() {
                        break;
                    }
                }
            }
        })?;
        Ok(watch)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        // Ends the thread's wait at once (other processes' watchers see no
        // change of the word and wait again).
        wake::wake_all(self.mapping.low_half(self.w));
    }
}

/// Grows the file at `path` to at least `size` bytes by appending zeros
/// through a second, append-only handle. An append lands at the file's end
/// at the moment of the write, atomically, so openers racing here never
/// overwrite a word another has already stored (an explicit-offset write
/// would) and never shrink the file below another's larger size (`set_len`
/// would): the worst case is a file longer than needed. Appending also
/// allocates the blocks now, so a full disk fails this call with ENOSPC
/// instead of raising SIGBUS at the first store into a hole.
fn grow(path: &Path, size: u64) -> SharedResult<()> {
    let mut appender = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(os("grow"))?;
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    loop {
        let len = appender.metadata().map_err(os("grow"))?.len();
        if len >= size {
            return Ok(());
        }
        let n = (size - len).min(ZEROS.len() as u64) as usize;
        appender.write_all(&ZEROS[..n]).map_err(os("grow"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A fresh path in the temp dir, removed when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new() -> TempPath {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            TempPath(
                std::env::temp_dir()
                    .join(format!("northstar-shared-{}-{n}.lock", std::process::id())),
            )
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn is_range<T: std::fmt::Debug>(r: SharedResult<T>) -> bool {
        matches!(r, Err(SharedError::Range(_)))
    }

    #[test]
    fn creates_a_zeroed_table_of_the_requested_size() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 64).unwrap();
        assert_eq!(f.size(), 64);
        assert_eq!(f.words(), 8);
        assert_eq!(std::fs::metadata(&p.0).unwrap().len(), 64);
        for w in 0..8 {
            assert_eq!(f.load(w).unwrap(), 0);
        }
    }

    #[test]
    fn words_are_little_endian_i64_in_the_file() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 16).unwrap();
        f.store(1, -2).unwrap();
        f.store(0, 0x0102_0304_0506).unwrap();
        drop(f);
        let bytes = std::fs::read(&p.0).unwrap();
        assert_eq!(&bytes[0..8], &0x0102_0304_0506i64.to_le_bytes());
        assert_eq!(&bytes[8..16], &(-2i64).to_le_bytes());
    }

    #[test]
    fn two_mappings_of_one_file_see_each_others_stores() {
        let p = TempPath::new();
        let a = SharedFile::open(&p.0, 32).unwrap();
        let b = SharedFile::open(&p.0, 32).unwrap();
        a.store(3, MAX_SAFE_INTEGER).unwrap();
        assert_eq!(b.load(3).unwrap(), MAX_SAFE_INTEGER);
        b.store(0, -MAX_SAFE_INTEGER).unwrap();
        assert_eq!(a.load(0).unwrap(), -MAX_SAFE_INTEGER);
    }

    #[test]
    fn compare_exchange_swaps_only_on_a_match() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 8).unwrap();
        assert!(!f.compare_exchange(0, 1, 5).unwrap());
        assert_eq!(f.load(0).unwrap(), 0);
        assert!(f.compare_exchange(0, 0, 5).unwrap());
        assert_eq!(f.load(0).unwrap(), 5);
        assert!(!f.compare_exchange(0, 0, 6).unwrap());
        assert_eq!(f.load(0).unwrap(), 5);
    }

    #[test]
    fn fetch_add_returns_the_previous_value_and_refuses_to_leave_the_safe_range() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 8).unwrap();
        assert_eq!(f.fetch_add(0, 10).unwrap(), 0);
        assert_eq!(f.fetch_add(0, -3).unwrap(), 10);
        assert_eq!(f.load(0).unwrap(), 7);
        f.store(0, MAX_SAFE_INTEGER - 1).unwrap();
        assert_eq!(f.fetch_add(0, 1).unwrap(), MAX_SAFE_INTEGER - 1);
        assert!(is_range(f.fetch_add(0, 1)));
        assert_eq!(f.load(0).unwrap(), MAX_SAFE_INTEGER);
        f.store(0, -MAX_SAFE_INTEGER).unwrap();
        assert!(is_range(f.fetch_add(0, -1)));
        assert!(is_range(f.fetch_add(0, MAX_SAFE_INTEGER + 1)));
        assert_eq!(f.load(0).unwrap(), -MAX_SAFE_INTEGER);
    }

    #[test]
    fn values_outside_the_safe_range_are_refused() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 8).unwrap();
        assert!(is_range(f.store(0, MAX_SAFE_INTEGER + 1)));
        assert!(is_range(f.store(0, i64::MIN)));
        assert!(is_range(f.compare_exchange(0, 0, 1 << 53)));
        assert!(is_range(f.compare_exchange(0, -(1 << 53), 0)));
        assert_eq!(f.load(0).unwrap(), 0);
    }

    #[test]
    fn a_word_holding_an_unsafe_value_is_a_range_error_not_a_rounded_number() {
        let p = TempPath::new();
        std::fs::write(
            &p.0,
            [0xFF; 8]
                .iter()
                .chain(&[0x7F; 8])
                .copied()
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let f = SharedFile::open(&p.0, 16).unwrap();
        assert_eq!(f.load(0).unwrap(), -1);
        assert!(is_range(f.load(1)));
        assert!(is_range(f.fetch_add(1, 0)));
        assert!(!f.compare_exchange(1, 0, 1).unwrap());
        let mut out = [0.0; 2];
        assert!(is_range(f.load_many(0, &mut out)));
    }

    #[test]
    fn word_indexes_past_the_end_are_range_errors() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 16).unwrap();
        assert!(is_range(f.load(2)));
        assert!(is_range(f.store(2, 0)));
        assert!(is_range(f.compare_exchange(usize::MAX, 0, 0)));
        assert!(is_range(f.fetch_add(2, 1)));
    }

    #[test]
    fn load_many_reads_consecutive_words() {
        let p = TempPath::new();
        let f = SharedFile::open(&p.0, 40).unwrap();
        for w in 0..5 {
            f.store(w, w as i64 * 100 - 1).unwrap();
        }
        let mut out = [0.0; 3];
        f.load_many(2, &mut out).unwrap();
        assert_eq!(out, [199.0, 299.0, 399.0]);
        f.load_many(5, &mut []).unwrap();
        assert!(is_range(f.load_many(3, &mut out)));
        assert!(is_range(f.load_many(6, &mut [])));
        assert!(is_range(f.load_many(usize::MAX, &mut out)));
    }

    #[test]
    fn size_must_be_a_positive_multiple_of_8_up_to_64_mib() {
        let p = TempPath::new();
        for size in [0, 4, 12, MAX_SIZE + 8, usize::MAX - 7] {
            assert!(is_range(SharedFile::open(&p.0, size).map(|_| ())), "{size}");
        }
        assert!(!p.0.exists(), "a bad size creates no file");
    }

    #[test]
    fn growing_keeps_the_content_and_a_smaller_size_never_shrinks() {
        let p = TempPath::new();
        std::fs::write(&p.0, 7i64.to_le_bytes()).unwrap();
        let big = SharedFile::open(&p.0, 4096).unwrap();
        assert_eq!(big.load(0).unwrap(), 7);
        big.store(511, 9).unwrap();
        let small = SharedFile::open(&p.0, 8).unwrap();
        assert_eq!(small.load(0).unwrap(), 7);
        assert_eq!(std::fs::metadata(&p.0).unwrap().len(), 4096);
        assert_eq!(big.load(511).unwrap(), 9);
    }

    #[test]
    fn open_reports_the_os_error() {
        let dir = std::env::temp_dir();
        match SharedFile::open(&dir, 8) {
            Err(SharedError::Os { op: "open", .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        let missing = dir.join("northstar-no-such-dir").join("x.lock");
        match SharedFile::open(&missing, 8) {
            Err(SharedError::Os { op: "open", error }) => {
                assert_eq!(error.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn the_lock_excludes_another_object_on_the_same_file_and_is_released_by_drop() {
        let p = TempPath::new();
        let mut a = SharedFile::open(&p.0, 8).unwrap();
        let mut b = SharedFile::open(&p.0, 8).unwrap();
        assert!(a.try_lock().unwrap());
        assert!(a.try_lock().unwrap(), "idempotent on the holder");
        assert!(!b.try_lock().unwrap());
        b.unlock().unwrap(); // not held: a no-op
        assert!(!b.try_lock().unwrap());
        a.unlock().unwrap();
        assert!(!a.is_locked());
        assert!(b.try_lock().unwrap());
        drop(b);
        assert!(a.try_lock().unwrap());
    }

    #[test]
    fn a_mapping_outlives_its_shared_file_and_still_sees_the_files_words() {
        let p = TempPath::new();
        let a = SharedFile::open(&p.0, 4096).unwrap();
        let m = a.mapping();
        assert_eq!(m.size(), 4096);
        assert_eq!(m.as_ptr() as usize % 4096, 0, "page-aligned");
        a.store(3, -5).unwrap();
        drop(a);
        let b = SharedFile::open(&p.0, 4096).unwrap();
        b.store(2, 0x0102_0304_0506).unwrap();
        // Safety: `m` keeps the 4096 bytes mapped; the words are 8-aligned.
        let word = |w: usize| unsafe {
            i64::from_le(AtomicI64::from_ptr(m.as_ptr().add(8 * w).cast()).load(SeqCst))
        };
        assert_eq!(word(3), -5);
        assert_eq!(word(2), 0x0102_0304_0506);
    }

    #[test]
    fn dropping_a_locked_shared_file_releases_the_lock_while_a_mapping_lives() {
        let p = TempPath::new();
        let mut a = SharedFile::open(&p.0, 8).unwrap();
        assert!(a.try_lock().unwrap());
        let m = a.mapping();
        drop(a);
        let mut b = SharedFile::open(&p.0, 8).unwrap();
        assert!(b.try_lock().unwrap(), "the lock went with the SharedFile");
        drop(m);
    }

    #[test]
    fn concurrent_fetch_adds_through_separate_mappings_all_count() {
        let p = Arc::new(TempPath::new());
        SharedFile::open(&p.0, 8).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || {
                    let f = SharedFile::open(&p.0, 8).unwrap();
                    for _ in 0..50_000 {
                        f.fetch_add(0, 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(SharedFile::open(&p.0, 8).unwrap().load(0).unwrap(), 200_000);
    }
}
