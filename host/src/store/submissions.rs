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
//! submission id ([`SubmittedPrompt`]). A submit therefore reads the table rows of only the submissions its
//! thread has not seen yet: those other processes wrote since its previous submit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rusqlite::{params, Connection, OptionalExtension};

use super::{new_id, StoreError};
use crate::domain::rules::dedup::{
    find_active_duplicate as decide, DedupCandidate, DedupProbe, DuplicateMatch, SAME_HASH_LIMIT,
    SIMILARITY_WINDOW,
};
use crate::domain::rules::similarity::SimilarityProbe;
use crate::domain::rules::status::{ACTIVE, STARTABLE};

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

/// Inserts a submission and returns its id (`sub_<hex>`).
pub(crate) fn insert(
    conn: &Connection,
    new: &NewSubmission<'_>,
    now: i64,
) -> Result<String, StoreError> {
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
    Ok(submission_id)
}

fn live_list() -> String {
    super::sql_status_list(&[&STARTABLE[..], &ACTIVE[..]].concat())
}

/// A candidate with its submission's position `(created_at, rowid)` in the scope.
type Positioned = (DedupCandidate, (i64, i64));

/// Past this many live rows in one scope the guard reads the window instead ([`windowed_keys`]). Finding
/// the live rows costs index pages only and their prompts come from [`SEEN`], so the live path stays the cheaper
/// one for queues far longer than the window (store bench: a scope growing from 200 to 700 live rows); the
/// bound keeps what one submit reads finite, and below [`SEEN_PROMPTS`] so a long queue does not churn the cache.
pub(crate) const LIVE_SCAN_LIMIT: usize = 1_000;

/// Most recent first, as the seed walks them.
fn most_recent_first(mut rows: Vec<Positioned>) -> Vec<Positioned> {
    rows.sort_by_key(|candidate| std::cmp::Reverse(candidate.1));
    rows
}

/// What the guard compares of a submission; none of it changes once the row is written.
struct SubmittedPrompt {
    normalized: String,
    hash: String,
    resource_keys: Vec<String>,
    created_at: i64,
}

/// How many [`SubmittedPrompt`]s one thread keeps; past it the map starts over.
const SEEN_PROMPTS: usize = 2_048;
/// How many bytes of prompt text one thread keeps (prompts may be pasted logs or plans); past it the map starts
/// over.
const SEEN_BYTES: usize = 2 << 20;

/// Submissions this thread has read, by submission id (random, never reused, unlike a rowid), and the bytes of
/// text they hold. Only ever grows by rows read inside a transaction, so an entry is the row as committed.
#[derive(Default)]
struct Seen {
    prompts: HashMap<String, Rc<SubmittedPrompt>>,
    bytes: usize,
}

thread_local! {
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
}

/// The submission `submission_id` (table row `rowid`), from this thread's cache or read once.
fn submitted_prompt(
    conn: &Connection,
    submission_id: &str,
    rowid: i64,
) -> Result<Rc<SubmittedPrompt>, StoreError> {
    if let Some(seen) = SEEN.with(|seen| seen.borrow().prompts.get(submission_id).cloned()) {
        return Ok(seen);
    }
    let (normalized, hash, keys, created_at): (String, String, String, i64) = conn
        .prepare_cached(
            "SELECT prompt_normalized, prompt_hash, resource_keys_json, created_at \
             FROM codex_prompt_submissions WHERE rowid = ?1",
        )?
        .query_row([rowid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let prompt = Rc::new(SubmittedPrompt {
        normalized,
        hash,
        resource_keys: serde_json::from_str(&keys).unwrap_or_default(),
        created_at,
    });
    let bytes = prompt.normalized.len() + submission_id.len();
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.prompts.len() >= SEEN_PROMPTS || seen.bytes + bytes > SEEN_BYTES {
            *seen = Seen::default();
        }
        if bytes <= SEEN_BYTES {
            seen.bytes += bytes;
            seen.prompts
                .insert(submission_id.to_string(), Rc::clone(&prompt));
        }
    });
    Ok(prompt)
}

/// A live row as the indexes give it: its submission's id and rowid, then its operation's id, thread, turn and
/// effective status.
type LiveKey = (String, i64, String, Option<String>, Option<String>, String);

