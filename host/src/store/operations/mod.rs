//! Operations (`codex_operations`): the durable unit of work, with its queue fields, idempotent insert, status
//! transitions, reports and listings.
//!
//! The seed keeps queue fields in a side table (`codex_operation_scheduling`); here they are columns of the
//! operation row, so a claim or a status read touches one row and one index.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::{invalid, new_id, submissions, Store, StoreError, Timestamp};
use crate::domain::operation::{OperationKind, OperationStatus};
use crate::domain::rules::canonical::{canonical_json, canonicalize, differing_fields};
use crate::domain::rules::dedup::{guard_applies, DedupProbe};
use crate::domain::rules::prompt::{
    basis_text, normalize_prompt, prompt_hash, sha256_hex, BasisInput,
};
/// A policy plugin's narrowing of an operation's runtime policy, as recorded in its `runtimePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNarrowing {
    /// The sandbox Codex is given now (`None`: unchanged).
    pub sandbox: Option<String>,
    /// The approval policy Codex is given now (`None`: unchanged).
    pub approval_policy: Option<String>,
    /// Why, for `adjustmentReason` (names the plugins and rules).
    pub reason: String,
    /// The audit recorded as `runtimePolicy.policyNarrowing`: `rules` and the narrowed fields.
    pub audit: Value,
}

mod insert;
mod queries;
mod row;
mod transitions;

pub use insert::{insert, insert_prepared, prepare, PreparedInsert};
pub use queries::*;
pub(crate) use row::{operation_from_row, priority_rank, OP_COLUMNS};
pub use transitions::*;

use crate::domain::rules::status::{
    self, is_active, is_reopen_allowed, is_startable, is_terminal, is_transition_allowed,
    queue_status_for, retry_backoff_seconds, DEDUP_TYPES,
};

/// Up to this many messages plus progress events, a snapshot is a point read (see [`Store::read_point`]): the
/// defaults of a status poll are 10 + 10.
pub const POINT_SNAPSHOT_ROWS: usize = 64;

/// One operation as stored. Serialises with the seed's camelCase names; paths and the raw request stay out of
/// the JSON (use [`Operation::request_summary`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `op_<32 hex>`.
    pub operation_id: String,
    /// The idempotency key (given, or `auto:<hash>:<uuid8>`).
    pub client_request_id: String,
    /// start_chat, send_message, execute_plan, steer_turn, fork_thread or review_start.
    pub operation_type: OperationKind,
    /// Current status (seed §c).
    pub status: OperationStatus,
    /// Same as `status` (the seed's `phase = status`).
    pub phase: OperationStatus,
    /// Resolved project id.
    pub project_id: Option<String>,
    /// Canonical cwd key, the dedup scope and the per-project slot key.
    #[serde(skip)]
    pub project_path_key: String,
    /// Working directory.
    #[serde(skip)]
    pub cwd: Option<String>,
    /// Alias of `thread_id`.
    pub chat_id: Option<String>,
    /// The thread, once known.
    pub thread_id: Option<String>,
    /// For forks: the thread forked from.
    pub source_thread_id: Option<String>,
    /// For steers: the turn to land in.
    pub expected_turn_id: Option<String>,
    /// The turn, once started.
    pub turn_id: Option<String>,
    /// Owning workflow.
    pub workflow_id: Option<String>,
    /// Submitting agent.
    pub agent_id: Option<String>,
    /// Whether the request carries a message (a message-less fork completes without a turn).
    #[serde(skip)]
    pub has_message: bool,
    /// Whether the operation counts against concurrency slots (steer and message-less fork do not).
    #[serde(skip)]
    pub takes_slot: bool,
    /// low, normal or high.
    pub priority: String,
    /// light, normal or heavy.
    pub estimated_cost_class: String,
    /// Write-scope keys.
    pub resource_keys: Vec<String>,
    /// queued, scheduled, running, or the terminal status.
    pub queue_status: String,
    /// Why it still waits (`global_slot_limit`, `retry_after_worker_error`, ...).
    pub queued_reason: Option<String>,
    /// Attempts started so far.
    pub attempt_count: i64,
    /// Attempts allowed before failing.
    pub max_attempts: i64,
    /// Not claimable before this instant.
    pub next_attempt_at: Timestamp,
    /// The last error recorded, as given.
    pub last_error: Option<Value>,
    /// Lease holder.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    pub lease_expires_at: Option<Timestamp>,
    /// Last heartbeat of the lease holder for this row.
    pub last_heartbeat_at: Option<Timestamp>,
    /// The worker that last claimed it.
    pub worker_id: Option<String>,
    /// Start-call results (ids returned by app-server, etc.).
    pub result: Option<Value>,
    /// The final report, once recorded.
    pub final_report: Option<Value>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// First claim.
    pub started_at: Option<Timestamp>,
    /// When it became terminal.
    pub completed_at: Option<Timestamp>,
    /// The canonical request as submitted (may contain prompts and paths: never shown raw).
    #[serde(skip)]
    pub request: Value,
    /// sha256 of the canonical request JSON.
    #[serde(skip)]
    pub request_fingerprint: String,
    /// Config fingerprint of the submitting process.
    #[serde(skip)]
    pub submitter_config_fingerprint: Option<String>,
}

