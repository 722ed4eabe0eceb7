//! The durable state: one SQLite file (WAL) shared by every server process on the host.
//!
//! # Concurrency model
//!
//! A [`Store`] owns **one writer connection on a dedicated OS thread**. Every write is a closure sent over a
//! channel and answered through a oneshot, so writes from one process are serialised without a lock on the tokio
//! reactor, and each write runs in its own `BEGIN IMMEDIATE` transaction (other processes wait with [`busy`]'s
//! short pauses, up to [`BUSY_TIMEOUT`], which end early when the holder's transaction ends: [`handoff`]). Reads use a **small pool of read-only connections** driven through
//! `spawn_blocking`: in WAL mode a reader sees the last committed snapshot and never waits for the writer, so a
//! status poll is never stuck behind a long write. Blocking SQLite work therefore does not run on a reactor
//! thread, with one exception: a **point read** ([`Store::read_point`], a status poll's snapshot: a few index
//! lookups of a bounded number of rows, tens of microseconds) runs on the calling thread, because the hop to the
//! blocking pool and back (two thread wake-ups) costs more than the read. It never waits for a lock either. Its
//! counterpart, a **point write** ([`Store::write_point_prepared`], a submit's insert), runs on the calling thread
//! only when the writer connection is idle and the write lock is free at once, else on the writer thread
//! ([`writer`]).
//!
//! # Layout
//!
//! - [`schema`]: the versioned migrations (`PRAGMA user_version`).
//! - [`operations`]: operations with their queue fields, idempotent insert, status transitions, reports.
//! - [`submissions`]: prompt submissions and the active duplicate-prompt guard.
//! - [`leases`]: workers, leases, heartbeats, claiming.
//! - [`admission`]: may an operation start now: slots, resource locks, write slots (the seed's order).
//! - [`connection`]: how SQLite and each connection are set up (pragmas, statement cache, plan stability).
//! - [`busy`]: how a connection waits for another process's write lock.
//! - [`handoff`]: the shared futex word that wakes those waiters when a write transaction ends.
//! - [`liveness`]: proof of life through OS file locks next to the database (owners, the worker).
//! - [`changes`]: wakes waiters on a commit of any process (`PRAGMA data_version`, local commit counter).
//! - [`commands`]: worker commands (`cmd_<hex>`): control actions a client asks the worker to perform.
//! - [`intents`]: the creating-call journal (intent before a creating app-server call, confirmation after).
//! - [`recovery`]: startup recovery of operations whose owner is gone.
//! - [`turns`]: tracked turns, their messages, progress events and token usage.
//! - [`interactions`]: durable pending interactions, answerable from any process.
//! - [`events`]: the bounded, redacted app-server frame journal.
//! - [`workflows`]: plugin-driven workflows, their action journal and history.
//! - [`lifecycle`]: audited thread lifecycle actions (archive, unarchive, compact).
//! - [`capabilities`]: the last runtime capabilities snapshot per working directory and flags.
//! - [`health`]: the health summary's reads: active work, stalled turns, historical debt, recent errors.
//! - [`chats`]: the chat read model (threads with their project, title, latest turn and activity).
//! - [`history`]: the mirrored chat history and its FTS5 index.
//! - [`plugin_state`]: plugin key/value state, read and written synchronously from inside plugin calls.
//! - [`writer`]: the writer connection, its thread, and point writes.
//!
//! **Architecture Invariant:** only `store` contains SQL. Timestamps are stored as unix milliseconds and
//! rendered as ISO-8601 UTC only when serialised.

pub mod admission;
mod busy;
pub mod capabilities;
pub mod changes;
pub mod chats;
mod checkpoint;
pub mod commands;
mod connection;
pub mod diagnoses;
pub mod diagnostics;
pub mod events;
pub mod goals;
mod handoff;
pub mod health;
pub mod history;
pub mod intents;
pub mod interactions;
pub mod leases;
pub mod lifecycle;
pub mod liveness;
pub mod operations;
pub mod plugin_state;
pub mod probe;
pub mod recovery;
pub mod repair_targets;
pub mod repairs;
pub mod schema;
pub mod submissions;
pub mod summaries;
pub mod turns;
mod wal_writes;
pub mod workflows;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::{Serialize, Serializer};

