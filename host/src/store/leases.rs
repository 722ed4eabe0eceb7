//! Workers (`codex_workers`), leases on operations, heartbeats, and claiming the next operation under the
//! concurrency limits.
//!
//! Several server processes share one database file. Each registers a worker row under its owner id
//! `mcp:<pid>:<uuid hex>` and leases operations with a TTL that heartbeats extend. A lease can be taken over when
//! it has expired, or at once when its owner is **provably dead**: the owner's lock file next to the database
//! ([`super::liveness`]) is no longer locked, which the kernel guarantees once the process is gone. Rows written
//! by owners that hold no lock file (older versions) fall back to the host check: the row was written on this
//! boot of this host and either `/proc/<pid>` is gone or the process now at that pid started at a different time
//! (pid reuse). Such owners on other hosts or boots are only taken over by expiry.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::admission::{slot_holders, Candidate, Occupancy};
use super::operations::{require, Operation};
use super::{Store, StoreError};
use crate::domain::rules::status::{ACTIVE, STARTABLE};

/// Lease lifetime the seed uses; heartbeats every [`HEARTBEAT_INTERVAL`] keep it alive.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(120);
/// How often a worker should heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Startable rows looked at per claim; rows past this wait for the next claim.
const CLAIM_SCAN: usize = 64;

/// Concurrency limits for claims (seed defaults: 4 global, 3 per project, 3 per agent, 1 per thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimLimits {
    /// Operations holding a slot across all processes.
    pub global: usize,
    /// Per canonical project path.
    pub per_project: usize,
    /// Per submitting agent.
    pub per_agent: usize,
    /// Per thread.
    pub per_thread: usize,
    /// Write turns without resource keys per project (the project-wide write lock).
    pub write_per_project: usize,
    /// Claim operations submitted under another config fingerprint (the seed's
    /// `CODEX_MCP_ALLOW_CROSS_CONFIG_RECOVERY=1`); off by default.
    pub allow_cross_config: bool,
}

impl Default for ClaimLimits {
    fn default() -> Self {
        ClaimLimits {
            global: 4,
            per_project: 3,
            per_agent: 3,
            per_thread: 1,
            write_per_project: 1,
            allow_cross_config: false,
        }
    }
}

/// Slots in use right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyCounts {
    /// All slot-holding operations.
    pub global: usize,
    /// By canonical project path.
    pub per_project: BTreeMap<String, usize>,
    /// By agent.
    pub per_agent: BTreeMap<String, usize>,
    /// By thread.
    pub per_thread: BTreeMap<String, usize>,
}

