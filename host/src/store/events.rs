//! The app-server frame journal (`app_server_events`): redacted, truncated and bounded.
//!
//! Every stored payload has its secrets redacted (`redact_secrets`: keys and text) and is cut to
//! [`MAX_EVENT_PAYLOAD_CHARS`]; the table keeps the newest [`MAX_EVENTS`] rows (pruned every [`PRUNE_EVERY`]
//! inserts, by rowid, which is cheap).

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, Timestamp};
use crate::domain::rules::redact::redact_secrets;

/// Largest stored payload; diagnostics need the shape of a frame, not megabytes of diff text.
pub const MAX_EVENT_PAYLOAD_CHARS: usize = 16_384;
/// Rows kept; at ~2 KB per row this bounds the journal to roughly 100 MB.
pub const MAX_EVENTS: i64 = 50_000;
/// Prune once per this many inserts.
const PRUNE_EVERY: i64 = 500;

/// A frame to journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewAppServerEvent {
    /// The process whose app-server sent or received it.
    pub owner_id: Option<String>,
    /// App-server generation.
    pub process_generation: Option<i64>,
    /// `in` (from app-server) or `out`.
    pub direction: String,
    /// JSON-RPC id, for requests and replies.
    pub jsonrpc_id: Option<String>,
    /// Method, for requests and notifications.
    pub method: Option<String>,
    /// Thread it concerns.
    pub thread_id: Option<String>,
    /// Turn it concerns.
    pub turn_id: Option<String>,
    /// The frame (redacted and truncated before storing).
    pub payload: Option<Value>,
}

/// A stored frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppServerEvent {
    /// Row id.
    pub event_id: i64,
    /// Owning process.
    pub owner_id: Option<String>,
    /// Generation.
    pub process_generation: Option<i64>,
    /// in or out.
    pub direction: String,
    /// JSON-RPC id.
    pub jsonrpc_id: Option<String>,
    /// Method.
    pub method: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
    /// Turn.
    pub turn_id: Option<String>,
    /// Redacted payload text (may be cut).
    pub payload: Option<String>,
    /// Whether the payload was cut.
    pub payload_truncated: bool,
    /// When stored.
    pub created_at: Timestamp,
}

/// Filters for [`Store::list_app_server_events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Thread.
    pub thread_id: Option<String>,
    /// Turn.
    pub turn_id: Option<String>,
    /// Owning process.
    pub owner_id: Option<String>,
    /// Generation.
    pub process_generation: Option<i64>,
    /// Not older than (unix ms).
    pub since_ms: Option<i64>,
}

/// Journals one frame; returns its row id.
pub fn append(conn: &Connection, event: &NewAppServerEvent, now: i64) -> Result<i64, StoreError> {
    let (payload, truncated) = match &event.payload {
        Some(value) => {
            let text = redact_secrets(value).to_string();
            match text.char_indices().nth(MAX_EVENT_PAYLOAD_CHARS) {
                Some((idx, _)) => (Some(text[..idx].to_string()), true),
                None => (Some(text), false),
            }
        }
        None => (None, false),
    };
    conn.prepare_cached(
        "INSERT INTO app_server_events (owner_id, process_generation, direction, jsonrpc_id, method, thread_id, \
         turn_id, payload_json, payload_truncated, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        event.owner_id,
        event.process_generation,
        event.direction,
        event.jsonrpc_id,
        event.method,
        event.thread_id,
        event.turn_id,
        payload,
        truncated,
        now
    ])?;
    let id = conn.last_insert_rowid();
    if id % PRUNE_EVERY == 0 {
        prune(conn, MAX_EVENTS)?;
    }
    Ok(id)
}

/// Deletes all but the newest `keep` rows; returns how many were deleted.
pub fn prune(conn: &Connection, keep: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM app_server_events WHERE event_id <= (SELECT MAX(event_id) FROM app_server_events) - ?1")?
        .execute([keep])?)
}

