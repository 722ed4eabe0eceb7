//! Waiting instead of polling: `codex_wait`, and the `wait_seconds` of the submit, workflow-start, answer and
//! approve tools.
//!
//! A wait re-reads the same snapshots the status tools return whenever the database changed (any process: see
//! `store::changes`), and returns as soon as one of them needs the caller: it ended, it waits for an answer,
//! its plan waits for approval, or a new final report arrived. Nothing is polled on a coarse tick, and an idle
//! wait costs a `PRAGMA data_version` every few milliseconds.
//!
//! `codex_wait` is level-triggered: an item that already needs the caller returns at once. The opportunistic
//! waits are edge-triggered (a state present before the call does not count unless it is terminal), because
//! the call that precedes them may not have moved the state yet (an approval the workflow pump has not
//! applied still reads `plan_ready`).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{operations, worker_commands, workflows};
use crate::app::App;
use crate::mcp::args::Args;
use crate::mcp::call::CallContext;
use crate::mcp::catalog::Catalog;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::schema;

/// The longest wait a call may ask for: under the 60 s tool timeout common in clients.
pub const MAX_WAIT_SECONDS: f64 = 50.0;
/// Progress notifications are sent at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// A notification is sent at least this often while waiting, even with nothing new: it keeps a client with an
/// idle timeout from giving up.
const PROGRESS_KEEPALIVE: Duration = Duration::from_secs(10);

/// What a wait watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Operation,
    Workflow,
    Command,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Operation => "operation",
            Kind::Workflow => "workflow",
            Kind::Command => "command",
        }
    }
}

/// Whether a state the item was already in when the wait began counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Any state that needs the caller returns, including one present at the start (`codex_wait`).
    Level,
    /// Only a new such state, or a terminal one, returns (the opportunistic waits).
    Edge,
}

/// Why a wait returned, in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reason {
    Terminal,
    PendingInteraction,
    PlanReady,
    PlanNeedsReview,
    FinalReport,
    Cancelled,
    Timeout,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Terminal => "terminal",
            Reason::PendingInteraction => "pending_interaction",
            Reason::PlanReady => "plan_ready",
            Reason::PlanNeedsReview => "plan_needs_review",
            Reason::FinalReport => "final_report",
            Reason::Cancelled => "cancelled",
            Reason::Timeout => "timeout",
        }
    }

    fn next_action(self) -> &'static str {
        match self {
            Reason::Terminal => "read the snapshot's finalReport or lastError; the work has ended",
            Reason::PendingInteraction => {
                "answer the pending interaction with codex_answer_pending_interaction"
            }
            Reason::PlanReady => "review latestPlan, then codex_approve_plan",
            Reason::PlanNeedsReview => {
                "review the candidate plan, then codex_adopt_workflow_plan or start again"
            }
            Reason::FinalReport => "read the snapshot's finalReport",
            Reason::Cancelled => "the wait was cancelled; call codex_wait again to keep waiting",
            Reason::Timeout => "nothing needs you yet; call codex_wait again",
        }
    }
}

/// One watched item and its latest snapshot.
#[derive(Clone)]
struct Item {
    kind: Kind,
    id: String,
    snapshot: Value,
}

impl Item {
    /// The caller-relevant part of the snapshot: what `changed` compares.
    fn fingerprint(&self) -> Value {
        let s = &self.snapshot;
        let pending: Vec<&Value> = pending_interactions(s)
            .map(|i| i.get("interactionId").unwrap_or(&Value::Null))
            .collect();
        json!([
            s.get("status"),
            s.get("phase"),
            s.get("terminal"),
            pending,
            s.get("finalReport")
        ])
    }

    /// Why this item needs the caller now, if it does.
    fn attention(&self, before: Option<&Item>) -> Option<Reason> {
        let s = &self.snapshot;
        if s.get("terminal").and_then(Value::as_bool) == Some(true) {
            return Some(Reason::Terminal);
        }
        if pending_interactions(s).next().is_some() {
            return Some(Reason::PendingInteraction);
        }
        if self.kind == Kind::Workflow {
            match s.get("phase").and_then(Value::as_str) {
                Some("plan_ready") => return Some(Reason::PlanReady),
                Some("plan_needs_review" | "plan_candidate_found") => {
                    return Some(Reason::PlanNeedsReview)
                }
                _ => {}
            }
        }
        let report = s.get("finalReport").filter(|r| !r.is_null());
        let report_before =
            before.and_then(|b| b.snapshot.get("finalReport").filter(|r| !r.is_null()));
        if report.is_some() && report != report_before {
            return Some(Reason::FinalReport);
        }
        None
    }
}

