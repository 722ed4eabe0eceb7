//! The pure half of the tracker: what one app-server notification means for a turn ([`TurnUpdate`]s), with no
//! store and no process, so the mapping from Codex's protocol to our statuses is tested on its own.

use serde_json::Value;

use crate::store::TokenUsage;

/// What one notification means for a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnUpdate {
    /// The turn runs.
    Started {
        /// Thread id.
        thread_id: String,
        /// Turn id.
        turn_id: String,
    },
    /// An assistant message completed.
    AgentMessage {
        /// Turn id.
        turn_id: String,
        /// Item id.
        item_id: String,
        /// Full text.
        text: String,
        /// `commentary` or `final_answer` when Codex says.
        phase: Option<String>,
    },
    /// Something worth a line in the progress journal.
    Progress {
        /// Turn id.
        turn_id: String,
        /// Short category (`plan`, `reasoning_summary`, `command`, `file_change`, `diff`, `warning`, ...).
        kind: String,
        /// Item id, when the event is about an item.
        item_id: Option<String>,
        /// The line.
        summary: String,
        /// Natural key of the event (for replay detection).
        key: String,
    },
    /// Token counts of the turn so far.
    TokenUsage {
        /// Turn id.
        turn_id: String,
        /// The counts.
        usage: TokenUsage,
    },
    /// The turn ended.
    Completed {
        /// Thread id.
        thread_id: String,
        /// Turn id.
        turn_id: String,
        /// Our status: completed, failed, interrupted, aborted.
        status: String,
        /// The last assistant message, if any.
        final_message: Option<String>,
        /// Codex's error object, when it failed.
        error: Option<Value>,
    },
}

/// Codex's turn status to ours (the seed's table: idle → completed, cancelled → aborted).
pub fn normalize_turn_status(status: &str) -> &'static str {
    match status {
        "completed" | "idle" => "completed",
        "failed" | "error" => "failed",
        "interrupted" => "interrupted",
        "aborted" | "cancelled" | "canceled" => "aborted",
        "inProgress" | "running" => "running",
        _ => "failed",
    }
}

pub(super) fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

pub(super) fn progress(
    turn_id: &str,
    kind: &str,
    item_id: Option<&str>,
    summary: String,
    key: String,
) -> TurnUpdate {
    TurnUpdate::Progress {
        turn_id: turn_id.to_string(),
        kind: kind.to_string(),
        item_id: item_id.map(str::to_string),
        summary,
        key,
    }
}

