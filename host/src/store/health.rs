//! The health summary's reads, in one snapshot: active work, turns that stopped moving, historical debt (active
//! rows nobody touched for long) and recent errors. Reads only: the health summary must stay cheap and must
//! never change what it reports on.

use rusqlite::{params, Connection};
use serde_json::Value;

use super::{sql_status_list, Store, StoreError, Timestamp};
use crate::domain::rules::status::{ACTIVE, STARTABLE, TERMINAL};

/// Terminal statuses that mean the work did not succeed.
const ERROR_STATUSES: [&str; 3] = ["failed", "orphaned", "unknown_after_app_server_exit"];

/// What the health summary asks for.
#[derive(Debug, Clone, Copy)]
pub struct HealthQuery {
    /// The current time (unix ms).
    pub now: i64,
    /// Active rows unchanged for longer than this are stale (ms).
    pub stale_after_ms: i64,
    /// Errors newer than this count as recent (ms).
    pub since_ms: i64,
    /// At most this many recent errors are listed (0: count only).
    pub max_recent_errors: usize,
}

/// Work that is under way now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveWork {
    /// Operations waiting to start (queued or starting).
    pub queued_operations: i64,
    /// Operations whose turn runs (including those waiting for an answer).
    pub running_operations: i64,
    /// Interactions waiting for an answer.
    pub pending_interactions: i64,
    /// Workflows not ended.
    pub active_workflows: i64,
    /// Tracked turns not ended.
    pub active_turns: i64,
}

/// A live turn with no activity for longer than the stale window and nothing asked of the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct StalledTurn {
    /// The turn.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: String,
    /// Its operation, when one submitted it.
    pub operation_id: Option<String>,
    /// Its status.
    pub status: String,
    /// Its last update, message or progress event.
    pub last_activity_at: Timestamp,
}

/// One failed piece of work.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentError {
    /// `operation` or `workflow`.
    pub kind: &'static str,
    /// The operation or workflow id.
    pub id: String,
    /// Its terminal status.
    pub status: String,
    /// The stored error (`lastError` of an operation, `error` of a workflow).
    pub error: Option<Value>,
    /// When it ended.
    pub at: Timestamp,
}

/// Everything the health summary reads from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthReport {
    /// Work under way.
    pub active: ActiveWork,
    /// Live turns that stopped moving.
    pub stalled_turns: Vec<StalledTurn>,
    /// Active operations not updated within the stale window.
    pub stale_operations: i64,
    /// Workflows not ended and not updated within the stale window.
    pub stale_workflows: i64,
    /// Operations and workflows that ended badly within the recent window, newest first.
    pub recent_errors: Vec<RecentError>,
    /// How many ended badly within the window (the list may be shorter).
    pub recent_error_count: i64,
}

fn count(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached(sql)?.query_row(args, |r| r.get(0))?)
}

fn json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Store {
    /// The health summary's view of the store, read in one snapshot.
    pub async fn health_report(&self, query: HealthQuery) -> Result<HealthReport, StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let report = read_report(&tx, query)?;
            tx.finish()?;
            Ok(report)
        })
        .await
    }
}

