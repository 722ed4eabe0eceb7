//! The mirrored chat history (`chat_history`) and its FTS5 index: what `codex_get_chat` reads and
//! `codex_search_chats` searches.
//!
//! Mirroring copies, redacted, the user prompt of every operation that got a turn and every assistant message
//! the tracker stored (`tracked_turn_messages`). It runs in small batches, each its own write transaction, so a
//! refresh bounded by a time budget stops between batches and the next one resumes where it stopped: messages
//! through a watermark (`chat_history_state.messages`), prompts through the `op:<id>` key they are stored under.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{Store, StoreError, Timestamp};
use crate::domain::rules::redact::redact_text;
use crate::domain::rules::text::word_tokens;
use crate::time::now_ms;

/// Rows mirrored per write transaction: small enough that a batch never holds the writer for long.
const BATCH: usize = 200;

/// Matches read per search before grouping them by chat; ranking keeps the best ones.
const MAX_SEARCH_HITS: usize = 5_000;

/// Largest snippet FTS5 builds, in tokens (its own limit is 64).
const MAX_SNIPPET_TOKENS: usize = 64;

/// One mirrored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Row id.
    pub entry_id: i64,
    /// The chat (app-server thread).
    pub thread_id: String,
    /// The turn it belongs to.
    pub turn_id: String,
    /// The operation whose prompt it is, or that ran its turn.
    pub operation_id: Option<String>,
    /// The project, when the operation named one.
    pub project_id: Option<String>,
    /// `user` or `assistant`.
    pub role: String,
    /// `prompt`, `commentary` or `final_answer`.
    pub kind: String,
    /// The redacted text.
    pub text: String,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Entries added by this refresh.
    pub added: usize,
    /// False when the time budget ran out with sources left to mirror.
    pub complete: bool,
}

/// The state of the index, for `index_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// Entries in the index.
    pub entries: i64,
    /// Newest entry.
    pub last_entry_at: Option<Timestamp>,
}

/// One full-text match.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The chat.
    pub thread_id: String,
    /// The matching entry.
    pub entry_id: i64,
    /// Its turn.
    pub turn_id: String,
    /// Its role.
    pub role: String,
    /// Its project.
    pub project_id: Option<String>,
    /// bm25 score: lower is better.
    pub score: f64,
    /// FTS5 snippet with the matched terms between `**`.
    pub snippet: String,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// How the terms of a query combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// Every term must occur.
    AllTerms,
    /// Any term may occur.
    AnyTerm,
    /// The terms must occur in order, next to each other.
    Phrase,
}

/// The FTS5 expression for `query`, every term quoted so no query text is read as FTS5 syntax; `None` when the
/// query has no word to search for.
pub fn match_expression(query: &str, mode: MatchMode) -> Option<String> {
    let terms: Vec<String> = word_tokens(query).map(str::to_lowercase).collect();
    if terms.is_empty() {
        return None;
    }
    let quoted = |t: &String| format!("\"{}\"", t.replace('"', "\"\""));
    Some(match mode {
        MatchMode::AllTerms => terms.iter().map(quoted).collect::<Vec<_>>().join(" AND "),
        MatchMode::AnyTerm => terms.iter().map(quoted).collect::<Vec<_>>().join(" OR "),
        MatchMode::Phrase => quoted(&terms.join(" ")),
    })
}