use crate::domain::rules::dedup::DuplicateMatch;

pub use events::{AppServerEvent, EventFilter, NewAppServerEvent};
pub use intents::{Intent, CREATING_METHODS};
pub use interactions::{InteractionFilter, NewInteraction, PendingInteraction};
pub use leases::{ClaimLimits, ClaimOutlook, ConcurrencyCounts, WorkerInfo, WorkerRow};
pub use operations::{
    HealthCounts, InsertOutcome, NewOperation, Operation, OperationFilter, OperationSnapshot,
    QueueCounts,
};
pub use recovery::RecoveryReport;
pub use turns::{
    NewProgressEvent, NewTurnMessage, ProgressEvent, TokenUsage, Turn, TurnMessage, TurnUpdate,
};

/// How long a connection waits for another process's write lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept open; more are opened on demand under load and closed when returned.
const MAX_IDLE_READERS: usize = 4;
/// Page cache of the writer connection (KiB). An insert touches about a dozen index pages and a claim a few
/// more; 1 MiB (about 250 pages) keeps every B-tree's interior pages. More only fills with pages of one-off
/// scans (health counts, recovery) and stays resident: with 32 MiB, a server that had scanned a 100k-row
/// database held 51 MB; 4 MiB cost 2-4 MB more than this after the MCP bench's 100k-row session, for no
/// measurable speed (PERFORMANCE, run N). Pages that fall out come back from the OS page cache.
const WRITER_CACHE_KIB: i64 = 1024;
/// Page cache of each reader connection (KiB): a status poll reads a handful of pages.
const READER_CACHE_KIB: i64 = 256;

