//! Operation status sets and transitions, next actions and poll hints (seed §c), retry backoff, token bands.

use crate::domain::operation::{kind_names, status_names, OperationKind, OperationStatus};

/// Statuses from which a worker may (re)start an operation.
pub const STARTABLE: [&str; 5] = status_names(OperationStatus::STARTABLE);

/// Statuses of an operation whose turn is live.
pub const ACTIVE: [&str; 6] = status_names(OperationStatus::ACTIVE);

/// Final statuses.
pub const TERMINAL: [&str; 8] = status_names(OperationStatus::TERMINAL);

/// Operation types the store accepts (the five public ones and the internal `review_start`).
pub const OPERATION_TYPES: [&str; 6] = kind_names(OperationKind::ALL);

/// Operation types the duplicate-prompt guard applies to.
pub const DEDUP_TYPES: [&str; 3] = kind_names([
    OperationKind::StartChat,
    OperationKind::SendMessage,
    OperationKind::ExecutePlan,
]);

/// Attempts before an operation that never reached a turn is failed.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// True for a startable status.
pub fn is_startable(status: &str) -> bool {
    OperationStatus::parse(status).is_some_and(OperationStatus::is_startable)
}

/// True for an active status.
pub fn is_active(status: &str) -> bool {
    OperationStatus::parse(status).is_some_and(OperationStatus::is_active)
}

/// True for a terminal status.
pub fn is_terminal(status: &str) -> bool {
    OperationStatus::parse(status).is_some_and(OperationStatus::is_terminal)
}

/// True for any status the seed knows.
pub fn is_known(status: &str) -> bool {
    OperationStatus::parse(status).is_some()
}

/// Whether `from -> to` is allowed for an ordinary status write.
///
/// Startable and active statuses may move to any known status (the flow is forward but a retry goes back to
/// `queued`, and steer/fork skip steps), except that an active operation (a turn exists) never goes back to a
/// startable one: it is not restarted. Terminal statuses are final; the only way out is
/// [`is_reopen_allowed`], the seed's reconcile rule. Writing the current status again is always allowed.
pub fn is_transition_allowed(from: &str, to: &str) -> bool {
    if !is_known(to) {
        return false;
    }
    if from == to {
        return true;
    }
    if is_terminal(from) {
        return false;
    }
    if is_active(from) && is_startable(to) {
        return false;
    }
    is_startable(from) || is_active(from)
}

/// The seed's reconcile rule: a terminal operation whose turn is not trusted-terminal reopens to `running`.
pub fn is_reopen_allowed(from: &str, to: &str, turn_trusted_terminal: bool) -> bool {
    is_terminal(from) && to == "running" && !turn_trusted_terminal
}

/// The `queue_status` that goes with a status: terminal statuses carry themselves (`completed`, `failed`, ...),
/// active ones are `running`, startable ones keep the current queue status (`queued` or `scheduled`).
pub fn queue_status_for(status: &str, current: &str) -> String {
    if is_terminal(status) {
        status.to_string()
    } else if is_active(status) {
        "running".to_string()
    } else {
        current.to_string()
    }
}

/// Seconds to wait before retrying after the `attempt`-th failure: `min(60, max(5, 5 * attempt))`.
pub fn retry_backoff_seconds(attempt: i64) -> i64 {
    (5 * attempt).clamp(5, 60)
}

/// The seed's `nextRecommendedAction` for an operation.
///
/// `queued_reason` overrides the status table while the operation waits in the queue; `has_turn` distinguishes a
/// fork that completed without a turn (`read_forked_thread`).
pub fn next_recommended_action(
    status: &str,
    operation_type: &str,
    has_turn: bool,
    queued_reason: Option<&str>,
) -> &'static str {
    if is_startable(status) {
        if let Some(reason) = queued_reason {
            if reason.ends_with("_slot_limit") && reason != "write_project_slot_limit" {
                return "wait_for_worker_slot";
            }
            if reason == "resource_lock_conflict" || reason == "write_project_slot_limit" {
                return "wait_for_resource_lock";
            }
            if reason == "app_server_backpressure" || reason == "config_fingerprint_mismatch" {
                return "inspect_worker_health";
            }
        }
    }
    match status {
        "queued" => "wait_for_background_worker",
        s if s.starts_with("starting_") => "poll_operation_status",
        s if s.starts_with("waiting_") => "answer_pending_interaction",
        "completed" if operation_type == "fork_thread" && !has_turn => "read_forked_thread",
        "completed" => "read_final_report",
        s if is_terminal(s) => "inspect_diagnostics",
        _ => "poll_turn_status",
    }
}

/// Seconds a client should wait before polling again: 2 while startable, 10 while waiting for an answer, 15 while
/// running, 0 when terminal.
pub fn recommended_poll_after_seconds(status: &str) -> u64 {
    if is_startable(status) {
        2
    } else if status.starts_with("waiting_") {
        10
    } else if is_active(status) {
        15
    } else {
        0
    }
}

