//! Host capabilities reaching a plugin, and calls dispatched to every world.

use codex_control_plane::plugins::types::{
    Event, Finding, RepairAction, RepairContext, SandboxMode, Severity,
};
use codex_control_plane::plugins::{
    CallErrorKind, Capability, PluginError, PluginHost, PluginStatus,
};
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest_with, plugin_folder, test_plugins};

use super::{config, denied, hostile_host, info, request, root_of};

#[test]
fn host_capabilities_reach_the_plugin() {
    // Declared and granted: state persists across fresh instances and is scoped to the plugin; config
    // and views arrive (the library host's views expose nothing).
    let temp = TempDir::new("plugins-caps");
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    let all = ["log", "clock", "config", "state", "views"];
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest_with("hostile", "", Some(&all)),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let mut config = config(temp.path(), vec![dir]);
    config
        .plugins
        .grants
        .insert("hostile".to_string(), Capability::ALL.to_vec());
    let host = PluginHost::load(&config).expect("host loads");
    assert_eq!(info(&host, "hostile").status, PluginStatus::Loaded);
    let inside = format!("{}/x", root_of(&host));
    let call = |behaviour: &str| {
        host.check_action_with(
            "hostile",
            &request(&host, &inside, SandboxMode::ReadOnly, behaviour),
        )
        .expect("call")
    };
    assert_eq!(call("state"), denied("count=1 stored=true"));
    assert_eq!(call("state"), denied("count=2 stored=true"));
    assert_eq!(call("config"), denied(r#"{"greeting":"hello"}"#));
    assert_eq!(call("view"), denied("none"));
}

#[test]
fn workflow_analyzer_and_repair_worlds_dispatch() {
    // The hostile plugin echoes through every world.
    let temp = TempDir::new("plugins-worlds");
    let host = hostile_host(&temp, "");
    assert_eq!(
        host.workflow_describe("hostile").expect("describe").name,
        "echo"
    );
    let step = host
        .workflow_start("hostile", r#"{"task":"x"}"#)
        .expect("start");
    assert_eq!(step.state, r#"{"task":"x"}"#);
    assert_eq!(step.actions.len(), 1);
    let next = host
        .workflow_on_event("hostile", &step.state, &Event::Started("{}".to_string()))
        .expect("on-event");
    assert_eq!(next.actions.len(), 1);
    // A state that is not JSON is refused.
    let bad = host.workflow_start("hostile", "not json");
    assert!(
        matches!(
            bad.as_ref().map_err(PluginError::call_kind),
            Err(Some(CallErrorKind::InvalidOutput { .. }))
        ),
        "{bad:?}"
    );

    let findings = host.analyze("hostile", r#"{"ops":[]}"#).expect("analyze");
    assert_eq!(findings[0].severity, Severity::Warning);
    // Every analyzer runs: the embedded defaults first, then the plugin folders.
    let reports = host.analyze_all("{}");
    let ids: Vec<&str> = reports.iter().map(|r| r.plugin.as_str()).collect();
    assert_eq!(ids, ["runtime-analyzer", "work-analyzer", "hostile"]);
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");

    let finding = Finding {
        code: "stale_lease".to_string(),
        severity: Severity::Error,
        subject: "op-9".to_string(),
        message: "lease expired".to_string(),
        details: None,
    };
    let steps = host
        .plan_repair(
            "hostile",
            &finding,
            &RepairContext {
                dry_run: true,
                snapshot: "{}".to_string(),
            },
        )
        .expect("plan");
    assert_eq!(
        steps[0].action,
        RepairAction::CancelOperation("op-9".to_string())
    );
    assert!(steps[0].description.contains("dry_run=true"));
}
