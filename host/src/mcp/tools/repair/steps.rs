//! The targets of a repair and its steps: the candidates the host offers the plugin, the allowlist check of
//! each planned step, the state of a step's target before, the state a dry run predicts after, and performing
//! a step through the store or the app-server supervisor.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::{actions, procedures};
use crate::app::App;
use crate::appserver::RestartMode;
use crate::engine::repairs::{PlannedStep, StepAction};
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::repairs::{Candidate, RepairScope};
use crate::time::now_ms;

/// What a repair may act on.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Candidate operations.
    pub operations: Vec<Candidate>,
    /// Candidate pending interactions.
    pub interactions: Vec<Candidate>,
    /// Candidate prompt submissions (`status`: their operation's).
    pub submissions: Vec<Candidate>,
    /// Candidate workflows.
    pub workflows: Vec<Candidate>,
    /// Host procedures offered (`chat_history`, `paths_and_config`).
    pub procedures: Vec<&'static str>,
    /// Whether app-server runs here.
    pub app_server_running: bool,
    /// Its active turns.
    pub active_turns: usize,
}

/// The candidates of `action` in `scope`, stale when untouched for `stale_after_ms`, old (submissions) when
/// created more than `older_than_ms` ago.
pub async fn gather(
    app: &App,
    action: &str,
    scope: RepairScope,
    stale_after_ms: i64,
    older_than_ms: i64,
) -> Result<Targets, ToolError> {
    let store = &app.engine.store;
    let cutoff = now_ms() - stale_after_ms;
    let status = app.appserver.status();
    let mut targets = Targets {
        app_server_running: status.running,
        active_turns: status.active_turns,
        ..Targets::default()
    };
    match action {
        "recover_stale_operations" => {
            targets.operations = store.stale_operations(scope, cutoff).await?
        }
        "mark_orphaned_after_exit" => {
            targets.operations = store.orphan_candidates(scope, cutoff).await?
        }
        "expire_stale_pending_interactions" => {
            targets.interactions = store.stale_interactions(scope, cutoff).await?
        }
        "interrupt_turn" => {
            targets.operations = store.interruptible_operations(scope, cutoff).await?
        }
        "cleanup_prompt_submissions" => {
            targets.submissions = store
                .old_prompt_submissions(scope, now_ms() - older_than_ms)
                .await?
        }
        "reconcile_workflow_from_thread" => {
            targets.workflows = store.repair_workflows(scope, true, cutoff).await?
        }
        "retry_workflow_with_runtime_policy" => {
            targets.workflows = store.repair_workflows(scope, false, cutoff).await?
        }
        "refresh_catalog_and_history" => targets.procedures = vec![procedures::CHAT_HISTORY],
        "validate_paths_and_config" => targets.procedures = vec![procedures::PATHS_AND_CONFIG],
        _ => {}
    }
    Ok(targets)
}

impl Targets {
    /// The `repair-request/v1` document the plugin reads from the finding's details.
    pub fn request(&self, action: &str, force: bool, reason: Option<&str>) -> Value {
        let now = now_ms();
        json!({
            "schemaVersion": "repair-request/v1",
            "action": action,
            "force": force,
            "reason": reason,
            "candidates": {
                "operations": self.operations.iter().map(|c| json!({
                    "operationId": c.id, "status": c.status, "operationType": c.kind,
                    "idleMinutes": (now - c.since) / 60_000,
                })).collect::<Vec<_>>(),
                "interactions": self.interactions.iter().map(|c| json!({
                    "interactionId": c.id, "status": c.status, "kind": c.kind,
                    "ageMinutes": (now - c.since) / 60_000,
                })).collect::<Vec<_>>(),
                "submissions": self.submissions.iter().map(|c| json!({
                    "submissionId": c.id, "operationStatus": c.status, "operationType": c.kind,
                    "ageDays": (now - c.since) / 86_400_000,
                })).collect::<Vec<_>>(),
                "workflows": self.workflows.iter().map(|c| json!({
                    "workflowId": c.id, "status": c.status, "kind": c.kind,
                    "idleMinutes": (now - c.since) / 60_000,
                })).collect::<Vec<_>>(),
                "procedures": self.procedures.iter().map(|p| json!({"procedure": p})).collect::<Vec<_>>(),
                "appServer": {"running": self.app_server_running, "activeTurns": self.active_turns},
            },
        })
    }
}

/// A planned step with the host's verdict on it.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The step.
    pub step: PlannedStep,
    /// Why the host refuses it (`None`: allowed).
    pub refusal: Option<String>,
}

