//! `codex_analyze_issue`: the analyzer plugins judge what `codex_collect_diagnostics` gathers. The scope (an
//! operation, workflow, thread, turn, lifecycle action or worker command; none for the whole server) is
//! gathered, turned into the analyzer snapshot (`snapshot`), given to every loaded analyzer plugin, and their
//! findings are merged and ranked (`merge`). `record=true` stores the diagnosis for a later repair. A failing
//! or runaway analyzer is reported under `analyzers` and never fails the call. Never starts app-server.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::agent_safe_text;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::tools::checks;
use crate::mcp::tools::diagnostics::gather::{self, Gathered};
use crate::store::diagnoses::NewDiagnosis;
use crate::store::diagnostics::DiagnosticScope;
use crate::time::now_ms;

mod merge;
pub mod snapshot;

use merge::Merged;

/// Most log lines a snapshot carries (newest first).
const SNAPSHOT_LOG_LINES: usize = 50;
/// Most app-server frames and journal lines read for a snapshot.
const SNAPSHOT_EVENTS: usize = 100;

/// Handler of `codex_analyze_issue`.
pub async fn analyze_issue(app: &App, args: &Args) -> Result<Value, ToolError> {
    let since_minutes = args.int_or("since_minutes", 120);
    let mut scope = DiagnosticScope {
        operation_id: args.string("operation_id"),
        workflow_id: args.string("workflow_id"),
        thread_id: args.string("thread_id"),
        turn_id: args.string("turn_id"),
        since_ms: now_ms() - since_minutes * 60_000,
        event_limit: SNAPSHOT_EVENTS,
    };
    let action_id = args.string("action_id");
    let command_id = args.string("command_id");
    widen_by_action(app, action_id.as_deref(), &mut scope).await?;
    widen_by_command(app, command_id.as_deref(), &mut scope).await?;
    let request = gather::Request {
        scope: scope.clone(),
        since_minutes,
        log_limit: Some(SNAPSHOT_LOG_LINES),
    };
    let gathered = gather::gather(app, &request).await?;
    let scope_json = json!({
        "operationId": scope.operation_id,
        "workflowId": scope.workflow_id,
        "threadId": scope.thread_id,
        "turnId": scope.turn_id,
        "actionId": action_id,
        "commandId": command_id,
        "scoped": gathered.scoped,
        "sinceMinutes": since_minutes,
    });
    let problem_text = args.string("problem_text");
    let document = snapshot::build(&gathered, &scope_json, problem_text.as_deref());
    let runs = app
        .engine
        .run_analyzers(document.to_string())
        .await
        .map_err(|error| ToolError::new(ErrorCode::Internal, error.to_string()))?;

    let mut findings = merge::merge(&runs);
    if findings.is_empty() {
        findings.push(merge::no_obvious_issue());
    }
    let include_evidence = args.bool("include_evidence");
    let top = &findings[0];
    let mut answer = json!({
        "scope": scope_json,
        "problemText": problem_text.as_deref().map(agent_safe_text),
        "overallStatus": match checks::worst(&gathered.checks) {
            "error" => "broken",
            "warning" => "degraded",
            _ => "healthy",
        },
        "findings": findings.iter().map(|f| f.to_json(include_evidence)).collect::<Vec<_>>(),
        "likelyRootCause": root_cause(top),
        "recommendedRepairActions": merge::repair_actions(&findings),
        "nextDiagnosticSteps": next_steps(&findings, &gathered, &scope_json, &runs),
        "analyzers": runs.iter().map(|run| match &run.outcome {
            Ok(found) => json!({"plugin": run.plugin, "status": "ok", "findingCount": found.len(),
                                "elapsedMs": run.elapsed_ms, "error": null}),
            Err((kind, message)) => json!({"plugin": run.plugin, "status": "failed", "findingCount": 0,
                                           "elapsedMs": run.elapsed_ms,
                                           "error": {"kind": kind, "message": agent_safe_text(message)}}),
        }).collect::<Vec<_>>(),
        "snapshotSchema": snapshot::SCHEMA,
        "diagnosisId": null,
        "recorded": false,
    });
    if args.bool("record") {
        let found = top.category != "no_obvious_issue";
        let diagnosis_id = app
            .engine
            .store
            .record_diagnosis(NewDiagnosis {
                scope: answer["scope"].clone(),
                problem_text: problem_text.as_deref().map(agent_safe_text),
                likely_root_cause: found.then(|| top.category.clone()),
                confidence: found.then_some(top.confidence),
                findings: answer["findings"].clone(),
                result: answer.clone(),
            })
            .await?;
        tracing::info!(%diagnosis_id, root_cause = %top.category, "diagnosis recorded");
        answer["diagnosisId"] = json!(diagnosis_id);
        answer["recorded"] = json!(true);
    }
    Ok(answer)
}

