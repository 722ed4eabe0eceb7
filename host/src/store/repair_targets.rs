//! What the repair actions beyond operations and interactions read and change: the live operations whose turn
//! an `interrupt_turn` repair may interrupt, the old prompt submissions `cleanup_prompt_submissions` deletes,
//! the workflows `reconcile_workflow_from_thread` and `retry_workflow_with_runtime_policy` act on (with the
//! retries already linked to one), and the backlog of the chat history and its full-text index that
//! `refresh_catalog_and_history` clears.

use rusqlite::{params, Connection, OptionalExtension};

use super::repairs::{candidate, Candidate, RepairScope, CANDIDATE_LIMIT, TERMINAL};
use super::{Store, StoreError};

/// The prefix of the `client_request_id` of a workflow a repair started as the retry of another.
pub const RETRY_KEY_PREFIX: &str = "repair:retry:";

/// The backlog of the chat history (`store::history`) and its FTS5 index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryBacklog {
    /// Prompts of operations with a turn not mirrored yet.
    pub unmirrored_prompts: i64,
    /// Tracked messages past the mirror's watermark.
    pub unmirrored_messages: i64,
    /// Entries of `chat_history` the index does not hold (or holds too many of): |entries - indexed|.
    pub unindexed_entries: i64,
}

/// The workflow scope clause: a workflow named directly, through its thread, or through an operation or turn
/// of it. Parameters ?1..?4 are the scope's workflow, thread, operation and turn ids (NULL: any).
const WORKFLOW_SCOPE: &str = "(?1 IS NULL OR w.workflow_id = ?1) AND (?2 IS NULL OR w.thread_id = ?2) \
    AND (?3 IS NULL OR w.workflow_id = (SELECT workflow_id FROM codex_operations WHERE operation_id = ?3)) \
    AND (?4 IS NULL OR w.workflow_id IN (SELECT workflow_id FROM codex_operations WHERE turn_id = ?4))";

