//! `history_summary` and `summaryState` of `codex_get_chat`: the engine's chat summary
//! (`engine::summaries`) in the seed's shape. A failed summary fails the call (`CODEX_SUMMARY_FAILED`,
//! retryable) only when `summarizer.required` is set; otherwise the chat is returned with `summaryState.status`
//! `failed` and its reason.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::redact::redact_text;
use crate::engine::summaries::{chat_summary, SummaryOutcome};
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::history::HistoryEntry;
use crate::store::summaries::StoredSummary;

/// `(history_summary, summaryState)` for the chat `thread_id` whose history is `entries`.
pub(super) async fn summary_fields(
    app: &App,
    args: &Args,
    thread_id: &str,
    entries: &[HistoryEntry],
) -> Result<(Value, Value), ToolError> {
    let config = &app.config.summarizer;
    let force = args.bool("force_refresh_summary");
    let outcome = match chat_summary(&app.engine().store, config, thread_id, entries, force).await {
        Ok(outcome) => outcome,
        // The summary cache is part of the summary: when it cannot be read or written, the summary failed, and
        // only a required summary fails the call.
        Err(err) => SummaryOutcome::Failed {
            reason: "store_error".into(),
            message: crate::domain::rules::agent_safe::agent_safe_text(&err.to_string()),
        },
    };
    Ok(match outcome {
        SummaryOutcome::Disabled => (
            Value::Null,
            json!({
                "status": "disabled",
                "reason": "the remote summarizer is off (summarizer.enabled, DEEPSEEK_SUMMARY_ENABLED)",
            }),
        ),
        SummaryOutcome::Skipped(reason) => {
            (Value::Null, json!({"status": "skipped", "reason": reason}))
        }
        SummaryOutcome::Cached(summary) => (
            summary_json(&summary, true),
            json!({"status": "cached", "createdAt": summary.created_at.iso()}),
        ),
        SummaryOutcome::Fresh(summary) => (
            summary_json(&summary, false),
            json!({"status": "fresh", "createdAt": summary.created_at.iso()}),
        ),
        SummaryOutcome::Failed { reason, message } if config.required => {
            return Err(ToolError::new(
                ErrorCode::SummaryFailed,
                format!("the chat summary failed: {message}"),
            )
            .with_detail("chatId", json!(thread_id))
            .with_detail("reason", json!(reason)))
        }
        SummaryOutcome::Failed { reason, message } => (
            Value::Null,
            json!({"status": "failed", "reason": reason, "message": message}),
        ),
    })
}

/// The seed's `history_summary` fields for a summary we have.
fn summary_json(summary: &StoredSummary, cache_hit: bool) -> Value {
    json!({
        "mode": "before_latest_user",
        "provider": "openai_compatible",
        "model": summary.model,
        "status": "ok",
        "text": redact_text(&summary.text),
        "messages_summarized": summary.messages_summarized,
        "messages_omitted_due_to_limit": summary.messages_omitted,
        "chunks": summary.chunks,
        "cache_hit": cache_hit,
        "rolling_summary_used": summary.rolling,
        "created_at": summary.created_at.iso(),
    })
}
