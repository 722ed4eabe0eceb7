//! What both diagnostics reads gather (`codex_collect_diagnostics` shows it, `codex_analyze_issue` hands it to
//! the analyzers): the scope's correlated rows, the readiness checks plus those the rows call for, and on
//! request the server's log lines about the scope. Storage, files and the log only: never starts app-server.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::status::{ACTIVE, TERMINAL};
use crate::logs::Severity;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::tools::checks::{self, Check};
use crate::mcp::tools::logs::{log_lines, LogQuery};
use crate::store::diagnostics::{Correlation, DiagnosticScope, MissingScope};

/// Active work untouched for this long is stale (the seed's 30 minutes).
pub const STALE_AFTER_MS: i64 = 30 * 60_000;

/// Longest log line in a diagnostic snapshot: enough for a warning and its fields; the full line is one
/// `codex_get_diagnostic_logs` call away.
const LOG_LINE_CHARS: usize = 2_000;

/// Statuses that mean an operation or turn did not succeed.
const FAILED: [&str; 3] = ["failed", "orphaned", "unknown_after_app_server_exit"];

/// What to gather.
#[derive(Debug, Clone)]
pub struct Request {
    /// The scope (its `since_ms` also bounds the log lines).
    pub scope: DiagnosticScope,
    /// The window of the unscoped failure counts, in minutes.
    pub since_minutes: i64,
    /// Most log lines; `None` reads no log.
    pub log_limit: Option<usize>,
}

/// What was gathered.
#[derive(Debug)]
pub struct Gathered {
    /// Whether any id was given.
    pub scoped: bool,
    /// The rows tied to the scope.
    pub correlation: Correlation,
    /// Readiness checks, then those the rows (or, unscoped, the counts) call for.
    pub checks: Vec<Check>,
    /// `{lines, sources}` of the log read, or null when none was asked for.
    pub logs: Value,
    /// When it was gathered (unix ms).
    pub now: i64,
}

/// Gathers the rows, checks and log lines of `request`; an id the store does not know is the seed's error.
pub async fn gather(app: &App, request: &Request) -> Result<Gathered, ToolError> {
    let now = crate::time::now_ms();
    let scope = &request.scope;
    let scoped = scope.operation_id.is_some()
        || scope.workflow_id.is_some()
        || scope.thread_id.is_some()
        || scope.turn_id.is_some();
    let correlation = match app
        .engine
        .store
        .diagnostic_correlation(scope.clone())
        .await?
    {
        Ok(found) => found,
        Err(missing) => return Err(unknown(missing, scope)),
    };
    let mut checks = vec![
        checks::codex_binary(app),
        checks::state_db(app).await,
        checks::codex_home(app),
        checks::codex_auth(app),
        checks::allowed_roots(app),
        checks::app_server(app),
    ];
    if scoped {
        scoped_checks(&correlation, now, &mut checks);
    } else {
        global_checks(app, now, request.since_minutes, &mut checks).await?;
    }
    let logs = match request.log_limit {
        Some(limit) => {
            let mentions = if scoped {
                mentions(&correlation)
            } else {
                Vec::new()
            };
            // With a scope, the lines that name one of its rows or generations; without one, every line.
            let (lines, sources) = log_lines(
                app,
                &LogQuery {
                    since_ms: scope.since_ms,
                    min_severity: Some(Severity::Warning),
                    mentions,
                    process_generation: None,
                    limit,
                    max_line_chars: LOG_LINE_CHARS,
                },
            );
            let errors = lines
                .iter()
                .filter(|l| l["severity"] == json!("error"))
                .count();
            checks.push(if errors > 0 {
                Check::new(
                    "mcp_log",
                    "warning",
                    format!("{errors} error line(s) in the server log"),
                )
                .suggest("codex_get_diagnostic_logs")
            } else {
                Check::ok(
                    "mcp_log",
                    format!("{} warning line(s), no errors", lines.len()),
                )
            });
            json!({"lines": lines, "sources": sources})
        }
        None => Value::Null,
    };
    Ok(Gathered {
        scoped,
        correlation,
        checks,
        logs,
        now,
    })
}

