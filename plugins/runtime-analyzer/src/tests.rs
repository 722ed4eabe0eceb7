//! The runtime rules on hand-built snapshots, one per category.

use super::*;
use serde_json::json;

fn run(doc: Value) -> Vec<Hit> {
    analyze(&Snapshot::parse(&doc.to_string()))
}

fn categories(hits: &[Hit]) -> Vec<&'static str> {
    hits.iter().map(|h| h.category).collect()
}

#[test]
fn a_missing_binary_and_an_unusable_database_come_from_their_checks() {
    let hits = run(json!({"checks": [
        {"name": "codex_binary", "status": "error", "message": "codex binary not found",
         "details": {"category": "codex_binary_missing"}},
        {"name": "mcp_state_db", "status": "error", "message": "cannot write the state database",
         "details": {"category": "mcp_state_db"}},
        {"name": "codex_home", "status": "ok", "message": "", "details": {"category": null}},
    ]}));
    assert_eq!(categories(&hits), ["codex_binary_missing", "mcp_state_db"]);
    assert_eq!(hits[1].level, Level::Critical);
    assert_eq!(hits[0].actions, ["validate_paths_and_config"]);
    assert_eq!(hits[0].evidence[0]["id"], json!("codex_binary"));
}

#[test]
fn work_lost_to_an_exit_is_app_server_exited() {
    let hits = run(json!({
        "operations": [{"operationId": "op_1", "status": "unknown_after_app_server_exit", "turnId": "t1"}],
        "turns": [{"turnId": "t1", "status": "unknown_after_app_server_exit"}],
        "logs": [{"message": "app-server exited; its turns end unknown generation=1 turns=1"}],
    }));
    assert_eq!(categories(&hits), ["app_server_exited"]);
    assert_eq!(hits[0].subject, "op_1");
    assert_eq!(hits[0].level, Level::Error);
    assert!(hits[0].actions.contains(&"mark_orphaned_after_exit"));
    // An exit that lost nothing is a lesser finding.
    let quiet = run(
        json!({"logs": [{"message": "app-server exited; its turns end unknown generation=2 turns=0"}]}),
    );
    assert_eq!(quiet[0].level, Level::Warning);
}

#[test]
fn timeouts_closed_pipes_and_sandbox_denials_are_told_apart() {
    let hits = run(json!({"operations": [
        {"operationId": "op_t", "status": "failed", "lastError": {"code": "CODEX_TIMEOUT", "message": "turn/start timed out"}},
        {"operationId": "op_p", "status": "failed", "lastError": {"code": "CODEX_SEND_FAILED", "message": "broken pipe"}},
        {"operationId": "op_s", "status": "failed", "lastError": {"code": "X", "message": "bwrap: setting up uid map: Operation not permitted"}},
        {"operationId": "op_m", "status": "failed", "lastError": {"code": "X", "message": "model_not_found: gpt-nope"}},
        {"operationId": "op_o", "status": "failed", "lastError": {"code": "X", "message": "Method not found: thread/goal/set"}},
    ]}));
    assert_eq!(
        categories(&hits),
        [
            "app_server_timeout",
            "app_server_stdout_closed",
            "linux_sandbox_spawn_denied",
            "model_or_config_error",
            "old_codex_binary"
        ]
    );
}

#[test]
fn the_callers_words_alone_give_a_weak_lead() {
    let hits = run(json!({"problemText": "It says 401 Unauthorized, please run codex login"}));
    assert_eq!(categories(&hits), ["codex_auth_required"]);
    assert!(hits[0].confidence < 0.5);
    assert!(run(json!({"problemText": "everything is fine"})).is_empty());
}

#[test]
fn every_finding_carries_the_seed_details() {
    let finding = to_finding(
        Hit::new("old_codex_binary", Level::Error, "old", 0.8)
            .actions(&["validate_paths_and_config"]),
    );
    assert_eq!(finding.code, "old_codex_binary");
    let details: Value =
        serde_json::from_str(finding.details.as_deref().unwrap_or("")).expect("details");
    assert_eq!(details["title"], json!("old"));
    assert_eq!(
        details["recommendedActions"],
        json!(["validate_paths_and_config"])
    );
}

#[test]
fn a_failed_turns_error_is_read_like_the_operations_own() {
    let hits = run(json!({"operations": [{
        "operationId": "op_m", "status": "failed", "live": false, "lastError": null,
        "turnError": {"message": "The model `x` does not exist or you do not have access to it.",
                      "codexErrorInfo": "modelNotFound"}}]}));
    assert_eq!(categories(&hits), ["model_or_config_error"]);
    assert_eq!(hits[0].subject, "op_m");
}
