//! Audited thread lifecycle actions (`codex_thread_lifecycle_actions`): archive, unarchive, compact.
//!
//! Archive and unarchive end when app-server answers. A compaction runs as a turn app-server starts by itself:
//! it is `running` until the tracker sees that turn end on the thread (`completed`), or the app-server
//! generation that runs it exits (`unknown_after_app_server_exit`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{new_id, Store, StoreError, Timestamp};

/// One lifecycle action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleAction {
    /// `tla_<32 hex>`.
    pub action_id: String,
    /// archive, unarchive or compact.
    pub action_type: String,
    /// The thread.
    pub thread_id: String,
    /// starting, running, completed, failed or unknown_after_app_server_exit.
    pub status: String,
    /// The process that performed it.
    pub owner_id: String,
    /// App-server generation it ran on.
    pub process_generation: Option<i64>,
    /// The compaction turn, once seen.
    pub target_turn_id: Option<String>,
    /// App-server's answer.
    pub result: Option<Value>,
    /// The error, when it failed.
    pub error: Option<Value>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Ended.
    pub completed_at: Option<Timestamp>,
}

const COLUMNS: &str =
    "action_id, action_type, thread_id, status, owner_id, process_generation, target_turn_id, \
    result_json, error_json, created_at, updated_at, completed_at";

fn from_row(row: &Row<'_>) -> Result<LifecycleAction, rusqlite::Error> {
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    Ok(LifecycleAction {
        action_id: row.get(0)?,
        action_type: row.get(1)?,
        thread_id: row.get(2)?,
        status: row.get(3)?,
        owner_id: row.get(4)?,
        process_generation: row.get(5)?,
        target_turn_id: row.get(6)?,
        result: json(row.get(7)?),
        error: json(row.get(8)?),
        created_at: Timestamp(row.get(9)?),
        updated_at: Timestamp(row.get(10)?),
        completed_at: row.get::<_, Option<i64>>(11)?.map(Timestamp),
    })
}

/// One action by id.
pub fn get(conn: &Connection, action_id: &str) -> Result<Option<LifecycleAction>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM codex_thread_lifecycle_actions WHERE action_id = ?1"
        ))?
        .query_row([action_id], from_row)
        .optional()?)
}

fn require(conn: &Connection, action_id: &str) -> Result<LifecycleAction, StoreError> {
    get(conn, action_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "action",
        id: action_id.to_string(),
    })
}

/// Records a new action (`starting`).
pub fn insert(
    conn: &Connection,
    action_type: &str,
    thread_id: &str,
    owner: &str,
    generation: Option<i64>,
    now: i64,
) -> Result<LifecycleAction, StoreError> {
    let action_id = new_id("tla");
    conn.prepare_cached(
        "INSERT INTO codex_thread_lifecycle_actions (action_id, action_type, thread_id, status, owner_id, \
         process_generation, created_at, updated_at) VALUES (?1, ?2, ?3, 'starting', ?4, ?5, ?6, ?6)",
    )?
    .execute(params![action_id, action_type, thread_id, owner, generation, now])?;
    require(conn, &action_id)
}

/// Moves an action to `status`, with its result or error; terminal statuses set `completed_at`. An action that
/// already ended keeps its end (a compaction turn can finish before `thread/compact/start` is answered).
pub fn update(
    conn: &Connection,
    action_id: &str,
    status: &str,
    result: Option<&Value>,
    error: Option<&Value>,
    target_turn_id: Option<&str>,
    now: i64,
) -> Result<LifecycleAction, StoreError> {
    let terminal = !matches!(status, "starting" | "running");
    conn.prepare_cached(
        "UPDATE codex_thread_lifecycle_actions SET status = ?2, result_json = COALESCE(?3, result_json), \
         error_json = COALESCE(?4, error_json), target_turn_id = COALESCE(?5, target_turn_id), updated_at = ?6, \
         completed_at = CASE WHEN ?7 THEN ?6 ELSE completed_at END WHERE action_id = ?1 AND completed_at IS NULL",
    )?
    .execute(params![
        action_id,
        status,
        result.map(Value::to_string),
        error.map(Value::to_string),
        target_turn_id,
        now,
        terminal
    ])?;
    require(conn, action_id)
}

/// Running compactions of a thread.
pub fn running_compactions(
    conn: &Connection,
    thread_id: &str,
) -> Result<Vec<LifecycleAction>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM codex_thread_lifecycle_actions WHERE thread_id = ?1 AND action_type = 'compact' \
         AND status IN ('starting', 'running') ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([thread_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ends `owner`'s running compactions of a dead generation as `unknown_after_app_server_exit`.
pub fn lose_generation(
    conn: &Connection,
    owner: &str,
    generation: i64,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE codex_thread_lifecycle_actions SET status = 'unknown_after_app_server_exit', updated_at = ?3, \
             completed_at = ?3 WHERE owner_id = ?1 AND process_generation = ?2 AND status IN ('starting', 'running')",
        )?
        .execute(params![owner, generation, now])?)
}