/// Everything the store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error (including `SQLITE_BUSY` after [`BUSY_TIMEOUT`]).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file was written by a newer binary; refusing to touch it.
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// `client_request_id` names an operation whose request differs.
    #[error("client_request_id already used by {operation_id} with a different request ({})", differing_fields.join(", "))]
    IdempotencyKeyReused {
        /// The existing operation.
        operation_id: String,
        /// Top-level request fields that differ.
        differing_fields: Vec<String>,
    },
    /// An active operation in the same scope already runs this prompt.
    #[error("an active operation ({}) already runs this prompt", .0.existing_operation_id)]
    DuplicatePromptActive(Box<DuplicateMatch>),
    /// No row with this id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `operation`, `turn`, `interaction`, `intent`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The status change is not allowed.
    #[error("operation {operation_id}: {from} -> {to} is not allowed")]
    InvalidTransition {
        /// The operation.
        operation_id: String,
        /// Current status.
        from: String,
        /// Requested status.
        to: String,
    },
    /// A value the store was given is malformed.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The caller does not hold the lease it acts under.
    #[error("operation {operation_id} is not leased by {owner}")]
    LeaseNotHeld {
        /// The operation.
        operation_id: String,
        /// The caller.
        owner: String,
    },
    /// The interaction can no longer be answered.
    #[error("interaction {interaction_id} is {status}")]
    InteractionUnavailable {
        /// The interaction.
        interaction_id: String,
        /// Its status (`expired`, `answered`, ...).
        status: String,
    },
    /// A stored JSON column could not be parsed.
    #[error("stored json: {0}")]
    Json(#[from] serde_json::Error),
    /// The writer thread is gone (the store is shutting down or a write panicked).
    #[error("store writer is closed")]
    Closed,
    /// A bounded write ([`Store::write_blocking_within`]) was still queued when its wait ended; it was
    /// withdrawn and never ran.
    #[error("store write not applied: the writer was busy for {waited_ms} ms")]
    WriteTimedOut {
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// A write was asked for on a thread holding the writer connection (the writer thread, or inside a
    /// point write), which would wait on itself forever.
    #[error("store write refused: called while holding the store's writer")]
    WriteWouldDeadlock,
    /// A blocking read task failed to run.
    #[error("store reader task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// True when retrying later may succeed (a lock held too long by another process).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Statuses as an SQL list literal (`'a', 'b'`) for `IN (...)`: the status sets are compile-time constants,
/// never user input.
pub(crate) fn sql_status_list(statuses: &[&str]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Unix milliseconds, serialised as ISO-8601 UTC (`2026-01-02T03:04:05.678Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant as unix milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }
    /// The instant as ISO-8601 UTC text.
    pub fn iso(self) -> String {
        crate::time::iso8601_from_ms(self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.iso())
    }
}

/// A new unique id `<prefix>_<32 hex>`, ordered by creation time.
///
/// Time-ordered (UUIDv7: 48 bits of milliseconds, then a counter and random bits) so that a new
/// row's primary-key entry lands next to the last one: random keys touch a cold index leaf per
/// insert once a table outgrows the page cache. The 32-hex shape is what clients already see.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

use writer::{run_immediate, Job, NotHere, Writer};

struct Inner {
    path: PathBuf,
    /// The writer connection, for point writes on the calling thread.
    writer_conn: Arc<Writer>,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Dropping the sender stops the checkpoint thread.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    readers: Mutex<Vec<Connection>>,
    /// The shared page through which processes hand the write lock over (`None` where it cannot be mapped).
    handoff: Option<Arc<handoff::Handoff>>,
    /// Counts jobs of this process's writer; waiters clone it to wake at once on a local commit.
    commits: tokio::sync::watch::Receiver<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the sender ends the writer loop; joining waits for the job in progress. The writer connection
        // closes with `writer_conn` right after this body (SQLite checkpoints the WAL then), still before the
        // store is considered gone.
        if let Ok(mut writer) = self.writer.lock() {
            drop(writer.take());
        }
        if let Ok(mut handle) = self.writer_thread.lock() {
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
        if let Ok(mut checkpointer) = self.checkpointer.lock() {
            if let Some((stop, handle)) = checkpointer.take() {
                drop(stop);
                let _ = handle.join();
            }
        }
    }
}

/// Handle to the database; cheap to clone, all clones share one writer thread and one reader pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`: WAL, lock waits up to 5 s, `synchronous=NORMAL`,
    /// foreign keys on, pending migrations applied. A file from a newer binary is refused with
    /// [`StoreError::SchemaTooNew`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        connection::configure_library();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let handoff = handoff::Handoff::open(path).map(Arc::new);
        let mut conn = connection::open_writer(path)?;
        busy::install(&mut conn, handoff.clone())?;
        let mode: String = busy::retry(|| {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "sqlite refused WAL journal mode");
        }
        connection::configure(&mut conn, handoff.clone())?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        schema::migrate(&mut conn)?;
        let started = Writer::spawn(conn, handoff.clone(), path)?;
        let commits = started.commits;
        let checkpointer = checkpoint::spawn(path, commits.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer_conn: started.writer,
                writer: Mutex::new(Some(started.jobs)),
                writer_thread: Mutex::new(Some(started.thread)),
                checkpointer: Mutex::new(Some(checkpointer)),
                readers: Mutex::new(Vec::new()),
                handoff,
                commits,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues `job` for the writer thread. Refused on a thread that holds the writer (the writer thread, or inside
    /// a point write): the job could only run after the caller lets go, which it never would while waiting for it.
    fn send_job(&self, job: Job) -> Result<(), StoreError> {
        if writer::held_here() {
            return Err(StoreError::WriteWouldDeadlock);
        }
        let guard = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the writer thread; commits when it returns `Ok`.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.write_prepared(|_| (), |tx, ()| f(tx)).await
    }

    /// [`write`](Self::write) in two halves on the writer thread: `prepare` first, on the writer connection outside
    /// any transaction (it may read a snapshot, and other processes may write meanwhile), then `f` with its outcome
    /// inside the `BEGIN IMMEDIATE` transaction. Work that can be checked under the lock instead of redone (the
    /// duplicate guard) moves out of the section every process of the host serialises on.
    pub async fn write_prepared<T, R, P, F>(&self, prepare: P, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        P: FnOnce(&Connection) -> T + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, T) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send_job(Box::new(move |conn: &mut Connection| {
            let prepared = prepare(conn);
            let _ = reply.send(run_immediate(conn, |tx| f(tx, prepared)));
        }))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`write_prepared`](Self::write_prepared) for a **point write** (a bounded handful of rows, well under a
    /// millisecond): on the calling thread when the writer connection is idle and no other process holds the
    /// write lock, else queued to the writer thread as usual (see [`writer`]). It never waits for a lock here.
    pub async fn write_point_prepared<T, R, P, F>(&self, prepare: P, f: F) -> Result<R, StoreError>
    where
        T: Send + 'static,
        R: Send + 'static,
        P: FnOnce(&Connection) -> T + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, T) -> Result<R, StoreError> + Send + 'static,
    {
        match self.inner.writer_conn.try_here(prepare, f) {
            Ok(result) => result,
            Err((NotHere::Busy(prepare), f)) => self.write_prepared(prepare, f).await,
            Err((NotHere::Locked(prepared), f)) => self.write_prepared(move |_| prepared, f).await,
        }
    }

    /// [`write`](Self::write) for callers outside an async context (benchmarks, blocking threads).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send_job(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(run_immediate(conn, f));
        }))?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// [`write_blocking`](Self::write_blocking) for callers that must not wait long (plugin calls): waits at
    /// most `wait` for the outcome. A job still queued when the wait ends is withdrawn and never runs
    /// ([`StoreError::WriteTimedOut`]); one that has started waits on other processes' locks only for what is
    /// left of `wait`, and its outcome is awaited, so the caller always knows whether it was applied. On the
    /// writer thread itself it fails at once ([`StoreError::WriteWouldDeadlock`]).
    pub fn write_blocking_within<R, F>(&self, wait: Duration, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        const QUEUED: u8 = 0;
        const STARTED: u8 = 1;
        const WITHDRAWN: u8 = 2;
        let began = Instant::now();
        let deadline = began + wait;
        let claim = Arc::new(AtomicU8::new(QUEUED));
        let job_claim = claim.clone();
        let (reply, answer) = mpsc::sync_channel(1);
        self.send_job(Box::new(move |conn: &mut Connection| {
            if job_claim
                .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            // Another process's write lock is waited on only for what the caller still waits.
            let left = deadline.saturating_duration_since(Instant::now());
            let result = busy::with_limit(left.max(Duration::from_millis(1)), || {
                run_immediate(conn, f)
            });
            let _ = reply.send(result);
        }))?;
        match answer.recv_timeout(wait) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if claim
                    .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Err(StoreError::WriteTimedOut {
                        waited_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                    });
                }
                // It started just now: its lock wait is already spent, so only the transaction is left.
                answer.recv().map_err(|_| StoreError::Closed)?
            }
        }
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self
            .inner
            .readers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
        {
            return Ok(conn);
        }
        let mut conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        connection::configure(&mut conn, self.inner.handoff.clone())?;
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        if let Ok(mut pool) = self.inner.readers.lock() {
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
    }

    /// [`read`](Self::read) on the current thread.
    pub fn read_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError>,
    {
        let conn = self.take_reader()?;
        let result = f(&conn);
        self.return_reader(conn);
        result
    }

    /// Runs `f` on a pooled read-only connection on the calling thread, for reads of a bounded handful of rows by
    /// index (see the module docs): cheaper than [`read`](Self::read)'s hop to the blocking pool. Anything that
    /// scans or may read many rows must use [`read`](Self::read).
    pub fn read_point<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError>,
    {
        self.read_blocking(f)
    }

    /// Runs `f` on a pooled read-only connection in `spawn_blocking`; it sees the last committed snapshot.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A store on a fresh file in a temp dir (kept alive by the returned guard).
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("state.sqlite3")).expect("open store");
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn new_ids_keep_their_shape_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..2_000).map(|_| new_id("op")).collect();
        for id in &ids {
            let hex = id.strip_prefix("op_").expect("prefix");
            assert_eq!(hex.len(), 32, "{id}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
        // Strictly increasing, also within one millisecond: new keys append to the index, and none repeats.
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "ids out of order"
        );
    }
}
