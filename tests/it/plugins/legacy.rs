//! A plugin built against WIT 0.1, checked in as a component (`tests/fixtures/plugins/v0_1_policy`, never
//! rebuilt by the harness), loaded next to the default plugins, which are built against 0.2: the host serves
//! both versions. Its denial reaches a client through a real tool call, its automatic answer comes back
//! through the interaction chain, and `plugins check` reports it as WIT 0.1.0.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::{config, info, root_of};
use crate::harness::{op_id, Harness};
use codex_control_plane::plugins::types::{Answer, Interaction};
use codex_control_plane::plugins::{PluginHost, PluginStatus};
use support::mcp_client::{isolated_env, server_binary, TempDir};
use support::wasm_plugins::workspace_root;

/// The checked-in 0.1 plugin folder.
fn fixture() -> PathBuf {
    workspace_root().join("tests/fixtures/plugins/v0_1_policy")
}

/// A plugins directory holding a copy of the fixture's manifest and component (not its sources).
fn plugins_dir(parent: &Path) -> PathBuf {
    let folder = parent.join("legacy-policy");
    std::fs::create_dir_all(&folder).expect("plugin folder");
    for file in ["plugin.toml", "plugin.wasm"] {
        std::fs::copy(fixture().join(file), folder.join(file)).expect("copy the fixture");
    }
    parent.to_path_buf()
}

#[test]
fn a_checked_in_wit_0_1_policy_runs_beside_the_0_2_defaults() {
    let temp = TempDir::new("plugins-legacy-host");
    let dir = plugins_dir(&temp.path().join("plugins"));
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    let legacy = info(&host, "legacy-policy");
    assert_eq!(legacy.status, PluginStatus::Loaded, "{:?}", legacy.error);
    assert_eq!(legacy.wit_version, "0.1.0");
    assert_eq!(info(&host, "default-policy").wit_version, "0.2.0");

    // Its automatic answer comes through the chain (after the default policy, which leaves a command in
    // the roots to a person); a 0.1 answer names no rule.
    let cwd = format!("{}/repo", root_of(&host));
    let approval = |command: &str| Interaction {
        interaction_id: "i-1".to_string(),
        kind: "command_approval".to_string(),
        thread_id: "t-1".to_string(),
        cwd: Some(cwd.clone()),
        command: Some(command.to_string()),
        payload: json!({"command": command}).to_string(),
        context: host.policy_context(),
    };
    let auto = host
        .on_interaction(&approval("echo legacy-ok"))
        .expect("the legacy policy answers");
    assert_eq!(
        (auto.plugin.as_str(), auto.answer, auto.rule.as_str()),
        ("legacy-policy", Answer::Accept, "")
    );
    assert!(host.on_interaction(&approval("echo other")).is_none());
    // The default policy's 0.2 answer names its rule.
    let mut outside = approval("echo legacy-ok");
    outside.cwd = Some("/".to_string());
    let declined = host
        .on_interaction(&outside)
        .expect("declined outside the roots");
    assert_eq!(
        (
            declined.plugin.as_str(),
            declined.answer,
            declined.rule.as_str()
        ),
        ("default-policy", Answer::Decline, "cwd_outside_roots")
    );
}

#[test]
fn a_wit_0_1_denial_reaches_the_client_and_plugins_check_reports_0_1() {
    let parent = TempDir::new("plugins-legacy-server");
    let dir = plugins_dir(parent.path());
    let dirs = dir.display().to_string();
    let mut harness = Harness::start_with(
        "plugins-legacy",
        &[("CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS", dirs.as_str())],
    );

    let health = harness.call("codex_health_summary", json!({}));
    let entry = |id: &str| -> Value {
        health["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == json!(id)).cloned())
            .unwrap_or_else(|| panic!("no {id} entry: {health}"))
    };
    assert_eq!(entry("legacy-policy")["status"], json!("loaded"));
    assert_eq!(entry("legacy-policy")["witVersion"], json!("0.1.0"));
    assert_eq!(entry("default-policy")["witVersion"], json!("0.2.0"));

    // The 0.1 policy denies the retired model: the client reads its reason, naming the plugin.
    let submitted = harness.submit(json!({
        "operation_type": "start_chat",
        "message": "hello",
        "model": "legacy-retired-model",
    }));
    let status = harness.wait_terminal(&op_id(&submitted));
    assert_eq!(status["status"], json!("failed"), "{status}");
    let error = status["lastError"].to_string();
    assert!(
        error.contains(
            "model legacy-retired-model is retired (legacy policy) (policy legacy-policy)"
        ),
        "{error}"
    );

    // `plugins check` on the checked-in folder: loads, WIT 0.1.0.
    let config = parent.path().join("config.toml");
    std::fs::write(&config, "").expect("config");
    let output = Command::new(server_binary().expect("binary"))
        .arg("--config")
        .arg(&config)
        .args(["plugins", "check"])
        .arg(dir.join("legacy-policy"))
        .arg("--json")
        .env_clear()
        .envs(isolated_env(parent.path()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run plugins check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("check prints JSON");
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["plugin"]["id"], json!("legacy-policy"));
    assert_eq!(report["plugin"]["wit"], json!("0.1.0"));
    assert_eq!(report["plugin"]["linked"], json!(true), "{report}");
}
