//! The chat read model: a chat is an app-server thread this server ran work on, seen through the rows that
//! already describe it (operations, tracked turns, pending interactions, lifecycle actions). Nothing here is
//! stored twice; every field is derived at read time from one snapshot.

use rusqlite::{params, Connection, OptionalExtension};

use super::turns::{self, Turn};
use super::{Store, StoreError, Timestamp};

/// Chats read per listing at most; a listing is bounded and paginated above this.
pub const MAX_CHATS: usize = 5_000;

/// The newest operation on a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOperation {
    /// Its id.
    pub operation_id: String,
    /// start_chat, send_message, ...
    pub operation_type: String,
    /// Its status.
    pub status: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    /// The app-server thread id (the seed's chat id).
    pub thread_id: String,
    /// The project of the operation that started it.
    pub project_id: Option<String>,
    /// Its working directory.
    pub cwd: Option<String>,
    /// The title the chat was started with.
    pub title: Option<String>,
    /// The first prompt sent on it.
    pub first_prompt: Option<String>,
    /// The latest prompt sent on it.
    pub last_prompt: Option<String>,
    /// The latest assistant message of any turn.
    pub last_assistant_message: Option<String>,
    /// The newest turn.
    pub latest_turn: Option<Turn>,
    /// The newest operation.
    pub latest_operation: Option<ChatOperation>,
    /// Turns tracked on it.
    pub turn_count: i64,
    /// Pending interactions by kind (`approval`, `permissions`, `user_input`, `elicitation`).
    pub pending_kinds: Vec<String>,
    /// Archived by the latest completed archive/unarchive action.
    pub archived: bool,
    /// First seen.
    pub created_at: Timestamp,
    /// Latest change of any of its rows.
    pub last_activity_at: Timestamp,
}

/// Activity of one project, from its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectActivity {
    /// The project id operations were submitted with.
    pub project_id: String,
    /// The newest operation's working directory.
    pub cwd: Option<String>,
    /// Distinct threads.
    pub chat_count: i64,
    /// Operations.
    pub operation_count: i64,
    /// Newest change.
    pub last_activity_at: Timestamp,
}

