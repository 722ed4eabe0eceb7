//! The seed's chat catalog reads: `codex_list_projects`, `codex_list_project_chats`, `codex_list_active_chats`
//! and `codex_get_chat_status`. They answer from SQLite (the project registry, the allowed roots and the chats
//! this server ran work on) and never start or ask app-server, so they serve the same in every process role.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::app::App;
use crate::config::normalize_path;
use crate::domain::rules::canonical::sha256_hex;
use crate::domain::rules::redact::redact_text;
use crate::domain::rules::status::{ACTIVE, STARTABLE};
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::projects::ProjectError;
use crate::store::chats::{Chat, MAX_CHATS};
use crate::time::now_ms;

/// Directories read per allowed root when listing projects.
const MAX_ROOT_ENTRIES: usize = 1_000;

/// `text` redacted, on one line, cut to `max_chars` characters (with `…` when cut).
pub(super) fn preview(text: &str, max_chars: usize) -> String {
    let redacted = redact_text(text);
    let flat: String = redacted.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((idx, _)) if flat[idx..].chars().count() > 1 => format!("{}…", &flat[..idx]),
        _ => flat,
    }
}

/// The seed's path redaction: `[redacted-path:<basename>:<hash10>]`.
fn redacted_path(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = sha256_hex(path.to_string_lossy().as_bytes());
    format!("[redacted-path:{name}:{}]", &hash[..10])
}

/// An opaque page cursor: the offset, bound to the listing it came from so it is not replayed elsewhere.
pub(super) fn encode_cursor(offset: usize, scope: &str) -> String {
    format!("c1.{offset}.{}", &sha256_hex(scope.as_bytes())[..12])
}

