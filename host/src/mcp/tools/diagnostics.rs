//! `codex_collect_diagnostics`: a scoped, storage-only diagnostic snapshot. The scope (an operation, workflow,
//! thread or turn; none for the whole server) is widened along the stored links (`store::diagnostics`) and
//! answered with checks, the correlated rows, one timeline of what happened to them, the turns' progress
//! journal and, on request, this server's log lines. Never starts app-server; everything is redacted (no
//! secrets, no absolute paths). `gather` collects; this file shapes the answer.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::{agent_safe_text, agent_safe_value};
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::mcp::tools::checks::{self, Check};
use crate::store::diagnostics::{Correlation, DiagnosticScope};
use crate::time::now_ms;

pub(crate) mod gather;
pub(crate) mod timeline;

/// Handler of `codex_collect_diagnostics`.
pub async fn collect_diagnostics(app: &App, args: &Args) -> Result<Value, ToolError> {
    let now = now_ms();
    let since_minutes = args.int_or("since_minutes", 120);
    let since_ms = now - since_minutes * 60_000;
    let event_limit = usize::try_from(args.int_or("event_limit", 100)).unwrap_or(100);
    let timeline_limit = usize::try_from(args.int_or("timeline_limit", 100)).unwrap_or(100);
    let scope = DiagnosticScope {
        operation_id: args.string("operation_id"),
        workflow_id: args.string("workflow_id"),
        thread_id: args.string("thread_id"),
        turn_id: args.string("turn_id"),
        since_ms,
        event_limit,
    };
    let request = gather::Request {
        scope: scope.clone(),
        since_minutes,
        log_limit: args
            .bool("include_logs")
            .then(|| usize::try_from(args.int_or("log_limit", 50)).unwrap_or(50)),
    };
    let gather::Gathered {
        scoped,
        correlation,
        checks,
        logs,
        ..
    } = gather::gather(app, &request).await?;

    let overall = match checks::worst(&checks) {
        "error" => "broken",
        "warning" => "degraded",
        _ => "healthy",
    };
    let findings: Vec<Value> = checks
        .iter()
        .filter(|c| c.status != "ok")
        .map(Check::to_json)
        .collect();
    let confidence = if findings
        .iter()
        .any(|f| f["details"]["category"].is_string())
    {
        "high"
    } else if findings.is_empty() {
        "low"
    } else {
        "medium"
    };
    let next = checks
        .iter()
        .filter(|c| c.status == "error")
        .chain(checks.iter().filter(|c| c.status == "warning"))
        .find_map(|c| c.suggested_action)
        .unwrap_or(if findings.is_empty() {
            "none"
        } else {
            "codex_analyze_issue"
        });
    let timeline = if args.bool("include_timeline") {
        timeline::build(&correlation, timeline_limit)
    } else {
        json!({"entries": [], "truncated": false, "limit": timeline_limit})
    };
    Ok(json!({
        "scope": {
            "operationId": scope.operation_id,
            "workflowId": scope.workflow_id,
            "threadId": scope.thread_id,
            "turnId": scope.turn_id,
            "scoped": scoped,
            "sinceMinutes": since_minutes,
        },
        "overallStatus": overall,
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "scopedFindings": if scoped { findings.clone() } else { Vec::new() },
        "backgroundFindings": if scoped { Vec::new() } else { findings },
        "correlation": correlation_json(&correlation),
        "timeline": timeline,
        "progressJournal": correlation.progress.iter().map(|p| json!({
            "turnId": p.turn_id,
            "at": p.created_at.iso(),
            "method": p.method,
            "kind": p.kind,
            "summary": p.summary.as_deref().map(agent_safe_text),
        })).collect::<Vec<_>>(),
        "workflowObservation": workflow_observation(&correlation),
        "logs": logs,
        "diagnosisConfidence": confidence,
        "catalogRefresh": if args.bool("refresh_catalog") { "not_needed" } else { "not_requested" },
        "nextRecommendedAction": next,
    }))
}

