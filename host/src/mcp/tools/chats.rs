//! The seed's compatibility writes `codex_start_chat` and `codex_send_message`: thin doors into the durable
//! engine. Each becomes a `codex_submit_task` operation (same duplicate-prompt guard, policy chain, worker and
//! recovery), then answers in the seed's shape once the turn has started, and with its first assistant message
//! when `first_message_timeout_seconds` asks for one.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::wait;
use crate::app::App;
use crate::domain::rules::status::is_startable;
use crate::mcp::args::Args;
use crate::mcp::call::CallContext;
use crate::mcp::catalog::Catalog;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::schema;

/// How long a compatibility write waits for its turn to start before answering with the queued operation.
/// Below the 60 s tool timeout common in clients; a cold app-server start takes a few seconds.
const TURN_START_BOUND: Duration = Duration::from_secs(45);

/// Arguments both tools pass on to the operation unchanged.
const SHARED: [&str; 6] = [
    "message",
    "approval_policy",
    "sandbox",
    "collaboration_mode",
    "timeout_seconds",
    "first_message_max_chars",
];

/// `codex_start_chat`: a `start_chat` operation on a new thread.
pub async fn start_chat(app: &App, args: &Args, ctx: &CallContext) -> Result<Value, ToolError> {
    let submit = operation_args("start_chat", args, &["project_id", "title", "cwd", "model"]);
    run(app, submit, args, ctx).await
}

/// `codex_send_message`: a `send_message` operation on an existing thread.
pub async fn send_message(app: &App, args: &Args, ctx: &CallContext) -> Result<Value, ToolError> {
    let submit = operation_args("send_message", args, &["chat_id", "project_id"]);
    let mut result = run(app, submit, args, ctx).await?;
    result["mode"] = json!(args.str("mode").unwrap_or("normal"));
    Ok(result)
}

/// The `codex_submit_task` arguments for `operation_type`: the caller's values of the shared keys and `extra`,
/// counted as provided only when the caller sent them (so config defaults still apply), plus the published
/// defaults of the submit tool.
fn operation_args(operation_type: &str, args: &Args, extra: &[&str]) -> Args {
    let mut values = Map::new();
    let mut provided = BTreeSet::new();
    values.insert("operation_type".into(), json!(operation_type));
    provided.insert("operation_type".to_string());
    for key in SHARED.iter().chain(extra) {
        if let Some(value) = args.value(key) {
            values.insert((*key).to_string(), value.clone());
        }
        if args.was_provided(key) {
            provided.insert((*key).to_string());
        }
    }
    if let Some(spec) = Catalog::get().find("codex_submit_task") {
        schema::apply_defaults(&spec.input_schema, &mut values);
    }
    Args::new(values, provided)
}

async fn run(app: &App, submit: Args, args: &Args, ctx: &CallContext) -> Result<Value, ToolError> {
    let spec = Catalog::get().find("codex_submit_task").ok_or_else(|| {
        ToolError::new(
            ErrorCode::Internal,
            "codex_submit_task is not in the catalog",
        )
    })?;
    let accepted = super::route(app, spec, submit).await?;
    let operation_id = accepted
        .get("operationId")
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::new(ErrorCode::Internal, "the submit answered no operationId"))?
        .to_string();
    let terminal = |s: &Value| s.get("terminal").and_then(Value::as_bool) == Some(true);
    // The turn has started once the operation has its id and is no longer startable (queued or `starting_*`):
    // app-server's reply gives the id a moment before the turn is tracked and the operation marked running, and a
    // caller that lists its chats right after this answer must find the turn there.
    let started = |s: &Value| {
        s.get("turnId").is_some_and(Value::is_string)
            && s.get("status")
                .and_then(Value::as_str)
                .is_some_and(|status| !is_startable(status))
    };
    let (mut status, _) = wait::operation_until(app, &operation_id, TURN_START_BOUND, ctx, |s| {
        started(s) || terminal(s)
    })
    .await?;
    let first_message_wait = args.int("first_message_timeout_seconds").unwrap_or(0);
    if first_message_wait > 0 && !terminal(&status) {
        let bound = Duration::from_secs(u64::try_from(first_message_wait).unwrap_or(0));
        status = wait::operation_until(app, &operation_id, bound, ctx, |s| {
            first_message(s).is_some() || terminal(s)
        })
        .await?
        .0;
    }
    Ok(reply(&accepted, &status))
}

/// The first assistant message of the turn, as the status snapshot carries it.
fn first_message(status: &Value) -> Option<&Value> {
    status
        .get("latestMessages")?
        .as_array()?
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
}

/// The seed's compatibility shape, plus the operation to follow.
fn reply(accepted: &Value, status: &Value) -> Value {
    let state = status
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("queued");
    let failed = matches!(
        state,
        "failed" | "cancelled" | "canceled" | "aborted" | "unknown_after_app_server_exit"
    );
    let policy = status.get("runtimePolicy").cloned().unwrap_or(Value::Null);
    let turn_id = status.get("turnId").cloned().unwrap_or(Value::Null);
    json!({
        "chatId": status.get("threadId").cloned().unwrap_or(Value::Null),
        "threadId": status.get("threadId").cloned().unwrap_or(Value::Null),
        "turnId": turn_id,
        "accepted": !failed,
        "status": state,
        "turnStarted": turn_id.is_string(),
        "firstMessage": first_message(status).cloned(),
        "effectiveApprovalPolicy": policy.get("effectiveApprovalPolicy").cloned().unwrap_or(Value::Null),
        "effectiveSandbox": policy.get("effectiveSandbox").cloned().unwrap_or(Value::Null),
        "runtimePolicy": policy,
        "lastError": status.get("lastError").cloned().unwrap_or(Value::Null),
        "operationId": accepted.get("operationId").cloned().unwrap_or(Value::Null),
        "projectId": status.get("projectId").cloned().unwrap_or(Value::Null),
        "deduplicated": accepted.get("deduplicated").cloned().unwrap_or(json!(false)),
        "nextRecommendedAction": if turn_id.is_string() || failed {
            "codex_wait with operation_ids=[operationId], or codex_get_operation_status"
        } else {
            "the turn has not started yet: follow operationId with codex_wait"
        },
    })
}