/// A lifecycle action scopes the analysis to its thread (unless a thread was given).
async fn widen_by_action(
    app: &App,
    action_id: Option<&str>,
    scope: &mut DiagnosticScope,
) -> Result<(), ToolError> {
    let Some(id) = action_id else { return Ok(()) };
    let action = app
        .engine
        .store
        .get_lifecycle_action(id)
        .await?
        .ok_or_else(|| {
            ToolError::invalid_argument("action_id", "is not a known lifecycle action")
        })?;
    scope.thread_id.get_or_insert(action.thread_id);
    Ok(())
}

/// A worker command scopes the analysis to the ids its tool call named (those not given already).
async fn widen_by_command(
    app: &App,
    command_id: Option<&str>,
    scope: &mut DiagnosticScope,
) -> Result<(), ToolError> {
    let Some(id) = command_id else { return Ok(()) };
    let command = app
        .engine
        .store
        .get_worker_command(id)
        .await?
        .ok_or_else(|| {
            ToolError::invalid_argument("command_id", "is not a known worker command")
        })?;
    let named = |key: &str| {
        command
            .payload
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if scope.operation_id.is_none() {
        scope.operation_id = named("operation_id");
    }
    if scope.workflow_id.is_none() {
        scope.workflow_id = named("workflow_id");
    }
    if scope.thread_id.is_none() {
        scope.thread_id = named("thread_id");
    }
    if scope.turn_id.is_none() {
        scope.turn_id = named("turn_id");
    }
    Ok(())
}

/// The likely root cause: the best-ranked finding.
fn root_cause(top: &Merged) -> Value {
    json!({
        "category": top.category,
        "severity": top.severity,
        "title": top.title,
        "subject": (!top.subject.is_empty()).then_some(&top.subject),
        "confidence": top.to_json(false)["confidence"],
        "analyzers": top.analyzers,
    })
}

/// What to look at next: the tools the findings recommend, a failed analyzer, the logs when none were found.
fn next_steps(
    findings: &[Merged],
    gathered: &Gathered,
    scope: &Value,
    runs: &[crate::engine::analyzers::AnalyzerRun],
) -> Vec<Value> {
    let mut steps: Vec<Value> = Vec::new();
    let mut push = |tool: &str, arguments: Value, reason: String| {
        if !steps.iter().any(|s| s["tool"] == json!(tool)) {
            steps.push(json!({"tool": tool, "arguments": arguments, "reason": reason}));
        }
    };
    let ids = json!({
        "operation_id": scope["operationId"],
        "workflow_id": scope["workflowId"],
        "thread_id": scope["threadId"],
        "turn_id": scope["turnId"],
    });
    for finding in findings {
        for action in finding.actions.iter().filter(|a| a.starts_with("codex_")) {
            let arguments = match (action.as_str(), finding.subject.as_str()) {
                ("codex_get_operation_status", subject) if subject.starts_with("op_") => {
                    json!({"operation_id": subject})
                }
                _ => json!({}),
            };
            push(
                action,
                arguments,
                format!("{}: {}", finding.category, finding.title),
            );
        }
    }
    if let Some(failed) = runs.iter().find(|r| r.outcome.is_err()) {
        push(
            "codex_health_summary",
            json!({}),
            format!(
                "analyzer {} failed; its plugin status is in the plugin inventory",
                failed.plugin
            ),
        );
    }
    if !findings.iter().any(|f| f.category != "no_obvious_issue") || !gathered.scoped {
        push(
            "codex_collect_diagnostics",
            json!({"include_logs": true, "operation_id": ids["operation_id"], "workflow_id": ids["workflow_id"],
                   "thread_id": ids["thread_id"], "turn_id": ids["turn_id"]}),
            "the full checks, rows, timeline and log lines of the scope".to_string(),
        );
        push(
            "codex_get_diagnostic_logs",
            json!({"severity": "warning"}),
            "the server's recent warnings and app-server events".to_string(),
        );
    }
    steps
}
