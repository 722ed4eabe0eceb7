//! Host capabilities of plugins: the manifest declares them, the operator grants them (`plugins.grants`), a
//! call outside them fails naming the capability; plugin state persisted in SQLite across a server restart
//! and shown in health; the redacted views of a real operation and workflow.

use std::path::{Path, PathBuf};

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{
    ActionKind, ActionRequest, Decision, Denial, InputSummary, SandboxMode, TurnSettings,
};
use codex_control_plane::plugins::{
    CallErrorKind, Capability, PluginError, PluginHost, PluginInfo, PluginStatus,
};
use serde_json::{json, Value};
use support::fake_model::Reply;
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest_with, plugin_folder, test_plugins};

use crate::harness::{op_id, Harness};

/// A library host whose third-party plugin `hostile` declares `declared` and is granted `granted`
/// (`None`: no `plugins.grants` entry).
fn host_with(
    temp: &TempDir,
    declared: Option<&[&str]>,
    granted: Option<Vec<Capability>>,
) -> PluginHost {
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest_with("hostile", "", declared),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let mut config = Config::for_tests(temp.path());
    std::fs::create_dir_all(&config.projects_root).expect("projects root");
    config.plugins.dirs = vec![dir];
    if let Some(granted) = granted {
        config.plugins.grants.insert("hostile".to_string(), granted);
    }
    PluginHost::load(&config).expect("host loads")
}

/// The status entry of the hostile plugin.
fn hostile_info(host: &PluginHost) -> &PluginInfo {
    host.infos()
        .iter()
        .find(|info| info.id == "hostile")
        .unwrap_or_else(|| panic!("no hostile entry: {:?}", host.infos()))
}

/// Calls the hostile policy with `model` selecting its behaviour.
fn policy_call(host: &PluginHost, model: &str) -> Result<Decision, PluginError> {
    let root = host.policy_context().allowed_roots[0].clone();
    let request = ActionRequest {
        action_id: "action-1".to_string(),
        kind: ActionKind::StartTurn,
        operation_id: Some("op-1".to_string()),
        thread_id: None,
        settings: TurnSettings {
            cwd: Some(format!("{root}/x")),
            sandbox: Some(SandboxMode::ReadOnly),
            approval_policy: None,
            model: Some(model.to_string()),
            effort: None,
            collaboration_mode: None,
        },
        input: InputSummary {
            text_bytes: 1,
            image_count: 0,
        },
        context: host.policy_context(),
    };
    host.check_action_with("hostile", &request)
}

#[test]
fn a_call_outside_the_declared_capabilities_fails_naming_the_capability() {
    // No `capabilities` key: log, clock and config work; state and views trap before the host function.
    let temp = TempDir::new("caps-undeclared");
    let host = host_with(&temp, None, None);
    let info = hostile_info(&host);
    assert_eq!(info.status, PluginStatus::Loaded, "{info:?}");
    assert_eq!(
        info.capabilities,
        vec![Capability::Log, Capability::Clock, Capability::Config]
    );
    // A default plugin is granted exactly what it declares.
    let default_policy = host
        .infos()
        .iter()
        .find(|info| info.id == "default-policy")
        .expect("default policy listed");
    assert_eq!(default_policy.granted, default_policy.capabilities);
    assert_eq!(
        policy_call(&host, "config").expect("config is basic"),
        Decision::Deny(Denial {
            rule: String::new(),
            reason: r#"{"greeting":"hello"}"#.to_string()
        })
    );
    assert_eq!(
        policy_call(&host, "allow").expect("log and clock are basic"),
        Decision::Allow
    );
    for (model, capability) in [("state", "state"), ("view", "views")] {
        let error = policy_call(&host, model).expect_err("outside its capabilities");
        assert_eq!(
            error.call_kind(),
            Some(&CallErrorKind::CapabilityDenied {
                capability: capability.to_string()
            }),
            "{error}"
        );
        assert!(
            error.to_string().contains(&format!("`{capability}`")),
            "{error}"
        );
    }
}