/// This process as a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// `mcp:<pid>:<uuid hex>`.
    pub owner_id: String,
    /// OS process id.
    pub pid: u32,
    /// Hostname and boot id: pids are only comparable within one boot of one host.
    pub host_key: String,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat` field 22), when known.
    pub pid_start_ticks: Option<u64>,
    /// Config fingerprint, for cross-config recovery checks.
    pub config_fingerprint: Option<String>,
    /// Server version.
    pub version: Option<String>,
    /// `worker` for the background worker, `inline` for an MCP server that dispatches itself.
    pub role: String,
}

impl WorkerInfo {
    /// This process, with a fresh owner id.
    pub fn current(config_fingerprint: Option<String>) -> WorkerInfo {
        let pid = std::process::id();
        WorkerInfo {
            owner_id: new_owner_id(),
            pid,
            host_key: host_key(),
            pid_start_ticks: process_start_ticks(pid),
            config_fingerprint,
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            role: "inline".to_string(),
        }
    }
}

/// A fresh owner id for this process: `mcp:<pid>:<uuid hex>`.
pub fn new_owner_id() -> String {
    format!(
        "mcp:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `<hostname>/<boot id>` of this machine (`unknown` parts when /proc is unavailable).
pub fn host_key() -> String {
    static HOST_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST_KEY.get_or_init(read_host_key).clone()
}

fn read_host_key() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string())
    };
    format!(
        "{}/{}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// Start time of `pid` in clock ticks since boot, or `None` when the process does not exist (or /proc is absent).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
    let after = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards; starttime is field 22, i.e. index 19 here.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Registers (or re-registers) a worker as running.
pub fn register_worker(conn: &Connection, worker: &WorkerInfo, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO codex_workers (owner_id, pid, host_key, pid_start_ticks, status, config_fingerprint, version, \
         started_at, last_heartbeat_at, role) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?7, ?8) \
         ON CONFLICT(owner_id) DO UPDATE SET status = 'running', last_heartbeat_at = ?7, stopped_at = NULL",
    )?
    .execute(params![
        worker.owner_id,
        worker.pid,
        worker.host_key,
        worker.pid_start_ticks.map(|t| t as i64),
        worker.config_fingerprint,
        worker.version,
        now,
        worker.role,
    ])?;
    Ok(())
}

/// Whether `owner` is provably dead (see the module docs). Unknown owners and owners on other hosts are not.
pub fn is_owner_dead(conn: &Connection, owner: &str) -> Result<bool, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT pid, host_key, pid_start_ticks, status FROM codex_workers WHERE owner_id = ?1",
        )?
        .query_row([owner], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    let Some((pid, worker_host, start_ticks, status)) = row else {
        return Ok(false);
    };
    if status == "stopped" {
        return Ok(true);
    }
    // The owner's lock file is the proof of life; the host check below is for rows of older versions.
    if let Some(db) = conn.path().filter(|p| !p.is_empty()) {
        match super::liveness::probe(&super::liveness::owner_lock_path(
            std::path::Path::new(db),
            owner,
        )) {
            super::liveness::LockState::Held => return Ok(false),
            super::liveness::LockState::Free => return Ok(true),
            super::liveness::LockState::Missing => {}
        }
    }
    if worker_host != host_key() || worker_host.split('/').any(|part| part == "unknown") {
        return Ok(false);
    }
    let Ok(pid) = u32::try_from(pid) else {
        return Ok(false);
    };
    Ok(match process_start_ticks(pid) {
        None => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Some(now_ticks) => start_ticks.is_some_and(|recorded| recorded as u64 != now_ticks),
    })
}

/// Which of `owners` are provably dead, each distinct owner looked up once: a pass over many rows held by a
/// few owners (recovery, the workflow pump, a claim) asks about each owner, not each row.
pub fn dead_among<'a>(
    conn: &Connection,
    owners: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<String>, StoreError> {
    let mut asked = HashSet::new();
    let mut dead = HashSet::new();
    for owner in owners {
        if asked.insert(owner) && is_owner_dead(conn, owner)? {
            dead.insert(owner.to_string());
        }
    }
    Ok(dead)
}

/// Owners other than `me` holding unexpired leases that are provably dead.
fn dead_lease_owners(conn: &Connection, me: &str, now: i64) -> Result<HashSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT lease_owner FROM codex_operations \
         WHERE lease_owner IS NOT NULL AND lease_owner != ?1 AND lease_expires_at > ?2",
    )?;
    let owners: Vec<String> = stmt
        .query_map(params![me, now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    dead_among(conn, owners.iter().map(String::as_str))
}

/// Slots in use now.
pub fn concurrency_counts(conn: &Connection, now: i64) -> Result<ConcurrencyCounts, StoreError> {
    let dead = HashSet::new();
    let mut counts = ConcurrencyCounts::default();
    for holder in slot_holders(conn, now, &dead)? {
        counts.global += 1;
        *counts.per_project.entry(holder.project).or_default() += 1;
        if let Some(agent) = holder.agent {
            *counts.per_agent.entry(agent).or_default() += 1;
        }
        if let Some(thread) = holder.thread {
            *counts.per_thread.entry(thread).or_default() += 1;
        }
    }
    Ok(counts)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The fields of a startable operation that a claim decision needs.
struct ClaimCandidate {
    operation_id: String,
    takes_slot: bool,
    project_path_key: String,
    agent_id: Option<String>,
    thread_id: Option<String>,
    queued_reason: Option<String>,
    lease_owner: Option<String>,
    submitter_config_fingerprint: Option<String>,
    writes: bool,
    resource_keys: Vec<String>,
    priority: i64,
}

/// What a claim would do, decided on reads alone: the reasons it records on the rows it passes over, and the row
/// it takes.
#[derive(Debug, Default)]
pub struct ClaimPlan {
    /// `(operation id, queued_reason)` for rows whose recorded reason would change.
    reasons: Vec<(String, &'static str)>,
    /// The operation to take, with the owner of the lease it takes over (if any).
    take: Option<(String, Option<String>)>,
    /// Set when the plan stopped because every slot is taken: the priority rank of the first slot-taking row
    /// that waits for one (the queue's head).
    slots_full_at: Option<i64>,
}

impl ClaimPlan {
    /// True when a claim would neither take an operation nor record a reason: nothing for the write lock to do.
    pub fn is_idle(&self) -> bool {
        self.reasons.is_empty() && self.take.is_none()
    }
}

/// What the dispatcher learns from a plan read ([`Store::claim_outlook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimOutlook {
    /// A claim would take an operation or record why one waits.
    pub acts: bool,
    /// With `acts` false: every slot is taken and the queue's head waits at this priority rank. Until a slot
    /// frees, a new slot-taking operation at this rank or lower lands behind the head and changes nothing a claim
    /// would do.
    pub slots_full_at: Option<i64>,
}

