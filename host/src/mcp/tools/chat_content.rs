//! `codex_get_chat`: bounded chat content from the mirrored history (`store::history`): the seed's ranges,
//! tails and response budget, in its three formats. The mirror holds the prompts and assistant messages of the
//! turns this server ran; tool calls, command output and reasoning are not mirrored, and a request for them
//! says so in `notMirrored`. `history_summary` comes from the optional remote summarizer (`chat_summary`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::catalog_reads::{chat_title, find_chat};
use super::chat_summary::summary_fields;
use crate::app::App;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::history::HistoryEntry;
use crate::time::parse_iso8601_ms;

/// Entries of one chat read at most (the newest).
const MAX_ENTRIES: usize = 20_000;

/// Time a read may spend mirroring entries not yet in the history.
const REFRESH_BUDGET: Duration = Duration::from_millis(500);

/// Characters counted as one token by `token_budget` (the usual rough estimate).
const CHARS_PER_TOKEN: usize = 4;

/// The `range` argument with the seed's defaults.
struct Range {
    mode: String,
    limit: usize,
    from: Option<String>,
    to: Option<String>,
    token_budget: usize,
}

impl Range {
    fn from_args(args: &Args) -> Range {
        let range = args
            .value("range")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let text = |key: &str| range.get(key).and_then(Value::as_str).map(str::to_string);
        let int = |key: &str, fallback: u64| {
            range.get(key).and_then(Value::as_u64).unwrap_or(fallback) as usize
        };
        Range {
            mode: text("mode").unwrap_or_else(|| "last_messages".into()),
            limit: int("limit", 50),
            from: text("from"),
            to: text("to"),
            token_budget: int("token_budget", 12_000),
        }
    }
}

fn bad_range(field: &str, message: &str) -> ToolError {
    ToolError::invalid_argument(&format!("range.{field}"), message)
}

/// Positions (0-based) of the entries `range` selects, in order.
fn select(entries: &[HistoryEntry], range: &Range) -> Result<Vec<usize>, ToolError> {
    let all: Vec<usize> = (0..entries.len()).collect();
    let tail = |n: usize| all[all.len().saturating_sub(n)..].to_vec();
    Ok(match range.mode.as_str() {
        "all" => all,
        "last_messages" => tail(range.limit),
        "last_turns" => {
            let mut turns: Vec<&str> = Vec::new();
            for entry in entries.iter().rev() {
                if !turns.contains(&entry.turn_id.as_str()) {
                    if turns.len() == range.limit {
                        break;
                    }
                    turns.push(&entry.turn_id);
                }
            }
            all.into_iter()
                .filter(|&i| turns.contains(&entries[i].turn_id.as_str()))
                .collect()
        }
        "time_range" => {
            let bound = |field: &str, value: &Option<String>| -> Result<Option<i64>, ToolError> {
                value
                    .as_deref()
                    .map(|v| {
                        parse_iso8601_ms(v)
                            .ok_or_else(|| bad_range(field, "is not an ISO-8601 time"))
                    })
                    .transpose()
            };
            let (from, to) = (bound("from", &range.from)?, bound("to", &range.to)?);
            if from.is_none() && to.is_none() {
                return Err(bad_range("from", "time_range needs from or to"));
            }
            all.into_iter()
                .filter(|&i| {
                    let at = entries[i].created_at.ms();
                    from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t)
                })
                .collect()
        }
        "line_range" => {
            let line = |field: &str, value: &Option<String>, fallback: usize| match value {
                None => Ok(fallback),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad_range(field, "is not a message number (1-based)")),
            };
            let from = line("from", &range.from, 1)?;
            let to = line("to", &range.to, entries.len())?;
            if from > to {
                return Err(bad_range("from", "is after range.to"));
            }
            all.into_iter()
                .filter(|&i| i + 1 >= from && i < to)
                .collect()
        }
        "token_budget" => {
            let budget = range.token_budget * CHARS_PER_TOKEN;
            let mut used = 0;
            let mut kept = Vec::new();
            for &i in all.iter().rev() {
                used += entries[i].text.chars().count();
                if used > budget && !kept.is_empty() {
                    break;
                }
                kept.push(i);
            }
            kept.reverse();
            kept
        }
        other => return Err(bad_range("mode", &format!("unknown mode {other}"))),
    })
}

/// One message as returned: index (1-based position in the chat), the text (possibly cut), metadata.
struct Message<'a> {
    index: usize,
    entry: &'a HistoryEntry,
    text: String,
    truncated: bool,
}

