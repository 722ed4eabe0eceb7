//! The idempotent, dedup-guarded insert of an operation and its prompt submission, in one transaction.
//!
//! An insert has two halves. [`prepare`] needs no write lock: it checks the request, computes its canonical form,
//! fingerprint and prompt basis, and (given a connection) runs the duplicate guard on a read snapshot.
//! [`insert_prepared`] runs inside the write transaction and reuses the guard's answer when the scope has not
//! changed since ([`submissions::judge`]), so other processes' writes wait only for the insert itself.

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::*;

/// What [`prepare`] computed of a request before the write lock.
#[derive(Debug)]
pub struct PreparedInsert {
    /// The operation type (checked).
    kind: OperationKind,
    /// The priority's rank (checked).
    priority: i64,
    canonical: Value,
    canonical_text: String,
    fingerprint: String,
    /// The normalised prompt basis and its hash, for prompt-carrying types.
    basis: Option<(String, String)>,
    /// The duplicate guard's answer on a read snapshot, when the guard applies and the snapshot could be read.
    verdict: Option<submissions::Verdict>,
}

/// The idempotent insert (see [`Store::insert_operation`]); `conn` must be inside a write transaction.
pub fn insert(
    conn: &Connection,
    new: &NewOperation,
    now: i64,
) -> Result<InsertOutcome, StoreError> {
    insert_prepared(conn, new, prepare(None, new)?, now)
}

/// Checks `new` and computes what needs no lock; with `snapshot` (a connection outside any transaction), also the
/// duplicate guard's answer on a read snapshot. A failed read leaves the guard to [`insert_prepared`].
pub fn prepare(
    snapshot: Option<&Connection>,
    new: &NewOperation,
) -> Result<PreparedInsert, StoreError> {
    let kind = OperationKind::parse(&new.operation_type).ok_or_else(|| {
        invalid(
            "operation_type",
            format!("unknown operation type {:?}", new.operation_type),
        )
    })?;
    let priority = priority_rank(&new.priority)
        .ok_or_else(|| invalid("priority", format!("unknown priority {:?}", new.priority)))?;
    if !new.request.is_object() {
        return Err(invalid("request", "must be a JSON object"));
    }
    if new.max_attempts < 1 {
        return Err(invalid("max_attempts", "must be at least 1"));
    }
    let canonical = canonicalize(&new.request);
    let canonical_text = canonical.to_string();
    let fingerprint = sha256_hex(&canonical_text);
    // The dedup basis exists for prompt-carrying types whether or not the guard runs, so later requests see it.
    let basis = match (
        &new.message,
        DEDUP_TYPES.contains(&new.operation_type.as_str()),
    ) {
        (Some(message), true) => {
            let text = basis_text(&BasisInput {
                message,
                latest_plan: new.latest_plan.as_deref(),
                output_schema_hash: new.output_schema_hash.as_deref(),
                input_items_hash: new.input_items_hash.as_deref(),
            });
            let normalized = normalize_prompt(&text);
            let hash = prompt_hash(&normalized);
            Some((normalized, hash))
        }
        _ => None,
    };
    let verdict = match (snapshot, guard_probe(new, basis.as_ref())) {
        (Some(conn), Some(probe)) => {
            match submissions::prejudge(conn, &new.project_path_key, &probe) {
                Ok(verdict) => Some(verdict),
                Err(error) => {
                    tracing::debug!(%error, "duplicate guard left to the write transaction");
                    None
                }
            }
        }
        _ => None,
    };
    Ok(PreparedInsert {
        kind,
        priority,
        canonical,
        canonical_text,
        fingerprint,
        basis,
        verdict,
    })
}

/// The guard's view of `new`, when the guard applies to it.
fn guard_probe<'a>(
    new: &'a NewOperation,
    basis: Option<&'a (String, String)>,
) -> Option<DedupProbe<'a>> {
    let (normalized, hash) = basis?;
    guard_applies(&new.operation_type, &new.dedup_policy, new.force).then_some(DedupProbe {
        normalized,
        hash,
        has_input_items: new.input_items_hash.is_some(),
        resource_keys: &new.resource_keys,
    })
}

