//! `codex_search_chats`: full-text search (SQLite FTS5, bm25 ranking) over the mirrored chat history, one
//! result per chat. The index refresh before the search is bounded by `index_time_budget_seconds`; entries it
//! did not reach are found by the next search.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::catalog_reads::{chat_title, decode_cursor, encode_cursor, resolve_project};
use crate::app::App;
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::store::history::{match_expression, MatchMode, SearchHit};

/// Tokens FTS5 puts into a snippet per character asked for (words average about six characters).
const CHARS_PER_SNIPPET_TOKEN: usize = 6;

/// Handler of `codex_search_chats`.
pub async fn search_chats(app: &App, args: &Args) -> Result<Value, ToolError> {
    let query = args.required_str("query")?;
    let requested = args.str("match_mode").unwrap_or("auto");
    let project_id = match args.str("project_id") {
        Some(reference) => Some(resolve_project(app, reference).await?),
        None => None,
    };
    let include_archived = args.bool("include_archived");
    let scope =
        format!("search\u{1f}{query}\u{1f}{requested}\u{1f}{project_id:?}\u{1f}{include_archived}");
    let offset = decode_cursor(args, &scope)?;
    let limit = usize::try_from(args.int_or("limit", 10)).unwrap_or(10);
    let snippet_chars = usize::try_from(args.int_or("snippet_max_chars", 240)).unwrap_or(240);
    let snippets_per_chat = if args.bool("include_snippets") {
        usize::try_from(args.int_or("snippets_per_chat", 2)).unwrap_or(2)
    } else {
        0
    };
    let store = &app.engine().store;

    let refresh = if args.bool("refresh_index") {
        let budget = Duration::from_secs(args.int_or("index_time_budget_seconds", 8).max(1) as u64);
        Some(store.refresh_chat_history(budget).await?)
    } else {
        None
    };

    // `auto` asks for every term, and settles for any term when no chat has them all.
    let modes: &[MatchMode] = match requested {
        "all_terms" => &[MatchMode::AllTerms],
        "any_term" => &[MatchMode::AnyTerm],
        "phrase" => &[MatchMode::Phrase],
        _ => &[MatchMode::AllTerms, MatchMode::AnyTerm],
    };
    let tokens = (snippet_chars / CHARS_PER_SNIPPET_TOKEN).max(4);
    let mut hits: Vec<SearchHit> = Vec::new();
    let mut effective = modes[0];
    for &mode in modes {
        let expression = match_expression(query, mode)
            .ok_or_else(|| ToolError::invalid_argument("query", "has no word to search for"))?;
        effective = mode;
        hits = store
            .search_chat_history(expression, project_id.clone(), tokens)
            .await?;
        if !hits.is_empty() {
            break;
        }
    }

    // One result per chat, ranked by its best match; hits arrive best first.
    let mut order: Vec<String> = Vec::new();
    let mut per_chat: HashMap<String, Vec<SearchHit>> = HashMap::new();
    for hit in hits {
        if !per_chat.contains_key(&hit.thread_id) {
            order.push(hit.thread_id.clone());
        }
        per_chat.entry(hit.thread_id.clone()).or_default().push(hit);
    }
    let mut results = Vec::new();
    let mut skipped_archived = 0;
    for thread_id in order {
        let chat = store.chat(&thread_id).await?;
        if chat.as_ref().is_some_and(|c| c.archived) && !include_archived {
            skipped_archived += 1;
            continue;
        }
        let matches = per_chat.remove(&thread_id).unwrap_or_default();
        let best = &matches[0];
        let snippets: Vec<Value> = matches
            .iter()
            .take(snippets_per_chat)
            .map(|hit| {
                let (text, _) = super::operations::truncate(&hit.snippet, snippet_chars);
                json!({"text": text, "role": hit.role, "turnId": hit.turn_id, "createdAt": hit.created_at.iso()})
            })
            .collect();
        results.push(json!({
            "chatId": thread_id,
            "threadId": thread_id,
            "projectId": chat.as_ref().and_then(|c| c.project_id.clone()).or(best.project_id.clone()),
            "title": chat.as_ref().and_then(|c| chat_title(c, 160)),
            "status": chat.as_ref().and_then(|c| c.latest_turn.as_ref().map(|t| t.status.clone())),
            "archived": chat.as_ref().is_some_and(|c| c.archived),
            "lastActivityAt": chat.as_ref().map(|c| c.last_activity_at.iso()),
            // bm25: lower is better; negated so a higher score ranks first, as a reader expects.
            "score": -best.score,
            "matchCount": matches.len(),
            "bestTurnId": best.turn_id,
            "snippets": snippets,
        }));
    }
    let total = results.len();
    let page: Vec<Value> = results.into_iter().skip(offset).take(limit).collect();
    let next = offset + page.len();
    let stats = store.chat_index_stats().await?;
    let exhausted = refresh.is_some_and(|r| !r.complete);
    Ok(json!({
        "query": query,
        "matchMode": requested,
        "effectiveMatchMode": match effective {
            MatchMode::AllTerms => "all_terms",
            MatchMode::AnyTerm => "any_term",
            MatchMode::Phrase => "phrase",
        },
        "projectId": project_id,
        "results": page,
        "returnedCount": page.len(),
        "total_results": total,
        "archivedResultsHidden": skipped_archived,
        "next_cursor": (next < total).then(|| encode_cursor(next, &scope)),
        "index_status": {
            "source": "mcp_history",
            "engine": "sqlite_fts5",
            "refreshed": refresh.is_some(),
            "newlyIndexed": refresh.map_or(0, |r| r.added),
            "complete": refresh.is_none_or(|r| r.complete),
            "indexedEntries": stats.entries,
            "lastEntryAt": stats.last_entry_at.map(|at| at.iso()),
        },
        "timeBudgetExhausted": exhausted,
    }))
}
