//! One timeline of what happened to the rows of a diagnostic scope: operations, creating calls, turns,
//! interactions, workflow history, worker commands, lifecycle actions and app-server frames, merged by time.

use serde_json::{json, Value};

use crate::store::diagnostics::Correlation;
use crate::store::Timestamp;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    at: Timestamp,
    source: &'static str,
    event: String,
    id: String,
    status: Option<String>,
}

impl Entry {
    fn new(at: Timestamp, source: &'static str, event: impl Into<String>, id: &str) -> Entry {
        Entry {
            at,
            source,
            event: event.into(),
            id: id.to_string(),
            status: None,
        }
    }

    fn status(mut self, status: &str) -> Entry {
        self.status = Some(status.to_string());
        self
    }
}

/// The timeline, oldest first; when longer than `limit` the newest `limit` entries are kept.
pub fn build(found: &Correlation, limit: usize) -> Value {
    let mut entries = Vec::new();
    for op in &found.operations {
        entries.push(Entry::new(
            op.created_at,
            "operation",
            "created",
            &op.operation_id,
        ));
        if let Some(at) = op.started_at {
            entries.push(Entry::new(at, "operation", "started", &op.operation_id));
        }
        if let Some(at) = op.completed_at {
            entries.push(Entry::new(at, "operation", "ended", &op.operation_id).status(&op.status));
        }
    }
    for intent in &found.intents {
        entries.push(Entry::new(
            intent.created_at,
            "intent",
            format!("{} sent", intent.method),
            &intent.operation_id,
        ));
        if let Some(at) = intent.resolved_at {
            entries.push(
                Entry::new(
                    at,
                    "intent",
                    format!("{} resolved", intent.method),
                    &intent.operation_id,
                )
                .status(&intent.state),
            );
        }
    }
    for turn in &found.turns {
        entries.push(Entry::new(
            turn.created_at,
            "turn",
            "started",
            &turn.turn_id,
        ));
        if let Some(at) = turn.completed_at {
            entries.push(Entry::new(at, "turn", "ended", &turn.turn_id).status(&turn.status));
        }
    }
    for interaction in &found.interactions {
        entries.push(Entry::new(
            interaction.created_at,
            "interaction",
            format!("{} asked", interaction.kind),
            &interaction.interaction_id,
        ));
        if let Some(at) = interaction.answered_at {
            entries.push(
                Entry::new(at, "interaction", "answered", &interaction.interaction_id)
                    .status(&interaction.status),
            );
        }
    }
    for event in &found.workflow_events {
        entries.push(
            Entry::new(
                event.created_at,
                "workflow",
                event.event.clone(),
                &event.workflow_id,
            )
            .status(&event.phase),
        );
    }
    for command in &found.commands {
        entries.push(Entry::new(
            command.created_at,
            "worker_command",
            command.command_type.clone(),
            &command.command_id,
        ));
        if let Some(at) = command.completed_at {
            entries.push(
                Entry::new(at, "worker_command", "ended", &command.command_id)
                    .status(&command.status),
            );
        }
    }
    for action in &found.lifecycle {
        entries.push(Entry::new(
            action.created_at,
            "lifecycle",
            action.action_type.clone(),
            &action.action_id,
        ));
        if let Some(at) = action.completed_at {
            entries.push(
                Entry::new(at, "lifecycle", "ended", &action.action_id).status(&action.status),
            );
        }
    }
    for frame in &found.frames {
        let what = frame.method.clone().unwrap_or_else(|| "reply".to_string());
        let id = frame
            .turn_id
            .as_ref()
            .or(frame.thread_id.as_ref())
            .map_or("", String::as_str);
        entries.push(Entry::new(
            frame.created_at,
            "app_server",
            format!("{} {what}", frame.direction),
            id,
        ));
    }
    // Stable: rows of one instant keep the order above (an operation before its intent before its turn).
    entries.sort_by_key(|e| e.at);
    let total = entries.len();
    let kept = entries.split_off(total.saturating_sub(limit));
    json!({
        "entries": kept.iter().map(|e| json!({
            "at": e.at.iso(),
            "source": e.source,
            "event": e.event,
            "id": e.id,
            "status": e.status,
        })).collect::<Vec<_>>(),
        "truncated": total > limit,
        "total": total,
        "limit": limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::diagnostics::{FrameRow, OperationRow, TurnRow};

    fn operation() -> OperationRow {
        OperationRow {
            operation_id: "op_1".into(),
            operation_type: "start_chat".into(),
            status: "unknown_after_app_server_exit".into(),
            thread_id: Some("thr".into()),
            turn_id: Some("turn".into()),
            workflow_id: None,
            attempt_count: 1,
            last_error: None,
            created_at: Timestamp(10),
            updated_at: Timestamp(40),
            started_at: Some(Timestamp(20)),
            completed_at: Some(Timestamp(40)),
            turn_error: None,
        }
    }

    #[test]
    fn rows_merge_by_time_and_the_newest_are_kept() {
        let found = Correlation {
            operations: vec![operation()],
            turns: vec![TurnRow {
                turn_id: "turn".into(),
                thread_id: "thr".into(),
                operation_id: Some("op_1".into()),
                status: "unknown_after_app_server_exit".into(),
                terminal_source: Some("app_server_exit".into()),
                process_generation: Some(1),
                created_at: Timestamp(30),
                updated_at: Timestamp(40),
                completed_at: Some(Timestamp(40)),
            }],
            frames: vec![FrameRow {
                event_id: 1,
                process_generation: Some(1),
                direction: "out".into(),
                method: Some("turn/start".into()),
                thread_id: Some("thr".into()),
                turn_id: None,
                created_at: Timestamp(25),
            }],
            ..Default::default()
        };
        let all = build(&found, 100);
        let events: Vec<String> = all["entries"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["source"].as_str().unwrap_or(""),
                            e["event"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            events,
            [
                "operation created",
                "operation started",
                "app_server out turn/start",
                "turn started",
                "operation ended",
                "turn ended"
            ]
        );
        assert_eq!(all["truncated"], json!(false));
        // Cut to two: the last two remain, and the cut is said.
        let cut = build(&found, 2);
        assert_eq!(cut["entries"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            cut["entries"][1]["status"],
            json!("unknown_after_app_server_exit")
        );
        assert_eq!(cut["truncated"], json!(true));
        assert_eq!(cut["total"], json!(6));
    }
}
