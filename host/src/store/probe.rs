//! Whether the state database can be written right now: a separate short-lived connection takes the write lock
//! and gives it back at once. It fails on a read-only file or file system, or when another process holds the
//! write lock for longer than the probe waits; the store's own writer would wait its full busy timeout instead.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Store, StoreError};

/// How long the probe waits for the write lock.
const PROBE_WAIT: Duration = Duration::from_millis(300);

impl Store {
    /// Takes and releases the write lock on a connection of its own; the error says why it could not.
    pub async fn probe_writable(&self) -> Result<(), StoreError> {
        let path = self.path().to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(PROBE_WAIT)?;
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_write_lock_makes_the_probe_fail_fast() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.sqlite3");
        let store = Store::open(&path).expect("store");
        store.probe_writable().await.expect("writable");
        let holder = Connection::open(&path).expect("open");
        holder.execute_batch("BEGIN IMMEDIATE;").expect("lock");
        let started = std::time::Instant::now();
        let refused = store.probe_writable().await.expect_err("locked");
        assert!(refused.to_string().contains("locked"), "{refused}");
        assert!(started.elapsed() < Duration::from_secs(2));
        holder.execute_batch("ROLLBACK;").expect("unlock");
        store.probe_writable().await.expect("writable again");
    }
}
