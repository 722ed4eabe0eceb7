//! The default work analyzer: work that stopped moving, answers awaited, prompts refused as
//! duplicates, and workflows that disagree with their thread or can be recovered from it.
//!
//! Rules (each reads the host's snapshot, `analyzer-snapshot/v1`):
//!
//! - A live operation idle for over 30 minutes is `stale_operation`; a live turn, `stale_turn`.
//! - A pending interaction is `pending_approval` or `pending_user_input`; once expired or older
//!   than 30 minutes, `pending_interaction_stale`.
//! - A log line recording a refused duplicate prompt (`CODEX_DUPLICATE_PROMPT_ACTIVE`) is
//!   `duplicate_prompt`, about the operation already running that prompt.
//! - An unfinished workflow whose operations all ended long ago, or a failing check that says an
//!   operation ended before its turn, is `workflow_thread_drift`; a failed (or orphaned) workflow with a
//!   thread is `workflow_recoverable_candidate_found`; a workflow that failed on its plan (invalid, or none at all)
//!   is `invalid_plan_artifact`.
//! - Without a scope (no rows), the failing checks of this theme stand in for them.

use analyzer_guest::{
    error_text, int_of, is_live, mentions_any, str_of, Hit, Level, Snapshot, STALE_AFTER_MS,
};

wit_bindgen::generate!({
    path: "../../wit/since_v0.2.0",
    world: "analyzer",
});

use codex_control_plane::plugin::types::{Finding, Severity};
use exports::codex_control_plane::plugin::analyzer_plugin::Guest;

/// The log marker of a refused duplicate prompt (its error code, as the server logs it).
const DUPLICATE_MARKER: &str = "codex_duplicate_prompt_active";

/// The work findings of a snapshot.
pub fn analyze(snapshot: &Snapshot) -> Vec<Hit> {
    let mut hits = Vec::new();
    stale_hits(snapshot, &mut hits);
    interaction_hits(snapshot, &mut hits);
    duplicate_hits(snapshot, &mut hits);
    workflow_hits(snapshot, &mut hits);
    check_hits(snapshot, &mut hits);
    hits
}

/// Live operations and turns that stopped moving.
fn stale_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    for op in snapshot.list("operations").iter().filter(|o| is_live(o)) {
        let idle = int_of(op, "idleMs");
        if idle <= STALE_AFTER_MS {
            continue;
        }
        let id = str_of(op, "operationId");
        hits.push(
            Hit::new(
                "stale_operation",
                Level::Warning,
                "An operation stopped moving",
                0.85,
            )
            .subject(id)
            .message(format!(
                "operation {id} is {} and unchanged for {} minutes",
                str_of(op, "status"),
                idle / 60_000
            ))
            .evidence("operation", id)
            .actions(&["recover_stale_operations"]),
        );
    }
    for turn in snapshot.list("turns").iter().filter(|t| is_live(t)) {
        let idle = int_of(turn, "idleMs");
        if idle <= STALE_AFTER_MS {
            continue;
        }
        let id = str_of(turn, "turnId");
        hits.push(
            Hit::new(
                "stale_turn",
                Level::Warning,
                "A turn has not moved for over 30 minutes",
                0.8,
            )
            .subject(id)
            .message(format!(
                "turn {id} is {} and idle for {} minutes",
                str_of(turn, "status"),
                idle / 60_000
            ))
            .evidence("turn", id)
            .actions(&["interrupt_turn", "mark_orphaned_after_exit"]),
        );
    }
}