/// Request keys whose values are shown as is in the summary; everything else is hashed.
const SUMMARY_PLAIN_KEYS: [&str; 16] = [
    "operationType",
    "priority",
    "estimatedCostClass",
    "threadMode",
    "dedupPolicy",
    "collaborationMode",
    "sandbox",
    "approvalPolicy",
    "model",
    "projectId",
    "threadId",
    "sourceThreadId",
    "expectedTurnId",
    "workflowId",
    "agentId",
    "ephemeral",
];

impl Operation {
    /// The request with prompts, paths, schemas and items replaced by `{sha256, chars}` (the seed's hashes-only
    /// `requestSummary`).
    pub fn request_summary(&self) -> Value {
        let Value::Object(map) = &self.request else {
            return json!({});
        };
        let mut out = serde_json::Map::new();
        for (key, value) in map {
            let shown = match value {
                Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
                Value::String(text) if SUMMARY_PLAIN_KEYS.contains(&key.as_str()) => {
                    Value::String(text.clone())
                }
                Value::String(text) => {
                    json!({"sha256": &sha256_hex(text)[..16], "chars": text.chars().count()})
                }
                Value::Array(items) if items.is_empty() => json!([]),
                Value::Array(items) => {
                    json!({"sha256": &sha256_hex(canonical_json(value))[..16], "count": items.len()})
                }
                Value::Object(_) => json!({"sha256": &sha256_hex(canonical_json(value))[..16]}),
            };
            out.insert(key.clone(), shown);
        }
        Value::Object(out)
    }

    /// `none`, `expired`, `owned_by_this_worker` or `owned_by_other_worker`.
    pub fn lease_state(&self, owner: &str, now_ms: i64) -> &'static str {
        match (&self.lease_owner, self.lease_expires_at) {
            (None, _) => "none",
            (Some(_), Some(expiry)) if expiry.ms() <= now_ms => "expired",
            (Some(holder), _) if holder == owner => "owned_by_this_worker",
            _ => "owned_by_other_worker",
        }
    }

    /// The seed's `nextRecommendedAction` for this operation.
    pub fn next_recommended_action(&self) -> &'static str {
        status::next_recommended_action(
            self.status.as_str(),
            self.operation_type.as_str(),
            self.turn_id.is_some(),
            self.queued_reason.as_deref(),
        )
    }

    /// The seed's `recommendedPollAfterSeconds`.
    pub fn recommended_poll_after_seconds(&self) -> u64 {
        status::recommended_poll_after_seconds(self.status.as_str())
    }

    /// True when no further change is expected (except the reconcile rule).
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// What the caller wants stored; build it with [`NewOperation::new`] and set the fields that apply.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    /// One of the operation types.
    pub operation_type: String,
    /// Idempotency key; generated when absent.
    pub client_request_id: Option<String>,
    /// The normalised request (what idempotency compares and what the dispatcher executes).
    pub request: Value,
    /// Resolved project id.
    pub project_id: Option<String>,
    /// Canonical cwd key (the dedup scope).
    pub project_path_key: String,
    /// Working directory.
    pub cwd: Option<String>,
    /// Target thread.
    pub thread_id: Option<String>,
    /// Thread to fork.
    pub source_thread_id: Option<String>,
    /// Turn a steer must land in.
    pub expected_turn_id: Option<String>,
    /// Owning workflow.
    pub workflow_id: Option<String>,
    /// Submitting agent.
    pub agent_id: Option<String>,
    /// low, normal or high.
    pub priority: String,
    /// light, normal or heavy.
    pub estimated_cost_class: String,
    /// Write-scope keys.
    pub resource_keys: Vec<String>,
    /// idempotency_only, active_prompt_guard or allow_parallel_with_resource_keys.
    pub dedup_policy: String,
    /// The caller overrides soft guards (skips the duplicate-prompt guard).
    pub force: bool,
    /// The prompt.
    pub message: Option<String>,
    /// execute_plan: the latest completed plan, appended to the dedup basis.
    pub latest_plan: Option<String>,
    /// Hash of the output schema, when present.
    pub output_schema_hash: Option<String>,
    /// Hash of the input items, when present (also disables the similarity pass).
    pub input_items_hash: Option<String>,
    /// Attempts before failing (seed default 3).
    pub max_attempts: i64,
    /// Config fingerprint of the submitting process.
    pub config_fingerprint: Option<String>,
}

