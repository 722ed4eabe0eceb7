//! Handing the write lock from one process to the next: a waiter sleeps on a shared futex word instead of a
//! timer, and a writer that ends its transaction wakes it.
//!
//! SQLite's locks are polled: a process that finds the write lock taken sleeps ([`super::busy`]) and tries again.
//! With ten server processes submitting at once the lock then sits free while every waiter is still asleep, and the
//! machine idles (a profile of ten clients submitting showed three quarters of both cores idle at 280 submits/s).
//! Here every process maps one small file next to the database (`<db>.handoff`, a generation counter and a
//! waiter count). A waiter reads the generation, then waits on it with `FUTEX_WAIT` for at most the pause it would
//! have slept; a process whose write transaction ended bumps the generation and, when someone waits, wakes them.
//!
//! It is only ever a shortcut: a waiter still wakes when its pause ends, so a process that crashes mid-write, a
//! process of another version or another SQLite client that never wakes anyone, or a filesystem where the mapping
//! fails, costs at most the pause it always did.

use std::fs::OpenOptions;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::liveness::sibling;

/// Size of the mapped file: one page, of which the first eight bytes are used.
const FILE_LEN: usize = 4096;

/// The shared page of one database.
#[derive(Debug)]
pub(super) struct Handoff {
    page: NonNull<u8>,
}

// SAFETY: the page is a MAP_SHARED mapping that lives as long as the value, and it is only ever accessed through
// the atomics below, so sharing it between threads is as safe as sharing the atomics.
unsafe impl Send for Handoff {}
// SAFETY: see `Send`.
unsafe impl Sync for Handoff {}

impl Handoff {
    /// Maps `<db>.handoff`, creating it when needed; `None` (with a debug log) when the filesystem refuses, in which
    /// case waiters only sleep.
    pub(super) fn open(db: &Path) -> Option<Handoff> {
        let path = sibling(db, "handoff");
        let mapped = (|| -> std::io::Result<Handoff> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            if file.metadata()?.len() < FILE_LEN as u64 {
                file.set_len(FILE_LEN as u64)?;
            }
            use std::os::fd::AsRawFd;
            // SAFETY: a fresh shared mapping of FILE_LEN bytes of a file at least that long; the fd may be closed
            // afterwards (the mapping keeps the file), and the address is checked for MAP_FAILED.
            let address = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    FILE_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if address == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            NonNull::new(address.cast::<u8>())
                .map(|page| Handoff { page })
                .ok_or_else(|| std::io::Error::other("mmap returned null"))
        })();
        match mapped {
            Ok(handoff) => Some(handoff),
            Err(err) => {
                tracing::debug!(path = %path.display(), error = %err, "no write-lock handoff; waiters only sleep");
                None
            }
        }
    }

    fn generation(&self) -> &AtomicU32 {
        // SAFETY: offset 0 of a page-aligned mapping of FILE_LEN bytes: aligned, in bounds, alive with `self`, and
        // only accessed atomically (by this and other processes).
        unsafe { AtomicU32::from_ptr(self.page.as_ptr().cast::<u32>()) }
    }

    fn waiters(&self) -> &AtomicU32 {
        // SAFETY: as `generation`, at offset 4.
        unsafe { AtomicU32::from_ptr(self.page.as_ptr().add(4).cast::<u32>()) }
    }

    /// Sleeps until another process ends a write transaction, or `pause` passes, whichever comes first.
    pub(super) fn wait(&self, pause: Duration) {
        let generation = self.generation();
        let seen = generation.load(Ordering::Acquire);
        self.waiters().fetch_add(1, Ordering::AcqRel);
        let timeout = libc::timespec {
            tv_sec: pause.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(pause.subsec_nanos()),
        };
        // SAFETY: FUTEX_WAIT on an aligned u32 in a shared mapping that outlives the call, with a valid relative
        // timeout; it returns at once when the word no longer holds `seen`. EINTR, EAGAIN and ETIMEDOUT all mean
        // "try the lock again", so the result is not inspected.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                generation.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &timeout as *const libc::timespec,
            );
        }
        self.waiters().fetch_sub(1, Ordering::AcqRel);
    }

    /// Says that this process's write transaction ended: wakes every process waiting for the lock.
    pub(super) fn released(&self) {
        self.generation().fetch_add(1, Ordering::AcqRel);
        if self.waiters().load(Ordering::Acquire) == 0 {
            return;
        }
        // SAFETY: FUTEX_WAKE on the same aligned shared word; waking nobody is harmless.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.generation().as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
            );
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; nothing borrows it past `self`.
        unsafe {
            libc::munmap(self.page.as_ptr().cast(), FILE_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_release_wakes_a_waiter_long_before_its_pause_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.sqlite3");
        // Two mappings of one file stand for two processes.
        let waiter = Arc::new(Handoff::open(&db).expect("map"));
        let writer = Handoff::open(&db).expect("map again");
        let sleeper = {
            let waiter = waiter.clone();
            std::thread::spawn(move || {
                let began = Instant::now();
                waiter.wait(Duration::from_secs(5));
                began.elapsed()
            })
        };
        // Released until the waiter has gone to sleep and been woken by one of these.
        while !sleeper.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
            writer.released();
        }
        let slept = sleeper.join().expect("sleeper");
        assert!(slept < Duration::from_secs(2), "slept {slept:?}");
        assert_eq!(waiter.waiters().load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_wait_without_a_release_ends_with_its_pause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let handoff = Handoff::open(&dir.path().join("state.sqlite3")).expect("map");
        let began = Instant::now();
        handoff.wait(Duration::from_millis(30));
        let slept = began.elapsed();
        assert!(
            slept >= Duration::from_millis(25) && slept < Duration::from_secs(2),
            "{slept:?}"
        );
    }
}