#[test]
fn a_declared_capability_the_operator_did_not_grant_fails_the_load() {
    // The third-party plugin declares state and views, the operator grants state only: it does not load, and
    // its entry names the missing grant and how to give it.
    let temp = TempDir::new("caps-ungranted");
    let host = host_with(
        &temp,
        Some(&["log", "state", "views"]),
        Some(vec![Capability::Log, Capability::State]),
    );
    let info = hostile_info(&host);
    assert_eq!(info.status, PluginStatus::Failed, "{info:?}");
    let error = info.error.clone().unwrap_or_default();
    assert!(
        error.contains("did not grant: views") && error.contains("plugins.grants.hostile"),
        "{error}"
    );
    assert!(host
        .plugins_with(codex_control_plane::plugins::World::Policy)
        .iter()
        .all(|id| id != "hostile"));
    // Listed in plugins.required, it stops start-up with the same reason.
    let required = host
        .check_required(&["hostile".to_string()])
        .expect_err("required plugin is missing");
    assert!(
        required.to_string().contains("required plugin hostile")
            && required.to_string().contains("views"),
        "{required}"
    );
    assert!(host.check_required(&["default-policy".to_string()]).is_ok());
}

#[test]
fn a_third_party_plugin_without_a_grant_entry_gets_only_the_basic_capabilities() {
    // Declaring state without any grant entry is refused: the default grant is log, clock and config.
    let temp = TempDir::new("caps-default-grant");
    let host = host_with(&temp, Some(&["state"]), None);
    let info = hostile_info(&host);
    assert_eq!(info.status, PluginStatus::Failed, "{info:?}");
    assert_eq!(
        info.granted,
        vec![Capability::Log, Capability::Clock, Capability::Config]
    );
    assert!(
        info.error.as_deref().unwrap_or_default().contains("state"),
        "{info:?}"
    );
}

/// A server configuration file granting the hostile plugin state and views; returns its path.
fn grants_file(dir: &Path) -> PathBuf {
    let path = dir.join("grants.toml");
    std::fs::write(
        &path,
        "[plugins.grants]\nhostile = [\"log\", \"clock\", \"config\", \"state\", \"views\"]\n",
    )
    .expect("config file");
    path
}

/// The server environment that loads the hostile plugin from `plugins` with the grants of `config`.
fn hostile_env(plugins: &Path, config: &Path) -> Vec<(String, String)> {
    vec![
        (
            "CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS".to_string(),
            plugins.display().to_string(),
        ),
        (
            "CODEX_CONTROL_PLANE_MCP_CONFIG".to_string(),
            config.display().to_string(),
        ),
    ]
}

/// Submits a task whose model selects the hostile policy's behaviour and returns its `lastError` text once
/// the policy refused it.
fn denied_with(harness: &mut Harness, model: &str) -> String {
    let submitted =
        harness.submit(json!({"operation_type": "start_chat", "message": "hello", "model": model}));
    let status = harness.wait_terminal(&op_id(&submitted));
    assert_eq!(status["status"], json!("failed"), "{status}");
    status["lastError"].to_string()
}