fn cut_start(text: &str, max_chars: usize) -> (String, bool) {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => (text[..idx].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// Keeps the newest messages within `max_messages` and `max_chars`; the oldest kept one may be cut.
fn tail<'a>(
    entries: &'a [HistoryEntry],
    picked: &[usize],
    max_messages: usize,
    max_chars: usize,
) -> Vec<Message<'a>> {
    let mut kept = Vec::new();
    let mut used = 0;
    for &i in picked.iter().rev().take(max_messages) {
        let entry = &entries[i];
        let len = entry.text.chars().count();
        if used + len > max_chars {
            let room = max_chars - used;
            if kept.is_empty() || room >= 200 {
                let (text, truncated) = cut_start(&entry.text, room);
                kept.push(Message {
                    index: i + 1,
                    entry,
                    text,
                    truncated,
                });
            }
            break;
        }
        used += len;
        kept.push(Message {
            index: i + 1,
            entry,
            text: entry.text.clone(),
            truncated: false,
        });
    }
    kept.reverse();
    kept
}

fn structured(messages: &[Message<'_>], metadata: bool) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut item = json!({"index": m.index, "role": m.entry.role, "text": m.text, "truncated": m.truncated});
            if metadata {
                item["kind"] = json!(m.entry.kind);
                item["turnId"] = json!(m.entry.turn_id);
                item["operationId"] = json!(m.entry.operation_id);
                item["createdAt"] = json!(m.entry.created_at.iso());
            }
            item
        })
        .collect()
}