fn pending_interactions(snapshot: &Value) -> impl Iterator<Item = &Value> {
    snapshot
        .get("pendingInteractions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| {
            i.get("status")
                .and_then(Value::as_str)
                .is_none_or(|s| s == "pending")
        })
}

/// How a wait ended.
struct Outcome {
    items: Vec<Item>,
    reason: Reason,
    changed: bool,
    ready: Vec<Value>,
    waited: Duration,
}

impl Outcome {
    fn ended_early(&self) -> bool {
        !matches!(self.reason, Reason::Timeout | Reason::Cancelled)
    }

    fn summary(&self, timeout: Duration) -> Value {
        json!({
            "changed": self.changed,
            "reason": self.reason.as_str(),
            "waitedMs": u64::try_from(self.waited.as_millis()).unwrap_or(u64::MAX),
            "timeoutSeconds": timeout.as_secs_f64(),
            "ready": self.ready,
        })
    }
}

/// `codex_wait`: blocks until one of the given operations, workflows or worker commands needs the caller, or
/// `timeout_seconds` pass.
pub async fn wait(app: &App, args: &Args, ctx: &CallContext) -> Result<Value, ToolError> {
    let mut targets = Vec::new();
    for (key, kind) in [
        ("operation_ids", Kind::Operation),
        ("workflow_ids", Kind::Workflow),
        ("command_ids", Kind::Command),
    ] {
        for id in args
            .value(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = id.as_str().unwrap_or_default().to_string();
            if !targets.iter().any(|(k, i)| *k == kind && *i == id) {
                targets.push((kind, id));
            }
        }
    }
    if targets.is_empty() {
        return Err(ToolError::new(
            ErrorCode::InvalidArgument,
            "give at least one id in operation_ids, workflow_ids or command_ids",
        )
        .with_detail("field", json!("operation_ids")));
    }
    let timeout = seconds(args.number("timeout_seconds").unwrap_or(25.0));
    let outcome = run(app, targets, timeout, Trigger::Level, ctx).await?;
    let mut payload = outcome.summary(timeout);
    for (key, kind) in [
        ("operations", Kind::Operation),
        ("workflows", Kind::Workflow),
        ("commands", Kind::Command),
    ] {
        let snapshots: Vec<&Value> = outcome
            .items
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| &i.snapshot)
            .collect();
        payload[key] = json!(snapshots);
    }
    payload["nextRecommendedAction"] = json!(outcome.reason.next_action());
    Ok(payload)
}

/// The wait a tool call asked for with `wait_seconds`, if any.
pub fn requested(args: &Args) -> Option<Duration> {
    args.number("wait_seconds")
        .filter(|s| *s > 0.0)
        .map(seconds)
}

/// After a submit, workflow start, answer or approval: waits up to `bound` for the work it touched to need the
/// caller. When it gets there the result carries the fresh status inline, else the usual handle; both say how
/// the wait went in `waitOutcome`.
pub async fn inline_status(
    app: &App,
    tool: &str,
    mut result: Value,
    bound: Duration,
    ctx: &CallContext,
) -> Result<Value, ToolError> {
    let Some((kind, id)) = target(tool, &result) else {
        result["waitOutcome"] = json!({
            "changed": false, "reason": "not_waitable", "waitedMs": 0,
            "timeoutSeconds": bound.as_secs_f64(), "ready": [],
        });
        return Ok(result);
    };
    let outcome = run(app, vec![(kind, id)], bound, Trigger::Edge, ctx).await?;
    let summary = outcome.summary(bound);
    if outcome.ended_early() {
        if let Some(item) = outcome.items.into_iter().next() {
            match (tool, item.snapshot) {
                // The answer's own fields stay; the status of what it unblocked comes beside them.
                ("codex_answer_pending_interaction", snapshot) => {
                    let key = match kind {
                        Kind::Workflow => "workflowStatus",
                        _ => "operationStatus",
                    };
                    result[key] = snapshot;
                }
                // These tools answer with the status itself: the fresh one replaces it, keeping the fields
                // only the handle has (`idempotent`, `deduplicated`, `approveOperation`...).
                (_, Value::Object(fresh)) => {
                    if let Value::Object(fields) = &mut result {
                        fields.extend(fresh);
                    }
                }
                _ => {}
            }
        }
    }
    result["waitOutcome"] = summary;
    Ok(result)
}

