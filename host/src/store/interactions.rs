//! Durable pending interactions (`pending_interactions` + `pending_interaction_events`).
//!
//! App-server's approval and user-input requests arrive on the process that owns that app-server (its
//! `owner_id` and `process_generation` are stored). Any process can list and answer them: answering stores the
//! response and sets `delivery_state = 'requested'`; the owning process polls
//! [`Store::take_answers_to_deliver`] (cheap: a partial index on requested rows), sends the JSON-RPC reply on the
//! live generation and confirms with [`Store::mark_interaction_delivered`]. Exactly one answer wins: the answer is
//! a conditional UPDATE on `status = 'pending' AND expires_at > now`.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::operations::{self, Operation};
use super::{invalid, new_id, Store, StoreError, Timestamp};
use crate::domain::rules::interactions::{
    default_decline_response, interaction_kind, waiting_status,
};
use crate::domain::rules::redact::redact_secrets;
use crate::domain::rules::status;

/// A new interaction, as the app-server request brought it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewInteraction {
    /// The operation whose turn asked, when known.
    pub operation_id: Option<String>,
    /// Its workflow.
    pub workflow_id: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
    /// Turn.
    pub turn_id: Option<String>,
    /// The server-request method (decides the kind).
    pub method: String,
    /// The JSON-RPC id to answer.
    pub jsonrpc_id: String,
    /// Request params (secrets are redacted before storing).
    pub params: Value,
    /// Decisions offered (approvals).
    pub available_decisions: Vec<String>,
    /// Questions (user input).
    pub questions: Option<Value>,
    /// Schema of an acceptable answer (elicitation).
    pub answer_schema: Option<Value>,
    /// One-line risk summary.
    pub risk_summary: Option<String>,
    /// The owning process.
    pub owner_id: String,
    /// Its app-server generation.
    pub process_generation: i64,
    /// Auto-decline instant (unix ms).
    pub expires_at: i64,
    /// The asking turn's row, written with the interaction so the turn never shows running while one of its
    /// requests is pending.
    pub turn: Option<super::turns::TurnUpdate>,
}

/// One stored interaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingInteraction {
    /// `int_<32 hex>`.
    pub interaction_id: String,
    /// Operation.
    pub operation_id: Option<String>,
    /// Workflow.
    pub workflow_id: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
    /// Turn.
    pub turn_id: Option<String>,
    /// approval, permissions, user_input, elicitation.
    pub kind: String,
    /// Server-request method.
    pub method: String,
    /// JSON-RPC id to answer.
    #[serde(skip)]
    pub jsonrpc_id: String,
    /// pending, answered, auto_declined, expired, failed, orphaned_after_app_server_exit.
    pub status: String,
    /// True for every status but `pending`.
    pub terminal: bool,
    /// Redacted params.
    pub params: Value,
    /// Decisions offered.
    pub available_decisions: Vec<String>,
    /// Questions.
    pub questions: Option<Value>,
    /// Answer schema.
    pub answer_schema: Option<Value>,
    /// Risk summary.
    pub risk_summary: Option<String>,
    /// Owning process.
    pub owner_id: String,
    /// Its generation.
    pub process_generation: i64,
    /// Auto-decline instant.
    pub expires_at: Timestamp,
    /// The reply to send (answer or auto-decline).
    pub response: Option<Value>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// The policy rule that answered, when a policy naming its rules did.
    pub answered_rule: Option<String>,
    /// When answered.
    pub answered_at: Option<Timestamp>,
    /// requested (owner must deliver), delivered, failed.
    pub delivery_state: Option<String>,
    /// When created.
    pub created_at: Timestamp,
}

/// Filters for [`Store::list_interactions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InteractionFilter {
    /// Thread.
    pub thread_id: Option<String>,
    /// Turn.
    pub turn_id: Option<String>,
    /// Operation.
    pub operation_id: Option<String>,
    /// Workflow.
    pub workflow_id: Option<String>,
    /// Status (the tool's default is `pending`).
    pub status: Option<String>,
}

const COLUMNS: &str = "interaction_id, operation_id, workflow_id, thread_id, turn_id, kind, method, jsonrpc_id, status, \
    params_json, available_decisions_json, questions_json, answer_schema_json, risk_summary, owner_id, \
    process_generation, expires_at, response_json, answered_by, answered_at, delivery_state, created_at, answered_rule";