fn markdown(messages: &[Message<'_>], metadata: bool) -> String {
    let mut out = String::new();
    for m in messages {
        let heading = if m.entry.role == "user" {
            "User"
        } else {
            "Assistant"
        };
        out.push_str(&format!("### {heading} ({})", m.index));
        if metadata {
            out.push_str(&format!(
                " · {} · {}",
                m.entry.kind,
                m.entry.created_at.iso()
            ));
        }
        out.push_str("\n\n");
        out.push_str(&m.text);
        out.push_str(if m.truncated { " …\n\n" } else { "\n\n" });
    }
    out
}

fn compact(messages: &[Message<'_>]) -> String {
    messages
        .iter()
        .map(|m| {
            format!(
                "[{}] {}: {}",
                m.index,
                m.entry.role,
                m.text.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text inside `<proposed_plan>…</proposed_plan>` of a final answer.
fn proposed_plan(text: &str) -> Option<&str> {
    let start = text.find("<proposed_plan>")? + "<proposed_plan>".len();
    let end = text[start..].find("</proposed_plan>")? + start;
    Some(text[start..end].trim())
}

/// Handler of `codex_get_chat`.
pub async fn get_chat(app: &App, args: &Args) -> Result<Value, ToolError> {
    let chat = find_chat(app, args).await?;
    let store = &app.engine().store;
    let refresh = store.refresh_chat_history(REFRESH_BUDGET).await?;
    let entries = store.chat_entries(&chat.thread_id, MAX_ENTRIES).await?;
    if entries.is_empty() {
        return Err(ToolError::new(
            ErrorCode::TranscriptNotFound,
            format!("chat {} has no recorded messages yet", chat.thread_id),
        )
        .with_detail("chatId", json!(chat.thread_id)));
    }
    let range = Range::from_args(args);
    let picked = select(&entries, &range)?;
    let tail_messages = args.int_or("tail_max_messages", 80).max(1) as usize;
    let tail_chars = args.int_or("tail_max_chars", 30_000).max(1) as usize;
    let (history_summary, summary_state) =
        summary_fields(app, args, &chat.thread_id, &entries).await?;
    // The summary is part of the answer: the messages get what the budget leaves (as in the seed).
    let summary_chars = history_summary["text"].as_str().map_or(0, str::len);
    let budget = (args.int_or("response_budget_chars", 50_000).max(1) as usize)
        .saturating_sub(summary_chars)
        .max(1_000);
    let metadata = args
        .value("include_metadata")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let format = args.str("format").unwrap_or("structured").to_string();
    let mut messages = tail(&entries, &picked, tail_messages, tail_chars);
    let by_tail = messages.len() < picked.len() || messages.iter().any(|m| m.truncated);
    // The response budget drops the oldest messages first, then cuts the one left.
    let render = |messages: &[Message<'_>]| -> Value {
        match format.as_str() {
            "markdown" => json!(markdown(messages, metadata)),
            "compact" => json!(compact(messages)),
            _ => json!(structured(messages, metadata)),
        }
    };
    let mut rendered = render(&messages);
    let mut by_budget = false;
    while rendered.to_string().len() > budget && !messages.is_empty() {
        by_budget = true;
        if messages.len() > 1 {
            messages.remove(0);
        } else {
            let keep =
                messages[0].text.chars().count() * budget / rendered.to_string().len().max(1);
            let (text, _) = cut_start(&messages[0].text, keep.saturating_sub(64));
            messages[0].text = text;
            messages[0].truncated = true;
            rendered = render(&messages);
            break;
        }
        rendered = render(&messages);
    }
    let plans: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "final_answer")
        .filter_map(|e| {
            proposed_plan(&e.text).map(
                |plan| json!({"turnId": e.turn_id, "plan": plan, "createdAt": e.created_at.iso()}),
            )
        })
        .collect();
    let requested_absent: Vec<&str> = [
        ("include_tool_calls", "tool_calls"),
        ("include_tool_outputs", "tool_outputs"),
        ("include_command_outputs", "command_outputs"),
        ("include_reasoning", "reasoning"),
        ("include_items", "items"),
    ]
    .into_iter()
    .filter(|(key, _)| args.bool(key))
    .map(|(_, name)| name)
    .collect();
    let first = messages.first().map(|m| m.index);
    let last = messages.last().map(|m| m.index);
    let mut out = Map::new();
    out.insert("chatId".into(), json!(chat.thread_id));
    out.insert("threadId".into(), json!(chat.thread_id));
    out.insert("projectId".into(), json!(chat.project_id));
    out.insert("title".into(), json!(chat_title(&chat, 160)));
    out.insert("format".into(), json!(format));
    match format.as_str() {
        "markdown" => {
            out.insert("messages".into(), json!([]));
            out.insert("markdown".into(), rendered);
        }
        "compact" => {
            out.insert("messages".into(), json!([]));
            out.insert("compact".into(), rendered);
        }
        _ => {
            out.insert("messages".into(), rendered);
        }
    }
    out.insert("history_summary".into(), history_summary);
    out.insert("summaryState".into(), summary_state);
    out.insert(
        "latestPlan".into(),
        plans.last().cloned().unwrap_or(Value::Null),
    );
    out.insert("plans".into(), json!(plans));
    out.insert(
        "pagination".into(),
        json!({
            "mode": range.mode,
            "totalMessages": entries.len(),
            "selectedMessages": picked.len(),
            "returnedMessages": messages.len(),
            "firstIndex": first,
            "lastIndex": last,
            "hasMoreBefore": first.is_some_and(|i| i > 1),
            "hasMoreAfter": last.is_some_and(|i| i < entries.len()),
            "truncatedByTail": by_tail,
            "truncatedByBudget": by_budget,
        }),
    );
    out.insert("source".into(), json!("mcp_history"));
    out.insert("notMirrored".into(), json!(requested_absent));
    out.insert("indexComplete".into(), json!(refresh.complete));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Timestamp;

    fn entries(texts: &[(&str, &str)]) -> Vec<HistoryEntry> {
        texts
            .iter()
            .enumerate()
            .map(|(i, (turn, text))| HistoryEntry {
                entry_id: i as i64,
                thread_id: "th".into(),
                turn_id: turn.to_string(),
                operation_id: None,
                project_id: None,
                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                kind: "final_answer".into(),
                text: text.to_string(),
                created_at: Timestamp(1_000 * i as i64),
            })
            .collect()
    }

    fn range(mode: &str, limit: usize, from: Option<&str>, to: Option<&str>) -> Range {
        Range {
            mode: mode.into(),
            limit,
            from: from.map(Into::into),
            to: to.map(Into::into),
            token_budget: 1000,
        }
    }

    #[test]
    fn ranges_select_the_seeds_windows() {
        let e = entries(&[
            ("t1", "a"),
            ("t1", "b"),
            ("t2", "c"),
            ("t2", "d"),
            ("t3", "e"),
        ]);
        let pick = |r: Range| select(&e, &r).expect("range");
        assert_eq!(pick(range("all", 1, None, None)), [0, 1, 2, 3, 4]);
        assert_eq!(pick(range("last_messages", 2, None, None)), [3, 4]);
        assert_eq!(pick(range("last_turns", 2, None, None)), [2, 3, 4]);
        assert_eq!(pick(range("line_range", 1, Some("2"), Some("3"))), [1, 2]);
        assert_eq!(
            pick(range(
                "time_range",
                1,
                Some("1970-01-01T00:00:01Z"),
                Some("1970-01-01T00:00:02Z")
            )),
            [1, 2]
        );
        assert!(select(&e, &range("line_range", 1, Some("x"), None)).is_err());
        assert!(select(&e, &range("time_range", 1, None, None)).is_err());
        assert!(select(&e, &range("time_range", 1, Some("soon"), None)).is_err());
    }

    #[test]
    fn tails_keep_the_newest_within_both_bounds() {
        let long = "x".repeat(500);
        let e = entries(&[("t1", "first"), ("t1", &long), ("t2", "last")]);
        let kept = tail(&e, &[0, 1, 2], 2, 10_000);
        assert_eq!(kept.iter().map(|m| m.index).collect::<Vec<_>>(), [2, 3]);
        let kept = tail(&e, &[0, 1, 2], 10, 300);
        assert_eq!(kept.iter().map(|m| m.index).collect::<Vec<_>>(), [2, 3]);
        assert!(kept[0].truncated && kept[0].text.len() == 296);
        assert_eq!(
            proposed_plan("x <proposed_plan> do it </proposed_plan>"),
            Some("do it")
        );
    }
}
