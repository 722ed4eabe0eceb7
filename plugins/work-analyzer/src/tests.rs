//! The work rules on hand-built snapshots, one per category.

use super::*;
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;

fn run(doc: Value) -> Vec<Hit> {
    analyze(&Snapshot::parse(&doc.to_string()))
}

fn categories(hits: &[Hit]) -> Vec<&'static str> {
    hits.iter().map(|h| h.category).collect()
}

#[test]
fn live_work_idle_for_over_thirty_minutes_is_stale() {
    let hits = run(json!({
        "operations": [
            {"operationId": "op_old", "status": "running", "live": true, "idleMs": 2 * HOUR},
            {"operationId": "op_new", "status": "running", "live": true, "idleMs": 60_000},
            {"operationId": "op_done", "status": "completed", "live": false, "idleMs": 5 * HOUR},
        ],
        "turns": [{"turnId": "t1", "status": "inProgress", "live": true, "idleMs": 2 * HOUR}],
    }));
    assert_eq!(categories(&hits), ["stale_operation", "stale_turn"]);
    assert_eq!(hits[0].subject, "op_old");
    assert_eq!(hits[0].actions, ["recover_stale_operations"]);
}

#[test]
fn a_pending_approval_becomes_stale_when_it_waits_too_long() {
    let pending = |age: i64, kind: &str| {
        json!({"interactions": [
            {"interactionId": "int_1", "operationId": "op_1", "kind": kind, "status": "pending", "ageMs": age, "expired": false}
        ]})
    };
    assert_eq!(
        categories(&run(pending(60_000, "approval"))),
        ["pending_approval"]
    );
    assert_eq!(
        categories(&run(pending(60_000, "user_input"))),
        ["pending_user_input"]
    );
    let stale = run(pending(2 * HOUR, "approval"));
    assert_eq!(categories(&stale), ["pending_interaction_stale"]);
    assert_eq!(stale[0].actions[0], "expire_stale_pending_interactions");
    assert_eq!(stale[0].evidence[1]["id"], json!("op_1"));
}

#[test]
fn a_refused_duplicate_names_the_running_operation() {
    let hits = run(json!({"logs": [
        {"message": "duplicate prompt refused code=CODEX_DUPLICATE_PROMPT_ACTIVE existing_operation_id=op_abc123 tool=codex_submit_task"},
        {"message": "duplicate prompt refused code=CODEX_DUPLICATE_PROMPT_ACTIVE existing_operation_id=op_abc123 tool=codex_submit_task"},
    ]}));
    assert_eq!(categories(&hits), ["duplicate_prompt"]);
    assert_eq!(hits[0].subject, "op_abc123");
    let lead = run(json!({"problemText": "I got a duplicate prompt error"}));
    assert_eq!(categories(&lead), ["duplicate_prompt"]);
    assert!(lead[0].confidence < 0.5);
}

#[test]
fn workflows_drift_fail_on_their_plan_or_can_be_recovered() {
    let hits = run(json!({
        "workflows": [
            {"workflowId": "wf_drift", "status": "running", "live": true, "idleMs": 2 * HOUR, "threadId": "thr"},
            {"workflowId": "wf_plan", "status": "failed", "live": false, "error": {"message": "plan artifact is invalid JSON"}},
            {"workflowId": "wf_none", "status": "failed", "live": false, "threadId": "thr3",
             "error": {"code": "no_plan", "message": "the plan turn completed without a plan"}},
            {"workflowId": "wf_rec", "status": "failed", "live": false, "threadId": "thr2", "error": {"message": "turn failed"}},
            {"workflowId": "wf_lost", "status": "orphaned_after_app_server_exit", "live": false, "threadId": "thr4"},
        ],
        "operations": [{"operationId": "op", "workflowId": "wf_drift", "status": "completed", "live": false}],
    }));
    assert_eq!(
        categories(&hits),
        [
            "workflow_thread_drift",
            "invalid_plan_artifact",
            "invalid_plan_artifact",
            "workflow_recoverable_candidate_found",
            "workflow_recoverable_candidate_found"
        ]
    );
}

#[test]
fn without_rows_the_failing_checks_stand_in() {
    let hits = run(json!({"checks": [
        {"name": "stale_operations", "status": "warning", "message": "1 stale operation(s)", "details": {"category": "stale_operation"}},
        {"name": "codex_binary", "status": "error", "message": "", "details": {"category": "codex_binary_missing"}},
    ]}));
    assert_eq!(categories(&hits), ["stale_operation"]);
    assert!(run(json!({})).is_empty());
    // With a scope, the rows decide.
    let scoped = run(json!({"scope": {"scoped": true}, "checks": [
        {"name": "pending_interactions", "status": "warning", "message": "", "details": {"category": "pending_approval"}},
        {"name": "premature_terminal_operation", "status": "warning", "message": "", "details": {"category": "workflow_thread_drift"}},
    ]}));
    assert_eq!(categories(&scoped), ["workflow_thread_drift"]);
}