fn watermark(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM chat_history_state WHERE name = 'messages'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Mirrors at most one batch of prompts and one of messages; returns how many entries it added and whether
/// a source may have more.
pub fn mirror_batch(conn: &Connection) -> Result<(usize, bool), StoreError> {
    let now = now_ms();
    let mut added = 0;
    // Prompts: operations whose turn is known and whose prompt is not mirrored yet.
    let prompts: Vec<(String, String, String, Option<String>, String, i64)> = conn
        .prepare_cached(
            "SELECT o.operation_id, o.turn_id, t.thread_id, o.project_id, \
                    json_extract(o.request_json, '$.message'), t.created_at \
             FROM codex_operations o JOIN tracked_turns t ON t.turn_id = o.turn_id \
             WHERE o.has_message = 1 AND json_type(o.request_json, '$.message') = 'text' \
               AND NOT EXISTS (SELECT 1 FROM chat_history h WHERE h.source_key = 'op:' || o.operation_id) \
             ORDER BY t.created_at LIMIT ?1",
        )?
        .query_map([BATCH as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<Result<_, _>>()?;
    let more_prompts = prompts.len() == BATCH;
    for (operation_id, turn_id, thread_id, project_id, text, turn_created_at) in prompts {
        added += insert(
            conn,
            &NewEntry {
                thread_id: &thread_id,
                turn_id: &turn_id,
                operation_id: Some(&operation_id),
                project_id: project_id.as_deref(),
                role: "user",
                kind: "prompt",
                text: &text,
                position: 0,
                source_key: &format!("op:{operation_id}"),
                turn_created_at,
            },
            turn_created_at,
        )?;
    }
    // Assistant messages, after the watermark.
    let from = watermark(conn)?;
    let messages: Vec<MessageRow> = conn
        .prepare_cached(
            "SELECT m.message_id, m.turn_id, t.thread_id, m.role, m.kind, m.text, m.created_at, t.created_at, \
                    t.operation_id, o.project_id \
             FROM tracked_turn_messages m JOIN tracked_turns t ON t.turn_id = m.turn_id \
             LEFT JOIN codex_operations o ON o.operation_id = t.operation_id \
             WHERE m.message_id > ?1 ORDER BY m.message_id LIMIT ?2",
        )?
        .query_map(params![from, BATCH as i64], |r| {
            Ok((
                r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?,
                r.get(8)?, r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let more_messages = messages.len() == BATCH;
    let mut last = from;
    for (
        message_id,
        turn_id,
        thread_id,
        role,
        kind,
        text,
        created_at,
        turn_created_at,
        operation_id,
        project_id,
    ) in messages
    {
        last = message_id;
        // The final answer arrives twice (its item and turn/completed); the chat shows it once.
        let duplicate: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM chat_history WHERE turn_id = ?1 AND role = ?2 AND text = ?3)",
            )?
            .query_row(params![turn_id, role, redact_text(&text).as_ref()], |r| r.get(0))?;
        if duplicate {
            continue;
        }
        added += insert(
            conn,
            &NewEntry {
                thread_id: &thread_id,
                turn_id: &turn_id,
                operation_id: operation_id.as_deref(),
                project_id: project_id.as_deref(),
                role: &role,
                kind: &kind,
                text: &text,
                position: message_id,
                source_key: &format!("msg:{message_id}"),
                turn_created_at,
            },
            created_at,
        )?;
    }
    if last > from {
        conn.prepare_cached(
            "INSERT INTO chat_history_state (name, value, updated_at) VALUES ('messages', ?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )?
        .execute(params![last, now])?;
    }
    Ok((added, more_prompts || more_messages))
}

/// A tracked message joined with its turn and operation, as mirroring reads it.
type MessageRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

struct NewEntry<'a> {
    thread_id: &'a str,
    turn_id: &'a str,
    operation_id: Option<&'a str>,
    project_id: Option<&'a str>,
    role: &'a str,
    kind: &'a str,
    text: &'a str,
    position: i64,
    source_key: &'a str,
    turn_created_at: i64,
}

fn insert(conn: &Connection, entry: &NewEntry<'_>, created_at: i64) -> Result<usize, StoreError> {
    let text = redact_text(entry.text);
    Ok(conn
        .prepare_cached(
            "INSERT INTO chat_history (thread_id, turn_id, operation_id, project_id, role, kind, text, position, \
             source_key, turn_created_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT(source_key) DO NOTHING",
        )?
        .execute(params![
            entry.thread_id,
            entry.turn_id,
            entry.operation_id,
            entry.project_id,
            entry.role,
            entry.kind,
            text.as_ref(),
            entry.position,
            entry.source_key,
            entry.turn_created_at,
            created_at,
        ])?)
}

/// One message a Codex hook reported (`hooks record`), for a session this server may not have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEntry {
    /// Codex's thread (the hook's `thread_id`, else its `session_id`).
    pub thread_id: String,
    /// The turn, when the event names one.
    pub turn_id: String,
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// `prompt`, `final_answer` or `compact_summary`.
    pub kind: String,
    /// The text (redacted here, truncated by the caller).
    pub text: String,
    /// Order within the turn.
    pub position: i64,
    /// `hook:` + a hash of the event, so a hook that runs twice writes one row.
    pub source_key: String,
}

/// Stores a hook's message unless the turn is one this server runs (those are mirrored from the turn itself,
/// and a second copy would show every message twice); true when a row was written.
pub fn insert_hook_entry(
    conn: &Connection,
    entry: &HookEntry,
    now: i64,
) -> Result<bool, StoreError> {
    let ours: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tracked_turns WHERE turn_id = ?1)")?
        .query_row([&entry.turn_id], |row| row.get(0))?;
    if ours {
        return Ok(false);
    }
    let new = NewEntry {
        thread_id: &entry.thread_id,
        turn_id: &entry.turn_id,
        operation_id: None,
        project_id: None,
        role: &entry.role,
        kind: &entry.kind,
        text: &entry.text,
        position: entry.position,
        source_key: &entry.source_key,
        turn_created_at: now,
    };
    Ok(insert(conn, &new, now)? > 0)
}

fn entry_from_row(row: &Row<'_>) -> Result<HistoryEntry, rusqlite::Error> {
    Ok(HistoryEntry {
        entry_id: row.get(0)?,
        thread_id: row.get(1)?,
        turn_id: row.get(2)?,
        operation_id: row.get(3)?,
        project_id: row.get(4)?,
        role: row.get(5)?,
        kind: row.get(6)?,
        text: row.get(7)?,
        created_at: Timestamp(row.get(8)?),
    })
}

/// The entries of one chat in conversation order, at most `limit` of the newest.
pub fn thread_entries(
    conn: &Connection,
    thread_id: &str,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut entries: Vec<HistoryEntry> = conn
        .prepare_cached(
            "SELECT entry_id, thread_id, turn_id, operation_id, project_id, role, kind, text, created_at \
             FROM chat_history WHERE thread_id = ?1 \
             ORDER BY turn_created_at DESC, turn_id DESC, position DESC, entry_id DESC LIMIT ?2",
        )?
        .query_map(params![thread_id, limit as i64], entry_from_row)?
        .collect::<Result<_, _>>()?;
    entries.reverse();
    Ok(entries)
}

/// Entries and the newest entry's time.
pub fn stats(conn: &Connection) -> Result<IndexStats, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*), MAX(created_at) FROM chat_history")?
        .query_row([], |r| {
            Ok(IndexStats {
                entries: r.get(0)?,
                last_entry_at: r.get::<_, Option<i64>>(1)?.map(Timestamp),
            })
        })?)
}

