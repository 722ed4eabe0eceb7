//! The writer connection: its own thread, and point writes on the caller's thread when it is free.
//!
//! Every write of this process runs on one connection, one `BEGIN IMMEDIATE` transaction at a time. Most arrive
//! as jobs on a channel served by the `store-writer` thread, so no tokio worker ever waits for another process's
//! lock. A **point write** (a submit's insert: a duplicate-guard read and a dozen rows' worth of index updates,
//! well under a millisecond) instead runs on the calling thread when the connection is idle and the database's
//! write lock is free at once: the hop to the writer thread and back costs two thread wake-ups, about a tenth of
//! a submit. If the connection is busy with a job, or another process holds the lock, it goes to the thread
//! like any other write; it never waits for a lock on the caller's thread.
//!
//! After every transaction, wherever it ran, waiting processes are woken ([`super::handoff`]) and this
//! process's commit counter moves ([`super::changes`] waiters wake on it).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::handoff::Handoff;
use super::{busy, StoreError};

/// How long point writes stay off after one met another process's lock. Under contention the write waits for the
/// lock anyway, and trying here first costs more than it saves: the duplicate guard's memory, kept per thread,
/// would be split between the callers' threads and the writer thread, and each would read again what the other
/// had read (ten processes submitting at once: 1 640-1 820 submits/s through the thread, 1 210-1 350 with every
/// submit trying here first).
const CONTENDED_BACKOFF: Duration = Duration::from_millis(500);

/// A write sent to the writer thread.
pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

thread_local! {
    /// Whether this thread holds the writer connection: a blocking write from here would wait on itself.
    static HOLDS_WRITER: Cell<bool> = const { Cell::new(false) };
}

/// True on the writer thread and inside a point write: a write queued from here could never run.
pub(super) fn held_here() -> bool {
    HOLDS_WRITER.with(Cell::get)
}

/// The writer connection and what follows each of its transactions; shared by the thread and point writes.
pub(super) struct Writer {
    conn: Mutex<Connection>,
    /// The shared page through which processes hand the write lock over.
    handoff: Option<Arc<Handoff>>,
    /// Counts this process's write transactions (committed or not).
    commits: tokio::sync::watch::Sender<u64>,
    /// The origin of `contended_until`.
    born: Instant,
    /// Microseconds after `born` until which point writes are queued instead ([`CONTENDED_BACKOFF`]).
    contended_until: AtomicU64,
}

/// What [`Writer::spawn`] starts: the job queue, the thread serving it, and the commit counter's receiver.
pub(super) struct Started {
    /// The connection, shared with the thread.
    pub writer: Arc<Writer>,
    /// Where jobs for the thread go; dropping it ends the thread.
    pub jobs: mpsc::Sender<Job>,
    /// The thread.
    pub thread: JoinHandle<()>,
    /// Moves after every transaction of this process's writer.
    pub commits: tokio::sync::watch::Receiver<u64>,
}

/// What a point write that could not run here hands back, so the caller can queue it.
pub(super) enum NotHere<P, T> {
    /// The connection was busy with a job, or other processes' writes were recently in the way: nothing ran.
    Busy(P),
    /// `prepare` ran; another process holds the lock, so the transaction did not start.
    Locked(T),
}

impl Writer {
    /// Starts the `store-writer` thread on `conn`.
    pub fn spawn(
        conn: Connection,
        handoff: Option<Arc<Handoff>>,
        path: &Path,
    ) -> Result<Started, StoreError> {
        let (counter, commits) = tokio::sync::watch::channel(0u64);
        let writer = Arc::new(Writer {
            conn: Mutex::new(conn),
            handoff,
            commits: counter,
            born: Instant::now(),
            contended_until: AtomicU64::new(0),
        });
        let (jobs, receiver) = mpsc::channel::<Job>();
        let served = writer.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || {
                HOLDS_WRITER.with(|held| held.set(true));
                while let Ok(job) = receiver.recv() {
                    let mut conn = served.conn.lock().unwrap_or_else(PoisonError::into_inner);
                    // A panicking job must not take the writer down with it; its caller sees `Closed`.
                    if catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
                        tracing::error!("store write job panicked");
                    }
                    drop(conn);
                    served.transaction_over();
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Started {
            writer,
            jobs,
            thread,
            commits,
        })
    }