/// A completed item, reduced to what the journal keeps.
pub(super) fn reduce_item(turn_id: &str, item: &Value) -> Option<TurnUpdate> {
    let item_id = str_of(item, "id").unwrap_or_default();
    match str_of(item, "type")? {
        "agentMessage" => Some(TurnUpdate::AgentMessage {
            turn_id: turn_id.to_string(),
            item_id: item_id.to_string(),
            text: str_of(item, "text")?.to_string(),
            phase: str_of(item, "phase").map(str::to_string),
        }),
        "plan" => Some(progress(
            turn_id,
            "plan",
            Some(item_id),
            str_of(item, "text").unwrap_or_default().to_string(),
            format!("item:{item_id}"),
        )),
        "reasoning" => {
            let summary: Vec<&str> = item
                .get("summary")
                .and_then(Value::as_array)
                .map(|parts| parts.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (!summary.is_empty()).then(|| {
                progress(
                    turn_id,
                    "reasoning_summary",
                    Some(item_id),
                    summary.join("\n"),
                    format!("item:{item_id}"),
                )
            })
        }
        "commandExecution" => {
            let status = str_of(item, "status").unwrap_or("completed");
            let exit = item.get("exitCode").and_then(Value::as_i64);
            let line = match exit {
                Some(code) => format!("command {status} (exit code {code})"),
                None => format!("command {status}"),
            };
            Some(progress(
                turn_id,
                "command",
                Some(item_id),
                line,
                format!("item:{item_id}"),
            ))
        }
        "fileChange" => {
            let files = item
                .get("changes")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let status = str_of(item, "status").unwrap_or("completed");
            Some(progress(
                turn_id,
                "file_change",
                Some(item_id),
                format!("file change {status} ({files} file(s))"),
                format!("item:{item_id}"),
            ))
        }
        // A review's result arrives as the item that leaves review mode; it is the turn's answer.
        "exitedReviewMode" => Some(TurnUpdate::AgentMessage {
            turn_id: turn_id.to_string(),
            item_id: item_id.to_string(),
            text: str_of(item, "review")?.to_string(),
            phase: Some("final_answer".to_string()),
        }),
        "contextCompaction" => Some(progress(
            turn_id,
            "compaction",
            Some(item_id),
            "context compacted".into(),
            format!("item:{item_id}"),
        )),
        _ => None,
    }
}

pub(super) fn diff_counts(diff: &str) -> (usize, usize, usize) {
    let mut files = 0;
    let mut added = 0;
    let mut removed = 0;
    for line in diff.lines() {
        if line.starts_with("diff --git") {
            files += 1;
        } else if line.starts_with('+') && !line.starts_with("+++") {
            added += 1;
        } else if line.starts_with('-') && !line.starts_with("---") {
            removed += 1;
        }
    }
    (files, added, removed)
}

/// Reduces one notification to the turn updates it implies.
pub fn reduce(method: &str, params: &Value) -> Vec<TurnUpdate> {
    let thread_id = str_of(params, "threadId").unwrap_or_default().to_string();
    let turn_id = str_of(params, "turnId")
        .or_else(|| params.pointer("/turn/id").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    match method {
        "turn/started" if !turn_id.is_empty() => vec![TurnUpdate::Started { thread_id, turn_id }],
        "item/completed" if !turn_id.is_empty() => {
            reduce_item(&turn_id, &params["item"]).into_iter().collect()
        }
        "turn/plan/updated" if !turn_id.is_empty() => {
            let steps = params
                .get("plan")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let explanation = str_of(params, "explanation").unwrap_or_default();
            let key = crate::domain::rules::canonical::sha256_hex(params.to_string().as_bytes());
            vec![progress(
                &turn_id,
                "plan",
                None,
                format!("plan updated: {steps} step(s). {explanation}")
                    .trim()
                    .to_string(),
                key,
            )]
        }
        "turn/diff/updated" if !turn_id.is_empty() => {
            let (files, added, removed) = diff_counts(str_of(params, "diff").unwrap_or_default());
            vec![progress(
                &turn_id,
                "diff",
                None,
                format!("diff: {files} file(s), +{added} -{removed}"),
                format!("{files}:{added}:{removed}"),
            )]
        }
        "thread/tokenUsage/updated" if !turn_id.is_empty() => {
            let total = params
                .pointer("/tokenUsage/total")
                .cloned()
                .unwrap_or(Value::Null);
            let n = |k: &str| total.get(k).and_then(Value::as_i64).unwrap_or(0);
            vec![TurnUpdate::TokenUsage {
                turn_id,
                usage: TokenUsage {
                    input_tokens: n("inputTokens"),
                    cached_input_tokens: n("cachedInputTokens"),
                    output_tokens: n("outputTokens"),
                    total_tokens: n("totalTokens"),
                },
            }]
        }
        "model/rerouted" if !turn_id.is_empty() => {
            let to = str_of(params, "toModel").unwrap_or("another model");
            vec![progress(
                &turn_id,
                "model_reroute",
                None,
                format!("rerouted to {to}"),
                to.to_string(),
            )]
        }
        "warning" | "error" if !turn_id.is_empty() => {
            let message = str_of(params, "message")
                .or_else(|| params.pointer("/error/message").and_then(Value::as_str))
                .unwrap_or(method);
            let key = crate::domain::rules::canonical::sha256_hex(message.as_bytes());
            vec![progress(&turn_id, method, None, message.to_string(), key)]
        }
        "turn/completed" => {
            let turn = &params["turn"];
            let Some(turn_id) = str_of(turn, "id") else {
                return Vec::new();
            };
            let status = normalize_turn_status(str_of(turn, "status").unwrap_or(""));
            let final_message = turn
                .get("items")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items
                        .iter()
                        .rev()
                        .find(|i| str_of(i, "type") == Some("agentMessage"))
                })
                .and_then(|i| str_of(i, "text"))
                .map(str::to_string);
            let error = turn.get("error").filter(|e| !e.is_null()).cloned();
            vec![TurnUpdate::Completed {
                thread_id,
                turn_id: turn_id.to_string(),
                status: status.to_string(),
                final_message,
                error,
            }]
        }
        _ => Vec::new(),
    }
}
