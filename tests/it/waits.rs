//! Waiting instead of polling: `codex_wait`, the opportunistic `wait_seconds`, progress notifications and
//! cancellation. The real codex app-server and the fake model where a turn's content matters; the scripted
//! app-server where a turn must stay running, or an approval must come from the background worker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_model::{Gate, Reply};
use support::mcp_client::{scripted_env, McpClient, TempDir};

use crate::harness::{assert_invalid_argument, op_id, Harness};

/// A server on the scripted app-server in `fake_mode`, in `execution_mode`.
fn scripted(label: &str, fake_mode: &str, execution_mode: &str) -> (TempDir, McpClient, PathBuf) {
    let dir = TempDir::new(label);
    let env = scripted_env(dir.path(), execution_mode, fake_mode).expect("scripted app-server");
    let client = McpClient::start(&env).expect("server");
    let project = dir.path().join("projects").join("demo");
    std::fs::create_dir_all(&project).expect("project");
    (dir, client, project)
}

fn submit(client: &mut McpClient, project: &Path, extra: Value) -> Value {
    let mut args = json!({"operation_type": "start_chat", "project_id": project.display().to_string(),
                          "message": "do the thing"});
    if let (Some(args), Value::Object(extra)) = (args.as_object_mut(), extra) {
        args.extend(extra);
    }
    let submitted = client.call_tool("codex_submit_task", args).expect("submit");
    assert_eq!(submitted["ok"], json!(true), "{submitted}");
    submitted
}

/// The structured result of a `tools/call` reply.
fn structured(reply: &Value) -> Value {
    reply
        .pointer("/result/structuredContent")
        .cloned()
        .unwrap_or_else(|| panic!("no structuredContent in {reply}"))
}

fn wait_status(client: &mut McpClient, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client
            .call_tool("codex_get_operation_status", json!({"operation_id": id}))
            .expect("status");
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "timed out; last status {status}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn codex_wait_returns_when_a_held_turn_ends() {
    let mut h = Harness::start("wait-held-turn");
    let gate = Gate::new();
    h.model
        .push([Reply::held(&gate, Reply::text("Finished the held work."))]);
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hold on"})));
    h.wait_for(&id, Duration::from_secs(30), |s| s["turnId"].is_string());

    let request = h
        .client
        .send_request(
            "tools/call",
            json!({"name": "codex_wait", "arguments": {"operation_ids": [id], "timeout_seconds": 40}}),
        )
        .expect("send");
    // Nothing needs the caller while the model holds the turn.
    assert!(h
        .client
        .wait_reply(request, Duration::from_millis(400))
        .is_err());
    let opened = gate.open();
    let reply = h
        .client
        .wait_reply(request, Duration::from_secs(30))
        .expect("reply");
    let returned_after = opened.elapsed();
    let waited = structured(&reply);
    assert_eq!(waited["ok"], json!(true), "{waited}");
    assert_eq!(waited["reason"], json!("terminal"), "{waited}");
    assert_eq!(waited["changed"], json!(true));
    assert_eq!(waited["ready"][0]["id"], json!(id));
    let operation = &waited["operations"][0];
    assert_eq!(operation["status"], json!("completed"), "{waited}");
    assert_eq!(
        operation["finalReport"]["text"],
        json!("Finished the held work.")
    );
    // The figure itself is a benchmark's (docs/PERFORMANCE.md); here only "on the change, not on a tick".
    assert!(
        returned_after < Duration::from_secs(10),
        "{returned_after:?}"
    );
    // The result keeps to the published output schema.
    let again = h.call(
        "codex_wait",
        json!({"operation_ids": [id], "timeout_seconds": 0}),
    );
    assert_eq!(again["reason"], json!("terminal"));
    assert_eq!(again["changed"], json!(false), "already terminal: {again}");
}

#[test]
fn codex_wait_returns_on_an_approval_the_worker_recorded_and_an_answer_waits_for_the_end() {
    let (dir, mut client, project) = scripted("wait-approval", "approval", "auto");
    let id = op_id(&submit(&mut client, &project, json!({})));
    // The approval is recorded by the background worker: another process than the one waiting.
    let waited = client
        .call_tool(
            "codex_wait",
            json!({"operation_ids": [id], "timeout_seconds": 30}),
        )
        .expect("wait");
    assert_eq!(waited["reason"], json!("pending_interaction"), "{waited}");
    let interaction = waited["operations"][0]["pendingInteractions"][0]["interactionId"]
        .as_str()
        .expect("pending interaction in the snapshot")
        .to_string();
    let answered = client
        .call_tool(
            "codex_answer_pending_interaction",
            json!({"interaction_id": interaction, "decision": "accept", "wait_seconds": 20}),
        )
        .expect("answer");
    assert_eq!(answered["answered"], json!(true), "{answered}");
    assert_eq!(
        answered["waitOutcome"]["reason"],
        json!("terminal"),
        "{answered}"
    );
    assert_eq!(
        answered["operationStatus"]["status"],
        json!("completed"),
        "{answered}"
    );
    client.close(Duration::from_secs(15)).expect("close");
    drop(dir);
}