/// The insert of a [`prepare`]d request; `conn` must be inside a write transaction.
pub fn insert_prepared(
    conn: &Connection,
    new: &NewOperation,
    prepared: PreparedInsert,
    now: i64,
) -> Result<InsertOutcome, StoreError> {
    let PreparedInsert {
        mut kind,
        priority,
        canonical,
        canonical_text,
        fingerprint,
        basis,
        verdict,
    } = prepared;

    let client_request_id = match &new.client_request_id {
        Some(key) => {
            if let Some(existing) = get_by_client_request_id(conn, key)? {
                if existing.request_fingerprint == fingerprint {
                    return Ok(InsertOutcome::Existing {
                        operation: existing,
                        idempotent: true,
                    });
                }
                return Err(StoreError::IdempotencyKeyReused {
                    differing_fields: differing_fields(&existing.request, &canonical),
                    operation_id: existing.operation_id,
                });
            }
            key.clone()
        }
        // No key: a unique one, so there is no implicit idempotency (the seed's format).
        None => format!(
            "auto:{}:{}",
            &fingerprint[..32],
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
    };

    // The scope's version the guard judged at, under this transaction's lock.
    let judged = match guard_probe(new, basis.as_ref()) {
        Some(probe) => {
            let verdict = submissions::judge(conn, &new.project_path_key, &probe, verdict)?;
            let version = verdict.version();
            if let Some(found) = verdict.found() {
                return Err(StoreError::DuplicatePromptActive(Box::new(found)));
            }
            Some(version)
        }
        None => None,
    };

    // Historical continuation (seed §f): a start_chat in `auto` thread mode whose prompt matches a completed,
    // non-archived chat continues that chat instead of starting a new one.
    let mut new = std::borrow::Cow::Borrowed(new);
    let mut continued_from = None;
    let continuation_wanted = new.operation_type == "start_chat"
        && new.request.get("threadMode").and_then(Value::as_str) == Some("auto")
        && new
            .request
            .get("allowHistoricalContinuation")
            .and_then(Value::as_bool)
            == Some(true);
    if let (true, Some((normalized, hash))) = (continuation_wanted, &basis) {
        if let Some((operation_id, thread_id, _)) =
            submissions::find_historical_match(conn, &new.project_path_key, normalized, hash)?
        {
            let owned = new.to_mut();
            kind = OperationKind::SendMessage;
            owned.operation_type = kind.as_str().to_string();
            owned.thread_id = Some(thread_id.clone());
            owned.request["continuedFromOperationId"] = json!(operation_id);
            owned.request["threadId"] = json!(thread_id);
            continued_from = Some(operation_id);
        }
    }
    let new = new.as_ref();

    let operation_id = new_id("op");
    let has_message = new.message.is_some();
    let takes_slot = match new.operation_type.as_str() {
        "steer_turn" => false,
        "fork_thread" => has_message,
        _ => true,
    };
    let resource_keys = serde_json::to_string(&new.resource_keys)?;
    let writes = takes_slot && crate::store::admission::sandbox_can_write(&new.request);
    conn.prepare_cached(
        "INSERT INTO codex_operations (operation_id, client_request_id, operation_type, status, project_id, \
         project_path_key, cwd, thread_id, source_thread_id, expected_turn_id, workflow_id, agent_id, has_message, \
         takes_slot, priority, estimated_cost_class, resource_keys_json, queue_status, queued_reason, request_json, \
         request_fingerprint, max_attempts, next_attempt_at, submitter_config_fingerprint, created_at, updated_at, \
         writes) \
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 'queued', \
         'waiting_for_worker', ?17, ?18, ?19, ?20, ?21, ?20, ?20, ?22)",
    )?
    .execute(params![
        operation_id,
        client_request_id,
        new.operation_type,
        new.project_id,
        new.project_path_key,
        new.cwd,
        new.thread_id,
        new.source_thread_id,
        new.expected_turn_id,
        new.workflow_id,
        new.agent_id,
        has_message,
        takes_slot,
        priority,
        new.estimated_cost_class,
        resource_keys,
        canonical_text,
        fingerprint,
        new.max_attempts,
        now,
        new.config_fingerprint,
        writes,
    ])?;
    let submission_id = match basis {
        Some((normalized, hash)) => {
            let (submission_id, rowid) = submissions::insert(
                conn,
                &submissions::NewSubmission {
                    operation_id: &operation_id,
                    operation_type: &new.operation_type,
                    project_path_key: &new.project_path_key,
                    prompt_hash: &hash,
                    prompt_normalized: &normalized,
                    has_input_items: new.input_items_hash.is_some(),
                    resource_keys: &resource_keys,
                },
                now,
            )?;
            if let Some(judged) = judged {
                submissions::note_inserted(
                    conn,
                    &new.project_path_key,
                    judged,
                    &submissions::InsertedRow {
                        submission_id: &submission_id,
                        rowid,
                        operation_id: &operation_id,
                        thread_id: new.thread_id.as_deref(),
                        status: OperationStatus::Queued,
                        normalized: &normalized,
                        hash: &hash,
                        resource_keys: &new.resource_keys,
                        created_at: now,
                    },
                )?;
            }
            Some(submission_id)
        }
        None => None,
    };
    // The row as just written, built from what was bound instead of read back (a submit's last statement was a
    // full-row SELECT of the row it had in hand); `inserted_rows_read_back_equal_what_insert_returns` holds the
    // two equal.
    let operation = Operation {
        operation_id,
        client_request_id,
        operation_type: kind,
        status: OperationStatus::Queued,
        phase: OperationStatus::Queued,
        project_id: new.project_id.clone(),
        project_path_key: new.project_path_key.clone(),
        cwd: new.cwd.clone(),
        chat_id: new.thread_id.clone(),
        thread_id: new.thread_id.clone(),
        source_thread_id: new.source_thread_id.clone(),
        expected_turn_id: new.expected_turn_id.clone(),
        turn_id: None,
        workflow_id: new.workflow_id.clone(),
        agent_id: new.agent_id.clone(),
        has_message,
        takes_slot,
        priority: new.priority.clone(),
        estimated_cost_class: new.estimated_cost_class.clone(),
        resource_keys: new.resource_keys.clone(),
        queue_status: "queued".to_string(),
        queued_reason: Some("waiting_for_worker".to_string()),
        attempt_count: 0,
        max_attempts: new.max_attempts,
        next_attempt_at: Timestamp(now),
        last_error: None,
        lease_owner: None,
        lease_expires_at: None,
        last_heartbeat_at: None,
        worker_id: None,
        result: None,
        final_report: None,
        created_at: Timestamp(now),
        updated_at: Timestamp(now),
        started_at: None,
        completed_at: None,
        request: canonical,
        request_fingerprint: fingerprint,
        submitter_config_fingerprint: new.config_fingerprint.clone(),
    };
    Ok(InsertOutcome::Created {
        operation,
        submission_id,
        continued_from,
    })
}
