//! `codex_health_summary`: a storage-only readiness report plus the contract's version block.
//!
//! It never starts app-server and never waits on it: a client calls it first on every start-up, so it must
//! answer in microseconds even when Codex is broken.

use serde_json::{json, Value};

use crate::domain::rules::capabilities::health_subset;
use crate::domain::rules::redact::redact_text;

use crate::app::App;
use crate::mcp::args::Args;
use crate::mcp::catalog::{
    Catalog, ContractGroup, CONTRACT_VERSION, GUIDE_VERSION, RECOMMENDED_PRIMARY_WRITE_TOOL,
    RECOMMENDED_STARTUP_TOOL,
};
use crate::mcp::error::ToolError;
use crate::mcp::server::SERVER_NAME;
use crate::store::health::{HealthQuery, HealthReport};
use crate::time::{iso8601_now, now_ms};

/// One readiness check.
struct Check {
    name: &'static str,
    status: &'static str,
    message: String,
}

/// Handler of `codex_health_summary`.
pub async fn health_summary(app: &App, args: &Args) -> Result<Value, ToolError> {
    let catalog = Catalog::get();
    let stable = catalog.names_in(ContractGroup::Stable);
    let compatibility = catalog.names_in(ContractGroup::Compatibility);
    let version = json!({
        "serverName": SERVER_NAME,
        "serverVersion": env!("CARGO_PKG_VERSION"),
        "contractVersion": CONTRACT_VERSION,
        "toolSurfaceHash": catalog.tool_surface_hash(),
        "guideVersion": GUIDE_VERSION,
        "recommendedStartupFlow": "startup",
        "recommendedStartupTool": RECOMMENDED_STARTUP_TOOL,
        "recommendedPrimaryWriteTool": RECOMMENDED_PRIMARY_WRITE_TOOL,
        "stableToolCount": stable.len(),
        "compatibilityToolCount": compatibility.len(),
        "stableTools": stable,
        "compatibilityTools": compatibility,
        "generatedAt": iso8601_now(),
    });

    let mut checks = Vec::new();
    // The store is read, never written, by the health summary (a poll must stay cheap).
    let store = match app.engine.store.health_counts().await {
        Ok(counts) => {
            checks.push(Check {
                name: "mcp_state_db",
                status: "ok",
                message: format!("schema version {}", counts.schema_version),
            });
            json!({"status": "ok", "path": app.config.state_db_path.display().to_string(),
                   "schemaVersion": counts.schema_version, "operations": counts.operations,
                   "activeOperations": counts.active_operations,
                   "pendingInteractions": counts.pending_interactions, "error": null})
        }
        Err(error) => {
            checks.push(Check {
                name: "mcp_state_db",
                status: "error",
                message: error.to_string(),
            });
            json!({"status": "error", "error": error.to_string()})
        }
    };
    let mut plugins = app.plugin_infos();
    add_state_usage(app, &mut plugins).await;
    let plugin_errors: Vec<Value> = plugins
        .iter()
        .filter(|p| p.get("status").and_then(Value::as_str) == Some("failed"))
        .map(|p| json!({"name": p.get("name"), "error": p.get("error")}))
        .collect();
    let failed: Vec<&str> = plugins
        .iter()
        .filter(|p| p.get("status").and_then(Value::as_str) == Some("failed"))
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    checks.push(if failed.is_empty() {
        Check {
            name: "plugins",
            status: "ok",
            message: format!("{} plugin(s) loaded", plugins.len()),
        }
    } else {
        Check {
            name: "plugins",
            status: "warning",
            message: format!("plugins failed to load: {}", failed.join(", ")),
        }
    });
    let app_server = app.appserver.status();
    checks.push(if app_server.codex_binary_exists {
        Check {
            name: "codex_binary",
            status: "ok",
            message: format!(
                "codex binary at {}",
                app_server
                    .codex_binary_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        }
    } else {
        Check {
            name: "codex_binary",
            status: "error",
            message: "codex binary not found; set CODEX_BINARY_PATH or put codex on PATH".into(),
        }
    });
    let worker = worker_block(app, &mut checks).await?;
    for root in &app.config.allowed_roots {
        if !root.is_dir() {
            checks.push(Check {
                name: "allowed_roots",
                status: "warning",
                message: format!("allowed root {} is not a directory", root.display()),
            });
        }
    }

    let query = query_of(args);
    let report = match app.engine.store.health_report(query).await {
        Ok(report) => report,
        Err(error) => {
            checks.push(Check {
                name: "mcp_state_db",
                status: "error",
                message: format!("cannot read work state: {error}"),
            });
            HealthReport::default()
        }
    };
    work_checks(&report, &mut checks);
    let capabilities = match app.engine.store.latest_runtime_capabilities().await {
        Ok(Some(row)) => {
            health_subset(&row.snapshot["runtimeCapabilities"], &row.captured_at.iso())
        }
        Ok(None) => json!({"status": "unknown", "capturedAt": null,
                           "hint": "no snapshot yet: call codex_get_runtime_capabilities"}),
        Err(error) => json!({"status": "unknown", "capturedAt": null, "error": error.to_string()}),
    };

    let overall = if checks.iter().any(|c| c.status == "error") {
        "broken"
    } else if checks.iter().any(|c| c.status == "warning") {
        "degraded"
    } else {
        "healthy"
    };
    let next_action = next_action(&checks, &report, app_server.codex_binary_exists);
    let checks: Vec<Value> = checks
        .into_iter()
        .map(|c| json!({"name": c.name, "status": c.status, "message": c.message}))
        .collect();
    Ok(json!({
        "version": version,
        "overallStatus": overall,
        "plugins": plugins,
        "appServer": {
            "running": app_server.running,
            "pid": app_server.pid,
            "processGeneration": app_server.process_generation,
            "binaryPath": app_server.codex_binary_path.as_ref().map(|p| p.display().to_string()),
            "binaryFound": app_server.codex_binary_exists,
            "status": if app_server.running { "running" } else { "not_started" },
            "activeTurns": app_server.active_turns,
            "ownedBy": if app.delegates_to_worker().is_some() { "background_worker" } else { "this_process" },
        },
        "worker": worker,
        "store": store,
        "activeWork": active_work(&report),
        "stallSupervisor": stall_supervisor(&report, query),
        "historicalDebt": {
            "staleOperations": report.stale_operations,
            "staleWorkflows": report.stale_workflows,
            "staleAfterMinutes": query.stale_after_ms / 60_000,
        },
        "recentErrors": recent_errors(&report, query),
        "pluginErrors": plugin_errors,
        "runtimeCapabilities": capabilities,
        "recursionGuard": {
            "active": app.recursion_guard_active(),
            "writeToolsRefused": app.recursion_guard_active(),
        },
        "checks": checks,
        "nextRecommendedAction": next_action,
        "uptimeSeconds": app.started_at.elapsed().as_secs_f64(),
    }))
}

/// Adds each plugin's persisted key/value state (`state: {keys, bytes}`) to its inventory entry; `null` when
/// the store cannot be read (the `mcp_state_db` check reports why).
async fn add_state_usage(app: &App, plugins: &mut [Value]) {
    let usage = app.engine.store.plugin_state_usage().await.ok();
    for plugin in plugins {
        let held = usage.as_ref().map(|usage| {
            let row = usage
                .iter()
                .find(|row| plugin.get("name").and_then(Value::as_str) == Some(&row.plugin_id));
            json!({"keys": row.map_or(0, |r| r.keys), "bytes": row.map_or(0, |r| r.bytes)})
        });
        plugin["state"] = held.unwrap_or(Value::Null);
    }
}

/// The store query the arguments describe (windows in minutes; no recent errors listed when not asked for).
fn query_of(args: &Args) -> HealthQuery {
    let listed = args.value("include_recent_errors").and_then(Value::as_bool) != Some(false);
    HealthQuery {
        now: now_ms(),
        stale_after_ms: args.int_or("stale_after_minutes", 30).max(1) * 60_000,
        since_ms: args.int_or("since_minutes", 120).max(1) * 60_000,
        max_recent_errors: if listed {
            usize::try_from(args.int_or("max_recent_errors", 5)).unwrap_or(0)
        } else {
            0
        },
    }
}

/// Live turns that stopped moving. Diagnose only, as the seed's default: nothing is interrupted here.
fn stall_supervisor(report: &HealthReport, query: HealthQuery) -> Value {
    let turns: Vec<Value> = report
        .stalled_turns
        .iter()
        .map(|t| {
            json!({
                "turnId": t.turn_id,
                "threadId": t.thread_id,
                "operationId": t.operation_id,
                "status": t.status,
                "lastActivityAt": t.last_activity_at.iso(),
                "idleMinutes": (query.now - t.last_activity_at.ms()).max(0) / 60_000,
            })
        })
        .collect();
    json!({
        "mode": "diagnose_only",
        "staleAfterMinutes": query.stale_after_ms / 60_000,
        "stalledTurnCount": turns.len(),
        "stalledTurns": turns,
    })
}

/// Work that needs attention, as checks: turns that stopped moving, active rows nobody touched, failures.
fn work_checks(report: &HealthReport, checks: &mut Vec<Check>) {
    if !report.stalled_turns.is_empty() {
        checks.push(Check {
            name: "stalled_turns",
            status: "warning",
            message: format!(
                "{} running turn(s) without activity and without a pending interaction",
                report.stalled_turns.len()
            ),
        });
    }
    if report.stale_operations > 0 || report.stale_workflows > 0 {
        checks.push(Check {
            name: "stale_operations",
            status: "warning",
            message: format!(
                "{} active operation(s) and {} workflow(s) not updated within the stale window",
                report.stale_operations, report.stale_workflows
            ),
        });
    }
    if report.recent_error_count > 0 {
        checks.push(Check {
            name: "recent_errors",
            status: "warning",
            message: format!(
                "{} operation(s) or workflow(s) failed recently",
                report.recent_error_count
            ),
        });
    }
}

/// The one thing to do first, most urgent first: a missing binary or unreadable store breaks everything; an
/// unanswered interaction holds a turn; stalled or stale work needs recovering; then recent failures.
fn next_action(checks: &[Check], report: &HealthReport, binary_found: bool) -> &'static str {
    let failing = |name: &str| checks.iter().any(|c| c.name == name && c.status != "ok");
    if !binary_found {
        "fix_codex_binary"
    } else if failing("mcp_state_db") {
        "inspect_state_db"
    } else if report.active.pending_interactions > 0 {
        "answer_pending_interaction"
    } else if failing("stalled_turns") || failing("stale_operations") {
        "recover_stale_operations"
    } else if failing("recent_errors") {
        "inspect_recent_errors"
    } else if failing("background_worker") {
        "inspect_worker_health"
    } else if checks.iter().any(|c| c.status != "ok") {
        "inspect_diagnostics"
    } else {
        "none"
    }
}

