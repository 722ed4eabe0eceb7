//! Worker commands (`codex_worker_commands`, `cmd_<hex>`): a control action a client process asks the worker
//! to perform because only the worker owns `codex app-server` (answer an interaction, interrupt a turn, archive,
//! compact, restart app-server, a live refresh).
//!
//! States follow the seed: `queued` → `running` → `completed` | `failed` | `timed_out`. A command is claimed by
//! one worker with a compare-and-set, so it runs at most once; a command still queued after its expiry is
//! `timed_out` and never runs (the client that asked has long stopped waiting); a command left `running` by a
//! worker that died is `failed`, never run again (the action may have reached app-server).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{new_id, Store, StoreError, Timestamp};

/// Statuses after which a command never changes.
pub const TERMINAL: [&str; 3] = ["completed", "failed", "timed_out"];

/// One worker command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCommand {
    /// `cmd_<32 hex>`.
    pub command_id: String,
    /// What it does (`interrupt_turn`, `archive_thread`, ...).
    pub command_type: String,
    /// The tool and its arguments.
    pub payload: Value,
    /// queued, running, completed, failed or timed_out.
    pub status: String,
    /// The process that asked.
    pub requested_by: Option<String>,
    /// The worker that ran it.
    pub claimed_by: Option<String>,
    /// What the action returned, once completed.
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<Value>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Claimed.
    pub started_at: Option<Timestamp>,
    /// Ended.
    pub completed_at: Option<Timestamp>,
    /// Queued past this, it times out unrun.
    pub expires_at: Timestamp,
}

impl WorkerCommand {
    /// True once the command can no longer change.
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }
}

const COLUMNS: &str =
    "command_id, command_type, payload_json, status, requested_by, claimed_by, result_json, \
    error_json, created_at, updated_at, started_at, completed_at, expires_at";

fn from_row(row: &Row<'_>) -> Result<WorkerCommand, rusqlite::Error> {
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    Ok(WorkerCommand {
        command_id: row.get(0)?,
        command_type: row.get(1)?,
        payload: json(Some(row.get(2)?)).unwrap_or(Value::Null),
        status: row.get(3)?,
        requested_by: row.get(4)?,
        claimed_by: row.get(5)?,
        result: json(row.get(6)?),
        error: json(row.get(7)?),
        created_at: Timestamp(row.get(8)?),
        updated_at: Timestamp(row.get(9)?),
        started_at: row.get::<_, Option<i64>>(10)?.map(Timestamp),
        completed_at: row.get::<_, Option<i64>>(11)?.map(Timestamp),
        expires_at: Timestamp(row.get(12)?),
    })
}

/// One command by id.
pub fn get(conn: &Connection, command_id: &str) -> Result<Option<WorkerCommand>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM codex_worker_commands WHERE command_id = ?1"
        ))?
        .query_row([command_id], from_row)
        .optional()?)
}

fn require(conn: &Connection, command_id: &str) -> Result<WorkerCommand, StoreError> {
    get(conn, command_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "command",
        id: command_id.to_string(),
    })
}

/// Queues a command that times out unrun `ttl_ms` from `now`.
pub fn insert(
    conn: &Connection,
    command_type: &str,
    payload: &Value,
    requested_by: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<WorkerCommand, StoreError> {
    let command_id = new_id("cmd");
    conn.prepare_cached(
        "INSERT INTO codex_worker_commands (command_id, command_type, payload_json, status, requested_by, \
         created_at, updated_at, expires_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?5, ?6)",
    )?
    .execute(params![
        command_id,
        command_type,
        payload.to_string(),
        requested_by,
        now,
        now.saturating_add(ttl_ms)
    ])?;
    require(conn, &command_id)
}

/// Times out expired queued commands, then claims the oldest queued one for `owner` (`queued` → `running` in
/// this transaction, so two workers never run the same command).
pub fn claim_next(
    conn: &Connection,
    owner: &str,
    now: i64,
) -> Result<Option<WorkerCommand>, StoreError> {
    conn.prepare_cached(
        "UPDATE codex_worker_commands SET status = 'timed_out', updated_at = ?1, completed_at = ?1, \
         error_json = '{\"code\":\"CODEX_TIMEOUT\",\"message\":\"no worker took the command before it expired\",\"retryable\":true}' \
         WHERE status = 'queued' AND expires_at <= ?1",
    )?
    .execute([now])?;
    let next: Option<String> = conn
        .prepare_cached(
            "SELECT command_id FROM codex_worker_commands WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(command_id) = next else {
        return Ok(None);
    };
    conn.prepare_cached(
        "UPDATE codex_worker_commands SET status = 'running', claimed_by = ?2, started_at = ?3, updated_at = ?3 \
         WHERE command_id = ?1 AND status = 'queued'",
    )?
    .execute(params![command_id, owner, now])?;
    Ok(Some(require(conn, &command_id)?))
}

/// Ends a running command with its result (`completed`) or error (`failed`).
pub fn finish(
    conn: &Connection,
    command_id: &str,
    outcome: Result<&Value, &Value>,
    now: i64,
) -> Result<WorkerCommand, StoreError> {
    let (status, result, error) = match outcome {
        Ok(result) => ("completed", Some(result.to_string()), None),
        Err(error) => ("failed", None, Some(error.to_string())),
    };
    conn.prepare_cached(
        "UPDATE codex_worker_commands SET status = ?2, result_json = ?3, error_json = ?4, updated_at = ?5, \
         completed_at = ?5 WHERE command_id = ?1 AND status = 'running'",
    )?
    .execute(params![command_id, status, result, error, now])?;
    require(conn, command_id)
}

/// Fails the commands a dead worker left `running`: the action may have reached app-server, so it is never run
/// a second time. Returns how many.
pub fn fail_abandoned(conn: &Connection, dead_owner: &str, now: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE codex_worker_commands SET status = 'failed', updated_at = ?2, completed_at = ?2, \
             error_json = '{\"code\":\"CODEX_SEND_FAILED\",\"message\":\"the worker running the command exited; it may or may not have reached app-server\",\"retryable\":false}' \
             WHERE status = 'running' AND claimed_by = ?1",
        )?
        .execute(params![dead_owner, now])?)
}

