//! Plugin runtime through the public library API, with real wasmtime: the default policy, the
//! artifact cache, version and world checks, and hostile plugins contained within their budgets.

use std::path::Path;
use std::time::{Duration, Instant};

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{
    ActionKind, ActionRequest, Decision, Denial, InputSummary, SandboxMode, TurnSettings,
};
use codex_control_plane::plugins::{PluginError, PluginHost, PluginInfo, PluginStatus};
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest, plugin_folder, test_plugins};

/// Host capabilities and calls to every world.
mod dispatch;
/// The example third-party policy (`examples/policy-plugin`, on the guest SDK), rule by rule.
mod example;
/// A checked-in WIT 0.1 component beside the 0.2 defaults.
mod legacy;
/// Hostile plugins contained within their budgets.
mod limits;
/// Loading: the artifact cache, version and world checks, disabled and native plugins.
mod loading;
/// The default policy, the policy chain, and the operator's overrides.
mod policy;
/// Every world exported through the guest SDK.
mod sdk;
/// The example site policy acting on real approvals and submits, through MCP and the real app-server.
mod site_policy;
/// A third-party WIT 0.2 review workflow naming its review target, through the real review tool.
mod third_party_review;
/// The walk-through of docs/PLUGINS.md, run as the doc shows it.
mod walkthrough;
/// Workflow plugins driven by the engine.
mod workflow_engine;

/// A denial naming no rule, as a WIT 0.1 policy's (the hostile and native test plugins) reads through
/// `check_action_with`.
fn denied(reason: &str) -> Decision {
    Decision::Deny(Denial {
        rule: String::new(),
        reason: reason.to_string(),
    })
}

/// A configuration rooted in `root`, with `root/projects` as the only allowed root and the given
/// plugin directories.
fn config(root: &Path, dirs: Vec<std::path::PathBuf>) -> Config {
    let mut config = Config::for_tests(root);
    std::fs::create_dir_all(&config.projects_root).expect("projects root");
    config.plugins.dirs = dirs;
    config
}

/// A request to start a turn in `cwd` with `sandbox`; `model` selects the hostile behaviour.
fn request(host: &PluginHost, cwd: &str, sandbox: SandboxMode, model: &str) -> ActionRequest {
    ActionRequest {
        action_id: "action-1".to_string(),
        kind: ActionKind::StartTurn,
        operation_id: Some("op-1".to_string()),
        thread_id: None,
        settings: TurnSettings {
            cwd: Some(cwd.to_string()),
            sandbox: Some(sandbox),
            approval_policy: None,
            model: Some(model.to_string()),
            effort: None,
            collaboration_mode: None,
        },
        input: InputSummary {
            text_bytes: 5,
            image_count: 0,
        },
        context: host.policy_context(),
    }
}

/// The allowed root as the plugins see it.
fn root_of(host: &PluginHost) -> String {
    host.policy_context().allowed_roots[0].clone()
}

/// The status entry of plugin `id`.
#[track_caller]
fn info<'a>(host: &'a PluginHost, id: &str) -> &'a PluginInfo {
    host.infos()
        .iter()
        .find(|info| info.id == id)
        .unwrap_or_else(|| panic!("no info for {id}: {:?}", host.infos()))
}

/// Asserts that the default policy still answers normally.
#[track_caller]
fn assert_default_policy_works(host: &PluginHost) {
    let inside = format!("{}/repo", root_of(host));
    let decision = host
        .check_action_with(
            "default-policy",
            &request(host, &inside, SandboxMode::ReadOnly, ""),
        )
        .expect("default policy call");
    assert_eq!(decision, Decision::Allow);
}

/// Calls the hostile plugin's `check-action` with `behaviour`, returning the error and the time
/// the call took.
fn hostile_call(host: &PluginHost, id: &str, behaviour: &str) -> (PluginError, Duration) {
    let inside = format!("{}/repo", root_of(host));
    let started = Instant::now();
    let result = host.check_action_with(
        id,
        &request(host, &inside, SandboxMode::ReadOnly, behaviour),
    );
    let elapsed = started.elapsed();
    let error = result.expect_err("the hostile call must fail");
    (error, elapsed)
}

/// A host with the hostile plugin (id `hostile`) under `limits`.
fn hostile_host(temp: &TempDir, limits: &str) -> PluginHost {
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest("hostile", limits),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    assert_eq!(
        info(&host, "hostile").status,
        PluginStatus::Loaded,
        "{:?}",
        host.infos()
    );
    host
}
