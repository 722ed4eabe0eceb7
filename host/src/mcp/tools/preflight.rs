//! `codex_preflight_project_run`: is a project ready for a Codex run? Readiness checks from files, the store,
//! the worker's lock and the last runtime capabilities snapshot (never starting app-server), and, only when
//! the caller sets `live_probe`, one real probe turn: a read-only, never-approving `start_chat` whose prompt
//! carries `MCP LIVE TEST / DO NOT MODIFY FILES`, waited for up to `timeout_seconds`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::{agent_safe_text, redacted_path};
use crate::domain::rules::capabilities::health_subset;
use crate::domain::rules::status::{ACTIVE, STARTABLE};
use crate::mcp::args::Args;
use crate::mcp::call::CallContext;
use crate::mcp::catalog::Catalog;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::schema;
use crate::mcp::tools::checks::{self, Check};
use crate::projects::ProjectError;
use crate::store::operations::OperationFilter;

/// The marker every probe prompt carries, so a reader of the chat (or of the model's logs) knows it is a test.
pub const PROBE_MARKER: &str = "MCP LIVE TEST / DO NOT MODIFY FILES";

/// Most active operations looked at for `active_work`: more than the slot limits ever let run at once.
const MAX_ACTIVE_LISTED: usize = 500;

/// Handler of `codex_preflight_project_run`.
pub async fn preflight(app: &App, args: &Args, ctx: &CallContext) -> Result<Value, ToolError> {
    let (project_id, cwd) = target(app, args)?;
    let workflow_kind = args.str("workflow_kind").unwrap_or("plan");
    let sandbox = args.str("sandbox");
    let mut checks = vec![project_path(&cwd)];
    checks.push(checks::codex_binary(app));
    checks.push(checks::codex_home(app));
    checks.push(checks::codex_auth(app));
    checks.push(store_writable(app).await);
    checks.push(checks::app_server(app));
    checks.push(worker_check(app));
    let snapshot = app.engine.store.latest_runtime_capabilities().await?;
    let capabilities = snapshot
        .as_ref()
        .map(|row| &row.snapshot["runtimeCapabilities"]);
    checks.push(capabilities_check(capabilities));
    if let Some(model) = args.str("model") {
        checks.push(model_check(capabilities, model));
    }
    checks.push(sandbox_check(capabilities, sandbox, workflow_kind));
    if workflow_kind == "review" {
        checks.push(git_check(&cwd));
    }
    checks.push(active_work(app, &cwd, workflow_kind).await?);
    let pending = app.pending_interaction_count().await?;
    checks.push(if pending > 0 {
        Check::new(
            "pending_interactions",
            "warning",
            format!("{pending} interaction(s) wait for an answer"),
        )
        .category("pending_approval")
        .suggest("codex_list_pending_interactions")
    } else {
        Check::ok("pending_interactions", "none waiting")
    });

    let probe = if args.bool("live_probe") {
        let seconds = u64::try_from(args.int_or("timeout_seconds", 30)).unwrap_or(30);
        let (check, probe) = live_probe(app, args, &cwd, Duration::from_secs(seconds), ctx).await;
        checks.push(check);
        probe
    } else {
        Value::Null
    };

    let status = checks::worst(&checks);
    let next = match status {
        "ok" => match workflow_kind {
            "plan" => "codex_start_plan_workflow",
            "review" => "codex_start_review_workflow",
            _ => "codex_submit_task",
        },
        _ => checks
            .iter()
            .filter(|c| c.status == "error")
            .chain(checks.iter().filter(|c| c.status == "warning"))
            .find_map(|c| c.suggested_action)
            .unwrap_or("codex_collect_diagnostics"),
    };
    Ok(json!({
        "status": status,
        "projectId": project_id,
        "cwd": redacted_path(&cwd.display().to_string()),
        "workflowKind": workflow_kind,
        "sandbox": sandbox,
        "approvalPolicy": args.str("approval_policy"),
        "model": args.str("model"),
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "runtimeCapabilities": match &snapshot {
            Some(row) => health_subset(&row.snapshot["runtimeCapabilities"], &row.captured_at.iso()),
            None => json!({"status": "unknown", "capturedAt": null,
                           "hint": "no snapshot yet: call codex_get_runtime_capabilities"}),
        },
        "probeOperation": probe,
        "liveProbe": args.bool("live_probe"),
        "nextRecommendedAction": next,
    }))
}

