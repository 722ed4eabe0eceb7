//! Tracked turns (`tracked_turns`), their messages and progress events, and token usage.
//!
//! Messages and progress events carry an `event_hash` with a UNIQUE constraint: the caller derives it from the
//! event's natural key (see [`event_hash`]), so replaying the same app-server notifications after a restart or a
//! reconnect inserts nothing twice.
//!
//! **Delta coalescing is the caller's job.** Agent-message and reasoning deltas arrive per token; the dispatcher
//! buffers them per item and writes one message when the item completes (and, for long items, at most one
//! progress row per flush interval). The store stores what it is given and never merges rows, which keeps every
//! write a single small INSERT.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, Timestamp};
use crate::domain::rules::prompt::sha256_hex;
use crate::domain::rules::status::{is_terminal, token_band};

/// Largest message or summary text stored; longer text is cut (the full text stays in app-server's session).
pub const MAX_TEXT_CHARS: usize = 200_000;

/// One tracked turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    /// App-server turn id.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: String,
    /// The operation that started it, when known.
    pub operation_id: Option<String>,
    /// Turn status (seed §c "Turn status from events").
    pub status: String,
    /// Final assistant message, once the turn completed.
    pub final_message: Option<String>,
    /// Latest assistant message seen.
    pub last_assistant_message: Option<String>,
    /// What proved the terminal status (`app_server_event`, `thread_read`, ...); `None` = not trusted.
    pub terminal_source: Option<String>,
    /// The process following the turn.
    pub owner_id: Option<String>,
    /// App-server generation the turn runs on.
    pub process_generation: Option<i64>,
    /// Token usage, when reported.
    pub token_usage: Option<TokenUsage>,
    /// Public token band of the total (`0`, `<1k`, ..., `1m+`).
    pub token_band: &'static str,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// First seen.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Turn {
    /// A terminal status with a source that proves it (the seed's "trusted terminal").
    pub fn is_trusted_terminal(&self) -> bool {
        is_terminal(&self.status) && self.terminal_source.is_some()
    }
}

/// Token counts reported by `thread/tokenUsage/updated`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Input tokens.
    pub input_tokens: i64,
    /// Cached input tokens.
    pub cached_input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
}

/// A turn to create or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnUpdate {
    /// App-server turn id.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: String,
    /// The operation, when known (kept if already set).
    pub operation_id: Option<String>,
    /// New status.
    pub status: String,
    /// For terminal statuses: what proves it.
    pub terminal_source: Option<String>,
    /// Following process.
    pub owner_id: Option<String>,
    /// App-server generation.
    pub process_generation: Option<i64>,
}

/// A message to append.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTurnMessage {
    /// The turn.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: Option<String>,
    /// App-server item id.
    pub item_id: Option<String>,
    /// user, assistant, system.
    pub role: String,
    /// final_answer, commentary, plan, prompt, ...
    pub kind: String,
    /// The text (cut at [`MAX_TEXT_CHARS`]).
    pub text: String,
    /// Idempotency key of the event (see [`event_hash`]).
    pub event_hash: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnMessage {
    /// Row id (monotonic).
    pub message_id: i64,
    /// The turn.
    pub turn_id: String,
    /// App-server item id.
    pub item_id: Option<String>,
    /// user, assistant, system.
    pub role: String,
    /// final_answer, commentary, plan, ...
    pub kind: String,
    /// The text.
    pub text: String,
    /// When stored.
    pub created_at: Timestamp,
}

/// A progress event to append.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewProgressEvent {
    /// The turn.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: Option<String>,
    /// The notification method.
    pub method: String,
    /// A short category (`item_started`, `command`, `plan_delta`, ...).
    pub kind: String,
    /// App-server item id.
    pub item_id: Option<String>,
    /// One-line human summary.
    pub summary: Option<String>,
    /// Redacted detail.
    pub payload: Option<Value>,
    /// Idempotency key (see [`event_hash`]).
    pub event_hash: String,
}

