//! The duplicate-prompt guard's reads: a scope's live rows (through indexes alone), the prompts to compare (from
//! [`memory`] or read once), the decision ([`crate::domain::rules::dedup`]), and the two halves of an insert's
//! guard: [`prejudge`] on a read snapshot before the write lock, [`judge`] under it, trusting the earlier answer
//! only while the scope's version (V13) has not moved.

use std::rc::Rc;

use rusqlite::{params, Connection, OptionalExtension};

use super::memory::{self, LiveKey, Position, ScopeRows, SubmittedPrompt};
use crate::domain::operation::OperationStatus;
use crate::domain::rules::dedup::{
    find_active_duplicate as decide, DedupCandidate, DedupProbe, DuplicateMatch, SAME_HASH_LIMIT,
    SIMILARITY_WINDOW,
};
use crate::domain::rules::status::{ACTIVE, STARTABLE};
use crate::store::StoreError;

fn live_list() -> String {
    crate::store::sql_status_list(&[&STARTABLE[..], &ACTIVE[..]].concat())
}

/// A candidate: the index of its key, its prompt and its submission's position `(created_at, rowid)` in the scope.
type Positioned = (usize, Rc<SubmittedPrompt>, Position);

/// Past this many live rows in one scope the guard reads the window instead ([`windowed_keys`]). Finding the live
/// rows costs index pages only and their prompts come from [`memory::SEEN`], so the live path stays the cheaper one
/// for queues far longer than the window (store bench: a scope growing from 200 to 700 live rows); the bound keeps
/// what one submit reads finite, and below [`memory::SEEN_PROMPTS`] so a long queue does not churn the cache.
pub(crate) const LIVE_SCAN_LIMIT: usize = 1_000;

/// Most recent first, as the seed walks them.
fn most_recent_first(mut rows: Vec<Positioned>) -> Vec<Positioned> {
    rows.sort_by_key(|candidate| std::cmp::Reverse(candidate.2));
    rows
}

