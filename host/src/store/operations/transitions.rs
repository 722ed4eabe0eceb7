//! Status transitions and what an operation learns on the way: its thread and turn, its final report, a
//! failed attempt, its end.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::*;

/// Moves an operation to `to` if the transition is allowed (see [`is_transition_allowed`]). Terminal statuses
/// set `completed_at` and drop the lease; active ones set `queue_status = running`.
pub fn set_status(
    conn: &Connection,
    operation_id: &str,
    to: &str,
    now: i64,
) -> Result<Operation, StoreError> {
    let op = require(conn, operation_id)?;
    if !is_transition_allowed(op.status.as_str(), to) {
        return Err(StoreError::InvalidTransition {
            operation_id: operation_id.to_string(),
            from: op.status.to_string(),
            to: to.to_string(),
        });
    }
    write_status(conn, &op, to, now)
}

/// Cancels an operation that has not started: `queued`, no lease held (no dispatcher has claimed it). One
/// compare-and-set, so a dispatcher claiming it at the same moment either wins (false here) or finds it
/// cancelled. True when this call cancelled it.
pub fn cancel_if_queued(
    conn: &Connection,
    operation_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE codex_operations SET status = 'cancelled', queue_status = 'cancelled', queued_reason = NULL, \
             completed_at = ?2, updated_at = ?2 \
             WHERE operation_id = ?1 AND status = 'queued' AND lease_owner IS NULL",
        )?
        .execute(params![operation_id, now])?;
    Ok(changed == 1)
}

pub(super) fn write_status(
    conn: &Connection,
    op: &Operation,
    to: &str,
    now: i64,
) -> Result<Operation, StoreError> {
    let queue_status = queue_status_for(to, &op.queue_status);
    if is_terminal(to) {
        conn.prepare_cached(
            "UPDATE codex_operations SET status = ?2, queue_status = ?3, queued_reason = NULL, \
             completed_at = COALESCE(completed_at, ?4), lease_owner = NULL, lease_expires_at = NULL, updated_at = ?4 \
             WHERE operation_id = ?1",
        )?
        .execute(params![op.operation_id, to, queue_status, now])?;
    } else {
        let reason: Option<&str> = if is_active(to) {
            None
        } else {
            op.queued_reason.as_deref()
        };
        conn.prepare_cached(
            "UPDATE codex_operations SET status = ?2, queue_status = ?3, queued_reason = ?4, completed_at = NULL, \
             updated_at = ?5 WHERE operation_id = ?1",
        )?
        .execute(params![op.operation_id, to, queue_status, reason, now])?;
    }
    require(conn, &op.operation_id)
}

/// The seed's reconcile rule: a terminal operation whose turn is not trusted-terminal goes back to `running`.
pub fn reopen(conn: &Connection, operation_id: &str, now: i64) -> Result<Operation, StoreError> {
    let op = require(conn, operation_id)?;
    let trusted = match &op.turn_id {
        Some(turn_id) => conn
            .prepare_cached("SELECT status, terminal_source FROM tracked_turns WHERE turn_id = ?1")?
            .query_row([turn_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .optional()?
            .is_some_and(|(status, source)| is_terminal(&status) && source.is_some()),
        None => true,
    };
    if !is_reopen_allowed(op.status.as_str(), "running", trusted) {
        return Err(StoreError::InvalidTransition {
            operation_id: operation_id.to_string(),
            from: op.status.to_string(),
            to: "running".to_string(),
        });
    }
    write_status(conn, &op, "running", now)
}

/// Records the thread an operation created or targets.
pub fn attach_thread(
    conn: &Connection,
    operation_id: &str,
    thread_id: &str,
    now: i64,
) -> Result<Operation, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE codex_operations SET thread_id = ?2, updated_at = ?3 WHERE operation_id = ?1",
        )?
        .execute(params![operation_id, thread_id, now])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "operation",
            id: operation_id.to_string(),
        });
    }
    require(conn, operation_id)
}

/// Records a policy narrowing in the operation's `runtimePolicy`: the sandbox and approval policy Codex is given now
/// (`None` keeps the value recorded; a change marks it adjusted with `reason`), so the status tools show what Codex
/// got, and `policyNarrowing`, the audit of which plugins' rules narrowed what.
pub fn record_policy_narrowing(
    conn: &Connection,
    operation_id: &str,
    narrowing: &PolicyNarrowing,
    now: i64,
) -> Result<Operation, StoreError> {
    let adjusted = narrowing.sandbox.is_some() || narrowing.approval_policy.is_some();
    let n = conn
        .prepare_cached(
            // A request whose `runtimePolicy` is not an object (absent or null) gets one first.
            "UPDATE codex_operations SET request_json = json_set( \
               CASE WHEN json_type(request_json, '$.runtimePolicy') = 'object' THEN request_json \
                    ELSE json_set(request_json, '$.runtimePolicy', json_object()) END, \
               '$.runtimePolicy.effectiveSandbox', \
               COALESCE(?2, json_extract(request_json, '$.runtimePolicy.effectiveSandbox')), \
               '$.runtimePolicy.effectiveApprovalPolicy', \
               COALESCE(?3, json_extract(request_json, '$.runtimePolicy.effectiveApprovalPolicy')), \
               '$.runtimePolicy.runtimePolicyAdjusted', \
               CASE WHEN ?4 THEN json('true') ELSE json_extract(request_json, '$.runtimePolicy.runtimePolicyAdjusted') END, \
               '$.runtimePolicy.adjustmentReason', \
               CASE WHEN ?4 THEN ?5 ELSE json_extract(request_json, '$.runtimePolicy.adjustmentReason') END, \
               '$.runtimePolicy.policyNarrowing', json(?6)), \
             updated_at = ?7 WHERE operation_id = ?1",
        )?
        .execute(params![
            operation_id,
            narrowing.sandbox,
            narrowing.approval_policy,
            adjusted,
            narrowing.reason,
            narrowing.audit.to_string(),
            now
        ])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "operation",
            id: operation_id.to_string(),
        });
    }
    require(conn, operation_id)
}