/// The offset a cursor of [`encode_cursor`] carries; `INVALID_ARGUMENT` for anything else.
pub(super) fn decode_cursor(args: &Args, scope: &str) -> Result<usize, ToolError> {
    let Some(cursor) = args.str("cursor") else {
        return Ok(0);
    };
    let bad = || ToolError::invalid_argument("cursor", "is not a cursor this listing returned");
    let mut parts = cursor.split('.');
    let (Some("c1"), Some(offset), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if tag != &sha256_hex(scope.as_bytes())[..12] {
        return Err(bad());
    }
    offset.parse().map_err(|_| bad())
}

/// Resolves a `project_id` argument (id, name or path; or a project id recorded on operations) to the id
/// operations carry.
pub(super) async fn resolve_project(app: &App, reference: &str) -> Result<String, ToolError> {
    match app.projects.resolve(reference) {
        Ok(project) => Ok(project.project_id),
        Err(ProjectError::NotFound { .. }) => {
            let known = app.engine().store.project_activity().await?;
            if known.iter().any(|p| p.project_id == reference) {
                return Ok(reference.to_string());
            }
            Err(ToolError::new(
                ErrorCode::ProjectNotFound,
                format!("project not found: {reference}"),
            )
            .with_detail("projectId", json!(reference)))
        }
        Err(ProjectError::OutsideAllowedRoots { .. }) => Err(ToolError::invalid_argument(
            "project_id",
            "is outside the allowed roots",
        )),
        Err(err @ ProjectError::BadRegistry { .. }) => Err(ToolError::new(
            ErrorCode::InternalStateReadError,
            err.to_string(),
        )),
    }
}

/// The chat `chat_id` names, in `project_id` when given; `CODEX_THREAD_NOT_FOUND` otherwise.
pub(super) async fn find_chat(app: &App, args: &Args) -> Result<Chat, ToolError> {
    let chat_id = args.required_str("chat_id")?;
    let project = match args.str("project_id") {
        Some(reference) => Some(resolve_project(app, reference).await?),
        None => None,
    };
    let not_found = || {
        ToolError::new(
            ErrorCode::ThreadNotFound,
            format!("no chat {chat_id} is known to this server"),
        )
        .with_detail("chatId", json!(chat_id))
    };
    let chat = app
        .engine()
        .store
        .chat(chat_id)
        .await?
        .ok_or_else(not_found)?;
    if project.is_some() && chat.project_id != project {
        return Err(not_found().with_detail("projectId", json!(project)));
    }
    Ok(chat)
}

/// A chat's status, how sure it is, and which row says so.
pub(super) fn chat_status(chat: &Chat) -> (String, &'static str, &'static str) {
    if chat.pending_kinds.iter().any(|k| k == "user_input") {
        return (
            "waiting_for_user_input".into(),
            "high",
            "pending_interaction",
        );
    }
    if !chat.pending_kinds.is_empty() {
        return ("waiting_for_approval".into(), "high", "pending_interaction");
    }
    // A startable operation speaks for the chat only until its turn exists: the operation row may still say
    // starting_turn while the turn already runs.
    if let Some(op) = &chat.latest_operation {
        let has_turn = chat
            .latest_turn
            .as_ref()
            .is_some_and(|t| t.operation_id.as_deref() == Some(op.operation_id.as_str()));
        if STARTABLE.contains(&op.status.as_str()) && !has_turn {
            return (op.status.clone(), "high", "operation");
        }
    }
    if let Some(turn) = &chat.latest_turn {
        let confidence = if turn.is_trusted_terminal() || ACTIVE.contains(&turn.status.as_str()) {
            "high"
        } else {
            "medium"
        };
        return (turn.status.clone(), confidence, "tracked_turn");
    }
    match &chat.latest_operation {
        Some(op) => (op.status.clone(), "medium", "operation"),
        None => ("unknown".into(), "low", "none"),
    }
}

/// The chat's title: the one it was started with, else its first prompt; redacted and cut.
pub(super) fn chat_title(chat: &Chat, max_chars: usize) -> Option<String> {
    chat.title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or(chat.first_prompt.as_deref())
        .map(|t| preview(t, max_chars))
}

fn max_chars(args: &Args, key: &str, fallback: i64) -> usize {
    usize::try_from(args.int_or(key, fallback)).unwrap_or(0)
}

/// Handler of `codex_list_projects`.
pub async fn list_projects(app: &App, args: &Args) -> Result<Value, ToolError> {
    struct Entry {
        name: String,
        root: Option<PathBuf>,
        source: &'static str,
    }
    let mut order: Vec<String> = Vec::new();
    let mut entries: HashMap<String, Entry> = HashMap::new();
    let mut add = |id: String, entry: Entry| {
        if let std::collections::hash_map::Entry::Vacant(slot) = entries.entry(id.clone()) {
            order.push(id);
            slot.insert(entry);
        }
    };
    let registry = app
        .projects
        .list()
        .map_err(|err| ToolError::new(ErrorCode::InternalStateReadError, err.to_string()))?;
    for project in registry {
        add(
            project.project_id,
            Entry {
                name: project.name,
                root: Some(project.root_path),
                source: "registry",
            },
        );
    }
    for root in &app.config.allowed_roots {
        let Ok(dir) = std::fs::read_dir(root) else {
            continue;
        };
        for item in dir.flatten().take(MAX_ROOT_ENTRIES) {
            let path = item.path();
            let hidden = item.file_name().to_string_lossy().starts_with('.');
            if hidden || !path.is_dir() {
                continue;
            }
            if let Ok(project) = app.projects.for_cwd(&path) {
                add(
                    project.project_id,
                    Entry {
                        name: project.name,
                        root: Some(project.root_path),
                        source: "allowed_root",
                    },
                );
            }
        }
    }
    let activity = app.engine().store.project_activity().await?;
    for project in &activity {
        let root = project.cwd.as_deref().map(PathBuf::from);
        let name = root
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| project.project_id.clone());
        add(
            project.project_id.clone(),
            Entry {
                name,
                root,
                source: "mcp_history",
            },
        );
    }
    let by_id: HashMap<&str, _> = activity
        .iter()
        .map(|p| (p.project_id.as_str(), p))
        .collect();
    let roots: Vec<PathBuf> = args
        .value("roots")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|r| normalize_path(Path::new(r)))
        .collect();
    let mut projects: Vec<(String, Entry)> = order
        .into_iter()
        .filter_map(|id| entries.remove(&id).map(|e| (id, e)))
        .filter(|(_, e)| {
            roots.is_empty()
                || e.root
                    .as_deref()
                    .is_some_and(|p| roots.iter().any(|r| p.starts_with(r)))
        })
        .collect();
    // Most recently active first; never-used projects after them, by name.
    projects.sort_by(|(a_id, a), (b_id, b)| {
        let at = |id: &str| by_id.get(id).map(|p| p.last_activity_at.ms());
        at(b_id).cmp(&at(a_id)).then_with(|| a.name.cmp(&b.name))
    });
    let total = projects.len();
    let limit = max_chars(args, "limit", 200);
    let compact = args
        .value("compact")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let private = args.bool("include_private_details");
    let listed: Vec<Value> = projects
        .iter()
        .take(limit)
        .map(|(id, entry)| {
            let activity = by_id.get(id.as_str());
            let mut item = json!({
                "projectId": id,
                "name": entry.name,
                "source": entry.source,
                "lastActivityAt": activity.map(|p| p.last_activity_at.iso()),
            });
            if !compact {
                item["rootPath"] = json!(entry.root.as_deref().map(|p| if private {
                    p.display().to_string()
                } else {
                    redacted_path(p)
                }));
                item["chatCount"] = json!(activity.map_or(0, |p| p.chat_count));
                item["operationCount"] = json!(activity.map_or(0, |p| p.operation_count));
            }
            item
        })
        .collect();
    Ok(json!({
        "projects": listed,
        "totalCount": total,
        "returnedCount": listed.len(),
        "truncated": total > listed.len(),
        "cacheState": {"cached": false, "refreshed": args.bool("refresh"),
                       "sources": ["registry", "allowed_roots", "mcp_history"]},
    }))
}

