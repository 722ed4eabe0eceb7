//! Crash recovery around creating calls, with the scripted fake app-server: a `thread/start` or `turn/start`
//! that was sent but never answered when the server died with `kill -9`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp_client::{isolated_env, workspace_binary, McpClient, TempDir};

fn env(dir: &Path, mode: &str, log: &Path) -> Vec<(String, String)> {
    let mut env = isolated_env(dir);
    let fake =
        workspace_binary("codex-control-plane-tests", "fake-app-server").expect("fake app-server");
    env.push(("CODEX_BINARY_PATH".into(), fake.display().to_string()));
    env.push(("FAKE_APP_SERVER_MODE".into(), mode.into()));
    env.push(("FAKE_APP_SERVER_LOG".into(), log.display().to_string()));
    env
}

fn project(dir: &Path) -> PathBuf {
    let project = dir.join("projects").join("demo");
    std::fs::create_dir_all(&project).expect("project");
    project
}

fn sent(log: &Path, method: &str) -> usize {
    let needle = format!("\"method\":\"{method}\"");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn wait_terminal(client: &mut McpClient, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client
            .call_tool("codex_get_operation_status", json!({"operation_id": id}))
            .expect("status");
        if status["terminal"] == json!(true) {
            return status;
        }
        assert!(Instant::now() < deadline, "not terminal: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(client: &mut McpClient, project: &Path, message: &str) -> String {
    let payload = client
        .call_tool(
            "codex_submit_task",
            json!({"operation_type": "start_chat", "message": message,
                   "project_id": project.display().to_string()}),
        )
        .expect("submit");
    payload["operationId"]
        .as_str()
        .expect("operationId")
        .to_string()
}

#[test]
fn a_turn_start_that_may_have_been_sent_is_never_sent_again() {
    let dir = TempDir::new("recovery-turn");
    let log = dir.path().join("fake.log");
    let project = project(dir.path());
    let mut client = McpClient::start(&env(dir.path(), "hang_turn", &log)).expect("start");
    let id = submit(&mut client, &project, "a task whose turn/start is lost");
    wait_until("turn/start to be sent", Duration::from_secs(20), || {
        sent(&log, "turn/start") == 1
    });
    client.kill();

    let mut client = McpClient::start(&env(dir.path(), "normal", &log)).expect("restart");
    let status = wait_terminal(&mut client, &id);
    assert_eq!(
        status["status"],
        json!("unknown_after_app_server_exit"),
        "{status}"
    );
    assert!(
        status["lastError"].to_string().contains("turn/start"),
        "{status}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sent(&log, "turn/start"),
        1,
        "turn/start must not be sent twice"
    );
    client.close(Duration::from_secs(15)).expect("exit");
}

#[test]
fn a_lost_thread_start_is_retried_and_the_turn_runs_once() {
    let dir = TempDir::new("recovery-thread");
    let log = dir.path().join("fake.log");
    let project = project(dir.path());
    let mut client = McpClient::start(&env(dir.path(), "hang", &log)).expect("start");
    let id = submit(&mut client, &project, "a task whose thread/start is lost");
    wait_until("thread/start to be sent", Duration::from_secs(20), || {
        sent(&log, "thread/start") == 1
    });
    client.kill();

    let mut client = McpClient::start(&env(dir.path(), "normal", &log)).expect("restart");
    let status = wait_terminal(&mut client, &id);
    assert_eq!(status["status"], json!("completed"), "{status}");
    assert_eq!(
        sent(&log, "thread/start"),
        2,
        "an empty thread is the worst a retry leaves behind"
    );
    assert_eq!(sent(&log, "turn/start"), 1);
    client.close(Duration::from_secs(15)).expect("exit");
}

#[test]
fn an_overloaded_app_server_queues_the_turn_instead_of_failing_it() {
    let dir = TempDir::new("recovery-overloaded");
    let log = dir.path().join("fake.log");
    let project = project(dir.path());
    let mut client = McpClient::start(&env(dir.path(), "overloaded_once", &log)).expect("start");
    let id = submit(&mut client, &project, "a task app-server first refuses");
    let status = wait_terminal(&mut client, &id);
    assert_eq!(status["status"], json!("completed"), "{status}");
    assert_eq!(sent(&log, "turn/start"), 2, "refused once, then sent again");
    // Backpressure spends no attempt: the run that worked was the first counted one.
    assert_eq!(status["attemptCount"], json!(1), "{status}");
    client.close(Duration::from_secs(15)).expect("exit");
}

/// A thread whose history records no model (left by a plan-mode turn that named an empty one) cannot be
/// resumed as it is: the next message resumes it on the model codex is configured with, instead of failing.
#[test]
fn a_thread_that_records_no_model_is_resumed_on_the_configured_one() {
    let dir = TempDir::new("recovery-modelless");
    let log = dir.path().join("fake.log");
    let project = project(dir.path());
    let mut client = McpClient::start(&env(dir.path(), "modelless_thread", &log)).expect("start");
    let first = submit(&mut client, &project, "start the thread");
    let status = wait_terminal(&mut client, &first);
    assert_eq!(status["status"], json!("completed"), "{status}");
    let thread = status["threadId"].as_str().expect("threadId").to_string();
    // A new app-server generation has not loaded the thread: the next turn must resume it.
    let restarted = client
        .call_tool("codex_restart_app_server", json!({}))
        .expect("restart");
    assert_eq!(restarted["ok"], json!(true), "{restarted}");
    let next = client
        .call_tool(
            "codex_submit_task",
            json!({"operation_type": "send_message", "thread_id": thread, "message": "continue",
                   "project_id": project.display().to_string()}),
        )
        .expect("submit");
    let next = next["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    let status = wait_terminal(&mut client, &next);
    assert_eq!(status["status"], json!("completed"), "{status}");
    assert_eq!(
        status["attemptCount"],
        json!(1),
        "repaired within the attempt: {status}"
    );
    let resumes: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == json!("thread/resume"))
        .collect();
    assert_eq!(resumes.len(), 2, "{resumes:?}");
    assert!(resumes[0]["params"].get("model").is_none(), "{resumes:?}");
    assert_eq!(resumes[1]["params"]["model"], json!("configured-model"));
    assert_eq!(sent(&log, "config/read"), 1);
    client.close(Duration::from_secs(15)).expect("exit");
}

/// The pinned schema still lists the legacy `execCommandApproval`: it becomes a pending interaction like the v2
/// approval, and its answer reaches app-server as the `ReviewDecision` the method expects.
#[test]
fn a_legacy_exec_approval_is_answered_with_a_review_decision() {
    let dir = TempDir::new("legacy-approval");
    let log = dir.path().join("fake.log");
    let project = project(dir.path());
    let mut client = McpClient::start(&env(dir.path(), "legacy_approval", &log)).expect("start");
    let id = submit(&mut client, &project, "a task with a legacy approval");
    let mut interaction = String::new();
    let server_log = dir.path().join("server.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    wait_until("the legacy approval", Duration::from_secs(25), || {
        assert!(
            Instant::now() < deadline,
            "no interaction; server log:\n{}",
            std::fs::read_to_string(&server_log).unwrap_or_default()
        );
        let listed = client
            .call_tool(
                "codex_list_pending_interactions",
                json!({"operation_id": id}),
            )
            .expect("list");
        match listed["interactions"][0]["interactionId"].as_str() {
            Some(found) => {
                assert_eq!(
                    listed["interactions"][0]["kind"],
                    json!("approval"),
                    "{listed}"
                );
                interaction = found.to_string();
                true
            }
            None => false,
        }
    });
    let answered = client
        .call_tool(
            "codex_answer_pending_interaction",
            json!({"interaction_id": interaction, "decision": "accept"}),
        )
        .expect("answer");
    assert_eq!(answered["answered"], json!(true), "{answered}");
    let status = wait_terminal(&mut client, &id);
    assert_eq!(status["status"], json!("completed"), "{status}");
    let replies = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        replies
            .lines()
            .any(|l| l.contains("\"id\":0") && l.contains("\"decision\":\"approved\"")),
        "the legacy reply: {replies}"
    );
    client.close(Duration::from_secs(15)).expect("exit");
}