/// What a log line about the scope names: an id of a correlated row, or the app-server generation that ran one
/// of its turns (an exit is logged per generation).
pub(crate) fn mentions(found: &Correlation) -> Vec<String> {
    let mut out: Vec<String> = found
        .operations
        .iter()
        .map(|o| o.operation_id.clone())
        .chain(found.turns.iter().map(|t| t.turn_id.clone()))
        .chain(found.turns.iter().map(|t| t.thread_id.clone()))
        .chain(found.workflows.iter().map(|w| w.workflow_id.clone()))
        .chain(
            found
                .turns
                .iter()
                .filter_map(|t| t.process_generation)
                .map(|g| format!("generation={g}")),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The seed's error for an id the store does not know.
fn unknown(missing: MissingScope, scope: &DiagnosticScope) -> ToolError {
    match missing {
        MissingScope::Operation => {
            ToolError::invalid_argument("operation_id", "is not a known operation")
        }
        MissingScope::Workflow => {
            ToolError::invalid_argument("workflow_id", "is not a known workflow")
        }
        MissingScope::Thread => ToolError::new(
            ErrorCode::ThreadNotFound,
            format!(
                "no operation, turn or workflow on thread {}",
                scope.thread_id.as_deref().unwrap_or("")
            ),
        )
        .with_detail("field", json!("thread_id")),
        MissingScope::Turn => ToolError::new(
            ErrorCode::TurnNotFound,
            format!(
                "turn {} is not tracked",
                scope.turn_id.as_deref().unwrap_or("")
            ),
        )
        .with_detail("field", json!("turn_id")),
    }
}

/// What the rows of the scope say: failed or lost work, work that stopped moving, answers awaited, ends that
/// disagree.
fn scoped_checks(found: &Correlation, now: i64, checks: &mut Vec<Check>) {
    for op in &found.operations {
        if FAILED.contains(&op.status.as_str()) {
            let code = op
                .last_error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str);
            let message = op
                .last_error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str);
            let category = if op.status == "unknown_after_app_server_exit" {
                "app_server_exited"
            } else if code.is_some_and(|c| c.contains("TIMEOUT")) {
                "app_server_timeout"
            } else {
                "operation_failed"
            };
            checks.push(
                Check::new(
                    "operation_outcome",
                    "error",
                    format!(
                        "operation {} ended {}{}",
                        op.operation_id,
                        op.status,
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                )
                .category(category)
                .suggest("codex_analyze_issue")
                .detail("operationId", json!(op.operation_id))
                .detail("status", json!(op.status))
                .detail("errorCode", json!(code)),
            );
        } else if ACTIVE.contains(&op.status.as_str()) && now - op.updated_at.ms() > STALE_AFTER_MS
        {
            checks.push(
                Check::new(
                    "stale_operations",
                    "warning",
                    format!(
                        "operation {} is {} and unchanged for over 30 minutes",
                        op.operation_id, op.status
                    ),
                )
                .category("stale_operation")
                .suggest("recover_stale_operations")
                .detail("operationId", json!(op.operation_id)),
            );
        }
        // An operation that ended while its turn still runs, as far as the store knows.
        let turn = found
            .turns
            .iter()
            .find(|t| Some(&t.turn_id) == op.turn_id.as_ref());
        if let Some(turn) = turn {
            if TERMINAL.contains(&op.status.as_str()) && !TERMINAL.contains(&turn.status.as_str()) {
                checks.push(
                    Check::new(
                        "premature_terminal_operation",
                        "warning",
                        format!(
                            "operation {} ended {} while turn {} is {}",
                            op.operation_id, op.status, turn.turn_id, turn.status
                        ),
                    )
                    .category("workflow_thread_drift")
                    .suggest("reconcile_operations_with_tracked_turns"),
                );
            }
        }
    }
    for turn in &found.turns {
        if turn.status == "unknown_after_app_server_exit" {
            checks.push(
                Check::new(
                    "turn_outcome",
                    "error",
                    format!(
                        "turn {} was lost when app-server generation {} exited ({})",
                        turn.turn_id,
                        turn.process_generation.unwrap_or(0),
                        turn.terminal_source
                            .as_deref()
                            .unwrap_or("no terminal event")
                    ),
                )
                .category("app_server_exited")
                .suggest("codex_analyze_issue")
                .detail("turnId", json!(turn.turn_id))
                .detail("processGeneration", json!(turn.process_generation)),
            );
        } else if !TERMINAL.contains(&turn.status.as_str())
            && now - turn.updated_at.ms() > STALE_AFTER_MS
        {
            checks.push(
                Check::new(
                    "stale_turn",
                    "warning",
                    format!("turn {} has not moved for over 30 minutes", turn.turn_id),
                )
                .category("stale_turn")
                .suggest("recover_stale_operations"),
            );
        }
    }
    for interaction in found.interactions.iter().filter(|i| i.status == "pending") {
        let category = match interaction.kind.as_str() {
            "user_input" => "pending_user_input",
            _ if interaction.expires_at.ms() < now => "pending_interaction_stale",
            _ => "pending_approval",
        };
        checks.push(
            Check::new(
                "pending_interactions",
                "warning",
                format!(
                    "{} {} waits for an answer",
                    interaction.kind, interaction.interaction_id
                ),
            )
            .category(category)
            .suggest("codex_answer_pending_interaction")
            .detail("interactionId", json!(interaction.interaction_id)),
        );
    }
    for workflow in found.workflows.iter().filter(|w| w.completed_at.is_none()) {
        let ops: Vec<_> = found
            .operations
            .iter()
            .filter(|o| o.workflow_id.as_ref() == Some(&workflow.workflow_id))
            .collect();
        let idle = now - workflow.updated_at.ms() > STALE_AFTER_MS;
        if idle && ops.iter().all(|o| TERMINAL.contains(&o.status.as_str())) {
            checks.push(
                Check::new(
                    "orphaned_workflows",
                    "warning",
                    format!(
                        "workflow {} is {} with no live operation for over 30 minutes",
                        workflow.workflow_id, workflow.status
                    ),
                )
                .category("workflow_thread_drift")
                .suggest("reconcile_workflow_from_thread"),
            );
        }
    }
    for intent in found.intents.iter().filter(|i| i.state == "pending") {
        let op_ended = found.operations.iter().any(|o| {
            o.operation_id == intent.operation_id && TERMINAL.contains(&o.status.as_str())
        });
        if op_ended {
            checks.push(Check::new(
                "unresolved_intent",
                "warning",
                format!(
                    "{} of operation {} was never confirmed",
                    intent.method, intent.operation_id
                ),
            ));
        }
    }
    checks.push(Check::ok(
        "recent_app_server_events",
        format!(
            "{} journaled app-server frame(s) in scope",
            found.frames.len()
        ),
    ));
}

/// Without a scope: the same counts the health summary reads, failures counted within `since_minutes`.
async fn global_checks(
    app: &App,
    now: i64,
    since_minutes: i64,
    checks: &mut Vec<Check>,
) -> Result<(), ToolError> {
    let report = app
        .engine
        .store
        .health_report(crate::store::health::HealthQuery {
            now,
            stale_after_ms: STALE_AFTER_MS,
            since_ms: since_minutes * 60_000,
            max_recent_errors: 0,
        })
        .await?;
    if report.active.pending_interactions > 0 {
        checks.push(
            Check::new(
                "pending_interactions",
                "warning",
                format!(
                    "{} interaction(s) wait for an answer",
                    report.active.pending_interactions
                ),
            )
            .category("pending_approval")
            .suggest("codex_list_pending_interactions"),
        );
    }
    if report.stale_operations > 0 || !report.stalled_turns.is_empty() {
        checks.push(
            Check::new(
                "stale_operations",
                "warning",
                format!(
                    "{} stale operation(s), {} stalled turn(s)",
                    report.stale_operations,
                    report.stalled_turns.len()
                ),
            )
            .category("stale_operation")
            .suggest("recover_stale_operations"),
        );
    }
    if report.stale_workflows > 0 {
        checks.push(
            Check::new(
                "orphaned_workflows",
                "warning",
                format!("{} stale workflow(s)", report.stale_workflows),
            )
            .category("workflow_thread_drift")
            .suggest("reconcile_workflow_from_thread"),
        );
    }
    if report.recent_error_count > 0 {
        checks.push(
            Check::new(
                "recent_errors",
                "warning",
                format!(
                    "{} operation(s) or workflow(s) failed in the last {since_minutes} minutes",
                    report.recent_error_count
                ),
            )
            .suggest("codex_collect_diagnostics with operation_id"),
        );
    }
    Ok(())
}