fn active_work(report: &HealthReport) -> Value {
    let a = &report.active;
    json!({
        "queuedOperations": a.queued_operations,
        "runningOperations": a.running_operations,
        "pendingInteractions": a.pending_interactions,
        "activeWorkflows": a.active_workflows,
        "activeTurns": a.active_turns,
    })
}

fn recent_errors(report: &HealthReport, query: HealthQuery) -> Value {
    let items: Vec<Value> = report
        .recent_errors
        .iter()
        .map(|e| {
            let text = |key: &str| {
                e.error
                    .as_ref()
                    .and_then(|v| v.get(key))
                    .and_then(Value::as_str)
            };
            let message = text("message").map(|m| {
                let short: String = m.chars().take(300).collect();
                redact_text(&short).into_owned()
            });
            json!({
                "kind": e.kind,
                "id": e.id,
                "status": e.status,
                "code": text("code"),
                "message": message,
                "at": e.at.iso(),
            })
        })
        .collect();
    json!({
        "sinceMinutes": query.since_ms / 60_000,
        "count": report.recent_error_count,
        "items": items,
    })
}

/// The process model as health sees it: this server's mode and, when it leaves dispatching to a worker, that
/// worker's state, heartbeat, version and config fingerprint (a mismatch is a warning: the worker does not take
/// work submitted under another fingerprint). Storage and the lock file only; never starts anything.
async fn worker_block(app: &App, checks: &mut Vec<Check>) -> Result<Value, ToolError> {
    let engine = app.engine();
    let mode = app.config.execution_mode.as_str();
    let Some(link) = app.delegates_to_worker() else {
        checks.push(Check {
            name: "background_worker",
            status: "ok",
            message: "inline mode: this server dispatches its own work".into(),
        });
        return Ok(json!({"executionMode": mode, "state": "inline"}));
    };
    let presence = link.presence();
    let row = match &presence.owner_id {
        Some(owner) => engine
            .store
            .list_workers(20)
            .await?
            .into_iter()
            .find(|w| &w.owner_id == owner),
        None => None,
    };
    let version_matches = presence.version.as_deref() == Some(env!("CARGO_PKG_VERSION"));
    let fingerprint_matches = row
        .as_ref()
        .is_none_or(|w| w.config_fingerprint == engine.worker.config_fingerprint);
    let waiting = engine.store.has_unfinished_work().await?;
    let check = match (presence.is_running(), waiting) {
        (true, _) if !fingerprint_matches => Check {
            name: "background_worker",
            status: "warning",
            message: "the running worker has another config fingerprint (codex home, database or allowed roots); \
                      it will not take this server's work: stop it with `codex-control-plane-mcp worker stop`"
                .into(),
        },
        (true, _) if !version_matches => Check {
            name: "background_worker",
            status: "warning",
            message: format!(
                "the running worker is version {}, this server {}; `codex-control-plane-mcp worker stop` swaps it \
                 for this binary on the next submit",
                presence.version.as_deref().unwrap_or("unknown"),
                env!("CARGO_PKG_VERSION")
            ),
        },
        (true, _) => Check {
            name: "background_worker",
            status: "ok",
            message: format!("worker pid {} is running", presence.pid.unwrap_or(0)),
        },
        (false, true) if !link.auto_start => Check {
            name: "background_worker",
            status: "warning",
            message: "work is waiting and no worker runs: start `codex-control-plane-mcp worker` (client mode)".into(),
        },
        (false, true) => Check {
            name: "background_worker",
            status: "warning",
            message: "work is waiting and no worker runs; the next write starts one".into(),
        },
        (false, false) => Check {
            name: "background_worker",
            status: "ok",
            message: "no worker running; the next submit starts one".into(),
        },
    };
    checks.push(check);
    Ok(json!({
        "executionMode": mode,
        "state": presence.state,
        "pid": presence.pid,
        "ownerId": presence.owner_id,
        "version": presence.version,
        "versionMatches": presence.is_running().then_some(version_matches),
        "configFingerprintMatches": presence.is_running().then_some(fingerprint_matches),
        "lastHeartbeatAt": row.as_ref().map(|w| w.last_heartbeat_at.iso()),
        "unfinishedWork": waiting,
        "autoStart": link.auto_start,
    }))
}
