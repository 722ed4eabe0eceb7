//! Startup recovery (seed §f "Startup recovery"), made exact by the intent journal.
//!
//! For every non-terminal operation whose lease is null, expired or held by a provably dead owner:
//!
//! | operation state | result |
//! |---|---|
//! | has `turn_id` | `running`, leased to the recovering owner, listed in `running` (follow the turn) |
//! | fork with `thread_id` and no message | `completed` |
//! | an unconfirmed `turn/start`, `thread/fork`, `turn/steer` or `review/start` intent | unchanged, leased to the recovering owner, listed in `needs_reconcile`: the call may have been sent, so the dispatcher must look (thread/read) and then [`Store::resolve_intent`] or [`Store::end_unknown_after_exit`]; it is never re-sent blindly |
//! | fork/review with a confirmed intent but no id | `unknown_after_app_server_exit` |
//! | anything else | `queued` (an unconfirmed `thread/start` is marked `abandoned`: at worst an empty thread is left behind) |
//!
//! The seed treats "fork/review attempted" as "status past queued"; with the journal we know whether a call was
//! sent, so a fork that never recorded an intent is simply queued again.

use std::time::Duration;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::Value;

use super::intents::{self, Intent, RECONCILE_METHODS};
use super::leases::dead_among;
use super::operations::{self, operation_from_row, Operation, OP_COLUMNS};
use super::{Store, StoreError};
use crate::domain::operation::OperationKind;
use crate::domain::rules::status::{ACTIVE, STARTABLE};

/// An operation recovery could not decide alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileItem {
    /// The operation (now leased to the recovering owner).
    pub operation_id: String,
    /// Its unconfirmed creating calls.
    pub intents: Vec<Intent>,
}

/// What recovery did, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    /// Ops with a turn: now `running` and leased to us; the dispatcher follows their turns.
    pub running: Vec<String>,
    /// Message-less forks whose thread exists: `completed`.
    pub completed: Vec<String>,
    /// Forks/reviews sent without an id coming back: `unknown_after_app_server_exit`.
    pub unknown: Vec<String>,
    /// Back in the queue.
    pub requeued: Vec<String>,
    /// Maybe-sent creating calls the dispatcher must reconcile before anything else happens to these ops.
    pub needs_reconcile: Vec<ReconcileItem>,
}

fn lease_to(
    conn: &Connection,
    operation_id: &str,
    owner: &str,
    ttl: Duration,
    now: i64,
) -> Result<(), StoreError> {
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4));
    conn.prepare_cached(
        "UPDATE codex_operations SET lease_owner = ?2, lease_expires_at = ?3, last_heartbeat_at = ?4, worker_id = ?2, \
         updated_at = ?4 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, owner, expires, now])?;
    Ok(())
}

