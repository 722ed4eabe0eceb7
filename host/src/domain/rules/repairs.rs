//! The seed's repair action names (`codex_repair_issue`'s `action`), their aliases, and which ones need
//! `force`. Analyzers recommend actions by these names; anything else they recommend is a tool or a step for a
//! person, never a repair.

/// The canonical repair actions.
pub const REPAIR_ACTIONS: [&str; 11] = [
    "recover_stale_operations",
    "refresh_catalog_and_history",
    "reconcile_workflow_from_thread",
    "retry_workflow_with_runtime_policy",
    "mark_orphaned_after_exit",
    "restart_app_server_idle",
    "force_restart_app_server",
    "expire_stale_pending_interactions",
    "validate_paths_and_config",
    "interrupt_turn",
    "cleanup_prompt_submissions",
];

/// Aliases the seed accepts, with the action they stand for.
const ALIASES: [(&str, &str); 5] = [
    ("refresh_catalog_and_kb", "refresh_catalog_and_history"),
    ("refresh_catalog", "refresh_catalog_and_history"),
    ("rebuild_search_index", "refresh_catalog_and_history"),
    ("mark_stale_turns_orphaned", "mark_orphaned_after_exit"),
    (
        "reconcile_operations_with_tracked_turns",
        "recover_stale_operations",
    ),
];

/// The canonical repair action `name` stands for, when it names one.
pub fn canonical(name: &str) -> Option<&'static str> {
    REPAIR_ACTIONS
        .iter()
        .find(|a| **a == name)
        .copied()
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c))
}

/// Whether the action needs `force=true` (the seed: a forced restart and an interrupt always; marking
/// orphaned while app-server runs, which the repair decides when it runs).
pub fn requires_force(action: &str) -> bool {
    matches!(action, "force_restart_app_server" | "interrupt_turn")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_tools_are_no_repairs() {
        assert_eq!(
            canonical("refresh_catalog"),
            Some("refresh_catalog_and_history")
        );
        assert_eq!(
            canonical("mark_stale_turns_orphaned"),
            Some("mark_orphaned_after_exit")
        );
        assert_eq!(canonical("interrupt_turn"), Some("interrupt_turn"));
        assert_eq!(canonical("codex_answer_pending_interaction"), None);
        assert!(requires_force("interrupt_turn") && !requires_force("restart_app_server_idle"));
    }
}
