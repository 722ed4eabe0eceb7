//! Thread lifecycle actions (archive, unarchive, compact) as audited `tla_<id>` rows, shared by the lifecycle
//! tools and by workflow plugins (`archive-thread`, `compact-thread` actions).
//!
//! Each action is refused while the thread is busy (an active turn or a pending interaction: the seed's
//! `CODEX_BUSY` rule), recorded as `starting` before app-server is called, then moved to its outcome. A
//! compaction stays `running` until the tracker sees its turn end (`store::lifecycle`).

use std::time::Duration;

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::appserver::protocol::{ThreadArchive, ThreadCompactStart, ThreadUnarchive};
use crate::store::lifecycle::LifecycleAction;
use crate::store::operations::OperationFilter;
use crate::store::InteractionFilter;

/// A lifecycle action kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleKind {
    /// `thread/archive`.
    Archive,
    /// `thread/unarchive`.
    Unarchive,
    /// `thread/compact/start` (after `thread/resume`, so the thread is loaded).
    Compact,
}

impl LifecycleKind {
    /// The `action_type` stored on the row.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Archive => "archive",
            LifecycleKind::Unarchive => "unarchive",
            LifecycleKind::Compact => "compact",
        }
    }
}

/// Why a thread cannot take a lifecycle action now.
#[derive(Debug, Clone, PartialEq)]
pub struct Busy {
    /// `active_turn` or `pending_interaction`.
    pub reason: &'static str,
    /// One sentence for the error message.
    pub message: String,
    /// Ids that explain it (`operationId`, `turnId`, `interactionId`).
    pub details: Value,
}

impl Engine {
    /// The reason `thread_id` is busy, if it is.
    pub async fn thread_busy(&self, thread_id: &str) -> Result<Option<Busy>, EngineError> {
        let active = self
            .store
            .list_operations(
                OperationFilter {
                    thread_id: Some(thread_id.to_string()),
                    ..Default::default()
                },
                50,
            )
            .await?
            .into_iter()
            .find(|op| !op.status.is_terminal() && op.turn_id.is_some());
        if let Some(op) = active {
            return Ok(Some(Busy {
                reason: "active_turn",
                message: format!("thread {thread_id} has an active turn"),
                details: json!({"operationId": op.operation_id, "turnId": op.turn_id}),
            }));
        }
        let pending = self
            .store
            .list_interactions(
                InteractionFilter {
                    thread_id: Some(thread_id.to_string()),
                    status: Some("pending".into()),
                    ..Default::default()
                },
                1,
            )
            .await?;
        Ok(pending.first().map(|interaction| Busy {
            reason: "pending_interaction",
            message: format!("thread {thread_id} has a pending interaction"),
            details: json!({"interactionId": interaction.interaction_id}),
        }))
    }

    /// Performs a lifecycle action on `thread_id` and returns its row: `completed` (archive, unarchive) or
    /// `running` (compact) when app-server accepted it, `failed` with the error otherwise. The caller checks
    /// [`Engine::thread_busy`] first.
    pub async fn run_lifecycle_action(
        &self,
        kind: LifecycleKind,
        thread_id: &str,
        timeout: Duration,
    ) -> Result<LifecycleAction, EngineError> {
        let action = self.begin_lifecycle_action(kind, thread_id).await?;
        self.perform_lifecycle_action(kind, &action, timeout).await
    }

    /// Records a lifecycle action (`starting`) on the live app-server generation, before anything is sent:
    /// a caller that must not send twice journals the returned id first.
    pub async fn begin_lifecycle_action(
        &self,
        kind: LifecycleKind,
        thread_id: &str,
    ) -> Result<LifecycleAction, EngineError> {
        let generation = self.appserver.ensure_started().await?;
        Ok(self
            .store
            .insert_lifecycle_action(
                kind.as_str(),
                thread_id,
                &self.worker.owner_id,
                i64::try_from(generation).ok(),
            )
            .await?)
    }

    /// Sends a recorded lifecycle action to app-server and stores the outcome.
    pub async fn perform_lifecycle_action(
        &self,
        kind: LifecycleKind,
        action: &LifecycleAction,
        timeout: Duration,
    ) -> Result<LifecycleAction, EngineError> {
        let thread_id = action.thread_id.as_str();
        let thread = || thread_id.to_string();
        // Each of these replies is an empty object: success is all there is to record.
        let call = match kind {
            LifecycleKind::Archive => self
                .appserver
                .send_with_timeout(
                    &ThreadArchive {
                        thread_id: thread(),
                    },
                    timeout,
                )
                .await
                .map(drop),
            LifecycleKind::Unarchive => self
                .appserver
                .send_with_timeout(
                    &ThreadUnarchive {
                        thread_id: thread(),
                    },
                    timeout,
                )
                .await
                .map(drop),
            LifecycleKind::Compact => match self.resume_thread(thread_id, None, timeout).await {
                Ok(_) => self
                    .appserver
                    .send_with_timeout(
                        &ThreadCompactStart {
                            thread_id: thread(),
                        },
                        timeout,
                    )
                    .await
                    .map(drop),
                Err(err) => Err(err),
            },
        };
        let on_success = match kind {
            LifecycleKind::Compact => "running",
            LifecycleKind::Archive | LifecycleKind::Unarchive => "completed",
        };
        let (status, result, error) = match call {
            Ok(()) => (on_success, Some(json!({})), None),
            Err(err) => {
                let code = err.failure_code().as_str();
                (
                    "failed",
                    None,
                    Some(json!({"code": code, "message": err.to_string()})),
                )
            }
        };
        Ok(self
            .store
            .update_lifecycle_action(&action.action_id, status, result, error, None)
            .await?)
    }

    /// Ends the in-flight lifecycle actions of dead server processes (`unknown_after_app_server_exit`), so a
    /// compaction that was running when its server died does not stay `running` forever.
    pub(super) async fn lose_dead_lifecycle_actions(&self) -> Result<(), EngineError> {
        for owner in self
            .store
            .lifecycle_owners_in_flight(&self.worker.owner_id)
            .await?
        {
            if self.store.is_owner_dead(&owner).await? {
                let lost = self.store.lose_owner_lifecycle_actions(&owner).await?;
                tracing::warn!(%owner, lost, "lifecycle actions of a dead server process end unknown");
            }
        }
        Ok(())
    }
}
