//! Plugin key/value state (`codex_plugin_state`, migration 9): one row per plugin id and key.
//!
//! The plugin runtime calls these synchronously from inside a plugin call, so they are written to never wait
//! long and never wait on themselves:
//!
//! - reads ([`Store::plugin_state_get`]) run on a pooled read-only connection on the calling thread; in WAL mode
//!   a reader sees the last commit and never waits for a writer;
//! - writes ([`Store::plugin_state_set`], [`Store::plugin_state_delete`]) go to the writer thread like every
//!   write (one transaction, the key-count cap checked inside it) but through
//!   [`Store::write_blocking_within`]: the caller waits at most [`STATE_WRITE_WAIT`], and a write still queued
//!   then is withdrawn, so the caller learns a definite outcome (stored, refused, or not applied). Called on
//!   the writer thread itself, a write is refused at once instead of deadlocking.
//!
//! The caps on key and value sizes are checked by the caller (the plugin runtime owns them); the store takes
//! the key-count cap as an argument because only the transaction can count keys race-free across processes.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{Store, StoreError};

/// Longest a plugin call waits for its state write: well under a plugin's deadline (100 ms to 1 s), well
/// over a small write's usual time (microseconds to a few milliseconds behind other queued writes).
pub const STATE_WRITE_WAIT: Duration = Duration::from_millis(250);

/// What a `set` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The value is stored.
    Stored,
    /// The key is new and the plugin already holds the maximum number of keys; nothing changed.
    TooManyKeys,
}

/// How much state one plugin holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStateUsage {
    /// Plugin id.
    pub plugin_id: String,
    /// Number of keys.
    pub keys: u64,
    /// UTF-8 bytes of its keys and values together.
    pub bytes: u64,
}

/// The value of `key` for `plugin`.
pub fn get(conn: &Connection, plugin: &str, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM codex_plugin_state WHERE plugin_id = ?1 AND key = ?2")?
        .query_row(params![plugin, key], |row| row.get(0))
        .optional()?)
}

