//! Workflows: `codex_start_plan_workflow`, `codex_get_workflow_status`, `codex_approve_plan`,
//! `codex_adopt_workflow_plan`, `codex_execute_plan` (reviews: `reviews.rs`). The procedures themselves are WASM plugins
//! (`plan-workflow`, `review-workflow`); these handlers validate, apply the Plan Mode floor, and read the
//! workflow back from SQLite.

use serde_json::{json, Value};

use super::operations::{interaction_json, truncate, truncated_report, turn_not_found};
use crate::app::App;
use crate::domain::rules::output_schema::validate_output_schema;
use crate::engine::goals::goal_view;
use crate::engine::request::RequestError;
use crate::engine::workflows::WorkflowStart;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::goals::{CompletionAction, NewGoal};
use crate::store::workflows::{Workflow, WorkflowSnapshot};

/// The plugin that implements `plan_then_execute`.
const PLAN_PLUGIN: &str = "plan-workflow";
/// The plugin that implements `code_review`.
pub(super) const REVIEW_PLUGIN: &str = "review-workflow";

pub(super) fn sandbox_rank(mode: &str) -> u8 {
    match mode {
        "workspace-write" => 1,
        "danger-full-access" => 2,
        _ => 0,
    }
}

/// `approval_policy` values that mean "ask the orchestrator" become `on-request`; `respect_existing` keeps
/// the thread's setting (`None`).
pub(super) fn effective_approval(requested: &str) -> Option<String> {
    match requested {
        "respect_existing" => None,
        "ask_openclaw" | "never_auto_approve" => Some("on-request".to_string()),
        other => Some(other.to_string()),
    }
}

fn unknown_workflow(workflow_id: &str) -> ToolError {
    ToolError::invalid_argument("workflow_id", format!("unknown workflow {workflow_id}"))
        .with_detail("workflowId", json!(workflow_id))
}

async fn load(app: &App, workflow_id: &str) -> Result<Workflow, ToolError> {
    app.engine()
        .store
        .get_workflow(workflow_id)
        .await?
        .ok_or_else(|| unknown_workflow(workflow_id))
}

/// Handler of `codex_start_plan_workflow`.
pub async fn start_plan(app: &App, args: &Args) -> Result<Value, ToolError> {
    let project = app
        .projects
        .resolve(args.required_str("project_id")?)
        .map_err(|err| ToolError::from(RequestError::Project(err)))?;
    let cwd = match args.str("cwd") {
        Some(cwd) => {
            let path = crate::config::normalize_path(std::path::Path::new(cwd));
            app.projects
                .for_cwd(&path)
                .map_err(|err| ToolError::from(RequestError::Project(err)))?;
            path
        }
        None => project.root_path.clone(),
    };
    let defaults = &app.config;
    let requested_sandbox = if args.was_provided("sandbox") {
        args.str("sandbox").unwrap_or("read-only").to_string()
    } else {
        defaults.default_sandbox.as_str().to_string()
    };
    let requested_approval = if args.was_provided("approval_policy") {
        args.str("approval_policy")
            .unwrap_or("on-request")
            .to_string()
    } else {
        defaults.default_approval_policy.as_str().to_string()
    };
    // The Plan Mode floor (seed): at least workspace-write, or the configured default when that is stronger;
    // `never` approvals when the operator's default is `never`.
    let default_sandbox = defaults.default_sandbox.as_str();
    let mut effective_sandbox = "workspace-write".to_string();
    for candidate in [requested_sandbox.as_str(), default_sandbox] {
        if sandbox_rank(candidate) > sandbox_rank(&effective_sandbox) {
            effective_sandbox = candidate.to_string();
        }
    }
    let mut effective_approval = effective_approval(&requested_approval);
    if defaults.default_approval_policy.as_str() == "never" {
        effective_approval = Some("never".to_string());
    }
    let adjusted = effective_sandbox != requested_sandbox
        || effective_approval.as_deref() != Some(requested_approval.as_str());
    let goal = goal_request(args)?;
    let runtime_policy = json!({
        "requestedSandbox": requested_sandbox,
        "requestedApprovalPolicy": requested_approval,
        "effectiveSandbox": effective_sandbox,
        "effectiveApprovalPolicy": effective_approval,
        "runtimePolicyAdjusted": adjusted,
        "adjustmentReason": adjusted.then_some("plan_mode_floor"),
    });
    let message = args.required_str("message")?;
    let input = json!({
        "message": message,
        "cwd": cwd.display().to_string(),
        "model": args.str("model").map(str::to_string).or_else(|| defaults.default_model.clone()),
        "sandbox": effective_sandbox,
        "approvalPolicy": effective_approval,
        "title": args.str("title"),
        "threadId": null,
    });
    let fingerprint_material = json!({
        "input": input,
        "projectId": project.project_id,
        "goal": goal.as_ref().map(|g| json!({"objective": g.objective, "tokenBudget": g.token_budget,
            "completionAction": g.completion_action.as_str(), "completionObjective": g.completion_objective})),
    });
    let (workflow, created) = start(
        app,
        args,
        WorkflowRequest {
            kind: "plan_then_execute",
            plugin_id: PLAN_PLUGIN.to_string(),
            input,
            fingerprint_material,
            runtime_policy,
            goal,
        },
    )
    .await?;
    let mut payload = workflow_payload(app, &workflow, args).await?;
    payload["idempotent"] = json!(!created);
    Ok(payload)
}

