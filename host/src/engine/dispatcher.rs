//! The dispatcher: claims startable operations and runs each on its own task.
//!
//! A claim is one `BEGIN IMMEDIATE` transaction that picks the best startable operation whose lease is free,
//! expired or held by a provably dead process, checks the concurrency limits, and leases it to this process
//! (see [`crate::store::leases`]). So several server processes on one database never run an operation twice,
//! and a burst of submits waits in the queue (`queued_reason = *_slot_limit`) instead of flooding app-server.
//!
//! Errors are handled by what they prove:
//!
//! | failure | result |
//! |---|---|
//! | nothing was created (refused, never sent), before any turn | back to `queued` with backoff; `failed` after `max_attempts` |
//! | denied by policy, or an invalid row | `failed` at once |
//! | a creating call may have been sent (timeout, process exit) | reconciled, never re-sent (see [`Engine::reconcile`]) |

use std::sync::Arc;

use serde_json::{json, Value};

use super::execute::{MaybeSent, RunError, RunOutcome};
use super::{error_json, Engine, EngineError};
use crate::appserver::protocol::ThreadRead;
use crate::appserver::AppServerError;
use crate::domain::failure::FailureCode;
use crate::shutdown::Shutdown;
use crate::store::operations::Operation;
use crate::store::RecoveryReport;

