//! Admission: may this startable operation start now, given what already runs? The seed's worker checks, in
//! order: the global, project, agent and thread slots, the resource locks, then the write slots of the project.
//!
//! Locks are not rows of their own: they are derived from the slot-holding operations themselves (active, or
//! startable with a live lease), so a lock is released exactly when its operation ends or is recovered, and no
//! lock can outlive a crash. The lock keys are the seed's:
//!
//! - `thread:<id>:active-turn`: one turn per thread (the thread slot);
//! - `resource:<project>:<key>:write` for each of a write turn's `resource_keys`;
//! - `project:<project>:write` for a write turn without resource keys: it covers the whole project, so it
//!   conflicts with every keyed write of the project, and the number of such turns per project is the write
//!   slot limit (`max_active_write_turns_per_project`).
//!
//! A turn "writes" when its sandbox can write (`workspace-write`, `danger-full-access`, or `respect_existing`,
//! which cannot be proven read-only). Read-only turns take no write lock and run side by side.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde::Serialize;

use super::leases::ClaimLimits;
use super::StoreError;
use crate::domain::rules::status::{ACTIVE, STARTABLE};

/// True when a request's sandbox can write (see the module docs).
pub fn sandbox_can_write(request: &serde_json::Value) -> bool {
    let sandbox = request
        .pointer("/runtimePolicy/effectiveSandbox")
        .or_else(|| request.get("sandbox"));
    match sandbox {
        Some(serde_json::Value::String(mode)) => mode != "read-only",
        // `respect_existing` resolves to no effective sandbox: the thread's own may write.
        Some(serde_json::Value::Null) => {
            request.get("sandbox").and_then(|s| s.as_str()) == Some("respect_existing")
        }
        _ => false,
    }
}

/// A slot-holding operation, as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The operation.
    pub operation_id: String,
    /// Canonical project path.
    pub project: String,
    /// Submitting agent.
    pub agent: Option<String>,
    /// Its thread, once known.
    pub thread: Option<String>,
    /// Its sandbox can write.
    pub writes: bool,
    /// Its write-scope keys.
    pub resource_keys: Vec<String>,
    /// When it started (or was created), unix ms.
    pub since: i64,
}

/// The part of a candidate operation admission looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Canonical project path.
    pub project: &'a str,
    /// Submitting agent.
    pub agent: Option<&'a str>,
    /// Its thread, when known.
    pub thread: Option<&'a str>,
    /// Its sandbox can write.
    pub writes: bool,
    /// Its write-scope keys.
    pub resource_keys: &'a [String],
}