/// The goal to mirror (`goal`, `goal_token_budget`, `goal_completion_action`, `goal_completion_objective`).
/// The other goal parameters mean nothing without `goal`, so giving them alone is an error, not a no-op.
fn goal_request(args: &Args) -> Result<Option<NewGoal>, ToolError> {
    let objective = args.str("goal").map(str::trim).filter(|g| !g.is_empty());
    let Some(objective) = objective else {
        // `goal_completion_action: "clear"` is the default a client may well send every time.
        for name in [
            "goal_token_budget",
            "goal_completion_action",
            "goal_completion_objective",
        ] {
            let given = args.was_provided(name)
                && args
                    .value(name)
                    .is_some_and(|v| !v.is_null() && v != "clear");
            if given {
                return Err(ToolError::invalid_argument(
                    name,
                    format!("{name} needs a non-empty goal"),
                ));
            }
        }
        return Ok(None);
    };
    let completion_action = match args.str("goal_completion_action") {
        None => CompletionAction::Clear,
        Some(text) => CompletionAction::parse(text).ok_or_else(|| {
            ToolError::invalid_argument(
                "goal_completion_action",
                format!("unknown goal_completion_action {text}"),
            )
        })?,
    };
    let completion_objective = args.string("goal_completion_objective");
    if completion_objective.is_some() && completion_action != CompletionAction::SetComplete {
        return Err(ToolError::invalid_argument(
            "goal_completion_objective",
            "goal_completion_objective applies only to goal_completion_action set_complete",
        ));
    }
    Ok(Some(NewGoal {
        objective: objective.to_string(),
        token_budget: args.value("goal_token_budget").and_then(Value::as_i64),
        completion_action,
        completion_objective,
    }))
}

/// A workflow a tool asks for, before its idempotency key is settled.
pub(super) struct WorkflowRequest {
    pub(super) kind: &'static str,
    pub(super) plugin_id: String,
    pub(super) input: Value,
    /// What makes two requests the same (compared on a retry with the same key).
    pub(super) fingerprint_material: Value,
    pub(super) runtime_policy: Value,
    pub(super) goal: Option<NewGoal>,
}

/// Starts (or, for the same `client_request_id` and request, finds) a workflow: the fingerprint is the
/// canonical hash of `fingerprint_material`, and a missing key gets a unique `auto:` one (no implicit
/// idempotency, as for operations).
pub(super) async fn start(
    app: &App,
    args: &Args,
    request: WorkflowRequest,
) -> Result<(Workflow, bool), ToolError> {
    let fingerprint = crate::mcp::catalog::sha256_hex(
        crate::mcp::catalog::canonical_json(&request.fingerprint_material).as_bytes(),
    );
    let client_request_id = args.string("client_request_id").unwrap_or_else(|| {
        format!(
            "auto:{}:{}",
            &fingerprint[..32],
            uuid::Uuid::new_v4().simple()
        )
    });
    app.engine()
        .start_workflow(WorkflowStart {
            kind: request.kind.to_string(),
            plugin_id: request.plugin_id,
            input: request.input,
            client_request_id,
            request_fingerprint: fingerprint,
            runtime_policy: request.runtime_policy,
            goal: request.goal,
        })
        .await
        .map_err(engine_error)
}

