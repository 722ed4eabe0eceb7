//! MCP 2026-07-28 next to the handshake revisions, and the Tasks extension (SEP-2663) on durable operations:
//! a task is created by `tools/call`, read with `tasks/get` (also after a restart of the server), cancelled
//! with `tasks/cancel` and answered with `tasks/update`. Driven over raw stdio against the scripted
//! app-server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp_client::{isolated_env, workspace_binary, McpClient, TempDir, REPLY_TIMEOUT};

const MODERN: &str = "2026-07-28";
const TASKS: &str = "io.modelcontextprotocol/tasks";

/// The `_meta` every 2026-07-28 request carries; `tasks` declares the extension.
fn meta(tasks: bool) -> Value {
    let capabilities = if tasks {
        json!({"extensions": {TASKS: {}}})
    } else {
        json!({})
    };
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "1.0.0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// Sends a 2026-07-28 request declaring the extension; returns the whole JSON-RPC reply.
fn modern(client: &mut McpClient, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta(true);
    let id = client.send_request(method, params).expect("send");
    client.wait_reply(id, REPLY_TIMEOUT).expect("reply")
}

/// The `result` of a 2026-07-28 request, failing on a JSON-RPC error.
fn modern_ok(client: &mut McpClient, method: &str, params: Value) -> Value {
    let reply = modern(client, method, params);
    assert!(reply.get("error").is_none(), "{method} failed: {reply}");
    reply["result"].clone()
}

/// An environment on the scripted app-server in `fake_mode`, inline (the server is its own worker).
fn scripted_env(label: &str, fake_mode: &str) -> (TempDir, Vec<(String, String)>, PathBuf) {
    let dir = TempDir::new(label);
    let mut env = isolated_env(dir.path());
    let fake =
        workspace_binary("codex-control-plane-tests", "fake-app-server").expect("fake app-server");
    env.push(("CODEX_BINARY_PATH".into(), fake.display().to_string()));
    env.push(("FAKE_APP_SERVER_MODE".into(), fake_mode.into()));
    let project = dir.path().join("projects").join("demo");
    std::fs::create_dir_all(&project).expect("project");
    (dir, env, project)
}

/// `codex_submit_task` as a task; returns the task id.
fn submit_task(client: &mut McpClient, project: &Path, message: &str) -> String {
    let created = modern_ok(
        client,
        "tools/call",
        json!({"name": "codex_submit_task", "arguments": {
            "operation_type": "start_chat", "project_id": project.display().to_string(),
            "message": message, "wait_seconds": 5}}),
    );
    assert_eq!(created["resultType"], json!("task"), "{created}");
    let task_id = created["taskId"].as_str().expect("taskId").to_string();
    assert!(task_id.starts_with("op_"), "{created}");
    assert!(
        created["createdAt"].is_string() && created.get("ttlMs").is_some(),
        "{created}"
    );
    task_id
}

/// Polls `tasks/get` until `done`; returns every status seen and the last result.
fn poll_task(
    client: &mut McpClient,
    task_id: &str,
    done: impl Fn(&Value) -> bool,
) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let task = modern_ok(client, "tasks/get", json!({"taskId": task_id}));
        assert_eq!(task["taskId"], json!(task_id), "{task}");
        assert_eq!(task["resultType"], json!("complete"), "{task}");
        let status = task["status"].as_str().unwrap_or_default().to_string();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if done(&task) {
            return (seen, task);
        }
        assert!(Instant::now() < deadline, "timed out; last {task}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn each_client_gets_its_protocol_revision() {
    let dir = TempDir::new("tasks-versions");
    // The handshake revisions negotiate as before; 2026-07-28 has no handshake, so an `initialize` asking for
    // it gets the newest revision that has one.
    let mut legacy_tools = Value::Null;
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        (MODERN, "2025-11-25"),
    ] {
        let mut client = McpClient::spawn(&isolated_env(dir.path()), &[]).expect("spawn");
        let result = client.initialize(asked).expect("initialize");
        assert_eq!(result["protocolVersion"], json!(answered), "{result}");
        assert!(result["capabilities"]["tools"].is_object(), "{result}");
        client.request("ping", json!({})).expect("ping");
        // The handshake revisions' list has no 2026-07-28 fields.
        let list = client.request("tools/list", json!({})).expect("tools/list");
        assert!(list.get("resultType").is_none(), "{asked}: resultType");
        assert!(list.get("ttlMs").is_none(), "{asked}: ttlMs");
        legacy_tools = list["tools"].clone();
        client.close(Duration::from_secs(10)).expect("exit");
    }

    // 2026-07-28 is stateless: `server/discover` and any request carry their own `_meta`.
    let mut client = McpClient::spawn(&isolated_env(dir.path()), &[]).expect("spawn");
    let refused = client
        .send_request("server/discover", json!({}))
        .and_then(|id| client.wait_reply(id, REPLY_TIMEOUT))
        .expect("reply");
    assert_eq!(refused["error"]["code"], json!(-32602), "{refused}");
    let discovered = client
        .request("server/discover", json!({"_meta": meta(false)}))
        .expect("discover");
    let versions = discovered["supportedVersions"].clone();
    for version in ["2025-06-18", "2025-11-25", MODERN] {
        assert!(
            versions
                .as_array()
                .is_some_and(|v| v.contains(&json!(version))),
            "{discovered}"
        );
    }
    assert!(
        discovered["capabilities"]["tools"].is_object(),
        "{discovered}"
    );
    assert!(
        discovered["capabilities"]["extensions"][TASKS].is_object(),
        "{discovered}"
    );
    // 2026-07-28 names the server in the result's `_meta`.
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        json!("codex-control-plane-mcp"),
        "{discovered}"
    );
    let tools = modern_ok(&mut client, "tools/list", json!({}));
    assert!(tools["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "codex_submit_task")));
    // 2026-07-28 results say they are complete and how long they stay fresh; the tools are the same.
    assert_eq!(
        tools["resultType"],
        json!("complete"),
        "{}",
        tools["resultType"]
    );
    assert!(tools["ttlMs"].is_u64(), "ttlMs: {}", tools["ttlMs"]);
    assert_eq!(tools["tools"], legacy_tools);
    // A call without the extension declared is answered as usual, never with a task.
    let mut params = json!({"name": "codex_health_summary", "arguments": {}});
    params["_meta"] = meta(false);
    let health = client.request("tools/call", params).expect("health");
    assert_eq!(health["structuredContent"]["ok"], json!(true), "{health}");
    // A request without `_meta` after a 2026-07-28 one is refused: there is no session to fall back on.
    let bare = client
        .send_request("tools/list", json!({}))
        .and_then(|id| client.wait_reply(id, REPLY_TIMEOUT))
        .expect("reply");
    assert!(bare.get("error").is_some(), "{bare}");
    client.close(Duration::from_secs(10)).expect("exit");
}

#[test]
fn a_submitted_task_completes_and_is_still_readable_after_a_restart() {
    let (_dir, env, project) = scripted_env("tasks-restart", "normal");
    let mut client = McpClient::spawn(&env, &[]).expect("spawn");
    let task_id = submit_task(&mut client, &project, "write the report");
    let (seen, done) = poll_task(&mut client, &task_id, |t| t["status"] != "working");
    assert!(
        seen.iter().all(|s| s == "working" || s == "completed"),
        "{seen:?}"
    );
    assert_eq!(done["status"], json!("completed"), "{done}");
    // The tool's final result: the operation's status as `codex_get_operation_status` returns it.
    let result = &done["result"];
    assert_eq!(result["isError"], json!(false), "{done}");
    assert_eq!(result["structuredContent"]["operationId"], json!(task_id));
    assert_eq!(result["structuredContent"]["status"], json!("completed"));
    assert_eq!(
        result["structuredContent"]["statusContract"]["surface"],
        json!("codex_get_operation_status")
    );
    let text = result["content"][0]["text"].as_str().expect("text block");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("json"),
        result["structuredContent"]
    );
    // SEP-2663 removed `tasks/result` from 2026-07-28 (`tasks/get` carries the result): method not found.
    let removed = modern(&mut client, "tasks/result", json!({"taskId": task_id}));
    assert_eq!(removed["error"]["code"], json!(-32601), "{removed}");

    // A crash of the server: a new one on the same database still knows the task.
    client.kill();
    let mut client = McpClient::spawn(&env, &[]).expect("restart");
    let again = modern_ok(&mut client, "tasks/get", json!({"taskId": task_id}));
    assert_eq!(again["status"], json!("completed"), "{again}");
    assert_eq!(
        again["result"]["structuredContent"]["operationId"],
        json!(task_id)
    );
    // An id that names nothing is the extension's "task not found".
    let unknown = modern(
        &mut client,
        "tasks/get",
        json!({"taskId": "op_00000000000000000000000000000000"}),
    );
    assert_eq!(unknown["error"]["code"], json!(-32602), "{unknown}");
    client.close(Duration::from_secs(10)).expect("exit");
}