/// Owners other than `me` with lifecycle actions still `starting` or `running`.
pub fn in_flight_owners(conn: &Connection, me: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT owner_id FROM codex_thread_lifecycle_actions \
         WHERE status IN ('starting', 'running') AND owner_id <> ?1",
    )?;
    let rows = stmt.query_map([me], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ends every `starting` / `running` action of a dead `owner` as `unknown_after_app_server_exit`: its
/// app-server child died with it, so the action cannot finish.
pub fn lose_owner(conn: &Connection, owner: &str, now: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE codex_thread_lifecycle_actions SET status = 'unknown_after_app_server_exit', updated_at = ?2, \
             completed_at = ?2 WHERE owner_id = ?1 AND status IN ('starting', 'running')",
        )?
        .execute(params![owner, now])?)
}

impl Store {
    /// Owners of in-flight lifecycle actions other than `me` (see [`in_flight_owners`]).
    pub async fn lifecycle_owners_in_flight(&self, me: &str) -> Result<Vec<String>, StoreError> {
        let me = me.to_string();
        self.read(move |c| in_flight_owners(c, &me)).await
    }

    /// Ends a dead owner's in-flight lifecycle actions (see [`lose_owner`]).
    pub async fn lose_owner_lifecycle_actions(&self, owner: &str) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| lose_owner(tx, &owner, crate::time::now_ms()))
            .await
    }

    /// Records a new lifecycle action.
    pub async fn insert_lifecycle_action(
        &self,
        action_type: &str,
        thread_id: &str,
        owner: &str,
        generation: Option<i64>,
    ) -> Result<LifecycleAction, StoreError> {
        let (kind, thread, owner) = (
            action_type.to_string(),
            thread_id.to_string(),
            owner.to_string(),
        );
        self.write(move |tx| {
            insert(
                tx,
                &kind,
                &thread,
                &owner,
                generation,
                crate::time::now_ms(),
            )
        })
        .await
    }

    /// Updates a lifecycle action.
    pub async fn update_lifecycle_action(
        &self,
        action_id: &str,
        status: &str,
        result: Option<Value>,
        error: Option<Value>,
        target_turn_id: Option<&str>,
    ) -> Result<LifecycleAction, StoreError> {
        let (id, status, turn) = (
            action_id.to_string(),
            status.to_string(),
            target_turn_id.map(str::to_string),
        );
        self.write(move |tx| {
            update(
                tx,
                &id,
                &status,
                result.as_ref(),
                error.as_ref(),
                turn.as_deref(),
                crate::time::now_ms(),
            )
        })
        .await
    }

    /// One lifecycle action.
    pub async fn get_lifecycle_action(
        &self,
        action_id: &str,
    ) -> Result<Option<LifecycleAction>, StoreError> {
        let id = action_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// Running compactions of a thread.
    pub async fn running_compactions(
        &self,
        thread_id: &str,
    ) -> Result<Vec<LifecycleAction>, StoreError> {
        let id = thread_id.to_string();
        self.read(move |c| running_compactions(c, &id)).await
    }

    /// Ends the running compactions of a dead generation.
    pub async fn lose_lifecycle_generation(
        &self,
        owner: &str,
        generation: i64,
    ) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| lose_generation(tx, &owner, generation, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_dead_owners_in_flight_actions_end_unknown_and_finished_ones_stay() {
        let (_dir, store) = temp_store();
        let running = store
            .insert_lifecycle_action("compact", "th1", "mcp:dead", Some(1))
            .await
            .expect("insert");
        store
            .update_lifecycle_action(&running.action_id, "running", None, None, None)
            .await
            .expect("running");
        let done = store
            .insert_lifecycle_action("archive", "th2", "mcp:dead", Some(1))
            .await
            .expect("insert");
        store
            .update_lifecycle_action(&done.action_id, "completed", None, None, None)
            .await
            .expect("completed");
        let mine = store
            .insert_lifecycle_action("compact", "th3", "mcp:me", Some(1))
            .await
            .expect("insert");

        assert_eq!(
            store
                .lifecycle_owners_in_flight("mcp:me")
                .await
                .expect("owners"),
            vec!["mcp:dead".to_string()],
            "only other owners with unfinished actions"
        );
        assert_eq!(
            store
                .lose_owner_lifecycle_actions("mcp:dead")
                .await
                .expect("lose"),
            1
        );
        let lost = store
            .get_lifecycle_action(&running.action_id)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(lost.status, "unknown_after_app_server_exit");
        assert!(lost.completed_at.is_some());
        let kept = store
            .get_lifecycle_action(&done.action_id)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(kept.status, "completed");
        let untouched = store
            .get_lifecycle_action(&mine.action_id)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(untouched.status, "starting");
        assert!(store
            .lifecycle_owners_in_flight("mcp:me")
            .await
            .expect("owners")
            .is_empty());
    }
}