/// The tool error for an engine error from a workflow call: a workflow that cannot run (its plugin is not
/// loaded) is the plugin's failure.
pub(super) fn engine_error(err: crate::engine::EngineError) -> ToolError {
    match err {
        crate::engine::EngineError::Store(err) => err.into(),
        crate::engine::EngineError::AppServer(err) => err.into(),
        crate::engine::EngineError::Invalid(message) => {
            ToolError::new(ErrorCode::PluginFailed, message)
        }
        crate::engine::EngineError::PolicyDenied(message) => {
            ToolError::new(ErrorCode::PolicyDenied, message)
        }
    }
}

/// Handler of `codex_get_workflow_status`: a pure read of SQLite, unless `refresh_live` (ask app-server about
/// the workflow's running turns and advance it) or `refresh_live_goal` (`thread/goal/get`) is set. A live
/// check that fails is reported beside the stored view, never instead of it.
pub async fn status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let workflow_id = args.required_str("workflow_id")?;
    let engine = app.engine();
    let refresh_live = args.bool("refresh_live");
    let refresh_goal = args.bool("refresh_live_goal");
    if !refresh_live && !refresh_goal {
        // The common poll: one snapshot read, nothing else.
        let snapshot = engine
            .store
            .workflow_snapshot(workflow_id, events_wanted(args))
            .await?
            .ok_or_else(|| unknown_workflow(workflow_id))?;
        return Ok(render_workflow(&snapshot, message_max_chars(args)));
    }
    let mut workflow = load(app, workflow_id).await?;
    let live = if refresh_live {
        let report = engine.refresh_workflow_live(&workflow).await;
        workflow = load(app, workflow_id).await?;
        Some(report)
    } else {
        None
    };
    let live_goal = if refresh_goal {
        Some(engine.refresh_goal(&workflow).await)
    } else {
        None
    };
    let mut payload = workflow_payload(app, &workflow, args).await?;
    if let Some(report) = live {
        payload["liveRefresh"] = report;
    }
    match live_goal {
        None => {}
        Some(Ok(goal)) => {
            let goal = goal.unwrap_or(Value::Null);
            if payload["threadGoal"]["syncState"] == "not_configured" && !goal.is_null() {
                payload["threadGoal"]["syncState"] = json!("observed");
                payload["threadGoal"]["currentGoal"] = goal.clone();
            }
            payload["threadGoal"]["liveGoal"] = goal;
        }
        Some(Err(err)) => {
            payload["threadGoal"]["refreshError"] = crate::engine::error_json(&err);
        }
    }
    Ok(payload)
}

/// The seed's workflow payload (W) of `workflow`, read again in one snapshot.
pub(super) async fn workflow_payload(
    app: &App,
    workflow: &Workflow,
    args: &Args,
) -> Result<Value, ToolError> {
    let snapshot = app
        .engine()
        .store
        .workflow_snapshot(&workflow.workflow_id, events_wanted(args))
        .await?
        .ok_or_else(|| unknown_workflow(&workflow.workflow_id))?;
    Ok(render_workflow(&snapshot, message_max_chars(args)))
}

/// History lines a payload shows: `include_events` (default true) asks for the latest 50.
fn events_wanted(args: &Args) -> usize {
    if args
        .value("include_events")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        50
    } else {
        0
    }
}

/// The `message_max_chars` argument (default 8000).
fn message_max_chars(args: &Args) -> usize {
    usize::try_from(args.int_or("message_max_chars", 8000)).unwrap_or(8000)
}