fn json_col(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn from_row(row: &Row<'_>) -> Result<PendingInteraction, rusqlite::Error> {
    let status: String = row.get(8)?;
    let decisions: String = row.get(10)?;
    Ok(PendingInteraction {
        interaction_id: row.get(0)?,
        operation_id: row.get(1)?,
        workflow_id: row.get(2)?,
        thread_id: row.get(3)?,
        turn_id: row.get(4)?,
        kind: row.get(5)?,
        method: row.get(6)?,
        jsonrpc_id: row.get(7)?,
        terminal: status != "pending",
        status,
        params: json_col(row.get(9)?).unwrap_or(Value::Null),
        available_decisions: serde_json::from_str(&decisions).unwrap_or_default(),
        questions: json_col(row.get(11)?),
        answer_schema: json_col(row.get(12)?),
        risk_summary: row.get(13)?,
        owner_id: row.get(14)?,
        process_generation: row.get(15)?,
        expires_at: Timestamp(row.get(16)?),
        response: json_col(row.get(17)?),
        answered_by: row.get(18)?,
        answered_at: row.get::<_, Option<i64>>(19)?.map(Timestamp),
        delivery_state: row.get(20)?,
        created_at: Timestamp(row.get(21)?),
        answered_rule: row.get(22)?,
    })
}

fn log_event(
    conn: &Connection,
    interaction_id: &str,
    event: &str,
    details: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pending_interaction_events (interaction_id, event, details_json, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![interaction_id, event, details.map(Value::to_string), now])?;
    Ok(())
}

/// One interaction by id.
pub fn get(
    conn: &Connection,
    interaction_id: &str,
) -> Result<Option<PendingInteraction>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM pending_interactions WHERE interaction_id = ?1"
        ))?
        .query_row([interaction_id], from_row)
        .optional()?)
}

fn require(conn: &Connection, interaction_id: &str) -> Result<PendingInteraction, StoreError> {
    get(conn, interaction_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "interaction",
        id: interaction_id.to_string(),
    })
}

/// Stores a new pending interaction.
pub fn insert(
    conn: &Connection,
    new: &NewInteraction,
    now: i64,
) -> Result<PendingInteraction, StoreError> {
    let kind = interaction_kind(&new.method).ok_or_else(|| {
        invalid(
            "method",
            format!("{} is not an interaction method", new.method),
        )
    })?;
    // The turn's operation may learn its turn id only after the app-server asked (the request can overtake
    // the `turn/start` reply): looking it up in this transaction, and adopting in `mark_turn_live` otherwise,
    // leaves no moment in which an interaction belongs to nobody.
    let owner = match (&new.operation_id, &new.turn_id) {
        (None, Some(turn_id)) => live_operation_of_turn(conn, turn_id)?,
        (Some(id), _) => Some((id.clone(), new.workflow_id.clone())),
        (None, None) => None,
    };
    let (operation_id, workflow_id) = owner.unzip();
    let workflow_id = workflow_id.flatten();
    let interaction_id = new_id("int");
    conn.prepare_cached(
        "INSERT INTO pending_interactions (interaction_id, operation_id, workflow_id, thread_id, turn_id, kind, method, \
         jsonrpc_id, status, params_json, available_decisions_json, questions_json, answer_schema_json, risk_summary, \
         owner_id, process_generation, expires_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
    )?
    .execute(params![
        interaction_id,
        operation_id,
        workflow_id,
        new.thread_id,
        new.turn_id,
        kind,
        new.method,
        new.jsonrpc_id,
        redact_secrets(&new.params).to_string(),
        serde_json::to_string(&new.available_decisions)?,
        new.questions.as_ref().map(Value::to_string),
        new.answer_schema.as_ref().map(Value::to_string),
        new.risk_summary,
        new.owner_id,
        new.process_generation,
        new.expires_at,
        now,
    ])?;
    log_event(conn, &interaction_id, "created", None, now)?;
    if let Some(operation_id) = &operation_id {
        mark_waiting(conn, operation_id, kind, now)?;
    }
    require(conn, &interaction_id)
}

