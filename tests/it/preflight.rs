//! `codex_preflight_project_run`: readiness checks that start nothing, and the live probe turn on request.

use serde_json::{json, Value};

use crate::harness::{assert_invalid_argument, Harness};

fn check<'a>(payload: &'a Value, name: &str) -> &'a Value {
    payload["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == json!(name))
        .unwrap_or_else(|| panic!("no {name} check: {payload}"))
}

#[test]
fn a_ready_project_passes_without_starting_anything() {
    let mut h = Harness::start("preflight-ready");
    let project = h.project.display().to_string();
    let payload = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project}),
    );
    assert_eq!(payload["ok"], json!(true), "{payload}");
    assert_eq!(payload["status"], json!("ok"), "{payload}");
    for name in [
        "project_path",
        "codex_binary",
        "codex_auth",
        "mcp_state_db",
        "sandbox",
    ] {
        assert_eq!(
            check(&payload, name)["status"],
            json!("ok"),
            "{name}: {payload}"
        );
    }
    assert_eq!(
        check(&payload, "runtime_capabilities")["status"],
        json!("skipped")
    );
    assert_eq!(payload["probeOperation"], Value::Null);
    assert_eq!(
        payload["nextRecommendedAction"],
        json!("codex_start_plan_workflow")
    );
    assert!(
        payload["cwd"]
            .as_str()
            .is_some_and(|c| c.starts_with("[redacted-path:demo:")),
        "{payload}"
    );
    assert!(!payload.to_string().contains(&project));
    let status = h.call("codex_get_app_server_status", json!({}));
    assert_eq!(
        status["running"],
        json!(false),
        "preflight starts nothing: {status}"
    );

    // A write run in a read-only sandbox is a warning; a working directory that is no directory an error.
    let write = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "workflow_kind": "write"}),
    );
    assert_eq!(write["status"], json!("warning"), "{write}");
    assert_eq!(check(&write, "sandbox")["status"], json!("warning"));
    // A review needs a git work tree; the demo project is none until it gets one.
    let review = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "workflow_kind": "review"}),
    );
    assert_eq!(
        check(&review, "git_repository")["status"],
        json!("warning"),
        "{review}"
    );
    std::fs::create_dir(h.project.join(".git")).expect("mkdir .git");
    let review = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "workflow_kind": "review"}),
    );
    assert_eq!(
        check(&review, "git_repository")["status"],
        json!("ok"),
        "{review}"
    );
    assert_eq!(
        review["nextRecommendedAction"],
        json!("codex_start_review_workflow")
    );
    let file = h.project.join("notes.txt");
    std::fs::write(&file, "not a directory").expect("write");
    let gone = h.call(
        "codex_preflight_project_run",
        json!({"cwd": file.display().to_string()}),
    );
    assert_eq!(gone["status"], json!("error"), "{gone}");
    assert_eq!(
        check(&gone, "project_path")["details"]["category"],
        json!("project_path")
    );

    let outside = h.call("codex_preflight_project_run", json!({"cwd": "/etc"}));
    assert_invalid_argument(&outside, "cwd");
    let unknown = h.call(
        "codex_preflight_project_run",
        json!({"project_id": "no-such-project"}),
    );
    assert_eq!(
        unknown["error"]["code"],
        json!("CODEX_PROJECT_NOT_FOUND"),
        "{unknown}"
    );
    let too_long = h.call(
        "codex_preflight_project_run",
        json!({"timeout_seconds": 301}),
    );
    assert_invalid_argument(&too_long, "timeout_seconds");
}

#[test]
fn the_live_probe_runs_one_marked_read_only_turn() {
    let mut h = Harness::start("preflight-probe");
    let project = h.project.display().to_string();
    let payload = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "live_probe": true, "timeout_seconds": 60}),
    );
    assert_eq!(payload["status"], json!("ok"), "{payload}");
    let probe = &payload["probeOperation"];
    assert_eq!(probe["status"], json!("completed"), "{payload}");
    assert_eq!(check(&payload, "live_probe")["status"], json!("ok"));
    let operation_id = probe["operationId"].as_str().expect("operation id");
    let status = h.status(operation_id);
    assert_eq!(
        status["runtimePolicy"]["effectiveSandbox"],
        json!("read-only"),
        "{status}"
    );
    let prompts: Vec<String> = h
        .model
        .requests()
        .iter()
        .flat_map(|r| r.user_texts())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("MCP LIVE TEST / DO NOT MODIFY FILES")),
        "{prompts:?}"
    );
    // A second probe is a new turn, not a duplicate of the first.
    let again = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "live_probe": true, "timeout_seconds": 60}),
    );
    assert_eq!(
        again["probeOperation"]["status"],
        json!("completed"),
        "{again}"
    );
    assert_ne!(again["probeOperation"]["operationId"], probe["operationId"]);
}

#[test]
fn the_live_probe_is_refused_inside_our_own_codex_child() {
    // The tool reads, so the server's guard lets it through; its probe is a write and is refused by itself.
    let mut h = Harness::start_with(
        "preflight-guard",
        &[("CODEX_CONTROL_PLANE_MCP_PARENT", "12345")],
    );
    let project = h.project.display().to_string();
    let payload = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "live_probe": true, "timeout_seconds": 5}),
    );
    assert_eq!(payload["status"], json!("error"), "{payload}");
    let probe = check(&payload, "live_probe");
    assert_eq!(probe["status"], json!("error"));
    assert_eq!(
        probe["details"]["errorCode"],
        json!("CODEX_RECURSION_GUARD")
    );
    assert_eq!(payload["probeOperation"], Value::Null);
    assert_eq!(h.model.n_model_calls(), 0, "nothing reached the model");
}

#[test]
fn a_write_run_is_told_when_another_write_holds_the_project() {
    let mut h = Harness::start("preflight-busy");
    let project = h.project.display().to_string();
    let idle = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "workflow_kind": "write", "sandbox": "workspace-write"}),
    );
    assert_eq!(check(&idle, "active_work")["status"], json!("ok"), "{idle}");
    // A write turn that waits for its command's approval keeps the project's write lock.
    h.model.push([
        support::fake_model::Reply::exec("echo busy > busy.txt", "call_1"),
        support::fake_model::Reply::text("Done."),
    ]);
    let submitted = h.submit(
        json!({"operation_type": "start_chat", "message": "write a file",
                                    "approval_policy": "untrusted", "sandbox": "workspace-write"}),
    );
    let id = crate::harness::op_id(&submitted);
    h.wait_for(&id, std::time::Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    let busy = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project, "workflow_kind": "write", "sandbox": "workspace-write"}),
    );
    let active = check(&busy, "active_work");
    assert_eq!(active["status"], json!("warning"), "{busy}");
    assert_eq!(active["details"]["writeLockHeldBy"], json!(id));
    assert_eq!(active["details"]["activeOperationCount"], json!(1));
    // A plan run only reads: the same work is no obstacle.
    let plan = h.call(
        "codex_preflight_project_run",
        json!({"project_id": project}),
    );
    assert_eq!(check(&plan, "active_work")["status"], json!("ok"));
}