/// Renders the payload (W) from a snapshot, plan and report texts cut to `max_chars`; no I/O.
pub(crate) fn render_workflow(snapshot: &WorkflowSnapshot, max_chars: usize) -> Value {
    let workflow = &snapshot.workflow;
    let actions = &snapshot.actions;
    let pending = &snapshot.pending;
    let op_of = |id: &str| {
        actions
            .iter()
            .find(|a| a.action_id == id)
            .and_then(|a| a.operation_id.as_deref())
            .and_then(|op_id| snapshot.operations.iter().find(|o| o.operation_id == op_id))
    };
    let plan_op = op_of("plan");
    let exec_op = op_of("execute");
    let plan_op_id = plan_op.map(|o| o.operation_id.clone());
    let exec_op_id = exec_op.map(|o| o.operation_id.clone());
    let turn_view = |op: Option<&crate::store::Operation>| {
        op.map(
            |op| json!({"turnId": op.turn_id, "status": op.status, "operationId": op.operation_id}),
        )
    };
    let current_op = exec_op.or(plan_op).map(|o| o.operation_id.clone());
    let state = &workflow.state;
    let quality = state.get("planQuality").and_then(Value::as_str);
    let plan_text = state
        .get("plan")
        .and_then(Value::as_str)
        .map(|p| truncate(p, max_chars).0);
    let mut status = workflow.status.clone();
    if let Some(first) = pending.first() {
        status = if first.kind == "user_input" {
            "waiting_for_user_input".into()
        } else {
            "waiting_for_approval".into()
        };
    }
    let next = if !pending.is_empty() {
        "answer_pending_interaction"
    } else {
        match workflow.phase.as_str() {
            "starting_thread" | "starting_review" | "reviewing" => "wait_review",
            "completed" if workflow.kind == "code_review" => "read_review_report",
            "planning" | "starting" => "wait_plan",
            "plan_ready" => "execute_plan",
            "plan_needs_review" => "review_plan",
            "plan_candidate_found" => "adopt_candidate_plan",
            "executing" => "wait_execution",
            "compacting" => "poll_thread_compaction",
            "completed" => "read_final_report",
            _ => "inspect_diagnostics",
        }
    };
    let final_report = truncated_report(workflow.final_report.clone(), max_chars);
    let terminal = workflow.is_terminal();
    json!({
        "workflowId": workflow.workflow_id,
        "workflowKind": workflow.kind,
        "clientRequestId": workflow.client_request_id,
        "pluginId": workflow.plugin_id,
        "pluginVersion": workflow.plugin_version,
        "phase": workflow.phase,
        "status": status,
        "terminal": terminal,
        "threadId": workflow.thread_id,
        "chatId": workflow.thread_id,
        "planOperationId": plan_op_id,
        "executionOperationId": exec_op_id,
        "currentOperationId": current_op,
        "planTurn": turn_view(plan_op),
        "executionTurn": turn_view(exec_op),
        "latestPlan": {
            "planQuality": quality,
            "valid": quality == Some("valid_plan"),
            "plan": plan_text,
            "planHash": state.get("planHash"),
            "turnId": state.get("planTurnId"),
        },
        "finalReport": final_report,
        "error": workflow.error,
        "runtimePolicy": workflow.runtime_policy,
        "threadGoal": goal_view(snapshot.goal.as_ref()),
        "pendingInteractions": pending.iter().map(interaction_json).collect::<Vec<_>>(),
        "events": snapshot.events,
        "actions": actions.iter().map(|a| json!({"actionId": a.action_id, "kind": a.kind, "state": a.state,
                                                  "operationId": a.operation_id})).collect::<Vec<_>>(),
        "createdAt": workflow.created_at.iso(),
        "updatedAt": workflow.updated_at.iso(),
        "nextRecommendedAction": next,
        "recommendedPollAfterSeconds": if terminal { 0 } else if pending.is_empty() { 5 } else { 10 },
        "pollRecommended": !terminal,
    })
}