/// Full-text matches of `expression` (see [`match_expression`]), best first, optionally in one project.
pub fn search(
    conn: &Connection,
    expression: &str,
    project_id: Option<&str>,
    snippet_tokens: usize,
) -> Result<Vec<SearchHit>, StoreError> {
    let tokens = snippet_tokens.clamp(4, MAX_SNIPPET_TOKENS) as i64;
    let hits = conn
        .prepare_cached(
            "SELECT h.thread_id, h.entry_id, h.turn_id, h.role, h.project_id, bm25(chat_history_fts), \
                    snippet(chat_history_fts, 0, '**', '**', '…', ?3), h.created_at \
             FROM chat_history_fts JOIN chat_history h ON h.entry_id = chat_history_fts.rowid \
             WHERE chat_history_fts MATCH ?1 AND (?2 IS NULL OR h.project_id = ?2) \
             ORDER BY bm25(chat_history_fts), h.entry_id DESC LIMIT ?4",
        )?
        .query_map(
            params![expression, project_id, tokens, MAX_SEARCH_HITS as i64],
            |r| {
                Ok(SearchHit {
                    thread_id: r.get(0)?,
                    entry_id: r.get(1)?,
                    turn_id: r.get(2)?,
                    role: r.get(3)?,
                    project_id: r.get(4)?,
                    score: r.get(5)?,
                    snippet: r.get(6)?,
                    created_at: Timestamp(r.get(7)?),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(hits)
}

impl Store {
    /// Mirrors new prompts and messages into the history, batch by batch, until none is left or `budget` is
    /// spent (checked between batches, so one batch may overrun it slightly).
    pub async fn refresh_chat_history(
        &self,
        budget: Duration,
    ) -> Result<RefreshOutcome, StoreError> {
        let deadline = Instant::now() + budget;
        let mut outcome = RefreshOutcome::default();
        loop {
            let (added, more) = self.write(|tx| mirror_batch(tx)).await?;
            outcome.added += added;
            if !more {
                outcome.complete = true;
                return Ok(outcome);
            }
            if Instant::now() >= deadline {
                return Ok(outcome);
            }
        }
    }

    /// See [`thread_entries`].
    pub async fn chat_entries(
        &self,
        thread_id: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let thread_id = thread_id.to_string();
        self.read(move |conn| thread_entries(conn, &thread_id, limit))
            .await
    }

    /// See [`insert_hook_entry`].
    pub async fn record_hook_entry(&self, entry: HookEntry) -> Result<bool, StoreError> {
        self.write(move |tx| insert_hook_entry(tx, &entry, crate::time::now_ms()))
            .await
    }

    /// See [`stats`].
    pub async fn chat_index_stats(&self) -> Result<IndexStats, StoreError> {
        self.read(stats).await
    }

    /// See [`search`].
    pub async fn search_chat_history(
        &self,
        expression: String,
        project_id: Option<String>,
        snippet_tokens: usize,
    ) -> Result<Vec<SearchHit>, StoreError> {
        self.read(move |conn| search(conn, &expression, project_id.as_deref(), snippet_tokens))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    fn seed(conn: &Connection, op: &str, thread: &str, turn: &str, prompt: &str, answers: &[&str]) {
        let now = now_ms();
        conn.execute(
            "INSERT INTO codex_operations (operation_id, client_request_id, operation_type, status, project_id, \
             thread_id, turn_id, has_message, request_json, request_fingerprint, next_attempt_at, created_at, \
             updated_at) VALUES (?1, ?1, 'start_chat', 'completed', 'p1', ?2, ?3, 1, ?4, 'f', 0, ?5, ?5)",
            params![op, thread, turn, serde_json::json!({"message": prompt}).to_string(), now],
        )
        .expect("operation");
        conn.execute(
            "INSERT INTO tracked_turns (turn_id, thread_id, operation_id, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'completed', ?4, ?4)",
            params![turn, thread, op, now],
        )
        .expect("turn");
        for (i, text) in answers.iter().enumerate() {
            conn.execute(
                "INSERT INTO tracked_turn_messages (turn_id, thread_id, role, kind, text, event_hash, created_at) \
                 VALUES (?1, ?2, 'assistant', 'final_answer', ?3, ?4, ?5)",
                params![turn, thread, text, format!("{turn}:{i}"), now],
            )
            .expect("message");
        }
    }

    fn mirror_all(conn: &Connection) -> usize {
        let mut total = 0;
        loop {
            let (added, more) = mirror_batch(conn).expect("mirror");
            total += added;
            if !more {
                return total;
            }
        }
    }

    #[test]
    fn mirrors_prompts_and_messages_once_in_conversation_order_redacted() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| {
                seed(
                    tx,
                    "op_1",
                    "th_1",
                    "tu_1",
                    "deploy with key sk-abcdefghijklmnopqrstuv",
                    &["done", "done"],
                );
                assert_eq!(
                    mirror_all(tx),
                    2,
                    "prompt + one answer (the repeat is dropped)"
                );
                assert_eq!(mirror_all(tx), 0, "a second refresh adds nothing");
                seed(tx, "op_2", "th_1", "tu_2", "and again", &["second answer"]);
                assert_eq!(mirror_all(tx), 2);
                let entries = thread_entries(tx, "th_1", 100)?;
                let texts: Vec<&str> = entries.iter().map(|e| e.text.as_str()).collect();
                assert_eq!(texts[1..], ["done", "and again", "second answer"]);
                assert!(
                    !texts[0].contains("sk-abc"),
                    "secrets are redacted: {}",
                    texts[0]
                );
                assert_eq!(entries[0].role, "user");
                assert_eq!(thread_entries(tx, "th_1", 2)?.len(), 2, "the newest two");
                Ok(())
            })
            .expect("write");
    }

    #[test]
    fn search_ranks_by_bm25_and_quotes_every_term() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| {
                seed(
                    tx,
                    "op_a",
                    "th_a",
                    "tu_a",
                    "tell me about otters",
                    &["otters otters love rivers"],
                );
                seed(
                    tx,
                    "op_b",
                    "th_b",
                    "tu_b",
                    "unrelated",
                    &["one rivers mention among many other words here"],
                );
                mirror_all(tx);
                let all = match_expression("otters rivers", MatchMode::AllTerms).expect("terms");
                let hits = search(tx, &all, None, 16)?;
                assert_eq!(hits.len(), 1);
                assert_eq!(hits[0].thread_id, "th_a");
                assert!(
                    hits[0].snippet.contains("**otters**"),
                    "{}",
                    hits[0].snippet
                );
                let any = match_expression("otters rivers", MatchMode::AnyTerm).expect("terms");
                let hits = search(tx, &any, None, 16)?;
                assert_eq!(
                    hits[0].thread_id, "th_a",
                    "the chat with both terms ranks first"
                );
                assert!(hits.iter().any(|h| h.thread_id == "th_b"));
                let phrase = match_expression("love rivers", MatchMode::Phrase).expect("terms");
                assert_eq!(search(tx, &phrase, None, 16)?.len(), 1);
                let reversed = match_expression("rivers love", MatchMode::Phrase).expect("terms");
                assert!(search(tx, &reversed, None, 16)?.is_empty());
                assert!(search(tx, &all, Some("other-project"), 16)?.is_empty());
                // FTS5 syntax in a query is searched for as text, never parsed.
                let tricky =
                    match_expression("\"NEAR(otters\" *", MatchMode::AllTerms).expect("terms");
                assert!(search(tx, &tricky, None, 16).is_ok());
                Ok(())
            })
            .expect("write");
        assert_eq!(match_expression(" !? ", MatchMode::AllTerms), None);
    }
}
