//! Change notification: wakes a waiter when the database changed, whichever process committed the change.
//!
//! Two signals, one answer. Commits of this process's writer bump a counter that wakes waiters at once;
//! commits of other processes (the background worker, another MCP server) are seen through
//! `PRAGMA data_version` on the waiter's own read connection, checked every [`POLL_INTERVAL`]. The pragma
//! reads a counter in the WAL index (shared memory): no I/O, no lock, a few microseconds, so a waiter
//! costs almost nothing while nothing changes.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

use super::{Store, StoreError};

/// How often a waiter looks for commits of other processes. Bounds the cross-process wake-up latency.
pub const POLL_INTERVAL: Duration = Duration::from_millis(15);

/// One waiter's view of the database's change counter.
pub struct ChangeWatcher {
    conn: Connection,
    version: i64,
    local: watch::Receiver<u64>,
}

impl Store {
    /// A watcher whose [`ChangeWatcher::changed`] resolves after the next commit by any connection.
    pub fn watch_changes(&self) -> Result<ChangeWatcher, StoreError> {
        let conn = Connection::open_with_flags(
            self.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The pragma never waits for a lock; a zero timeout makes sure a busy database reads as "changed"
        // (the waiter re-reads) instead of stalling a reactor thread.
        conn.busy_timeout(Duration::ZERO)?;
        let version = data_version(&conn)?;
        let mut local = self.inner.commits.clone();
        local.mark_unchanged();
        Ok(ChangeWatcher {
            conn,
            version,
            local,
        })
    }
}

impl ChangeWatcher {
    /// Resolves once a commit became visible since the previous call (or since the watcher was made).
    pub async fn changed(&mut self) {
        loop {
            match data_version(&self.conn) {
                Ok(version) if version == self.version => {}
                Ok(version) => {
                    self.version = version;
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "data_version unreadable; treating it as a change");
                    tokio::time::sleep(POLL_INTERVAL).await;
                    return;
                }
            }
            tokio::select! {
                // A commit of our own writer: data_version on this (other) connection has moved too.
                changed = self.local.changed() => {
                    if changed.is_err() {
                        // The store is closing; fall back to the timer alone.
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                }
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA data_version", [], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_commit_of_this_process_wakes_the_watcher_at_once() {
        let (_dir, store) = temp_store();
        let mut watcher = store.watch_changes().expect("watcher");
        let writer = store.clone();
        let began = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer
                .write(|tx| {
                    tx.execute("CREATE TABLE t (x)", [])?;
                    Ok(())
                })
                .await
        });
        tokio::time::timeout(Duration::from_secs(5), watcher.changed())
            .await
            .expect("woken");
        assert!(began.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn a_commit_of_another_connection_wakes_the_watcher() {
        let (dir, store) = temp_store();
        let mut watcher = store.watch_changes().expect("watcher");
        let path = dir.path().join("state.sqlite3");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let conn = Connection::open(path).expect("open");
            conn.execute("CREATE TABLE other (x)", []).expect("write");
        });
        tokio::time::timeout(Duration::from_secs(5), watcher.changed())
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn no_commit_no_wake() {
        let (_dir, store) = temp_store();
        let mut watcher = store.watch_changes().expect("watcher");
        let waited = tokio::time::timeout(Duration::from_millis(100), watcher.changed()).await;
        assert!(waited.is_err(), "woke without a commit");
    }
}
