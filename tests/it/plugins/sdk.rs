//! A plugin written on the guest SDK exporting all four worlds (`tests/hostile-plugins/sdk-worlds`),
//! loaded by the real host: every export macro yields a component the host accepts, and every call
//! reaches the author's trait with the typed `[config]` read.

use codex_control_plane::plugins::types::{
    Action, Decision, Denial, Finding, RepairAction, RepairContext, SandboxMode, Severity,
};
use codex_control_plane::plugins::{PluginHost, PluginStatus};
use support::mcp_client::TempDir;

use super::{config, info, plugin_folder, request, root_of, test_plugins};

/// A manifest declaring the four worlds, with `config` as its `[config]` table.
fn manifest(config: &str) -> String {
    format!(
        "id = \"sdk-worlds\"\nversion = \"0.1.0\"\nwit = \"0.2.0\"\n\
         worlds = [\"workflow\", \"analyzer\", \"repair\", \"policy\"]\n\
         capabilities = [\"log\", \"config\"]\n[config]\n{config}\n"
    )
}

/// A host with the default plugins and the SDK plugin configured with `config`.
fn sdk_host(temp: &TempDir, config_table: &str) -> PluginHost {
    let wasm = test_plugins().expect("test plugins build").sdk_worlds;
    let dir = temp.path().join("plugins");
    plugin_folder(&dir, "sdk-worlds", &manifest(config_table), &wasm).expect("plugin folder");
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    assert_eq!(
        info(&host, "sdk-worlds").status,
        PluginStatus::Loaded,
        "{:?}",
        host.infos()
    );
    host
}

#[test]
fn every_world_exports_through_the_sdk() {
    let temp = TempDir::new("plugins-sdk-worlds");
    let host = sdk_host(&temp, "label = \"probe\"");
    let inside = format!("{}/repo", root_of(&host));

    let allow = request(&host, &inside, SandboxMode::ReadOnly, "gpt-5-codex");
    assert_eq!(
        host.check_action_with("sdk-worlds", &allow).expect("call"),
        Decision::Allow
    );
    let deny = request(&host, &inside, SandboxMode::ReadOnly, "sdk-deny");
    assert_eq!(
        host.check_action_with("sdk-worlds", &deny).expect("call"),
        Decision::Deny(Denial {
            rule: "sdk_deny".to_string(),
            reason: "probe denies".to_string()
        })
    );

    let findings = host
        .analyze("sdk-worlds", r#"{"note":"from the snapshot"}"#)
        .expect("analyze");
    assert_eq!(
        findings,
        vec![Finding {
            code: "sdk_probe".to_string(),
            severity: Severity::Info,
            subject: "probe".to_string(),
            message: "from the snapshot".to_string(),
            details: None,
        }]
    );

    let steps = host
        .plan_repair(
            "sdk-worlds",
            &findings[0],
            &RepairContext {
                dry_run: true,
                snapshot: "{}".to_string(),
            },
        )
        .expect("plan");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].description, "probe dry_run=true");
    assert_eq!(
        steps[0].action,
        RepairAction::CancelOperation("probe".to_string())
    );

    assert_eq!(
        host.workflow_describe("sdk-worlds").expect("describe").name,
        "probe"
    );
    let step = host
        .workflow_start("sdk-worlds", r#"{"task":"x"}"#)
        .expect("start");
    assert!(
        matches!(step.actions.as_slice(), [Action::Complete(done)] if done.report == r#"probe: {"task":"x"}"#),
        "{step:?}"
    );
}

#[test]
fn a_bad_sdk_config_fails_each_world_closed() {
    // `label` is required: the SDK's typed config refuses `{}`-plus-a-typo with serde's reason.
    let temp = TempDir::new("plugins-sdk-broken");
    let host = sdk_host(&temp, "lable = \"probe\"");
    let inside = format!("{}/repo", root_of(&host));

    let allow = request(&host, &inside, SandboxMode::ReadOnly, "gpt-5-codex");
    match host.check_action_with("sdk-worlds", &allow).expect("call") {
        Decision::Deny(Denial { rule, reason }) => assert!(
            rule == "invalid_config"
                && reason.contains("invalid [config] table in plugin.toml")
                && reason.contains("lable"),
            "{rule}: {reason}"
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
    let findings = host.analyze("sdk-worlds", "{}").expect("analyze");
    assert!(
        matches!(findings.as_slice(), [f] if f.code == "plugin_config_invalid" && f.severity == Severity::Error),
        "{findings:?}"
    );
    let step = host.workflow_start("sdk-worlds", "{}").expect("start");
    assert!(
        matches!(step.actions.as_slice(), [Action::Fail(fail)] if fail.code == "invalid_config"),
        "{step:?}"
    );
    assert!(step.state.contains(r#""phase":"failed""#), "{}", step.state);
}