/// Handler of `codex_approve_plan`: answers the plugin's approval gate; the plugin queues the execution turn.
pub async fn approve(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let workflow = load(app, args.required_str("workflow_id")?).await?;
    let actions = engine.store.workflow_actions(&workflow.workflow_id).await?;
    let gate = actions
        .iter()
        .rev()
        .find(|a| a.kind == "wait-for-approval" && a.state == "performed");
    let Some(gate) = gate.filter(|_| workflow.phase == "plan_ready") else {
        // Approving twice is idempotent: the execution already queued is returned.
        if let Some(execute) = actions.iter().find(|a| a.action_id == "execute") {
            let mut payload = workflow_payload(app, &workflow, args).await?;
            payload["idempotent"] = json!(true);
            payload["approveOperation"] = json!({"operationId": execute.operation_id, "status": payload["executionTurn"]["status"]});
            return Ok(payload);
        }
        return Err(ToolError::invalid_argument(
            "workflow_id",
            format!(
                "approve_plan needs a completed plan of quality valid_plan; the workflow is {}",
                workflow.phase
            ),
        )
        .with_detail("phase", json!(workflow.phase))
        .with_detail(
            "planQuality",
            workflow
                .state
                .get("planQuality")
                .cloned()
                .unwrap_or(Value::Null),
        ));
    };
    let output_schema = args
        .value("output_schema")
        .filter(|v| !v.is_null())
        .cloned();
    if let Some(schema) = &output_schema {
        validate_output_schema(schema)
            .map_err(|err| ToolError::invalid_argument("output_schema", err.to_string()))?;
    }
    let sandbox = args.str("sandbox").filter(|s| *s != "respect_existing");
    let comment = json!({
        "message": args.str("message"),
        "outputSchema": output_schema,
        "sandbox": sandbox,
        "approvalPolicy": args.str("approval_policy").and_then(effective_approval),
    });
    let gate_id = gate.action_id.clone();
    let workflow = engine
        .approve_workflow(&workflow, &gate_id, true, Some(comment.to_string()))
        .await
        .map_err(engine_error)?;
    let mut payload = workflow_payload(app, &workflow, args).await?;
    payload["idempotent"] = json!(false);
    payload["approveOperation"] = json!({"operationId": payload["executionOperationId"], "status": payload["executionTurn"]["status"]});
    Ok(payload)
}

/// The plan inside `<proposed_plan>` tags, trimmed.
fn proposed_plan(text: &str) -> Option<&str> {
    let start = text.find("<proposed_plan>")? + "<proposed_plan>".len();
    let end = text[start..].find("</proposed_plan>")? + start;
    Some(text[start..end].trim())
}

/// Handler of `codex_adopt_workflow_plan`: adopts a newer plan from the workflow's thread, checked by hash.
pub async fn adopt(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let workflow = load(app, args.required_str("workflow_id")?).await?;
    let turn_id = args.required_str("candidate_turn_id")?;
    let wanted_hash = args.required_str("candidate_plan_hash")?;
    if matches!(
        workflow.phase.as_str(),
        "executing" | "completed" | "failed" | "orphaned_after_app_server_exit"
    ) {
        return Err(ToolError::invalid_argument(
            "workflow_id",
            format!(
                "a plan cannot be adopted once the workflow is {}",
                workflow.phase
            ),
        ));
    }
    let turn = engine
        .store
        .get_turn(turn_id)
        .await?
        .ok_or_else(|| turn_not_found(turn_id))?;
    if workflow.thread_id.as_deref() != Some(turn.thread_id.as_str()) {
        return Err(ToolError::invalid_argument(
            "candidate_turn_id",
            "the candidate turn belongs to another thread than the workflow's",
        ));
    }
    let text = turn.final_message.clone().unwrap_or_default();
    let plan = proposed_plan(&text).ok_or_else(|| {
        ToolError::invalid_argument(
            "candidate_turn_id",
            "the candidate turn holds no <proposed_plan>",
        )
    })?;
    let hash = crate::mcp::catalog::sha256_hex(plan.as_bytes());
    if hash != wanted_hash {
        return Err(ToolError::invalid_argument(
            "candidate_plan_hash",
            "the plan hash does not match",
        )
        .with_detail("planHash", json!(hash)));
    }
    let details = json!({"candidateTurnId": turn_id, "plan": plan, "planHash": hash,
                         "adoptionNote": args.str("adoption_note")});
    let workflow = engine
        .adopt_into_workflow(&workflow, &turn.thread_id, details.clone())
        .await
        .map_err(engine_error)?;
    let mut payload = workflow_payload(app, &workflow, args).await?;
    payload["idempotent"] = json!(false);
    payload["adoptedPlan"] = details;
    Ok(payload)
}

/// Handler of `codex_execute_plan` (compatibility): with `workflow_id` it is `codex_approve_plan`; with
/// `chat_id` it queues an `execute_plan` operation on that thread, as `codex_submit_task` would.
pub async fn execute_plan(app: &App, args: &Args) -> Result<Value, ToolError> {
    if args.str("workflow_id").is_some() {
        return approve(app, args).await;
    }
    if args.str("chat_id").is_none() {
        return Err(ToolError::invalid_argument(
            "workflow_id",
            "give workflow_id (a plan workflow) or chat_id (a thread with a plan)",
        ));
    }
    let submit = args.with("operation_type", json!("execute_plan"));
    super::operations::submit(app, &submit).await
}