#[test]
fn a_task_is_working_across_a_restart_and_cancel_interrupts_its_turn() {
    let (_dir, env, project) = scripted_env("tasks-cancel", "hold_turn");
    let mut client = McpClient::spawn(&env, &[]).expect("spawn");
    let task_id = submit_task(
        &mut client,
        &project,
        "hold this turn until it is cancelled",
    );
    let (_, task) = poll_task(&mut client, &task_id, |t| {
        t["status"] == "working"
            && t["statusMessage"]
                .as_str()
                .is_some_and(|m| m.contains("running"))
    });
    assert!(task["pollIntervalMs"].as_u64().is_some(), "{task}");

    // Without the extension declared, the task methods are refused as the extension requires.
    let mut params = json!({"taskId": task_id});
    params["_meta"] = meta(false);
    let id = client.send_request("tasks/get", params).expect("send");
    let refused = client.wait_reply(id, REPLY_TIMEOUT).expect("reply");
    assert_eq!(refused["error"]["code"], json!(-32021), "{refused}");

    let ack = modern_ok(&mut client, "tasks/cancel", json!({"taskId": task_id}));
    assert_eq!(ack["resultType"], json!("complete"), "{ack}");
    let (_, cancelled) = poll_task(&mut client, &task_id, |t| t["status"] != "working");
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    // The operation itself says how it ended.
    let mut params =
        json!({"name": "codex_get_operation_status", "arguments": {"operation_id": task_id}});
    params["_meta"] = meta(true);
    let status = client.request("tools/call", params).expect("status");
    assert_eq!(
        status["structuredContent"]["status"],
        json!("interrupted"),
        "{status}"
    );
    client.close(Duration::from_secs(10)).expect("exit");

    // A task created before a restart and still running is read (and ends) through the new server. A fresh
    // database: the scripted app-server numbers its turns from 1 again.
    let (_dir, env, project) = scripted_env("tasks-running-restart", "hold_turn");
    let mut client = McpClient::spawn(&env, &[]).expect("spawn");
    let task_id = submit_task(
        &mut client,
        &project,
        "keep another turn running across a restart",
    );
    poll_task(&mut client, &task_id, |t| {
        t["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("running"))
    });
    client.kill();
    let mut client = McpClient::spawn(&env, &[]).expect("restart");
    // The killed server's turn cannot be finished by anyone: recovery ends it, and the task with it.
    let (_, ended) = poll_task(&mut client, &task_id, |t| t["status"] != "working");
    assert_eq!(ended["status"], json!("completed"), "{ended}");
    assert_eq!(
        ended["result"]["structuredContent"]["status"],
        json!("unknown_after_app_server_exit"),
        "{ended}"
    );
    client.close(Duration::from_secs(10)).expect("exit");
}

/// A task whose work no dispatcher has claimed yet (here: `client` mode, and no worker runs) is cancelled
/// outright by `tasks/cancel`: it never starts later.
#[test]
fn cancel_of_a_queued_task_cancels_it_before_it_starts() {
    let (_dir, mut env, project) = scripted_env("tasks-cancel-queued", "normal");
    env.retain(|(k, _)| k != "CODEX_MCP_EXECUTION_MODE");
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), "client".into()));
    let mut client = McpClient::spawn(&env, &[]).expect("spawn");
    let task_id = submit_task(
        &mut client,
        &project,
        "wait in the queue, then be cancelled",
    );
    let ack = modern_ok(&mut client, "tasks/cancel", json!({"taskId": task_id}));
    assert_eq!(ack["resultType"], json!("complete"), "{ack}");
    let (_, cancelled) = poll_task(&mut client, &task_id, |t| t["status"] != "working");
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    let mut params =
        json!({"name": "codex_get_operation_status", "arguments": {"operation_id": task_id}});
    params["_meta"] = meta(true);
    let status = client.request("tools/call", params).expect("status");
    assert_eq!(
        status["structuredContent"]["status"],
        json!("cancelled"),
        "{status}"
    );
    assert_eq!(
        status["structuredContent"]["terminal"],
        json!(true),
        "{status}"
    );
    client.close(Duration::from_secs(10)).expect("exit");
}

