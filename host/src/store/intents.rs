//! The creating-call journal (`codex_intents`).
//!
//! Before the dispatcher sends a call that creates something in app-server (`thread/start`, `turn/start`,
//! `thread/fork`, `turn/steer`, `review/start`) it records an intent; after the reply it confirms the intent with
//! the returned id (in the same transaction that attaches the id to the operation), or marks it failed when the
//! reply was a definite error (nothing was created, so a retry is safe). An intent still `pending` after a crash
//! means "maybe sent": recovery never re-sends it blindly (see [`super::recovery`]).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{invalid, new_id, operations, Store, StoreError, Timestamp};

/// The app-server methods that create something and therefore go through the journal.
pub const CREATING_METHODS: [&str; 5] = [
    "thread/start",
    "turn/start",
    "thread/fork",
    "turn/steer",
    "review/start",
];

/// Methods whose blind re-send could duplicate work: an unconfirmed one must be reconciled, not repeated.
pub const RECONCILE_METHODS: [&str; 4] =
    ["turn/start", "thread/fork", "turn/steer", "review/start"];

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// `itn_<hex>`.
    pub intent_id: String,
    /// The operation it belongs to.
    pub operation_id: String,
    /// The process that recorded it.
    pub owner_id: String,
    /// The app-server method.
    pub method: String,
    /// Hash of the params sent (for evidence; params themselves are not stored).
    pub params_hash: Option<String>,
    /// App-server generation it was sent on.
    pub process_generation: Option<i64>,
    /// pending, confirmed, failed or not_found.
    pub state: String,
    /// The id app-server returned (thread or turn id).
    pub result_id: Option<String>,
    /// The error of a failed call.
    pub error: Option<String>,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// When it was confirmed, failed or reconciled.
    pub resolved_at: Option<Timestamp>,
}

const COLUMNS: &str = "intent_id, operation_id, owner_id, method, params_hash, process_generation, state, result_id, \
    error, created_at, resolved_at";

fn from_row(row: &Row<'_>) -> Result<Intent, rusqlite::Error> {
    Ok(Intent {
        intent_id: row.get(0)?,
        operation_id: row.get(1)?,
        owner_id: row.get(2)?,
        method: row.get(3)?,
        params_hash: row.get(4)?,
        process_generation: row.get(5)?,
        state: row.get(6)?,
        result_id: row.get(7)?,
        error: row.get(8)?,
        created_at: Timestamp(row.get(9)?),
        resolved_at: row.get::<_, Option<i64>>(10)?.map(Timestamp),
    })
}

/// Records an intent before the call is sent.
pub fn record(
    conn: &Connection,
    operation_id: &str,
    owner: &str,
    method: &str,
    params_hash: Option<&str>,
    generation: Option<i64>,
    now: i64,
) -> Result<Intent, StoreError> {
    if !CREATING_METHODS.contains(&method) {
        return Err(invalid(
            "method",
            format!("{method} is not a creating call"),
        ));
    }
    operations::require(conn, operation_id)?;
    let intent_id = new_id("itn");
    conn.prepare_cached(
        "INSERT INTO codex_intents (intent_id, operation_id, owner_id, method, params_hash, process_generation, \
         state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
    )?
    .execute(params![intent_id, operation_id, owner, method, params_hash, generation, now])?;
    require(conn, &intent_id)
}

/// One intent by id.
pub fn require(conn: &Connection, intent_id: &str) -> Result<Intent, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM codex_intents WHERE intent_id = ?1"
    ))?
    .query_row([intent_id], from_row)
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "intent",
        id: intent_id.to_string(),
    })
}

/// Confirms an intent with the id app-server returned and attaches that id to the operation in the same
/// transaction: `thread/start`/`thread/fork` set the thread, `turn/start`/`review/start` the turn.
pub fn confirm(
    conn: &Connection,
    intent_id: &str,
    result_id: &str,
    now: i64,
) -> Result<Intent, StoreError> {
    let intent = require(conn, intent_id)?;
    conn.prepare_cached(
        "UPDATE codex_intents SET state = 'confirmed', result_id = ?2, resolved_at = ?3 WHERE intent_id = ?1",
    )?
    .execute(params![intent_id, result_id, now])?;
    match intent.method.as_str() {
        "thread/start" | "thread/fork" => {
            operations::attach_thread(conn, &intent.operation_id, result_id, now)?;
        }
        "turn/start" | "review/start" => {
            operations::attach_turn(conn, &intent.operation_id, result_id, None, now)?;
        }
        _ => {}
    }
    require(conn, intent_id)
}