#[test]
fn codex_wait_times_out_unchanged_and_refuses_bad_input() {
    let (_dir, mut client, project) = scripted("wait-timeout", "hang_turn", "inline");
    let id = op_id(&submit(&mut client, &project, json!({})));
    wait_status(&mut client, &id, |s| s["status"] == json!("starting_turn"));
    let began = Instant::now();
    let waited = client
        .call_tool(
            "codex_wait",
            json!({"operation_ids": [id], "timeout_seconds": 0.5}),
        )
        .expect("wait");
    assert!(began.elapsed() >= Duration::from_millis(500));
    assert_eq!(waited["reason"], json!("timeout"), "{waited}");
    assert_eq!(waited["changed"], json!(false), "{waited}");
    assert_eq!(waited["operations"][0]["operationId"], json!(id));

    for (arguments, field) in [
        (json!({}), "operation_ids"),
        (
            json!({"operation_ids": [id], "timeout_seconds": 51}),
            "timeout_seconds",
        ),
        (json!({"operation_ids": ["op_unknown"]}), "operation_id"),
        (json!({"workflow_ids": [""]}), "workflow_ids[0]"),
    ] {
        let refused = client
            .call_tool("codex_wait", arguments.clone())
            .expect("call");
        assert_eq!(refused["ok"], json!(false), "{arguments}: {refused}");
        assert_invalid_argument(&refused, field);
    }
}

#[test]
fn submit_with_wait_seconds_answers_inline_when_quick_and_with_the_handle_when_not() {
    let (_dir, mut quick, project) = scripted("wait-submit-quick", "normal", "inline");
    let done = submit(&mut quick, &project, json!({"wait_seconds": 20}));
    assert_eq!(done["terminal"], json!(true), "{done}");
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(done["waitOutcome"]["reason"], json!("terminal"), "{done}");
    assert_eq!(done["waitOutcome"]["changed"], json!(true), "{done}");
    // A retry with the same key and another wait is the same request, not a reused key.
    let key = json!({"client_request_id": "wait-key", "wait_seconds": 10});
    let first = submit(&mut quick, &project, key);
    let again = submit(
        &mut quick,
        &project,
        json!({"client_request_id": "wait-key", "wait_seconds": 0}),
    );
    assert_eq!(again["operationId"], first["operationId"], "{again}");
    assert!(again.get("waitOutcome").is_none(), "no wait asked: {again}");

    let (_dir, mut slow, project) = scripted("wait-submit-slow", "hang_turn", "inline");
    let began = Instant::now();
    let handle = submit(&mut slow, &project, json!({"wait_seconds": 1}));
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(handle["terminal"], json!(false), "{handle}");
    assert_eq!(
        handle["waitOutcome"]["reason"],
        json!("timeout"),
        "{handle}"
    );
    assert!(handle["operationId"].is_string());
}

#[test]
fn a_wait_reports_progress_and_ends_at_once_when_cancelled() {
    let (dir, mut client, project) = scripted("wait-progress", "hang_turn", "inline");
    let id = op_id(&submit(&mut client, &project, json!({})));
    wait_status(&mut client, &id, |s| s["status"] == json!("starting_turn"));
    let request = client
        .send_request(
            "tools/call",
            json!({"name": "codex_wait", "arguments": {"operation_ids": [id], "timeout_seconds": 45},
                   "_meta": {"progressToken": "wait-1"}}),
        )
        .expect("send");
    let progress = client
        .wait_message(Duration::from_secs(6), |m| {
            m["method"] == json!("notifications/progress")
                && m["params"]["progressToken"] == json!("wait-1")
        })
        .expect("a progress notification within one period");
    assert_eq!(progress["params"]["total"], json!(45.0), "{progress}");
    assert!(progress["params"]["message"].is_string(), "{progress}");

    let cancelled_at = Instant::now();
    client
        .notify(
            "notifications/cancelled",
            json!({"requestId": request, "reason": "the user moved on"}),
        )
        .expect("cancel");
    // The wait ends at once; MCP drops the reply to a cancelled request, so the server's log says so.
    let log = dir.path().join("server.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("wait cancelled by the client")
    {
        assert!(Instant::now() < deadline, "the wait did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert!(client
        .wait_reply(request, Duration::from_millis(300))
        .is_err());
    // The server keeps serving.
    let status = client
        .call_tool("codex_get_operation_status", json!({"operation_id": id}))
        .expect("status");
    assert_eq!(status["ok"], json!(true));
}

#[test]
fn a_plan_workflow_runs_start_to_end_in_two_waiting_calls() {
    let mut h = Harness::start("wait-plan");
    h.model.push([Reply::text(
        "Plan.\n<proposed_plan>\n1. Write the note\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a note", "wait_seconds": 40}),
    );
    assert_eq!(started["phase"], json!("plan_ready"), "{started}");
    assert_eq!(
        started["waitOutcome"]["reason"],
        json!("plan_ready"),
        "{started}"
    );
    assert!(started["latestPlan"].is_object() || started["latestPlan"].is_string());
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();

    h.model.push([Reply::text("Wrote the note.")]);
    // The approval has not moved the workflow yet when the wait begins: `plan_ready` must not end it.
    let approved = h.call(
        "codex_approve_plan",
        json!({"workflow_id": workflow_id, "wait_seconds": 40}),
    );
    assert_eq!(
        approved["waitOutcome"]["reason"],
        json!("terminal"),
        "{approved}"
    );
    assert_eq!(approved["phase"], json!("completed"), "{approved}");
    assert_eq!(approved["terminal"], json!(true), "{approved}");

    let waited = h.call(
        "codex_wait",
        json!({"workflow_ids": [workflow_id], "timeout_seconds": 1}),
    );
    assert_eq!(waited["reason"], json!("terminal"), "{waited}");
    assert_eq!(waited["workflows"][0]["workflowId"], json!(workflow_id));
}
