//! `hooks record --hook-config FILE`: the handler Codex runs on each hook event. It reads the event's JSON
//! on stdin and stores the message it carries (the user's prompt, the final answer, a compaction summary)
//! in the chat history. It never fails the hook: whatever goes wrong, Codex gets exit 0 and at most a short
//! `systemMessage`, because a broken recorder must not break the user's session.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::domain::rules::canonical::sha256_hex;
use crate::store::history::HookEntry;
use crate::store::Store;

/// What one invocation did, for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A message was stored.
    Recorded,
    /// Nothing to store (an event without text, a turn this server runs, a repeated event).
    Skipped,
    /// Something failed; the message goes to Codex as `systemMessage`.
    Failed(String),
}

/// The side config the hook command names.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SideConfig {
    state_db: PathBuf,
    #[serde(default = "default_max")]
    max_text_chars: usize,
}

fn default_max() -> usize {
    super::DEFAULT_MAX_TEXT_CHARS
}

/// Records the event read from `input`, per the side config at `config_path`.
pub async fn record(config_path: &Path, input: impl Read) -> RecordOutcome {
    match try_record(config_path, input).await {
        Ok(true) => RecordOutcome::Recorded,
        Ok(false) => RecordOutcome::Skipped,
        Err(message) => RecordOutcome::Failed(message),
    }
}

async fn try_record(config_path: &Path, mut input: impl Read) -> Result<bool, String> {
    let config: SideConfig = std::fs::read_to_string(config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| format!("bad hook config: {e}"))
        })?;
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the hook event: {e}"))?;
    let event: Value =
        serde_json::from_str(&text).map_err(|e| format!("the hook event is not JSON: {e}"))?;
    let Some(entry) = entry_of(&event, config.max_text_chars) else {
        return Ok(false);
    };
    let store = Store::open(&config.state_db)
        .map_err(|e| format!("cannot open {}: {e}", config.state_db.display()))?;
    store
        .record_hook_entry(entry)
        .await
        .map_err(|e| format!("cannot record the hook event: {e}"))
}

/// The history row an event carries, if any.
fn entry_of(event: &Value, max_text_chars: usize) -> Option<HookEntry> {
    let field = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let thread_id = field("thread_id")
        .or_else(|| field("session_id"))?
        .to_string();
    let name = field("hook_event_name")?;
    let (role, kind, position, text) = match name {
        "UserPromptSubmit" => ("user", "prompt", 0, field("prompt")?),
        "Stop" => (
            "assistant",
            "final_answer",
            1,
            field("last_assistant_message")?,
        ),
        "PostCompact" => (
            "system",
            "compact_summary",
            2,
            field("summary").or_else(|| field("compact_summary"))?,
        ),
        _ => return None,
    };
    let turn_id = field("turn_id")
        .map(str::to_string)
        .unwrap_or_else(|| format!("hook-session:{thread_id}"));
    let text: String = text.chars().take(max_text_chars).collect();
    let key = format!("{thread_id}\u{1f}{turn_id}\u{1f}{name}\u{1f}{text}");
    Some(HookEntry {
        thread_id,
        turn_id,
        role: role.into(),
        kind: kind.into(),
        text,
        position,
        source_key: format!("hook:{}", &sha256_hex(key.as_bytes())[..40]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_become_rows_and_others_are_skipped() {
        let prompt = entry_of(
            &json!({"hook_event_name": "UserPromptSubmit", "session_id": "s1", "turn_id": "t1",
                    "prompt": "fix the build"}),
            5,
        )
        .expect("prompt row");
        assert_eq!(
            (prompt.role.as_str(), prompt.kind.as_str()),
            ("user", "prompt")
        );
        assert_eq!(prompt.text, "fix t");
        assert_eq!(prompt.thread_id, "s1");
        let again = entry_of(
            &json!({"hook_event_name": "UserPromptSubmit", "session_id": "s1", "turn_id": "t1",
                    "prompt": "fix the build"}),
            5,
        )
        .expect("same row");
        assert_eq!(prompt.source_key, again.source_key);
        assert!(entry_of(
            &json!({"hook_event_name": "SessionStart", "session_id": "s1"}),
            5
        )
        .is_none());
        assert!(entry_of(&json!({"hook_event_name": "Stop", "session_id": "s1"}), 5).is_none());
    }

    #[tokio::test]
    async fn a_broken_set_up_still_answers_without_failing() {
        let outcome = record(Path::new("/nonexistent/hooks.json"), &b"{}"[..]).await;
        assert!(matches!(outcome, RecordOutcome::Failed(_)), "{outcome:?}");
    }
}
