//! Tool handlers, one module per area; [`dispatch`] routes a validated call to its handler.

mod analyze;
mod appserver;
mod capabilities;
mod catalog_reads;
mod chat_content;
mod chat_summary;
mod chats;
mod checks;
mod contract;
mod diagnostics;
mod health;
mod interactions;
mod lifecycle;
mod logs;
mod operations;
pub mod plugin_views;
mod preflight;
mod queue;
mod repair;
mod reviews;
mod search;
mod wait;
mod worker_commands;
mod workflows;

use serde_json::Value;

use super::args::Args;

use super::call::CallContext;
use super::catalog::ToolSpec;
use super::error::{ErrorCode, ToolError};
use crate::app::App;

pub use wait::MAX_WAIT_SECONDS;

/// Runs the handler of `spec` with arguments already validated and completed with defaults. In a process that
/// leaves dispatching to the background worker, a tool that needs app-server becomes a worker command. A
/// `wait_seconds` the call carries is served here, after the handler, and never reaches it.
pub async fn dispatch(
    app: &App,
    spec: &ToolSpec,
    args: Args,
    ctx: &CallContext,
) -> Result<Value, ToolError> {
    match spec.name {
        "codex_wait" => return wait::wait(app, &args, ctx).await,
        "codex_start_chat" => return chats::start_chat(app, &args, ctx).await,
        "codex_send_message" => return chats::send_message(app, &args, ctx).await,
        // Its live probe submits a turn and waits for it, which needs the caller's context.
        "codex_preflight_project_run" => return preflight::preflight(app, &args, ctx).await,
        _ => {}
    }
    let bound = wait::requested(&args);
    let args = args.without("wait_seconds");
    let result = route(app, spec, args).await?;
    match bound {
        Some(bound) => wait::inline_status(app, spec.name, result, bound, ctx).await,
        None => Ok(result),
    }
}

async fn route(app: &App, spec: &ToolSpec, args: Args) -> Result<Value, ToolError> {
    if let Some(link) = app.delegates_to_worker() {
        // A fresh stored snapshot answers here: only a new one needs the worker's app-server.
        if spec.name == "codex_get_runtime_capabilities" {
            if let Some(hit) = capabilities::cached(app, &args).await? {
                return Ok(hit);
            }
        }
        if let Some(command_type) = worker_commands::command_type(spec.name, &args, link) {
            return worker_commands::forward(app, link, command_type, spec.name, &args).await;
        }
        let result = run_here(app, spec.name, args).await;
        if worker_commands::needs_worker(spec.name) && result.is_ok() {
            link.ensure_worker().await;
        }
        return result;
    }
    run_here(app, spec.name, args).await
}

/// Runs a tool's handler in this process (the worker runs forwarded commands through this too).
pub async fn run_here(app: &App, tool: &str, args: Args) -> Result<Value, ToolError> {
    match tool {
        "codex_health_summary" => health::health_summary(app, &args).await,
        "codex_get_agent_contract" => contract::agent_contract(app, &args).await,
        "codex_get_app_server_status" => appserver::status(app, &args).await,
        "codex_get_runtime_capabilities" => capabilities::runtime_capabilities(app, &args).await,
        "codex_restart_app_server" => appserver::restart(app, &args).await,
        "codex_submit_task" => operations::submit(app, &args).await,
        "codex_get_operation_status" => operations::status(app, &args).await,
        "codex_get_turn_status" => operations::turn_status(app, &args).await,
        "codex_interrupt_turn" => operations::interrupt(app, &args).await,
        "codex_list_pending_interactions" => interactions::list(app, &args).await,
        "codex_answer_pending_interaction" => interactions::answer(app, &args).await,
        "codex_get_queue_status" => queue::queue_status(app, &args).await,
        "codex_get_concurrency_status" => queue::concurrency_status(app, &args).await,
        "codex_get_worker_status" => queue::worker_status(app, &args).await,
        "codex_get_worker_command_status" => worker_commands::status(app, &args).await,
        "codex_start_plan_workflow" => workflows::start_plan(app, &args).await,
        "codex_get_workflow_status" => workflows::status(app, &args).await,
        "codex_approve_plan" => workflows::approve(app, &args).await,
        "codex_adopt_workflow_plan" => workflows::adopt(app, &args).await,
        "codex_start_review_workflow" => reviews::start_review(app, &args).await,
        "codex_execute_plan" => workflows::execute_plan(app, &args).await,
        "codex_archive_thread" => lifecycle::archive(app, &args).await,
        "codex_unarchive_thread" => lifecycle::unarchive(app, &args).await,
        "codex_start_thread_compaction" => lifecycle::start_compaction(app, &args).await,
        "codex_get_thread_compaction_status" => lifecycle::compaction_status(app, &args).await,
        "codex_list_projects" => catalog_reads::list_projects(app, &args).await,
        "codex_list_project_chats" => catalog_reads::list_project_chats(app, &args).await,
        "codex_list_active_chats" => catalog_reads::list_active_chats(app, &args).await,
        "codex_get_chat_status" => catalog_reads::chat_status_tool(app, &args).await,
        "codex_get_chat" => chat_content::get_chat(app, &args).await,
        "codex_search_chats" => search::search_chats(app, &args).await,
        "codex_collect_diagnostics" => diagnostics::collect_diagnostics(app, &args).await,
        "codex_get_diagnostic_logs" => logs::diagnostic_logs(app, &args).await,
        "codex_analyze_issue" => analyze::analyze_issue(app, &args).await,
        "codex_repair_issue" => repair::repair_issue(app, &args).await,
        other => Err(ToolError::new(
            ErrorCode::Internal,
            format!("tool {other} is in the catalog but has no handler"),
        )),
    }
}
