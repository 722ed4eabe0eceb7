//! Driving one leased operation through app-server until its turn exists.
//!
//! Every call that creates something in Codex (`thread/start`, `thread/fork`, `turn/start`, `turn/steer`) goes
//! through [`Engine::create`]: an intent row is committed **before** the call is sent and confirmed with the
//! returned id **after** (the confirmation attaches the id to the operation in the same transaction). A definite
//! refusal (a JSON-RPC error, a write that never left) marks the intent failed, so a retry is safe. A call that
//! may have been sent but gave no answer (timeout, process exit) leaves the intent pending: the caller ends the
//! operation instead of sending it again (see [`super::dispatcher`]).
//!
//! Before each creating call the policy chain (the `policy` world of the loaded plugins) sees the action and may
//! allow it, deny it, or narrow its settings.

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::appserver::protocol::{
    self, ClientRequest, CollaborationMode as WireCollaborationMode, CollaborationSettings,
    Created, InputItem, ReviewStart, SandboxPolicy, ThreadFork, ThreadSetName, ThreadStart,
    TurnStart, TurnSteer,
};
use crate::appserver::AppServerError;
use crate::domain::operation::OperationStatus;
use crate::plugins::types::{
    ActionKind, ActionRequest, ApprovalPolicy, CollaborationMode, Decision, InputSummary,
    SandboxMode, TurnSettings,
};
use crate::store::operations::{Operation, PolicyNarrowing};

/// Outcome of one run of an operation.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// A turn is running; the tracker finishes the operation.
    TurnRunning,
    /// The operation finished without a turn (a fork without a message).
    Completed,
}

/// A creating call failed after it may have reached app-server: it must not be sent again.
#[derive(Debug, thiserror::Error)]
#[error("{method} may have been sent (intent {intent_id}): {source}")]
pub struct MaybeSent {
    /// The method.
    pub method: String,
    /// The pending intent.
    pub intent_id: String,
    /// What happened.
    pub source: AppServerError,
}

/// How a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Nothing was created; the operation may be retried (before a turn exists).
    #[error(transparent)]
    Failed(#[from] EngineError),
    /// A creating call may have been sent; the operation must be reconciled, never re-sent.
    #[error(transparent)]
    MaybeSent(#[from] MaybeSent),
}

impl From<crate::store::StoreError> for RunError {
    fn from(err: crate::store::StoreError) -> Self {
        RunError::Failed(EngineError::Store(err))
    }
}

impl From<AppServerError> for RunError {
    fn from(err: AppServerError) -> Self {
        RunError::Failed(EngineError::AppServer(err))
    }
}

fn request_str<'a>(op: &'a Operation, key: &str) -> Option<&'a str> {
    op.request.get(key).and_then(Value::as_str)
}