fn rows(
    conn: &Connection,
    sql: &str,
    bound: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Candidate>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(bound, candidate)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// See [`Store::history_backlog`].
pub fn history_backlog(conn: &Connection) -> Result<HistoryBacklog, StoreError> {
    let prompts: i64 = conn.query_row(
        "SELECT COUNT(*) FROM codex_operations o JOIN tracked_turns t ON t.turn_id = o.turn_id \
         WHERE o.has_message = 1 AND json_type(o.request_json, '$.message') = 'text' \
           AND NOT EXISTS (SELECT 1 FROM chat_history h WHERE h.source_key = 'op:' || o.operation_id)",
        [],
        |r| r.get(0),
    )?;
    let watermark: i64 = conn
        .query_row(
            "SELECT value FROM chat_history_state WHERE name = 'messages'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let messages: i64 = conn.query_row(
        "SELECT COUNT(*) FROM tracked_turn_messages m JOIN tracked_turns t ON t.turn_id = m.turn_id \
         WHERE m.message_id > ?1",
        [watermark],
        |r| r.get(0),
    )?;
    let entries: i64 = conn.query_row("SELECT COUNT(*) FROM chat_history", [], |r| r.get(0))?;
    // The docsize shadow table holds one row per document the index holds: the external-content table's own
    // COUNT(*) would read the content table and always agree with it.
    let indexed: i64 =
        conn.query_row("SELECT COUNT(*) FROM chat_history_fts_docsize", [], |r| {
            r.get(0)
        })?;
    Ok(HistoryBacklog {
        unmirrored_prompts: prompts,
        unmirrored_messages: messages,
        unindexed_entries: (entries - indexed).abs(),
    })
}

impl Store {
    /// Live operations in `scope` whose tracked turn has not ended, oldest first; without a scope only those
    /// untouched since before `cutoff` (ms): an interrupt without a target only stops stalled turns.
    pub async fn interruptible_operations(
        &self,
        scope: RepairScope,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            let global = scope == RepairScope::default();
            let sql = format!(
                "SELECT o.operation_id, o.status, o.operation_type, o.updated_at FROM codex_operations o
                 JOIN tracked_turns t ON t.turn_id = o.turn_id
                 WHERE o.status NOT IN ({TERMINAL}) AND t.completed_at IS NULL
                   AND t.status NOT IN ({TERMINAL})
                   AND (?1 IS NULL OR o.operation_id = ?1) AND (?2 IS NULL OR o.thread_id = ?2)
                   AND (?3 IS NULL OR o.turn_id = ?3) AND (?4 IS NULL OR o.workflow_id = ?4)
                   AND (?5 = 0 OR o.updated_at < ?6)
                 ORDER BY o.updated_at LIMIT {CANDIDATE_LIMIT}"
            );
            rows(
                conn,
                &sql,
                params![
                    scope.operation_id,
                    scope.thread_id,
                    scope.turn_id,
                    scope.workflow_id,
                    global,
                    cutoff
                ],
            )
        })
        .await
    }

    /// Prompt submissions in `scope` created before `cutoff` (ms) whose operation has ended, oldest first:
    /// rows the duplicate-prompt guard no longer needs (it only ever reports live ones). `status` is the
    /// operation's, `kind` the operation type.
    pub async fn old_prompt_submissions(
        &self,
        scope: RepairScope,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT s.submission_id, o.status, s.operation_type, s.created_at
                 FROM codex_prompt_submissions s JOIN codex_operations o ON o.operation_id = s.operation_id
                 WHERE s.created_at < ?5 AND o.status IN ({TERMINAL})
                   AND (?1 IS NULL OR o.operation_id = ?1) AND (?2 IS NULL OR o.thread_id = ?2)
                   AND (?3 IS NULL OR o.turn_id = ?3) AND (?4 IS NULL OR o.workflow_id = ?4)
                 ORDER BY s.created_at LIMIT {CANDIDATE_LIMIT}"
            );
            rows(
                conn,
                &sql,
                params![
                    scope.operation_id,
                    scope.thread_id,
                    scope.turn_id,
                    scope.workflow_id,
                    cutoff
                ],
            )
        })
        .await
    }

    /// Whether a prompt submission exists.
    pub async fn prompt_submission_exists(&self, submission_id: &str) -> Result<bool, StoreError> {
        let id = submission_id.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM codex_prompt_submissions WHERE submission_id = ?1")?
                .exists([id])?)
        })
        .await
    }

    /// Deletes a prompt submission whose operation has ended; false when there was none (or its operation is
    /// live again, so the duplicate guard still needs it).
    pub async fn delete_ended_prompt_submission(
        &self,
        submission_id: &str,
    ) -> Result<bool, StoreError> {
        let id = submission_id.to_string();
        self.write(move |tx| {
            let sql = format!(
                "DELETE FROM codex_prompt_submissions WHERE submission_id = ?1 AND operation_id IN
                 (SELECT operation_id FROM codex_operations WHERE status IN ({TERMINAL}))"
            );
            Ok(tx.prepare_cached(&sql)?.execute([id])? > 0)
        })
        .await
    }

    /// Workflows in `scope`: not ended (`live`), idle since before `cutoff` (ms) when the scope is global; or
    /// ended without completing (failed, orphaned), only with a scope (a retry starts new work, so it is never
    /// offered for every failed workflow at once). Oldest first; `kind` is the workflow kind.
    pub async fn repair_workflows(
        &self,
        scope: RepairScope,
        live: bool,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            let global = scope == RepairScope::default();
            if global && !live {
                return Ok(Vec::new());
            }
            let filter = if live {
                "w.completed_at IS NULL AND (?5 = 0 OR w.updated_at < ?6)"
            } else {
                "w.completed_at IS NOT NULL AND w.phase <> 'completed' AND ?5 = ?5 AND ?6 = ?6"
            };
            let sql = format!(
                "SELECT w.workflow_id, w.status, w.kind, w.updated_at FROM codex_workflows w
                 WHERE {filter} AND {WORKFLOW_SCOPE}
                 ORDER BY w.updated_at LIMIT {CANDIDATE_LIMIT}"
            );
            rows(
                conn,
                &sql,
                params![
                    scope.workflow_id,
                    scope.thread_id,
                    scope.operation_id,
                    scope.turn_id,
                    global,
                    cutoff
                ],
            )
        })
        .await
    }

    /// The `client_request_id`s of the retries a repair started of `workflow_id`, oldest first.
    pub async fn workflow_retries(&self, workflow_id: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{RETRY_KEY_PREFIX}{workflow_id}:%");
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_request_id FROM codex_workflows WHERE client_request_id LIKE ?1
                 ORDER BY created_at, client_request_id",
            )?;
            let rows = stmt.query_map([pattern], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// See [`history_backlog`].
    pub async fn history_backlog(&self) -> Result<HistoryBacklog, StoreError> {
        self.read(history_backlog).await
    }

    /// Rebuilds the chat history's full-text index from `chat_history` (FTS5 `rebuild`), in one write
    /// transaction.
    pub async fn rebuild_history_index(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO chat_history_fts (chat_history_fts) VALUES ('rebuild')",
                [],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_lost_index_is_counted_and_rebuilt() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO chat_history (thread_id, turn_id, role, kind, text, position, source_key,
                     turn_created_at, created_at) VALUES ('thr', 'turn', 'user', 'prompt', 'hello index', 0,
                     'op:op_x', 1, 1)",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO chat_history_fts (chat_history_fts) VALUES ('delete-all')",
                    [],
                )?;
                Ok(())
            })
            .expect("seed");
        let lost = store.history_backlog().await.expect("backlog");
        assert_eq!(lost.unindexed_entries, 1);
        store.rebuild_history_index().await.expect("rebuild");
        assert_eq!(
            store.history_backlog().await.expect("backlog"),
            HistoryBacklog::default()
        );
    }
}
