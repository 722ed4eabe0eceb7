//! `codex_repair_issue`: an allowlisted repair, planned by a repair plugin and performed by the host. The action
//! (aliases resolved) selects the candidates the host offers (`steps::gather`); the repair plugins are asked in
//! chain order for a plan (`Engine::plan_repair`); every step is checked against the action's allowlist and
//! the offered targets, and one refused step refuses the whole plan (nothing is performed). `dry_run=true`
//! (the default) shows each target's state before and the state the step would leave; a real run performs the
//! steps and shows the state after. The loop guard (`guard`) limits real runs; every run that reaches a plan
//! (dry, real, refused or blocked) is audited in `codex_repair_runs` under its `repairRunId`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::agent_safe_text;
use crate::engine::repairs::RepairFinding;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::tools::analyze::snapshot;
use crate::mcp::tools::diagnostics::gather;
use crate::store::diagnostics::DiagnosticScope;
use crate::store::new_id;
use crate::store::repairs::{NewRepairRun, RepairScope};
use crate::time::now_ms;

mod actions;
mod guard;
mod procedures;
mod steps;

/// Most log lines in the snapshot handed to a repair plugin.
const SNAPSHOT_LOG_LINES: usize = 50;

/// The repairs that need the process that owns app-server (a client forwards them to the worker): the real
/// runs of the restarts, an interrupt and a workflow retry (workflows are driven by the worker), and every run
/// of a workflow reconcile (even its dry run asks app-server's `thread/read`).
pub fn needs_app_server_owner(args: &Args) -> bool {
    let dry_run = args.bool("dry_run");
    args.str("action")
        .map(actions::canonical)
        .is_some_and(|action| match action {
            "reconcile_workflow_from_thread" => true,
            "restart_app_server_idle"
            | "force_restart_app_server"
            | "interrupt_turn"
            | "retry_workflow_with_runtime_policy" => !dry_run,
            _ => false,
        })
}

