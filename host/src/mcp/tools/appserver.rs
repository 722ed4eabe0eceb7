//! `codex_get_app_server_status` and `codex_restart_app_server`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::appserver::RestartMode;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};

/// Handler of `codex_get_app_server_status`: a snapshot that never starts the process.
pub async fn status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let status = app.appserver.status();
    let mut payload = serde_json::to_value(&status)
        .map_err(|err| ToolError::new(ErrorCode::Internal, err.to_string()))?;
    if let Value::Object(map) = &mut payload {
        map.insert(
            "pendingInteractions".into(),
            json!(app.pending_interaction_count().await?),
        );
        if args.bool("include_recent_events") {
            map.insert(
                "recentEvents".into(),
                Value::Array(app.recent_app_server_events()),
            );
        }
    }
    Ok(payload)
}

/// Handler of `codex_restart_app_server`: refuses with `CODEX_BUSY` while turns are active unless `force`.
pub async fn restart(app: &App, args: &Args) -> Result<Value, ToolError> {
    let before = app.appserver.status();
    let mode = if args.bool("force") {
        RestartMode::Force
    } else {
        RestartMode::Idle
    };
    let timeout = Duration::from_secs(args.int_or("timeout_seconds", 30).max(1) as u64);
    let start_after = args.bool("start_after_restart");
    let work = async {
        if start_after {
            app.appserver.restart(mode).await.map(Some)
        } else {
            app.appserver.stop(mode).await.map(|_| None)
        }
    };
    let generation = tokio::time::timeout(timeout, work).await.map_err(|_| {
        ToolError::new(
            ErrorCode::Timeout,
            format!(
                "app-server restart did not finish within {}s",
                timeout.as_secs()
            ),
        )
    })??;
    let after = app.appserver.status();
    Ok(json!({
        "restarted": before.running || generation.is_some(),
        "started": generation.is_some(),
        "beforePid": before.pid,
        "afterPid": after.pid,
        "processGeneration": after.process_generation,
        "activeWork": {"activeTurnsBefore": before.active_turns, "force": mode == RestartMode::Force},
    }))
}