/// Interactions waiting for an answer.
fn interaction_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    for interaction in snapshot.list("interactions") {
        if str_of(interaction, "status") != "pending" {
            continue;
        }
        let id = str_of(interaction, "interactionId");
        let kind = str_of(interaction, "kind");
        let age = int_of(interaction, "ageMs");
        let expired = interaction["expired"].as_bool().unwrap_or(false);
        let hit = if expired || age > STALE_AFTER_MS {
            Hit::new(
                "pending_interaction_stale",
                Level::Warning,
                "An interaction has waited too long for an answer",
                0.85,
            )
            .message(format!(
                "{kind} {id} has waited {} minutes{}",
                age / 60_000,
                if expired { " and expired" } else { "" }
            ))
            .actions(&[
                "expire_stale_pending_interactions",
                "codex_answer_pending_interaction",
            ])
        } else if kind == "user_input" {
            Hit::new(
                "pending_user_input",
                Level::Info,
                "A turn waits for the user's answer",
                0.8,
            )
            .actions(&["codex_answer_pending_interaction"])
        } else {
            Hit::new(
                "pending_approval",
                Level::Info,
                "A turn waits for an approval",
                0.8,
            )
            .actions(&["codex_answer_pending_interaction"])
        };
        let mut hit = hit.subject(id).evidence("interaction", id);
        if let Some(op) = interaction["operationId"].as_str() {
            hit = hit.evidence("operation", op);
        }
        hits.push(hit);
    }
}

/// Duplicate prompts the server refused, from its log.
fn duplicate_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    for line in snapshot.log_messages() {
        if !line.contains(DUPLICATE_MARKER) {
            continue;
        }
        let existing = token_after(&line, "existing_operation_id=").unwrap_or_default();
        if hits
            .iter()
            .any(|h| h.category == "duplicate_prompt" && h.subject == existing)
        {
            continue;
        }
        let mut hit = Hit::new(
            "duplicate_prompt",
            Level::Warning,
            "The same prompt was sent again while it still runs",
            0.85,
        )
        .subject(&existing)
        .message(if existing.is_empty() {
            "a prompt was refused as a duplicate of one still running".to_string()
        } else {
            format!("a prompt was refused as a duplicate of operation {existing}, which still runs")
        })
        .evidence("log", DUPLICATE_MARKER)
        .actions(&["codex_get_operation_status", "cleanup_prompt_submissions"]);
        if !existing.is_empty() {
            hit = hit.evidence("operation", &existing);
        }
        hits.push(hit);
    }
    let problem = snapshot.problem_text();
    if !hits.iter().any(|h| h.category == "duplicate_prompt")
        && mentions_any(&problem, &["duplicate prompt", DUPLICATE_MARKER])
    {
        hits.push(
            Hit::new(
                "duplicate_prompt",
                Level::Warning,
                "A prompt may have been refused as a duplicate",
                0.4,
            )
            .evidence("problem_text", "duplicate_prompt")
            .actions(&["cleanup_prompt_submissions"]),
        );
    }
}

/// The word after `key` in `line` (ids are letters, digits and `_`/`-`).
fn token_after(line: &str, key: &str) -> Option<String> {
    let (_, rest) = line.split_once(key)?;
    let token: String = rest
        .trim_start_matches('"')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Workflows that drift from their thread, can be recovered, or failed on their plan.
fn workflow_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    let operations = snapshot.list("operations");
    for wf in snapshot.list("workflows") {
        let id = str_of(wf, "workflowId");
        let status = str_of(wf, "status");
        let error = error_text(&wf["error"]);
        if is_live(wf) {
            let mut ops = operations.iter().filter(|o| str_of(o, "workflowId") == id);
            let none_live = ops.all(|o| !is_live(o));
            if none_live && int_of(wf, "idleMs") > STALE_AFTER_MS {
                hits.push(
                    Hit::new(
                        "workflow_thread_drift",
                        Level::Warning,
                        "A workflow waits on work that has ended",
                        0.75,
                    )
                    .subject(id)
                    .message(format!(
                        "workflow {id} is {status} with no live operation for over 30 minutes"
                    ))
                    .evidence("workflow", id)
                    .actions(&["reconcile_workflow_from_thread"]),
                );
            }
            continue;
        }
        // A workflow lost to an app-server exit ended as much as a failed one, and its thread is as recoverable.
        if !matches!(
            status,
            "failed" | "orphaned" | "orphaned_after_app_server_exit"
        ) {
            continue;
        }
        // A plan turn that completed without any plan (the plan workflow's `no_plan`) left no artifact to use
        // either.
        if mentions_any(&error, &["plan"])
            && mentions_any(
                &error,
                &[
                    "invalid",
                    "parse",
                    "schema",
                    "missing",
                    "malformed",
                    "no_plan",
                    "without a plan",
                ],
            )
        {
            hits.push(
                Hit::new(
                    "invalid_plan_artifact",
                    Level::Error,
                    "The workflow's plan could not be used",
                    0.8,
                )
                .subject(id)
                .evidence("workflow", id)
                .actions(&["retry_workflow_with_runtime_policy"]),
            );
        } else if wf["threadId"].is_string() {
            hits.push(
                Hit::new(
                    "workflow_recoverable_candidate_found",
                    Level::Info,
                    "A failed workflow can be recovered from its thread",
                    0.6,
                )
                .subject(id)
                .evidence("workflow", id)
                .actions(&[
                    "reconcile_workflow_from_thread",
                    "retry_workflow_with_runtime_policy",
                ]),
            );
        }
    }
}