/// The hostile plugin's entry in the health summary.
fn health_entry(harness: &mut Harness) -> Value {
    let health = harness.call("codex_health_summary", json!({}));
    health["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == json!("hostile")).cloned())
        .unwrap_or_else(|| panic!("no hostile entry: {health}"))
}

#[test]
fn plugin_state_survives_a_server_restart_and_shows_in_health() {
    // The policy counts its calls in its state: the count goes on after the server restarts on the same
    // database, and health shows what the plugin holds.
    let plugins = test_plugins().expect("test plugins");
    let parent = TempDir::new("caps-state-plugins");
    let manifest = hostile_manifest_with(
        "hostile",
        "",
        Some(&["log", "clock", "config", "state", "views"]),
    );
    plugin_folder(parent.path(), "hostile", &manifest, &plugins.hostile).expect("plugin folder");
    let config = grants_file(parent.path());
    let env = hostile_env(parent.path(), &config);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut harness = Harness::start_with("caps-state", &extra);

    let first = denied_with(&mut harness, "state");
    assert!(first.contains("count=1 stored=true"), "{first}");
    let entry = health_entry(&mut harness);
    assert_eq!(entry["status"], json!("loaded"), "{entry}");
    assert_eq!(
        entry["grantedCapabilities"],
        json!(["log", "clock", "config", "state", "views"])
    );
    // One key, "count" = "1": 5 + 1 bytes.
    assert_eq!(entry["state"], json!({"keys": 1, "bytes": 6}), "{entry}");

    harness.reconnect(&extra);
    let second = denied_with(&mut harness, "state");
    assert!(second.contains("count=2 stored=true"), "{second}");
}

#[test]
fn views_show_a_real_operation_and_workflow_redacted() {
    // An operation that ran is visible to the plugin as the status tool's payload, with its absolute paths
    // redacted; so is a workflow; an unknown id is `none`.
    let plugins = test_plugins().expect("test plugins");
    let parent = TempDir::new("caps-views-plugins");
    let manifest = hostile_manifest_with("hostile", "", Some(&["log", "clock", "config", "views"]));
    plugin_folder(parent.path(), "hostile", &manifest, &plugins.hostile).expect("plugin folder");
    let config = parent.path().join("grants.toml");
    std::fs::write(
        &config,
        "[plugins.grants]\nhostile = [\"log\", \"clock\", \"config\", \"views\"]\n",
    )
    .expect("config file");
    let env = hostile_env(parent.path(), &config);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut harness = Harness::start_with("caps-views", &extra);

    // The answer names a file by its absolute path: the status tool shows it as is.
    let project = harness.project.display().to_string();
    let answer = format!("Wrote {project}/notes.md");
    harness.model.push([Reply::text(&answer)]);
    let submitted = harness.submit(json!({"operation_type": "start_chat", "message": "say hello"}));
    let target = op_id(&submitted);
    let done = harness.wait_terminal(&target);
    assert!(
        done.to_string().contains(&answer),
        "the status tool shows the path: {done}"
    );

    let view = denied_with(&mut harness, &format!("view-op:{target}"));
    assert!(
        view.contains(&format!(r#"\"operationId\":\"{target}\""#)),
        "{view}"
    );
    assert!(
        view.contains(r#"\"status\":\"completed\""#) || view.contains(r#"\"status\":\"failed\""#),
        "{view}"
    );
    assert!(view.contains("Wrote [redacted-path:notes.md:"), "{view}");
    assert!(!view.contains(&project), "the view leaks the path: {view}");

    let unknown = denied_with(&mut harness, "view-op:op_unknown");
    assert!(unknown.contains("none"), "{unknown}");

    // A workflow: the workflow status payload, redacted the same way.
    let started = harness.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a change"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId: {started}"))
        .to_string();
    let workflow = denied_with(&mut harness, &format!("view-wf:{workflow_id}"));
    assert!(
        workflow.contains(&format!(r#"\"workflowId\":\"{workflow_id}\""#))
            && workflow.contains(r#"\"workflowKind\":\"plan_then_execute\""#),
        "{workflow}"
    );
    assert!(
        !workflow.contains(&project),
        "the view leaks the path: {workflow}"
    );
    let none = denied_with(&mut harness, "view-wf:wf_unknown");
    assert!(none.contains("none"), "{none}");
}

#[test]
fn health_lists_an_ungranted_plugin_as_failed_with_the_missing_grant() {
    // The operator sees why the plugin is not running, and the server goes on without it.
    let manifest = hostile_manifest_with("hostile", "", Some(&["log", "state"]));
    let (_plugins, mut harness) =
        Harness::start_with_hostile_plugin("caps-health", "hostile", &manifest);
    let entry = health_entry(&mut harness);
    assert_eq!(entry["status"], json!("failed"), "{entry}");
    assert_eq!(entry["capabilities"], json!(["log", "state"]), "{entry}");
    assert_eq!(
        entry["grantedCapabilities"],
        json!(["log", "clock", "config"]),
        "{entry}"
    );
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("did not grant: state") && error.contains("plugins.grants.hostile"),
        "{entry}"
    );
    let health = harness.call("codex_health_summary", json!({}));
    assert!(
        health["pluginErrors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["name"] == json!("hostile"))),
        "{health}"
    );
}