    /// Runs `prepare` and then `f` in a `BEGIN IMMEDIATE` transaction on this thread, if the connection is idle
    /// and the write lock is free at once; otherwise hands back what is left to queue.
    pub fn try_here<T, R, P, F>(
        &self,
        prepare: P,
        f: F,
    ) -> Result<Result<R, StoreError>, (NotHere<P, T>, F)>
    where
        P: FnOnce(&Connection) -> T,
        F: FnOnce(&rusqlite::Transaction<'_>, T) -> Result<R, StoreError>,
    {
        if self.micros_now() < self.contended_until.load(Ordering::Relaxed) {
            return Err((NotHere::Busy(prepare), f));
        }
        let mut conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err((NotHere::Busy(prepare), f)),
        };
        let _held = HeldHere::mark();
        let Ok(prepared) = catch_unwind(AssertUnwindSafe(|| prepare(&conn))) else {
            tracing::error!("store point write panicked");
            return Ok(Err(StoreError::Closed));
        };
        let tx = match busy::with_limit(Duration::ZERO, || {
            conn.transaction_with_behavior(TransactionBehavior::Immediate)
        }) {
            Ok(tx) => tx,
            // No transaction began: nothing for waiters to learn.
            Err(err) if is_busy(&err) => {
                let until = self
                    .micros_now()
                    .saturating_add(CONTENDED_BACKOFF.as_micros() as u64);
                self.contended_until.store(until, Ordering::Relaxed);
                return Err((NotHere::Locked(prepared), f));
            }
            Err(err) => return Ok(Err(err.into())),
        };
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            let value = f(&tx, prepared)?;
            tx.commit()?;
            Ok(value)
        }));
        drop(conn);
        self.transaction_over();
        Ok(outcome.unwrap_or_else(|_| {
            tracing::error!("store point write panicked");
            Err(StoreError::Closed)
        }))
    }

    /// Microseconds since `born`.
    fn micros_now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A transaction on the writer connection ended (committed or rolled back): wake processes waiting for the
    /// lock, and this process's commit waiters (a rolled-back one costs them one spurious re-read).
    fn transaction_over(&self) {
        if let Some(handoff) = &self.handoff {
            handoff.released();
        }
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The outcome of one `BEGIN IMMEDIATE` transaction running `f`: committed when `f` returns `Ok`.
pub(super) fn run_immediate<R, F>(conn: &mut Connection, f: F) -> Result<R, StoreError>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
{
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Marks this thread as holding the writer connection until dropped.
struct HeldHere;

impl HeldHere {
    fn mark() -> HeldHere {
        HOLDS_WRITER.with(|held| held.set(true));
        HeldHere
    }
}

impl Drop for HeldHere {
    fn drop(&mut self) {
        HOLDS_WRITER.with(|held| held.set(false));
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DatabaseBusy)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use rusqlite::Connection;

    use crate::store::test_support::temp_store;
    use crate::store::{Store, StoreError};

    /// The name of the thread a write ran on, and the row count it saw after inserting.
    async fn point_write(store: &Store, value: i64) -> Result<(String, i64), StoreError> {
        store
            .write_point_prepared(
                move |_conn: &Connection| value,
                |tx, value| {
                    tx.execute("INSERT INTO probe_rows (v) VALUES (?1)", [value])?;
                    let rows = tx.query_row("SELECT count(*) FROM probe_rows", [], |r| r.get(0))?;
                    let thread = std::thread::current().name().unwrap_or("").to_string();
                    Ok((thread, rows))
                },
            )
            .await
    }

    fn store_with_table() -> (tempfile::TempDir, Store) {
        let (dir, store) = temp_store();
        store
            .write_blocking(|tx| Ok(tx.execute_batch("CREATE TABLE probe_rows (v INTEGER)")?))
            .expect("create");
        // The job's caller wakes before the writer thread lets the connection go: wait until it has.
        drop(store.inner.writer_conn.conn.lock());
        (dir, store)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_writer_runs_a_point_write_on_the_calling_thread() {
        // Set up with a point write too: a queued job's caller wakes before the writer thread lets the
        // connection go, and a point write right then would (correctly) queue.
        let (_dir, store) = temp_store();
        store
            .write_point_prepared(
                |_conn: &Connection| (),
                |tx, ()| Ok(tx.execute_batch("CREATE TABLE probe_rows (v INTEGER)")?),
            )
            .await
            .expect("create");
        let caller = std::thread::current().name().unwrap_or("").to_string();
        let mut commits = store.inner.commits.clone();
        commits.borrow_and_update();
        let (thread, rows) = point_write(&store, 1).await.expect("point write");
        assert_eq!(thread, caller);
        assert_eq!(rows, 1);
        assert!(
            commits.has_changed().expect("counter"),
            "commit waiters were not told"
        );
        // Committed: a reader sees it.
        let seen: i64 = store
            .read_blocking(
                |c| Ok(c.query_row("SELECT count(*) FROM probe_rows", [], |r| r.get(0))?),
            )
            .expect("read");
        assert_eq!(seen, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_point_write_behind_another_process_lock_goes_to_the_writer_thread() {
        // Another connection stands for another process holding the write lock for 100 ms.
        let (_dir, store) = store_with_table();
        let other = Connection::open(store.path()).expect("open");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.execute_batch("COMMIT").expect("release");
        });
        let (thread, rows) = point_write(&store, 2).await.expect("point write");
        release.join().expect("release thread");
        assert_eq!(
            thread, "store-writer",
            "the caller's thread waited for the lock"
        );
        assert_eq!(rows, 1);
        // Contention was seen: for a while point writes go to the thread even with the lock free.
        std::thread::sleep(Duration::from_millis(20));
        let (thread, rows) = point_write(&store, 3).await.expect("point write");
        assert_eq!(
            thread, "store-writer",
            "a point write right after contention ran here"
        );
        assert_eq!(rows, 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_point_write_while_a_job_runs_is_queued_behind_it() {
        let (_dir, store) = store_with_table();
        let (started, running) = mpsc::channel();
        let (finish, finished) = mpsc::channel::<()>();
        let slow = store.clone();
        let job = std::thread::spawn(move || {
            slow.write_blocking(move |tx| {
                let _ = started.send(());
                let _ = finished.recv_timeout(Duration::from_secs(10));
                Ok(tx.execute("INSERT INTO probe_rows (v) VALUES (0)", [])?)
            })
        });
        running.recv().expect("job started");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = finish.send(());
        });
        let (thread, rows) = point_write(&store, 3).await.expect("point write");
        assert_eq!(thread, "store-writer");
        assert_eq!(
            rows, 2,
            "the point write ran after the job it queued behind"
        );
        job.join().expect("job thread").expect("job");
        releaser.join().expect("releaser");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_from_inside_a_point_write_is_refused() {
        let (_dir, store) = store_with_table();
        let inner = store.clone();
        let (blocking, queued) = store
            .write_point_prepared(
                |_conn: &Connection| (),
                move |_tx, ()| {
                    let blocking = inner.write_blocking(|_tx| Ok(()));
                    // An async write would queue a job and wait for it: refused before it queues.
                    let queued = futures::executor::block_on(inner.write(|_tx| Ok(())));
                    Ok((blocking, queued))
                },
            )
            .await
            .expect("outer write");
        for nested in [blocking, queued] {
            assert!(
                matches!(nested, Err(StoreError::WriteWouldDeadlock)),
                "{nested:?}"
            );
        }
        // The flag ends with the point write: the same thread may queue writes again.
        store
            .write_blocking(|_tx| Ok(()))
            .expect("write after the point write");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_point_write_rolls_back() {
        let (_dir, store) = store_with_table();
        let failed = store
            .write_point_prepared(
                |_conn: &Connection| (),
                |tx, ()| {
                    tx.execute("INSERT INTO probe_rows (v) VALUES (9)", [])?;
                    Err::<(), _>(crate::store::invalid("v", "refused"))
                },
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::InvalidArgument { .. })),
            "{failed:?}"
        );
        let (_, rows) = point_write(&store, 4).await.expect("next write");
        assert_eq!(rows, 1, "the failed write's row was kept");
    }
}
