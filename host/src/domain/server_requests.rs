//! The server-to-client requests `codex app-server` sends, parsed once into a typed kind.
//!
//! One table for everyone: the supervisor routes a request as an interaction only when it parses here, the store
//! records its seed kind, policy plugins see its specific kind, and the courier turns a stored answer into the
//! reply the method expects. The pinned schema (`ServerRequest.json` of `codex app-server
//! generate-json-schema`) still lists the legacy `execCommandApproval` and `applyPatchApproval`, whose replies
//! take a `ReviewDecision` (`approved`, `approved_for_session`, `{denied: {rejection}}`, `abort`) instead of the v2 decisions
//! (`accept`, `acceptForSession`, `decline`, `cancel`); answers are stored in the v2 words and translated on
//! delivery, so a legacy request is answered like any other.

use serde_json::{json, Value};

/// The reason a denied legacy approval gives the model.
const LEGACY_REJECTION: &str = "declined by the operator";

/// A server request we surface as a pending interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRequestKind {
    /// `item/commandExecution/requestApproval`.
    CommandApproval,
    /// `item/fileChange/requestApproval`.
    FileChangeApproval,
    /// `execCommandApproval` (legacy).
    LegacyExecCommandApproval,
    /// `applyPatchApproval` (legacy).
    LegacyApplyPatchApproval,
    /// `item/permissions/requestApproval`.
    Permissions,
    /// `item/tool/requestUserInput` (and the seed's `tool/requestUserInput`).
    UserInput,
    /// `mcpServer/elicitation/request`.
    Elicitation,
}

impl ServerRequestKind {
    /// The kind of a request method, or `None` for requests that are not interactions (answered with an error
    /// by the supervisor at once).
    pub fn parse(method: &str) -> Option<ServerRequestKind> {
        Some(match method {
            "item/commandExecution/requestApproval" => ServerRequestKind::CommandApproval,
            "item/fileChange/requestApproval" => ServerRequestKind::FileChangeApproval,
            "execCommandApproval" => ServerRequestKind::LegacyExecCommandApproval,
            "applyPatchApproval" => ServerRequestKind::LegacyApplyPatchApproval,
            "item/permissions/requestApproval" => ServerRequestKind::Permissions,
            "item/tool/requestUserInput" | "tool/requestUserInput" => ServerRequestKind::UserInput,
            "mcpServer/elicitation/request" => ServerRequestKind::Elicitation,
            _ => return None,
        })
    }

    /// The seed's interaction kind: approval, permissions, user_input or elicitation.
    pub fn seed_kind(self) -> &'static str {
        match self {
            ServerRequestKind::CommandApproval
            | ServerRequestKind::FileChangeApproval
            | ServerRequestKind::LegacyExecCommandApproval
            | ServerRequestKind::LegacyApplyPatchApproval => "approval",
            ServerRequestKind::Permissions => "permissions",
            ServerRequestKind::UserInput => "user_input",
            ServerRequestKind::Elicitation => "elicitation",
        }
    }

    /// The kind as policy plugins see it (more specific than the seed's).
    pub fn policy_kind(self) -> &'static str {
        match self {
            ServerRequestKind::CommandApproval | ServerRequestKind::LegacyExecCommandApproval => {
                "command_approval"
            }
            ServerRequestKind::FileChangeApproval | ServerRequestKind::LegacyApplyPatchApproval => {
                "file_change_approval"
            }
            ServerRequestKind::Permissions => "permissions_approval",
            ServerRequestKind::UserInput => "user_input",
            ServerRequestKind::Elicitation => "elicitation",
        }
    }

    /// True for the legacy approvals, whose params name the thread `conversationId` and carry no turn id.
    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            ServerRequestKind::LegacyExecCommandApproval
                | ServerRequestKind::LegacyApplyPatchApproval
        )
    }

    /// The decisions offered when the request lists none.
    pub fn default_decisions(self) -> Vec<String> {
        if self.seed_kind() == "approval" {
            ["accept", "acceptForSession", "decline", "cancel"]
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        }
    }

    /// The thread a request concerns (`threadId`, or a legacy request's `conversationId`).
    pub fn thread_id(self, params: &Value) -> Option<String> {
        params
            .get("threadId")
            .or_else(|| {
                self.is_legacy()
                    .then(|| params.get("conversationId"))
                    .flatten()
            })
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The JSON-RPC result this method expects for a stored answer (stored answers use the v2 words).
    pub fn wire_reply(self, stored: &Value) -> Value {
        if !self.is_legacy() {
            return stored.clone();
        }
        match stored.get("decision").and_then(Value::as_str) {
            Some("accept") => json!({"decision": "approved"}),
            Some("acceptForSession") => json!({"decision": "approved_for_session"}),
            Some("cancel") => json!({"decision": "abort"}),
            // A decline, and anything a legacy request cannot express, denies; the pinned `ReviewDecision`
            // spells a denial as an object with the reason the model sees.
            _ => json!({"decision": {"denied": {"rejection": LEGACY_REJECTION}}}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interaction_method_of_the_pinned_schema_parses() {
        for method in [
            "item/commandExecution/requestApproval",
            "item/fileChange/requestApproval",
            "item/tool/requestUserInput",
            "mcpServer/elicitation/request",
            "item/permissions/requestApproval",
            "applyPatchApproval",
            "execCommandApproval",
        ] {
            assert!(ServerRequestKind::parse(method).is_some(), "{method}");
        }
        assert_eq!(ServerRequestKind::parse("item/tool/call"), None);
        assert_eq!(ServerRequestKind::parse("attestation/generate"), None);
    }

    #[test]
    fn legacy_approvals_get_review_decisions() {
        let legacy = ServerRequestKind::LegacyExecCommandApproval;
        assert_eq!(legacy.seed_kind(), "approval");
        assert_eq!(
            legacy.wire_reply(&json!({"decision": "accept"})),
            json!({"decision": "approved"})
        );
        assert_eq!(
            legacy.wire_reply(&json!({"decision": "acceptForSession"})),
            json!({"decision": "approved_for_session"})
        );
        assert_eq!(
            legacy.wire_reply(&json!({"decision": "decline"})),
            json!({"decision": {"denied": {"rejection": LEGACY_REJECTION}}})
        );
        assert_eq!(
            legacy.wire_reply(&json!({"decision": "cancel"})),
            json!({"decision": "abort"})
        );
        assert_eq!(
            legacy.thread_id(&json!({"conversationId": "thr_1", "callId": "c"})),
            Some("thr_1".to_string())
        );
        let v2 = ServerRequestKind::CommandApproval;
        assert_eq!(
            v2.wire_reply(&json!({"decision": "accept"})),
            json!({"decision": "accept"})
        );
    }
}