/// Decides what a claim by `owner` does now (see [`Store::claim_next_operation`]), reading only. The claim runs
/// it under the write lock and applies it; the dispatcher runs it on a read first and skips the write lock when
/// the plan is idle, so a burst of submits while every slot is taken does not queue futile write transactions.
/// Operations submitted under another config fingerprint than the owner's worker row are passed over (reason
/// `config_fingerprint_mismatch`) unless `limits.allow_cross_config`.
pub fn plan_claim(
    conn: &Connection,
    owner: &str,
    now: i64,
    limits: &ClaimLimits,
) -> Result<ClaimPlan, StoreError> {
    // The dispatcher plans on every tick: with nothing due (the usual idle case) one index probe answers, without
    // probing other owners' lock files or counting the slot holders.
    let due = format!(
        "SELECT EXISTS (SELECT 1 FROM codex_operations INDEXED BY idx_codex_operations_claim \
         WHERE status IN ({}) AND attempt_count < max_attempts AND next_attempt_at <= ?1)",
        super::sql_status_list(&STARTABLE)
    );
    if !conn
        .prepare_cached(&due)?
        .query_row([now], |r| r.get::<_, bool>(0))?
    {
        return Ok(ClaimPlan::default());
    }
    let dead = dead_lease_owners(conn, owner, now)?;
    let occupancy = Occupancy::of(&slot_holders(conn, now, &dead)?);
    let dead_list: Vec<String> = dead.into_iter().collect();
    let dead_json = serde_json::to_string(&dead_list)?;
    // Only the columns the limits look at: a claim runs on every submit and scans up to CLAIM_SCAN rows, so
    // decoding whole rows (request JSON included) would make it the slowest write of a submit burst.
    let sql = format!(
        "SELECT operation_id, takes_slot, project_path_key, agent_id, thread_id, queued_reason, lease_owner, \
         submitter_config_fingerprint, writes, resource_keys_json, priority FROM codex_operations \
         INDEXED BY idx_codex_operations_claim \
         WHERE status IN ({startable}) AND attempt_count < max_attempts AND next_attempt_at <= ?1 \
         AND (lease_owner IS NULL OR lease_expires_at <= ?1 \
              OR lease_owner IN (SELECT value FROM json_each(?2))) \
         ORDER BY priority DESC, created_at, rowid LIMIT {CLAIM_SCAN}",
        startable = super::sql_status_list(&STARTABLE),
    );
    let my_fingerprint: Option<String> = conn
        .prepare_cached("SELECT config_fingerprint FROM codex_workers WHERE owner_id = ?1")?
        .query_row([owner], |r| r.get(0))
        .optional()?
        .flatten();
    let mut stmt = conn.prepare_cached(&sql)?;
    // Read lazily: with every slot taken the plan ends at the first slot-taking row, and the rest of the scan would
    // be decoded for nothing on every submit.
    let candidates = stmt.query_map(params![now, dead_json], |r| {
        Ok(ClaimCandidate {
            operation_id: r.get(0)?,
            takes_slot: r.get(1)?,
            project_path_key: r.get(2)?,
            agent_id: r.get(3)?,
            thread_id: r.get(4)?,
            queued_reason: r.get(5)?,
            lease_owner: r.get(6)?,
            submitter_config_fingerprint: r.get(7)?,
            writes: r.get(8)?,
            resource_keys: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
            priority: r.get(10)?,
        })
    })?;
    let mut plan = ClaimPlan::default();
    for op in candidates {
        let op = op?;
        // A worker with another configuration (codex home, roots, database) must not run this operation.
        let foreign = !limits.allow_cross_config
            && matches!((&my_fingerprint, &op.submitter_config_fingerprint), (Some(mine), Some(theirs)) if mine != theirs);
        let refusal = if foreign {
            Some("config_fingerprint_mismatch")
        } else if op.takes_slot {
            occupancy.refuse(
                &Candidate {
                    project: &op.project_path_key,
                    agent: op.agent_id.as_deref(),
                    thread: op.thread_id.as_deref(),
                    writes: op.writes,
                    resource_keys: &op.resource_keys,
                },
                limits,
            )
        } else {
            None
        };
        let Some(reason) = refusal else {
            plan.take = Some((op.operation_id, op.lease_owner));
            return Ok(plan);
        };
        if op.queued_reason.as_deref() != Some(reason) {
            plan.reasons.push((op.operation_id, reason));
        }
        if reason == "global_slot_limit" {
            // Nothing else can start either; the remaining rows keep their previous reason.
            plan.slots_full_at = Some(op.priority);
            return Ok(plan);
        }
    }
    Ok(plan)
}

