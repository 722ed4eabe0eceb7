//! The document the analyzer plugins receive (`analyzer-snapshot/v1`, documented in `docs/arch/plugins.md`):
//! what `codex_collect_diagnostics` gathers for the scope (checks, correlated rows, timeline, log lines), made
//! easy to judge without a clock or a status table: every row carries its age or idle time in milliseconds
//! and whether it is still live. Redacted like every diagnostics output (no secrets, no absolute paths).

use serde_json::{json, Value};

use crate::domain::rules::agent_safe::{agent_safe_text, agent_safe_value};
use crate::domain::rules::status::TERMINAL;
use crate::mcp::tools::checks::Check;
use crate::mcp::tools::diagnostics::gather::Gathered;
use crate::mcp::tools::diagnostics::{correlation_json, timeline};
use crate::time::iso8601_from_ms;

/// The snapshot schema (bumped on any incompatible change; additions keep it).
pub const SCHEMA: &str = "analyzer-snapshot/v1";

/// Most timeline entries a snapshot carries.
const TIMELINE_LIMIT: usize = 100;

/// Longest log message in a snapshot: the event and its ids are at the start of a line, and every analyzer
/// scans every line within its fuel, so the tail of a long line is left to `codex_get_diagnostic_logs`.
const LOG_MESSAGE_CHARS: usize = 500;

/// Builds the snapshot of `gathered` for the scope `scope` (the answer's scope object).
pub fn build(gathered: &Gathered, scope: &Value, problem_text: Option<&str>) -> Value {
    let now = gathered.now;
    let found = &gathered.correlation;
    let mut rows = correlation_json(found);
    for (row, op) in each_mut(&mut rows["operations"]).zip(&found.operations) {
        row["idleMs"] = json!(now - op.updated_at.ms());
        row["live"] = json!(!TERMINAL.contains(&op.status.as_str()));
        // A turn that failed reports why in its final report, not in the operation's lastError (the operation
        // itself ran as it should): the analyzers read both.
        row["turnError"] = op
            .turn_error
            .as_ref()
            .filter(|error| !error.is_null())
            .map_or(Value::Null, agent_safe_value);
    }
    for (row, turn) in each_mut(&mut rows["turns"]).zip(&found.turns) {
        row["idleMs"] = json!(now - turn.updated_at.ms());
        row["live"] = json!(!TERMINAL.contains(&turn.status.as_str()));
    }
    for (row, workflow) in each_mut(&mut rows["workflows"]).zip(&found.workflows) {
        row["idleMs"] = json!(now - workflow.updated_at.ms());
        row["live"] = json!(workflow.completed_at.is_none());
    }
    for (row, interaction) in each_mut(&mut rows["interactions"]).zip(&found.interactions) {
        row["ageMs"] = json!(now - interaction.created_at.ms());
        row["expired"] = json!(interaction.expires_at.ms() < now);
    }
    let timeline = timeline::build(found, TIMELINE_LIMIT);
    json!({
        "schemaVersion": SCHEMA,
        "nowMs": now,
        "generatedAt": iso8601_from_ms(now),
        "problemText": problem_text.map(agent_safe_text),
        "scope": scope,
        "checks": gathered.checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "threadIds": rows["threadIds"].take(),
        "operations": rows["operations"].take(),
        "turns": rows["turns"].take(),
        "workflows": rows["workflows"].take(),
        "interactions": rows["interactions"].take(),
        "intents": rows["intents"].take(),
        "workerCommands": rows["workerCommands"].take(),
        "lifecycleActions": rows["lifecycleActions"].take(),
        "appServerEventCount": rows["appServerEventCount"].take(),
        "timeline": timeline["entries"].clone(),
        "logs": log_lines(&gathered.logs),
    })
}

/// The gathered log lines with each message cut to [`LOG_MESSAGE_CHARS`] (`truncated` says so).
fn log_lines(logs: &Value) -> Value {
    let mut lines = logs.get("lines").cloned().unwrap_or_else(|| json!([]));
    for line in each_mut(&mut lines) {
        let Some(message) = line["message"].as_str() else {
            continue;
        };
        if let Some((cut_at, _)) = message.char_indices().nth(LOG_MESSAGE_CHARS) {
            line["message"] = json!(message[..cut_at].to_string());
            line["truncated"] = json!(true);
        }
    }
    lines
}

/// The elements of a JSON array, mutably (none when it is not one).
fn each_mut(value: &mut Value) -> impl Iterator<Item = &mut Value> {
    value.as_array_mut().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::diagnostics::{Correlation, InteractionRow, OperationRow};
    use crate::store::Timestamp;

    #[test]
    fn rows_carry_their_idle_time_and_liveness() {
        let now = 10 * 3_600_000;
        let gathered = Gathered {
            scoped: true,
            correlation: Correlation {
                operations: vec![OperationRow {
                    operation_id: "op_1".into(),
                    operation_type: "start_chat".into(),
                    status: "running".into(),
                    thread_id: None,
                    turn_id: None,
                    workflow_id: None,
                    attempt_count: 1,
                    last_error: None,
                    created_at: Timestamp(now - 7_200_000),
                    updated_at: Timestamp(now - 3_600_000),
                    started_at: None,
                    completed_at: None,
                    turn_error: None,
                }],
                interactions: vec![InteractionRow {
                    interaction_id: "int_1".into(),
                    operation_id: Some("op_1".into()),
                    turn_id: None,
                    kind: "approval".into(),
                    method: "item/commandExecution/requestApproval".into(),
                    status: "pending".into(),
                    process_generation: 1,
                    created_at: Timestamp(now - 60_000),
                    expires_at: Timestamp(now - 1),
                    answered_at: None,
                }],
                ..Default::default()
            },
            checks: vec![Check::ok("codex_binary", "codex binary at /opt/codex")],
            logs: Value::Null,
            now,
        };
        let snapshot = build(
            &gathered,
            &json!({"scoped": true}),
            Some("stuck; see /home/ada/x"),
        );
        assert_eq!(snapshot["schemaVersion"], json!(SCHEMA));
        assert_eq!(snapshot["operations"][0]["idleMs"], json!(3_600_000));
        assert_eq!(snapshot["operations"][0]["live"], json!(true));
        assert_eq!(snapshot["interactions"][0]["ageMs"], json!(60_000));
        assert_eq!(snapshot["interactions"][0]["expired"], json!(true));
        assert_eq!(snapshot["logs"], json!([]));
        let text = snapshot.to_string();
        assert!(
            !text.contains("/home/ada") && !text.contains("/opt/codex"),
            "{text}"
        );
    }
}