/// The item a tool's result names: the operation or workflow it created or touched.
fn target(tool: &str, result: &Value) -> Option<(Kind, String)> {
    let id = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    match tool {
        "codex_submit_task" => id(result.get("operationId")).map(|i| (Kind::Operation, i)),
        "codex_answer_pending_interaction" => {
            let interaction = result.get("interaction")?;
            id(interaction.get("workflowId"))
                .map(|i| (Kind::Workflow, i))
                .or_else(|| id(interaction.get("operationId")).map(|i| (Kind::Operation, i)))
        }
        _ => id(result.get("workflowId"))
            .map(|i| (Kind::Workflow, i))
            .or_else(|| id(result.get("workerCommandId")).map(|i| (Kind::Command, i))),
    }
}

fn seconds(value: f64) -> Duration {
    // The schemas bound every wait to 0..=50; the clamp only guards internal callers.
    Duration::from_secs_f64(value.clamp(0.0, MAX_WAIT_SECONDS))
}

async fn run(
    app: &App,
    targets: Vec<(Kind, String)>,
    timeout: Duration,
    trigger: Trigger,
    ctx: &CallContext,
) -> Result<Outcome, ToolError> {
    let began = Instant::now();
    let (baseline, current, ended) = watch(
        app,
        &targets,
        timeout,
        ctx,
        Progress::Report,
        |baseline, current| verdict(baseline, current, trigger),
    )
    .await?;
    let (reason, ready) = match ended {
        Ended::Done(verdict) => verdict,
        Ended::Timeout => (Reason::Timeout, Vec::new()),
        Ended::Cancelled => (Reason::Cancelled, Vec::new()),
    };
    Ok(finish(baseline, current, reason, ready, began))
}

/// How a [`watch`] ended.
enum Ended<R> {
    /// `done` said so, with this.
    Done(R),
    Timeout,
    Cancelled,
}

/// Whether a [`watch`] sends `notifications/progress` when the request asked for them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    Report,
    Silent,
}