/// Frames matching `filter`, newest first.
pub fn list(
    conn: &Connection,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<AppServerEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, owner_id, process_generation, direction, jsonrpc_id, method, thread_id, turn_id, payload_json, \
         payload_truncated, created_at FROM app_server_events WHERE (?1 IS NULL OR thread_id = ?1) \
         AND (?2 IS NULL OR turn_id = ?2) AND (?3 IS NULL OR owner_id = ?3) AND (?4 IS NULL OR process_generation = ?4) \
         AND (?5 IS NULL OR created_at >= ?5) ORDER BY event_id DESC LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![
            filter.thread_id,
            filter.turn_id,
            filter.owner_id,
            filter.process_generation,
            filter.since_ms,
            limit.min(10_000) as i64
        ],
        |r| {
            Ok(AppServerEvent {
                event_id: r.get(0)?,
                owner_id: r.get(1)?,
                process_generation: r.get(2)?,
                direction: r.get(3)?,
                jsonrpc_id: r.get(4)?,
                method: r.get(5)?,
                thread_id: r.get(6)?,
                turn_id: r.get(7)?,
                payload: r.get(8)?,
                payload_truncated: r.get(9)?,
                created_at: Timestamp(r.get(10)?),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Journals one app-server frame.
    pub async fn append_app_server_event(
        &self,
        event: NewAppServerEvent,
    ) -> Result<i64, StoreError> {
        self.write(move |tx| append(tx, &event, crate::time::now_ms()))
            .await
    }

    /// Journals several frames in one transaction (the recorder batches them: one write per burst, not per
    /// frame).
    pub async fn append_app_server_events(
        &self,
        events: Vec<NewAppServerEvent>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let now = crate::time::now_ms();
            for event in &events {
                append(tx, event, now)?;
            }
            Ok(())
        })
        .await
    }

    /// Journaled frames, newest first.
    pub async fn list_app_server_events(
        &self,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<AppServerEvent>, StoreError> {
        self.read(move |c| list(c, &filter, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use serde_json::json;

    #[tokio::test]
    async fn payloads_are_redacted_cut_and_bounded() {
        let (_dir, store) = temp_store();
        let big = "x".repeat(MAX_EVENT_PAYLOAD_CHARS * 2);
        store
            .append_app_server_event(NewAppServerEvent {
                direction: "in".into(),
                method: Some("item/agentMessage/delta".into()),
                turn_id: Some("turn-1".into()),
                payload: Some(json!({"params": {"delta": big, "authorization": "Bearer abc"}})),
                ..Default::default()
            })
            .await
            .expect("append");
        let small = NewAppServerEvent {
            direction: "out".into(),
            payload: Some(json!({"method": "turn/start", "params": {"apiKey": "sk-1"}})),
            ..Default::default()
        };
        store
            .append_app_server_event(small.clone())
            .await
            .expect("append");
        let events = store
            .list_app_server_events(EventFilter::default(), 10)
            .await
            .expect("list");
        assert_eq!(events.len(), 2);
        assert!(
            !events[0].payload_truncated
                && events[0]
                    .payload
                    .as_deref()
                    .is_some_and(|p| !p.contains("sk-1"))
        );
        assert!(events[1].payload_truncated);
        assert_eq!(
            events[1].payload.as_ref().map(|p| p.chars().count()),
            Some(MAX_EVENT_PAYLOAD_CHARS)
        );
        // Pruning keeps the newest rows.
        for _ in 0..10 {
            store
                .append_app_server_event(small.clone())
                .await
                .expect("append");
        }
        let deleted = store.write(|tx| prune(tx, 5)).await.expect("prune");
        assert_eq!(deleted, 7);
        let left = store
            .list_app_server_events(EventFilter::default(), 100)
            .await
            .expect("list");
        assert_eq!(left.len(), 5);
        assert_eq!(left[0].event_id, 12);
    }
}
