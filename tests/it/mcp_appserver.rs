//! App-server lifecycle tools over MCP, against the real codex binary.

use std::time::Duration;

use serde_json::json;
use support::fake_model::FakeModel;
use support::mcp_client::{McpClient, TempDir};
use support::peer::CodexHome;

/// The server's environment pointing at the real codex peer and an offline CODEX_HOME.
pub fn peer_env(dir: &TempDir, home: &CodexHome) -> Vec<(String, String)> {
    support::peer::server_env(dir, home)
}

fn pid_alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn status_never_starts_and_restart_bumps_the_generation() {
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    let dir = TempDir::new("mcp-appserver");
    let mut client = McpClient::start(&peer_env(&dir, &home)).expect("start");

    let status = client
        .call_tool("codex_get_app_server_status", json!({}))
        .expect("status");
    assert_eq!(status["running"], json!(false), "{status}");
    assert_eq!(status["codexBinaryExists"], json!(true), "{status}");

    let health = client
        .call_tool("codex_health_summary", json!({}))
        .expect("health");
    assert_eq!(health["appServer"]["binaryFound"], json!(true), "{health}");
    assert_eq!(
        health["appServer"]["running"],
        json!(false),
        "health must not start app-server"
    );

    let restarted = client
        .call_tool("codex_restart_app_server", json!({}))
        .expect("restart");
    assert_eq!(restarted["started"], json!(true), "{restarted}");
    assert_eq!(restarted["processGeneration"], json!(1));
    let first_pid = restarted["afterPid"].as_u64().expect("pid");
    assert!(pid_alive(first_pid));

    let again = client
        .call_tool("codex_restart_app_server", json!({}))
        .expect("restart again");
    assert_eq!(again["processGeneration"], json!(2), "{again}");
    assert_eq!(again["beforePid"], json!(first_pid));
    let second_pid = again["afterPid"].as_u64().expect("pid");
    assert_ne!(first_pid, second_pid);

    let status = client
        .call_tool(
            "codex_get_app_server_status",
            json!({"include_recent_events": true}),
        )
        .expect("status");
    assert_eq!(status["running"], json!(true));
    let events = status["recentEvents"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "exited" && e["processGeneration"] == 1),
        "{status}"
    );

    let stopped = client
        .call_tool(
            "codex_restart_app_server",
            json!({"start_after_restart": false}),
        )
        .expect("stop");
    assert_eq!(stopped["started"], json!(false), "{stopped}");
    assert!(!pid_alive(second_pid), "stopped child still alive");

    let bad = client
        .call_tool("codex_restart_app_server", json!({"timeout_seconds": 0}))
        .expect("call");
    assert_eq!(bad["error"]["code"], json!("INVALID_ARGUMENT"));

    // Closing our stdin stops the server, and the server stops its child.
    let restarted = client
        .call_tool("codex_restart_app_server", json!({}))
        .expect("start");
    let pid = restarted["afterPid"].as_u64().expect("pid");
    let status = client.close(Duration::from_secs(15)).expect("exit");
    assert!(status.success());
    assert!(!pid_alive(pid), "app-server child outlived the server");
}