/// The project and working directory the arguments name: `cwd` when given (absolute, inside the allowed
/// roots), else the project's root, else the projects root.
fn target(app: &App, args: &Args) -> Result<(Option<String>, PathBuf), ToolError> {
    let project = match args.str("project_id") {
        Some(reference) => Some(app.projects.resolve(reference).map_err(|err| {
            match err {
                ProjectError::NotFound { reference } => ToolError::new(
                    ErrorCode::ProjectNotFound,
                    format!("project not found: {reference}"),
                )
                .with_detail("projectId", json!(reference)),
                ProjectError::OutsideAllowedRoots { .. } => {
                    ToolError::invalid_argument("project_id", "is outside the allowed roots")
                }
                err @ ProjectError::BadRegistry { .. } => {
                    ToolError::new(ErrorCode::InternalStateReadError, err.to_string())
                }
            }
        })?),
        None => None,
    };
    let cwd = match args.str("cwd") {
        Some(cwd) => {
            let path = Path::new(cwd);
            if !path.is_absolute() {
                return Err(ToolError::invalid_argument(
                    "cwd",
                    "must be an absolute path",
                ));
            }
            if !app.config.is_allowed_path(path) {
                return Err(ToolError::invalid_argument(
                    "cwd",
                    "is outside the allowed roots",
                ));
            }
            crate::config::normalize_path(path)
        }
        None => match &project {
            Some(project) => project.root_path.clone(),
            None => crate::config::normalize_path(&app.config.projects_root),
        },
    };
    Ok((project.map(|p| p.project_id), cwd))
}

/// The working directory exists and is a directory.
fn project_path(cwd: &Path) -> Check {
    if cwd.is_dir() {
        Check::ok(
            "project_path",
            format!("{} is a directory inside the allowed roots", cwd.display()),
        )
    } else {
        Check::new(
            "project_path",
            "error",
            format!("{} is not a directory", cwd.display()),
        )
        .category("project_path")
        .suggest("validate_paths_and_config")
    }
}

/// A code review reads the changes of a git work tree: `cwd` or a folder above it holds `.git` (a folder, or a
/// file in a linked work tree).
fn git_check(cwd: &Path) -> Check {
    match cwd.ancestors().find(|dir| dir.join(".git").exists()) {
        Some(root) => Check::ok(
            "git_repository",
            format!("git work tree at {}", root.display()),
        ),
        None => Check::new(
            "git_repository",
            "warning",
            format!(
                "{} is not in a git work tree; a review of changes needs one",
                cwd.display()
            ),
        )
        .suggest("run the review in a git repository, or use target_type=custom"),
    }
}

/// Work already under way in the project: fine for a plan or a review, but a write run queues behind a write
/// that holds the project's write lock.
async fn active_work(app: &App, cwd: &Path, workflow_kind: &str) -> Result<Check, ToolError> {
    let filter = OperationFilter {
        statuses: ACTIVE
            .iter()
            .chain(&STARTABLE)
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    let store = &app.engine.store;
    let in_project: Vec<String> = store
        .list_operations(filter, MAX_ACTIVE_LISTED)
        .await?
        .into_iter()
        .filter(|op| {
            op.cwd
                .as_deref()
                .is_some_and(|dir| Path::new(dir).starts_with(cwd))
        })
        .map(|op| op.operation_id)
        .collect();
    let writing: Vec<&String> = store
        .resource_locks()
        .await?
        .into_iter()
        .filter(|lock| lock.lock_key.starts_with("project:") && lock.lock_key.ends_with(":write"))
        .filter_map(|lock| in_project.iter().find(|id| **id == lock.operation_id))
        .collect();
    let check = if workflow_kind == "write" && !writing.is_empty() {
        Check::new(
            "active_work",
            "warning",
            format!(
                "operation {} holds the project's write lock; a new write run waits for it",
                writing[0]
            ),
        )
        .suggest("codex_get_concurrency_status")
    } else {
        Check::ok(
            "active_work",
            format!("{} active operation(s) in this project", in_project.len()),
        )
    };
    Ok(check
        .detail("activeOperationCount", json!(in_project.len()))
        .detail("writeLockHeldBy", json!(writing.first())))
}

/// The state database takes a write: its file and folder are writable and a write transaction commits.
async fn store_writable(app: &App) -> Check {
    let db = &app.config.state_db_path;
    let read_only = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly());
    let folder_read_only = db.parent().is_some_and(read_only);
    if read_only(db) || folder_read_only {
        return Check::new(
            "mcp_state_db",
            "error",
            "the state database or its folder is read-only",
        )
        .category("mcp_state_db")
        .suggest("validate_paths_and_config");
    }
    match app
        .engine
        .store
        .write(|tx| Ok(tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?))
        .await
    {
        Ok(version) => Check::ok(
            "mcp_state_db",
            format!("writable, schema version {version}"),
        ),
        Err(error) => Check::new(
            "mcp_state_db",
            "error",
            format!("a write transaction failed: {error}"),
        )
        .category("mcp_state_db")
        .suggest("validate_paths_and_config"),
    }
}