/// Marks an intent failed: app-server answered with an error, so nothing was created.
pub fn fail(
    conn: &Connection,
    intent_id: &str,
    error: &str,
    now: i64,
) -> Result<Intent, StoreError> {
    let n = conn
        .prepare_cached("UPDATE codex_intents SET state = 'failed', error = ?2, resolved_at = ?3 WHERE intent_id = ?1")?
        .execute(params![intent_id, error, now])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "intent",
            id: intent_id.to_string(),
        });
    }
    require(conn, intent_id)
}

/// Resolves a pending intent after reconciliation: `Some(id)` confirms it (the call did create that id),
/// `None` marks it `not_found` (the call never took effect).
pub fn resolve(
    conn: &Connection,
    intent_id: &str,
    found: Option<&str>,
    now: i64,
) -> Result<Intent, StoreError> {
    match found {
        Some(id) => confirm(conn, intent_id, id, now),
        None => {
            conn.prepare_cached("UPDATE codex_intents SET state = 'not_found', resolved_at = ?2 WHERE intent_id = ?1")?
                .execute(params![intent_id, now])?;
            require(conn, intent_id)
        }
    }
}

/// Pending (unconfirmed) intents, oldest first; of one operation when given.
pub fn list_unconfirmed(
    conn: &Connection,
    operation_id: Option<&str>,
) -> Result<Vec<Intent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM codex_intents WHERE state = 'pending' AND (?1 IS NULL OR operation_id = ?1) \
         ORDER BY created_at, intent_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([operation_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// All intents of an operation, oldest first.
pub fn list_for_operation(
    conn: &Connection,
    operation_id: &str,
) -> Result<Vec<Intent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM codex_intents WHERE operation_id = ?1 ORDER BY created_at, intent_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([operation_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Records an intent before a creating call is sent.
    pub async fn record_intent(
        &self,
        operation_id: &str,
        owner: &str,
        method: &str,
        params_hash: Option<&str>,
        generation: Option<i64>,
    ) -> Result<Intent, StoreError> {
        let (op, owner, method, hash) = (
            operation_id.to_string(),
            owner.to_string(),
            method.to_string(),
            params_hash.map(str::to_string),
        );
        self.write(move |tx| {
            record(
                tx,
                &op,
                &owner,
                &method,
                hash.as_deref(),
                generation,
                crate::time::now_ms(),
            )
        })
        .await
    }

    /// Confirms an intent with the returned id and attaches it to the operation.
    pub async fn confirm_intent(
        &self,
        intent_id: &str,
        result_id: &str,
    ) -> Result<Intent, StoreError> {
        let (id, result) = (intent_id.to_string(), result_id.to_string());
        self.write(move |tx| confirm(tx, &id, &result, crate::time::now_ms()))
            .await
    }

    /// Marks an intent failed (definite error reply).
    pub async fn fail_intent(&self, intent_id: &str, error: &str) -> Result<Intent, StoreError> {
        let (id, error) = (intent_id.to_string(), error.to_string());
        self.write(move |tx| fail(tx, &id, &error, crate::time::now_ms()))
            .await
    }

    /// Resolves a pending intent after reconciliation (thread/read).
    pub async fn resolve_intent(
        &self,
        intent_id: &str,
        found: Option<&str>,
    ) -> Result<Intent, StoreError> {
        let (id, found) = (intent_id.to_string(), found.map(str::to_string));
        self.write(move |tx| resolve(tx, &id, found.as_deref(), crate::time::now_ms()))
            .await
    }

    /// Unconfirmed intents (all, or of one operation).
    pub async fn list_unconfirmed_intents(
        &self,
        operation_id: Option<&str>,
    ) -> Result<Vec<Intent>, StoreError> {
        let op = operation_id.map(str::to_string);
        self.read(move |c| list_unconfirmed(c, op.as_deref())).await
    }
}