/// Project, cwd, title and prompt of a chat's first operation.
type FirstOperation = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Thread ids with their first and last activity, newest first, optionally of one project.
fn thread_ids(
    conn: &Connection,
    project_id: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let ids = conn
        .prepare_cached(
            "SELECT thread_id FROM ( \
               SELECT thread_id, updated_at FROM tracked_turns \
               UNION ALL SELECT thread_id, updated_at FROM codex_operations WHERE thread_id IS NOT NULL) \
             WHERE ?1 IS NULL OR thread_id IN \
               (SELECT thread_id FROM codex_operations WHERE project_id = ?1 AND thread_id IS NOT NULL) \
             GROUP BY thread_id ORDER BY MAX(updated_at) DESC, thread_id LIMIT ?2",
        )?
        .query_map(params![project_id, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// One chat, or `None` when no row names the thread.
pub fn chat(conn: &Connection, thread_id: &str) -> Result<Option<Chat>, StoreError> {
    let span: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT MIN(created_at), MAX(updated_at), SUM(turns) FROM ( \
               SELECT created_at, updated_at, 1 AS turns FROM tracked_turns WHERE thread_id = ?1 \
               UNION ALL SELECT created_at, updated_at, 0 FROM codex_operations WHERE thread_id = ?1) \
             HAVING COUNT(*) > 0",
        )?
        .query_row([thread_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((created_at, last_activity_at, turn_count)) = span else {
        return Ok(None);
    };
    let first: Option<FirstOperation> = conn
        .prepare_cached(
            "SELECT project_id, cwd, json_extract(request_json, '$.title'), json_extract(request_json, '$.message') \
             FROM codex_operations WHERE thread_id = ?1 ORDER BY created_at, rowid LIMIT 1",
        )?
        .query_row([thread_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let (project_id, cwd, title, first_prompt) = first.unwrap_or_default();
    let last_prompt: Option<String> = conn
        .prepare_cached(
            "SELECT json_extract(request_json, '$.message') FROM codex_operations \
             WHERE thread_id = ?1 AND json_type(request_json, '$.message') = 'text' \
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([thread_id], |r| r.get(0))
        .optional()?;
    let latest_operation = conn
        .prepare_cached(
            "SELECT operation_id, operation_type, status, updated_at FROM codex_operations \
             WHERE thread_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([thread_id], |r| {
            Ok(ChatOperation {
                operation_id: r.get(0)?,
                operation_type: r.get(1)?,
                status: r.get(2)?,
                updated_at: Timestamp(r.get(3)?),
            })
        })
        .optional()?;
    let latest_turn_id: Option<String> = conn
        .prepare_cached(
            "SELECT turn_id FROM tracked_turns WHERE thread_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([thread_id], |r| r.get(0))
        .optional()?;
    let latest_turn = match latest_turn_id {
        Some(id) => turns::get(conn, &id)?,
        None => None,
    };
    let last_assistant_message: Option<String> = conn
        .prepare_cached(
            "SELECT last_assistant_message FROM tracked_turns \
             WHERE thread_id = ?1 AND last_assistant_message IS NOT NULL \
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([thread_id], |r| r.get(0))
        .optional()?;
    let pending_kinds = conn
        .prepare_cached(
            "SELECT kind FROM pending_interactions WHERE thread_id = ?1 AND status = 'pending' ORDER BY created_at",
        )?
        .query_map([thread_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let archived = conn
        .prepare_cached(
            "SELECT action_type = 'archive' FROM codex_thread_lifecycle_actions \
             WHERE thread_id = ?1 AND action_type IN ('archive', 'unarchive') AND status = 'completed' \
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row([thread_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    Ok(Some(Chat {
        thread_id: thread_id.to_string(),
        project_id,
        cwd,
        title,
        first_prompt,
        last_prompt,
        last_assistant_message,
        latest_turn,
        latest_operation,
        turn_count,
        pending_kinds,
        archived,
        created_at: Timestamp(created_at),
        last_activity_at: Timestamp(last_activity_at),
    }))
}

/// Chats newest first, optionally of one project, at most `limit` (capped at [`MAX_CHATS`]).
pub fn list(
    conn: &Connection,
    project_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Chat>, StoreError> {
    let mut chats = Vec::new();
    for id in thread_ids(conn, project_id, limit.min(MAX_CHATS))? {
        if let Some(chat) = chat(conn, &id)? {
            chats.push(chat);
        }
    }
    Ok(chats)
}

/// Every project operations were submitted for, newest activity first.
pub fn project_activity(conn: &Connection) -> Result<Vec<ProjectActivity>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT project_id, \
                    (SELECT cwd FROM codex_operations c WHERE c.project_id = o.project_id \
                     ORDER BY c.created_at DESC LIMIT 1), \
                    COUNT(DISTINCT thread_id), COUNT(*), MAX(updated_at) \
             FROM codex_operations o WHERE project_id IS NOT NULL \
             GROUP BY project_id ORDER BY MAX(updated_at) DESC",
        )?
        .query_map([], |r| {
            Ok(ProjectActivity {
                project_id: r.get(0)?,
                cwd: r.get(1)?,
                chat_count: r.get(2)?,
                operation_count: r.get(3)?,
                last_activity_at: Timestamp(r.get(4)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

impl Store {
    /// See [`chat`].
    pub async fn chat(&self, thread_id: &str) -> Result<Option<Chat>, StoreError> {
        let thread_id = thread_id.to_string();
        self.read(move |conn| chat(conn, &thread_id)).await
    }

    /// See [`list`].
    pub async fn list_chats(
        &self,
        project_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Chat>, StoreError> {
        self.read(move |conn| list(conn, project_id.as_deref(), limit))
            .await
    }

    /// See [`project_activity`].
    pub async fn project_activity(&self) -> Result<Vec<ProjectActivity>, StoreError> {
        self.read(project_activity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn a_chat_is_derived_from_its_operations_and_turns() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| {
                for (op, turn, at, request) in [
                    ("op_1", "tu_1", 10, r#"{"message": "first", "title": "Hello"}"#),
                    ("op_2", "tu_2", 20, r#"{"message": "second"}"#),
                ] {
                    tx.execute(
                        "INSERT INTO codex_operations (operation_id, client_request_id, operation_type, status, \
                         project_id, cwd, thread_id, turn_id, has_message, request_json, request_fingerprint, \
                         next_attempt_at, created_at, updated_at) \
                         VALUES (?1, ?1, 'send_message', 'completed', 'p1', '/w', 'th', ?2, 1, ?3, 'f', 0, ?4, ?4)",
                        params![op, turn, request, at],
                    )?;
                    tx.execute(
                        "INSERT INTO tracked_turns (turn_id, thread_id, operation_id, status, last_assistant_message, \
                         created_at, updated_at) VALUES (?1, 'th', ?2, 'completed', ?3, ?4, ?4)",
                        params![turn, op, format!("answer {op}"), at],
                    )?;
                }
                tx.execute(
                    "INSERT INTO tracked_turns (turn_id, thread_id, status, created_at, updated_at) \
                     VALUES ('tu_x', 'other', 'running', 30, 30)",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO codex_thread_lifecycle_actions (action_id, action_type, thread_id, status, \
                     owner_id, created_at, updated_at) VALUES ('tla_1', 'archive', 'th', 'completed', 'o', 25, 25)",
                    [],
                )?;
                let chat = chat(tx, "th")?.expect("chat");
                assert_eq!(chat.title.as_deref(), Some("Hello"));
                assert_eq!(chat.first_prompt.as_deref(), Some("first"));
                assert_eq!(chat.last_prompt.as_deref(), Some("second"));
                assert_eq!(chat.last_assistant_message.as_deref(), Some("answer op_2"));
                assert_eq!(chat.latest_turn.as_ref().map(|t| t.turn_id.as_str()), Some("tu_2"));
                assert_eq!(chat.turn_count, 2);
                assert!(chat.archived);
                assert_eq!(chat.last_activity_at, Timestamp(20));
                assert!(super::chat(tx, "nope")?.is_none());
                let all = list(tx, None, 10)?;
                assert_eq!(all.iter().map(|c| c.thread_id.as_str()).collect::<Vec<_>>(), ["other", "th"]);
                assert_eq!(list(tx, Some("p1"), 10)?.len(), 1);
                let projects = project_activity(tx)?;
                assert_eq!(projects.len(), 1);
                assert_eq!((projects[0].chat_count, projects[0].operation_count), (1, 2));
                Ok(())
            })
            .expect("write");
    }
}