/// Handler of `codex_repair_issue`.
pub async fn repair_issue(app: &App, args: &Args) -> Result<Value, ToolError> {
    let requested = args.required_str("action")?.to_string();
    let action = actions::canonical(&requested).to_string();
    if !actions::SUPPORTED.contains(&action.as_str()) {
        return Err(unsupported(&requested, &action));
    }
    let dry_run = args.bool("dry_run");
    let force = args.bool("force");
    let reason = args.string("reason").map(|r| agent_safe_text(&r));
    let (scope, category, diagnosis_id) = scope_of(app, args, &action).await?;
    let targets = steps::gather(
        app,
        &action,
        scope.clone(),
        args.int_or("stale_after_minutes", 30) * 60_000,
        args.int_or("older_than_days", 30) * 86_400_000,
    )
    .await?;
    let force_required = actions::needs_force(&action, targets.app_server_running);
    if force_required && !force && !dry_run {
        return Err(ToolError::invalid_argument(
            "force",
            format!("{action} is a forceful repair: run it with force=true (after a dry run)"),
        )
        .with_detail("action", json!(action)));
    }

    let scope_text = scope_label(&scope);
    let target = [
        &scope.operation_id,
        &scope.turn_id,
        &scope.thread_id,
        &scope.workflow_id,
    ]
    .into_iter()
    .flatten()
    .next()
    .cloned()
    .unwrap_or_else(|| "*".to_string());
    let guard_key = guard::key(&category, &scope_text, &action, &target);
    let window = actions::guard_limit(&action).1;
    let counted = app
        .engine
        .store
        .counted_repair_runs(&guard_key, now_ms() - window)
        .await?;
    let verdict = guard::judge(&action, &counted, now_ms());
    let repair_run_id = new_id("repair");
    let mut audit = NewRepairRun {
        action: action.clone(),
        requested_action: requested.clone(),
        guard_key: guard_key.clone(),
        diagnosis_id: diagnosis_id.clone(),
        dry_run,
        force,
        status: String::new(),
        plugin: None,
        steps: json!([]),
        before: json!([]),
        after: json!([]),
        result: Value::Null,
    };
    let mut answer = json!({
        "repairRunId": repair_run_id,
        "action": action,
        "requestedAction": requested,
        "dryRun": dry_run,
        "force": force,
        "forceRequired": force_required,
        "diagnosisId": diagnosis_id,
        "scope": {"operationId": scope.operation_id, "threadId": scope.thread_id, "turnId": scope.turn_id,
                  "workflowId": scope.workflow_id},
        "changed": false,
        "before": [],
        "after": [],
        "steps": [],
        "plugin": null,
        "result": "planned",
        "loopGuard": verdict.to_json(&guard_key, dry_run),
    });
    if !verdict.allowed && !dry_run {
        answer["result"] = json!("blocked_by_loop_guard");
        finish(&mut answer, &verdict);
        audit.status = "blocked".into();
        audit.result = answer.clone();
        app.engine
            .store
            .insert_repair_run(repair_run_id, audit)
            .await?;
        tracing::info!(%action, "repair blocked by the loop guard");
        return Ok(answer);
    }

    let snapshot = repair_snapshot(app, &scope, &answer["scope"], reason.as_deref()).await?;
    let finding = RepairFinding {
        code: action.clone(),
        subject: target.clone(),
        message: format!("repair requested: {action}"),
        details: targets
            .request(&action, force, reason.as_deref())
            .to_string(),
    };
    let plan = app
        .engine
        .plan_repair(finding, dry_run, snapshot.to_string())
        .await
        .map_err(|error| ToolError::new(ErrorCode::Internal, error.to_string()))?;
    answer["plugin"] = json!({
        "id": plan.plugin,
        "elapsedMs": plan.elapsed_ms,
        "failures": plan.failures.iter().map(|(plugin, kind, message)| json!({
            "plugin": plugin, "kind": kind, "message": agent_safe_text(message)})).collect::<Vec<_>>(),
    });
    audit.plugin = plan.plugin.clone();
    let checked = steps::check(&action, plan.steps, &targets);
    answer["steps"] = json!(checked.iter().map(steps::step_json).collect::<Vec<_>>());
    audit.steps = answer["steps"].clone();
    if checked.iter().any(|c| c.refusal.is_some()) {
        audit.status = "refused".into();
        audit.result = answer.clone();
        app.engine
            .store
            .insert_repair_run(repair_run_id.clone(), audit)
            .await?;
        tracing::warn!(%action, plugin = ?plan.plugin, "repair plan refused: a step is outside the allowlist");
        return Err(ToolError::new(
            ErrorCode::PluginFailed,
            format!(
                "repair plugin {} proposed steps outside the allowlist of {action}; nothing was performed",
                plan.plugin.as_deref().unwrap_or("?")
            ),
        )
        .with_detail("repairRunId", json!(repair_run_id))
        .with_detail("plugin", json!(plan.plugin))
        .with_detail("allowedStepKinds", json!(actions::allowed_kinds(&action)))
        .with_detail(
            "refusedSteps",
            json!(checked.iter().filter(|c| c.refusal.is_some()).map(steps::step_json).collect::<Vec<_>>()),
        )
        .with_detail("retryable", json!(false)));
    }

    let timeout = Duration::from_secs(args.int_or("timeout_seconds", 30).clamp(1, 120) as u64);
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut failures = Vec::new();
    for (index, item) in checked.iter().enumerate() {
        let state = steps::state(app, &action, &item.step.action, None).await?;
        if dry_run {
            after.push(steps::predicted(app, &action, &item.step.action, &state).await?);
        } else {
            match steps::perform(app, &action, &item.step.action, timeout, args).await {
                Ok(Some(output)) => answer["steps"][index]["output"] = output,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(step = %item.step.id, error = %error.message, "repair step failed");
                    answer["steps"][index]["error"] =
                        json!({"code": error.code.as_str(), "message": error.message});
                    failures.push(item.step.id.clone());
                }
            }
            after.push(steps::state(app, &action, &item.step.action, Some(&state)).await?);
        }
        before.push(state);
    }
    answer["changed"] = json!(!dry_run && before != after);
    answer["before"] = json!(before);
    answer["after"] = json!(after);
    answer["result"] = json!(match (dry_run, checked.is_empty(), failures.is_empty()) {
        (_, true, _) => "nothing_to_do",
        (true, false, _) => "planned",
        (false, false, true) => "completed",
        (false, false, false) => "failed",
    });
    finish(&mut answer, &verdict);
    audit.status = match (dry_run, failures.is_empty()) {
        (true, _) => "planned",
        (false, true) => "completed",
        (false, false) => "failed",
    }
    .into();
    audit.steps = answer["steps"].clone();
    audit.before = answer["before"].clone();
    audit.after = answer["after"].clone();
    audit.result = answer.clone();
    app.engine
        .store
        .insert_repair_run(repair_run_id.clone(), audit)
        .await?;
    tracing::info!(%repair_run_id, %action, dry_run, steps = checked.len(), "repair run recorded");
    Ok(answer)
}