fn chat_brief(chat: &Chat, title_max: usize) -> Value {
    let (status, confidence, _) = chat_status(chat);
    json!({
        "chatId": chat.thread_id,
        "threadId": chat.thread_id,
        "projectId": chat.project_id,
        "title": chat_title(chat, title_max),
        "status": status,
        "statusConfidence": confidence,
        "archived": chat.archived,
        "turnCount": chat.turn_count,
        "latestTurnId": chat.latest_turn.as_ref().map(|t| t.turn_id.clone()),
        "createdAt": chat.created_at.iso(),
        "lastActivityAt": chat.last_activity_at.iso(),
    })
}

/// Handler of `codex_list_project_chats`.
pub async fn list_project_chats(app: &App, args: &Args) -> Result<Value, ToolError> {
    let project_id = resolve_project(app, args.required_str("project_id")?).await?;
    let include_archived = args.bool("include_archived");
    let scope = format!("project_chats\u{1f}{project_id}\u{1f}{include_archived}");
    let offset = decode_cursor(args, &scope)?;
    let limit = max_chars(args, "limit", 100);
    let title_max = max_chars(args, "title_max_chars", 160);
    let preview_max = max_chars(args, "preview_max_chars", 200);
    let chats: Vec<Chat> = app
        .engine()
        .store
        .list_chats(Some(project_id.clone()), MAX_CHATS)
        .await?
        .into_iter()
        .filter(|c| include_archived || !c.archived)
        .collect();
    let page: Vec<Value> = chats
        .iter()
        .skip(offset)
        .take(limit)
        .map(|chat| {
            let mut item = chat_brief(chat, title_max);
            if args.bool("include_preview") {
                item["preview"] = json!({
                    "lastUser": chat.last_prompt.as_deref().map(|t| preview(t, preview_max)),
                    "lastAssistant": chat.last_assistant_message.as_deref().map(|t| preview(t, preview_max)),
                });
            }
            item
        })
        .collect();
    let next = offset + page.len();
    Ok(json!({
        "projectId": project_id,
        "chats": page,
        "returnedCount": page.len(),
        "totalCount": chats.len(),
        "next_cursor": (next < chats.len()).then(|| encode_cursor(next, &scope)),
    }))
}