/// Owners of running commands other than `me`.
pub fn running_owners(conn: &Connection, me: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT claimed_by FROM codex_worker_commands WHERE status = 'running' AND claimed_by IS NOT NULL \
         AND claimed_by <> ?1",
    )?;
    let rows = stmt.query_map([me], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The most recent commands, newest first.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<WorkerCommand>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM codex_worker_commands ORDER BY created_at DESC, rowid DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Queues a worker command.
    pub async fn insert_worker_command(
        &self,
        command_type: &str,
        payload: Value,
        requested_by: &str,
        ttl: std::time::Duration,
    ) -> Result<WorkerCommand, StoreError> {
        let (kind, by) = (command_type.to_string(), requested_by.to_string());
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.write(move |tx| insert(tx, &kind, &payload, &by, crate::time::now_ms(), ttl_ms))
            .await
    }

    /// One worker command.
    pub async fn get_worker_command(
        &self,
        command_id: &str,
    ) -> Result<Option<WorkerCommand>, StoreError> {
        let id = command_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// True when some command waits for a worker (a read, so an idle tick takes no write lock).
    pub async fn has_queued_worker_commands(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM codex_worker_commands WHERE status = 'queued')",
            )?
            .query_row([], |r| r.get(0))?)
        })
        .await
    }

    /// Claims the next queued command for `owner` (see [`claim_next`]).
    pub async fn claim_worker_command(
        &self,
        owner: &str,
    ) -> Result<Option<WorkerCommand>, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| claim_next(tx, &owner, crate::time::now_ms()))
            .await
    }

    /// Ends a running command.
    pub async fn finish_worker_command(
        &self,
        command_id: &str,
        outcome: Result<Value, Value>,
    ) -> Result<WorkerCommand, StoreError> {
        let id = command_id.to_string();
        self.write(move |tx| finish(tx, &id, outcome.as_ref(), crate::time::now_ms()))
            .await
    }

    /// Fails the running commands of workers that are provably dead; returns how many.
    pub async fn fail_abandoned_worker_commands(&self, me: &str) -> Result<usize, StoreError> {
        let me = me.to_string();
        self.write(move |tx| {
            let mut failed = 0;
            for owner in running_owners(tx, &me)? {
                if super::leases::is_owner_dead(tx, &owner)? {
                    failed += fail_abandoned(tx, &owner, crate::time::now_ms())?;
                }
            }
            Ok(failed)
        })
        .await
    }

    /// The most recent worker commands, newest first.
    pub async fn recent_worker_commands(
        &self,
        limit: usize,
    ) -> Result<Vec<WorkerCommand>, StoreError> {
        self.read(move |c| recent(c, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::temp_store;
    use serde_json::json;

    #[tokio::test]
    async fn a_command_runs_once_and_an_expired_one_never_runs() {
        let (_dir, store) = temp_store();
        let first = store
            .insert_worker_command(
                "interrupt_turn",
                json!({"tool": "codex_interrupt_turn"}),
                "client-a",
                std::time::Duration::from_secs(60),
            )
            .await
            .expect("insert");
        assert_eq!(first.status, "queued");
        assert!(first.command_id.starts_with("cmd_") && first.command_id.len() == 36);
        let claimed = store
            .claim_worker_command("worker-1")
            .await
            .expect("claim")
            .expect("one queued");
        assert_eq!(claimed.status, "running");
        assert_eq!(claimed.claimed_by.as_deref(), Some("worker-1"));
        assert!(store
            .claim_worker_command("worker-2")
            .await
            .expect("claim")
            .is_none());
        let done = store
            .finish_worker_command(&first.command_id, Ok(json!({"interrupted": true})))
            .await
            .expect("finish");
        assert_eq!(done.status, "completed");
        assert_eq!(done.result, Some(json!({"interrupted": true})));
        assert!(done.is_terminal());

        let stale = store
            .insert_worker_command(
                "archive_thread",
                json!({}),
                "client-a",
                std::time::Duration::from_millis(0),
            )
            .await
            .expect("insert");
        assert!(store
            .claim_worker_command("worker-1")
            .await
            .expect("claim")
            .is_none());
        let stale = store
            .get_worker_command(&stale.command_id)
            .await
            .expect("get")
            .expect("row");
        assert_eq!(stale.status, "timed_out");
        assert_eq!(
            store
                .recent_worker_commands(10)
                .await
                .expect("recent")
                .len(),
            2
        );
    }
}
