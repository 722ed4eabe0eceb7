//! `codex_get_diagnostic_logs`: this server's log lines and the journaled app-server frames, filtered, bounded
//! and redacted. Log lines come from the configured log file (`CODEX_CONTROL_PLANE_MCP_LOG`) or, without one,
//! from this process's ring of WARN+ lines, plus the background worker's log file; frames from the store's
//! journal. `include_payload` adds each frame's stored payload (secrets were masked before it was stored and
//! are masked again here; paths are kept: it is the raw-audit view).

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::agent_safe_text;
use crate::domain::rules::redact::redact_text;
use crate::logs::{ring, tail, LogLine, Origin, Severity};
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::store::diagnostics::DiagnosticScope;
use crate::store::events::EventFilter;
use crate::time::{iso8601_from_ms, now_ms};

/// Which log lines to return.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Lines older than this (unix ms) are left out.
    pub since_ms: i64,
    /// Lines below this severity are left out.
    pub min_severity: Option<Severity>,
    /// A line must mention at least one of these ids or `generation=N` tokens (none: every line).
    pub mentions: Vec<String>,
    /// A line must name this app-server generation (`generation=N`).
    pub process_generation: Option<i64>,
    /// At most this many lines, newest kept.
    pub limit: usize,
    /// Each line is cut to this many characters.
    pub max_line_chars: usize,
}

/// Where log lines were looked for, for the caller to judge what is missing.
fn sources(app: &App) -> Vec<(Origin, Option<std::path::PathBuf>)> {
    let own = match &app.config.log_path {
        Some(path) => (Origin::ServerLogFile, Some(path.clone())),
        None => (Origin::ThisProcess, None),
    };
    let worker = crate::store::liveness::sibling(&app.config.state_db_path, "worker.log");
    vec![own, (Origin::WorkerLogFile, Some(worker))]
}

/// The log lines `query` selects, newest first, redacted; plus one entry per source saying whether it was read.
pub fn log_lines(app: &App, query: &LogQuery) -> (Vec<Value>, Vec<Value>) {
    let mut lines: Vec<LogLine> = Vec::new();
    let mut read = Vec::new();
    for (origin, path) in sources(app) {
        let found = match &path {
            None => Ok(ring::snapshot()),
            Some(path) => tail::read_tail(path, origin),
        };
        match found {
            Ok(found) => {
                read.push(json!({"origin": origin.as_str(), "available": path.as_ref().is_none_or(|p| p.is_file()),
                                 "error": null}));
                lines.extend(found);
            }
            Err(error) => read.push(json!({"origin": origin.as_str(), "available": false,
                                           "error": agent_safe_text(&error.to_string())})),
        }
    }
    let generation = query.process_generation.map(|g| format!("generation={g}"));
    lines.retain(|line| {
        line.at_ms >= query.since_ms
            && query.min_severity.is_none_or(|min| line.severity >= min)
            && (query.mentions.is_empty()
                || query.mentions.iter().any(|id| mentions(&line.text, id)))
            && generation.as_ref().is_none_or(|g| mentions(&line.text, g))
    });
    lines.sort_by_key(|line| std::cmp::Reverse(line.at_ms));
    lines.truncate(query.limit);
    let rendered = lines
        .iter()
        .map(|line| render_line(line, query.max_line_chars))
        .collect();
    (rendered, read)
}

/// Whether `text` names `token` as a whole word: `generation=1` is not in `generation=12`.
fn mentions(text: &str, token: &str) -> bool {
    text.match_indices(token).any(|(idx, _)| {
        let next = text[idx + token.len()..].chars().next();
        next.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
    })
}

/// One line as the tools show it: redacted first, then cut, so a cut never exposes half a secret.
fn render_line(line: &LogLine, max_chars: usize) -> Value {
    let text = agent_safe_text(&line.text);
    let (text, truncated) = cut(text, max_chars);
    json!({
        "at": iso8601_from_ms(line.at_ms),
        "severity": line.severity.as_str(),
        "origin": line.origin.as_str(),
        "target": line.target,
        "message": text,
        "truncated": truncated,
    })
}

/// `text` cut to `max_chars` characters, and whether it was.
fn cut(mut text: String, max_chars: usize) -> (String, bool) {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => {
            text.truncate(idx);
            (text, true)
        }
        None => (text, false),
    }
}