#[test]
fn an_approval_is_the_tasks_input_and_tasks_update_answers_it() {
    let (_dir, env, project) = scripted_env("tasks-approval", "approval");
    answer_an_approval_through_the_task(&env, &project);
}

#[test]
fn a_task_in_auto_mode_is_answered_through_the_background_worker() {
    let (_dir, mut env, project) = scripted_env("tasks-approval-auto", "approval");
    // The MCP server only writes rows; the worker it starts owns app-server and records the approval.
    env.retain(|(k, _)| k != "CODEX_MCP_EXECUTION_MODE");
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), "auto".into()));
    answer_an_approval_through_the_task(&env, &project);
}

fn answer_an_approval_through_the_task(env: &[(String, String)], project: &Path) {
    let mut client = McpClient::spawn(env, &[]).expect("spawn");
    let task_id = submit_task(&mut client, project, "run a command");
    let (_, task) = poll_task(&mut client, &task_id, |t| t["status"] != "working");
    assert_eq!(task["status"], json!("input_required"), "{task}");
    let requests = task["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{task}");
    let (key, request) = requests.iter().next().expect("one request");
    assert!(key.starts_with("int_"), "{task}");
    assert_eq!(request["method"], json!("elicitation/create"), "{task}");
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["decision"]["enum"],
        json!(["accept", "cancel"]),
        "{task}"
    );

    // A response for a key that is not outstanding is ignored; the real one answers the approval.
    let ack = modern_ok(
        &mut client,
        "tasks/update",
        json!({"taskId": task_id, "inputResponses": {
            "int_00000000000000000000000000000000": {"action": "accept", "content": {"decision": "accept"}},
            key.clone(): {"action": "accept", "content": {"decision": "accept"}}}}),
    );
    assert_eq!(ack["resultType"], json!("complete"), "{ack}");
    let (_, done) = poll_task(&mut client, &task_id, |t| {
        !matches!(t["status"].as_str(), Some("working" | "input_required"))
    });
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["status"],
        json!("completed"),
        "{done}"
    );
    assert_eq!(
        done["result"]["structuredContent"]["pendingInteractions"],
        json!([]),
        "{done}"
    );
    client.close(Duration::from_secs(10)).expect("exit");
}