/// The index-only columns of a [`LiveKey`].
const LIVE_KEYS: &str =
    "s.submission_id, s.rowid, s.operation_id, o.thread_id, o.turn_id, COALESCE(t.status, o.status)";

/// A row selected with [`LIVE_KEYS`].
fn live_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<LiveKey> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// Every row of `scope` whose effective status (turn > operation) may be live: operations of the scope in a live
/// status (index on `(project_path_key, status, ...)`), plus operations of the scope whose tracked turn is live
/// (index on the turn status) and whose own status is not (the two sets are disjoint, so no sort merges them).
/// Usually a handful; `None` when there are more than `limit` (a long queue in one project), which are not read.
fn live_keys(
    conn: &Connection,
    scope: &str,
    limit: usize,
) -> Result<Option<Vec<LiveKey>>, StoreError> {
    let live = live_list();
    // The limit is spelled into the SQL: a bound one would be a parameter the plan depends on.
    let sql = format!(
        "SELECT {LIVE_KEYS} FROM codex_operations o \
           JOIN codex_prompt_submissions s ON s.operation_id = o.operation_id \
           LEFT JOIN tracked_turns t ON t.turn_id = o.turn_id \
         WHERE o.project_path_key = ?1 AND o.status IN ({live}) \
         UNION ALL \
         SELECT {LIVE_KEYS} FROM tracked_turns t \
           JOIN codex_operations o ON o.turn_id = t.turn_id \
           JOIN codex_prompt_submissions s ON s.operation_id = o.operation_id \
         WHERE t.status IN ({live}) AND o.project_path_key = ?1 AND o.status NOT IN ({live}) \
         LIMIT {}",
        limit.saturating_add(1)
    );
    let keys: Vec<LiveKey> = conn
        .prepare_cached(&sql)?
        .query_map([scope], live_key)?
        .collect::<Result<_, _>>()?;
    Ok((keys.len() <= limit).then_some(keys))
}

/// The rows among `keys` that the guard compares, with their prompts (from this thread's cache or read once):
/// those with the probe's hash, and those at or after `cutoff` (the oldest position of the scope's window).
fn candidates(
    conn: &Connection,
    keys: Vec<LiveKey>,
    probe: &DedupProbe<'_>,
    cutoff: (i64, i64),
) -> Result<Vec<Positioned>, StoreError> {
    let mut rows = Vec::with_capacity(keys.len());
    for (submission_id, rowid, operation_id, thread_id, turn_id, status) in keys {
        let prompt = submitted_prompt(conn, &submission_id, rowid)?;
        let position = (prompt.created_at, rowid);
        if prompt.hash != probe.hash && position < cutoff {
            continue;
        }
        rows.push((
            DedupCandidate {
                submission_id,
                operation_id,
                thread_id,
                turn_id,
                status,
                normalized: prompt.normalized.clone(),
                hash: prompt.hash.clone(),
                resource_keys: prompt.resource_keys.clone(),
            },
            position,
        ));
    }
    Ok(most_recent_first(rows))
}