/// Slot-holding operations: slot-taking ones that are active, or startable with a live lease. A startable row
/// leased by an owner in `dead` is about to be taken over and holds nothing.
pub fn slot_holders(
    conn: &Connection,
    now: i64,
    dead: &HashSet<String>,
) -> Result<Vec<Holder>, StoreError> {
    let mut stmt = conn.prepare_cached(&slot_holders_sql())?;
    let rows = stmt.query_map([now], |r| {
        Ok((
            Holder {
                operation_id: r.get(0)?,
                project: r.get(1)?,
                agent: r.get(2)?,
                thread: r.get(3)?,
                writes: r.get(6)?,
                resource_keys: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                since: r.get(8)?,
            },
            r.get::<_, Option<String>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (holder, owner, active) = row?;
        if !active && owner.is_some_and(|o| dead.contains(&o)) {
            continue;
        }
        out.push(holder);
    }
    Ok(out)
}

/// The query of [`slot_holders`]. Every claim runs it, so it must read the holders, not the queue: the
/// status-and-lease index (migration V14) finds the leased startable rows without visiting the queued ones.
fn slot_holders_sql() -> String {
    format!(
        "SELECT operation_id, project_path_key, agent_id, thread_id, lease_owner, status IN ({active}), writes, \
         resource_keys_json, COALESCE(started_at, created_at) FROM codex_operations \
         WHERE takes_slot = 1 AND (status IN ({active}) OR (status IN ({startable}) AND lease_owner IS NOT NULL \
         AND lease_expires_at > ?1))",
        active = super::sql_status_list(&ACTIVE),
        startable = super::sql_status_list(&STARTABLE),
    )
}

/// What is held right now, counted for admission decisions.
#[derive(Debug, Default)]
pub struct Occupancy {
    global: usize,
    per_project: HashMap<String, usize>,
    per_agent: HashMap<String, usize>,
    per_thread: HashMap<String, usize>,
    /// Project-wide writers per project.
    project_writers: HashMap<String, usize>,
    /// Keys held by keyed writers, per project.
    keyed_writes: HashMap<String, HashSet<String>>,
}

impl Occupancy {
    /// Counts `holders`.
    pub fn of(holders: &[Holder]) -> Occupancy {
        let mut occupancy = Occupancy::default();
        for holder in holders {
            occupancy.add(holder);
        }
        occupancy
    }

    fn add(&mut self, holder: &Holder) {
        self.global += 1;
        *self.per_project.entry(holder.project.clone()).or_default() += 1;
        if let Some(agent) = &holder.agent {
            *self.per_agent.entry(agent.clone()).or_default() += 1;
        }
        if let Some(thread) = &holder.thread {
            *self.per_thread.entry(thread.clone()).or_default() += 1;
        }
        if holder.writes {
            if holder.resource_keys.is_empty() {
                *self
                    .project_writers
                    .entry(holder.project.clone())
                    .or_default() += 1;
            } else {
                self.keyed_writes
                    .entry(holder.project.clone())
                    .or_default()
                    .extend(holder.resource_keys.iter().cloned());
            }
        }
    }

    /// The seed's queue reason that keeps `candidate` waiting, or `None` when it may start.
    pub fn refuse(&self, candidate: &Candidate<'_>, limits: &ClaimLimits) -> Option<&'static str> {
        let count = |map: &HashMap<String, usize>, key: &str| map.get(key).copied().unwrap_or(0);
        if self.global >= limits.global {
            return Some("global_slot_limit");
        }
        if count(&self.per_project, candidate.project) >= limits.per_project {
            return Some("project_slot_limit");
        }
        if candidate
            .agent
            .is_some_and(|a| count(&self.per_agent, a) >= limits.per_agent)
        {
            return Some("agent_slot_limit");
        }
        if candidate
            .thread
            .is_some_and(|t| count(&self.per_thread, t) >= limits.per_thread)
        {
            return Some("thread_slot_limit");
        }
        if !candidate.writes {
            return None;
        }
        let project_writers = count(&self.project_writers, candidate.project);
        let keyed = self.keyed_writes.get(candidate.project);
        if candidate.resource_keys.is_empty() {
            // A project-wide write covers every key of the project.
            if keyed.is_some_and(|keys| !keys.is_empty()) {
                return Some("resource_lock_conflict");
            }
            if project_writers >= limits.write_per_project {
                return Some("write_project_slot_limit");
            }
            return None;
        }
        if project_writers > 0
            || keyed.is_some_and(|keys| candidate.resource_keys.iter().any(|k| keys.contains(k)))
        {
            return Some("resource_lock_conflict");
        }
        None
    }
}

/// One lock as `codex_get_concurrency_status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLock {
    /// `thread:<id>:active-turn`, `resource:<project>:<key>:write` or `project:<project>:write`.
    pub lock_key: String,
    /// The operation holding it.
    pub operation_id: String,
    /// Since when (unix ms; rendered by the caller).
    pub acquired_at_ms: i64,
}

/// Every lock the slot holders hold now.
pub fn resource_locks(conn: &Connection, now: i64) -> Result<Vec<ResourceLock>, StoreError> {
    let mut locks = Vec::new();
    for holder in slot_holders(conn, now, &HashSet::new())? {
        let lock = |key: String| ResourceLock {
            lock_key: key,
            operation_id: holder.operation_id.clone(),
            acquired_at_ms: holder.since,
        };
        if let Some(thread) = &holder.thread {
            locks.push(lock(format!("thread:{thread}:active-turn")));
        }
        if holder.writes {
            if holder.resource_keys.is_empty() {
                locks.push(lock(format!("project:{}:write", holder.project)));
            } else {
                for key in &holder.resource_keys {
                    locks.push(lock(format!("resource:{}:{key}:write", holder.project)));
                }
            }
        }
    }
    Ok(locks)
}

/// Puts a claimed operation back in the queue because app-server is saturated (`app_server_backpressure`):
/// the claim's attempt is given back, so backpressure never fails an operation.
pub fn requeue_for_backpressure(
    conn: &Connection,
    operation_id: &str,
    error: &serde_json::Value,
    retry_after_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE codex_operations SET status = 'queued', queue_status = 'queued', \
         queued_reason = 'app_server_backpressure', last_error_json = ?2, next_attempt_at = ?3, lease_owner = NULL, \
         lease_expires_at = NULL, attempt_count = MAX(attempt_count - 1, 0), updated_at = ?4 \
         WHERE operation_id = ?1 AND turn_id IS NULL AND status IN ({})",
        super::sql_status_list(&STARTABLE)
    );
    conn.prepare_cached(&sql)?.execute(rusqlite::params![
        operation_id,
        error.to_string(),
        now.saturating_add(retry_after_ms),
        now
    ])?;
    Ok(())
}

/// Marks the due, unleased startable operations as waiting for app-server (`app_server_backpressure`) when the
/// dispatcher holds back its claims; at most `limit` rows.
pub fn mark_backpressure(conn: &Connection, now: i64, limit: usize) -> Result<usize, StoreError> {
    let sql = format!(
        "UPDATE codex_operations SET queued_reason = 'app_server_backpressure' WHERE operation_id IN ( \
         SELECT operation_id FROM codex_operations WHERE status IN ({}) AND next_attempt_at <= ?1 \
         AND lease_owner IS NULL AND COALESCE(queued_reason, '') <> 'app_server_backpressure' LIMIT ?2)",
        super::sql_status_list(&STARTABLE)
    );
    Ok(conn.prepare_cached(&sql)?.execute(rusqlite::params![
        now,
        i64::try_from(limit).unwrap_or(i64::MAX)
    ])?)
}

impl super::Store {
    /// See [`requeue_for_backpressure`].
    pub async fn requeue_for_backpressure(
        &self,
        operation_id: &str,
        error: serde_json::Value,
        retry_after: std::time::Duration,
    ) -> Result<(), StoreError> {
        let id = operation_id.to_string();
        let ms = i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX / 4);
        self.write(move |tx| requeue_for_backpressure(tx, &id, &error, ms, crate::time::now_ms()))
            .await
    }

    /// See [`mark_backpressure`].
    pub async fn mark_backpressure(&self, limit: usize) -> Result<usize, StoreError> {
        self.write(move |tx| mark_backpressure(tx, crate::time::now_ms(), limit))
            .await
    }

    /// Every lock the running operations hold now (see the module docs).
    pub async fn resource_locks(&self) -> Result<Vec<ResourceLock>, StoreError> {
        self.read(|c| resource_locks(c, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(project: &str, writes: bool, keys: &[&str]) -> Holder {
        Holder {
            operation_id: "op".into(),
            project: project.into(),
            agent: None,
            thread: None,
            writes,
            resource_keys: keys.iter().map(|k| k.to_string()).collect(),
            since: 0,
        }
    }

    fn candidate<'a>(writes: bool, keys: &'a [String]) -> Candidate<'a> {
        Candidate {
            project: "/p",
            agent: None,
            thread: None,
            writes,
            resource_keys: keys,
        }
    }

    #[test]
    fn write_turns_queue_per_project_and_keys_decide_overlap() {
        let limits = ClaimLimits::default();
        let none: Vec<String> = Vec::new();
        let a = vec!["a".to_string()];
        let b = vec!["b".to_string()];
        let writer = Occupancy::of(&[holder("/p", true, &[])]);
        assert_eq!(
            writer.refuse(&candidate(true, &none), &limits),
            Some("write_project_slot_limit")
        );
        assert_eq!(writer.refuse(&candidate(false, &none), &limits), None);
        assert_eq!(
            writer.refuse(&candidate(true, &a), &limits),
            Some("resource_lock_conflict")
        );
        let keyed = Occupancy::of(&[holder("/p", true, &["a"])]);
        assert_eq!(keyed.refuse(&candidate(true, &b), &limits), None);
        assert_eq!(
            keyed.refuse(&candidate(true, &a), &limits),
            Some("resource_lock_conflict")
        );
        assert_eq!(
            keyed.refuse(&candidate(true, &none), &limits),
            Some("resource_lock_conflict")
        );
        // Another project is not affected; read-only holders hold no write lock.
        let elsewhere = Occupancy::of(&[holder("/q", true, &[]), holder("/p", false, &[])]);
        assert_eq!(elsewhere.refuse(&candidate(true, &none), &limits), None);
    }

    #[test]
    fn slots_are_checked_before_locks_in_the_seed_order() {
        let limits = ClaimLimits {
            per_project: 1,
            ..ClaimLimits::default()
        };
        let none: Vec<String> = Vec::new();
        let busy = Occupancy::of(&[holder("/p", true, &[])]);
        assert_eq!(
            busy.refuse(&candidate(true, &none), &limits),
            Some("project_slot_limit")
        );
    }

    #[test]
    fn a_sandbox_that_can_write_makes_a_write_turn() {
        use serde_json::json;
        assert!(!sandbox_can_write(&json!({"sandbox": "read-only"})));
        assert!(sandbox_can_write(&json!({"sandbox": "workspace-write"})));
        assert!(sandbox_can_write(
            &json!({"sandbox": "respect_existing", "runtimePolicy": {"effectiveSandbox": null}})
        ));
        assert!(sandbox_can_write(
            &json!({"sandbox": "read-only", "runtimePolicy": {"effectiveSandbox": "workspace-write"}})
        ));
        assert!(!sandbox_can_write(&json!({})));
    }

    /// Virtual-machine steps of one [`slot_holders`] query, which must find exactly `holders` rows.
    async fn holder_query_steps(store: &crate::store::Store, holders: usize) -> i32 {
        store
            .read(move |c| {
                let sql = slot_holders_sql();
                c.prepare_cached(&sql)?
                    .reset_status(rusqlite::StatementStatus::VmStep);
                let found = slot_holders(c, crate::time::now_ms(), &HashSet::new())?;
                assert_eq!(found.len(), holders);
                Ok(c.prepare_cached(&sql)?
                    .get_status(rusqlite::StatementStatus::VmStep))
            })
            .await
            .expect("slot holders")
    }

    async fn queue(store: &crate::store::Store, from: usize, to: usize) {
        for idx in from..to {
            let mut new =
                crate::store::operations::tests::chat(&format!("queued task {idx}"), None);
            new.project_path_key = format!("/p{idx}");
            store.insert_operation(new).await.expect("insert");
        }
    }

    #[tokio::test]
    async fn finding_the_slot_holders_does_not_read_the_queue() {
        // Every claim (so every submit) counts the slot holders; a long queue of unleased rows must not make that
        // slower. One leased row holds a slot; the query's work must stay the same as the queue grows 20x.
        let (_dir, store) = crate::store::test_support::temp_store();
        queue(&store, 0, 1).await;
        let worker = crate::store::leases::WorkerInfo::current(None);
        let owner = worker.owner_id.clone();
        store.register_worker(worker).await.expect("register");
        let limits = ClaimLimits::default();
        store
            .claim_next_operation(
                &owner,
                std::time::Duration::from_secs(60),
                crate::time::now_ms(),
                limits,
            )
            .await
            .expect("claim")
            .expect("claimed");
        queue(&store, 1, 20).await;
        let short = holder_query_steps(&store, 1).await;
        queue(&store, 20, 400).await;
        let long = holder_query_steps(&store, 1).await;
        assert!(
            long <= short + 8,
            "steps grew with the queue: {short} with 20 queued rows, {long} with 400"
        );
    }
}
