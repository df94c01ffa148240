//! Waking other processes when a word of a shared mapping changes
//! (spec/concurrency_v0.md §2.6): Linux futexes on the low 32 bits of a
//! 64-bit word of `<db>.lock`.
//!
//! The futexes are not `FUTEX_PRIVATE`: on a `MAP_SHARED` file mapping the
//! kernel keys them by the file and offset, so a wake in one process reaches
//! waiters in every process that maps the file. Elsewhere (macOS, Windows)
//! there is no such primitive that Rust's std or libc offers for shared
//! memory: `SUPPORTED` is false, `wait` only sleeps, `wake_all` does nothing,
//! and JavaScript keeps looking on a timer instead.
//!
//! Contract of the protocol built on this: a changer first changes the word
//! (an atomic add), then calls `wake_all`; a waiter reads the word, decides to
//! wait, and calls `wait` with the value it read. The kernel compares the word
//! with that value atomically with going to sleep, so a change between the read
//! and the sleep makes `wait` return at once: no wake-up is lost.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// True where `wait` really waits for `wake_all` (Linux).
pub const SUPPORTED: bool = cfg!(target_os = "linux");

/// Sleeps until `word` is woken, `timeout` passes, or (at once) `word` no longer
/// holds `expected`. May return early for no reason; callers read the word again.
#[cfg(target_os = "linux")]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; the
    // kernel only reads it. EAGAIN (value changed), EINTR and ETIMEDOUT are all
    // "look again", which the caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every waiter of `word`, in every process mapping it.
#[cfg(target_os = "linux")]
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: as in `wait`; FUTEX_WAKE does not dereference beyond the key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub fn wait(_word: &AtomicU32, _expected: u32, timeout: Duration) {
    std::thread::sleep(timeout);
}

#[cfg(not(target_os = "linux"))]
pub fn wake_all(_word: &AtomicU32) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_wake_ends_a_wait_long_before_its_timeout() {
        let word = Arc::new(AtomicU32::new(7));
        let waiter = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                let start = Instant::now();
                while word.load(Ordering::SeqCst) == 7 {
                    wait(&word, 7, Duration::from_secs(10));
                }
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        word.fetch_add(1, Ordering::SeqCst);
        wake_all(&word);
        assert!(waiter.join().unwrap() < Duration::from_secs(5));
    }

    #[test]
    fn a_changed_word_returns_at_once_and_a_timeout_ends_the_wait() {
        let word = AtomicU32::new(1);
        let start = Instant::now();
        wait(&word, 2, Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5));
        let start = Instant::now();
        wait(&word, 1, Duration::from_millis(5));
        assert!(start.elapsed() >= Duration::from_millis(4));
    }
}