/// Claims the best startable operation for `owner` (see [`Store::claim_next_operation`]): [`plan_claim`], applied.
/// Must run inside a `BEGIN IMMEDIATE` transaction.
pub fn claim_next(
    conn: &Connection,
    owner: &str,
    ttl: Duration,
    now: i64,
    limits: &ClaimLimits,
) -> Result<Option<Operation>, StoreError> {
    let plan = plan_claim(conn, owner, now, limits)?;
    for (operation_id, reason) in &plan.reasons {
        conn.prepare_cached(
            "UPDATE codex_operations SET queued_reason = ?2 WHERE operation_id = ?1",
        )?
        .execute(params![operation_id, reason])?;
    }
    let Some((operation_id, previous)) = plan.take else {
        return Ok(None);
    };
    if let Some(previous) = &previous {
        tracing::info!(operation_id = %operation_id, previous, owner, "taking over lease");
    }
    conn.prepare_cached(
        "UPDATE codex_operations SET lease_owner = ?2, lease_expires_at = ?3, last_heartbeat_at = ?4, \
         worker_id = ?2, queue_status = 'scheduled', queued_reason = NULL, attempt_count = attempt_count + 1, \
         started_at = COALESCE(started_at, ?4), updated_at = ?4 WHERE operation_id = ?1",
    )?
    .execute(params![operation_id, owner, now.saturating_add(ms(ttl)), now])?;
    Ok(Some(require(conn, &operation_id)?))
}

/// Extends every lease `owner` holds on a non-terminal operation and stamps its worker row; returns how many
/// leases were extended.
pub fn heartbeat(
    conn: &Connection,
    owner: &str,
    ttl: Duration,
    now: i64,
) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "UPDATE codex_workers SET last_heartbeat_at = ?2, status = 'running' WHERE owner_id = ?1",
    )?
    .execute(params![owner, now])?;
    let n = conn
        .prepare_cached(
            "UPDATE codex_operations SET lease_expires_at = ?2, last_heartbeat_at = ?3 \
             WHERE lease_owner = ?1 AND completed_at IS NULL",
        )?
        .execute(params![owner, now.saturating_add(ms(ttl)), now])?;
    Ok(n)
}

/// Drops `owner`'s lease on an operation; a startable one goes back to the queue.
pub fn release(
    conn: &Connection,
    operation_id: &str,
    owner: &str,
    now: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE codex_operations SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3, \
         queue_status = CASE WHEN status IN ({}) THEN 'queued' ELSE queue_status END \
         WHERE operation_id = ?1 AND lease_owner = ?2",
        super::sql_status_list(&STARTABLE)
    );
    let n = conn
        .prepare_cached(&sql)?
        .execute(params![operation_id, owner, now])?;
    if n == 0 {
        require(conn, operation_id)?;
        return Err(StoreError::LeaseNotHeld {
            operation_id: operation_id.to_string(),
            owner: owner.to_string(),
        });
    }
    Ok(())
}

/// Marks a worker stopped (clean shutdown) and releases its leases.
pub fn stop_worker(conn: &Connection, owner: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE codex_workers SET status = 'stopped', stopped_at = ?2 WHERE owner_id = ?1",
    )?
    .execute(params![owner, now])?;
    let sql = format!(
        "UPDATE codex_operations SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2, \
         queue_status = CASE WHEN status IN ({}) THEN 'queued' ELSE queue_status END WHERE lease_owner = ?1",
        super::sql_status_list(&STARTABLE)
    );
    conn.prepare_cached(&sql)?.execute(params![owner, now])?;
    Ok(())
}