/// Stores `value` under `key` for `plugin`; a new key is refused when the plugin holds `max_keys` already.
pub fn set(
    conn: &Connection,
    plugin: &str,
    key: &str,
    value: &str,
    max_keys: u64,
    now_ms: i64,
) -> Result<SetOutcome, StoreError> {
    let exists = get(conn, plugin, key)?.is_some();
    if !exists {
        let held: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM codex_plugin_state WHERE plugin_id = ?1")?
            .query_row(params![plugin], |row| row.get(0))?;
        if u64::try_from(held).unwrap_or(u64::MAX) >= max_keys {
            return Ok(SetOutcome::TooManyKeys);
        }
    }
    conn.prepare_cached(
        "INSERT INTO codex_plugin_state (plugin_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(plugin_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![plugin, key, value, now_ms])?;
    Ok(SetOutcome::Stored)
}

/// Removes `key` for `plugin`; a missing key is not an error.
pub fn delete(conn: &Connection, plugin: &str, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM codex_plugin_state WHERE plugin_id = ?1 AND key = ?2")?
        .execute(params![plugin, key])?;
    Ok(())
}

/// Keys and bytes held per plugin, by plugin id.
pub fn usage(conn: &Connection) -> Result<Vec<PluginStateUsage>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT plugin_id, COUNT(*), SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))) \
         FROM codex_plugin_state GROUP BY plugin_id ORDER BY plugin_id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(PluginStateUsage {
            plugin_id: row.get(0)?,
            keys: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            bytes: u64::try_from(row.get::<_, Option<i64>>(2)?.unwrap_or(0)).unwrap_or(0),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// [`get`] on a pooled reader, on the calling thread (it never waits for the writer).
    pub fn plugin_state_get(&self, plugin: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.read_blocking(|conn| get(conn, plugin, key))
    }

    /// [`set`] on the writer thread, waiting at most [`STATE_WRITE_WAIT`].
    pub fn plugin_state_set(
        &self,
        plugin: &str,
        key: &str,
        value: &str,
        max_keys: u64,
    ) -> Result<SetOutcome, StoreError> {
        let (plugin, key, value) = (plugin.to_string(), key.to_string(), value.to_string());
        self.write_blocking_within(STATE_WRITE_WAIT, move |tx| {
            set(tx, &plugin, &key, &value, max_keys, crate::time::now_ms())
        })
    }

    /// [`delete`] on the writer thread, waiting at most [`STATE_WRITE_WAIT`].
    pub fn plugin_state_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let (plugin, key) = (plugin.to_string(), key.to_string());
        self.write_blocking_within(STATE_WRITE_WAIT, move |tx| delete(tx, &plugin, &key))
    }

    /// Keys and bytes held per plugin (the health summary's plugin inventory).
    pub async fn plugin_state_usage(&self) -> Result<Vec<PluginStateUsage>, StoreError> {
        self.read(usage).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn state_round_trips_per_plugin_and_survives_a_reopen() {
        // Keys are scoped by plugin; a reopened file holds what was committed.
        let (dir, store) = temp_store();
        assert_eq!(
            store.plugin_state_set("a", "k", "1", 10).expect("set"),
            SetOutcome::Stored
        );
        store.plugin_state_set("a", "k", "22", 10).expect("replace");
        assert_eq!(
            store.plugin_state_get("a", "k").expect("get").as_deref(),
            Some("22")
        );
        assert_eq!(store.plugin_state_get("b", "k").expect("get"), None);
        drop(store);
        let store = Store::open(&dir.path().join("state.sqlite3")).expect("reopen");
        assert_eq!(
            store.plugin_state_get("a", "k").expect("get").as_deref(),
            Some("22")
        );
        store.plugin_state_delete("a", "k").expect("delete");
        store
            .plugin_state_delete("a", "missing")
            .expect("delete missing");
        assert_eq!(store.plugin_state_get("a", "k").expect("get"), None);
    }

    #[test]
    fn the_key_cap_refuses_new_keys_only() {
        // At the cap a new key is refused and nothing changes; replacing an existing key still works.
        let (_dir, store) = temp_store();
        store.plugin_state_set("a", "1", "x", 2).expect("set");
        store.plugin_state_set("a", "2", "y", 2).expect("set");
        assert_eq!(
            store.plugin_state_set("a", "3", "z", 2).expect("set"),
            SetOutcome::TooManyKeys
        );
        assert_eq!(store.plugin_state_get("a", "3").expect("get"), None);
        assert_eq!(
            store.plugin_state_set("a", "1", "xx", 2).expect("set"),
            SetOutcome::Stored
        );
        // Another plugin has its own count.
        assert_eq!(
            store.plugin_state_set("b", "3", "z", 2).expect("set"),
            SetOutcome::Stored
        );
    }

    #[tokio::test]
    async fn usage_counts_keys_and_bytes_per_plugin() {
        // Bytes are UTF-8 bytes of keys and values ("é" is two).
        let (_dir, store) = temp_store();
        store.plugin_state_set("a", "k1", "é", 10).expect("set");
        store.plugin_state_set("a", "k2", "abc", 10).expect("set");
        store.plugin_state_set("b", "k", "v", 10).expect("set");
        let usage = store.plugin_state_usage().await.expect("usage");
        assert_eq!(
            usage,
            vec![
                PluginStateUsage {
                    plugin_id: "a".into(),
                    keys: 2,
                    bytes: 2 + 2 + 2 + 3
                },
                PluginStateUsage {
                    plugin_id: "b".into(),
                    keys: 1,
                    bytes: 2
                },
            ]
        );
    }

    #[test]
    fn a_state_write_from_the_writer_thread_is_refused_not_deadlocked() {
        // A write job that (wrongly) writes plugin state from inside itself gets an error at once.
        let (_dir, store) = temp_store();
        let inner = store.clone();
        let result = store
            .write_blocking(move |_tx| Ok(inner.plugin_state_set("a", "k", "v", 10)))
            .expect("outer write");
        assert!(
            matches!(result, Err(StoreError::WriteWouldDeadlock)),
            "{result:?}"
        );
    }

    #[test]
    fn a_state_write_behind_a_long_write_is_withdrawn_after_the_wait() {
        // The writer is busy longer than the wait: the caller gets `WriteTimedOut` and the write never lands.
        let (_dir, store) = temp_store();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let blocker = store.clone();
        let slow = std::thread::spawn(move || {
            blocker.write_blocking(move |_tx| {
                let _ = started_tx.send(());
                std::thread::sleep(STATE_WRITE_WAIT * 3);
                Ok(())
            })
        });
        started_rx.recv().expect("slow write started");
        let began = std::time::Instant::now();
        let result = store.plugin_state_set("a", "k", "v", 10);
        assert!(
            matches!(result, Err(StoreError::WriteTimedOut { .. })),
            "{result:?}"
        );
        assert!(began.elapsed() < STATE_WRITE_WAIT * 2, "waited too long");
        slow.join().expect("join").expect("slow write");
        assert_eq!(store.plugin_state_get("a", "k").expect("get"), None);
    }
}