/// A stored progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    /// Row id (monotonic).
    pub event_id: i64,
    /// The turn.
    pub turn_id: String,
    /// The notification method.
    pub method: String,
    /// Short category.
    pub kind: String,
    /// App-server item id.
    pub item_id: Option<String>,
    /// One-line summary.
    pub summary: Option<String>,
    /// Redacted detail.
    pub payload: Option<Value>,
    /// When stored.
    pub created_at: Timestamp,
}

/// sha256 hex over the parts joined by U+001F: the idempotency key of a message or progress event. Use the
/// event's natural key, e.g. `[turn_id, method, item_id, sequence]`.
pub fn event_hash(parts: &[&str]) -> String {
    sha256_hex(parts.join("\u{1f}"))
}

fn cut(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

const TURN_COLUMNS: &str = "turn_id, thread_id, operation_id, status, final_message, last_assistant_message, \
    terminal_source, owner_id, process_generation, input_tokens, cached_input_tokens, output_tokens, total_tokens, \
    started_at, completed_at, created_at, updated_at";

fn turn_from_row(row: &Row<'_>) -> Result<Turn, rusqlite::Error> {
    let total: Option<i64> = row.get(12)?;
    let usage = match total {
        Some(total_tokens) => Some(TokenUsage {
            input_tokens: row.get::<_, Option<i64>>(9)?.unwrap_or(0),
            cached_input_tokens: row.get::<_, Option<i64>>(10)?.unwrap_or(0),
            output_tokens: row.get::<_, Option<i64>>(11)?.unwrap_or(0),
            total_tokens,
        }),
        None => None,
    };
    Ok(Turn {
        turn_id: row.get(0)?,
        thread_id: row.get(1)?,
        operation_id: row.get(2)?,
        status: row.get(3)?,
        final_message: row.get(4)?,
        last_assistant_message: row.get(5)?,
        terminal_source: row.get(6)?,
        owner_id: row.get(7)?,
        process_generation: row.get(8)?,
        token_band: token_band(total.unwrap_or(0)),
        token_usage: usage,
        started_at: row.get::<_, Option<i64>>(13)?.map(Timestamp),
        completed_at: row.get::<_, Option<i64>>(14)?.map(Timestamp),
        created_at: Timestamp(row.get(15)?),
        updated_at: Timestamp(row.get(16)?),
    })
}

/// One turn by id.
pub fn get(conn: &Connection, turn_id: &str) -> Result<Option<Turn>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {TURN_COLUMNS} FROM tracked_turns WHERE turn_id = ?1"
        ))?
        .query_row([turn_id], turn_from_row)
        .optional()?)
}

/// Creates or updates a turn. A trusted terminal status is never overwritten by a non-terminal one (late or
/// replayed notifications), and the operation link, once set, is kept.
pub fn upsert(conn: &Connection, update: &TurnUpdate, now: i64) -> Result<Turn, StoreError> {
    let terminal = is_terminal(&update.status);
    if let Some(existing) = get(conn, &update.turn_id)? {
        if existing.is_trusted_terminal() && !terminal {
            return Ok(existing);
        }
    }
    conn.prepare_cached(
        "INSERT INTO tracked_turns (turn_id, thread_id, operation_id, status, terminal_source, owner_id, \
         process_generation, started_at, completed_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN ?9 THEN ?8 END, ?8, ?8) \
         ON CONFLICT(turn_id) DO UPDATE SET status = excluded.status, \
           terminal_source = CASE WHEN ?9 THEN COALESCE(excluded.terminal_source, terminal_source) ELSE NULL END, \
           operation_id = COALESCE(operation_id, excluded.operation_id), \
           owner_id = COALESCE(excluded.owner_id, owner_id), \
           process_generation = COALESCE(excluded.process_generation, process_generation), \
           completed_at = CASE WHEN ?9 THEN COALESCE(completed_at, ?8) ELSE NULL END, \
           updated_at = ?8",
    )?
    .execute(params![
        update.turn_id,
        update.thread_id,
        update.operation_id,
        update.status,
        update.terminal_source,
        update.owner_id,
        update.process_generation,
        now,
        terminal,
    ])?;
    get(conn, &update.turn_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "turn",
        id: update.turn_id.clone(),
    })
}

