//! How the process's heap behaves over hours: glibc's allocator tuned for a long-running server.
//!
//! glibc gives each contending thread its own arena (up to eight per core) and keeps memory freed
//! inside an arena mapped for later reuse. A server whose threads (tokio workers, the SQLite writer,
//! the reader pool, plugin calls) allocate in bursts then keeps the high-water mark of every arena
//! resident while it sits idle, which is most of its life. Two settings bound that: at most
//! [`ARENAS`] arenas, and returning free pages to the kernel once enough of them pile up
//! ([`spawn_trimmer`]). Neither changes what the program allocates, only what stays resident.
//! Other C libraries (and other platforms) have their own policies; there these are no-ops.

use std::time::Duration;

/// Most malloc arenas. Two serve a 2-core machine's concurrent allocations without contention worth
/// measuring, where the default (eight per core) multiplied the idle footprint.
const ARENAS: i32 = 2;

/// How often the trimmer looks at the free memory the heap holds.
pub const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Free heap memory worth giving back, in bytes. Below this a trim gains less than the page faults
/// of growing the heap again.
const TRIM_THRESHOLD_BYTES: usize = 1024 * 1024;

/// Caps the number of malloc arenas. Call before the first thread is spawned.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; called before other threads exist, it
    // races with no allocation.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// What the heap looks like: bytes in use, bytes free, bytes in separately mapped large blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Allocated and in use.
    pub in_use: usize,
    /// Obtained from the kernel and free (resident or not).
    pub free: usize,
    /// Large blocks mapped on their own (returned to the kernel on free anyway).
    pub mapped: usize,
}

/// The heap's statistics, when the C library keeps them.
pub fn heap_stats() -> Option<HeapStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallinfo2` reads allocator statistics under the arenas' locks.
        let info = unsafe { libc::mallinfo2() };
        Some(HeapStats {
            in_use: info.uordblks,
            free: info.fordblks,
            mapped: info.hblkhd,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Whether to trim now: enough memory is free and the heap changed since the last trim. Free chunks inside
/// the heap still count as free after a trim released their pages, so without the second condition an idle
/// server would trim, uselessly, forever.
pub fn worth_trimming(last_trim: Option<HeapStats>, now: HeapStats) -> bool {
    now.free >= TRIM_THRESHOLD_BYTES && last_trim != Some(now)
}

/// Returns every arena's free pages to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` releases unused pages of every arena under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Spawns the task that trims the heap every [`TRIM_PERIOD`] when [`worth_trimming`]. It runs until the
/// runtime shuts down; a trim takes well under a millisecond on this server's heap, so it runs inline on a
/// runtime thread.
pub fn spawn_trimmer(runtime: &tokio::runtime::Handle) {
    runtime.spawn(async {
        let mut ticks = tokio::time::interval(TRIM_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_trim = None;
        loop {
            ticks.tick().await;
            let Some(now) = heap_stats() else { return };
            if worth_trimming(last_trim, now) {
                trim();
                last_trim = heap_stats();
                tracing::trace!(
                    free_before = now.free,
                    "returned free heap pages to the kernel"
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's anonymous resident memory, in KiB.
    fn rss_anon_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with("RssAnon:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn an_idle_heap_is_trimmed_once() {
        // Enough free memory and a changed heap: trim. The same heap again (nothing allocated since): no trim.
        let heap = HeapStats {
            in_use: 10 << 20,
            free: 4 << 20,
            mapped: 0,
        };
        assert!(worth_trimming(None, heap));
        assert!(!worth_trimming(Some(heap), heap));
        let busier = HeapStats {
            in_use: 11 << 20,
            ..heap
        };
        assert!(worth_trimming(Some(heap), busier));
        let tidy = HeapStats {
            free: TRIM_THRESHOLD_BYTES - 1,
            ..heap
        };
        assert!(!worth_trimming(None, tidy));
    }

    #[test]
    fn a_freed_burst_leaves_the_resident_set_after_a_trim() {
        // 64 MiB of small allocations, freed, with one allocation made after them still alive so the heap
        // cannot simply shrink from its top: the pages stay resident until a trim gives them back.
        let Some(_) = heap_stats() else {
            return; // not glibc: nothing to check
        };
        let burst: Vec<Vec<u8>> = (0..65_536)
            .map(|i| vec![(i % 251) as u8 + 1; 1000])
            .collect();
        let pin = vec![7u8; 1000];
        drop(burst);
        let before = rss_anon_kib().expect("/proc/self/status");
        trim();
        let after = rss_anon_kib().expect("/proc/self/status");
        assert!(
            before.saturating_sub(after) >= 32 * 1024,
            "RssAnon {before} KiB before the trim, {after} KiB after"
        );
        assert_eq!(pin[0], 7);
    }
}
