//! The repair action table: aliases, which actions the plugins plan and which WIT step kinds each may use (the
//! allowlist; the v0.1 kinds the newer actions are mapped onto are explained in `procedures`), the force rules and the loop-guard limits (the seed's §g).

use crate::domain::rules::repairs;
use crate::engine::repairs::StepAction;

/// Actions a repair plugin plans and this host performs: every canonical action of the seed.
pub const SUPPORTED: &[&str] = &[
    "recover_stale_operations",
    "mark_orphaned_after_exit",
    "expire_stale_pending_interactions",
    "restart_app_server_idle",
    "force_restart_app_server",
    "refresh_catalog_and_history",
    "reconcile_workflow_from_thread",
    "retry_workflow_with_runtime_policy",
    "validate_paths_and_config",
    "interrupt_turn",
    "cleanup_prompt_submissions",
];

/// The canonical action of `requested` (an alias resolved, `domain::rules::repairs`); itself when it names
/// none.
pub fn canonical(requested: &str) -> &str {
    repairs::canonical(requested).unwrap_or(requested)
}

/// What a step of `action` may be: a step kind the allowlist holds, on a target the host offered. A
/// `run-procedure` step (WIT 0.2) must name `action` itself, one of the actions performed by a procedure.
pub fn allows(action: &str, step: &StepAction) -> bool {
    if let StepAction::RunProcedure(named, _) = step {
        return named == action && super::procedures::handles(action);
    }
    matches!(
        (action, step),
        (
            "recover_stale_operations" | "mark_orphaned_after_exit",
            StepAction::FailOperation(..)
        ) | (
            "expire_stale_pending_interactions",
            StepAction::ExpireInteraction(_)
        ) | (
            "restart_app_server_idle" | "force_restart_app_server",
            StepAction::RestartAppServer
        ) | ("interrupt_turn", StepAction::CancelOperation(_))
            | (
                "cleanup_prompt_submissions"
                    | "reconcile_workflow_from_thread"
                    | "retry_workflow_with_runtime_policy"
                    | "refresh_catalog_and_history"
                    | "validate_paths_and_config",
                StepAction::ReleaseLease(_)
            )
    )
}

/// The step kinds `action` allows, for the refusal's details.
pub fn allowed_kinds(action: &str) -> &'static [&'static str] {
    match action {
        "recover_stale_operations" | "mark_orphaned_after_exit" => &["fail-operation"],
        "expire_stale_pending_interactions" => &["expire-interaction"],
        "restart_app_server_idle" | "force_restart_app_server" => &["restart-app-server"],
        "interrupt_turn" => &["cancel-operation", "run-procedure"],
        "cleanup_prompt_submissions"
        | "reconcile_workflow_from_thread"
        | "retry_workflow_with_runtime_policy"
        | "refresh_catalog_and_history"
        | "validate_paths_and_config" => &["release-lease", "run-procedure"],
        _ => &[],
    }
}

/// The terminal status a `fail-operation` step of `action` gives (the seed: `orphaned` is set only by repair).
pub fn failed_status(action: &str) -> &'static str {
    if action == "mark_orphaned_after_exit" {
        "orphaned"
    } else {
        "failed"
    }
}

/// Whether a real run of `action` needs `force=true` (given whether app-server runs).
pub fn needs_force(action: &str, app_server_running: bool) -> bool {
    match action {
        _ if repairs::requires_force(action) => true,
        "mark_orphaned_after_exit" => app_server_running,
        _ => false,
    }
}

/// The loop guard's limit for `action`: (real runs allowed, window in ms).
pub fn guard_limit(action: &str) -> (usize, i64) {
    const MINUTE: i64 = 60_000;
    match action {
        "retry_workflow_with_runtime_policy" => (2, 24 * 60 * MINUTE),
        "restart_app_server_idle" => (2, 30 * MINUTE),
        "force_restart_app_server" => (1, 30 * MINUTE),
        "interrupt_turn" => (1, 120 * MINUTE),
        _ => (2, 120 * MINUTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_the_allowlist_is_per_action() {
        assert_eq!(
            canonical("mark_stale_turns_orphaned"),
            "mark_orphaned_after_exit"
        );
        assert_eq!(
            canonical("rebuild_search_index"),
            "refresh_catalog_and_history"
        );
        assert_eq!(
            canonical("restart_app_server_idle"),
            "restart_app_server_idle"
        );
        let fail = StepAction::FailOperation("op_1".into(), "x".into());
        assert!(allows("recover_stale_operations", &fail));
        assert!(!allows("expire_stale_pending_interactions", &fail));
        assert!(!allows(
            "recover_stale_operations",
            &StepAction::CancelOperation("op_1".into())
        ));
        assert!(!allows(
            "restart_app_server_idle",
            &StepAction::ArchiveThread("t".into())
        ));
        let cancel = StepAction::CancelOperation("op_1".into());
        assert!(allows("interrupt_turn", &cancel));
        assert!(!allows("interrupt_turn", &fail));
        let release = StepAction::ReleaseLease("chat_history".into());
        assert!(allows("refresh_catalog_and_history", &release));
        assert!(!allows("recover_stale_operations", &release));
        assert!(!allows("interrupt_turn", &release));
        // A 0.2 procedure step runs only the procedure of the action it was planned for.
        let procedure = |named: &str| StepAction::RunProcedure(named.into(), "wf_1".into());
        assert!(allows(
            "reconcile_workflow_from_thread",
            &procedure("reconcile_workflow_from_thread")
        ));
        assert!(!allows(
            "reconcile_workflow_from_thread",
            &procedure("retry_workflow_with_runtime_policy")
        ));
        assert!(!allows(
            "recover_stale_operations",
            &procedure("recover_stale_operations")
        ));
        assert_eq!(guard_limit("force_restart_app_server"), (1, 30 * 60_000));
        assert!(needs_force("mark_orphaned_after_exit", true));
        assert!(!needs_force("mark_orphaned_after_exit", false));
    }
}