/// Checks every step of `action` against the allowlist: a kind the action allows, on a target the host
/// offered, each target once.
pub fn check(action: &str, steps: Vec<PlannedStep>, targets: &Targets) -> Vec<Checked> {
    let mut seen = BTreeSet::new();
    steps
        .into_iter()
        .map(|step| {
            let target = step.action.target().unwrap_or("app-server").to_string();
            let offered = match &step.action {
                StepAction::FailOperation(id, _) | StepAction::CancelOperation(id) => {
                    targets.operations.iter().any(|c| &c.id == id)
                }
                StepAction::ExpireInteraction(id) => {
                    targets.interactions.iter().any(|c| &c.id == id)
                }
                StepAction::ReleaseLease(id) => {
                    targets.submissions.iter().any(|c| &c.id == id)
                        || targets.workflows.iter().any(|c| &c.id == id)
                        || targets.procedures.iter().any(|p| p == id)
                }
                StepAction::RunProcedure(_, id) => {
                    targets.operations.iter().any(|c| &c.id == id)
                        || targets.submissions.iter().any(|c| &c.id == id)
                        || targets.workflows.iter().any(|c| &c.id == id)
                        || targets.procedures.iter().any(|p| p == id)
                }
                StepAction::RestartAppServer => true,
                StepAction::ArchiveThread(_) => false,
            };
            let refusal = if !actions::allows(action, &step.action) {
                Some(format!(
                    "{} is outside the allowlist of {action} ({})",
                    step.action.kind(),
                    actions::allowed_kinds(action).join(", ")
                ))
            } else if !offered {
                Some(format!("{target} is not a candidate of {action}"))
            } else if !seen.insert(target.clone()) {
                Some(format!("{target} is targeted twice"))
            } else {
                None
            };
            Checked { step, refusal }
        })
        .collect()
}

/// The step as the answer shows it.
pub fn step_json(checked: &Checked) -> Value {
    let action = &checked.step.action;
    json!({
        "id": checked.step.id,
        "description": checked.step.description,
        "kind": action.kind(),
        "target": action.target(),
        "reason": match action { StepAction::FailOperation(_, reason) => Some(reason.as_str()), _ => None },
        "allowed": checked.refusal.is_none(),
        "refusal": checked.refusal,
    })
}

/// The state of a step's target now. `listed` is the state before, when this is the state after.
pub async fn state(
    app: &App,
    action: &str,
    step: &StepAction,
    listed: Option<&Value>,
) -> Result<Value, ToolError> {
    if procedures::handles(action) {
        let target = step.target().unwrap_or_default();
        return procedures::state(app, action, target, listed).await;
    }
    Ok(match step {
        StepAction::FailOperation(id, _) => {
            let op = app.engine.store.get_operation(id).await?;
            json!({"kind": "operation", "id": id, "status": op.map(|o| o.status.as_str().to_string())})
        }
        StepAction::ExpireInteraction(id) => {
            let it = app.engine.store.get_interaction(id).await?;
            json!({"kind": "interaction", "id": id, "status": it.map(|i| i.status)})
        }
        _ => {
            let status = app.appserver.status();
            json!({"kind": "appServer", "id": null, "running": status.running, "pid": status.pid})
        }
    })
}

/// The state a step of `action` leaves its target in, as a dry run predicts it.
pub async fn predicted(
    app: &App,
    action: &str,
    step: &StepAction,
    before: &Value,
) -> Result<Value, ToolError> {
    if procedures::handles(action) {
        return procedures::predict(app, action, before).await;
    }
    let mut after = before.clone();
    match step {
        StepAction::FailOperation(..) => after["status"] = json!(actions::failed_status(action)),
        StepAction::ExpireInteraction(_) => after["status"] = json!("expired"),
        _ => {
            after["running"] = json!(false);
            after["pid"] = Value::Null;
        }
    }
    Ok(after)
}

/// Performs one allowed step of `action`; returns what the step produced, when it produces more than its
/// target's state.
pub async fn perform(
    app: &App,
    action: &str,
    step: &StepAction,
    timeout: Duration,
    args: &Args,
) -> Result<Option<Value>, ToolError> {
    if procedures::handles(action) {
        let target = step.target().unwrap_or_default();
        return procedures::perform(app, action, target, timeout, args).await;
    }
    match step {
        StepAction::FailOperation(id, reason) => {
            let error = json!({"code": "REPAIRED", "message": reason, "repairAction": action});
            app.engine
                .store
                .end_operation_by_repair(id, actions::failed_status(action), error)
                .await?;
            // An operation that held a slot freed it: the next one in the queue may start now, not at the poll.
            app.engine.wake();
        }
        StepAction::ExpireInteraction(id) => {
            app.engine
                .store
                .expire_interaction_by_repair(id, action)
                .await?;
            // The owner's courier sends the stored decline (here at once; a worker polls for it).
            app.engine.wake_courier();
        }
        StepAction::RestartAppServer => {
            let mode = if action == "force_restart_app_server" {
                RestartMode::Force
            } else {
                RestartMode::Idle
            };
            // Stopped, not started again: the next call that needs app-server starts a fresh one, so the
            // state after is exactly what the dry run predicts.
            tokio::time::timeout(timeout, app.appserver.stop(mode))
                .await
                .map_err(|_| {
                    ToolError::new(
                        ErrorCode::Timeout,
                        format!(
                            "app-server stop did not finish within {}s",
                            timeout.as_secs()
                        ),
                    )
                })??;
        }
        other => {
            // `check` refuses these before anything is performed; reaching here is a bug.
            return Err(ToolError::new(
                ErrorCode::Internal,
                format!("{} is not performed by this host", other.kind()),
            ));
        }
    }
    Ok(None)
}
