//! The default policy through wasmtime, the policy chain, and the operator's overrides of its settings.

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{
    ActionKind, Answer, Decision, Denial, Interaction, Narrowing, SandboxMode,
};
use codex_control_plane::plugins::{PluginError, PluginHost, PluginStatus, World};
use support::mcp_client::TempDir;

use super::{config, hostile_host, info, request, root_of};

#[test]
fn default_policy_decides_through_wasmtime() {
    // Inside the roots: allowed; outside or with `..`: denied; danger-full-access: denied;
    // a review with a write sandbox: narrowed to read-only.
    let temp = TempDir::new("plugins-default");
    let host = PluginHost::load(&config(temp.path(), Vec::new())).expect("host loads");
    let default = info(&host, "default-policy");
    assert_eq!(default.status, PluginStatus::Loaded);
    assert_eq!(default.kind, "wasm");
    assert_eq!(default.wit_version, "0.2.0");
    assert_eq!(default.worlds, vec![World::Policy]);

    let root = root_of(&host);
    let inside = format!("{root}/repo");
    let allow = host.check_action(&request(&host, &inside, SandboxMode::WorkspaceWrite, ""));
    assert_eq!(allow.expect("call"), Decision::Allow);

    let outside = host.check_action(&request(&host, "/etc", SandboxMode::ReadOnly, ""));
    assert!(
        matches!(outside.expect("call"), Decision::Deny(Denial { reason, .. }) if reason.contains("outside the allowed roots") && reason.contains("default-policy"))
    );

    let escape = format!("{root}/../../etc");
    let escape = host.check_action(&request(&host, &escape, SandboxMode::ReadOnly, ""));
    assert!(
        matches!(escape.expect("call"), Decision::Deny(Denial { reason, .. }) if reason.contains(".."))
    );

    let danger = host.check_action(&request(&host, &inside, SandboxMode::DangerFullAccess, ""));
    assert!(
        matches!(danger.expect("call"), Decision::Deny(Denial { reason, .. }) if reason.contains("danger-full-access"))
    );

    let mut review = request(&host, &inside, SandboxMode::WorkspaceWrite, "m");
    review.kind = ActionKind::StartReview;
    match host.check_action(&review).expect("call") {
        Decision::Narrow(Narrowing { settings, .. }) => {
            // The chain returns the complete effective settings.
            assert_eq!(settings.sandbox, Some(SandboxMode::ReadOnly));
            assert_eq!(settings.cwd.as_deref(), Some(inside.as_str()));
            assert_eq!(settings.model.as_deref(), Some("m"));
        }
        other => panic!("expected narrow, got {other:?}"),
    }

    let interaction = Interaction {
        interaction_id: "i-1".to_string(),
        kind: "command_approval".to_string(),
        thread_id: "t-1".to_string(),
        cwd: Some("/tmp".to_string()),
        command: Some("rm -rf /".to_string()),
        payload: "{}".to_string(),
        context: host.policy_context(),
    };
    let answer = host.on_interaction(&interaction).expect("declined");
    assert_eq!(
        (answer.plugin.as_str(), answer.answer),
        ("default-policy", Answer::Decline)
    );
}

#[test]
fn policy_chain_merges_narrowing() {
    // default-policy allows, hostile narrows the model: the chain returns the merged settings.
    let temp = TempDir::new("plugins-chain");
    let host = hostile_host(&temp, "");
    assert_eq!(
        host.plugins_with(World::Policy),
        vec!["default-policy".to_string(), "hostile".to_string()]
    );
    let inside = format!("{}/x", root_of(&host));
    match host.check_action(&request(
        &host,
        &inside,
        SandboxMode::WorkspaceWrite,
        "narrow",
    )) {
        Ok(Decision::Narrow(Narrowing { rule, settings })) => {
            // A 0.1 policy names no rule: the chain names the plugin.
            assert_eq!(rule, "hostile");
            assert_eq!(settings.model.as_deref(), Some("narrowed-model"));
            assert_eq!(settings.sandbox, Some(SandboxMode::WorkspaceWrite));
        }
        other => panic!("expected narrow, got {other:?}"),
    }
    // A failing policy fails the whole check (callers deny).
    let failed = host.check_action(&request(&host, &inside, SandboxMode::ReadOnly, "panic"));
    assert!(matches!(failed, Err(PluginError::Call { .. })));
}

#[test]
fn operator_config_overrides_reach_default_policy() {
    // With `allow_danger_full_access = true` set by the operator, the default policy allows it.
    let temp = TempDir::new("plugins-override");
    let config = config(temp.path(), Vec::new());
    let mut table = serde_json::Map::new();
    table.insert(
        "allow_danger_full_access".to_string(),
        serde_json::Value::Bool(true),
    );
    let host = PluginHost::builder(&config)
        .plugin_config("default-policy", table)
        .load()
        .expect("host loads");
    let inside = format!("{}/repo", root_of(&host));
    let danger = host.check_action(&request(&host, &inside, SandboxMode::DangerFullAccess, ""));
    assert_eq!(danger.expect("call"), Decision::Allow);
}

#[test]
fn plugins_settings_in_the_server_config_reach_default_policy() {
    // The same override written by the operator as `[plugins.settings.default-policy]`, parsed from TOML.
    let temp = TempDir::new("plugins-settings");
    let file = temp.path().join("config.toml");
    std::fs::write(
        &file,
        "[plugins.settings.default-policy]\nallow_danger_full_access = true\n",
    )
    .expect("config file");
    let base = config(temp.path(), Vec::new());
    let env: std::collections::BTreeMap<String, String> = [
        (
            "CODEX_MCP_STATE_DB",
            base.state_db_path.display().to_string(),
        ),
        (
            "CODEX_PROJECTS_ROOT",
            base.projects_root.display().to_string(),
        ),
        (
            "CODEX_ALLOWED_ROOTS",
            base.projects_root.display().to_string(),
        ),
        (
            "CODEX_HOME",
            temp.path().join("codex-home").display().to_string(),
        ),
        ("HOME", temp.path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Config::from_sources(Some(&file), &env).expect("config parses");
    assert_eq!(
        config.plugins.settings["default-policy"]["allow_danger_full_access"],
        serde_json::Value::Bool(true)
    );
    let host = PluginHost::load(&config).expect("host loads");
    let inside = format!("{}/repo", root_of(&host));
    let danger = host.check_action(&request(&host, &inside, SandboxMode::DangerFullAccess, ""));
    assert_eq!(danger.expect("call"), Decision::Allow);
}
