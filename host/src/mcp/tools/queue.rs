//! Queue, concurrency and worker views: pure reads of SQLite.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::status::{ACTIVE, STARTABLE};
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::store::operations::{Operation, OperationFilter};

fn brief(op: &Operation) -> Value {
    json!({
        "operationId": op.operation_id,
        "operationType": op.operation_type,
        "status": op.status,
        "queueStatus": op.queue_status,
        "queuedReason": op.queued_reason,
        "priority": op.priority,
        "agentId": op.agent_id,
        "projectId": op.project_id,
        "threadId": op.thread_id,
        "turnId": op.turn_id,
        "workerId": op.worker_id,
        "attemptCount": op.attempt_count,
        "createdAt": op.created_at.iso(),
        "updatedAt": op.updated_at.iso(),
    })
}

fn limit(args: &Args, fallback: i64) -> usize {
    usize::try_from(args.int_or("limit", fallback)).unwrap_or(0)
}

/// Handler of `codex_get_queue_status`.
pub async fn queue_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let limit = limit(args, 100);
    let counts = engine.store.queue_counts().await?;
    let wanted = args.string("status");
    let statuses = |set: &[&str]| set.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let queued = engine
        .store
        .list_operations(
            OperationFilter {
                statuses: statuses(&STARTABLE),
                ..Default::default()
            },
            limit,
        )
        .await?;
    let running = engine
        .store
        .list_operations(
            OperationFilter {
                statuses: statuses(&ACTIVE),
                ..Default::default()
            },
            limit,
        )
        .await?;
    let keep = |op: &&Operation| match wanted.as_deref() {
        None => true,
        Some(status) => op.queue_status == status || op.status == status,
    };
    let blocked: Vec<Value> = queued
        .iter()
        .filter(|op| {
            op.queued_reason
                .as_deref()
                .is_some_and(|r| r.ends_with("_slot_limit") || r == "resource_lock_conflict")
        })
        .map(brief)
        .collect();
    Ok(json!({
        "queueSummary": {
            "queued": counts.by_queue_status.get("queued").copied().unwrap_or(0),
            "scheduled": counts.by_queue_status.get("scheduled").copied().unwrap_or(0),
            "running": running.len(),
        },
        "statusCounts": counts.by_status,
        "queuedOperations": queued.iter().filter(keep).map(brief).collect::<Vec<_>>(),
        "runningOperations": running.iter().filter(keep).map(brief).collect::<Vec<_>>(),
        "auxiliaryOperations": [],
        "blockedByLocks": blocked,
        "queueReasons": counts.by_queued_reason,
    }))
}

/// Handler of `codex_get_concurrency_status`.
pub async fn concurrency_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let limits = engine.settings().limits;
    let counts = engine.store.concurrency_counts().await?;
    let locks: Vec<Value> = if args
        .value("include_locks")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        engine
            .store
            .resource_locks()
            .await?
            .into_iter()
            .map(|lock| {
                json!({
                    "lockKey": lock.lock_key,
                    "operationId": lock.operation_id,
                    // Locks are held by their operation: released with its terminal state or by recovery.
                    "releasedWith": "operation_terminal_state",
                    "acquiredAt": crate::time::iso8601_from_ms(lock.acquired_at_ms),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let active = engine
        .store
        .list_operations(
            OperationFilter {
                statuses: ACTIVE.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            limit(args, 200),
        )
        .await?;
    Ok(json!({
        "limits": {
            "global": limits.global,
            "perProject": limits.per_project,
            "perAgent": limits.per_agent,
            "perThread": limits.per_thread,
            "writePerProject": limits.write_per_project,
        },
        "counts": counts,
        "activeOperations": active.iter().map(brief).collect::<Vec<_>>(),
        "resourceLocks": locks,
    }))
}

/// Handler of `codex_get_worker_status`: the process model as it is (this process's mode, the worker that holds
/// the worker lock), every registered worker with its heartbeat, version and config fingerprint, and the recent
/// worker commands.
pub async fn worker_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let workers = engine.store.list_workers(limit(args, 20)).await?;
    let presence = crate::engine::worker_link::presence(engine.store.path());
    let my_version = env!("CARGO_PKG_VERSION");
    let commands = if args.bool("include_recent_commands") {
        engine
            .store
            .recent_worker_commands(limit(args, 20))
            .await?
            .iter()
            .map(|c| super::worker_commands::command_json(c, false, 0))
            .collect::<Vec<_>>()
    } else {
        Vec::new()
    };
    Ok(json!({
        "executionMode": app.config.execution_mode.as_str(),
        "processRole": engine.role().as_str(),
        "workerOwner": engine.worker.owner_id,
        "configFingerprint": engine.worker.config_fingerprint,
        "startupRecovery": engine.startup_recovery(),
        "backgroundWorker": presence,
        "workers": workers.iter().map(|w| json!({
            "ownerId": w.owner_id,
            "pid": w.pid,
            "hostKey": w.host_key,
            "role": w.role,
            "status": w.status,
            "startedAt": w.started_at.iso(),
            "lastHeartbeatAt": w.last_heartbeat_at.iso(),
            "version": w.version,
            "versionMatches": w.version.as_deref() == Some(my_version),
            "configFingerprint": w.config_fingerprint,
            "configFingerprintMatches": w.config_fingerprint == engine.worker.config_fingerprint,
            "alive": !w.dead,
            "holdsWorkerLock": presence.owner_id.as_deref() == Some(w.owner_id.as_str()),
            "self": w.owner_id == engine.worker.owner_id,
        })).collect::<Vec<_>>(),
        "recentCommands": commands,
    }))
}