fn read_report(conn: &Connection, q: HealthQuery) -> Result<HealthReport, StoreError> {
    let (startable, active, terminal, errors) = (
        sql_status_list(&STARTABLE),
        sql_status_list(&ACTIVE),
        sql_status_list(&TERMINAL),
        sql_status_list(&ERROR_STATUSES),
    );
    let stale_before = q.now - q.stale_after_ms;
    let since = q.now - q.since_ms;
    let active_work = ActiveWork {
        queued_operations: count(
            conn,
            &format!("SELECT COUNT(*) FROM codex_operations WHERE status IN ({startable})"),
            [],
        )?,
        running_operations: count(
            conn,
            &format!("SELECT COUNT(*) FROM codex_operations WHERE status IN ({active})"),
            [],
        )?,
        pending_interactions: count(
            conn,
            "SELECT COUNT(*) FROM pending_interactions WHERE status = 'pending'",
            [],
        )?,
        active_workflows: count(
            conn,
            "SELECT COUNT(*) FROM codex_workflows WHERE completed_at IS NULL",
            [],
        )?,
        active_turns: count(
            conn,
            &format!("SELECT COUNT(*) FROM tracked_turns WHERE status NOT IN ({terminal})"),
            [],
        )?,
    };
    // Last activity of a turn: its row, or the newest progress event or message recorded for it.
    let mut stalled = conn.prepare_cached(&format!(
        "SELECT turn_id, thread_id, operation_id, status, last_activity FROM (
             SELECT t.turn_id, t.thread_id, t.operation_id, t.status,
                    MAX(t.updated_at,
                        COALESCE((SELECT MAX(created_at) FROM tracked_turn_progress_events p
                                  WHERE p.turn_id = t.turn_id), 0),
                        COALESCE((SELECT MAX(created_at) FROM tracked_turn_messages m
                                  WHERE m.turn_id = t.turn_id), 0)) AS last_activity
             FROM tracked_turns t
             WHERE t.status NOT IN ({terminal})
               AND NOT EXISTS (SELECT 1 FROM pending_interactions i
                               WHERE i.turn_id = t.turn_id AND i.status = 'pending'))
         WHERE last_activity < ?1 ORDER BY last_activity LIMIT 50"
    ))?;
    let stalled_turns = stalled
        .query_map([stale_before], |r| {
            Ok(StalledTurn {
                turn_id: r.get(0)?,
                thread_id: r.get(1)?,
                operation_id: r.get(2)?,
                status: r.get(3)?,
                last_activity_at: Timestamp(r.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let stale_operations = count(
        conn,
        &format!(
            "SELECT COUNT(*) FROM codex_operations
             WHERE status IN ({active}) AND updated_at < ?1"
        ),
        [stale_before],
    )?;
    let stale_workflows = count(
        conn,
        "SELECT COUNT(*) FROM codex_workflows WHERE completed_at IS NULL AND updated_at < ?1",
        [stale_before],
    )?;
    let recent_error_count = count(
        conn,
        &format!(
            "SELECT (SELECT COUNT(*) FROM codex_operations
                     WHERE status IN ({errors}) AND COALESCE(completed_at, updated_at) >= ?1)
                  + (SELECT COUNT(*) FROM codex_workflows
                     WHERE status IN ({errors}) AND COALESCE(completed_at, updated_at) >= ?1)"
        ),
        [since],
    )?;
    let limit = i64::try_from(q.max_recent_errors).unwrap_or(i64::MAX);
    let mut recent = conn.prepare_cached(&format!(
        "SELECT kind, id, status, error_json, at FROM (
             SELECT 'operation' AS kind, operation_id AS id, status, last_error_json AS error_json,
                    COALESCE(completed_at, updated_at) AS at
             FROM codex_operations WHERE status IN ({errors}) AND COALESCE(completed_at, updated_at) >= ?1
             UNION ALL
             SELECT 'workflow', workflow_id, status, error_json, COALESCE(completed_at, updated_at)
             FROM codex_workflows WHERE status IN ({errors}) AND COALESCE(completed_at, updated_at) >= ?1)
         ORDER BY at DESC, id LIMIT ?2"
    ))?;
    let recent_errors = recent
        .query_map(params![since, limit], |r| {
            let kind: String = r.get(0)?;
            Ok(RecentError {
                kind: if kind == "workflow" {
                    "workflow"
                } else {
                    "operation"
                },
                id: r.get(1)?,
                status: r.get(2)?,
                error: json(r.get(3)?),
                at: Timestamp(r.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HealthReport {
        active: active_work,
        stalled_turns,
        stale_operations,
        stale_workflows,
        recent_errors,
        recent_error_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_fresh_store_has_no_work_debt_or_errors() {
        let (_dir, store) = temp_store();
        let report = store
            .health_report(HealthQuery {
                now: crate::time::now_ms(),
                stale_after_ms: 60_000,
                since_ms: 60_000,
                max_recent_errors: 5,
            })
            .await
            .expect("report");
        assert_eq!(report, HealthReport::default());
    }
}