/// The non-terminal operation following `turn_id`, with its workflow.
fn live_operation_of_turn(
    conn: &Connection,
    turn_id: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let sql = format!(
        "SELECT operation_id, workflow_id FROM codex_operations WHERE turn_id = ?1 AND status NOT IN ({}) \
         ORDER BY created_at DESC LIMIT 1",
        super::sql_status_list(&status::TERMINAL)
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([turn_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// Puts a live operation in the waiting status its pending interaction calls for (a no-op when it already
/// waits or has ended).
fn mark_waiting(
    conn: &Connection,
    operation_id: &str,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    let waiting = waiting_status(kind);
    let op = operations::require(conn, operation_id)?;
    if op.status != waiting && status::is_transition_allowed(op.status.as_str(), waiting) {
        operations::set_status(conn, operation_id, waiting, now)?;
    }
    Ok(())
}

/// Records that an operation's turn is live: adopts the interactions the turn raised before the operation
/// knew its turn id, and marks the operation waiting when one of them is pending, `running` otherwise
/// (an operation already live or ended keeps its status). One transaction, so an interaction recorded at
/// the same time is either adopted here or finds the operation itself.
pub fn mark_turn_live(
    conn: &Connection,
    operation_id: &str,
    turn_id: &str,
    now: i64,
) -> Result<Operation, StoreError> {
    let op = operations::require(conn, operation_id)?;
    if op.is_terminal() {
        return Ok(op);
    }
    // The tracker may have recorded the turn first (its start notification or a request came before the
    // `turn/start` reply): it learns its operation here.
    conn.prepare_cached(
        "UPDATE tracked_turns SET operation_id = ?1 WHERE turn_id = ?2 AND operation_id IS NULL",
    )?
    .execute(params![operation_id, turn_id])?;
    conn.prepare_cached(
        "UPDATE pending_interactions SET operation_id = ?1, workflow_id = COALESCE(workflow_id, ?2), updated_at = ?4 \
         WHERE turn_id = ?3 AND operation_id IS NULL",
    )?
    .execute(params![operation_id, op.workflow_id, turn_id, now])?;
    let pending: Option<String> = conn
        .prepare_cached(
            "SELECT kind FROM pending_interactions WHERE operation_id = ?1 AND turn_id = ?2 AND status = 'pending' \
             ORDER BY created_at LIMIT 1",
        )?
        .query_row(params![operation_id, turn_id], |row| row.get(0))
        .optional()?;
    match pending {
        Some(kind) => mark_waiting(conn, operation_id, &kind, now)?,
        None if !op.status.is_active() => {
            operations::set_status(conn, operation_id, "running", now)?;
        }
        None => {}
    }
    operations::require(conn, operation_id)
}

/// Stores an answer for the owner to deliver. Fails with [`StoreError::InteractionUnavailable`] when the
/// interaction is no longer pending; one that is past its expiry is marked `expired` first.
pub fn answer(
    conn: &Connection,
    interaction_id: &str,
    response: &Value,
    answered_by: Option<&str>,
    now: i64,
) -> Result<PendingInteraction, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE pending_interactions SET status = 'answered', response_json = ?2, answered_by = ?3, answered_at = ?4, \
             delivery_state = 'requested', updated_at = ?4 \
             WHERE interaction_id = ?1 AND status = 'pending' AND expires_at > ?4",
        )?
        .execute(params![interaction_id, response.to_string(), answered_by, now])?;
    if n == 1 {
        log_event(conn, interaction_id, "answered", Some(response), now)?;
        return require(conn, interaction_id);
    }
    let current = require(conn, interaction_id)?;
    let status = if current.status == "pending" {
        // Answered too late (the owner has not auto-declined yet): the seed's `expired`.
        conn.prepare_cached("UPDATE pending_interactions SET status = 'expired', updated_at = ?2 WHERE interaction_id = ?1")?
            .execute(params![interaction_id, now])?;
        log_event(conn, interaction_id, "expired", None, now)?;
        "expired".to_string()
    } else {
        current.status
    };
    Err(StoreError::InteractionUnavailable {
        interaction_id: interaction_id.to_string(),
        status,
    })
}

/// Answers `owner` must deliver now (answered or auto-declined, not yet sent).
pub fn take_answers_to_deliver(
    conn: &Connection,
    owner: &str,
) -> Result<Vec<PendingInteraction>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM pending_interactions WHERE owner_id = ?1 AND delivery_state = 'requested' \
         ORDER BY answered_at, interaction_id"
    ))?;
    let rows = stmt.query_map([owner], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records the outcome of delivering a reply: `delivered`, or `failed` (the interaction becomes `failed`).
pub fn mark_delivered(
    conn: &Connection,
    interaction_id: &str,
    error: Option<&str>,
    now: i64,
) -> Result<PendingInteraction, StoreError> {
    match error {
        None => {
            conn.prepare_cached(
                "UPDATE pending_interactions SET delivery_state = 'delivered', delivered_at = ?2, updated_at = ?2 \
                 WHERE interaction_id = ?1",
            )?
            .execute(params![interaction_id, now])?;
            log_event(conn, interaction_id, "delivered", None, now)?;
        }
        Some(error) => {
            conn.prepare_cached(
                // An interaction a repair expired stays expired: its decline was a courtesy to a request that
                // may already be gone.
                "UPDATE pending_interactions SET delivery_state = 'failed', \
                 status = CASE WHEN status = 'expired' THEN status ELSE 'failed' END, updated_at = ?2 \
                 WHERE interaction_id = ?1",
            )?
            .execute(params![interaction_id, now])?;
            log_event(
                conn,
                interaction_id,
                "delivery_failed",
                Some(&Value::String(error.to_string())),
                now,
            )?;
        }
    }
    require(conn, interaction_id)
}

/// Auto-declines `owner`'s pending interactions whose expiry has passed: status `auto_declined`, the default
/// decline reply stored and queued for delivery. Returns them.
pub fn expire(
    conn: &Connection,
    owner: &str,
    now: i64,
) -> Result<Vec<PendingInteraction>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM pending_interactions WHERE owner_id = ?1 AND status = 'pending' AND expires_at <= ?2"
    ))?;
    let due: Vec<PendingInteraction> = stmt
        .query_map(params![owner, now], from_row)?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(due.len());
    for interaction in due {
        let response =
            default_decline_response(&interaction.kind, &interaction.available_decisions);
        conn.prepare_cached(
            "UPDATE pending_interactions SET status = 'auto_declined', response_json = ?2, answered_by = 'auto_decline', \
             answered_at = ?3, delivery_state = 'requested', updated_at = ?3 WHERE interaction_id = ?1",
        )?
        .execute(params![interaction.interaction_id, response.to_string(), now])?;
        log_event(
            conn,
            &interaction.interaction_id,
            "auto_declined",
            Some(&response),
            now,
        )?;
        out.push(require(conn, &interaction.interaction_id)?);
    }
    Ok(out)
}

