//! Pending interactions: automatic answers by policy, and the courier that delivers answers.
//!
//! An answer is a row update that any process sharing the database can make ([`crate::store::interactions`]).
//! Only the process that owns the app-server generation can send the JSON-RPC reply, so each process runs a
//! courier: it picks up the answers addressed to it (woken at once for its own answers, polling for answers
//! stored by other processes), sends them on the live generation, and records the delivery. The same loop
//! auto-declines interactions nobody answered in time.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::domain::operation::OperationStatus;
use crate::domain::server_requests::ServerRequestKind;
use crate::plugins::types::{Answer, Interaction};
use crate::shutdown::Shutdown;
use crate::store::PendingInteraction;

/// The interaction kind as policy plugins see it (more specific than the seed's kind).
fn policy_kind(method: &str) -> &'static str {
    ServerRequestKind::parse(method).map_or("elicitation", ServerRequestKind::policy_kind)
}

/// The JSON-RPC result app-server expects for a policy's answer.
fn answer_response(answer: &Answer) -> Value {
    match answer {
        Answer::Accept => json!({"decision": "accept"}),
        Answer::AcceptForSession => json!({"decision": "acceptForSession"}),
        Answer::Decline => json!({"decision": "decline"}),
        Answer::Cancel => json!({"decision": "cancel"}),
        Answer::Respond(raw) => serde_json::from_str(raw).unwrap_or(Value::Null),
    }
}

impl Engine {
    /// Offers a new interaction to the policy chain; a policy's answer is stored like anyone else's.
    pub(super) async fn offer_to_policies(&self, interaction: &PendingInteraction) {
        let params = &interaction.params;
        let offer = Interaction {
            interaction_id: interaction.interaction_id.clone(),
            kind: policy_kind(&interaction.method).to_string(),
            thread_id: interaction.thread_id.clone().unwrap_or_default(),
            cwd: params
                .get("cwd")
                .and_then(Value::as_str)
                .map(str::to_string),
            command: params
                .get("command")
                .and_then(Value::as_str)
                .map(str::to_string),
            payload: params.to_string(),
            context: self.plugins.policy_context(),
        };
        let auto = match self
            .with_plugins(move |plugins| plugins.on_interaction(&offer))
            .await
        {
            Ok(Some(auto)) => auto,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(interaction = %interaction.interaction_id, %error, "policy call failed");
                return;
            }
        };
        let response = answer_response(&auto.answer);
        let by = format!("policy:{}", auto.plugin);
        let rule = Some(auto.rule.as_str()).filter(|rule| !rule.is_empty());
        match self
            .store
            .answer_interaction_by_policy(&interaction.interaction_id, response, &by, rule)
            .await
        {
            Ok(_) => {
                tracing::info!(interaction = %interaction.interaction_id, plugin = %auto.plugin, rule = %auto.rule, "answered by policy");
                self.wake_courier();
            }
            Err(error) => {
                tracing::warn!(interaction = %interaction.interaction_id, %error, "storing a policy answer failed")
            }
        }
    }

    pub(super) async fn courier_loop(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            if let Err(error) = self.deliver_answers().await {
                tracing::warn!(%error, "delivering interaction answers failed");
            }
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = self.courier_wake.notified() => {}
                _ = tokio::time::sleep(self.settings.courier_interval) => {}
            }
        }
    }

    /// Auto-declines what expired, then sends every stored answer addressed to this process.
    async fn deliver_answers(&self) -> Result<(), EngineError> {
        let owner = &self.worker.owner_id;
        let now = crate::time::now_ms();
        // Every tick would otherwise be a write transaction competing with submits for the writer.
        if self.store.has_expired_interactions(owner, now).await? {
            for interaction in self.store.expire_interactions(owner, now).await? {
                tracing::info!(interaction = %interaction.interaction_id, "auto-declined after timeout");
            }
        }
        for interaction in self.store.take_answers_to_deliver(owner).await? {
            let id: Value = serde_json::from_str(&interaction.jsonrpc_id)
                .unwrap_or_else(|_| Value::String(interaction.jsonrpc_id.clone()));
            let generation = u64::try_from(interaction.process_generation).unwrap_or(u64::MAX);
            let stored = interaction.response.clone().unwrap_or(Value::Null);
            // Answers are stored in the v2 words; a legacy request gets its own.
            let response = match ServerRequestKind::parse(&interaction.method) {
                Some(kind) => kind.wire_reply(&stored),
                None => stored,
            };
            let outcome = self.appserver.respond(generation, &id, Ok(response)).await;
            let error = outcome.as_ref().err().map(ToString::to_string);
            self.store
                .mark_interaction_delivered(&interaction.interaction_id, error.as_deref())
                .await?;
            if let Some(error) = error {
                tracing::warn!(interaction = %interaction.interaction_id, %error, "answer could not be delivered");
                continue;
            }
            // The turn goes on: the operation is running again unless another interaction still waits. A failure
            // here must not strand the rest of the batch, which is already taken for delivery.
            if let Some(operation_id) = &interaction.operation_id {
                if let Err(error) = self.resume_after_answer(operation_id).await {
                    tracing::warn!(operation = %operation_id, %error, "resuming after an answer failed");
                }
            }
        }
        Ok(())
    }

    async fn resume_after_answer(&self, operation_id: &str) -> Result<(), EngineError> {
        let op = self.store.require_operation(operation_id).await?;
        if !matches!(
            op.status,
            OperationStatus::WaitingForApproval | OperationStatus::WaitingForUserInput
        ) {
            return Ok(());
        }
        let still_waiting = self
            .store
            .list_interactions(
                crate::store::InteractionFilter {
                    operation_id: Some(operation_id.to_string()),
                    status: Some("pending".to_string()),
                    ..Default::default()
                },
                1,
            )
            .await?;
        if still_waiting.is_empty() {
            match self
                .store
                .set_status(operation_id, OperationStatus::Running)
                .await
            {
                Ok(_) => {}
                // App-server may end the turn right after the answer, before this write: nothing to resume.
                Err(crate::store::StoreError::InvalidTransition { .. }) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
            if let Some(turn_id) = &op.turn_id {
                if let Some(turn) = self.store.get_turn(turn_id).await? {
                    if turn.status.starts_with("waiting_for_") {
                        let mut update = crate::store::TurnUpdate {
                            turn_id: turn.turn_id.clone(),
                            thread_id: turn.thread_id.clone(),
                            status: "running".to_string(),
                            ..Default::default()
                        };
                        update.owner_id = turn.owner_id.clone();
                        self.store.upsert_turn(update).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_answers_become_app_server_results() {
        assert_eq!(
            answer_response(&Answer::Accept),
            json!({"decision": "accept"})
        );
        assert_eq!(
            answer_response(&Answer::Respond("{\"answers\":{}}".into())),
            json!({"answers": {}})
        );
        assert_eq!(
            policy_kind("item/fileChange/requestApproval"),
            "file_change_approval"
        );
    }
}