impl NewOperation {
    /// A request of `operation_type` with the seed's defaults for everything else.
    pub fn new(operation_type: &str, request: Value) -> NewOperation {
        NewOperation {
            operation_type: operation_type.to_string(),
            client_request_id: None,
            request,
            project_id: None,
            project_path_key: String::new(),
            cwd: None,
            thread_id: None,
            source_thread_id: None,
            expected_turn_id: None,
            workflow_id: None,
            agent_id: None,
            priority: "normal".to_string(),
            estimated_cost_class: "normal".to_string(),
            resource_keys: Vec::new(),
            dedup_policy: "active_prompt_guard".to_string(),
            force: false,
            message: None,
            latest_plan: None,
            output_schema_hash: None,
            input_items_hash: None,
            max_attempts: status::DEFAULT_MAX_ATTEMPTS,
            config_fingerprint: None,
        }
    }
}

/// What [`Store::insert_operation`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum InsertOutcome {
    /// A new operation was committed.
    Created {
        /// The new row.
        operation: Operation,
        /// The prompt submission recorded with it, when the type has a prompt.
        submission_id: Option<String>,
        /// Set when a `start_chat` with `allow_historical_continuation` became a `send_message` on the thread
        /// of this earlier, completed operation.
        continued_from: Option<String>,
    },
    /// `client_request_id` already named an operation with the same request.
    Existing {
        /// The stored row.
        operation: Operation,
        /// Always true.
        idempotent: bool,
    },
}

impl InsertOutcome {
    /// The operation, created or existing.
    pub fn operation(&self) -> &Operation {
        match self {
            InsertOutcome::Created { operation, .. }
            | InsertOutcome::Existing { operation, .. } => operation,
        }
    }
}

/// What the health summary shows of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCounts {
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// All operations.
    pub operations: i64,
    /// Operations not yet terminal.
    pub active_operations: i64,
    /// Interactions waiting for an answer.
    pub pending_interactions: i64,
}

/// Filters for [`Store::list_operations`]; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// Any of these statuses.
    pub statuses: Vec<String>,
    /// This queue status.
    pub queue_status: Option<String>,
    /// This thread.
    pub thread_id: Option<String>,
    /// This turn.
    pub turn_id: Option<String>,
    /// This workflow.
    pub workflow_id: Option<String>,
    /// This agent.
    pub agent_id: Option<String>,
}

/// Counts of non-terminal operations for the queue view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueCounts {
    /// Non-terminal operations by status.
    pub by_status: BTreeMap<String, i64>,
    /// Startable operations by queue status (queued, scheduled).
    pub by_queue_status: BTreeMap<String, i64>,
    /// Startable operations by queued reason (`none` when unset).
    pub by_queued_reason: BTreeMap<String, i64>,
}

impl Store {
    /// Idempotent, dedup-guarded insert in one transaction, committed before it returns.
    ///
    /// - A known `client_request_id` with the same canonical request returns `Existing{idempotent: true}`; with a
    ///   different request it fails with [`StoreError::IdempotencyKeyReused`] naming the differing fields.
    /// - Otherwise the active duplicate-prompt guard runs (start_chat, send_message, execute_plan) and may fail
    ///   with [`StoreError::DuplicatePromptActive`].
    /// - Otherwise the operation (status `queued`) and its prompt submission are inserted.
    pub async fn insert_operation(&self, new: NewOperation) -> Result<InsertOutcome, StoreError> {
        self.write_point_prepared(
            move |snapshot| {
                let prepared = prepare(Some(snapshot), &new);
                (new, prepared)
            },
            |tx, (new, prepared)| insert_prepared(tx, &new, prepared?, crate::time::now_ms()),
        )
        .await
    }

    /// One operation by id.
    pub async fn get_operation(&self, operation_id: &str) -> Result<Option<Operation>, StoreError> {
        self.read_point(|c| get(c, operation_id))
    }

    /// An operation with its turn, latest messages and progress, and pending interactions, in one snapshot
    /// (a point read on the calling thread when it asks for at most [`POINT_SNAPSHOT_ROWS`] messages and events).
    pub async fn operation_snapshot(
        &self,
        operation_id: &str,
        n_messages: usize,
        n_events: usize,
    ) -> Result<Option<OperationSnapshot>, StoreError> {
        if n_messages.saturating_add(n_events) <= POINT_SNAPSHOT_ROWS {
            return self.read_point(|c| snapshot(c, operation_id, n_messages, n_events));
        }
        let id = operation_id.to_string();
        self.read(move |c| snapshot(c, &id, n_messages, n_events))
            .await
    }