/// Records the turn an operation started (and its thread, when given).
pub fn attach_turn(
    conn: &Connection,
    operation_id: &str,
    turn_id: &str,
    thread_id: Option<&str>,
    now: i64,
) -> Result<Operation, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE codex_operations SET turn_id = ?2, thread_id = COALESCE(?3, thread_id), updated_at = ?4 \
             WHERE operation_id = ?1",
        )?
        .execute(params![operation_id, turn_id, thread_id, now])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "operation",
            id: operation_id.to_string(),
        });
    }
    require(conn, operation_id)
}

/// Stores the final report (`{text, summary, structured, ...}`) and, when given, moves to `status`.
pub fn record_final_report(
    conn: &Connection,
    operation_id: &str,
    report: &Value,
    status: Option<&str>,
    now: i64,
) -> Result<Operation, StoreError> {
    let text = report.to_string();
    let hash = sha256_hex(&text)[..32].to_string();
    let n = conn
        .prepare_cached(
            "UPDATE codex_operations SET final_report_json = ?2, latest_report_hash = ?3, updated_at = ?4 \
             WHERE operation_id = ?1",
        )?
        .execute(params![operation_id, text, hash, now])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "operation",
            id: operation_id.to_string(),
        });
    }
    match status {
        Some(status) => set_status(conn, operation_id, status, now),
        None => require(conn, operation_id),
    }
}

/// A failed attempt before any turn exists: back to `queued` after `backoff` (default
/// `min(60, max(5, 5 * attempt))` s), or `failed` once `attempt_count >= max_attempts`. An operation that has a
/// turn is not restarted: only `last_error` is recorded.
pub fn record_attempt_failure(
    conn: &Connection,
    operation_id: &str,
    error: &Value,
    backoff: Option<Duration>,
    now: i64,
) -> Result<Operation, StoreError> {
    let op = require(conn, operation_id)?;
    let error_text = error.to_string();
    if op.turn_id.is_some() || op.status.is_terminal() || op.status.is_active() {
        conn.prepare_cached("UPDATE codex_operations SET last_error_json = ?2, updated_at = ?3 WHERE operation_id = ?1")?
            .execute(params![operation_id, error_text, now])?;
        return require(conn, operation_id);
    }
    if op.attempt_count >= op.max_attempts {
        conn.prepare_cached(
            "UPDATE codex_operations SET last_error_json = ?2 WHERE operation_id = ?1",
        )?
        .execute(params![operation_id, error_text])?;
        return write_status(conn, &op, "failed", now);
    }
    let delay_ms = match backoff {
        Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
        None => retry_backoff_seconds(op.attempt_count) * 1000,
    };
    conn.prepare_cached(
        "UPDATE codex_operations SET status = 'queued', queue_status = 'queued', \
         queued_reason = 'retry_after_worker_error', last_error_json = ?2, next_attempt_at = ?3, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = ?4 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, error_text, now.saturating_add(delay_ms), now])?;
    require(conn, operation_id)
}

/// Ends a non-terminal operation as `failed` with `error` (see [`Store::fail_operation`]).
pub fn fail_operation(
    conn: &Connection,
    operation_id: &str,
    error: &Value,
    now: i64,
) -> Result<Operation, StoreError> {
    let op = require(conn, operation_id)?;
    if op.status.is_terminal() {
        return Ok(op);
    }
    conn.prepare_cached(
        "UPDATE codex_operations SET last_error_json = ?2 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, error.to_string()])?;
    write_status(conn, &op, "failed", now)
}

/// Ends a non-terminal operation as `to` (a terminal status: `failed` or `orphaned`) on behalf of a repair,
/// with `error` as its last error. Returns the operation as it is afterwards (unchanged when it had ended).
pub fn end_by_repair(
    conn: &Connection,
    operation_id: &str,
    to: &str,
    error: &Value,
    now: i64,
) -> Result<Operation, StoreError> {
    let op = require(conn, operation_id)?;
    // An operation whose app-server exited is terminal but undecided: only a repair may call it orphaned.
    let undecided = op.status.as_str() == "unknown_after_app_server_exit" && to == "orphaned";
    if (op.status.is_terminal() && !undecided) || !is_terminal(to) {
        return Ok(op);
    }
    conn.prepare_cached(
        "UPDATE codex_operations SET last_error_json = ?2 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, error.to_string()])?;
    write_status(conn, &op, to, now)
}
