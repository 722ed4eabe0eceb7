//! Pending-interaction kinds (seed §c) and the reply sent when nobody answers in time.

use serde_json::{json, Value};

use crate::domain::server_requests::ServerRequestKind;

/// The interaction kind of a server->client request method, or `None` when the method is not an interaction
/// (the one table is [`ServerRequestKind`]).
pub fn interaction_kind(method: &str) -> Option<&'static str> {
    ServerRequestKind::parse(method).map(ServerRequestKind::seed_kind)
}

/// The operation status a pending interaction of `kind` puts its operation in.
pub fn waiting_status(kind: &str) -> &'static str {
    if kind == "user_input" {
        "waiting_for_user_input"
    } else {
        "waiting_for_approval"
    }
}

/// Interaction statuses; everything but `pending` is final.
pub const INTERACTION_STATUSES: [&str; 6] = [
    "pending",
    "answered",
    "auto_declined",
    "expired",
    "failed",
    "orphaned_after_app_server_exit",
];

/// The reply sent when an interaction expires unanswered: decline (cancel when decline is not offered) for
/// approvals, no permissions for the turn, empty answers, or an elicitation decline.
pub fn default_decline_response(kind: &str, available_decisions: &[String]) -> Value {
    match kind {
        "approval" => {
            let decision = if available_decisions.is_empty()
                || available_decisions.iter().any(|d| d == "decline")
            {
                "decline"
            } else {
                "cancel"
            };
            json!({"decision": decision})
        }
        "permissions" => json!({"permissions": {}, "scope": "turn"}),
        "user_input" => json!({"answers": {}}),
        _ => json!({"action": "decline", "content": null, "_meta": null}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_defaults() {
        assert_eq!(
            interaction_kind("item/fileChange/requestApproval"),
            Some("approval")
        );
        assert_eq!(
            interaction_kind("tool/requestUserInput"),
            Some("user_input")
        );
        assert_eq!(
            interaction_kind("item/permissions/requestApproval"),
            Some("permissions")
        );
        assert_eq!(
            interaction_kind("mcpServer/elicitation/request"),
            Some("elicitation")
        );
        assert_eq!(interaction_kind("account/chatgptAuthTokens/refresh"), None);
        let only_cancel = vec!["accept".to_string(), "cancel".to_string()];
        assert_eq!(
            default_decline_response("approval", &only_cancel),
            json!({"decision": "cancel"})
        );
        assert_eq!(
            default_decline_response("approval", &[]),
            json!({"decision": "decline"})
        );
        assert_eq!(
            default_decline_response("permissions", &[]),
            json!({"permissions": {}, "scope": "turn"})
        );
        assert_eq!(
            default_decline_response("user_input", &[]),
            json!({"answers": {}})
        );
        assert_eq!(
            default_decline_response("elicitation", &[])["action"],
            "decline"
        );
    }
}