fn effective(op: &Operation, key: &str) -> Option<String> {
    op.request
        .pointer(&format!("/runtimePolicy/{key}"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Engine {
    /// Runs a leased operation until its turn is started (or it finishes without one).
    pub async fn execute(&self, op: &Operation) -> Result<RunOutcome, RunError> {
        match op.operation_type.as_str() {
            "start_chat" => {
                let thread_id = match &op.thread_id {
                    // A start_chat that already has a thread (a retry after thread/start) continues on it.
                    Some(thread) => {
                        self.ensure_thread_loaded(op, thread).await?;
                        thread.clone()
                    }
                    None => self.start_thread(op).await?,
                };
                self.start_turn(op, &thread_id).await
            }
            "send_message" | "execute_plan" => {
                let thread_id = op
                    .thread_id
                    .clone()
                    .ok_or_else(|| EngineError::Invalid("operation has no thread".into()))?;
                self.ensure_thread_loaded(op, &thread_id).await?;
                self.start_turn(op, &thread_id).await
            }
            "steer_turn" => self.steer(op).await,
            "review_start" => {
                let thread_id = match &op.thread_id {
                    Some(thread) => {
                        self.ensure_thread_loaded(op, thread).await?;
                        thread.clone()
                    }
                    None => self.start_thread(op).await?,
                };
                self.start_review(op, &thread_id).await
            }
            "fork_thread" => {
                let thread_id = match &op.thread_id {
                    Some(thread) => thread.clone(),
                    None => self.fork(op).await?,
                };
                if op.has_message {
                    self.start_turn(op, &thread_id).await
                } else {
                    self.store
                        .record_final_report(
                            &op.operation_id,
                            json!({"text": null, "threadId": thread_id, "turnId": null,
                                   "structuredStatus": "not_requested", "structuredParseStatus": "empty"}),
                            Some("completed"),
                        )
                        .await?;
                    Ok(RunOutcome::Completed)
                }
            }
            other => Err(EngineError::Invalid(format!("unknown operation type {other}")).into()),
        }
    }

    /// Calls a creating method with the intent journal around it; returns the created id.
    async fn create<R>(&self, op: &Operation, request: &R) -> Result<String, RunError>
    where
        R: ClientRequest,
        R::Reply: Created,
    {
        let method = R::METHOD;
        let params = protocol::encode(request)?;
        let generation = self.appserver.ensure_started().await?;
        let params_hash =
            crate::domain::rules::canonical::sha256_hex(params.to_string().as_bytes())[..32]
                .to_string();
        let intent = self
            .store
            .record_intent(
                &op.operation_id,
                &self.worker.owner_id,
                method,
                Some(&params_hash),
                i64::try_from(generation).ok(),
            )
            .await?;
        match self.appserver.request_on(method, params).await {
            Ok((generation, reply)) => {
                match protocol::decode::<R>(reply).map(|r| (r.thread_model(), r.created_id())) {
                    Ok((model, id)) => {
                        self.store.confirm_intent(&intent.intent_id, &id).await?;
                        if matches!(method, "thread/start" | "thread/fork") {
                            self.loaded_threads.note(generation, &id, model);
                        }
                        Ok(id)
                    }
                    Err(err) => {
                        self.store
                            .fail_intent(&intent.intent_id, &err.to_string())
                            .await?;
                        Err(err.into())
                    }
                }
            }
            // Nothing reached app-server, or it refused: nothing was created and a retry is safe.
            Err(
                err @ (AppServerError::Rpc { .. }
                | AppServerError::Unavailable { .. }
                | AppServerError::Io(_)
                | AppServerError::StaleGeneration { .. }),
            ) => {
                self.store
                    .fail_intent(&intent.intent_id, &err.to_string())
                    .await?;
                Err(err.into())
            }
            Err(source) => Err(MaybeSent {
                method: method.to_string(),
                intent_id: intent.intent_id,
                source,
            }
            .into()),
        }
    }

    /// Runs the policy chain on an action; returns the settings to use (narrowed or as requested).
    async fn check_policy(
        &self,
        op: &Operation,
        kind: ActionKind,
        settings: TurnSettings,
    ) -> Result<TurnSettings, EngineError> {
        let text_bytes = request_str(op, "message").map_or(0, |m| m.len() as u64);
        let image_count = op
            .request
            .get("inputItems")
            .and_then(Value::as_array)
            .map_or(0, |items| u32::try_from(items.len()).unwrap_or(u32::MAX));
        let request = ActionRequest {
            action_id: format!("{}:{kind:?}", op.operation_id),
            kind,
            operation_id: Some(op.operation_id.clone()),
            thread_id: op.thread_id.clone(),
            settings,
            input: InputSummary {
                text_bytes,
                image_count,
            },
            context: self.plugins.policy_context(),
        };
        let requested = request.settings.clone();
        let (effective, narrowed_by) = self.policy_decision(request).await?;
        if let Some(rules) = narrowed_by {
            self.record_narrowing(op, &requested, &effective, &rules)
                .await?;
        }
        Ok(effective)
    }

    /// Runs the policy chain on a prepared request (an operation's, or a workflow action performed without
    /// one); returns the settings to use, or `PolicyDenied`.
    pub(super) async fn policy_verdict(
        &self,
        request: ActionRequest,
    ) -> Result<TurnSettings, EngineError> {
        Ok(self.policy_decision(request).await?.0)
    }

    /// The policy chain's verdict: the settings to use and, when the chain narrowed them, the plugins' rules
    /// that did (`plugin/rule, ...`).
    async fn policy_decision(
        &self,
        request: ActionRequest,
    ) -> Result<(TurnSettings, Option<String>), EngineError> {
        let settings = request.settings.clone();
        let decision = self
            .with_plugins(move |plugins| plugins.check_action(&request))
            .await?;
        match decision {
            Ok(Decision::Allow) => Ok((settings, None)),
            // The reason already names the plugin and its rule.
            Ok(Decision::Deny(denial)) => Err(EngineError::PolicyDenied(denial.reason)),
            // The chain already merged every narrowing into the complete effective settings.
            Ok(Decision::Narrow(narrowing)) => Ok((narrowing.settings, Some(narrowing.rule))),
            // A policy that cannot decide must not let the action through.
            Err(error) => Err(EngineError::PolicyDenied(format!(
                "policy plugin failed: {error}"
            ))),
        }
    }

    /// Records a narrowing in the operation's `runtimePolicy`: the sandbox or approval policy the chain changed (so
    /// the status tools show what Codex is given rather than what was asked) and, as `policyNarrowing`, the rules
    /// that narrowed and the settings they produced.
    async fn record_narrowing(
        &self,
        op: &Operation,
        requested: &TurnSettings,
        effective: &TurnSettings,
        rules: &str,
    ) -> Result<(), EngineError> {
        tracing::info!(operation = %op.operation_id, %rules, "policy narrowed the settings");
        let sandbox = (effective.sandbox != requested.sandbox)
            .then_some(effective.sandbox)
            .flatten()
            .map(|mode| sandbox_mode_name(mode).to_string());
        let approval_policy = (effective.approval_policy != requested.approval_policy)
            .then_some(effective.approval_policy)
            .flatten()
            .map(|policy| approval_policy_name(policy).to_string());
        let changed: Vec<String> = [("sandbox", &sandbox), ("approval policy", &approval_policy)]
            .into_iter()
            .filter_map(|(what, to)| to.as_ref().map(|to| format!("{what} {to}")))
            .collect();
        let narrowing = PolicyNarrowing {
            reason: format!("narrowed by policy {rules} to {}", changed.join(", ")),
            audit: json!({
                "rules": rules,
                "sandbox": effective.sandbox.map(sandbox_mode_name),
                "approvalPolicy": effective.approval_policy.map(approval_policy_name),
                "model": effective.model,
            }),
            sandbox,
            approval_policy,
        };
        self.store
            .record_policy_narrowing(&op.operation_id, narrowing)
            .await?;
        Ok(())
    }

    fn requested_settings(&self, op: &Operation) -> TurnSettings {
        TurnSettings {
            cwd: op.cwd.clone(),
            sandbox: effective(op, "effectiveSandbox")
                .as_deref()
                .and_then(sandbox_mode),
            approval_policy: effective(op, "effectiveApprovalPolicy")
                .as_deref()
                .and_then(approval_policy),
            model: request_str(op, "model").map(str::to_string),
            effort: None,
            collaboration_mode: match request_str(op, "collaborationMode") {
                Some("plan") => Some(CollaborationMode::Plan),
                Some("default") => Some(CollaborationMode::Default),
                _ => None,
            },
        }
    }

    async fn start_thread(&self, op: &Operation) -> Result<String, RunError> {
        self.set_status(op, OperationStatus::StartingAppServer)
            .await?;
        self.appserver.ensure_started().await?;
        self.set_status(op, OperationStatus::StartingThread).await?;
        let settings = self
            .check_policy(op, ActionKind::StartThread, self.requested_settings(op))
            .await?;
        let thread = ThreadStart {
            service_name: SERVICE_NAME.into(),
            cwd: settings.cwd.clone(),
            approval_policy: settings
                .approval_policy
                .map(|p| approval_policy_name(p).into()),
            sandbox: settings.sandbox.map(|m| sandbox_mode_name(m).into()),
            model: settings.model.clone(),
        };
        let thread_id = self.create(op, &thread).await?;
        if let Some(title) = request_str(op, "title") {
            let name = ThreadSetName {
                thread_id: thread_id.clone(),
                name: title.to_string(),
            };
            // The name is cosmetic: a failure here must not fail the operation.
            if let Err(err) = self.appserver.send(&name).await {
                tracing::warn!(operation = %op.operation_id, error = %err, "thread/name/set failed");
            }
        }
        Ok(thread_id)
    }

    /// Threads not started by this app-server generation must be resumed before a turn can start on them.
    async fn ensure_thread_loaded(&self, op: &Operation, thread_id: &str) -> Result<(), RunError> {
        if self.appserver.generation().is_none() {
            self.set_status(op, OperationStatus::StartingAppServer)
                .await?;
        }
        let generation = self.appserver.ensure_started().await?;
        if self.loaded_threads.contains(generation, thread_id) {
            return Ok(());
        }
        self.resume_thread(thread_id, op.cwd.clone(), self.appserver.request_timeout())
            .await?;
        Ok(())
    }

    async fn start_turn(&self, op: &Operation, thread_id: &str) -> Result<RunOutcome, RunError> {
        self.set_status(op, OperationStatus::StartingTurn).await?;
        let settings = self
            .check_policy(op, ActionKind::StartTurn, self.requested_settings(op))
            .await?;
        let mut input = Vec::new();
        if let Some(message) = request_str(op, "message") {
            input.push(InputItem::text(message));
        }
        if let Some(items) = op.request.get("inputItems").and_then(Value::as_array) {
            input.extend(items.iter().cloned().map(InputItem::Given));
        }
        // A plan-mode turn must name a model, or codex records an empty one and the thread cannot be resumed.
        let plan_model = settings
            .model
            .clone()
            .or_else(|| self.loaded_thread_model(thread_id));
        if plan_model.is_none() && settings.collaboration_mode == Some(CollaborationMode::Plan) {
            tracing::warn!(operation = %op.operation_id, thread = %thread_id,
                "plan-mode turn without a known model; app-server will record an empty one");
        }
        let turn = turn_start(
            thread_id,
            input,
            format!("mcp-turn:{}", op.operation_id),
            &settings,
            plan_model,
            op.request
                .get("outputSchema")
                .filter(|s| !s.is_null())
                .cloned(),
        );
        let turn_id = self.create(op, &turn).await?;
        self.turn_attached(op, thread_id, &turn_id).await?;
        Ok(RunOutcome::TurnRunning)
    }

    /// `review/start` on a thread (reviews run inline on the thread they are given; a "detached" review is
    /// one on a fresh service thread, which the caller arranges by giving no thread).
    async fn start_review(&self, op: &Operation, thread_id: &str) -> Result<RunOutcome, RunError> {
        self.set_status(op, OperationStatus::StartingReview).await?;
        self.check_policy(op, ActionKind::StartReview, self.requested_settings(op))
            .await?;
        let target = op
            .request
            .get("target")
            .filter(|t| t.is_object())
            .cloned()
            .ok_or_else(|| EngineError::Invalid("review has no target".into()))?;
        let review = ReviewStart {
            thread_id: thread_id.to_string(),
            target,
            delivery: "inline".into(),
        };
        let turn_id = self.create(op, &review).await?;
        self.turn_attached(op, thread_id, &turn_id).await?;
        Ok(RunOutcome::TurnRunning)
    }

    async fn steer(&self, op: &Operation) -> Result<RunOutcome, RunError> {
        self.set_status(op, OperationStatus::StartingTurn).await?;
        let thread_id = op
            .thread_id
            .clone()
            .ok_or_else(|| EngineError::Invalid("steer has no thread".into()))?;
        let expected = op
            .expected_turn_id
            .clone()
            .ok_or_else(|| EngineError::Invalid("steer has no expected turn".into()))?;
        self.check_policy(op, ActionKind::SteerTurn, self.requested_settings(op))
            .await?;
        let message = request_str(op, "message").unwrap_or_default();
        let steer = TurnSteer {
            thread_id: thread_id.clone(),
            expected_turn_id: expected,
            input: vec![InputItem::text(message)],
            client_user_message_id: Some(format!("mcp-steer:{}", op.operation_id)),
        };
        let turn_id = self.create(op, &steer).await?;
        // A steer joins the target turn: the operation follows it to its end.
        self.store
            .attach_turn(&op.operation_id, &turn_id, Some(&thread_id))
            .await?;
        self.turn_attached(op, &thread_id, &turn_id).await?;
        Ok(RunOutcome::TurnRunning)
    }

    async fn fork(&self, op: &Operation) -> Result<String, RunError> {
        self.set_status(op, OperationStatus::StartingAppServer)
            .await?;
        self.appserver.ensure_started().await?;
        self.set_status(op, OperationStatus::StartingThread).await?;
        let source = op
            .source_thread_id
            .clone()
            .ok_or_else(|| EngineError::Invalid("fork has no source thread".into()))?;
        let settings = self
            .check_policy(op, ActionKind::StartThread, self.requested_settings(op))
            .await?;
        let ephemeral = op
            .request
            .get("ephemeral")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let fork = ThreadFork {
            thread_id: source,
            ephemeral,
            cwd: settings.cwd.clone(),
            approval_policy: settings
                .approval_policy
                .map(|p| approval_policy_name(p).into()),
            sandbox: settings.sandbox.map(|m| sandbox_mode_name(m).into()),
            model: settings.model.clone(),
            config: op
                .request
                .get("forkConfig")
                .filter(|c| c.is_object())
                .cloned(),
        };
        // A fork source that is not loaded in this generation is read from its rollout by app-server.
        let thread_id = self.create(op, &fork).await?;
        Ok(thread_id)
    }

    async fn set_status(&self, op: &Operation, status: OperationStatus) -> Result<(), EngineError> {
        let current = self.store.get_operation(&op.operation_id).await?;
        if current.as_ref().map(|o| o.status) == Some(status) {
            return Ok(());
        }
        self.store.set_status(&op.operation_id, status).await?;
        Ok(())
    }
}

/// The `serviceName` of the threads this server starts.
const SERVICE_NAME: &str = "codex-control-plane-mcp";

/// A `turn/start` with the (policy-checked) settings; `turn/start` takes the sandbox as a policy object where
/// `thread/start` takes a mode name, and only a turn takes a collaboration mode.
fn turn_start(
    thread_id: &str,
    input: Vec<InputItem>,
    client_user_message_id: String,
    settings: &TurnSettings,
    plan_model: Option<String>,
    output_schema: Option<Value>,
) -> TurnStart {
    TurnStart {
        thread_id: thread_id.to_string(),
        input,
        client_user_message_id: Some(client_user_message_id),
        cwd: settings.cwd.clone(),
        approval_policy: settings
            .approval_policy
            .map(|p| approval_policy_name(p).into()),
        sandbox_policy: settings
            .sandbox
            .and_then(|m| SandboxPolicy::from_mode(sandbox_mode_name(m))),
        model: settings.model.clone(),
        effort: settings.effort.clone(),
        collaboration_mode: (settings.collaboration_mode == Some(CollaborationMode::Plan)).then(
            || WireCollaborationMode {
                mode: "plan".into(),
                settings: CollaborationSettings {
                    model: plan_model.unwrap_or_default(),
                    reasoning_effort: None,
                    developer_instructions: None,
                },
            },
        ),
        output_schema,
    }
}

fn sandbox_mode(name: &str) -> Option<SandboxMode> {
    match name {
        "read-only" => Some(SandboxMode::ReadOnly),
        "workspace-write" => Some(SandboxMode::WorkspaceWrite),
        "danger-full-access" => Some(SandboxMode::DangerFullAccess),
        _ => None,
    }
}

pub(super) fn sandbox_mode_name(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::ReadOnly => "read-only",
        SandboxMode::WorkspaceWrite => "workspace-write",
        SandboxMode::DangerFullAccess => "danger-full-access",
    }
}

fn approval_policy(name: &str) -> Option<ApprovalPolicy> {
    match name {
        "never" => Some(ApprovalPolicy::Never),
        "on-request" => Some(ApprovalPolicy::OnRequest),
        "on-failure" => Some(ApprovalPolicy::OnFailure),
        "untrusted" => Some(ApprovalPolicy::Untrusted),
        _ => None,
    }
}

pub(super) fn approval_policy_name(policy: ApprovalPolicy) -> &'static str {
    match policy {
        ApprovalPolicy::Never => "never",
        ApprovalPolicy::OnRequest => "on-request",
        ApprovalPolicy::OnFailure => "on-failure",
        ApprovalPolicy::Untrusted => "untrusted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_settings_become_turn_params() {
        let settings = TurnSettings {
            cwd: Some("/w".into()),
            sandbox: Some(SandboxMode::WorkspaceWrite),
            approval_policy: Some(ApprovalPolicy::Untrusted),
            model: Some("m".into()),
            effort: None,
            collaboration_mode: Some(CollaborationMode::Plan),
        };
        let turn = turn_start(
            "t",
            vec![InputItem::text("hi")],
            "mcp-turn:op".into(),
            &settings,
            Some("thread-model".into()),
            None,
        );
        let params = serde_json::to_value(&turn).expect("params");
        assert_eq!(params["sandboxPolicy"], json!({"type": "workspaceWrite"}));
        assert_eq!(params["approvalPolicy"], json!("untrusted"));
        assert_eq!(params["collaborationMode"]["mode"], json!("plan"));
        assert_eq!(
            params["collaborationMode"]["settings"]["model"],
            json!("thread-model")
        );
        assert_eq!(params["clientUserMessageId"], json!("mcp-turn:op"));
        let default = TurnSettings {
            collaboration_mode: Some(CollaborationMode::Default),
            ..settings
        };
        let turn = turn_start("t", Vec::new(), "id".into(), &default, None, None);
        assert!(turn.collaboration_mode.is_none());
    }
}
