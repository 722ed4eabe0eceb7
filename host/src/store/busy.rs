//! Waiting for another process's write lock: short, jittered pauses instead of SQLite's default schedule.
//!
//! Every agent's MCP client spawns its own server process, so several processes write to one database. What
//! `busy_timeout` installs sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between attempts, while a
//! write here holds the lock for well under a millisecond: a waiter sleeps tens of milliseconds for a lock that was
//! free long before, waiters pile up behind each other, and a burst of submits from ten processes had a p99 above a
//! second. This handler retries after pauses that start at 50 µs and double up to 1 ms, with jitter so waiting
//! processes do not retry in lockstep, until the wait reaches the calling thread's limit ([`BUSY_TIMEOUT`] unless
//! [`with_limit`] says otherwise). [`retry`] applies the same pauses to the statements SQLite fails at once instead.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::handoff::Handoff;
use super::BUSY_TIMEOUT;

/// The first pause after a busy attempt.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// The longest pause: about what one write holds the lock for, so a waiter never oversleeps a free lock by more.
const MAX_PAUSE: Duration = Duration::from_millis(1);

thread_local! {
    /// How long a statement on this thread may wait for the lock.
    static LIMIT: Cell<Duration> = const { Cell::new(BUSY_TIMEOUT) };
}

/// Installs the handler on `conn`; it replaces any `busy_timeout`. With `handoff`, a pause ends early when another
/// process ends its write transaction ([`super::handoff`]).
pub(super) fn install(
    conn: &mut Connection,
    handoff: Option<Arc<Handoff>>,
) -> rusqlite::Result<()> {
    // When the current wait began: set on a statement's first busy attempt.
    let mut began = Instant::now();
    conn.busy_handler(Some(move |attempt: i32| {
        let now = Instant::now();
        if attempt == 0 {
            began = now;
        }
        on_busy(
            attempt,
            now.saturating_duration_since(began),
            handoff.as_deref(),
        )
    }))
}

/// Runs `f` with statements on this thread waiting at most `limit` for another process's lock.
pub(super) fn with_limit<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let previous = LIMIT.with(|cell| cell.replace(limit));
    let result = f();
    LIMIT.with(|cell| cell.set(previous));
    result
}

/// Runs `f` again after the same pauses while it fails with `SQLITE_BUSY`, up to the thread's limit. For the few
/// statements SQLite answers `SQLITE_BUSY` without consulting the handler: switching a new file's journal mode
/// while another process holds a lock on it would deadlock if it waited, so SQLite returns at once.
pub(super) fn retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let began = Instant::now();
    let mut attempt = 0;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && on_busy(attempt, began.elapsed(), None) =>
            {
                attempt = attempt.saturating_add(1);
            }
            outcome => return outcome,
        }
    }
}

/// SQLite's busy callback: `attempt` counts the busy results of the current statement from 0, `waited` is the
/// time since the first; `false` gives up with `SQLITE_BUSY`.
fn on_busy(attempt: i32, waited: Duration, handoff: Option<&Handoff>) -> bool {
    let limit = LIMIT.with(Cell::get);
    if waited >= limit {
        return false;
    }
    let pause = pause_for(attempt).min(limit - waited);
    match handoff {
        Some(handoff) => handoff.wait(pause),
        None => std::thread::sleep(pause),
    }
    true
}

/// The pause after busy attempt `attempt`: doubling from [`FIRST_PAUSE`] to [`MAX_PAUSE`], then between half and
/// all of it, picked from the wall clock's nanoseconds (cheap, and different in every waiting process).
fn pause_for(attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt).unwrap_or(0).min(5);
    let base = (FIRST_PAUSE * 2u32.pow(doublings)).min(MAX_PAUSE);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let nanos = clock ^ std::process::id().wrapping_mul(2_654_435_761);
    let spread = u64::from(nanos) % (base.as_micros() as u64 / 2 + 1);
    base / 2 + Duration::from_micros(spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_millisecond_and_never_exceed_it() {
        let first = pause_for(0);
        assert!(
            first >= FIRST_PAUSE / 2 && first <= FIRST_PAUSE,
            "{first:?}"
        );
        for attempt in 0..1000 {
            assert!(pause_for(attempt) <= MAX_PAUSE);
        }
        assert!(pause_for(40) >= MAX_PAUSE / 2);
    }

    #[test]
    fn a_waiter_gets_the_lock_soon_after_another_process_releases_it() {
        // Two connections stand for two processes: one holds the write lock for 30 ms, the other waits on it.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.sqlite3");
        let holder = Connection::open(&path).expect("open");
        holder
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);")
            .expect("schema");
        let mut waiter = Connection::open(&path).expect("open");
        install(&mut waiter, None).expect("install");
        holder
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .expect("lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            holder.execute_batch("COMMIT").expect("commit");
            Instant::now()
        });
        waiter
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT;")
            .expect("waited");
        let got = Instant::now();
        let released = release.join().expect("holder");
        // SQLite's default schedule would be sleeping 10-25 ms at this point; ours overshoots by at most 1 ms.
        let late = got.saturating_duration_since(released);
        assert!(
            late < Duration::from_millis(15),
            "lock taken {late:?} after release"
        );
        let rows: i64 = waiter
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 2);
    }

    #[test]
    fn a_wait_gives_up_at_the_thread_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.sqlite3");
        let holder = Connection::open(&path).expect("open");
        holder
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE;")
            .expect("lock");
        let mut waiter = Connection::open(&path).expect("open");
        install(&mut waiter, None).expect("install");
        let began = Instant::now();
        let result = with_limit(Duration::from_millis(40), || {
            waiter.execute_batch("BEGIN IMMEDIATE")
        });
        let waited = began.elapsed();
        assert!(result.is_err(), "the lock is held throughout");
        assert!(
            waited >= Duration::from_millis(40) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        // The limit is restored for the next statement on this thread.
        assert_eq!(LIMIT.with(Cell::get), BUSY_TIMEOUT);
    }
}