/// In `auto`/`client` mode: whether the background worker runs (absent is fine in `auto`: a write starts it;
/// in `client` mode someone has to start it).
fn worker_check(app: &App) -> Check {
    let Some(link) = app.delegates_to_worker() else {
        return Check::ok(
            "background_worker",
            "inline mode: this server dispatches its own work",
        );
    };
    let presence = link.presence();
    match (presence.is_running(), link.auto_start) {
        (true, _) => Check::ok("background_worker", format!("worker pid {} is running", presence.pid.unwrap_or(0))),
        (false, true) => Check::ok("background_worker", "no worker running; the next submit starts one"),
        (false, false) => Check::new(
            "background_worker",
            "warning",
            "no worker runs and this server does not start one: run `codex-control-plane-mcp worker`",
        )
        .suggest("start the background worker"),
    }
}

/// The last runtime capabilities snapshot, if any (preflight never takes one: that may start app-server).
fn capabilities_check(capabilities: Option<&Value>) -> Check {
    match capabilities
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
    {
        None => Check::new("runtime_capabilities", "skipped", "no snapshot yet")
            .suggest("codex_get_runtime_capabilities"),
        Some("ok") => Check::ok("runtime_capabilities", "the last snapshot is complete"),
        Some(status) => Check::new(
            "runtime_capabilities",
            "warning",
            format!("the last snapshot is {status}"),
        )
        .suggest("codex_get_runtime_capabilities"),
    }
}

/// The requested model is in the last snapshot's model list.
fn model_check(capabilities: Option<&Value>, model: &str) -> Check {
    let Some(models) = capabilities
        .and_then(|c| c.pointer("/models/items"))
        .and_then(Value::as_array)
    else {
        return Check::new("model", "skipped", "no model list in the last snapshot")
            .suggest("codex_get_runtime_capabilities");
    };
    if models
        .iter()
        .any(|m| m.get("id").and_then(Value::as_str) == Some(model))
    {
        Check::ok("model", format!("model {model} is available"))
    } else {
        Check::new(
            "model",
            "warning",
            format!("model {model} is not in the model list of the last snapshot"),
        )
        .category("model_or_config_error")
        .suggest("codex_get_runtime_capabilities")
        .detail("model", json!(model))
    }
}

/// The sandbox fits the kind of run, and the Linux sandbox can work.
fn sandbox_check(
    capabilities: Option<&Value>,
    sandbox: Option<&str>,
    workflow_kind: &str,
) -> Check {
    let readiness = capabilities
        .and_then(|c| c.pointer("/sandboxReadiness/status"))
        .and_then(Value::as_str);
    let effective = sandbox.unwrap_or("read-only");
    let check = if workflow_kind == "write" && effective == "read-only" {
        Check::new(
            "sandbox",
            "warning",
            "a write run in a read-only sandbox cannot change files",
        )
        .suggest("pass sandbox=workspace-write")
    } else if effective == "danger-full-access" {
        Check::new(
            "sandbox",
            "warning",
            "danger-full-access runs commands without a sandbox",
        )
    } else if readiness == Some("restricted") {
        Check::new(
            "sandbox",
            "warning",
            "the Linux sandbox (bubblewrap) is restricted on this host",
        )
        .category("sandbox_spawn_denied")
    } else {
        Check::ok("sandbox", format!("{effective} for a {workflow_kind} run"))
    };
    check
        .detail("sandbox", json!(effective))
        .detail("sandboxReadiness", json!(readiness))
}

