//! The params of the requests we send to `codex app-server`.

use serde::Serialize;
use serde_json::Value;

use super::replies::{
    Ack, ConfigReadReply, GoalCleared, GoalReply, HooksListReply, ThreadReadReply, ThreadReply,
    TurnReply, TurnSteered,
};
use super::ClientRequest;

/// `initialize`: who we are and whether we use experimental methods.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Initialize {
    /// Our name and version.
    pub client_info: ClientInfo,
    /// Opt-ins.
    pub capabilities: InitializeCapabilities,
}

/// `initialize.clientInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// Machine name.
    pub name: String,
    /// Display name.
    pub title: String,
    /// Our version.
    pub version: String,
}

/// `initialize.capabilities`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeCapabilities {
    /// Goals, reviews and collaboration modes are experimental methods.
    pub experimental_api: bool,
}

impl ClientRequest for Initialize {
    const METHOD: &'static str = "initialize";
    type Reply = Ack;
}

/// `thread/start`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStart {
    /// Marks threads this server created (app-server records it on the thread).
    pub service_name: String,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `never`, `on-request`, `on-failure` or `untrusted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<String>,
    /// Sandbox mode name (`read-only`, `workspace-write`, `danger-full-access`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Model slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl ClientRequest for ThreadStart {
    const METHOD: &'static str = "thread/start";
    type Reply = ThreadReply;
}

/// `thread/fork`: a new thread with a copy of another's history.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadFork {
    /// The source thread.
    pub thread_id: String,
    /// An ephemeral fork is not persisted by app-server.
    pub ephemeral: bool,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Approval policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<String>,
    /// Sandbox mode name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Model slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Config overrides the caller passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl ClientRequest for ThreadFork {
    const METHOD: &'static str = "thread/fork";
    type Reply = ThreadReply;
}

/// `thread/resume`: loads a thread this app-server generation did not start.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadResume {
    /// The thread.
    pub thread_id: String,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Model for the resumed thread; absent keeps the one its history records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl ClientRequest for ThreadResume {
    const METHOD: &'static str = "thread/resume";
    type Reply = ThreadReply;
}

/// `thread/name/set`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadSetName {
    /// The thread.
    pub thread_id: String,
    /// Its new title.
    pub name: String,
}

impl ClientRequest for ThreadSetName {
    const METHOD: &'static str = "thread/name/set";
    type Reply = Ack;
}

/// `thread/read`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadRead {
    /// The thread.
    pub thread_id: String,
    /// Whether the reply lists the thread's turns.
    pub include_turns: bool,
}

impl ClientRequest for ThreadRead {
    const METHOD: &'static str = "thread/read";
    type Reply = ThreadReadReply;
}

/// Declares a request whose only param is the thread id.
macro_rules! thread_request {
    ($(#[$doc:meta])* $name:ident, $method:literal, $reply:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// The thread.
            pub thread_id: String,
        }

        impl ClientRequest for $name {
            const METHOD: &'static str = $method;
            type Reply = $reply;
        }
    };
}

thread_request!(
    /// `thread/archive`.
    ThreadArchive, "thread/archive", Ack
);
thread_request!(
    /// `thread/unarchive`.
    ThreadUnarchive, "thread/unarchive", Ack
);
thread_request!(
    /// `thread/compact/start`: compaction runs as a turn; its end arrives as notifications.
    ThreadCompactStart, "thread/compact/start", Ack
);
thread_request!(
    /// `thread/goal/get`.
    ThreadGoalGet, "thread/goal/get", GoalReply
);
thread_request!(
    /// `thread/goal/clear`.
    ThreadGoalClear, "thread/goal/clear", GoalCleared
);

/// A goal's status as `thread/goal/set` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GoalStatus {
    /// The thread works towards it (an idle thread starts a continuation turn).
    Active,
    /// Kept, but not worked on.
    Paused,
    /// Reached.
    Complete,
}

/// `thread/goal/set`: creates or changes the thread's goal; absent fields keep their value.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadGoalSet {
    /// The thread.
    pub thread_id: String,
    /// What the goal is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// Its new status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<GoalStatus>,
    /// Token budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<i64>,
}

impl ClientRequest for ThreadGoalSet {
    const METHOD: &'static str = "thread/goal/set";
    type Reply = GoalReply;
}

/// One input item of a turn.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InputItem {
    /// Text typed by the user.
    Text(TextItem),
    /// An item the caller gave as is (images, mentions), validated by the tool's input schema.
    Given(Value),
}

impl InputItem {
    /// A text item.
    pub fn text(text: impl Into<String>) -> InputItem {
        InputItem::Text(TextItem {
            kind: TextKind::Text,
            text: text.into(),
            text_elements: Vec::new(),
        })
    }
}

/// `{"type": "text", "text": …, "text_elements": []}`.
#[derive(Debug, Clone, Serialize)]
pub struct TextItem {
    #[serde(rename = "type")]
    kind: TextKind,
    text: String,
    text_elements: Vec<Value>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
enum TextKind {
    Text,
}

/// The sandbox a turn runs in (`turn/start` takes an object where `thread/start` takes a mode name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SandboxPolicy {
    /// No writes.
    ReadOnly,
    /// Writes inside the workspace.
    WorkspaceWrite,
    /// No sandbox.
    DangerFullAccess,
}

impl SandboxPolicy {
    /// The policy for a sandbox mode name.
    pub fn from_mode(mode: &str) -> Option<SandboxPolicy> {
        match mode {
            "read-only" => Some(SandboxPolicy::ReadOnly),
            "workspace-write" => Some(SandboxPolicy::WorkspaceWrite),
            "danger-full-access" => Some(SandboxPolicy::DangerFullAccess),
            _ => None,
        }
    }
}

/// A preset collaboration mode (plan mode for plan workflows).
#[derive(Debug, Clone, Serialize)]
pub struct CollaborationMode {
    /// `plan` or `default`.
    pub mode: String,
    /// The mode's settings.
    pub settings: CollaborationSettings,
}

/// Settings of a collaboration mode; the protocol spells these in snake case, and `null` means "the mode's own".
#[derive(Debug, Clone, Serialize)]
pub struct CollaborationSettings {
    /// Model slug (required by the protocol; empty keeps the thread's).
    pub model: String,
    /// Reasoning effort.
    pub reasoning_effort: Option<String>,
    /// Developer instructions.
    pub developer_instructions: Option<String>,
}

/// `turn/start`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnStart {
    /// The thread.
    pub thread_id: String,
    /// The user message.
    pub input: Vec<InputItem>,
    /// Ties the user message app-server records to the operation that sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_message_id: Option<String>,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Approval policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<String>,
    /// Sandbox for this turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_policy: Option<SandboxPolicy>,
    /// Model slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Reasoning effort.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Collaboration mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collaboration_mode: Option<CollaborationMode>,
    /// JSON schema the final message must follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

impl ClientRequest for TurnStart {
    const METHOD: &'static str = "turn/start";
    type Reply = TurnReply;
}

/// `turn/steer`: adds input to the running turn, refused when another turn runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnSteer {
    /// The thread.
    pub thread_id: String,
    /// The turn the caller saw running.
    pub expected_turn_id: String,
    /// The added message.
    pub input: Vec<InputItem>,
    /// Ties the message to the operation that sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_message_id: Option<String>,
}

impl ClientRequest for TurnSteer {
    const METHOD: &'static str = "turn/steer";
    type Reply = TurnSteered;
}

/// `turn/interrupt`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnInterrupt {
    /// The thread.
    pub thread_id: String,
    /// The turn.
    pub turn_id: String,
}

impl ClientRequest for TurnInterrupt {
    const METHOD: &'static str = "turn/interrupt";
    type Reply = Ack;
}

/// `review/start`, inline on the given thread.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStart {
    /// The thread the review runs on.
    pub thread_id: String,
    /// What to review (`ReviewTarget` of the protocol, built by the review tool).
    pub target: Value,
    /// Always `inline`: a detached review is one on a fresh thread the caller started.
    pub delivery: String,
}

impl ClientRequest for ReviewStart {
    const METHOD: &'static str = "review/start";
    type Reply = TurnReply;
}

/// `hooks/list`: the hooks codex discovers for these working directories, with their trust state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HooksList {
    /// Working directories to inspect.
    pub cwds: Vec<String>,
}

impl ClientRequest for HooksList {
    const METHOD: &'static str = "hooks/list";
    type Reply = HooksListReply;
}

/// One edit of `config/batchWrite`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEdit {
    /// Dotted path of the key.
    pub key_path: String,
    /// `upsert` merges tables, `replace` overwrites.
    pub merge_strategy: String,
    /// The value.
    pub value: Value,
}

/// `config/batchWrite`: edits the user's `config.toml` through codex, which keeps its format.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigBatchWrite {
    /// The edits, applied in order.
    pub edits: Vec<ConfigEdit>,
}

impl ClientRequest for ConfigBatchWrite {
    const METHOD: &'static str = "config/batchWrite";
    type Reply = Ack;
}

/// `config/read`: the effective configuration as seen from `cwd` (project layers included).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRead {
    /// Working directory whose project layers apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

impl ClientRequest for ConfigRead {
    const METHOD: &'static str = "config/read";
    type Reply = ConfigReadReply;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_settings_are_left_out_and_names_follow_the_protocol() {
        let start = TurnStart {
            thread_id: "t".into(),
            input: vec![
                InputItem::text("hi"),
                InputItem::Given(json!({"type": "image", "url": "u"})),
            ],
            client_user_message_id: Some("mcp-turn:op".into()),
            cwd: None,
            approval_policy: Some("never".into()),
            sandbox_policy: Some(SandboxPolicy::WorkspaceWrite),
            model: None,
            effort: None,
            collaboration_mode: None,
            output_schema: None,
        };
        assert_eq!(
            serde_json::to_value(&start).ok(),
            Some(json!({
                "threadId": "t",
                "input": [{"type": "text", "text": "hi", "text_elements": []},
                          {"type": "image", "url": "u"}],
                "clientUserMessageId": "mcp-turn:op",
                "approvalPolicy": "never",
                "sandboxPolicy": {"type": "workspaceWrite"},
            }))
        );
    }

    #[test]
    fn goal_status_and_collaboration_settings_keep_their_spelling() {
        let set = ThreadGoalSet {
            thread_id: "t".into(),
            objective: None,
            status: Some(GoalStatus::Paused),
            token_budget: None,
        };
        assert_eq!(
            serde_json::to_value(&set).ok(),
            Some(json!({"threadId": "t", "status": "paused"}))
        );
        let mode = CollaborationMode {
            mode: "plan".into(),
            settings: CollaborationSettings {
                model: String::new(),
                reasoning_effort: None,
                developer_instructions: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&mode).ok(),
            Some(
                json!({"mode": "plan", "settings": {"model": "", "reasoning_effort": null,
                                                      "developer_instructions": null}})
            )
        );
    }
}