/// The submission `submission_id` (table row `rowid`), from this thread's cache or read once.
fn submitted_prompt(
    conn: &Connection,
    submission_id: &str,
    rowid: i64,
) -> Result<Rc<SubmittedPrompt>, StoreError> {
    if let Some(seen) = memory::seen(submission_id) {
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
    memory::remember(submission_id, Rc::clone(&prompt));
    Ok(prompt)
}

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
    keys: &[LiveKey],
    probe: &DedupProbe<'_>,
    cutoff: Position,
) -> Result<Vec<Positioned>, StoreError> {
    let mut rows = Vec::with_capacity(keys.len());
    for (index, (submission_id, rowid, ..)) in keys.iter().enumerate() {
        let prompt = submitted_prompt(conn, submission_id, *rowid)?;
        let position = (prompt.created_at, *rowid);
        if prompt.hash != probe.hash && position < cutoff {
            continue;
        }
        rows.push((index, prompt, position));
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
            "SELECT {LIVE_KEYS} FROM ({}) w \
               JOIN codex_prompt_submissions s ON s.rowid = w.rid \
               JOIN codex_operations o ON o.operation_id = s.operation_id \
               LEFT JOIN tracked_turns t ON t.turn_id = o.turn_id \
             WHERE {live} \
             UNION {same_hash}",
            recent_window("rowid AS rid")
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

/// The SQL selecting `columns` of the scope's (`?1`) [`SIMILARITY_WINDOW`] most recent submissions, any status,
/// most recent first (a covering index range; the rowid breaks ties between rows of the same millisecond).
fn recent_window(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM codex_prompt_submissions WHERE project_path_key = ?1 \
         ORDER BY created_at DESC, rowid DESC LIMIT {SIMILARITY_WINDOW}"
    )
}

/// `(created_at, rowid)` of the scope's window ([`recent_window`]), oldest first.
fn recent_positions(conn: &Connection, scope: &str) -> Result<Vec<Position>, StoreError> {
    let mut recent: Vec<Position> = conn
        .prepare_cached(&recent_window("created_at, rowid"))?
        .query_map([scope], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    recent.reverse();
    Ok(recent)
}

/// This thread's view of `scope` if it is at `version` (and its pending insert, if any, is committed).
fn cached_view(
    conn: &Connection,
    scope: &str,
    version: i64,
) -> Result<Option<ScopeRows>, StoreError> {
    let Some(pending) = memory::view_at(scope, version) else {
        return Ok(None);
    };
    if let Some((rowid, submission_id)) = pending {
        let committed = conn
            .prepare_cached("SELECT submission_id FROM codex_prompt_submissions WHERE rowid = ?1")?
            .query_row([rowid], |r| r.get::<_, String>(0))
            .optional()?
            .is_some_and(|found| found == submission_id);
        memory::settle_view(scope, committed);
        if !committed {
            return Ok(None);
        }
    }
    Ok(memory::view_rows(scope))
}

/// The scope's live keys and window start: from this thread's view when `version` (a committed snapshot's) matches
/// it, else read (and kept when `version` is given). `None` when the scope has more live rows than
/// [`LIVE_SCAN_LIMIT`].
fn live_rows(
    conn: &Connection,
    scope: &str,
    version: Option<i64>,
) -> Result<Option<ScopeRows>, StoreError> {
    if let Some(version) = version {
        if let Some(view) = cached_view(conn, scope, version)? {
            return Ok(Some(view));
        }
    }
    let Some(keys) = live_keys(conn, scope, LIVE_SCAN_LIMIT)? else {
        memory::forget_view(scope);
        return Ok(None);
    };
    let keys = Rc::new(keys);
    if keys.is_empty() {
        // Nothing to compare (a new project, an idle one): no window to read, no view worth keeping.
        memory::forget_view(scope);
        return Ok(Some((keys, memory::START_OF_TIME)));
    }
    let recent = recent_positions(conn, scope)?;
    let start = memory::window_start(&recent);
    if let Some(version) = version {
        memory::keep_view(scope, version, Rc::clone(&keys), recent);
    }
    Ok(Some((keys, start)))
}

/// What [`note_inserted`] needs of a submission this thread just wrote.
pub(crate) struct InsertedRow<'a> {
    pub submission_id: &'a str,
    pub rowid: i64,
    pub operation_id: &'a str,
    pub thread_id: Option<&'a str>,
    pub status: OperationStatus,
    pub normalized: &'a str,
    pub hash: &'a str,
    pub resource_keys: &'a [String],
    pub created_at: i64,
}

/// Advances this thread's view of `scope` past a submission just inserted in the current write transaction, when
/// the view was at `judged` (the version the guard saw under this transaction's lock, before the insert): nothing
/// but this transaction has changed the scope since, so the view plus this row is the scope at its new version.
/// The next submit then reads no live rows at all when no other process touched the scope meanwhile.
pub(crate) fn note_inserted(
    conn: &Connection,
    scope: &str,
    judged: i64,
    row: &InsertedRow<'_>,
) -> Result<(), StoreError> {
    memory::for_database(conn.path().unwrap_or_default());
    if !memory::view_settled_at(scope, judged) {
        return Ok(());
    }
    if !(row.status.is_startable() || row.status.is_active()) {
        // Not a live row: the guard would not list it. Read the scope afresh next time.
        memory::forget_view(scope);
        return Ok(());
    }
    let version = scope_version(conn, scope)?;
    memory::remember(
        row.submission_id,
        Rc::new(SubmittedPrompt {
            normalized: row.normalized.to_string(),
            hash: row.hash.to_string(),
            resource_keys: row.resource_keys.to_vec(),
            created_at: row.created_at,
        }),
    );
    let key = (
        row.submission_id.to_string(),
        row.rowid,
        row.operation_id.to_string(),
        row.thread_id.map(str::to_string),
        None,
        row.status.as_str().to_string(),
    );
    memory::advance_view(
        scope,
        version,
        key,
        (row.created_at, row.rowid),
        LIVE_SCAN_LIMIT,
    );
    Ok(())
}

/// The best active duplicate of `probe` in `scope`, if any.
///
/// Same-hash candidates are the scope's live rows with that hash; similarity candidates are the scope's live rows
/// among its [`SIMILARITY_WINDOW`] most recent (skipped when the request has input items). Rows that are not live
/// could never be reported, so they are never loaded.
fn find_active_duplicate(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
) -> Result<Option<DuplicateMatch>, StoreError> {
    find_in(conn, scope, probe, None)
}

/// [`find_active_duplicate`], through this thread's view of the scope when `version` is the scope's version in the
/// committed snapshot `conn` reads.
fn find_in(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
    version: Option<i64>,
) -> Result<Option<DuplicateMatch>, StoreError> {
    let (keys, cutoff) = match live_rows(conn, scope, version)? {
        Some((keys, _)) if keys.is_empty() => return Ok(None),
        Some((keys, _)) if probe.has_input_items => (keys, (i64::MAX, i64::MAX)),
        Some((keys, start)) => (keys, start),
        // Every row read is in the window or has the probe's hash.
        None => (
            Rc::new(windowed_keys(conn, scope, probe)?),
            memory::START_OF_TIME,
        ),
    };
    let picked = candidates(conn, &keys, probe, cutoff)?;
    let rows: Vec<DedupCandidate<'_>> = picked
        .iter()
        .take(SAME_HASH_LIMIT + SIMILARITY_WINDOW)
        .map(|(index, prompt, _)| {
            let (submission_id, _, operation_id, thread_id, turn_id, status) = &keys[*index];
            DedupCandidate {
                submission_id,
                operation_id,
                thread_id: thread_id.as_deref(),
                turn_id: turn_id.as_deref(),
                status,
                normalized: &prompt.normalized,
                hash: &prompt.hash,
                resource_keys: &prompt.resource_keys,
            }
        })
        .collect();
    Ok(decide(probe, &rows))
}

/// The duplicate guard's answer for a scope on some snapshot, with the scope's version in that snapshot.
#[derive(Debug)]
pub(crate) struct Verdict {
    version: i64,
    found: Option<DuplicateMatch>,
}

/// The version of `scope` in `codex_dedup_scopes` (0 for a scope never written), which every change to what the
/// guard reads of the scope bumps (migration V13's triggers).
fn scope_version(conn: &Connection, scope: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM codex_dedup_scopes WHERE project_path_key = ?1")?
        .query_row([scope], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The guard's answer on a read snapshot taken outside any write lock (the writer connection between two write
/// transactions): the scope's version and [`find_active_duplicate`] read together, so [`judge`] can tell under the
/// lock whether the answer still holds.
pub(crate) fn prejudge(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
) -> Result<Verdict, StoreError> {
    memory::for_database(conn.path().unwrap_or_default());
    // One snapshot for both reads; read-only, so dropping it (a rollback) ends it.
    let snapshot = conn.unchecked_transaction()?;
    let version = scope_version(&snapshot, scope)?;
    let found = find_in(&snapshot, scope, probe, Some(version))?;
    Ok(Verdict { version, found })
}

/// The guard's answer inside the write transaction, with the scope's version it was reached at: `earlier`'s when
/// the scope has not changed since (the same version: nothing the guard reads differs), else read again under the
/// lock. The similarity pass, the costly part of a submit into a long queue, thus usually runs while other
/// processes may write.
pub(crate) fn judge(
    conn: &Connection,
    scope: &str,
    probe: &DedupProbe<'_>,
    earlier: Option<Verdict>,
) -> Result<Verdict, StoreError> {
    memory::for_database(conn.path().unwrap_or_default());
    let version = scope_version(conn, scope)?;
    if let Some(earlier) = earlier.filter(|earlier| earlier.version == version) {
        return Ok(earlier);
    }
    // Not through this thread's views: this transaction may already have written to the scope.
    let found = find_active_duplicate(conn, scope, probe)?;
    Ok(Verdict { version, found })
}

impl Verdict {
    /// The duplicate found, if any.
    pub(crate) fn found(self) -> Option<DuplicateMatch> {
        self.found
    }

    /// The scope's version the answer was reached at.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::memory::{Seen, SEEN, SEEN_BYTES};
    use super::*;
    use crate::store::operations::tests::chat;
    use crate::store::operations::InsertOutcome;
    use crate::store::test_support::temp_store;

    const PROMPT: &str = "Please refactor the storage layer to use WAL mode and add tests";

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

    fn version(conn: &Connection, scope: &str) -> i64 {
        scope_version(conn, scope).expect("version")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_thread_serving_two_databases_never_mixes_their_scopes() {
        // Point writes run on the caller's thread, so one thread may serve two stores. Their scopes may share a
        // path and reach the same version with different rows: a view of one must never answer for the other.
        let (_dir_a, a) = temp_store();
        let (_dir_b, b) = temp_store();
        a.insert_operation(chat(PROMPT, None))
            .await
            .expect("first in a");
        let again = a.insert_operation(chat(PROMPT, None)).await;
        assert!(
            matches!(again, Err(StoreError::DuplicatePromptActive(_))),
            "{again:?}"
        );
        // Another process brings b's scope to the version this thread's view of a's is at, with another prompt.
        let path = b.path().to_path_buf();
        std::thread::spawn(move || {
            let conn = Connection::open(&path).expect("open b");
            let tx = conn.unchecked_transaction().expect("begin");
            let other = chat(
                "Write a haiku about the sea and the sky at night, please",
                None,
            );
            crate::store::operations::insert(&tx, &other, 1).expect("insert into b");
            assert_eq!(version(&tx, "/p"), 2);
            tx.commit().expect("commit");
        })
        .join()
        .expect("other process");
        let created = b.insert_operation(chat(PROMPT, None)).await;
        assert!(
            matches!(created, Ok(InsertOutcome::Created { .. })),
            "{created:?}"
        );
    }

    #[test]
    fn a_scope_version_moves_with_everything_the_guard_reads_and_nothing_else() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|conn| {
                let op = crate::store::operations::insert(conn, &chat(PROMPT, None), 1)?
                    .operation()
                    .operation_id
                    .clone();
                // The operation and its submission: one bump each.
                assert_eq!(version(conn, "/p"), 2);
                let steps: [(&str, bool); 12] = [
                    ("UPDATE codex_operations SET updated_at = 99 WHERE operation_id = ?1", false),
                    ("UPDATE codex_operations SET status = 'queued' WHERE operation_id = ?1", false),
                    ("UPDATE codex_operations SET status = 'running' WHERE operation_id = ?1", true),
                    ("UPDATE codex_operations SET thread_id = 'thr_1' WHERE operation_id = ?1", true),
                    (
                        "INSERT INTO tracked_turns (turn_id, thread_id, status, created_at, updated_at) \
                         VALUES ('turn_x', 'thr_1', 'inProgress', 1, 1)",
                        false,
                    ),
                    ("UPDATE codex_operations SET turn_id = 'turn_x' WHERE operation_id = ?1", true),
                    ("UPDATE tracked_turns SET updated_at = 5 WHERE turn_id = 'turn_x'", false),
                    ("UPDATE tracked_turns SET status = 'completed' WHERE turn_id = 'turn_x'", true),
                    ("UPDATE codex_prompt_submissions SET status = 'done' WHERE operation_id = ?1", false),
                    (
                        "UPDATE codex_prompt_submissions SET resource_keys_json = '[\"k\"]' \
                         WHERE operation_id = ?1",
                        true,
                    ),
                    ("DELETE FROM tracked_turns WHERE turn_id = 'turn_x'", true),
                    ("DELETE FROM codex_operations WHERE operation_id = ?1", true),
                ];
                for (sql, bumps) in steps {
                    let before = version(conn, "/p");
                    if sql.contains("?1") {
                        conn.execute(sql, [&op])?;
                    } else {
                        conn.execute(sql, [])?;
                    }
                    let after = version(conn, "/p");
                    assert_eq!(after > before, bumps, "{sql}: {before} -> {after}");
                }
                // Another scope's writes leave this one alone.
                let before = version(conn, "/p");
                let mut elsewhere = chat(PROMPT, None);
                elsewhere.project_path_key = "/q".into();
                crate::store::operations::insert(conn, &elsewhere, 2)?;
                assert_eq!(version(conn, "/p"), before);
                assert_eq!(version(conn, "/q"), 2);
                Ok(())
            })
            .expect("write");
    }

    fn probe_of<'a>(normalized: &'a str, hash: &'a str) -> DedupProbe<'a> {
        DedupProbe {
            normalized,
            hash,
            has_input_items: false,
            resource_keys: &[],
        }
    }

    #[test]
    fn an_answer_reached_before_the_lock_holds_only_while_its_scope_is_unchanged() {
        use crate::domain::rules::prompt::{normalize_prompt, prompt_hash};
        // Two stores on one file, as two processes: the second writes between the first's two halves.
        let (dir, first) = temp_store();
        let second = crate::store::Store::open(&dir.path().join("state.sqlite3")).expect("second");
        let normalized = normalize_prompt(PROMPT);
        let hash = prompt_hash(&normalized);
        // Outside any transaction, as the writer thread runs it before taking the lock.
        let outside = Connection::open(dir.path().join("state.sqlite3")).expect("connection");
        let early = prejudge(&outside, "/p", &probe_of(&normalized, &hash)).expect("prejudge");
        assert!(early.found.is_none());
        // A write to another scope keeps the answer (and it is reused, not recomputed: a planted answer comes back).
        let mut elsewhere = chat(PROMPT, None);
        elsewhere.project_path_key = "/q".into();
        second
            .write_blocking(move |conn| crate::store::operations::insert(conn, &elsewhere, 1))
            .expect("elsewhere");
        let planted = Verdict {
            version: early.version,
            found: Some(DuplicateMatch {
                existing_operation_id: "op_planted".into(),
                existing_chat_id: None,
                existing_thread_id: None,
                existing_turn_id: None,
                existing_status: "queued".into(),
                duplicate_of_submission_id: "sub_planted".into(),
                similarity: 1.0,
                dedup_decision: "blocked_active_duplicate".into(),
                next_recommended_action: "poll_existing_turn".into(),
            }),
        };
        let (n, h) = (normalized.clone(), hash.clone());
        let reused = first
            .write_blocking(move |conn| judge(conn, "/p", &probe_of(&n, &h), Some(planted)))
            .expect("judge")
            .found();
        assert_eq!(reused.expect("reused").existing_operation_id, "op_planted");
        // The same prompt written to this scope by the other process: the early "no duplicate" is read again.
        let theirs = second
            .write_blocking(|conn| crate::store::operations::insert(conn, &chat(PROMPT, None), 2))
            .expect("theirs")
            .operation()
            .operation_id
            .clone();
        let found = first
            .write_blocking(move |conn| {
                judge(conn, "/p", &probe_of(&normalized, &hash), Some(early))
            })
            .expect("judge")
            .found()
            .expect("the other process's prompt");
        assert_eq!(found.existing_operation_id, theirs);
    }

    #[test]
    fn a_view_advanced_past_a_rolled_back_insert_is_not_trusted_at_the_same_version() {
        use crate::store::operations::{insert_prepared, prepare};
        // This thread plays one process's writer (its own connection and thread-local views); a second store
        // plays another process.
        let (dir, other) = temp_store();
        let conn = Connection::open(dir.path().join("state.sqlite3")).expect("connection");
        let ours = chat(
            "Write a haiku about the sea at night, with a harbour in it",
            None,
        );
        let prepared = prepare(Some(&conn), &ours).expect("prepare");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        insert_prepared(&conn, &ours, prepared, 1).expect("insert");
        // The view now stands past this insert, at the version it reached; the transaction then rolls back.
        let advanced = version(&conn, "/p");
        conn.execute_batch("ROLLBACK").expect("rollback");
        // The other process writes one operation and its submission: the same number of bumps, so the scope
        // reaches the very version the view was advanced to (and the submission likely the same rowid).
        other
            .write_blocking(|tx| crate::store::operations::insert(tx, &chat(PROMPT, None), 2))
            .expect("the other process's insert");
        assert_eq!(version(&conn, "/p"), advanced);
        // A prompt close to the other process's is still caught: the view is re-read, not trusted.
        let near = "Please refactor the storage layer to use WAL mode and add unit tests";
        let found = prepare(Some(&conn), &chat(near, None)).and_then(|prepared| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let outcome = insert_prepared(&conn, &chat(near, None), prepared, 3);
            conn.execute_batch("ROLLBACK")?;
            outcome
        });
        match found {
            Err(StoreError::DuplicatePromptActive(found)) => assert!(found.similarity > 0.95),
            other => panic!("expected DuplicatePromptActive, got {other:?}"),
        }
    }

    #[test]
    fn a_view_follows_this_threads_inserts_and_sees_another_process_write() {
        use crate::store::operations::{insert_prepared, prepare};
        let (dir, other) = temp_store();
        let conn = Connection::open(dir.path().join("state.sqlite3")).expect("connection");
        let submit = |text: &str, now: i64| {
            let new = chat(text, None);
            let prepared = prepare(Some(&conn), &new)?;
            let tx = conn.unchecked_transaction()?;
            let outcome = insert_prepared(&tx, &new, prepared, now)?;
            tx.commit()?;
            Ok::<_, StoreError>(outcome)
        };
        // Three prompts of this thread: each submit after the first finds the view at the scope's version.
        for (n, text) in [
            "Write a haiku about the sea at night, with a harbour in it",
            "Document the deployment steps for the web tier and the queue",
            "Profile the nightly import job and report the slowest stage",
        ]
        .into_iter()
        .enumerate()
        {
            submit(text, n as i64).expect("submit");
        }
        // The same prompt again: refused from the view alone.
        match submit(
            "Document the deployment steps for the web tier and the queue",
            9,
        ) {
            Err(StoreError::DuplicatePromptActive(found)) => assert_eq!(found.similarity, 1.0),
            other => panic!("expected DuplicatePromptActive, got {other:?}"),
        }
        // The other process adds one; this thread's next submit sees it (the version moved).
        other
            .write_blocking(|tx| crate::store::operations::insert(tx, &chat(PROMPT, None), 10))
            .expect("the other process's insert");
        match submit(
            "Please refactor the storage layer to use WAL mode and add unit tests",
            11,
        ) {
            Err(StoreError::DuplicatePromptActive(found)) => assert!(found.similarity > 0.95),
            other => panic!("expected DuplicatePromptActive, got {other:?}"),
        }
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