/// Public token-usage band: `0`, `<1k`, `1k-10k`, `10k-100k`, `100k-1m`, `1m+`.
pub fn token_band(tokens: i64) -> &'static str {
    match tokens {
        i64::MIN..=0 => "0",
        1..=999 => "<1k",
        1_000..=9_999 => "1k-10k",
        10_000..=99_999 => "10k-100k",
        100_000..=999_999 => "100k-1m",
        _ => "1m+",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_disjoint_and_complete() {
        for s in STARTABLE {
            assert!(!is_active(s) && !is_terminal(s), "{s}");
        }
        for s in ACTIVE {
            assert!(!is_terminal(s), "{s}");
        }
        assert_eq!(STARTABLE.len() + ACTIVE.len() + TERMINAL.len(), 19);
        assert!(!is_known("legacy_inline"));
    }

    #[test]
    fn transitions() {
        let cases = [
            ("queued", "starting_app_server", true),
            ("starting_thread", "queued", true),
            ("starting_turn", "running", true),
            ("starting_thread", "completed", true),
            ("running", "waiting_for_approval", true),
            ("waiting_for_approval", "running", true),
            ("running", "completed", true),
            ("running", "queued", false),
            ("completed", "completed", true),
            ("completed", "failed", false),
            ("failed", "queued", false),
            ("queued", "bogus", false),
            ("queued", "orphaned", true),
        ];
        for (from, to, allowed) in cases {
            assert_eq!(is_transition_allowed(from, to), allowed, "{from} -> {to}");
        }
        assert!(is_reopen_allowed("completed", "running", false));
        assert!(!is_reopen_allowed("completed", "running", true));
        assert!(!is_reopen_allowed("completed", "queued", false));
    }

    #[test]
    fn next_actions_follow_the_seed_table() {
        let cases = [
            (
                "queued",
                "start_chat",
                false,
                None,
                "wait_for_background_worker",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("global_slot_limit"),
                "wait_for_worker_slot",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("thread_slot_limit"),
                "wait_for_worker_slot",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("resource_lock_conflict"),
                "wait_for_resource_lock",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("write_project_slot_limit"),
                "wait_for_resource_lock",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("app_server_backpressure"),
                "inspect_worker_health",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("config_fingerprint_mismatch"),
                "inspect_worker_health",
            ),
            (
                "queued",
                "start_chat",
                false,
                Some("waiting_for_worker"),
                "wait_for_background_worker",
            ),
            (
                "starting_thread",
                "start_chat",
                false,
                None,
                "poll_operation_status",
            ),
            (
                "waiting_for_approval",
                "start_chat",
                true,
                None,
                "answer_pending_interaction",
            ),
            (
                "waiting_for_user_input",
                "start_chat",
                true,
                None,
                "answer_pending_interaction",
            ),
            (
                "running",
                "start_chat",
                true,
                Some("global_slot_limit"),
                "poll_turn_status",
            ),
            (
                "first_message_received",
                "send_message",
                true,
                None,
                "poll_turn_status",
            ),
            ("completed", "start_chat", true, None, "read_final_report"),
            (
                "completed",
                "fork_thread",
                false,
                None,
                "read_forked_thread",
            ),
            ("completed", "fork_thread", true, None, "read_final_report"),
            ("failed", "start_chat", false, None, "inspect_diagnostics"),
            (
                "unknown_after_app_server_exit",
                "fork_thread",
                false,
                None,
                "inspect_diagnostics",
            ),
        ];
        for (status, kind, has_turn, reason, expected) in cases {
            assert_eq!(
                next_recommended_action(status, kind, has_turn, reason),
                expected,
                "{status} {reason:?}"
            );
        }
    }

    #[test]
    fn poll_hints_backoff_and_bands() {
        assert_eq!(recommended_poll_after_seconds("queued"), 2);
        assert_eq!(recommended_poll_after_seconds("starting_turn"), 2);
        assert_eq!(recommended_poll_after_seconds("waiting_for_user_input"), 10);
        assert_eq!(recommended_poll_after_seconds("running"), 15);
        assert_eq!(recommended_poll_after_seconds("completed"), 0);
        let backoff: Vec<i64> = (0..15).map(retry_backoff_seconds).collect();
        assert_eq!(
            backoff,
            [5, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 60, 60]
        );
        let bands = [
            (0, "0"),
            (1, "<1k"),
            (999, "<1k"),
            (1_000, "1k-10k"),
            (10_000, "10k-100k"),
            (99_999, "10k-100k"),
            (100_000, "100k-1m"),
            (1_000_000, "1m+"),
        ];
        for (tokens, band) in bands {
            assert_eq!(token_band(tokens), band, "{tokens}");
        }
    }
}
