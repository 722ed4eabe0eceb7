//! Runtime capabilities snapshots (`codex_runtime_capabilities`): the last one per cache key (working directory
//! and inventory flags). It serves `codex_get_runtime_capabilities`'s cache from any process, and
//! `codex_health_summary` reads the newest one instead of asking app-server.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;

use super::{Store, StoreError, Timestamp};

/// One stored snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilitySnapshot {
    /// sha256 of the working directory and flags it was taken for.
    pub cache_key: String,
    /// `ok`, `partial` or `unavailable`.
    pub status: String,
    /// The redacted snapshot as the tool returned it.
    pub snapshot: Value,
    /// When it was taken.
    pub captured_at: Timestamp,
}

fn from_row(row: &Row<'_>) -> Result<CapabilitySnapshot, rusqlite::Error> {
    let text: String = row.get(2)?;
    Ok(CapabilitySnapshot {
        cache_key: row.get(0)?,
        status: row.get(1)?,
        // A row this binary cannot parse reads as an empty snapshot; the next refresh replaces it.
        snapshot: serde_json::from_str(&text).unwrap_or(Value::Null),
        captured_at: Timestamp(row.get(3)?),
    })
}

impl Store {
    /// Stores `snapshot` as the last one for `cache_key`, replacing the previous; returns when it was taken.
    pub async fn save_runtime_capabilities(
        &self,
        cache_key: &str,
        status: &str,
        snapshot: &Value,
    ) -> Result<Timestamp, StoreError> {
        let (key, status, text) = (
            cache_key.to_string(),
            status.to_string(),
            snapshot.to_string(),
        );
        let now = crate::time::now_ms();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO codex_runtime_capabilities (cache_key, status, snapshot_json, captured_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (cache_key) DO UPDATE SET status = excluded.status,
                     snapshot_json = excluded.snapshot_json, captured_at = excluded.captured_at",
            )?
            .execute(params![key, status, text, now])?;
            Ok(Timestamp(now))
        })
        .await
    }

    /// The last snapshot for `cache_key`, if any.
    pub async fn runtime_capabilities(
        &self,
        cache_key: &str,
    ) -> Result<Option<CapabilitySnapshot>, StoreError> {
        let key = cache_key.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT cache_key, status, snapshot_json, captured_at
                     FROM codex_runtime_capabilities WHERE cache_key = ?1",
                )?
                .query_row([key], from_row)
                .optional()?)
        })
        .await
    }

    /// The newest snapshot of any key, if any.
    pub async fn latest_runtime_capabilities(
        &self,
    ) -> Result<Option<CapabilitySnapshot>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT cache_key, status, snapshot_json, captured_at
                     FROM codex_runtime_capabilities ORDER BY captured_at DESC LIMIT 1",
                )?
                .query_row([], from_row)
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn the_last_snapshot_per_key_wins_and_the_newest_is_found() {
        let (_dir, store) = temp_store();
        assert!(store
            .latest_runtime_capabilities()
            .await
            .expect("read")
            .is_none());
        store
            .save_runtime_capabilities("a", "partial", &json!({"n": 1}))
            .await
            .expect("save");
        store
            .save_runtime_capabilities("a", "ok", &json!({"n": 2}))
            .await
            .expect("save");
        let a = store
            .runtime_capabilities("a")
            .await
            .expect("read")
            .expect("row");
        assert_eq!((a.status.as_str(), a.snapshot), ("ok", json!({"n": 2})));
        let latest = store
            .latest_runtime_capabilities()
            .await
            .expect("read")
            .expect("row");
        assert_eq!(latest.cache_key, "a");
    }
}