/// The live rows the guard compares, read from the other side when a scope has many live rows: the scope's
/// [`SIMILARITY_WINDOW`] most recent submissions (index on `(project_path_key, created_at)`) and its rows with the
/// probe's hash (index on `(project_path_key, prompt_hash)`), each kept when its effective status is live. At most
/// the window plus the same-hash rows are read, however long the queue.
fn windowed_keys(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
) -> Result<Vec<LiveKey>, StoreError> {
    let live = effective_status_is_live();
    let same_hash = format!(
        "SELECT {LIVE_KEYS} FROM codex_prompt_submissions s \
           JOIN codex_operations o ON o.operation_id = s.operation_id \
           LEFT JOIN tracked_turns t ON t.turn_id = o.turn_id \
         WHERE s.project_path_key = ?1 AND s.prompt_hash = ?2 AND {live}"
    );
    let sql = if probe.has_input_items {
        same_hash
    } else {
        format!(
            "SELECT {LIVE_KEYS} FROM \
               (SELECT rowid AS rid FROM codex_prompt_submissions WHERE project_path_key = ?1 \
                ORDER BY created_at DESC, rowid DESC LIMIT {SIMILARITY_WINDOW}) w \
               JOIN codex_prompt_submissions s ON s.rowid = w.rid \
               JOIN codex_operations o ON o.operation_id = s.operation_id \
               LEFT JOIN tracked_turns t ON t.turn_id = o.turn_id \
             WHERE {live} \
             UNION {same_hash}"
        )
    };
    let keys = conn
        .prepare_cached(&sql)?
        .query_map(params![scope, probe.hash], live_key)?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// The SQL condition "the effective status (turn > operation) is active or startable".
fn effective_status_is_live() -> String {
    format!("COALESCE(t.status, o.status) IN ({})", live_list())
}

/// `(created_at, rowid)` of the oldest row in the scope's [`SIMILARITY_WINDOW`] most recent rows (a covering
/// index seek; the rowid breaks ties between rows of the same millisecond).
fn window_start(conn: &Connection, scope: &str) -> Result<(i64, i64), StoreError> {
    let sql = format!(
        "SELECT created_at, rowid FROM codex_prompt_submissions WHERE project_path_key = ?1 \
         ORDER BY created_at DESC, rowid DESC LIMIT 1 OFFSET {}",
        SIMILARITY_WINDOW - 1
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([scope], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((i64::MIN, i64::MIN)))
}

/// The best active duplicate of `probe` in `scope`, if any.
///
/// Same-hash candidates are the scope's live rows with that hash; similarity candidates are the scope's live rows
/// among its [`SIMILARITY_WINDOW`] most recent (skipped when the request has input items). Rows that are not live
/// could never be reported, so they are never loaded.
pub(crate) fn find_active_duplicate(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
) -> Result<Option<DuplicateMatch>, StoreError> {
    let (keys, cutoff) = match live_keys(conn, scope, LIVE_SCAN_LIMIT)? {
        Some(keys) if keys.is_empty() => return Ok(None),
        Some(keys) => {
            let cutoff = if probe.has_input_items {
                (i64::MAX, i64::MAX)
            } else {
                window_start(conn, scope)?
            };
            (keys, cutoff)
        }
        // Every row read is in the window or has the probe's hash.
        None => (windowed_keys(conn, scope, probe)?, (i64::MIN, i64::MIN)),
    };
    let candidates = candidates(conn, keys, probe, cutoff)?;
    let rows: Vec<DedupCandidate> = candidates
        .into_iter()
        .map(|(candidate, _)| candidate)
        .take(SAME_HASH_LIMIT + SIMILARITY_WINDOW)
        .collect();
    Ok(decide(probe, &rows))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::operations::tests::chat;
    use crate::store::test_support::temp_store;

    fn submission_of(conn: &Connection, text_len: usize) -> (String, i64) {
        let mut new = chat(&"word ".repeat(text_len / 5), None);
        new.dedup_policy = "idempotency_only".into();
        let op = crate::store::operations::insert(conn, &new, 1).expect("insert");
        conn.query_row(
            "SELECT submission_id, rowid FROM codex_prompt_submissions WHERE operation_id = ?1",
            [&op.operation().operation_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("submission")
    }

    #[test]
    fn the_prompt_cache_stays_within_its_byte_budget() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|conn| {
                SEEN.with(|seen| *seen.borrow_mut() = Seen::default());
                let (small, rowid) = submission_of(conn, 100);
                let prompt = submitted_prompt(conn, &small, rowid)?;
                assert!(SEEN.with(|seen| seen.borrow().prompts.contains_key(&small)));
                // Read again: the same entry, no second read.
                assert!(Rc::ptr_eq(&prompt, &submitted_prompt(conn, &small, rowid)?));
                // Larger than the whole budget: answered, never kept.
                let (huge, rowid) = submission_of(conn, SEEN_BYTES + 10);
                submitted_prompt(conn, &huge, rowid)?;
                SEEN.with(|seen| {
                    let seen = seen.borrow();
                    assert!(!seen.prompts.contains_key(&huge));
                    assert!(seen.bytes <= SEEN_BYTES);
                });
                // Past the budget the map starts over rather than growing.
                let mut kept = 0;
                for _ in 0..6 {
                    let (id, rowid) = submission_of(conn, SEEN_BYTES / 4);
                    submitted_prompt(conn, &id, rowid)?;
                    kept = SEEN.with(|seen| seen.borrow().bytes);
                    assert!(kept <= SEEN_BYTES);
                }
                assert!(kept > 0);
                Ok(())
            })
            .expect("write");
    }
}