/// Handler of `codex_list_active_chats`.
pub async fn list_active_chats(app: &App, args: &Args) -> Result<Value, ToolError> {
    let project_id = match args.str("project_id") {
        Some(reference) => Some(resolve_project(app, reference).await?),
        None => None,
    };
    let window = args.int_or("active_window_minutes", 120);
    let since = now_ms() - window * 60_000;
    let title_max = max_chars(args, "title_max_chars", 160);
    let chats = app
        .engine()
        .store
        .list_chats(project_id.clone(), MAX_CHATS)
        .await?;
    let mut active = Vec::new();
    for chat in chats.iter().filter(|c| c.last_activity_at.ms() >= since) {
        let (status, confidence, source) = chat_status(chat);
        let wanted = match status.as_str() {
            "waiting_for_user_input" => args.bool("include_waiting_for_user"),
            "waiting_for_approval" => args.bool("include_waiting_for_approval"),
            s if ACTIVE.contains(&s) || STARTABLE.contains(&s) => args.bool("include_running"),
            _ => false,
        };
        if !wanted {
            continue;
        }
        let mut item = chat_brief(chat, title_max);
        item["statusConfidence"] = json!(confidence);
        item["turnId"] = json!(chat.latest_turn.as_ref().map(|t| t.turn_id.clone()));
        item["operationId"] = json!(chat
            .latest_operation
            .as_ref()
            .map(|o| o.operation_id.clone()));
        item["pendingInteractions"] = json!(chat.pending_kinds.len());
        if args.bool("include_evidence") {
            item["evidence"] = json!({
                "source": source,
                "turnStatus": chat.latest_turn.as_ref().map(|t| t.status.clone()),
                "turnUpdatedAt": chat.latest_turn.as_ref().map(|t| t.updated_at.iso()),
                "operationStatus": chat.latest_operation.as_ref().map(|o| o.status.clone()),
                "pendingInteractionKinds": chat.pending_kinds,
            });
        }
        active.push(item);
    }
    Ok(json!({
        "active_chats": active,
        "returnedCount": active.len(),
        "projectId": project_id,
        "activeWindowMinutes": window,
    }))
}

/// Handler of `codex_get_chat_status`.
pub async fn chat_status_tool(app: &App, args: &Args) -> Result<Value, ToolError> {
    let chat = find_chat(app, args).await?;
    let preview_max = max_chars(args, "preview_max_chars", 300);
    let (status, confidence, source) = chat_status(&chat);
    let latest_turn = chat.latest_turn.as_ref().map(|t| {
        json!({
            "turnId": t.turn_id,
            "status": t.status,
            "operationId": t.operation_id,
            "trustedTerminal": t.is_trusted_terminal(),
            "terminalSource": t.terminal_source,
            "startedAt": t.started_at.map(|at| at.iso()),
            "completedAt": t.completed_at.map(|at| at.iso()),
            "updatedAt": t.updated_at.iso(),
        })
    });
    let latest_operation = chat.latest_operation.as_ref().map(|o| {
        json!({"operationId": o.operation_id, "operationType": o.operation_type, "status": o.status,
               "updatedAt": o.updated_at.iso()})
    });
    let summary_cached = app
        .engine()
        .store
        .latest_summary(&chat.thread_id)
        .await?
        .is_some();
    Ok(json!({
        "chatId": chat.thread_id,
        "threadId": chat.thread_id,
        "projectId": chat.project_id,
        "status": status,
        "status_confidence": confidence,
        "statusSource": source,
        "latest_turn": latest_turn,
        "latestOperation": latest_operation,
        "last_user_preview": chat.last_prompt.as_deref().map(|t| preview(t, preview_max)),
        "last_assistant_preview": chat.last_assistant_message.as_deref().map(|t| preview(t, preview_max)),
        "titleSummary": chat_title(&chat, preview_max),
        "archived": chat.archived,
        "turnCount": chat.turn_count,
        "pendingInteractionKinds": chat.pending_kinds,
        "createdAt": chat.created_at.iso(),
        "lastActivityAt": chat.last_activity_at.iso(),
        "summary_cache_available": summary_cached,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn previews_are_redacted_flat_and_cut() {
        assert_eq!(preview("a\n  b", 10), "a b");
        assert_eq!(preview("abcdefghij", 5), "abcd…");
        assert_eq!(preview("abcde", 5), "abcde");
        assert!(!preview("key sk-abcdefghijklmnopqrstuvwx", 200).contains("sk-abc"));
    }

    #[test]
    fn cursors_round_trip_only_in_their_listing() {
        let cursor = encode_cursor(40, "a");
        let args = |c: &str| {
            let mut map = Map::new();
            map.insert("cursor".into(), json!(c));
            Args::from_map(map)
        };
        assert_eq!(decode_cursor(&args(&cursor), "a").ok(), Some(40));
        assert!(decode_cursor(&args(&cursor), "b").is_err());
        assert!(decode_cursor(&args("garbage"), "a").is_err());
        assert_eq!(
            decode_cursor(&Args::from_map(Map::new()), "a").ok(),
            Some(0)
        );
    }

    #[test]
    fn paths_are_redacted_the_seeds_way() {
        let text = redacted_path(Path::new("/home/u/project"));
        assert!(text.starts_with("[redacted-path:project:"), "{text}");
        assert_eq!(text.len(), "[redacted-path:project:]".len() + 10);
    }
}
