//! What the engine reads from app-server's replies. Unknown fields are ignored; a missing required id is a
//! `BadReply` for the method.

use serde::Deserialize;
use serde_json::Value;

/// A reply whose content the engine does not use.
pub type Ack = serde::de::IgnoredAny;

/// The id of what a request created: the reply that tells the intent journal it happened.
pub trait Created {
    /// The model a created thread runs with (none for a turn).
    fn thread_model(&self) -> Option<String> {
        None
    }
    /// The new thread's or turn's id.
    fn created_id(self) -> String;
}

/// `thread/start`, `thread/fork` and `thread/resume`: the thread.
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadReply {
    /// The thread.
    pub thread: IdOnly,
    /// The model the thread runs with (the protocol always sends it; absent is tolerated).
    #[serde(default)]
    pub model: Option<String>,
}

/// `config/read`: the effective configuration; only its model is read.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigReadReply {
    /// The configuration.
    pub config: EffectiveConfig,
}

/// The part of codex's effective configuration the engine reads.
#[derive(Debug, Clone, Deserialize)]
pub struct EffectiveConfig {
    /// The configured model, if any.
    #[serde(default)]
    pub model: Option<String>,
}

/// `turn/start` and `review/start`: the turn.
#[derive(Debug, Clone, Deserialize)]
pub struct TurnReply {
    /// The turn.
    pub turn: IdOnly,
}

/// `turn/steer`: the turn the input joined.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnSteered {
    /// The running turn.
    pub turn_id: String,
}

/// An object of which only the id is read.
#[derive(Debug, Clone, Deserialize)]
pub struct IdOnly {
    /// Its id.
    pub id: String,
}

impl Created for ThreadReply {
    fn thread_model(&self) -> Option<String> {
        self.model.clone()
    }

    fn created_id(self) -> String {
        self.thread.id
    }
}

impl Created for TurnReply {
    fn created_id(self) -> String {
        self.turn.id
    }
}

impl Created for TurnSteered {
    fn created_id(self) -> String {
        self.turn_id
    }
}

/// `thread/goal/set` and `thread/goal/get`: the goal as app-server keeps it (absent or null: none).
#[derive(Debug, Clone, Deserialize)]
pub struct GoalReply {
    /// The goal document, recorded as observed.
    #[serde(default)]
    pub goal: Option<Value>,
}

/// `thread/goal/clear`.
#[derive(Debug, Clone, Deserialize)]
pub struct GoalCleared {
    /// False when there was no goal.
    #[serde(default)]
    pub cleared: bool,
}

/// `thread/read`: the thread with its turns.
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadReadReply {
    /// The thread.
    pub thread: ThreadWithTurns,
}

/// A thread as `thread/read` with `includeTurns` gives it; the turns stay documents (the engine reads their
/// id, status and items).
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadWithTurns {
    /// Oldest first.
    #[serde(default)]
    pub turns: Vec<Value>,
}

/// `hooks/list`: per working directory, the hooks found.
#[derive(Debug, Clone, Deserialize)]
pub struct HooksListReply {
    /// One entry per working directory asked for.
    #[serde(default)]
    pub data: Vec<HooksListEntry>,
}

/// The hooks of one working directory.
#[derive(Debug, Clone, Deserialize)]
pub struct HooksListEntry {
    /// The hooks, in display order.
    #[serde(default)]
    pub hooks: Vec<HookInfo>,
    /// Problems loading hook files.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One discovered hook, as much as the installer reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookInfo {
    /// Stable key, used to record trust.
    pub key: String,
    /// Hash of its current definition; trust is recorded for this hash.
    pub current_hash: String,
    /// `managed`, `untrusted`, `trusted` or `modified`.
    pub trust_status: String,
    /// `userPromptSubmit`, `stop`, ...
    pub event_name: String,
    /// The command line, for command hooks.
    #[serde(default)]
    pub command: Option<String>,
    /// The file it came from.
    #[serde(default)]
    pub source_path: Option<String>,
    /// Whether it is enabled.
    #[serde(default)]
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_keep_what_the_engine_reads_and_ignore_the_rest() {
        let thread: ThreadReply = serde_json::from_value(
            json!({"thread": {"id": "t1", "turns": []}, "model": "m", "sandbox": {}}),
        )
        .expect("thread reply");
        assert_eq!(thread.created_id(), "t1");
        let steered: TurnSteered = serde_json::from_value(json!({"turnId": "u1"})).expect("steer");
        assert_eq!(steered.created_id(), "u1");
        assert!(serde_json::from_value::<TurnReply>(json!({})).is_err());
        let goal: GoalReply = serde_json::from_value(json!({"goal": null})).expect("goal");
        assert!(goal.goal.is_none());
        let read: ThreadReadReply =
            serde_json::from_value(json!({"thread": {"id": "t"}})).expect("read");
        assert!(read.thread.turns.is_empty());
    }
}