/// Submits the probe turn and waits for it; the check says how it went, the value is `probeOperation`.
async fn live_probe(
    app: &App,
    args: &Args,
    cwd: &Path,
    bound: Duration,
    ctx: &CallContext,
) -> (Check, Value) {
    // The tool is a passive read in the catalog, so the server's guard does not see the probe: it is checked
    // here, as every write tool is.
    if app.recursion_guard_active() {
        let check = Check::new(
            "live_probe",
            "error",
            "refused: this server runs inside a Codex session it started (recursion guard)",
        )
        .detail("errorCode", json!(ErrorCode::RecursionGuard.as_str()));
        return (check, Value::Null);
    }
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let message = format!(
        "{PROBE_MARKER}. This is a readiness probe ({}): do not run commands or change files; reply with the single word OK.",
        &nonce[..8]
    );
    let mut values = serde_json::Map::new();
    values.insert("operation_type".into(), json!("start_chat"));
    values.insert(
        "client_request_id".into(),
        json!(format!("preflight:{nonce}")),
    );
    values.insert("message".into(), json!(message));
    values.insert("cwd".into(), json!(cwd.display().to_string()));
    values.insert("sandbox".into(), json!("read-only"));
    values.insert("approval_policy".into(), json!("never"));
    values.insert("title".into(), json!("MCP live test"));
    if let Some(project) = args.str("project_id") {
        values.insert("project_id".into(), json!(project));
    }
    if let Some(model) = args.str("model") {
        values.insert("model".into(), json!(model));
    }
    let provided = values.keys().cloned().collect();
    let Some(spec) = Catalog::get().find("codex_submit_task") else {
        return (
            Check::new(
                "live_probe",
                "error",
                "codex_submit_task is not in the catalog",
            ),
            Value::Null,
        );
    };
    schema::apply_defaults(&spec.input_schema, &mut values);
    let started = Instant::now();
    let accepted = match super::route(app, spec, Args::new(values, provided)).await {
        Ok(accepted) => accepted,
        Err(error) => {
            let payload = error.to_payload();
            let check = Check::new(
                "live_probe",
                "error",
                format!(
                    "the probe was refused: {}",
                    payload["error"]["message"].as_str().unwrap_or("")
                ),
            )
            .detail("errorCode", payload["error"]["code"].clone())
            .suggest("codex_collect_diagnostics");
            return (check, Value::Null);
        }
    };
    let Some(operation_id) = accepted
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return (
            Check::new("live_probe", "error", "the submit answered no operationId"),
            Value::Null,
        );
    };
    let waited = super::wait::operation_until(app, &operation_id, bound, ctx, |s| {
        s.get("terminal").and_then(Value::as_bool) == Some(true)
    })
    .await;
    let status = match waited {
        Ok((status, _)) => status,
        Err(error) => {
            let check = Check::new(
                "live_probe",
                "warning",
                format!(
                    "waiting for the probe failed: {}",
                    error.to_payload()["error"]["message"]
                ),
            )
            .detail("operationId", json!(operation_id));
            return (check, json!({"operationId": operation_id}));
        }
    };
    let state = status
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("queued")
        .to_string();
    let final_text = status
        .pointer("/finalReport/text")
        .and_then(Value::as_str)
        .map(|t| agent_safe_text(&t.chars().take(500).collect::<String>()));
    let probe = json!({
        "operationId": operation_id,
        "status": state,
        "terminal": status.get("terminal").cloned().unwrap_or(json!(false)),
        "threadId": status.get("threadId").cloned().unwrap_or(Value::Null),
        "turnId": status.get("turnId").cloned().unwrap_or(Value::Null),
        "finalMessage": final_text,
        "durationMs": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "sandbox": "read-only",
        "approvalPolicy": "never",
    });
    let check = match state.as_str() {
        "completed" => Check::ok("live_probe", "the probe turn completed"),
        "unknown_after_app_server_exit" => Check::new(
            "live_probe",
            "error",
            "app-server exited during the probe turn",
        )
        .category("app_server_exited")
        .suggest("codex_collect_diagnostics"),
        "failed" | "cancelled" | "interrupted" | "orphaned" => Check::new(
            "live_probe",
            "error",
            format!("the probe turn ended {state}"),
        )
        .suggest("codex_collect_diagnostics"),
        _ => Check::new(
            "live_probe",
            "warning",
            format!(
                "the probe turn is still {state} after {} s",
                bound.as_secs()
            ),
        )
        .category("client_timeout")
        .suggest("codex_wait"),
    };
    (check.detail("operationId", json!(operation_id)), probe)
}