/// The app-server generation `generation` of `owner` is gone: its pending (and answered but undelivered)
/// interactions become `orphaned_after_app_server_exit`. Returns how many.
pub fn orphan_generation(
    conn: &Connection,
    owner: &str,
    generation: i64,
    now: i64,
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT interaction_id FROM pending_interactions WHERE owner_id = ?1 AND process_generation = ?2 \
         AND (status = 'pending' OR delivery_state = 'requested')",
    )?;
    let ids: Vec<String> = stmt
        .query_map(params![owner, generation], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        conn.prepare_cached(
            "UPDATE pending_interactions SET status = 'orphaned_after_app_server_exit', \
             delivery_state = CASE WHEN delivery_state = 'requested' THEN 'failed' ELSE delivery_state END, \
             updated_at = ?2 WHERE interaction_id = ?1",
        )?
        .execute(params![id, now])?;
        log_event(conn, id, "orphaned", None, now)?;
    }
    Ok(ids.len())
}

/// Interactions matching `filter`, newest first.
pub fn list(
    conn: &Connection,
    filter: &InteractionFilter,
    limit: usize,
) -> Result<Vec<PendingInteraction>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM pending_interactions WHERE (?1 IS NULL OR thread_id = ?1) AND (?2 IS NULL OR turn_id = ?2) \
         AND (?3 IS NULL OR operation_id = ?3) AND (?4 IS NULL OR workflow_id = ?4) AND (?5 IS NULL OR status = ?5) \
         ORDER BY created_at DESC, interaction_id LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.thread_id,
            filter.turn_id,
            filter.operation_id,
            filter.workflow_id,
            filter.status,
            limit.min(10_000) as i64
        ],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Stores a new pending interaction.
    pub async fn insert_interaction(
        &self,
        new: NewInteraction,
    ) -> Result<PendingInteraction, StoreError> {
        self.write(move |tx| {
            let now = crate::time::now_ms();
            let interaction = insert(tx, &new, now)?;
            if let Some(turn) = &new.turn {
                super::turns::upsert(tx, turn, now)?;
            }
            Ok(interaction)
        })
        .await
    }

    /// See [`mark_turn_live`].
    pub async fn mark_turn_live(
        &self,
        operation_id: &str,
        turn_id: &str,
    ) -> Result<Operation, StoreError> {
        let (id, turn) = (operation_id.to_string(), turn_id.to_string());
        self.write(move |tx| mark_turn_live(tx, &id, &turn, crate::time::now_ms()))
            .await
    }

    /// One interaction.
    pub async fn get_interaction(
        &self,
        interaction_id: &str,
    ) -> Result<Option<PendingInteraction>, StoreError> {
        let id = interaction_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// Interactions matching `filter`, newest first.
    pub async fn list_interactions(
        &self,
        filter: InteractionFilter,
        limit: usize,
    ) -> Result<Vec<PendingInteraction>, StoreError> {
        self.read(move |c| list(c, &filter, limit)).await
    }

    /// Stores an answer (from any process) for the owning process to deliver.
    pub async fn answer_interaction(
        &self,
        interaction_id: &str,
        response: Value,
        answered_by: Option<&str>,
    ) -> Result<PendingInteraction, StoreError> {
        let (id, by) = (interaction_id.to_string(), answered_by.map(str::to_string));
        self.write(move |tx| answer(tx, &id, &response, by.as_deref(), crate::time::now_ms()))
            .await
    }

    /// [`Store::answer_interaction`] by a policy (`answered_by` `policy:<plugin>`), recording the rule that
    /// answered (none when the policy names no rule) in the same transaction.
    pub async fn answer_interaction_by_policy(
        &self,
        interaction_id: &str,
        response: Value,
        answered_by: &str,
        rule: Option<&str>,
    ) -> Result<PendingInteraction, StoreError> {
        let (id, by, rule) = (
            interaction_id.to_string(),
            answered_by.to_string(),
            rule.map(str::to_string),
        );
        self.write(move |tx| {
            answer(tx, &id, &response, Some(&by), crate::time::now_ms())?;
            tx.prepare_cached(
                "UPDATE pending_interactions SET answered_rule = ?2 WHERE interaction_id = ?1",
            )?
            .execute(params![id, rule])?;
            require(tx, &id)
        })
        .await
    }

    /// Replies `owner` must send now.
    pub async fn take_answers_to_deliver(
        &self,
        owner: &str,
    ) -> Result<Vec<PendingInteraction>, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| take_answers_to_deliver(c, &owner)).await
    }

    /// Records delivery (or its failure).
    pub async fn mark_interaction_delivered(
        &self,
        interaction_id: &str,
        error: Option<&str>,
    ) -> Result<PendingInteraction, StoreError> {
        let (id, error) = (interaction_id.to_string(), error.map(str::to_string));
        self.write(move |tx| mark_delivered(tx, &id, error.as_deref(), crate::time::now_ms()))
            .await
    }

    /// True when `owner` has a pending interaction past its expiry (a read: the courier asks every tick, and
    /// only then takes the write lock to auto-decline).
    pub async fn has_expired_interactions(
        &self,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pending_interactions WHERE owner_id = ?1 AND status = 'pending' \
                 AND expires_at <= ?2)",
            )?
            .query_row(params![owner, now], |r| r.get(0))?)
        })
        .await
    }

    /// Auto-declines `owner`'s expired interactions (as of `now`).
    pub async fn expire_interactions(
        &self,
        owner: &str,
        now: i64,
    ) -> Result<Vec<PendingInteraction>, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| expire(tx, &owner, now)).await
    }

    /// Orphans every live interaction of one app-server generation.
    pub async fn orphan_interactions(
        &self,
        owner: &str,
        generation: i64,
    ) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| orphan_generation(tx, &owner, generation, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operation::OperationStatus;
    use crate::store::test_support::temp_store;
    use serde_json::json;

    fn approval(owner: &str, generation: i64, expires_at: i64) -> NewInteraction {
        NewInteraction {
            thread_id: Some("thr-1".into()),
            turn_id: Some("turn-1".into()),
            method: "item/commandExecution/requestApproval".into(),
            jsonrpc_id: "7".into(),
            params: json!({"command": "ls", "token": "secret"}),
            available_decisions: vec!["accept".into(), "decline".into()],
            owner_id: owner.into(),
            process_generation: generation,
            expires_at,
            ..Default::default()
        }
    }

    async fn operation_on_turn(store: &Store, turn_id: &str, message: &str) -> String {
        use crate::store::operations::{tests::chat, InsertOutcome};
        let id = match store
            .insert_operation(chat(message, None))
            .await
            .expect("insert")
        {
            InsertOutcome::Created { operation, .. } => operation.operation_id,
            other => panic!("{other:?}"),
        };
        store
            .set_status(&id, OperationStatus::StartingTurn)
            .await
            .expect("starting");
        store
            .attach_turn(&id, turn_id, Some("thr-1"))
            .await
            .expect("attach");
        id
    }

    #[tokio::test]
    async fn the_asking_turn_is_marked_waiting_in_the_interactions_transaction() {
        let (_dir, store) = temp_store();
        let running = crate::store::turns::TurnUpdate {
            turn_id: "turn-1".into(),
            thread_id: "thr-1".into(),
            status: "running".into(),
            ..Default::default()
        };
        store.upsert_turn(running.clone()).await.expect("turn");
        let mut new = approval("w1", 1, i64::MAX / 2);
        new.turn = Some(crate::store::turns::TurnUpdate {
            status: "waiting_for_approval".into(),
            ..running
        });
        store.insert_interaction(new).await.expect("insert");
        let turn = store.get_turn("turn-1").await.expect("read").expect("turn");
        assert_eq!(turn.status, "waiting_for_approval");
    }

    #[tokio::test]
    async fn a_request_that_overtakes_the_turn_start_reply_is_adopted_by_its_operation() {
        let (_dir, store) = temp_store();
        let far = crate::time::now_ms() + 900_000;
        // The request is recorded before the operation knows its turn: nobody owns it yet.
        let early = store
            .insert_interaction(approval("mcp:1:a", 1, far))
            .await
            .expect("insert");
        assert_eq!(early.operation_id, None);
        let id = operation_on_turn(&store, "turn-1", "first prompt for the early request").await;
        let live = store.mark_turn_live(&id, "turn-1").await.expect("live");
        assert_eq!(live.status, "waiting_for_approval");
        let adopted = store
            .get_interaction(&early.interaction_id)
            .await
            .expect("get")
            .expect("row");
        assert_eq!(adopted.operation_id.as_deref(), Some(id.as_str()));
        // A request recorded once the operation knows its turn finds it in the same transaction.
        let mut later = approval("mcp:1:a", 1, far);
        later.turn_id = Some("turn-2".into());
        let second =
            operation_on_turn(&store, "turn-2", "second prompt for the late request").await;
        let running = store.mark_turn_live(&second, "turn-2").await.expect("live");
        assert_eq!(running.status, "running");
        let recorded = store.insert_interaction(later).await.expect("insert");
        assert_eq!(recorded.operation_id.as_deref(), Some(second.as_str()));
        let waiting = store.require_operation(&second).await.expect("op");
        assert_eq!(waiting.status, "waiting_for_approval");
        // Going live again (a retried attach) never hides the pending request.
        let again = store.mark_turn_live(&second, "turn-2").await.expect("live");
        assert_eq!(again.status, "waiting_for_approval");
    }

    #[tokio::test]
    async fn a_policy_answer_keeps_its_rule_beside_who_answered() {
        // A rule is stored with the answer; a policy naming none (WIT 0.1) leaves it NULL, and an answer
        // that is no longer possible records no rule either.
        let (_dir, store) = temp_store();
        let far = crate::time::now_ms() + 900_000;
        let first = store
            .insert_interaction(approval("mcp:1:a", 1, far))
            .await
            .expect("insert");
        let answered = store
            .answer_interaction_by_policy(
                &first.interaction_id,
                json!({"decision": "decline"}),
                "policy:default-policy",
                Some("cwd_outside_roots"),
            )
            .await
            .expect("answer");
        assert_eq!(answered.status, "answered");
        assert_eq!(
            answered.answered_by.as_deref(),
            Some("policy:default-policy")
        );
        assert_eq!(answered.answered_rule.as_deref(), Some("cwd_outside_roots"));
        let again = store
            .answer_interaction_by_policy(
                &first.interaction_id,
                json!({"decision": "accept"}),
                "policy:other",
                Some("late"),
            )
            .await;
        assert!(again.is_err(), "{again:?}");
        let kept = store
            .get_interaction(&first.interaction_id)
            .await
            .expect("get")
            .expect("row");
        assert_eq!(kept.answered_rule.as_deref(), Some("cwd_outside_roots"));
        let mut second = approval("mcp:1:a", 1, far);
        second.jsonrpc_id = "8".into();
        let second = store.insert_interaction(second).await.expect("insert");
        let old = store
            .answer_interaction_by_policy(
                &second.interaction_id,
                json!({"decision": "accept"}),
                "policy:legacy-policy",
                None,
            )
            .await
            .expect("answer");
        assert_eq!(old.answered_rule, None);
    }

    #[tokio::test]
    async fn answer_from_any_process_is_delivered_by_the_owner() {
        let (dir, store) = temp_store();
        let far = crate::time::now_ms() + 900_000;
        let created = store
            .insert_interaction(approval("mcp:1:a", 1, far))
            .await
            .expect("insert");
        assert!(created.interaction_id.starts_with("int_") && created.interaction_id.len() == 36);
        assert_eq!(
            (created.kind.as_str(), created.params["token"].as_str()),
            ("approval", Some("[redacted]"))
        );
        // Another process (another handle on the file) answers.
        let other = Store::open(&dir.path().join("state.sqlite3")).expect("second handle");
        let answered = other
            .answer_interaction(
                &created.interaction_id,
                json!({"decision": "accept"}),
                Some("agent"),
            )
            .await
            .expect("answer");
        assert_eq!(answered.status, "answered");
        // A second answer loses.
        assert!(matches!(
            other.answer_interaction(&created.interaction_id, json!({"decision": "decline"}), None).await,
            Err(StoreError::InteractionUnavailable { status, .. }) if status == "answered"
        ));
        let due = store.take_answers_to_deliver("mcp:1:a").await.expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].response, Some(json!({"decision": "accept"})));
        store
            .mark_interaction_delivered(&created.interaction_id, None)
            .await
            .expect("delivered");
        assert!(store
            .take_answers_to_deliver("mcp:1:a")
            .await
            .expect("due")
            .is_empty());
    }

    #[tokio::test]
    async fn expiry_auto_declines_and_late_answers_are_refused() {
        let (_dir, store) = temp_store();
        let now = crate::time::now_ms();
        let soon = store
            .insert_interaction(approval("mcp:1:a", 1, now + 10))
            .await
            .expect("insert");
        let expired = store
            .expire_interactions("mcp:1:a", now + 20)
            .await
            .expect("expire");
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].status, "auto_declined");
        assert_eq!(expired[0].response, Some(json!({"decision": "decline"})));
        assert_eq!(
            store
                .take_answers_to_deliver("mcp:1:a")
                .await
                .expect("due")
                .len(),
            1
        );
        assert!(matches!(
            store
                .answer_interaction(&soon.interaction_id, json!({"decision": "accept"}), None)
                .await,
            Err(StoreError::InteractionUnavailable { .. })
        ));
        // Past expiry but not yet swept: the answer marks it expired.
        let stale = store
            .insert_interaction(approval("mcp:1:a", 1, now - 1))
            .await
            .expect("insert");
        match store
            .answer_interaction(&stale.interaction_id, json!({"decision": "accept"}), None)
            .await
        {
            Err(StoreError::InteractionUnavailable { status, .. }) => assert_eq!(status, "expired"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn interactions_are_orphaned_by_generation() {
        let (_dir, store) = temp_store();
        let far = crate::time::now_ms() + 900_000;
        for generation in [1, 1, 2] {
            store
                .insert_interaction(approval("mcp:1:a", generation, far))
                .await
                .expect("insert");
        }
        store
            .insert_interaction(approval("mcp:2:b", 1, far))
            .await
            .expect("other owner");
        assert_eq!(
            store
                .orphan_interactions("mcp:1:a", 1)
                .await
                .expect("orphan"),
            2
        );
        let pending = store
            .list_interactions(
                InteractionFilter {
                    status: Some("pending".into()),
                    ..Default::default()
                },
                50,
            )
            .await
            .expect("list");
        assert_eq!(
            pending.len(),
            2,
            "generation 2 and the other owner's stay pending"
        );
        let orphaned = store
            .list_interactions(
                InteractionFilter {
                    status: Some("orphaned_after_app_server_exit".into()),
                    thread_id: Some("thr-1".into()),
                    ..Default::default()
                },
                50,
            )
            .await
            .expect("list");
        assert!(orphaned
            .iter()
            .all(|i| i.terminal && i.process_generation == 1));
        assert_eq!(orphaned.len(), 2);
    }
}