/// Failing checks of this theme that no row-based finding covers (the unscoped counts).
fn check_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    const THEME: &[(&str, &str, &[&str])] = &[
        (
            "stale_operation",
            "Operations or turns stopped moving",
            &["recover_stale_operations"],
        ),
        (
            "stale_turn",
            "A turn has not moved for over 30 minutes",
            &["interrupt_turn", "mark_orphaned_after_exit"],
        ),
        (
            "pending_approval",
            "Interactions wait for an answer",
            &["codex_list_pending_interactions"],
        ),
        (
            "pending_user_input",
            "A turn waits for the user's answer",
            &["codex_answer_pending_interaction"],
        ),
        (
            "pending_interaction_stale",
            "An interaction has waited too long",
            &["expire_stale_pending_interactions"],
        ),
        (
            "workflow_thread_drift",
            "A workflow disagrees with its thread",
            &["reconcile_workflow_from_thread"],
        ),
    ];
    // With a scope the rows are there and the rules above judge them; only what no row shows (an operation
    // that ended before its turn) comes from the checks.
    let scoped = snapshot.doc()["scope"]["scoped"].as_bool().unwrap_or(false);
    for check in snapshot.failing_checks() {
        let category = check["details"]["category"].as_str().unwrap_or("");
        let Some((category, title, actions)) = THEME.iter().find(|(c, ..)| *c == category).copied()
        else {
            continue;
        };
        if (scoped && category != "workflow_thread_drift")
            || hits.iter().any(|h| h.category == category)
        {
            continue;
        }
        hits.push(
            Hit::new(category, Level::Warning, title, 0.7)
                .message(str_of(check, "message"))
                .evidence("check", str_of(check, "name"))
                .actions(actions),
        );
    }
}

/// The WIT finding of a hit.
fn to_finding(hit: Hit) -> Finding {
    Finding {
        code: hit.category.to_string(),
        severity: match hit.level {
            Level::Info => Severity::Info,
            Level::Warning => Severity::Warning,
            Level::Error => Severity::Error,
            Level::Critical => Severity::Critical,
        },
        subject: hit.subject.clone(),
        message: hit.message.clone(),
        details: Some(hit.details_json()),
    }
}

/// The exported implementation.
struct WorkAnalyzer;

impl Guest for WorkAnalyzer {
    fn analyze(snapshot: String) -> Vec<Finding> {
        analyze(&Snapshot::parse(&snapshot))
            .into_iter()
            .map(to_finding)
            .collect()
    }
}

// Exports are only emitted for wasm: native builds exist for the unit tests.
#[cfg(target_arch = "wasm32")]
export!(WorkAnalyzer);

#[cfg(test)]
mod tests;
