//! The default repair plugin: turns the host's repair finding into steps.
//!
//! The host hands over a finding whose `code` is the canonical repair action and whose `details` is the
//! `repair-request/v1` document: `{action, force, reason, candidates: {operations: [{operationId, status}],
//! interactions: [{interactionId, kind}], appServer: {running, activeTurns}}}`. The plugin decides which of
//! the candidates to act on and how; the host checks every step against its allowlist before doing anything.
//!
//! - `recover_stale_operations`: fail every stale operation.
//! - `mark_orphaned_after_exit`: fail every operation left behind by an app-server exit (the host marks it
//!   `orphaned`).
//! - `expire_stale_pending_interactions`: expire every stale pending interaction.
//! - `restart_app_server_idle` / `force_restart_app_server`: one restart.
//! - `interrupt_turn`: one `run-procedure` per candidate operation (the host interrupts its turn).
//! - `cleanup_prompt_submissions`: one `run-procedure` per old submission (the host deletes it).
//! - `reconcile_workflow_from_thread`, `retry_workflow_with_runtime_policy`: one `run-procedure` per candidate
//!   workflow (the host reconciles it from its thread, or starts a linked retry).
//! - `refresh_catalog_and_history`, `validate_paths_and_config`: one `run-procedure` per procedure the host
//!   offers.
//!
//! The procedure steps are WIT 0.2's `run-procedure {action, target}`, naming the action itself; a 0.1 plan
//! says `cancel-operation` / `release-lease` instead, which the host maps per action.
//! - anything else: no steps.

use serde_json::Value;

wit_bindgen::generate!({
    path: "../../wit/since_v0.2.0",
    world: "repair",
});

use codex_control_plane::plugin::types::Finding;
use exports::codex_control_plane::plugin::repair_plugin::{
    Guest, ProcedureStep, RepairAction, RepairContext, RepairStep,
};

/// A planned step before it becomes a WIT `repair-step`.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Fail an operation: (id, reason).
    Fail(String, String),
    /// Expire an interaction.
    Expire(String),
    /// Restart app-server.
    Restart,
    /// Cancel an operation (an interrupt of its turn).
    Cancel(String),
    /// Release what the host holds for a target (a submission, a workflow, a procedure).
    Release(String),
}

/// The steps of `action` over the candidates in `details` (the `repair-request/v1` document).
pub fn plan(action: &str, details: &Value) -> Vec<(String, Planned)> {
    let candidates = &details["candidates"];
    let ids = |list: &str, key: &str| -> Vec<String> {
        candidates[list]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[key].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let reason = details["reason"].as_str().unwrap_or("").to_string();
    match action {
        "recover_stale_operations" | "mark_orphaned_after_exit" => {
            let why = if reason.is_empty() {
                format!("repair {action}")
            } else {
                reason
            };
            ids("operations", "operationId")
                .into_iter()
                .map(|id| {
                    (
                        format!("end operation {id}"),
                        Planned::Fail(id, why.clone()),
                    )
                })
                .collect()
        }
        "expire_stale_pending_interactions" => ids("interactions", "interactionId")
            .into_iter()
            .map(|id| (format!("expire interaction {id}"), Planned::Expire(id)))
            .collect(),
        "restart_app_server_idle" | "force_restart_app_server" => {
            vec![("restart app-server".to_string(), Planned::Restart)]
        }
        "interrupt_turn" => ids("operations", "operationId")
            .into_iter()
            .map(|id| (format!("interrupt the turn of {id}"), Planned::Cancel(id)))
            .collect(),
        "cleanup_prompt_submissions" => ids("submissions", "submissionId")
            .into_iter()
            .map(|id| {
                (
                    format!("delete prompt submission {id}"),
                    Planned::Release(id),
                )
            })
            .collect(),
        "reconcile_workflow_from_thread" => ids("workflows", "workflowId")
            .into_iter()
            .map(|id| {
                (
                    format!("reconcile workflow {id} from its thread"),
                    Planned::Release(id),
                )
            })
            .collect(),
        "retry_workflow_with_runtime_policy" => ids("workflows", "workflowId")
            .into_iter()
            .map(|id| {
                (
                    format!("retry workflow {id} with the runtime policy"),
                    Planned::Release(id),
                )
            })
            .collect(),
        "refresh_catalog_and_history" | "validate_paths_and_config" => {
            ids("procedures", "procedure")
                .into_iter()
                .map(|id| (format!("run {id}"), Planned::Release(id)))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The exported implementation.
struct DefaultRepairs;

impl Guest for DefaultRepairs {
    fn plan(finding: Finding, _context: RepairContext) -> Vec<RepairStep> {
        let details = finding
            .details
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .unwrap_or(Value::Null);
        plan(&finding.code, &details)
            .into_iter()
            .enumerate()
            .map(|(index, (description, planned))| RepairStep {
                id: format!("step-{}", index + 1),
                description,
                action: match planned {
                    Planned::Fail(id, reason) => RepairAction::FailOperation((id, reason)),
                    Planned::Expire(id) => RepairAction::ExpireInteraction(id),
                    Planned::Restart => RepairAction::RestartAppServer,
                    Planned::Cancel(target) | Planned::Release(target) => {
                        RepairAction::RunProcedure(ProcedureStep {
                            action: finding.code.clone(),
                            target,
                        })
                    }
                },
            })
            .collect()
    }
}

// Exports are only emitted for wasm: native builds exist for the unit tests.
#[cfg(target_arch = "wasm32")]
export!(DefaultRepairs);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stale_operations_are_failed_one_step_each() {
        let details = json!({"reason": "stuck", "candidates": {"operations": [
            {"operationId": "op_a"}, {"operationId": "op_b"}]}});
        let steps = plan("recover_stale_operations", &details);
        assert_eq!(
            steps.iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
            vec![
                Planned::Fail("op_a".into(), "stuck".into()),
                Planned::Fail("op_b".into(), "stuck".into())
            ]
        );
    }

    #[test]
    fn interactions_restarts_and_unknown_actions() {
        let details = json!({"candidates": {"interactions": [{"interactionId": "pi_1"}]}});
        assert_eq!(
            plan("expire_stale_pending_interactions", &details)[0].1,
            Planned::Expire("pi_1".into())
        );
        assert_eq!(
            plan("force_restart_app_server", &json!({}))[0].1,
            Planned::Restart
        );
        assert!(plan("rebuild_search_index", &details).is_empty());
        assert!(plan("recover_stale_operations", &Value::Null).is_empty());
    }

    #[test]
    fn host_procedures_are_released_and_interrupts_cancel() {
        let details = json!({"candidates": {
            "operations": [{"operationId": "op_1"}],
            "submissions": [{"submissionId": "sub_1"}, {"submissionId": "sub_2"}],
            "workflows": [{"workflowId": "wf_1"}],
            "procedures": [{"procedure": "chat_history"}]}});
        assert_eq!(
            plan("interrupt_turn", &details)[0].1,
            Planned::Cancel("op_1".into())
        );
        assert_eq!(plan("cleanup_prompt_submissions", &details).len(), 2);
        for action in [
            "reconcile_workflow_from_thread",
            "retry_workflow_with_runtime_policy",
        ] {
            assert_eq!(plan(action, &details)[0].1, Planned::Release("wf_1".into()));
        }
        assert_eq!(
            plan("refresh_catalog_and_history", &details)[0].1,
            Planned::Release("chat_history".into())
        );
        assert!(plan("validate_paths_and_config", &json!({})).is_empty());
    }
}
