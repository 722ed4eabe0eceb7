//! Tool handlers, one module per area; [`dispatch`] routes a validated call to its handler.

mod appserver;
mod health;

use serde_json::Value;

use super::args::Args;

use super::catalog::ToolSpec;
use super::error::{ErrorCode, ToolError};
use crate::app::App;

/// Runs the handler of `spec` with arguments already validated and completed with defaults.
pub async fn dispatch(
    app: &App,
    spec: &ToolSpec,
    args: Args,
) -> Result<Value, ToolError> {
    match spec.name {
        "codex_health_summary" => health::health_summary(app, &args).await,
        "codex_get_app_server_status" => appserver::status(app, &args).await,
        "codex_restart_app_server" => appserver::restart(app, &args).await,
        other => Err(ToolError::new(
            ErrorCode::Internal,
            format!("tool {other} is in the catalog but has no handler"),
        )),
    }
}