/// Runs startup recovery for `owner` (see the module docs); must run inside a write transaction.
pub fn recover(
    conn: &Connection,
    owner: &str,
    ttl: Duration,
    now: i64,
) -> Result<RecoveryReport, StoreError> {
    let mut live: Vec<&str> = STARTABLE.to_vec();
    live.extend(ACTIVE);
    // A queued op nobody holds needs nothing (the next claim takes it), so the queue itself is not read:
    // this runs every few seconds while serving, and a long queue would be loaded whole each time.
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM codex_operations WHERE status IN ({}) \
         AND (lease_owner IS NULL OR lease_owner != ?1) \
         AND NOT (status = 'queued' AND lease_owner IS NULL) ORDER BY created_at",
        super::sql_status_list(&live)
    );
    let ops: Vec<Operation> = conn
        .prepare_cached(&sql)?
        .query_map([owner], operation_from_row)?
        .collect::<Result<_, _>>()?;
    let unexpired = |op: &&Operation| op.lease_expires_at.is_none_or(|expiry| expiry.ms() > now);
    let dead = dead_among(
        conn,
        ops.iter()
            .filter(unexpired)
            .filter_map(|op| op.lease_owner.as_deref()),
    )?;
    let mut report = RecoveryReport::default();
    for op in ops {
        let orphaned = match (&op.lease_owner, op.lease_expires_at) {
            (None, _) => true,
            (Some(_), Some(expiry)) if expiry.ms() <= now => true,
            (Some(holder), _) => dead.contains(holder),
        };
        if !orphaned {
            continue;
        }
        let id = op.operation_id.clone();
        if op.turn_id.is_some() {
            if op.status.is_startable() {
                force_status(conn, &id, "running", now)?;
            }
            lease_to(conn, &id, owner, ttl, now)?;
            report.running.push(id);
            continue;
        }
        if op.operation_type == OperationKind::ForkThread
            && op.thread_id.is_some()
            && !op.has_message
        {
            force_status(conn, &id, "completed", now)?;
            report.completed.push(id);
            continue;
        }
        let all_intents = intents::list_for_operation(conn, &id)?;
        let pending: Vec<Intent> = all_intents
            .iter()
            .filter(|i| i.state == "pending" && RECONCILE_METHODS.contains(&i.method.as_str()))
            .cloned()
            .collect();
        if !pending.is_empty() {
            lease_to(conn, &id, owner, ttl, now)?;
            report.needs_reconcile.push(ReconcileItem {
                operation_id: id,
                intents: pending,
            });
            continue;
        }
        let sent_without_id = matches!(op.operation_type.as_str(), "fork_thread" | "review_start")
            && all_intents.iter().any(|i| {
                matches!(i.method.as_str(), "thread/fork" | "review/start")
                    && i.state == "confirmed"
            });
        if sent_without_id {
            force_status(conn, &id, "unknown_after_app_server_exit", now)?;
            report.unknown.push(id);
            continue;
        }
        conn.prepare_cached(
            "UPDATE codex_intents SET state = 'abandoned', resolved_at = ?2 WHERE operation_id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, now])?;
        conn.prepare_cached(
            "UPDATE codex_operations SET status = 'queued', queue_status = 'queued', queued_reason = 'waiting_for_worker', \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2 WHERE operation_id = ?1",
        )?
        .execute(params![id, now])?;
        report.requeued.push(id);
    }
    Ok(report)
}

