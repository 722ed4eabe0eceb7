//! Prompt submissions (`codex_prompt_submissions`) and the candidate queries of the duplicate-prompt guard.
//!
//! The seed loads the same-hash rows of the scope (50) and the 200 most recent rows of the scope, then keeps
//! those whose effective status (turn > operation > submission) is active or startable. Only live rows can ever be
//! reported, so here the live rows of the scope are loaded directly (two small index lookups) and the
//! 200-row window is applied as a `created_at` cutoff: the same answer, at a cost that does not grow with the
//! scope's history. (Every submission has its operation: the foreign key cascades.)
//!
//! The live rows are found through indexes alone (the operation's scope index covers its id, thread, turn and
//! status; the submission's operation index carries the submission id), and what the guard compares of a
//! submission (its text, hash, resource keys and time), which never changes once written, is kept per thread by
//! submission id ([`memory`]). A submit therefore reads the table rows of only the submissions its thread has not
//! seen yet: those other processes wrote since its previous submit. The guard runs on a read snapshot before the
//! write lock and is trusted under it only while the scope's version (V13) has not moved ([`guard`]); a thread
//! also keeps the live rows of the scopes it submits into, by version, and advances them past its own inserts.
//!
//! - [`guard`]: the guard's reads and its two halves ([`prejudge`], [`judge`]).
//! - [`memory`]: what a writer thread remembers between submits (no SQL).

mod guard;
mod memory;

use rusqlite::{params, Connection};

use super::{new_id, StoreError};
use crate::domain::rules::similarity::SimilarityProbe;

#[cfg(test)]
pub(crate) use guard::LIVE_SCAN_LIMIT;
pub(crate) use guard::{judge, note_inserted, prejudge, InsertedRow, Verdict};

/// A submission row to insert.
pub(crate) struct NewSubmission<'a> {
    pub operation_id: &'a str,
    pub operation_type: &'a str,
    pub project_path_key: &'a str,
    pub prompt_hash: &'a str,
    pub prompt_normalized: &'a str,
    pub has_input_items: bool,
    /// Already serialised JSON array.
    pub resource_keys: &'a str,
}

/// Inserts a submission and returns its id (`sub_<hex>`) and rowid.
pub(crate) fn insert(
    conn: &Connection,
    new: &NewSubmission<'_>,
    now: i64,
) -> Result<(String, i64), StoreError> {
    let submission_id = new_id("sub");
    conn.prepare_cached(
        "INSERT INTO codex_prompt_submissions (submission_id, operation_id, operation_type, project_path_key, \
         prompt_hash, prompt_normalized, has_input_items, resource_keys_json, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'submitted', ?9, ?9)",
    )?
    .execute(params![
        submission_id,
        new.operation_id,
        new.operation_type,
        new.project_path_key,
        new.prompt_hash,
        new.prompt_normalized,
        new.has_input_items,
        new.resource_keys,
        now,
    ])?;
    Ok((submission_id, conn.last_insert_rowid()))
}

/// A completed, non-archived operation in `scope` whose prompt matches (same hash, or similarity ≥ 0.90 among
/// the 50 most recent completed ones): the thread a `start_chat` with `allow_historical_continuation` continues.
/// Returns `(operation_id, thread_id, similarity)`.
pub(crate) fn find_historical_match(
    conn: &Connection,
    scope: &str,
    normalized: &str,
    hash: &str,
) -> Result<Option<(String, String, f64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.operation_id, o.thread_id, s.prompt_hash, s.prompt_normalized FROM codex_prompt_submissions s \
         JOIN codex_operations o ON o.operation_id = s.operation_id \
         WHERE s.project_path_key = ?1 AND o.status = 'completed' AND o.thread_id IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM codex_thread_lifecycle_actions a WHERE a.thread_id = o.thread_id \
             AND a.action_type = 'archive' AND a.status = 'completed' \
             AND NOT EXISTS (SELECT 1 FROM codex_thread_lifecycle_actions u WHERE u.thread_id = a.thread_id \
                 AND u.action_type = 'unarchive' AND u.status = 'completed' AND u.created_at > a.created_at)) \
         ORDER BY s.created_at DESC LIMIT 50",
    )?;
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([scope], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut best: Option<(String, String, f64)> = None;
    let mut probe: Option<SimilarityProbe<'_>> = None;
    for (operation_id, thread_id, candidate_hash, candidate) in rows {
        let score = if candidate_hash == hash {
            Some(1.0)
        } else {
            probe
                .get_or_insert_with(|| SimilarityProbe::new(normalized))
                .at_least(&candidate, 0.90)
        };
        if let Some(score) = score {
            if best.as_ref().is_none_or(|(_, _, b)| score > *b) {
                best = Some((operation_id, thread_id, score));
            }
        }
    }
    Ok(best)
}