/// Appends a message; returns false when its `event_hash` was already stored (a replay). An assistant message
/// also becomes the turn's `last_assistant_message`, and a `final_answer` its `final_message`.
pub fn append_message(
    conn: &Connection,
    message: &NewTurnMessage,
    now: i64,
) -> Result<bool, StoreError> {
    let text = cut(&message.text);
    let n = conn
        .prepare_cached(
            "INSERT INTO tracked_turn_messages (turn_id, thread_id, item_id, role, kind, text, event_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(event_hash) DO NOTHING",
        )?
        .execute(params![
            message.turn_id,
            message.thread_id,
            message.item_id,
            message.role,
            message.kind,
            text,
            message.event_hash,
            now
        ])?;
    if n > 0 && message.role == "assistant" {
        conn.prepare_cached(
            "UPDATE tracked_turns SET last_assistant_message = ?2, \
             final_message = CASE WHEN ?3 THEN ?2 ELSE final_message END, updated_at = ?4 WHERE turn_id = ?1",
        )?
        .execute(params![message.turn_id, text, message.kind == "final_answer", now])?;
    }
    Ok(n > 0)
}

/// Appends a progress event; returns false on a replay.
pub fn append_progress(
    conn: &Connection,
    event: &NewProgressEvent,
    now: i64,
) -> Result<bool, StoreError> {
    let payload = event
        .payload
        .as_ref()
        .map(|p| crate::domain::rules::redact::redact_secrets(p).to_string());
    let n = conn
        .prepare_cached(
            "INSERT INTO tracked_turn_progress_events (turn_id, thread_id, method, kind, item_id, summary, \
             payload_json, event_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT(event_hash) DO NOTHING",
        )?
        .execute(params![
            event.turn_id,
            event.thread_id,
            event.method,
            event.kind,
            event.item_id,
            event.summary.as_deref().map(cut),
            payload,
            event.event_hash,
            now
        ])?;
    Ok(n > 0)
}

/// Stores the latest token usage of a turn.
pub fn record_token_usage(
    conn: &Connection,
    turn_id: &str,
    usage: &TokenUsage,
    now: i64,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE tracked_turns SET input_tokens = ?2, cached_input_tokens = ?3, output_tokens = ?4, \
             total_tokens = ?5, updated_at = ?6 WHERE turn_id = ?1",
        )?
        .execute(params![
            turn_id,
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            now
        ])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "turn",
            id: turn_id.to_string(),
        });
    }
    Ok(())
}