    /// Operations matching `filter`, most recently updated first, at most `limit`.
    pub async fn list_operations(
        &self,
        filter: OperationFilter,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        self.read(move |c| list(c, &filter, limit)).await
    }

    /// Counts of non-terminal operations by status, queue status and queued reason.
    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        self.read(queue_counts).await
    }

    /// Status change with the allowed-transition check.
    pub async fn set_status(
        &self,
        operation_id: &str,
        status: OperationStatus,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| set_status(tx, &id, status.as_str(), crate::time::now_ms()))
            .await
    }

    /// See [`cancel_if_queued`].
    pub async fn cancel_queued_operation(&self, operation_id: &str) -> Result<bool, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| cancel_if_queued(tx, &id, crate::time::now_ms()))
            .await
    }

    /// The reconcile rule: reopen a terminal operation whose turn is not trusted-terminal.
    pub async fn reopen_operation(&self, operation_id: &str) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| reopen(tx, &id, crate::time::now_ms()))
            .await
    }

    /// Records the operation's thread.
    pub async fn attach_thread(
        &self,
        operation_id: &str,
        thread_id: &str,
    ) -> Result<Operation, StoreError> {
        let (id, thread) = (operation_id.to_string(), thread_id.to_string());
        self.write(move |tx| attach_thread(tx, &id, &thread, crate::time::now_ms()))
            .await
    }

    /// Records what a policy plugin narrowed the operation's sandbox and approval policy to.
    pub async fn record_policy_narrowing(
        &self,
        operation_id: &str,
        narrowing: PolicyNarrowing,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| record_policy_narrowing(tx, &id, &narrowing, crate::time::now_ms()))
            .await
    }

    /// Records the operation's turn (and thread).
    pub async fn attach_turn(
        &self,
        operation_id: &str,
        turn_id: &str,
        thread_id: Option<&str>,
    ) -> Result<Operation, StoreError> {
        let (id, turn, thread) = (
            operation_id.to_string(),
            turn_id.to_string(),
            thread_id.map(str::to_string),
        );
        self.write(move |tx| attach_turn(tx, &id, &turn, thread.as_deref(), crate::time::now_ms()))
            .await
    }

    /// Stores the final report and optionally the final status.
    pub async fn record_final_report(
        &self,
        operation_id: &str,
        report: Value,
        status: Option<&str>,
    ) -> Result<Operation, StoreError> {
        let (id, status) = (operation_id.to_string(), status.map(str::to_string));
        self.write(move |tx| {
            record_final_report(tx, &id, &report, status.as_deref(), crate::time::now_ms())
        })
        .await
    }

    /// Counts for the health summary, read in one snapshot: schema version, operations, non-terminal
    /// operations, pending interactions.
    pub async fn health_counts(&self) -> Result<HealthCounts, StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let count = |sql: &str| -> Result<i64, StoreError> {
                Ok(tx.prepare_cached(sql)?.query_row([], |r| r.get(0))?)
            };
            let terminal = super::sql_status_list(&status::TERMINAL);
            let counts = HealthCounts {
                schema_version: super::schema::current_version(&tx)?,
                operations: count("SELECT COUNT(*) FROM codex_operations")?,
                active_operations: count(&format!(
                    "SELECT COUNT(*) FROM codex_operations WHERE status NOT IN ({terminal})"
                ))?,
                pending_interactions: count(
                    "SELECT COUNT(*) FROM pending_interactions WHERE status = 'pending'",
                )?,
            };
            tx.finish()?;
            Ok(counts)
        })
        .await
    }

    /// Interactions waiting for an answer, across every process sharing the database.
    pub async fn pending_interaction_count(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM pending_interactions WHERE status = 'pending'",
                )?
                .query_row([], |r| r.get(0))?)
        })
        .await
    }

    /// One operation that must exist.
    pub async fn require_operation(&self, operation_id: &str) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.read(move |c| require(c, &id)).await
    }

    /// Ends a non-terminal operation as `failed` with `error` as its last error (a no-op when it already
    /// ended).
    pub async fn fail_operation(
        &self,
        operation_id: &str,
        error: Value,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| fail_operation(tx, &id, &error, crate::time::now_ms()))
            .await
    }

    /// Finishes a non-terminal operation from its turn: stores `report` and moves to `status`. Returns
    /// `None` when the operation had already ended (the report of the first finisher stands).
    pub async fn finish_operation(
        &self,
        operation_id: &str,
        report: Value,
        status: &str,
    ) -> Result<Option<Operation>, StoreError> {
        let (id, status) = (operation_id.to_string(), status.to_string());
        self.write(move |tx| {
            let op = require(tx, &id)?;
            if op.status.is_terminal() {
                return Ok(None);
            }
            let now = crate::time::now_ms();
            record_final_report(tx, &id, &report, None, now)?;
            let op = require(tx, &id)?;
            write_status(tx, &op, &status, now).map(Some)
        })
        .await
    }

    /// A failed attempt before a turn exists: requeue with backoff or fail after `max_attempts`.
    pub async fn record_attempt_failure(
        &self,
        operation_id: &str,
        error: Value,
        backoff: Option<Duration>,
    ) -> Result<Operation, StoreError> {
        let id = operation_id.to_string();
        self.write(move |tx| {
            record_attempt_failure(tx, &id, &error, backoff, crate::time::now_ms())
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use rusqlite::params;

    /// A start_chat request in scope `/p` with `message`.
    pub(crate) fn chat(message: &str, key: Option<&str>) -> NewOperation {
        let mut new = NewOperation::new(
            "start_chat",
            json!({"operationType": "start_chat", "message": message, "cwd": "/p", "priority": "normal"}),
        );
        new.message = Some(message.to_string());
        new.project_path_key = "/p".to_string();
        new.client_request_id = key.map(str::to_string);
        new
    }

    const PROMPT: &str = "Please refactor the storage layer to use WAL mode and add tests";

    #[tokio::test]
    async fn inserted_rows_read_back_equal_what_insert_returns() {
        // `insert` builds the operation it returns from what it bound; every kind of row must read back equal.
        let (_dir, store) = temp_store();
        let mut variants = vec![chat("read me back", Some("key-1"))];
        let mut rich = chat("a richer row to read back", None);
        rich.project_id = Some("proj_1".to_string());
        rich.cwd = Some("/p".to_string());
        rich.agent_id = Some("agent-7".to_string());
        rich.workflow_id = Some("wf_1".to_string());
        rich.priority = "high".to_string();
        rich.estimated_cost_class = "heavy".to_string();
        rich.resource_keys = vec!["src/a.rs".to_string(), "docs".to_string()];
        rich.max_attempts = 5;
        rich.config_fingerprint = Some("cfg".to_string());
        rich.request["nested"] = json!({"b": [1, 2.5, null], "a": true});
        variants.push(rich);
        let mut steer = NewOperation::new(
            "steer_turn",
            json!({"operationType": "steer_turn", "message": "also this"}),
        );
        steer.message = Some("also this".to_string());
        steer.thread_id = Some("thr-1".to_string());
        steer.expected_turn_id = Some("turn-1".to_string());
        steer.project_path_key = "/q".to_string();
        variants.push(steer);
        let mut fork = NewOperation::new("fork_thread", json!({"operationType": "fork_thread"}));
        fork.source_thread_id = Some("thr-2".to_string());
        fork.priority = "low".to_string();
        fork.project_path_key = "/r".to_string();
        variants.push(fork);
        for new in variants {
            let inserted = store
                .insert_operation(new)
                .await
                .expect("insert")
                .operation()
                .clone();
            let read = store
                .get_operation(&inserted.operation_id)
                .await
                .expect("read")
                .expect("row");
            assert_eq!(inserted, read);
        }
    }

    #[tokio::test]
    async fn only_an_unclaimed_queued_operation_is_cancelled() {
        let (_dir, store) = temp_store();
        let id = match store
            .insert_operation(chat("cancel me", None))
            .await
            .expect("insert")
        {
            InsertOutcome::Created { operation, .. } => operation.operation_id,
            other => panic!("{other:?}"),
        };
        assert!(store.cancel_queued_operation(&id).await.expect("cancel"));
        let op = store.get_operation(&id).await.expect("read").expect("op");
        assert_eq!(op.status, OperationStatus::Cancelled);
        assert!(op.is_terminal());
        // Already ended: nothing to cancel.
        assert!(!store.cancel_queued_operation(&id).await.expect("again"));
    }

    #[tokio::test]
    async fn historical_continuation_turns_a_matching_start_chat_into_send_message() {
        let (_dir, store) = temp_store();
        let continuing = |message: &str| {
            let mut new = chat(message, None);
            new.request["threadMode"] = json!("auto");
            new.request["allowHistoricalContinuation"] = json!(true);
            new
        };
        let first = store
            .insert_operation(continuing(PROMPT))
            .await
            .expect("insert");
        let first_id = first.operation().operation_id.clone();
        // Still active: the guard refuses, it does not continue.
        assert!(matches!(
            store.insert_operation(continuing(PROMPT)).await,
            Err(StoreError::DuplicatePromptActive(_))
        ));
        store
            .attach_thread(&first_id, "thr-1")
            .await
            .expect("thread");
        store
            .set_status(&first_id, OperationStatus::Completed)
            .await
            .expect("completed");

        let second = store
            .insert_operation(continuing(PROMPT))
            .await
            .expect("continue");
        let InsertOutcome::Created {
            operation,
            continued_from,
            ..
        } = second
        else {
            panic!("expected a new operation");
        };
        assert_eq!(continued_from.as_deref(), Some(first_id.as_str()));
        assert_eq!(operation.operation_type, OperationKind::SendMessage);
        assert_eq!(operation.thread_id.as_deref(), Some("thr-1"));
    }

    #[tokio::test]
    async fn idempotent_insert_returns_the_same_operation() {
        let (_dir, store) = temp_store();
        let first = store
            .insert_operation(chat(PROMPT, Some("k1")))
            .await
            .expect("insert");
        let InsertOutcome::Created {
            operation,
            submission_id,
            ..
        } = &first
        else {
            panic!("created")
        };
        assert!(operation.operation_id.starts_with("op_") && operation.operation_id.len() == 35);
        assert!(submission_id.is_some());
        assert_eq!(operation.status, "queued");
        // Same key, same request with keys in another order: the same operation, not a duplicate error.
        let mut again = chat(PROMPT, Some("k1"));
        again.request = json!({"priority": "normal", "cwd": "/p", "message": PROMPT, "operationType": "start_chat"});
        match store.insert_operation(again).await.expect("again") {
            InsertOutcome::Existing {
                operation: existing,
                idempotent,
            } => {
                assert!(idempotent);
                assert_eq!(existing.operation_id, operation.operation_id);
            }
            other => panic!("expected Existing, got {other:?}"),
        }
        // Serialises with the seed's names and ISO timestamps, without paths or the raw request.
        let json = serde_json::to_value(operation).expect("json");
        assert_eq!(json["operationId"], operation.operation_id.as_str());
        assert_eq!(json["clientRequestId"], "k1");
        assert!(json["nextAttemptAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert!(json.get("cwd").is_none() && json.get("request").is_none());
        let summary = operation.request_summary();
        assert_eq!(summary["operationType"], "start_chat");
        assert!(summary["message"]["sha256"].is_string());
        assert!(!summary.to_string().contains("storage layer"));
    }

    #[tokio::test]
    async fn differing_payload_names_the_fields() {
        let (_dir, store) = temp_store();
        store
            .insert_operation(chat(PROMPT, Some("k2")))
            .await
            .expect("insert");
        let mut other = chat("something else entirely", Some("k2"));
        other.request["priority"] = json!("high");
        match store.insert_operation(other).await {
            Err(StoreError::IdempotencyKeyReused {
                differing_fields,
                operation_id,
            }) => {
                assert_eq!(
                    differing_fields,
                    vec!["message".to_string(), "priority".to_string()]
                );
                assert!(operation_id.starts_with("op_"));
            }
            other => panic!("expected IdempotencyKeyReused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn duplicate_guard_blocks_active_and_ignores_completed_and_disjoint() {
        let (_dir, store) = temp_store();
        let first = store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("first");
        let first_id = first.operation().operation_id.clone();
        // A similar prompt (ratio 0.96) while the first is queued: refused with the seed's details.
        let near = "Please refactor the storage layer to use WAL mode and add unit tests";
        match store.insert_operation(chat(near, None)).await {
            Err(StoreError::DuplicatePromptActive(found)) => {
                assert_eq!(found.existing_operation_id, first_id);
                assert_eq!(found.existing_status, "queued");
                assert!(found.similarity > 0.95 && found.similarity < 1.0);
                assert_eq!(found.dedup_decision, "blocked_active_duplicate");
            }
            other => panic!("expected DuplicatePromptActive, got {other:?}"),
        }
        // idempotency_only skips the guard; a different scope is not compared.
        let mut skip = chat(near, None);
        skip.dedup_policy = "idempotency_only".to_string();
        let skipped = store
            .insert_operation(skip)
            .await
            .expect("idempotency_only");
        store
            .set_status(
                &skipped.operation().operation_id,
                OperationStatus::Cancelled,
            )
            .await
            .expect("cancel");
        let mut elsewhere = chat(near, None);
        elsewhere.project_path_key = "/q".to_string();
        store
            .insert_operation(elsewhere)
            .await
            .expect("other scope");
        // Disjoint resource keys on both sides: allowed in parallel.
        let mut keyed_first = chat(
            "Write the migration guide for the storage layer and publish it",
            None,
        );
        keyed_first.resource_keys = vec!["docs".to_string()];
        store.insert_operation(keyed_first).await.expect("keyed");
        let mut keyed_second = chat(
            "Write the migration guide for the storage layer and publish it",
            None,
        );
        keyed_second.resource_keys = vec!["db".to_string()];
        store
            .insert_operation(keyed_second)
            .await
            .expect("disjoint keys");
        // Once the first completes, the same prompt is accepted again.
        store
            .set_status(&first_id, OperationStatus::Completed)
            .await
            .expect("complete");
        store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("after completion");
    }

    #[tokio::test]
    async fn duplicate_guard_uses_turn_status_and_the_recent_window() {
        let (_dir, store) = temp_store();
        let near = "Please refactor the storage layer to use WAL mode and add unit tests";
        // The operation says completed but its turn still runs: the turn wins, the prompt is live.
        let first = store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("insert");
        let id = first.operation().operation_id.clone();
        store
            .attach_turn(&id, "turn-live", Some("thr"))
            .await
            .expect("turn");
        store
            .upsert_turn(crate::store::TurnUpdate {
                turn_id: "turn-live".into(),
                thread_id: "thr".into(),
                status: "running".into(),
                ..Default::default()
            })
            .await
            .expect("turn row");
        store
            .set_status(&id, OperationStatus::Completed)
            .await
            .expect("premature terminal");
        assert!(matches!(
            store.insert_operation(chat(near, None)).await,
            Err(StoreError::DuplicatePromptActive(_))
        ));
        // Once the turn is terminal the prompt is no longer live.
        store
            .upsert_turn(crate::store::TurnUpdate {
                turn_id: "turn-live".into(),
                thread_id: "thr".into(),
                status: "completed".into(),
                terminal_source: Some("app_server_event".into()),
                ..Default::default()
            })
            .await
            .expect("turn done");
        let live = store
            .insert_operation(chat(near, None))
            .await
            .expect("allowed")
            .operation()
            .clone();
        // 200 newer submissions push it out of the similarity window, but not out of the same-hash pass.
        for idx in 0..200 {
            let mut filler = chat(&format!("filler prompt number {idx}"), None);
            filler.dedup_policy = "idempotency_only".into();
            store.insert_operation(filler).await.expect("filler");
        }
        assert_eq!(live.status, "queued");
        store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("similar but outside the window");
        assert!(matches!(
            store.insert_operation(chat(&near.to_uppercase(), None)).await,
            Err(StoreError::DuplicatePromptActive(found)) if found.similarity == 1.0
        ));
    }

    #[tokio::test]
    async fn duplicate_guard_reads_the_window_when_a_scope_has_a_long_queue() {
        // More live rows than the guard scans (a long queue in one project): it reads the window and the same-hash
        // rows instead, with the same answers.
        let (_dir, store) = temp_store();
        let near = "Please refactor the storage layer to use WAL mode and add unit tests";
        let old = store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("insert")
            .operation()
            .clone();
        for idx in 0..=crate::store::submissions::LIVE_SCAN_LIMIT {
            let mut filler = chat(&format!("filler prompt number {idx}"), None);
            filler.dedup_policy = "idempotency_only".into();
            store.insert_operation(filler).await.expect("filler");
        }
        // Outside the window: similar is allowed, identical is still refused.
        let similar = store
            .insert_operation(chat(near, None))
            .await
            .expect("similar but outside the window")
            .operation()
            .clone();
        assert!(matches!(
            store.insert_operation(chat(&PROMPT.to_uppercase(), None)).await,
            Err(StoreError::DuplicatePromptActive(found))
                if found.similarity == 1.0 && found.existing_operation_id == old.operation_id
        ));
        // Inside the window: the similar prompt just queued is found by similarity.
        let outcome = store
            .insert_operation(chat(&format!("{near} now"), None))
            .await;
        assert!(
            matches!(&outcome, Err(StoreError::DuplicatePromptActive(found))
                if found.existing_operation_id == similar.operation_id && found.similarity < 1.0),
            "{outcome:?}"
        );
        // A row that is no longer live is not a candidate, whichever way the rows are read.
        store
            .set_status(&similar.operation_id, OperationStatus::Cancelled)
            .await
            .expect("cancel");
        store
            .insert_operation(chat(&format!("{near} now"), None))
            .await
            .expect("the similar one is no longer live");
    }

    #[tokio::test]
    async fn duplicate_guard_sees_what_another_process_wrote_after_it_last_looked() {
        // Two stores on one file: two writer threads, so two caches of submitted prompts, as two processes have.
        let (dir, first) = temp_store();
        let second = Store::open(&dir.path().join("state.sqlite3")).expect("second store");
        let near = "Please refactor the storage layer to use WAL mode and add unit tests";
        first
            .insert_operation(chat("Write a haiku about the sea at night", None))
            .await
            .expect("first");
        // The first store's guard has read (and kept) every live prompt of the scope by now.
        first
            .insert_operation(chat("Document the deployment steps for the web tier", None))
            .await
            .expect("second prompt");
        let theirs = second
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("written by the other process")
            .operation()
            .clone();
        match first.insert_operation(chat(near, None)).await {
            Err(StoreError::DuplicatePromptActive(found)) => {
                assert_eq!(found.existing_operation_id, theirs.operation_id);
                assert!(found.similarity > 0.95 && found.similarity < 1.0);
            }
            other => panic!("expected DuplicatePromptActive, got {other:?}"),
        }
        // Ended elsewhere: no longer a candidate, although this thread still knows its text.
        second
            .set_status(&theirs.operation_id, OperationStatus::Cancelled)
            .await
            .expect("cancel");
        first
            .insert_operation(chat(near, None))
            .await
            .expect("the other one ended");
    }

    #[tokio::test]
    async fn transitions_are_checked_and_terminal_is_final() {
        let (_dir, store) = temp_store();
        let op = store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("insert")
            .operation()
            .clone();
        let id = op.operation_id;
        assert_eq!(
            store
                .set_status(&id, OperationStatus::StartingThread)
                .await
                .expect("start")
                .status,
            "starting_thread"
        );
        store
            .attach_turn(&id, "turn-1", Some("thr-1"))
            .await
            .expect("turn");
        let running = store
            .set_status(&id, OperationStatus::Running)
            .await
            .expect("running");
        assert_eq!(
            (running.queue_status.as_str(), running.chat_id.as_deref()),
            ("running", Some("thr-1"))
        );
        assert!(matches!(
            store.set_status(&id, OperationStatus::Queued).await,
            Err(StoreError::InvalidTransition { .. })
        ));
        let snap = store
            .operation_snapshot(&id, 10, 10)
            .await
            .expect("snapshot")
            .expect("row");
        assert_eq!(snap.operation.status, "running");
        assert!(
            snap.turn.is_none()
                && snap.latest_messages.is_empty()
                && snap.pending_interactions.is_empty()
        );
        let done = store
            .record_final_report(&id, json!({"text": "ok"}), Some("completed"))
            .await
            .expect("report");
        assert_eq!(done.queue_status, "completed");
        assert!(done.completed_at.is_some() && done.final_report.is_some());
        assert!(matches!(
            store.set_status(&id, OperationStatus::Failed).await,
            Err(StoreError::InvalidTransition { .. })
        ));
        // The turn is not tracked as trusted-terminal, so the reconcile rule may reopen it.
        assert_eq!(
            store.reopen_operation(&id).await.expect("reopen").status,
            "running"
        );
        assert!(matches!(
            store
                .set_status("op_missing", OperationStatus::Failed)
                .await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn attempt_failures_back_off_then_fail() {
        let (_dir, store) = temp_store();
        let id = store
            .insert_operation(chat(PROMPT, None))
            .await
            .expect("insert")
            .operation()
            .operation_id
            .clone();
        let err = json!({"code": "CODEX_SEND_FAILED"});
        for attempt in 1..=3 {
            let before = crate::time::now_ms();
            let id2 = id.clone();
            store
                .write(move |tx| {
                    tx.execute(
                        "UPDATE codex_operations SET attempt_count = ?2, status = 'starting_thread' WHERE operation_id = ?1",
                        params![id2, attempt],
                    )?;
                    Ok(())
                })
                .await
                .expect("bump");
            let op = store
                .record_attempt_failure(&id, err.clone(), None)
                .await
                .expect("failure");
            if attempt < 3 {
                assert_eq!(op.status, "queued");
                assert_eq!(
                    op.queued_reason.as_deref(),
                    Some("retry_after_worker_error")
                );
                let delay = op.next_attempt_at.ms() - before;
                let expected = retry_backoff_seconds(attempt) * 1000;
                assert!(
                    delay >= expected - 50 && delay <= expected + 1000,
                    "delay {delay}"
                );
            } else {
                assert_eq!(op.status, "failed");
                assert_eq!(op.last_error, Some(err.clone()));
            }
        }
    }
}
