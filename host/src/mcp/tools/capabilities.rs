//! `codex_get_runtime_capabilities`: models, permission profiles, hooks, skills, provider capabilities, account
//! state (redacted), sandbox readiness and the protocol's methods, as one snapshot cached for five minutes per
//! working directory and flags. In a client process a cached snapshot answers at once; a new one is taken by
//! the worker that owns app-server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::engine::capabilities::{Capabilities, CapabilityRequest, CACHE_TTL};
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::mcp::tools::workflows::engine_error;

/// The request the arguments describe; a `cwd` that is relative or outside the allowed roots is refused.
fn request(app: &App, args: &Args) -> Result<CapabilityRequest, ToolError> {
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
        None => PathBuf::from(&app.config.projects_root),
    };
    let seconds = u64::try_from(args.int_or("timeout_seconds", 2)).unwrap_or(2);
    let flag = |key: &str| args.value(key).and_then(Value::as_bool).unwrap_or(true);
    Ok(CapabilityRequest {
        cwd,
        timeout: Duration::from_secs(seconds.max(1)),
        include_models: flag("include_models"),
        include_hooks: flag("include_hooks"),
        include_skills: flag("include_skills"),
        include_account: flag("include_account"),
    })
}

/// The tool's payload for a snapshot: the snapshot plus where it came from (`cached`, `cacheState`).
fn render(capabilities: Capabilities) -> Value {
    let age_ms = crate::time::now_ms().saturating_sub(capabilities.captured_at.ms());
    let mut payload = capabilities.snapshot;
    let status = payload
        .pointer("/runtimeCapabilities/status")
        .and_then(Value::as_str)
        .unwrap_or("unavailable")
        .to_string();
    payload["cached"] = json!(capabilities.cached);
    payload["cachedAt"] = json!(capabilities.captured_at.iso());
    payload["cacheState"] = json!({
        "hit": capabilities.cached,
        "capturedAt": capabilities.captured_at.iso(),
        "ageSeconds": age_ms.max(0) / 1000,
        "ttlSeconds": CACHE_TTL.as_secs(),
    });
    payload["nextRecommendedAction"] = json!(match status.as_str() {
        "ok" => "submit_task",
        "partial" => "inspect_method_results",
        _ => "check_health",
    });
    payload
}

/// Handler of `codex_get_runtime_capabilities` (in the process that owns app-server).
pub async fn runtime_capabilities(app: &App, args: &Args) -> Result<Value, ToolError> {
    let request = request(app, args)?;
    let capabilities = app
        .engine()
        .runtime_capabilities(&request, args.bool("refresh"))
        .await
        .map_err(engine_error)?;
    Ok(render(capabilities))
}

/// In a client process: the answer from the stored snapshot when it is fresh and `refresh` is not set, so a
/// cache hit needs no worker. Bad arguments are refused here too.
pub async fn cached(app: &App, args: &Args) -> Result<Option<Value>, ToolError> {
    let request = request(app, args)?;
    if args.bool("refresh") {
        return Ok(None);
    }
    let hit = app
        .engine()
        .cached_capabilities(&request)
        .await
        .map_err(engine_error)?;
    Ok(hit.map(render))
}
