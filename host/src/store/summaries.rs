//! Chat summaries (`chat_summaries`, migration V10): what the remote summarizer answered for a chat, keyed by a
//! hash of its input, so an unchanged chat is answered from here, and the newest one per chat, which a rolling
//! summary extends. A chat keeps its [`KEPT_PER_CHAT`] newest rows.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{Store, StoreError, Timestamp};

/// Rows kept per chat: the current one and a few before it (a chat read with other settings alternates).
pub const KEPT_PER_CHAT: i64 = 4;

/// One stored summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummary {
    /// The chat.
    pub thread_id: String,
    /// sha256 of the summarized messages and the settings (`domain::rules::summary::input_hash`).
    pub input_hash: String,
    /// The summary.
    pub text: String,
    /// The model that wrote it.
    pub model: String,
    /// The newest history entry it covers.
    pub last_entry_id: i64,
    /// Messages it summarizes.
    pub messages_summarized: i64,
    /// Older messages the recent-messages limit left out.
    pub messages_omitted: i64,
    /// Requests' chunks (0 for none).
    pub chunks: i64,
    /// Whether it was built on the previous summary.
    pub rolling: bool,
    /// When it was made.
    pub created_at: Timestamp,
}

const COLUMNS: &str =
    "thread_id, input_hash, summary_text, model, last_entry_id, messages_summarized, \
                       messages_omitted, chunks, rolling, created_at";

fn from_row(row: &Row<'_>) -> Result<StoredSummary, rusqlite::Error> {
    Ok(StoredSummary {
        thread_id: row.get(0)?,
        input_hash: row.get(1)?,
        text: row.get(2)?,
        model: row.get(3)?,
        last_entry_id: row.get(4)?,
        messages_summarized: row.get(5)?,
        messages_omitted: row.get(6)?,
        chunks: row.get(7)?,
        rolling: row.get::<_, i64>(8)? != 0,
        created_at: Timestamp(row.get(9)?),
    })
}

/// The summary of `thread_id` for exactly this input.
pub fn cached(
    conn: &Connection,
    thread_id: &str,
    input_hash: &str,
) -> Result<Option<StoredSummary>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM chat_summaries WHERE thread_id = ?1 AND input_hash = ?2"
        ))?
        .query_row(params![thread_id, input_hash], from_row)
        .optional()?)
}

/// The newest summary of `thread_id`, whatever its input.
pub fn latest(conn: &Connection, thread_id: &str) -> Result<Option<StoredSummary>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM chat_summaries WHERE thread_id = ?1 \
             ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ))?
        .query_row([thread_id], from_row)
        .optional()?)
}

/// Stores `summary` (replacing one with the same input) and drops the chat's older rows beyond
/// [`KEPT_PER_CHAT`].
pub fn put(conn: &Connection, summary: &StoredSummary) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO chat_summaries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        summary.thread_id,
        summary.input_hash,
        summary.text,
        summary.model,
        summary.last_entry_id,
        summary.messages_summarized,
        summary.messages_omitted,
        summary.chunks,
        i64::from(summary.rolling),
        summary.created_at.ms(),
    ])?;
    conn.prepare_cached(
        "DELETE FROM chat_summaries WHERE thread_id = ?1 AND rowid NOT IN \
         (SELECT rowid FROM chat_summaries WHERE thread_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2)",
    )?
    .execute(params![summary.thread_id, KEPT_PER_CHAT])?;
    Ok(())
}

impl Store {
    /// See [`cached`].
    pub async fn cached_summary(
        &self,
        thread_id: &str,
        input_hash: &str,
    ) -> Result<Option<StoredSummary>, StoreError> {
        let (thread_id, input_hash) = (thread_id.to_string(), input_hash.to_string());
        self.read(move |conn| cached(conn, &thread_id, &input_hash))
            .await
    }

    /// See [`latest`].
    pub async fn latest_summary(
        &self,
        thread_id: &str,
    ) -> Result<Option<StoredSummary>, StoreError> {
        let thread_id = thread_id.to_string();
        self.read(move |conn| latest(conn, &thread_id)).await
    }

    /// See [`put`].
    pub async fn put_summary(&self, summary: StoredSummary) -> Result<(), StoreError> {
        self.write(move |tx| put(tx, &summary)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    fn summary(thread: &str, hash: &str, at: i64) -> StoredSummary {
        StoredSummary {
            thread_id: thread.into(),
            input_hash: hash.into(),
            text: format!("summary {hash}"),
            model: "m".into(),
            last_entry_id: at,
            messages_summarized: 3,
            messages_omitted: 0,
            chunks: 1,
            rolling: false,
            created_at: Timestamp(at),
        }
    }

    #[test]
    fn summaries_are_found_by_input_and_the_newest_per_chat_is_kept() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| {
                for at in 1..=6 {
                    put(tx, &summary("th", &format!("h{at}"), at))?;
                }
                put(tx, &summary("other", "h1", 1))?;
                Ok(())
            })
            .expect("write");
        store
            .read_blocking(|conn| {
                assert_eq!(
                    cached(conn, "th", "h6")?.map(|s| s.text),
                    Some("summary h6".into())
                );
                assert_eq!(
                    cached(conn, "th", "h1")?,
                    None,
                    "pruned beyond the newest four"
                );
                assert_eq!(cached(conn, "th", "h3")?.map(|s| s.last_entry_id), Some(3));
                assert_eq!(latest(conn, "th")?.map(|s| s.input_hash), Some("h6".into()));
                assert_eq!(
                    latest(conn, "other")?.map(|s| s.input_hash),
                    Some("h1".into())
                );
                assert_eq!(latest(conn, "none")?, None);
                Ok(())
            })
            .expect("read");
    }
}