/// Handler of `codex_get_diagnostic_logs`.
pub async fn diagnostic_logs(app: &App, args: &Args) -> Result<Value, ToolError> {
    let source = args.str("source").unwrap_or("all");
    let since_ms = now_ms() - args.int_or("since_minutes", 120) * 60_000;
    let limit = usize::try_from(args.int_or("limit", 100)).unwrap_or(100);
    let max_line_chars = usize::try_from(args.int_or("max_line_chars", 4000)).unwrap_or(4000);
    let include_payload = args.bool("include_payload");
    let workflow_id = args.string("workflow_id");
    let thread_id = args.string("thread_id");
    let turn_id = args.string("turn_id");
    let process_generation = args.int("process_generation");
    let min_severity =
        match args.str("severity") {
            Some(name) => Some(Severity::parse(name).ok_or_else(|| {
                ToolError::invalid_argument("severity", "is not a known severity")
            })?),
            None => None,
        };

    let (logs, log_sources) = if source == "app_server_events" {
        (Vec::new(), Vec::new())
    } else {
        let mentions = [&workflow_id, &thread_id, &turn_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        log_lines(
            app,
            &LogQuery {
                since_ms,
                min_severity,
                mentions,
                process_generation,
                limit,
                max_line_chars,
            },
        )
    };

    let events = if source == "mcp_log" {
        Vec::new()
    } else {
        // A workflow's frames are those of its thread.
        let threads = match (&thread_id, &workflow_id) {
            (Some(thread), _) => vec![Some(thread.clone())],
            (None, Some(workflow)) => workflow_threads(app, workflow).await?,
            (None, None) => vec![None],
        };
        let mut events = Vec::new();
        for thread in threads {
            let filter = EventFilter {
                thread_id: thread,
                turn_id: turn_id.clone(),
                owner_id: None,
                process_generation,
                since_ms: Some(since_ms),
            };
            events.extend(
                app.engine
                    .store
                    .list_app_server_events(filter, limit)
                    .await?,
            );
        }
        events.sort_by_key(|event| std::cmp::Reverse(event.event_id));
        events.truncate(limit);
        events
            .iter()
            .map(|event| {
                let mut out = json!({
                    "eventId": event.event_id,
                    "at": event.created_at.iso(),
                    "direction": event.direction,
                    "method": event.method,
                    "jsonrpcId": event.jsonrpc_id,
                    "processGeneration": event.process_generation,
                    "threadId": event.thread_id,
                    "turnId": event.turn_id,
                    "payloadTruncated": event.payload_truncated,
                });
                if include_payload {
                    let payload = event
                        .payload
                        .as_deref()
                        .map(|p| cut(redact_text(p).into_owned(), max_line_chars));
                    out["payload"] = json!(payload.as_ref().map(|(text, _)| text));
                    out["payloadCut"] = json!(payload.is_some_and(|(_, cut)| cut));
                }
                out
            })
            .collect()
    };

    Ok(json!({
        "source": source,
        "auditMode": if include_payload { "raw_audit" } else { "redacted" },
        "returnedLogCount": logs.len(),
        "returnedEventCount": events.len(),
        "logs": logs,
        "events": events,
        "logSources": log_sources,
        "sinceMinutes": args.int_or("since_minutes", 120),
        "limit": limit,
        "nextRecommendedAction": "codex_collect_diagnostics",
    }))
}

/// The thread of a workflow, as the store links it (none yet: no frames to show).
async fn workflow_threads(app: &App, workflow_id: &str) -> Result<Vec<Option<String>>, ToolError> {
    let scope = DiagnosticScope {
        workflow_id: Some(workflow_id.to_string()),
        event_limit: 1,
        ..Default::default()
    };
    match app.engine.store.diagnostic_correlation(scope).await? {
        Ok(found) => Ok(found
            .workflows
            .iter()
            .filter_map(|w| w.thread_id.clone())
            .map(Some)
            .collect()),
        Err(_) => Err(ToolError::invalid_argument(
            "workflow_id",
            "is not a known workflow",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_a_whole_token() {
        assert!(mentions(
            "app-server exited generation=1 turns=1",
            "generation=1"
        ));
        assert!(!mentions("app-server exited generation=12", "generation=1"));
        assert!(mentions("turn turn-7 lost", "turn-7"));
    }

    #[test]
    fn a_cut_line_says_so() {
        assert_eq!(cut("abcdef".into(), 3), ("abc".to_string(), true));
        assert_eq!(cut("abc".into(), 3), ("abc".to_string(), false));
        assert_eq!(cut("ééé".into(), 2), ("éé".to_string(), true));
    }

    #[test]
    fn a_rendered_line_is_redacted_before_it_is_cut() {
        let line = LogLine {
            at_ms: 0,
            severity: Severity::Warning,
            target: "t".into(),
            text: "spawn /opt/codex/bin/codex with key sk-abcdefghijklmnopqrstu".into(),
            origin: Origin::ThisProcess,
        };
        let shown = render_line(&line, 10_000);
        let message = shown["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("/opt/codex") && !message.contains("sk-abc"),
            "{message}"
        );
        assert_eq!(shown["severity"], json!("warning"));
        assert_eq!(shown["at"], json!("1970-01-01T00:00:00.000Z"));
    }
}
