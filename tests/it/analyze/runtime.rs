//! Runtime categories of the default analyzers built for real on the scripted app-server: a binary that does
//! not know a method this server calls (`old_codex_binary`), an app-server that never answers
//! (`app_server_timeout`), each found on the operation it stopped, and one that closes its stdout mid-turn while
//! still running (`app_server_stdout_closed`); and on the real app-server, a model the API does not know
//! (`model_or_config_error`).

use std::time::Duration;

use serde_json::{json, Value};

use super::finding;
use crate::diagnostics::{fake_app_server, start_with};
use crate::harness::{op_id, Harness};

/// Submits a chat and waits until its first attempt failed with an error; returns the operation id.
fn first_failure(h: &mut Harness) -> String {
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "start please"})));
    h.wait_for(&id, Duration::from_secs(30), |s| s["lastError"].is_object());
    id
}

/// The analysis of `id`, with the finding of `category` (asserted present and about `id`).
fn analysis_naming(h: &mut Harness, id: &str, category: &str) -> Value {
    let payload = h.call("codex_analyze_issue", json!({"operation_id": id}));
    assert_eq!(payload["ok"], json!(true), "{payload}");
    let found = finding(&payload, category)
        .unwrap_or_else(|| panic!("no {category} finding: {payload}"))
        .clone();
    assert_eq!(found["subject"], json!(id), "{found}");
    payload
}

#[test]
fn a_codex_binary_that_does_not_know_a_method_is_an_old_binary() {
    let mut h = start_with("analyze-old-binary", &fake_app_server("old_binary"));
    let id = first_failure(&mut h);
    let payload = analysis_naming(&mut h, &id, "old_codex_binary");
    assert!(
        payload["recommendedRepairActions"]
            .to_string()
            .contains("validate_paths_and_config"),
        "{payload}"
    );
}

#[test]
fn an_app_server_that_never_answers_is_a_timeout() {
    let mut extra = fake_app_server("hang");
    extra.push(("CODEX_MCP_APP_SERVER_REQUEST_TIMEOUT_MS", "500".to_string()));
    let mut h = start_with("analyze-timeout", &extra);
    let id = first_failure(&mut h);
    let status = h.status(&id);
    assert!(
        status["lastError"]["code"]
            .as_str()
            .is_some_and(|c| c.contains("TIMEOUT")),
        "{status}"
    );
    analysis_naming(&mut h, &id, "app_server_timeout");
}

#[test]
fn an_app_server_that_closes_its_stdout_mid_turn_is_found_apart_from_a_crash() {
    let mut h = start_with("analyze-stdout", &fake_app_server("close_stdout"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "talk to me"})));
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );
    // The WARN line that tells it from a crash names no operation: the unscoped analysis reads it.
    let payload = h.call("codex_analyze_issue", json!({}));
    assert_eq!(payload["ok"], json!(true), "{payload}");
    let closed = finding(&payload, "app_server_stdout_closed")
        .unwrap_or_else(|| panic!("no app_server_stdout_closed finding: {payload}"));
    assert!(
        closed["recommendedActions"]
            .to_string()
            .contains("restart_app_server_idle"),
        "{closed}"
    );
    let scoped = h.call("codex_analyze_issue", json!({"operation_id": id}));
    assert!(
        finding(&scoped, "app_server_exited").is_some(),
        "the operation itself was lost with the process: {scoped}"
    );
}

#[test]
fn a_model_the_api_does_not_know_is_a_model_or_config_error() {
    let mut h = Harness::start("analyze-model");
    h.model
        .push([support::fake_model::Reply::HttpError { status: 404 }]);
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hello model"})));
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("failed"), "{done}");
    let payload = analysis_naming(&mut h, &id, "model_or_config_error");
    assert!(
        payload["recommendedRepairActions"]
            .to_string()
            .contains("validate_paths_and_config"),
        "{payload}"
    );
}