/// App-server's JSON-RPC error for "overloaded, try again later".
const OVERLOADED: i64 = -32001;
/// How long an operation refused by an overloaded app-server waits before it is claimed again.
const BACKPRESSURE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the dispatcher looks for operations of dead server processes.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl Engine {
    pub(super) async fn dispatcher_loop(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut last_sweep = std::time::Instant::now();
        loop {
            if shutdown.is_shutdown() {
                return;
            }
            if last_sweep.elapsed() >= SWEEP_INTERVAL {
                last_sweep = std::time::Instant::now();
                self.sweep().await;
            }
            self.dispatch_ready().await;
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = self.wake.notified() => {}
                // Other processes' submits and retry backoffs are found by polling.
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Recovery while serving: another server process sharing the database may die at any time; its running
    /// operations are settled (and its queued ones released) within [`SWEEP_INTERVAL`], not after a restart.
    async fn sweep(self: &Arc<Self>) {
        match self
            .store
            .recover_operations(&self.worker.owner_id, self.settings.lease_ttl)
            .await
        {
            Ok(report) if !report.running.is_empty() || !report.needs_reconcile.is_empty() => {
                tracing::warn!(
                    running = report.running.len(),
                    reconcile = report.needs_reconcile.len(),
                    "took over operations of a dead server process"
                );
                tokio::spawn(self.clone().follow_recovered(report));
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "recovery sweep failed"),
        }
        if let Err(error) = self.lose_dead_lifecycle_actions().await {
            tracing::warn!(%error, "recovery sweep of lifecycle actions failed");
        }
    }

    /// Claims and starts every operation the limits allow right now.
    async fn dispatch_ready(self: &Arc<Self>) {
        if self.is_draining() {
            return;
        }
        // A saturated app-server queues work instead of failing it (the seed's `app_server_backpressure`).
        let pending = self.appserver.status().pending_requests;
        if pending >= self.settings.app_server_pending_limit {
            tracing::info!(pending, "app-server backpressure: holding claims");
            if let Err(error) = self.store.mark_backpressure(64).await {
                tracing::warn!(%error, "marking backpressure failed");
            }
            return;
        }
        // A tick with nothing to start, or a submit while every slot is taken, must not take the database's write
        // lock: decide on a read first, claim only when the claim would change something.
        let look = self.queue_gate.look();
        match self
            .store
            .claim_outlook(
                &self.worker.owner_id,
                crate::time::now_ms(),
                self.settings.limits,
            )
            .await
        {
            Ok(outlook) if !outlook.acts => {
                self.queue_gate.found(look, outlook.slots_full_at);
                return;
            }
            Ok(_) => self.queue_gate.found(look, None),
            Err(error) => {
                self.queue_gate.found(look, None);
                tracing::warn!(%error, "checking the queue failed; claiming anyway");
            }
        }
        loop {
            let claimed = self
                .store
                .claim_next_operation(
                    &self.worker.owner_id,
                    self.settings.lease_ttl,
                    crate::time::now_ms(),
                    self.settings.limits,
                )
                .await;
            match claimed {
                Ok(Some(op)) => {
                    if self.mark_running(&op.operation_id) {
                        tokio::spawn(self.clone().run(op));
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "claiming an operation failed");
                    return;
                }
            }
        }
    }

    /// Runs one claimed operation until its turn exists, then leaves it to the tracker.
    async fn run(self: Arc<Self>, op: Operation) {
        let id = op.operation_id.clone();
        tracing::debug!(operation = %id, kind = %op.operation_type, attempt = op.attempt_count, "running");
        let outcome = self.execute(&op).await;
        let result = match outcome {
            Ok(RunOutcome::TurnRunning | RunOutcome::Completed) => Ok(()),
            // App-server said it is overloaded: nothing was created; queue again without spending an attempt.
            Err(RunError::Failed(
                error @ EngineError::AppServer(AppServerError::Rpc {
                    code: OVERLOADED, ..
                }),
            )) => self
                .store
                .requeue_for_backpressure(&id, error_json(&error), BACKPRESSURE_RETRY)
                .await
                .map_err(EngineError::from),
            Err(RunError::Failed(
                error @ (EngineError::PolicyDenied(_) | EngineError::Invalid(_)),
            )) => self
                .store
                .fail_operation(&id, error_json(&error))
                .await
                .map(drop)
                .map_err(EngineError::from),
            Err(RunError::Failed(error)) => {
                tracing::info!(operation = %id, %error, "attempt failed; retrying later if attempts remain");
                self.store
                    .record_attempt_failure(&id, error_json(&error), None)
                    .await
                    .map(drop)
                    .map_err(EngineError::from)
            }
            Err(RunError::MaybeSent(maybe)) => self.reconcile(&op, maybe).await.map(drop),
        };
        if let Err(error) = result {
            tracing::error!(operation = %id, %error, "recording the outcome of a run failed");
        }
        self.unmark_running(&id);
        // A finished run frees a slot: let queued work start.
        self.wake();
    }

    /// A creating call may have been sent: decide without sending it again.
    ///
    /// `thread/start` only ever leaves an empty thread behind, so it is retried. For the others (a turn, a
    /// steer, a fork), when the process that got the call is gone, whatever it created is gone with it:
    /// the operation ends `unknown_after_app_server_exit` with the intent as evidence. When the process still
    /// runs (a timeout), the thread is read to find out whether the turn exists.
    async fn reconcile(&self, op: &Operation, maybe: MaybeSent) -> Result<Operation, EngineError> {
        tracing::warn!(operation = %op.operation_id, method = %maybe.method, error = %maybe.source, "creating call may have been sent");
        if maybe.method == "thread/start" {
            self.store.resolve_intent(&maybe.intent_id, None).await?;
            return Ok(self
                .store
                .record_attempt_failure(
                    &op.operation_id,
                    FailureCode::Timeout.failure(maybe.to_string()),
                    None,
                )
                .await?);
        }
        if maybe.method == "turn/start" {
            if let (AppServerError::Timeout { .. }, Some(thread_id)) =
                (&maybe.source, self.current_thread(op).await?)
            {
                if let Some(turn_id) = self.find_unclaimed_turn(&thread_id).await {
                    self.store
                        .resolve_intent(&maybe.intent_id, Some(&turn_id))
                        .await?;
                    self.turn_attached(op, &thread_id, &turn_id).await?;
                    return Ok(self.store.require_operation(&op.operation_id).await?);
                }
            }
        }
        let evidence = FailureCode::AppServerUnavailable.failure_with(
            format!(
                "{} may have been sent but no answer came back; it is not sent again",
                maybe.method
            ),
            false,
            evidence_fields(json!({"intentId": maybe.intent_id, "method": maybe.method,
                                   "cause": maybe.source.to_string()})),
        );
        Ok(self
            .store
            .end_unknown_after_exit(&op.operation_id, evidence)
            .await?)
    }

    async fn current_thread(&self, op: &Operation) -> Result<Option<String>, EngineError> {
        Ok(self
            .store
            .get_operation(&op.operation_id)
            .await?
            .and_then(|o| o.thread_id))
    }

    /// A thread's turns as app-server has them (`thread/read` with turns), oldest first.
    pub(super) async fn thread_turns(
        &self,
        thread_id: &str,
    ) -> Result<Vec<Value>, crate::appserver::AppServerError> {
        let read = ThreadRead {
            thread_id: thread_id.to_string(),
            include_turns: true,
        };
        Ok(self.appserver.send(&read).await?.thread.turns)
    }

    /// The newest in-progress turn of a thread that no operation follows yet (a turn/start whose reply was
    /// lost), read from app-server.
    async fn find_unclaimed_turn(&self, thread_id: &str) -> Option<String> {
        let turn = self.thread_turns(thread_id).await.ok()?.pop()?;
        let turn_id = turn.get("id").and_then(Value::as_str)?.to_string();
        let followed = self
            .store
            .list_operations(
                crate::store::OperationFilter {
                    turn_id: Some(turn_id.clone()),
                    ..Default::default()
                },
                1,
            )
            .await
            .ok()?;
        followed.is_empty().then_some(turn_id)
    }

    /// Settles what startup recovery could not decide alone. The process that owned these operations is gone,
    /// and its app-server child went with it (it exits when our end of its stdin closes), so:
    ///
    /// - an operation whose turn is already terminal in the store gets its final report;
    /// - an operation whose turn was still running ends `unknown_after_app_server_exit`: the turn cannot finish;
    /// - an operation with a maybe-sent creating call ends `unknown_after_app_server_exit` with the intent as
    ///   evidence: it is never sent again.
    pub(super) async fn follow_recovered(self: Arc<Self>, report: RecoveryReport) {
        for operation_id in &report.running {
            if let Err(error) = self.settle_recovered_turn(operation_id).await {
                tracing::warn!(operation = %operation_id, %error, "settling a recovered operation failed");
            }
        }
        for item in &report.needs_reconcile {
            let evidence = FailureCode::AppServerUnavailable.failure_with(
                "the process that sent this operation's creating call died before the reply; it is not sent again",
                false,
                evidence_fields(json!({"intents": item.intents})),
            );
            if let Err(error) = self
                .store
                .end_unknown_after_exit(&item.operation_id, evidence)
                .await
            {
                tracing::warn!(operation = %item.operation_id, %error, "ending an unreconciled operation failed");
            }
        }
        self.wake();
    }

    async fn settle_recovered_turn(&self, operation_id: &str) -> Result<(), EngineError> {
        let op = self.store.require_operation(operation_id).await?;
        let Some(turn_id) = op.turn_id.clone() else {
            return Ok(());
        };
        if let Some(turn) = self.store.get_turn(&turn_id).await? {
            if turn.is_trusted_terminal() {
                return self.finish_from_turn(&op, &turn).await;
            }
            // The turn may live on in another, still running process (a steer joined it, for example).
            if let Some(owner) = &turn.owner_id {
                if owner != &self.worker.owner_id && !self.store.is_owner_dead(owner).await? {
                    return Ok(());
                }
            }
        }
        let evidence = FailureCode::AppServerUnavailable.failure_with(
            "the server process following this turn died, and its app-server with it; the turn's outcome is unknown",
            false,
            evidence_fields(json!({"turnId": turn_id})),
        );
        self.store
            .mark_turn_lost(&turn_id, "unknown_after_app_server_exit")
            .await?;
        self.store
            .end_unknown_after_exit(operation_id, evidence)
            .await?;
        Ok(())
    }
}

/// The fields of a JSON object literal, as extra evidence of a failure.
fn evidence_fields(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    }
}