/// A worker row as status tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRow {
    /// `mcp:<pid>:<uuid hex>`.
    pub owner_id: String,
    /// OS process id.
    pub pid: i64,
    /// Hostname and boot id.
    pub host_key: String,
    /// running or stopped.
    pub status: String,
    /// Server version.
    pub version: Option<String>,
    /// Config fingerprint.
    pub config_fingerprint: Option<String>,
    /// Registration time.
    pub started_at: super::Timestamp,
    /// Last heartbeat.
    pub last_heartbeat_at: super::Timestamp,
    /// Clean stop time.
    pub stopped_at: Option<super::Timestamp>,
    /// Whether the process is provably dead (`true`), or not provably (`false`).
    pub dead: bool,
    /// `worker` (the background worker) or `inline` (an MCP server dispatching itself).
    pub role: String,
}

/// The most recently active workers, at most `limit`.
pub fn list_workers(conn: &Connection, limit: usize) -> Result<Vec<WorkerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT owner_id, pid, host_key, status, version, config_fingerprint, started_at, last_heartbeat_at, stopped_at, \
         role FROM codex_workers ORDER BY last_heartbeat_at DESC LIMIT ?1",
    )?;
    let rows: Vec<WorkerRow> = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(WorkerRow {
                owner_id: r.get(0)?,
                pid: r.get(1)?,
                host_key: r.get(2)?,
                status: r.get(3)?,
                version: r.get(4)?,
                config_fingerprint: r.get(5)?,
                started_at: super::Timestamp(r.get(6)?),
                last_heartbeat_at: super::Timestamp(r.get(7)?),
                stopped_at: r.get::<_, Option<i64>>(8)?.map(super::Timestamp),
                dead: false,
                role: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|mut row| {
            row.dead = row.status == "stopped" || is_owner_dead(conn, &row.owner_id)?;
            Ok(row)
        })
        .collect()
}

impl Store {
    /// Registers this process's worker row (call once at start, before claiming).
    pub async fn register_worker(&self, worker: WorkerInfo) -> Result<(), StoreError> {
        self.write(move |tx| register_worker(tx, &worker, crate::time::now_ms()))
            .await
    }