/// The scope, guard category and diagnosis of a repair: the ids given, else those of the diagnosis.
async fn scope_of(
    app: &App,
    args: &Args,
    action: &str,
) -> Result<(RepairScope, String, Option<String>), ToolError> {
    let mut scope = RepairScope {
        operation_id: args.string("operation_id"),
        thread_id: args.string("thread_id"),
        turn_id: args.string("turn_id"),
        workflow_id: args.string("workflow_id"),
    };
    if let Some(id) = &scope.operation_id {
        app.engine.store.get_operation(id).await?.ok_or_else(|| {
            ToolError::invalid_argument("operation_id", "is not a known operation")
        })?;
    }
    let mut category = action.to_string();
    let diagnosis_id = args.string("diagnosis_id");
    if let Some(id) = &diagnosis_id {
        let diagnosis = app.engine.store.get_diagnosis(id).await?.ok_or_else(|| {
            ToolError::invalid_argument("diagnosis_id", "is not a recorded diagnosis")
        })?;
        let recorded = &diagnosis.recorded.scope;
        let from = |key: &str| recorded[key].as_str().map(str::to_string);
        let given = scope.operation_id.is_some()
            || scope.thread_id.is_some()
            || scope.turn_id.is_some()
            || scope.workflow_id.is_some();
        if !given {
            scope.operation_id = from("operationId");
            scope.thread_id = from("threadId");
            scope.turn_id = from("turnId");
            scope.workflow_id = from("workflowId");
        }
        if let Some(cause) = diagnosis.recorded.likely_root_cause {
            category = cause;
        }
    }
    Ok((scope, category, diagnosis_id))
}

/// The scope as one label for the guard key.
fn scope_label(scope: &RepairScope) -> String {
    match (
        &scope.operation_id,
        &scope.turn_id,
        &scope.thread_id,
        &scope.workflow_id,
    ) {
        (Some(_), ..) => "operation",
        (None, Some(_), ..) => "turn",
        (None, None, Some(_), _) => "thread",
        (None, None, None, Some(_)) => "workflow",
        _ => "global",
    }
    .to_string()
}

/// The analyzer snapshot of the scope: the context a repair plugin plans in.
async fn repair_snapshot(
    app: &App,
    scope: &RepairScope,
    scope_json: &Value,
    reason: Option<&str>,
) -> Result<Value, ToolError> {
    let request = gather::Request {
        scope: DiagnosticScope {
            operation_id: scope.operation_id.clone(),
            workflow_id: scope.workflow_id.clone(),
            thread_id: scope.thread_id.clone(),
            turn_id: scope.turn_id.clone(),
            since_ms: now_ms() - 120 * 60_000,
            event_limit: 100,
        },
        since_minutes: 120,
        log_limit: Some(SNAPSHOT_LOG_LINES),
    };
    let gathered = gather::gather(app, &request).await?;
    Ok(snapshot::build(&gathered, scope_json, reason))
}

/// `agentGuidance` and `postRepairGuidance` for the answer.
fn finish(answer: &mut Value, verdict: &guard::Verdict) {
    let result = answer["result"].as_str().unwrap_or_default().to_string();
    let (state, instructions): (&str, Vec<String>) = match result.as_str() {
        "blocked_by_loop_guard" => (
            "blocked",
            vec![
                "Stop: the loop guard blocks this repair; do not retry it before retryAfter."
                    .into(),
                "Collect diagnostics (codex_collect_diagnostics) and ask a person.".into(),
            ],
        ),
        "planned" => (
            "recoverable",
            vec![
                "Check before/after; run again with dry_run=false to apply exactly these steps."
                    .into(),
            ],
        ),
        "nothing_to_do" => (
            "no_action",
            vec!["Nothing matched this repair; no retry needed.".into()],
        ),
        "completed" => (
            "recoverable",
            vec!["Read the repaired targets' status; analyze again if the problem remains.".into()],
        ),
        _ => (
            "blocked",
            vec!["A step failed: see steps[].error; do not loop on this repair.".into()],
        ),
    };
    let tools: &[&str] = &[
        "codex_get_operation_status",
        "codex_get_workflow_status",
        "codex_collect_diagnostics",
    ];
    answer["postRepairGuidance"] = json!({
        "nextTools": tools,
        "instructions": instructions,
    });
    answer["agentGuidance"] = json!({
        "schemaVersion": "agent-guidance/v1",
        "problemState": state,
        "instructions": instructions,
        "loopGuard": {"allowed": verdict.allowed, "blockedReason": verdict.blocked_reason},
    });
}

/// The answer to an action name that is neither a repair action of the seed nor one of its aliases.
fn unsupported(requested: &str, action: &str) -> ToolError {
    ToolError::invalid_argument("action", format!("{requested} is not a repair action"))
        .with_detail("unsupported", json!(false))
        .with_detail("action", json!(action))
        .with_detail("supportedActions", json!(actions::SUPPORTED))
}