/// The latest `limit` messages of a turn, oldest first.
pub fn list_messages(
    conn: &Connection,
    turn_id: &str,
    limit: usize,
) -> Result<Vec<TurnMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, turn_id, item_id, role, kind, text, created_at FROM ( \
           SELECT * FROM tracked_turn_messages WHERE turn_id = ?1 ORDER BY message_id DESC LIMIT ?2) \
         ORDER BY message_id",
    )?;
    let rows = stmt.query_map(params![turn_id, limit as i64], |r| {
        Ok(TurnMessage {
            message_id: r.get(0)?,
            turn_id: r.get(1)?,
            item_id: r.get(2)?,
            role: r.get(3)?,
            kind: r.get(4)?,
            text: r.get(5)?,
            created_at: Timestamp(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest `limit` progress events of a turn, oldest first.
pub fn list_progress(
    conn: &Connection,
    turn_id: &str,
    limit: usize,
) -> Result<Vec<ProgressEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, turn_id, method, kind, item_id, summary, payload_json, created_at FROM ( \
           SELECT * FROM tracked_turn_progress_events WHERE turn_id = ?1 ORDER BY event_id DESC LIMIT ?2) \
         ORDER BY event_id",
    )?;
    let rows = stmt.query_map(params![turn_id, limit as i64], |r| {
        let payload: Option<String> = r.get(6)?;
        Ok(ProgressEvent {
            event_id: r.get(0)?,
            turn_id: r.get(1)?,
            method: r.get(2)?,
            kind: r.get(3)?,
            item_id: r.get(4)?,
            summary: r.get(5)?,
            payload: payload.and_then(|p| serde_json::from_str(&p).ok()),
            created_at: Timestamp(r.get(7)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// App-server generation `generation` of `owner` exited: its non-terminal turns become
/// `unknown_after_app_server_exit` (source `app_server_exit`), and so do their non-terminal operations.
/// Returns the turn ids.
pub fn mark_generation_lost(
    conn: &Connection,
    owner: &str,
    generation: i64,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let terminal = super::sql_status_list(&crate::domain::rules::status::TERMINAL);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT turn_id FROM tracked_turns WHERE owner_id = ?1 AND process_generation = ?2 AND status NOT IN ({terminal})"
    ))?;
    let turn_ids: Vec<String> = stmt
        .query_map(params![owner, generation], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for turn_id in &turn_ids {
        conn.prepare_cached(
            "UPDATE tracked_turns SET status = 'unknown_after_app_server_exit', terminal_source = 'app_server_exit', \
             completed_at = ?2, updated_at = ?2 WHERE turn_id = ?1",
        )?
        .execute(params![turn_id, now])?;
        conn.prepare_cached(&format!(
            "UPDATE codex_operations SET status = 'unknown_after_app_server_exit', \
             queue_status = 'unknown_after_app_server_exit', completed_at = ?2, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = ?2 WHERE turn_id = ?1 AND status NOT IN ({terminal})"
        ))?
        .execute(params![turn_id, now])?;
    }
    Ok(turn_ids)
}

impl Store {
    /// The newest turn of `thread_id` that has not ended, if any.
    pub async fn active_turn_of_thread(
        &self,
        thread_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let thread = thread_id.to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT turn_id FROM tracked_turns WHERE thread_id = ?1 AND status NOT IN ({}) \
                 ORDER BY created_at DESC LIMIT 1",
                super::sql_status_list(&crate::domain::rules::status::TERMINAL)
            );
            Ok(c.prepare_cached(&sql)?
                .query_row([thread], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// Creates or updates a tracked turn.
    pub async fn upsert_turn(&self, update: TurnUpdate) -> Result<Turn, StoreError> {
        self.write(move |tx| upsert(tx, &update, crate::time::now_ms()))
            .await
    }

    /// One tracked turn.
    pub async fn get_turn(&self, turn_id: &str) -> Result<Option<Turn>, StoreError> {
        let id = turn_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// Appends a message (false on replay).
    pub async fn append_turn_message(&self, message: NewTurnMessage) -> Result<bool, StoreError> {
        self.write(move |tx| append_message(tx, &message, crate::time::now_ms()))
            .await
    }

    /// Appends a progress event (false on replay).
    pub async fn append_progress_event(&self, event: NewProgressEvent) -> Result<bool, StoreError> {
        self.write(move |tx| append_progress(tx, &event, crate::time::now_ms()))
            .await
    }

    /// Stores token usage.
    pub async fn record_token_usage(
        &self,
        turn_id: &str,
        usage: TokenUsage,
    ) -> Result<(), StoreError> {
        let id = turn_id.to_string();
        self.write(move |tx| record_token_usage(tx, &id, &usage, crate::time::now_ms()))
            .await
    }

    /// Latest messages of a turn, oldest first.
    pub async fn list_turn_messages(
        &self,
        turn_id: &str,
        limit: usize,
    ) -> Result<Vec<TurnMessage>, StoreError> {
        let id = turn_id.to_string();
        self.read(move |c| list_messages(c, &id, limit)).await
    }

    /// Latest progress events of a turn, oldest first.
    pub async fn list_progress_events(
        &self,
        turn_id: &str,
        limit: usize,
    ) -> Result<Vec<ProgressEvent>, StoreError> {
        let id = turn_id.to_string();
        self.read(move |c| list_progress(c, &id, limit)).await
    }

    /// Ends one non-terminal turn with `status` (source `app_server_exit`): its process is gone.
    pub async fn mark_turn_lost(&self, turn_id: &str, status: &str) -> Result<(), StoreError> {
        let (id, status) = (turn_id.to_string(), status.to_string());
        self.write(move |tx| {
            let terminal = super::sql_status_list(&crate::domain::rules::status::TERMINAL);
            tx.prepare_cached(&format!(
                "UPDATE tracked_turns SET status = ?2, terminal_source = 'app_server_exit', completed_at = ?3, \
                 updated_at = ?3 WHERE turn_id = ?1 AND status NOT IN ({terminal})"
            ))?
            .execute(params![id, status, crate::time::now_ms()])?;
            Ok(())
        })
        .await
    }

    /// Marks the live turns (and their operations) of a dead app-server generation unknown.
    pub async fn mark_generation_lost(
        &self,
        owner: &str,
        generation: i64,
    ) -> Result<Vec<String>, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| mark_generation_lost(tx, &owner, generation, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    fn update(status: &str, source: Option<&str>) -> TurnUpdate {
        TurnUpdate {
            turn_id: "turn-1".into(),
            thread_id: "thr-1".into(),
            status: status.into(),
            terminal_source: source.map(str::to_string),
            owner_id: Some("mcp:1:a".into()),
            process_generation: Some(1),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn replayed_events_are_not_duplicated() {
        let (_dir, store) = temp_store();
        store
            .upsert_turn(update("running", None))
            .await
            .expect("turn");
        for replay in 0..3 {
            for seq in 0..5 {
                let inserted = store
                    .append_progress_event(NewProgressEvent {
                        turn_id: "turn-1".into(),
                        method: "item/started".into(),
                        kind: "item_started".into(),
                        summary: Some(format!("step {seq}")),
                        payload: Some(serde_json::json!({"seq": seq, "apiKey": "sk-x"})),
                        event_hash: event_hash(&["turn-1", "item/started", &seq.to_string()]),
                        ..Default::default()
                    })
                    .await
                    .expect("append");
                assert_eq!(inserted, replay == 0);
            }
            let message = NewTurnMessage {
                turn_id: "turn-1".into(),
                role: "assistant".into(),
                kind: "final_answer".into(),
                text: "done".into(),
                event_hash: event_hash(&["turn-1", "item/completed", "msg-1"]),
                ..Default::default()
            };
            assert_eq!(
                store.append_turn_message(message).await.expect("msg"),
                replay == 0
            );
        }
        let events = store
            .list_progress_events("turn-1", 3)
            .await
            .expect("events");
        assert_eq!(
            events
                .iter()
                .map(|e| e.summary.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            ["step 2", "step 3", "step 4"]
        );
        assert_eq!(
            events[0].payload.as_ref().expect("payload")["apiKey"],
            "[redacted]"
        );
        assert_eq!(
            store
                .list_turn_messages("turn-1", 10)
                .await
                .expect("messages")
                .len(),
            1
        );
        let turn = store.get_turn("turn-1").await.expect("get").expect("turn");
        assert_eq!(turn.final_message.as_deref(), Some("done"));
    }

    #[tokio::test]
    async fn trusted_terminal_is_not_regressed_and_bands_show() {
        let (_dir, store) = temp_store();
        store
            .upsert_turn(update("running", None))
            .await
            .expect("turn");
        store
            .record_token_usage(
                "turn-1",
                TokenUsage {
                    input_tokens: 900,
                    output_tokens: 300,
                    total_tokens: 1_200,
                    ..Default::default()
                },
            )
            .await
            .expect("usage");
        let done = store
            .upsert_turn(update("completed", Some("app_server_event")))
            .await
            .expect("done");
        assert!(done.is_trusted_terminal() && done.completed_at.is_some());
        assert_eq!(done.token_band, "1k-10k");
        // A late "running" notification does not reopen it.
        assert_eq!(
            store
                .upsert_turn(update("running", None))
                .await
                .expect("late")
                .status,
            "completed"
        );
        // Generation loss only touches live turns.
        let mut other = update("running", None);
        other.turn_id = "turn-2".into();
        store.upsert_turn(other).await.expect("turn 2");
        let lost = store
            .mark_generation_lost("mcp:1:a", 1)
            .await
            .expect("lost");
        assert_eq!(lost, vec!["turn-2".to_string()]);
        let turn = store.get_turn("turn-2").await.expect("get").expect("turn");
        assert_eq!(turn.status, "unknown_after_app_server_exit");
    }
}