/// Recovery's status writes bypass the ordinary transition check (an active op without a turn may go back to
/// the queue), but keep terminal bookkeeping consistent.
fn force_status(
    conn: &Connection,
    operation_id: &str,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    let terminal = crate::domain::rules::status::is_terminal(status);
    let queue_status = crate::domain::rules::status::queue_status_for(status, "queued");
    conn.prepare_cached(
        "UPDATE codex_operations SET status = ?2, queue_status = ?3, queued_reason = NULL, updated_at = ?4, \
         completed_at = CASE WHEN ?5 THEN ?4 ELSE completed_at END, \
         lease_owner = CASE WHEN ?5 THEN NULL ELSE lease_owner END, \
         lease_expires_at = CASE WHEN ?5 THEN NULL ELSE lease_expires_at END WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, status, queue_status, now, terminal])?;
    Ok(())
}

/// Ends an operation whose creating call could not be reconciled: `unknown_after_app_server_exit`, with
/// `evidence` as its last error, and its pending intents marked `unknown`.
pub fn end_unknown_after_exit(
    conn: &Connection,
    operation_id: &str,
    evidence: &Value,
    now: i64,
) -> Result<Operation, StoreError> {
    operations::require(conn, operation_id)?;
    conn.prepare_cached(
        "UPDATE codex_intents SET state = 'unknown', resolved_at = ?2 WHERE operation_id = ?1 AND state = 'pending'",
    )?
    .execute(params![operation_id, now])?;
    conn.prepare_cached(
        "UPDATE codex_operations SET last_error_json = ?2 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, evidence.to_string()])?;
    force_status(conn, operation_id, "unknown_after_app_server_exit", now)?;
    operations::require(conn, operation_id)
}

impl Store {
    /// Startup recovery for `owner` (see [`recovery`](self)); run once after [`Store::register_worker`].
    pub async fn recover_operations(
        &self,
        owner: &str,
        ttl: Duration,
    ) -> Result<RecoveryReport, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| recover(tx, &owner, ttl, crate::time::now_ms()))
            .await
    }

    /// Ends an unreconcilable operation as `unknown_after_app_server_exit` with evidence.
    pub async fn end_unknown_after_exit(
        &self,
        operation_id: &str,
        evidence: Value,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| end_unknown_after_exit(tx, &id, &evidence, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operation::OperationStatus;
    use crate::store::operations::tests::chat;
    use crate::store::test_support::temp_store;
    use crate::store::{ClaimLimits, NewOperation, WorkerInfo};
    use serde_json::json;

    const TTL: Duration = Duration::from_secs(120);

    #[tokio::test]
    async fn recovery_follows_the_table() {
        let (_dir, store) = temp_store();
        let old = WorkerInfo::current(None);
        let old_owner = old.owner_id.clone();
        store.register_worker(old).await.expect("old");
        let wide = ClaimLimits {
            global: 100,
            per_project: 100,
            per_agent: 100,
            per_thread: 100,
            write_per_project: 100,
            allow_cross_config: false,
        };
        let mut ids = Vec::new();
        for (idx, kind) in [
            "start_chat",
            "fork_thread",
            "start_chat",
            "fork_thread",
            "start_chat",
        ]
        .iter()
        .enumerate()
        {
            let mut new = if *kind == "fork_thread" {
                let mut fork = NewOperation::new(
                    "fork_thread",
                    json!({"sourceThreadId": format!("src{idx}")}),
                );
                fork.source_thread_id = Some(format!("src{idx}"));
                fork
            } else {
                chat(
                    &format!(
                        "{idx} {}",
                        "recover me please, this is a long enough prompt"
                    ),
                    None,
                )
            };
            new.project_path_key = format!("/r{idx}");
            let op = store
                .insert_operation(new)
                .await
                .expect("insert")
                .operation()
                .clone();
            store
                .claim_next_operation(&old_owner, TTL, crate::time::now_ms(), wide)
                .await
                .expect("claim")
                .expect("claimed");
            ids.push(op.operation_id);
        }
        // 0: turn started. 1: fork done, no message. 2: turn/start maybe sent. 3: fork id confirmed missing -> we
        // fake a confirmed fork intent without a thread id. 4: nothing sent yet.
        store
            .set_status(&ids[0], OperationStatus::StartingTurn)
            .await
            .expect("s");
        store
            .attach_turn(&ids[0], "turn-0", Some("thr-0"))
            .await
            .expect("turn");
        store
            .attach_thread(&ids[1], "thr-fork")
            .await
            .expect("fork");
        store
            .set_status(&ids[2], OperationStatus::StartingTurn)
            .await
            .expect("s");
        store
            .record_intent(&ids[2], &old_owner, "turn/start", Some("h"), Some(1))
            .await
            .expect("intent");
        let fork_intent = store
            .record_intent(&ids[3], &old_owner, "thread/fork", None, Some(1))
            .await
            .expect("i");
        let fork_id = fork_intent.intent_id.clone();
        store
            .write(move |tx| {
                tx.execute(
                    "UPDATE codex_intents SET state = 'confirmed' WHERE intent_id = ?1",
                    [fork_id],
                )?;
                Ok(())
            })
            .await
            .expect("confirm without id");
        store
            .set_status(&ids[4], OperationStatus::StartingThread)
            .await
            .expect("s");

        let fresh = WorkerInfo::current(None);
        let new_owner = fresh.owner_id.clone();
        store.register_worker(fresh).await.expect("new");
        // Leases of the old (live) owner have not expired: nothing to recover yet.
        let early = store
            .recover_operations(&new_owner, TTL)
            .await
            .expect("recover");
        assert_eq!(early, RecoveryReport::default());
        // After expiry everything is recovered by the table.
        let owner = new_owner.clone();
        let report = store
            .write(move |tx| recover(tx, &owner, TTL, crate::time::now_ms() + 121_000))
            .await
            .expect("recover");
        assert_eq!(report.running, vec![ids[0].clone()]);
        assert_eq!(report.completed, vec![ids[1].clone()]);
        assert_eq!(report.needs_reconcile.len(), 1);
        assert_eq!(report.needs_reconcile[0].operation_id, ids[2]);
        assert_eq!(report.needs_reconcile[0].intents[0].method, "turn/start");
        assert_eq!(report.unknown, vec![ids[3].clone()]);
        assert_eq!(report.requeued, vec![ids[4].clone()]);
        let running = store
            .get_operation(&ids[0])
            .await
            .expect("get")
            .expect("row");
        assert_eq!(
            (running.status.as_str(), running.lease_owner.as_deref()),
            ("running", Some(new_owner.as_str()))
        );
        let maybe_sent = store
            .get_operation(&ids[2])
            .await
            .expect("get")
            .expect("row");
        assert_eq!(maybe_sent.status, "starting_turn", "never requeued blindly");
        assert_eq!(maybe_sent.lease_owner.as_deref(), Some(new_owner.as_str()));
        // The dispatcher could not find the turn: it ends the op with evidence.
        let ended = store
            .end_unknown_after_exit(&ids[2], json!({"reconcile": "thread/read found no turn"}))
            .await
            .expect("end");
        assert_eq!(ended.status, "unknown_after_app_server_exit");
        assert!(store
            .list_unconfirmed_intents(Some(&ids[2]))
            .await
            .expect("list")
            .is_empty());
        let requeued = store
            .get_operation(&ids[4])
            .await
            .expect("get")
            .expect("row");
        assert_eq!(
            (requeued.status.as_str(), requeued.lease_owner.is_none()),
            ("queued", true)
        );
    }

    #[tokio::test]
    async fn confirmed_intents_attach_ids() {
        let (_dir, store) = temp_store();
        let worker = WorkerInfo::current(None);
        let owner = worker.owner_id.clone();
        store.register_worker(worker).await.expect("register");
        let id = store
            .insert_operation(chat(
                "attach ids through the journal, long enough prompt text",
                None,
            ))
            .await
            .expect("insert")
            .operation()
            .operation_id
            .clone();
        let thread = store
            .record_intent(&id, &owner, "thread/start", None, Some(1))
            .await
            .expect("intent");
        assert_eq!(
            store
                .list_unconfirmed_intents(None)
                .await
                .expect("list")
                .len(),
            1
        );
        store
            .confirm_intent(&thread.intent_id, "thr-9")
            .await
            .expect("confirm");
        let turn = store
            .record_intent(&id, &owner, "turn/start", None, Some(1))
            .await
            .expect("intent");
        store
            .confirm_intent(&turn.intent_id, "turn-9")
            .await
            .expect("confirm");
        let op = store.get_operation(&id).await.expect("get").expect("row");
        assert_eq!(
            (op.thread_id.as_deref(), op.turn_id.as_deref()),
            (Some("thr-9"), Some("turn-9"))
        );
        let failed = store
            .record_intent(&id, &owner, "turn/steer", None, None)
            .await
            .expect("intent");
        assert_eq!(
            store
                .fail_intent(&failed.intent_id, "busy")
                .await
                .expect("fail")
                .state,
            "failed"
        );
        assert!(store
            .list_unconfirmed_intents(Some(&id))
            .await
            .expect("list")
            .is_empty());
        assert!(matches!(
            store
                .record_intent(&id, &owner, "thread/read", None, None)
                .await,
            Err(StoreError::InvalidArgument { .. })
        ));
    }
}