    /// Claims the next operation in one `BEGIN IMMEDIATE` transaction: status startable, attempts left,
    /// `next_attempt_at <= now`, lease free/expired/held by a dead owner (not already ours), within the
    /// concurrency limits (steer and message-less fork take no slot). Highest priority first, then oldest.
    /// Increments `attempt_count` and sets `queue_status = scheduled`. Blocked rows get a `queued_reason`.
    pub async fn claim_next_operation(
        &self,
        owner: &str,
        ttl: Duration,
        now: i64,
        limits: ClaimLimits,
    ) -> Result<Option<Operation>, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| claim_next(tx, &owner, ttl, now, &limits))
            .await
    }

    /// Extends all of `owner`'s leases by `ttl` from now; returns how many.
    pub async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| heartbeat(tx, &owner, ttl, crate::time::now_ms()))
            .await
    }

    /// Releases `owner`'s lease on one operation.
    pub async fn release(&self, operation_id: &str, owner: &str) -> Result<(), StoreError> {
        let (id, owner) = (operation_id.to_string(), owner.to_string());
        self.write(move |tx| release(tx, &id, &owner, crate::time::now_ms()))
            .await
    }

    /// Marks `owner` stopped and releases all its leases.
    pub async fn stop_worker(&self, owner: &str) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| stop_worker(tx, &owner, crate::time::now_ms()))
            .await
    }

    /// The most recently active workers.
    pub async fn list_workers(&self, limit: usize) -> Result<Vec<WorkerRow>, StoreError> {
        self.read(move |c| list_workers(c, limit)).await
    }

    /// Whether a claim by `owner` would take an operation or record why one waits, and whether every slot is
    /// taken ([`plan_claim`] on a read): the dispatcher asks on every tick and after a submit that may start
    /// something, and takes the write lock for a claim only when it would act.
    pub async fn claim_outlook(
        &self,
        owner: &str,
        now: i64,
        limits: ClaimLimits,
    ) -> Result<ClaimOutlook, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| {
            let plan = plan_claim(c, &owner, now, &limits)?;
            Ok(ClaimOutlook {
                acts: !plan.is_idle(),
                slots_full_at: plan.slots_full_at,
            })
        })
        .await
    }

    /// True while anything still needs a worker: operations not yet terminal (queued ones included, whatever
    /// their backoff), pending interactions, workflows not ended, goals not settled, lifecycle actions and worker
    /// commands in flight. An auto-started worker exits only when this has been false for its idle period.
    pub async fn has_unfinished_work(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM codex_operations WHERE status IN ({startable}, {active})) \
                 OR EXISTS (SELECT 1 FROM pending_interactions WHERE status = 'pending') \
                 OR EXISTS (SELECT 1 FROM codex_workflows WHERE phase NOT IN ({phases})) \
                 OR EXISTS (SELECT 1 FROM codex_workflow_goals WHERE settled_at IS NULL) \
                 OR EXISTS (SELECT 1 FROM codex_thread_lifecycle_actions WHERE status IN ('starting', 'running')) \
                 OR EXISTS (SELECT 1 FROM codex_worker_commands WHERE status IN ('queued', 'running'))",
                startable = super::sql_status_list(&STARTABLE),
                active = super::sql_status_list(&ACTIVE),
                phases = super::sql_status_list(&super::workflows::TERMINAL_PHASES),
            );
            Ok(c.prepare_cached(&sql)?.query_row([], |r| r.get(0))?)
        })
        .await
    }

    /// True when `owner` is provably dead on this host (see the module docs).
    pub async fn is_owner_dead(&self, owner: &str) -> Result<bool, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| is_owner_dead(c, &owner)).await
    }

    /// Which of `owners` are provably dead, in one read ([`dead_among`]).
    pub async fn dead_owners(&self, owners: Vec<String>) -> Result<HashSet<String>, StoreError> {
        if owners.is_empty() {
            return Ok(HashSet::new());
        }
        self.read(move |c| dead_among(c, owners.iter().map(String::as_str)))
            .await
    }

    /// Slots in use now.
    pub async fn concurrency_counts(&self) -> Result<ConcurrencyCounts, StoreError> {
        self.read(|c| concurrency_counts(c, crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::operations::tests::chat;
    use crate::store::test_support::temp_store;
    use crate::store::InsertOutcome;

    const TTL: Duration = Duration::from_secs(120);
    const WIDE: ClaimLimits = ClaimLimits {
        global: 10_000,
        per_project: 10_000,
        per_agent: 10_000,
        per_thread: 10_000,
        write_per_project: 10_000,
        allow_cross_config: false,
    };

    async fn worker(store: &Store) -> String {
        let info = WorkerInfo::current(None);
        let owner = info.owner_id.clone();
        store.register_worker(info).await.expect("register");
        owner
    }

    fn distinct(idx: usize) -> String {
        format!(
            "Task {idx}: {}",
            "lorem ipsum dolor sit amet ".repeat(1 + idx % 7)
        )
    }

    async fn insert_n(store: &Store, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for idx in 0..n {
            let mut new = chat(&distinct(idx), None);
            // Each in its own scope so the duplicate guard stays out of this test.
            new.project_path_key = format!("/p{idx}");
            match store.insert_operation(new).await.expect("insert") {
                InsertOutcome::Created { operation, .. } => ids.push(operation.operation_id),
                other => panic!("{other:?}"),
            }
        }
        ids
    }

    #[test]
    fn two_stores_claim_each_operation_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.sqlite3");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let ids = runtime.block_on(async {
            let store = Store::open(&path).expect("open");
            insert_n(&store, 200).await
        });
        // Two independent handles (own writer thread, own connections) stand for two processes.
        let claim_all = |path: std::path::PathBuf| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                runtime.block_on(async move {
                    let store = Store::open(&path).expect("open");
                    let owner = worker(&store).await;
                    let mut claimed = Vec::new();
                    while let Some(op) = store
                        .claim_next_operation(&owner, TTL, crate::time::now_ms(), WIDE)
                        .await
                        .expect("claim")
                    {
                        assert_eq!(op.lease_owner.as_deref(), Some(owner.as_str()));
                        claimed.push(op.operation_id);
                    }
                    claimed
                })
            })
        };
        let a = claim_all(path.clone());
        let b = claim_all(path.clone());
        let mut all = a.join().expect("thread a");
        let from_b = b.join().expect("thread b");
        assert!(!all.is_empty() || !from_b.is_empty());
        all.extend(from_b);
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 200, "every op claimed once");
        assert_eq!(unique.len(), 200, "no op claimed twice");
        assert!(ids.iter().all(|id| unique.contains(id)));
    }

    #[tokio::test]
    async fn a_claim_with_nothing_to_do_is_known_before_the_write_lock() {
        // One global slot. A claim that would neither take an operation nor record a new reason is idle, and the
        // dispatcher then skips the write transaction; it must never be idle when a claim would act.
        let (_dir, store) = temp_store();
        let owner = worker(&store).await;
        let one_slot = ClaimLimits {
            global: 1,
            ..ClaimLimits::default()
        };
        let outlook = |store: &Store| {
            let store = store.clone();
            let owner = owner.clone();
            async move {
                store
                    .claim_outlook(&owner, crate::time::now_ms(), one_slot)
                    .await
                    .expect("plan")
            }
        };
        let idle = |slots_full_at| ClaimOutlook {
            acts: false,
            slots_full_at,
        };
        assert_eq!(outlook(&store).await, idle(None), "an empty queue");
        let ids = insert_n(&store, 2).await;
        assert!(
            outlook(&store).await.acts,
            "a free slot and a due operation"
        );
        let claim = |store: &Store| {
            let store = store.clone();
            let owner = owner.clone();
            async move {
                store
                    .claim_next_operation(&owner, TTL, crate::time::now_ms(), one_slot)
                    .await
                    .expect("claim")
            }
        };
        assert!(claim(&store).await.is_some());
        assert!(
            outlook(&store).await.acts,
            "the second waits, and its reason is not recorded yet"
        );
        assert!(claim(&store).await.is_none());
        assert_eq!(
            outlook(&store).await,
            idle(Some(1)),
            "every slot taken, the reason recorded, the head at normal priority"
        );
        let mut later = chat(&distinct(99), None);
        later.project_path_key = "/p99".to_string();
        store.insert_operation(later).await.expect("insert");
        assert_eq!(
            outlook(&store).await,
            idle(Some(1)),
            "a later submit at the head's priority queues behind it"
        );
        let mut urgent = chat(&distinct(98), None);
        urgent.project_path_key = "/p98".to_string();
        urgent.priority = "high".to_string();
        store.insert_operation(urgent).await.expect("insert");
        assert!(
            outlook(&store).await.acts,
            "a higher priority becomes the head, whose reason is not recorded yet"
        );
        assert!(claim(&store).await.is_none());
        assert_eq!(outlook(&store).await, idle(Some(2)));
        store.release(&ids[0], &owner).await.expect("release");
        let freed = outlook(&store).await;
        assert!(freed.acts, "a slot freed");
        assert_eq!(freed.slots_full_at, None);
        let taken = claim(&store).await.expect("a claim");
        assert_eq!(
            taken.priority, "high",
            "the highest priority first, then the oldest"
        );
    }

    #[tokio::test]
    async fn limits_queue_a_burst_and_record_the_reason() {
        let (_dir, store) = temp_store();
        let owner = worker(&store).await;
        let ids = insert_n(&store, 6).await;
        let now = crate::time::now_ms();
        let mut claimed = 0;
        while store
            .claim_next_operation(&owner, TTL, now, ClaimLimits::default())
            .await
            .expect("claim")
            .is_some()
        {
            claimed += 1;
        }
        assert_eq!(claimed, 4, "global limit 4");
        let waiting = store
            .get_operation(&ids[4])
            .await
            .expect("get")
            .expect("row");
        assert_eq!(waiting.queued_reason.as_deref(), Some("global_slot_limit"));
        assert_eq!(waiting.next_recommended_action(), "wait_for_worker_slot");
        let counts = store.concurrency_counts().await.expect("counts");
        assert_eq!(counts.global, 4);
        // Per thread: two sends to one thread, only one runs.
        let (_dir2, store2) = temp_store();
        let owner2 = worker(&store2).await;
        for idx in 0..2 {
            let mut send = chat(&distinct(idx), None);
            send.operation_type = "send_message".to_string();
            send.thread_id = Some("thr-1".to_string());
            send.project_path_key = format!("/s{idx}");
            store2.insert_operation(send).await.expect("send");
        }
        let first = store2
            .claim_next_operation(&owner2, TTL, crate::time::now_ms(), ClaimLimits::default())
            .await
            .expect("claim");
        assert!(first.is_some());
        let second = store2
            .claim_next_operation(&owner2, TTL, crate::time::now_ms(), ClaimLimits::default())
            .await
            .expect("claim");
        assert!(second.is_none(), "per-thread limit 1");
        let queued = store2
            .list_operations(
                crate::store::OperationFilter {
                    queue_status: Some("queued".into()),
                    ..Default::default()
                },
                10,
            )
            .await
            .expect("list");
        assert_eq!(
            queued[0].queued_reason.as_deref(),
            Some("thread_slot_limit")
        );
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over() {
        let (_dir, store) = temp_store();
        let first = worker(&store).await;
        let second = worker(&store).await;
        let ids = insert_n(&store, 1).await;
        let now = crate::time::now_ms();
        let op = store
            .claim_next_operation(&first, TTL, now, WIDE)
            .await
            .expect("claim")
            .expect("op");
        assert_eq!(op.operation_id, ids[0]);
        // The first owner is alive (this process), so before expiry the second gets nothing.
        assert!(store
            .claim_next_operation(&second, TTL, now + 1_000, WIDE)
            .await
            .expect("claim")
            .is_none());
        let later = now + ms(TTL) + 1;
        let taken = store
            .claim_next_operation(&second, TTL, later, WIDE)
            .await
            .expect("claim")
            .expect("op");
        assert_eq!(taken.lease_owner.as_deref(), Some(second.as_str()));
        assert_eq!(taken.attempt_count, 2);
        // Heartbeats extend the new holder's lease; releasing puts it back in the queue.
        assert_eq!(store.heartbeat(&second, TTL).await.expect("heartbeat"), 1);
        assert!(matches!(
            store.release(&ids[0], &first).await,
            Err(StoreError::LeaseNotHeld { .. })
        ));
        store.release(&ids[0], &second).await.expect("release");
        let released = store
            .get_operation(&ids[0])
            .await
            .expect("get")
            .expect("row");
        assert_eq!(
            (released.lease_owner, released.queue_status.as_str()),
            (None, "queued")
        );
    }

    #[tokio::test]
    async fn dead_owner_lease_is_taken_over_at_once() {
        let (_dir, store) = temp_store();
        // A process that has exited and been reaped: its pid no longer exists.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let dead_pid = child.id();
        child.wait().expect("wait");
        let mut ghost = WorkerInfo::current(None);
        ghost.owner_id = format!("mcp:{dead_pid}:{}", uuid::Uuid::new_v4().simple());
        ghost.pid = dead_pid;
        ghost.pid_start_ticks = Some(1);
        let ghost_owner = ghost.owner_id.clone();
        store.register_worker(ghost).await.expect("register ghost");
        let alive = worker(&store).await;
        let ids = insert_n(&store, 1).await;
        let now = crate::time::now_ms();
        store
            .claim_next_operation(&ghost_owner, TTL, now, WIDE)
            .await
            .expect("claim")
            .expect("ghost claims");
        let taken = store
            .claim_next_operation(&alive, TTL, now + 10, WIDE)
            .await
            .expect("claim");
        let taken = taken.expect("taken over before expiry");
        assert_eq!(taken.operation_id, ids[0]);
        assert_eq!(taken.lease_owner.as_deref(), Some(alive.as_str()));
        // A live owner (this very process) is never declared dead.
        assert!(!store
            .read(move |c| is_owner_dead(c, &alive))
            .await
            .expect("check"));
    }

    #[tokio::test]
    async fn foreign_config_is_not_claimed() {
        let (_dir, store) = temp_store();
        let info = WorkerInfo::current(Some("fp-a".into()));
        let owner = info.owner_id.clone();
        store.register_worker(info).await.expect("register");
        let mut new = chat(
            "an operation submitted under another configuration entirely",
            None,
        );
        new.config_fingerprint = Some("fp-b".into());
        let id = store
            .insert_operation(new)
            .await
            .expect("insert")
            .operation()
            .operation_id
            .clone();
        let now = crate::time::now_ms();
        assert!(store
            .claim_next_operation(&owner, TTL, now, WIDE)
            .await
            .expect("claim")
            .is_none());
        let op = store.get_operation(&id).await.expect("get").expect("row");
        assert_eq!(
            op.queued_reason.as_deref(),
            Some("config_fingerprint_mismatch")
        );
        assert_eq!(op.next_recommended_action(), "inspect_worker_health");
        let bypass = ClaimLimits {
            allow_cross_config: true,
            ..WIDE
        };
        assert!(store
            .claim_next_operation(&owner, TTL, now, bypass)
            .await
            .expect("claim")
            .is_some());
    }

    #[test]
    fn process_start_ticks_of_self_is_known() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_start_ticks(std::process::id()).is_some());
        }
    }
}