/// The one wait loop: reads `targets`, then re-reads them after every commit (of any process) until `done`
/// (given the first and the latest snapshots) ends it, `timeout` passes or the client cancels. Returns the
/// first snapshots, the latest ones and how it ended.
async fn watch<R>(
    app: &App,
    targets: &[(Kind, String)],
    timeout: Duration,
    ctx: &CallContext,
    progress: Progress,
    mut done: impl FnMut(&[Item], &[Item]) -> Option<R>,
) -> Result<(Vec<Item>, Vec<Item>, Ended<R>), ToolError> {
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    // Watch before the first read, so a commit between the read and the first wait is not missed.
    let mut watcher = app.engine().store.watch_changes()?;
    let baseline = load(app, targets).await?;
    let mut current = baseline.clone();
    if let Some(result) = done(&baseline, &current) {
        return Ok((baseline, current, Ended::Done(result)));
    }
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let reports = progress == Progress::Report && ctx.wants_progress();
    // `None` until the first notification, so the first tick always reports.
    let mut last_line: Option<Option<String>> = None;
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = watcher.changed() => {
                current = load(app, targets).await?;
                if let Some(result) = done(&baseline, &current) {
                    return Ok((baseline, current, Ended::Done(result)));
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok((baseline, current, Ended::Timeout)),
            _ = ctx.cancelled() => {
                tracing::info!(waited_ms = began.elapsed().as_millis() as u64, "wait cancelled by the client");
                return Ok((baseline, current, Ended::Cancelled));
            }
            _ = ticks.tick(), if reports => {
                let line = latest_line(&current);
                if last_line.as_ref() != Some(&line) || last_sent.elapsed() >= PROGRESS_KEEPALIVE {
                    let elapsed = began.elapsed().as_secs_f64();
                    let message = line.clone().unwrap_or_else(|| "waiting".to_string());
                    ctx.progress(elapsed, Some(timeout.as_secs_f64()), Some(message)).await;
                    last_line = Some(line);
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// Whether the wait is over, why, and which items made it so.
fn verdict(baseline: &[Item], current: &[Item], trigger: Trigger) -> Option<(Reason, Vec<Value>)> {
    let mut best: Option<Reason> = None;
    let mut ready = Vec::new();
    for (before, now) in baseline.iter().zip(current) {
        let Some(reason) = now.attention(Some(before)) else {
            continue;
        };
        let counts = match trigger {
            Trigger::Level => true,
            Trigger::Edge => {
                reason == Reason::Terminal || now.fingerprint() != before.fingerprint()
            }
        };
        if counts {
            ready.push(json!({"kind": now.kind.as_str(), "id": now.id, "reason": reason.as_str()}));
            best = Some(best.map_or(reason, |b| b.min(reason)));
        }
    }
    best.map(|reason| (reason, ready))
}

fn finish(
    baseline: Vec<Item>,
    current: Vec<Item>,
    reason: Reason,
    ready: Vec<Value>,
    began: Instant,
) -> Outcome {
    let changed = baseline
        .iter()
        .zip(&current)
        .any(|(b, c)| b.fingerprint() != c.fingerprint());
    Outcome {
        items: current,
        reason,
        changed,
        ready,
        waited: began.elapsed(),
    }
}

/// The newest progress line of the watched operations, for `notifications/progress`.
fn latest_line(items: &[Item]) -> Option<String> {
    items.iter().find_map(|item| {
        let events = item.snapshot.get("progressEvents")?.as_array()?;
        let text = events.last()?.get("text")?.as_str()?;
        Some(format!("{} {}: {text}", item.kind.as_str(), item.id))
    })
}

async fn load(app: &App, targets: &[(Kind, String)]) -> Result<Vec<Item>, ToolError> {
    let mut items = Vec::with_capacity(targets.len());
    for (kind, id) in targets {
        let snapshot = match kind {
            Kind::Operation => {
                let args = status_args("codex_get_operation_status", "operation_id", id);
                operations::status(app, &args).await?
            }
            Kind::Workflow => {
                let args = status_args("codex_get_workflow_status", "workflow_id", id);
                workflows::status(app, &args).await?
            }
            Kind::Command => {
                let args = status_args("codex_get_worker_command_status", "command_id", id);
                worker_commands::status(app, &args).await?
            }
        };
        items.push(Item {
            kind: *kind,
            id: id.clone(),
            snapshot,
        });
    }
    Ok(items)
}

/// The arguments a status tool gets when called with only its id: the published defaults.
fn status_args(tool: &str, key: &str, id: &str) -> Args {
    let mut values = Map::new();
    values.insert(key.to_string(), json!(id));
    if let Some(spec) = Catalog::get().find(tool) {
        schema::apply_defaults(&spec.input_schema, &mut values);
    }
    Args::new(values, [key.to_string()].into_iter().collect())
}

/// Waits up to `bound` until `done` holds for the operation's status snapshot; returns the last snapshot and
/// whether `done` held (false after the bound or a cancellation). For the compatibility tools, which answer
/// at a fixed point of an operation's life (its turn started, its first message arrived).
pub(super) async fn operation_until(
    app: &App,
    operation_id: &str,
    bound: Duration,
    ctx: &CallContext,
    done: impl Fn(&Value) -> bool,
) -> Result<(Value, bool), ToolError> {
    let targets = [(Kind::Operation, operation_id.to_string())];
    let (_, mut current, ended) = watch(app, &targets, bound, ctx, Progress::Silent, |_, items| {
        items
            .first()
            .is_some_and(|item| done(&item.snapshot))
            .then_some(())
    })
    .await?;
    let snapshot = current
        .pop()
        .map(|item| item.snapshot)
        .unwrap_or(Value::Null);
    Ok((snapshot, matches!(ended, Ended::Done(()))))
}
