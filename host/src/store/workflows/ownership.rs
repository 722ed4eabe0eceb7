//! Who drives a workflow: the ones still running, and taking one over from a dead driver.

use rusqlite::{params, Connection, OptionalExtension};

use super::{from_row, Workflow, COLUMNS};
use crate::store::StoreError;

/// Workflows not yet ended that `owner` drives or may take over (no owner, or `dead` owners), oldest first.
pub fn active(conn: &Connection, limit: usize) -> Result<Vec<Workflow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM codex_workflows WHERE completed_at IS NULL ORDER BY created_at LIMIT ?1"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes `me` the driver of a workflow if it is still driven by `expected_owner` and that owner is gone (no
/// owner, or one provably dead on this host); returns whether `me` won.
///
/// A compare-and-set inside the caller's write transaction: the liveness check and the conditional update see
/// the same snapshot, so two processes racing for one orphaned workflow cannot both take it (the loser's
/// `owner_id IS ?` no longer matches). Already owning it counts as winning.
pub fn take_over(
    conn: &Connection,
    workflow_id: &str,
    me: &str,
    expected_owner: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let current: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT owner_id FROM codex_workflows WHERE workflow_id = ?1 AND completed_at IS NULL",
        )?
        .query_row([workflow_id], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Ok(false);
    };
    if current.as_deref() != expected_owner {
        return Ok(false);
    }
    match current.as_deref() {
        Some(owner) if owner == me => return Ok(true),
        Some(owner) if !crate::store::leases::is_owner_dead(conn, owner)? => return Ok(false),
        _ => {}
    }
    let changed = conn
        .prepare_cached(
            "UPDATE codex_workflows SET owner_id = ?2, updated_at = ?4 \
             WHERE workflow_id = ?1 AND owner_id IS ?3 AND completed_at IS NULL",
        )?
        .execute(params![workflow_id, me, expected_owner, now])?;
    Ok(changed == 1)
}
