//! The repair audit trail (`codex_repair_runs`) and what `codex_repair_issue` reads and writes: the
//! candidates of an action (stale or orphaned operations, stale pending interactions), the two state changes a
//! repair performs through the store, and the real runs of one loop-guard key.

use rusqlite::{params, Connection};
use serde_json::Value;

use super::operations::{end_by_repair, Operation};
use super::{new_id, Store, StoreError};
use crate::domain::rules::interactions::default_decline_response;

/// Terminal operation statuses (the seed's set); anything else is still live.
pub(super) const TERMINAL: &str =
    "'completed','failed','aborted','cancelled','canceled','interrupted','orphaned',\
    'unknown_after_app_server_exit'";

/// One run of `codex_repair_issue`, dry or not, as audited.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRepairRun {
    /// The canonical action.
    pub action: String,
    /// The action as the caller named it (an alias or the canonical name).
    pub requested_action: String,
    /// sha256 of {category, scope, action, target}.
    pub guard_key: String,
    /// The diagnosis the repair acts on.
    pub diagnosis_id: Option<String>,
    /// Shown only (never counted by the loop guard).
    pub dry_run: bool,
    /// `force=true`.
    pub force: bool,
    /// `planned`, `completed`, `failed`, `refused` or `blocked`.
    pub status: String,
    /// The repair plugin whose plan was used.
    pub plugin: Option<String>,
    /// The plan with each step's verdict.
    pub steps: Value,
    /// State of the targets before.
    pub before: Value,
    /// State of the targets after (predicted on a dry run).
    pub after: Value,
    /// The whole answer.
    pub result: Value,
}

/// A real run the loop guard counts.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedRun {
    /// When it ran (ms).
    pub created_at: i64,
    /// `completed` or `failed`.
    pub status: String,
}

/// Where a repair looks for candidates: the ids the caller gave (all `None`: everywhere).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepairScope {
    /// This operation.
    pub operation_id: Option<String>,
    /// This thread.
    pub thread_id: Option<String>,
    /// This turn.
    pub turn_id: Option<String>,
    /// This workflow.
    pub workflow_id: Option<String>,
}

/// A candidate row: id, status, kind (interactions) and the ms timestamp the staleness is judged on.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Operation or interaction id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// The interaction kind; the operation type for operations.
    pub kind: String,
    /// `updated_at` of an operation, `created_at` of an interaction.
    pub since: i64,
}

/// Most candidates one repair considers.
pub(super) const CANDIDATE_LIMIT: i64 = 200;

/// The `AND ...` clause and parameters narrowing a query to `scope`.
fn scope_clause(scope: &RepairScope, first_param: usize) -> (String, Vec<String>) {
    let mut clause = String::new();
    let mut values = Vec::new();
    for (column, value) in [
        ("operation_id", &scope.operation_id),
        ("thread_id", &scope.thread_id),
        ("turn_id", &scope.turn_id),
        ("workflow_id", &scope.workflow_id),
    ] {
        if let Some(value) = value {
            clause.push_str(&format!(" AND {column} = ?{}", first_param + values.len()));
            values.push(value.clone());
        }
    }
    (clause, values)
}

fn candidates(
    conn: &Connection,
    sql: &str,
    cutoff: i64,
    scope: &RepairScope,
) -> Result<Vec<Candidate>, StoreError> {
    let (clause, values) = scope_clause(scope, 2);
    let sql = sql.replace("{SCOPE}", &clause);
    let mut stmt = conn.prepare(&sql)?;
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&cutoff];
    bound.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
    let rows = stmt.query_map(bound.as_slice(), candidate)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A candidate from a row selecting id, status, kind and the staleness timestamp, in that order.
pub(super) fn candidate(row: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: row.get(0)?,
        status: row.get(1)?,
        kind: row.get(2)?,
        since: row.get(3)?,
    })
}