/// The correlated rows, compact and redacted.
pub(crate) fn correlation_json(found: &Correlation) -> Value {
    let mut threads: Vec<&String> = found
        .operations
        .iter()
        .filter_map(|o| o.thread_id.as_ref())
        .chain(found.turns.iter().map(|t| &t.thread_id))
        .chain(found.workflows.iter().filter_map(|w| w.thread_id.as_ref()))
        .collect();
    threads.sort();
    threads.dedup();
    json!({
        "threadIds": threads,
        "operations": found.operations.iter().map(|o| json!({
            "operationId": o.operation_id,
            "operationType": o.operation_type,
            "status": o.status,
            "threadId": o.thread_id,
            "turnId": o.turn_id,
            "workflowId": o.workflow_id,
            "attemptCount": o.attempt_count,
            "lastError": o.last_error.as_ref().map(agent_safe_value),
            "createdAt": o.created_at.iso(),
            "updatedAt": o.updated_at.iso(),
            "completedAt": o.completed_at.map(|t| t.iso()),
        })).collect::<Vec<_>>(),
        "turns": found.turns.iter().map(|t| json!({
            "turnId": t.turn_id,
            "threadId": t.thread_id,
            "operationId": t.operation_id,
            "status": t.status,
            "terminalSource": t.terminal_source,
            "processGeneration": t.process_generation,
            "createdAt": t.created_at.iso(),
            "completedAt": t.completed_at.map(|t| t.iso()),
        })).collect::<Vec<_>>(),
        "workflows": found.workflows.iter().map(|w| json!({
            "workflowId": w.workflow_id,
            "workflowKind": w.kind,
            "phase": w.phase,
            "status": w.status,
            "threadId": w.thread_id,
            "error": w.error.as_ref().map(agent_safe_value),
            "createdAt": w.created_at.iso(),
            "completedAt": w.completed_at.map(|t| t.iso()),
        })).collect::<Vec<_>>(),
        "interactions": found.interactions.iter().map(|i| json!({
            "interactionId": i.interaction_id,
            "operationId": i.operation_id,
            "turnId": i.turn_id,
            "kind": i.kind,
            "method": i.method,
            "status": i.status,
            "processGeneration": i.process_generation,
            "createdAt": i.created_at.iso(),
            "expiresAt": i.expires_at.iso(),
        })).collect::<Vec<_>>(),
        "intents": found.intents.iter().map(|i| json!({
            "intentId": i.intent_id,
            "operationId": i.operation_id,
            "method": i.method,
            "state": i.state,
            "processGeneration": i.process_generation,
            "error": i.error.as_deref().map(agent_safe_text),
        })).collect::<Vec<_>>(),
        "workerCommands": found.commands.iter().map(|c| json!({
            "commandId": c.command_id,
            "commandType": c.command_type,
            "status": c.status,
            "error": c.error.as_ref().map(agent_safe_value),
            "createdAt": c.created_at.iso(),
        })).collect::<Vec<_>>(),
        "lifecycleActions": found.lifecycle.iter().map(|a| json!({
            "actionId": a.action_id,
            "actionType": a.action_type,
            "threadId": a.thread_id,
            "status": a.status,
        })).collect::<Vec<_>>(),
        "appServerEventCount": found.frames.len(),
    })
}

/// A workflow's operations by status, for the first workflow in scope.
fn workflow_observation(found: &Correlation) -> Value {
    let Some(workflow) = found.workflows.first() else {
        return Value::Null;
    };
    let ops: Vec<Value> = found
        .operations
        .iter()
        .filter(|o| o.workflow_id.as_ref() == Some(&workflow.workflow_id))
        .map(|o| json!({"operationId": o.operation_id, "status": o.status}))
        .collect();
    json!({
        "workflowId": workflow.workflow_id,
        "status": workflow.status,
        "phase": workflow.phase,
        "threadId": workflow.thread_id,
        "operations": ops,
    })
}