impl Store {
    /// Live operations in `scope` untouched since before `cutoff` (ms), oldest first.
    pub async fn stale_operations(
        &self,
        scope: RepairScope,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            candidates(
                conn,
                &format!(
                    "SELECT operation_id, status, operation_type, updated_at FROM codex_operations
                     WHERE status NOT IN ({TERMINAL}) AND updated_at < ?1 {{SCOPE}}
                     ORDER BY updated_at LIMIT {CANDIDATE_LIMIT}"
                ),
                cutoff,
                &scope,
            )
        })
        .await
    }

    /// Operations in `scope` an app-server exit left undecided (`unknown_after_app_server_exit`), and live
    /// operations past a turn untouched since before `cutoff`, oldest first.
    pub async fn orphan_candidates(
        &self,
        scope: RepairScope,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            candidates(
                conn,
                &format!(
                    "SELECT operation_id, status, operation_type, updated_at FROM codex_operations
                     WHERE (status = 'unknown_after_app_server_exit'
                            OR (status NOT IN ({TERMINAL}) AND turn_id IS NOT NULL AND updated_at < ?1)) {{SCOPE}}
                     ORDER BY updated_at LIMIT {CANDIDATE_LIMIT}"
                ),
                cutoff,
                &scope,
            )
        })
        .await
    }

    /// Pending interactions in `scope` created before `cutoff` (ms), oldest first.
    pub async fn stale_interactions(
        &self,
        scope: RepairScope,
        cutoff: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |conn| {
            candidates(
                conn,
                &format!(
                    "SELECT interaction_id, status, kind, created_at FROM pending_interactions
                     WHERE status = 'pending' AND created_at < ?1 {{SCOPE}}
                     ORDER BY created_at LIMIT {CANDIDATE_LIMIT}"
                ),
                cutoff,
                &scope,
            )
        })
        .await
    }

    /// Ends a live operation as `to` (`failed` or `orphaned`) on behalf of a repair; see [`end_by_repair`].
    pub async fn end_operation_by_repair(
        &self,
        operation_id: &str,
        to: &'static str,
        error: Value,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| end_by_repair(tx, &id, to, &error, crate::time::now_ms()))
            .await
    }

    /// Expires a pending interaction on behalf of a repair; false when it was no longer pending. The request
    /// is still open in app-server, so the decline the seed's timeout would send is stored with it and queued
    /// for the owner's courier (`delivery_state = 'requested'`): the turn goes on instead of waiting for an
    /// answer nobody will give. The interaction stays `expired` whether or not the decline is delivered.
    pub async fn expire_interaction_by_repair(
        &self,
        interaction_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let (id, reason) = (interaction_id.to_string(), reason.to_string());
        self.write(move |tx| {
            let now = crate::time::now_ms();
            let Some(interaction) = super::interactions::get(tx, &id)? else {
                return Ok(false);
            };
            let response =
                default_decline_response(&interaction.kind, &interaction.available_decisions);
            let changed = tx
                .prepare_cached(
                    "UPDATE pending_interactions SET status = 'expired', response_json = ?3, answered_by = 'repair',
                         answered_at = ?2, delivery_state = 'requested', updated_at = ?2
                     WHERE interaction_id = ?1 AND status = 'pending'",
                )?
                .execute(params![id, now, response.to_string()])?;
            if changed > 0 {
                tx.prepare_cached(
                    "INSERT INTO pending_interaction_events (interaction_id, event, details_json, created_at)
                     VALUES (?1, 'expired', ?2, ?3)",
                )?
                .execute(params![
                    id,
                    serde_json::json!({"by": "repair", "reason": reason, "response": response})
                        .to_string(),
                    now
                ])?;
            }
            Ok(changed > 0)
        })
        .await
    }

    /// Audits one repair run and returns its id (`repair_<32 hex>`).
    pub async fn record_repair_run(&self, run: NewRepairRun) -> Result<String, StoreError> {
        let repair_run_id = new_id("repair");
        self.insert_repair_run(repair_run_id.clone(), run).await?;
        Ok(repair_run_id)
    }

    /// Audits one repair run under an id chosen beforehand (the answer names it before it is stored).
    pub async fn insert_repair_run(
        &self,
        repair_run_id: String,
        run: NewRepairRun,
    ) -> Result<(), StoreError> {
        let now = crate::time::now_ms();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO codex_repair_runs (repair_run_id, action, requested_action, guard_key, diagnosis_id,
                     dry_run, force, status, plugin, steps_json, before_json, after_json, result_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                repair_run_id,
                run.action,
                run.requested_action,
                run.guard_key,
                run.diagnosis_id,
                run.dry_run,
                run.force,
                run.status,
                run.plugin,
                run.steps.to_string(),
                run.before.to_string(),
                run.after.to_string(),
                run.result.to_string(),
                now
            ])?;
            Ok(())
        })
        .await
    }

    /// The real runs (not dry, performed: `completed` or `failed`) of `guard_key` since `since` (ms), newest
    /// first: what the loop guard counts.
    pub async fn counted_repair_runs(
        &self,
        guard_key: &str,
        since: i64,
    ) -> Result<Vec<CountedRun>, StoreError> {
        let key = guard_key.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT created_at, status FROM codex_repair_runs
                 WHERE guard_key = ?1 AND dry_run = 0 AND status IN ('completed', 'failed') AND created_at >= ?2
                 ORDER BY created_at DESC",
            )?;
            let rows = stmt.query_map(params![key, since], |row| {
                Ok(CountedRun {
                    created_at: row.get(0)?,
                    status: row.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use serde_json::json;

    fn run(key: &str, dry_run: bool, status: &str) -> NewRepairRun {
        NewRepairRun {
            action: "recover_stale_operations".into(),
            requested_action: "recover_stale_operations".into(),
            guard_key: key.into(),
            diagnosis_id: None,
            dry_run,
            force: false,
            status: status.into(),
            plugin: Some("default-repairs".into()),
            steps: json!([]),
            before: json!({}),
            after: json!({}),
            result: json!({}),
        }
    }

    #[tokio::test]
    async fn only_real_performed_runs_are_counted() {
        let (_dir, store) = temp_store();
        for (dry, status) in [
            (true, "planned"),
            (false, "completed"),
            (false, "refused"),
            (false, "failed"),
        ] {
            let id = store
                .record_repair_run(run("k", dry, status))
                .await
                .expect("record");
            assert!(id.starts_with("repair_"));
        }
        store
            .record_repair_run(run("other", false, "completed"))
            .await
            .expect("record");
        let counted = store.counted_repair_runs("k", 0).await.expect("count");
        let statuses: Vec<&str> = counted.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses.len(), 2);
        assert!(statuses.contains(&"completed") && statuses.contains(&"failed"));
    }
}
