//! Plugin runtime through the public library API, with real wasmtime: the default policy, the
//! artifact cache, version and world checks, and hostile plugins contained within their budgets.

use std::path::Path;
use std::time::{Duration, Instant};

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{
    ActionKind, ActionRequest, Answer, Decision, Denial, Event, Finding, InputSummary, Interaction,
    Narrowing, RepairAction, RepairContext, SandboxMode, Severity, TurnSettings,
};
use codex_control_plane::plugins::{
    CallErrorKind, Capability, PluginError, PluginHost, PluginInfo, PluginStatus, World,
};
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest, hostile_manifest_with, plugin_folder, test_plugins};

/// The example third-party policy (`examples/policy-plugin`, on the guest SDK), rule by rule.
mod example;
/// A checked-in WIT 0.1 component beside the 0.2 defaults.
mod legacy;
/// Every world exported through the guest SDK.
mod sdk;
/// A third-party WIT 0.2 review workflow naming its review target, through the real review tool.
mod third_party_review;

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
fn compiled_artifacts_are_cached() {
    // Default plugins link on their first call: loading the host compiles nothing. The first call compiles
    // and stores the artifact; a second host with the same cache dir deserializes it, which is much faster.
    let temp = TempDir::new("plugins-cache");
    let config = config(temp.path(), Vec::new());
    let artifacts = |host: &PluginHost| {
        std::fs::read_dir(host.cache_dir()).map_or(0, |entries| entries.count())
    };
    let live = |host: &PluginHost, id: &str| {
        host.plugins()
            .into_iter()
            .find(|info| info.id == id)
            .unwrap_or_else(|| panic!("no info for {id}"))
    };
    let first = PluginHost::load(&config).expect("first load");
    let defaults: Vec<PluginInfo> = first
        .plugins()
        .into_iter()
        .filter(|info| info.source == "embedded")
        .collect();
    assert_eq!(
        defaults.len(),
        codex_control_plane::plugins::embedded::DEFAULT_PLUGINS.len()
    );
    for info in defaults {
        assert_eq!(
            (info.status, info.linked, info.cache),
            (PluginStatus::Loaded, false, None),
            "{} before any call",
            info.id
        );
    }
    assert_eq!(artifacts(&first), 0, "nothing is compiled before a call");

    let started = Instant::now();
    assert_default_policy_works(&first);
    let cold_call = started.elapsed();
    let cold = live(&first, "default-policy");
    assert_eq!((cold.linked, cold.cache), (true, Some("miss")));
    assert_eq!(
        live(&first, "plan-workflow").cache,
        None,
        "only the called plugin links"
    );
    assert_eq!(artifacts(&first), 1);

    let second = PluginHost::load(&config).expect("second load");
    let started = Instant::now();
    assert_default_policy_works(&second);
    let warm_call = started.elapsed();
    assert_eq!(live(&second, "default-policy").cache, Some("hit"));
    assert!(
        warm_call < cold_call,
        "a first call from the cache ({warm_call:?}) should beat one that compiles ({cold_call:?})"
    );
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    // The default budget (50M fuel) stops a spinning guest in well under a second.
    let temp = TempDir::new("plugins-loop");
    let host = hostile_host(&temp, "fuel = 50_000_000\ntimeout_ms = 5000");
    let (error, elapsed) = hostile_call(&host, "hostile", "loop");
    assert!(
        matches!(
            error.call_kind(),
            Some(CallErrorKind::OutOfFuel { fuel: 50_000_000 })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("hostile@0.1.0"), "{error}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_default_policy_works(&host);
}

#[test]
fn infinite_loop_hits_the_deadline() {
    // With fuel to spare, the epoch deadline stops the loop shortly after 200 ms.
    let temp = TempDir::new("plugins-deadline");
    let mut config_fuel = Config::for_tests(temp.path()).plugins;
    config_fuel.default_fuel = u64::MAX / 2;
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest("hostile", "timeout_ms = 200"),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let mut config = config(temp.path(), vec![dir]);
    config.plugins.default_fuel = config_fuel.default_fuel;
    let host = PluginHost::load(&config).expect("host loads");
    let (error, elapsed) = hostile_call(&host, "hostile", "loop");
    assert!(
        matches!(
            error.call_kind(),
            Some(CallErrorKind::Timeout { timeout_ms: 200 })
        ),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_millis(195),
        "stopped early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
    assert_default_policy_works(&host);
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    // Allocating 1 MiB at a time stops at the 32 MiB cap of the manifest.
    let temp = TempDir::new("plugins-bomb");
    let host = hostile_host(&temp, "memory_bytes = 33_554_432");
    let (error, elapsed) = hostile_call(&host, "hostile", "bomb");
    assert!(
        matches!(
            error.call_kind(),
            Some(CallErrorKind::MemoryLimit {
                limit_bytes: 33_554_432
            })
        ),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_default_policy_works(&host);
}

#[test]
fn panic_is_a_trap() {
    // A guest panic becomes a typed trap error naming the plugin.
    let temp = TempDir::new("plugins-panic");
    let host = hostile_host(&temp, "");
    let (error, elapsed) = hostile_call(&host, "hostile", "panic");
    assert!(
        matches!(error.call_kind(), Some(CallErrorKind::Trap { .. })),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert_default_policy_works(&host);
}

#[test]
fn huge_output_is_refused() {
    // Under the default caps a 100 MB answer cannot even be built (memory cap); with room for it
    // the host refuses it by size.
    let temp = TempDir::new("plugins-output");
    let host = hostile_host(&temp, "");
    let (error, _) = hostile_call(&host, "hostile", "big-output");
    assert!(
        matches!(error.call_kind(), Some(CallErrorKind::MemoryLimit { .. })),
        "{error}"
    );
    assert_default_policy_works(&host);

    let roomy = TempDir::new("plugins-output-roomy");
    let plugins = test_plugins().expect("test plugins build");
    let dir = roomy.path().join("plugins");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest("hostile", ""),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let mut config = config(roomy.path(), vec![dir]);
    config.plugins.default_memory_bytes = 512 * 1024 * 1024;
    // Filling 100 MB takes more than the default fuel and a second on a slow machine.
    config.plugins.default_fuel = 50_000_000_000;
    config.plugins.default_timeout_ms = 10_000;
    let host = PluginHost::load(&config).expect("host loads");
    let (error, elapsed) = hostile_call(&host, "hostile", "big-output");
    assert!(
        matches!(
            error.call_kind(),
            Some(CallErrorKind::OutputTooLarge {
                limit_bytes: 1_048_576,
                ..
            })
        ),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_default_policy_works(&host);
}

#[test]
fn unknown_wit_version_is_refused() {
    // A manifest declaring WIT 9.0.0 is refused with both versions named; the host still works.
    let temp = TempDir::new("plugins-wit9");
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    let manifest = hostile_manifest("future", "").replace("wit = \"0.1.0\"", "wit = \"9.0.0\"");
    plugin_folder(&dir, "future", &manifest, &plugins.hostile).expect("plugin folder");
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    let future = info(&host, "future");
    assert_eq!(future.status, PluginStatus::Failed);
    let error = future.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("9.0.0") && error.contains("0.1.0"),
        "{error}"
    );
    assert!(matches!(
        host.check_action_with("future", &request(&host, "/", SandboxMode::ReadOnly, "")),
        Err(PluginError::NotFound { .. })
    ));
    assert_default_policy_works(&host);
}

#[test]
fn component_built_against_another_wit_version_is_refused() {
    // Its manifest says 0.1.0 but it imports codex-control-plane:plugin/host@0.9.0: linking fails.
    let temp = TempDir::new("plugins-wrong-wit");
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    let manifest =
        "id = \"wrong-wit\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\n";
    plugin_folder(&dir, "wrong-wit", manifest, &plugins.wrong_wit).expect("plugin folder");
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    let wrong = info(&host, "wrong-wit");
    assert_eq!(wrong.status, PluginStatus::Failed);
    let error = wrong.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("cannot be linked") && error.contains("0.9.0"),
        "{error}"
    );
    assert_default_policy_works(&host);
}

#[test]
fn exports_must_match_declared_worlds() {
    // The wrong-WIT component declared as a workflow, and the hostile one declared well: the
    // first is refused with a typed world mismatch at load, not at the first call.
    let temp = TempDir::new("plugins-world");
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    // The default policy component only exports `policy-plugin`.
    let default_wasm = temp.path().join("default-policy.wasm");
    std::fs::write(
        &default_wasm,
        codex_control_plane::plugins::embedded::DEFAULT_PLUGINS
            .iter()
            .find(|p| p.crate_name == "default-policy")
            .expect("embedded default policy")
            .wasm,
    )
    .expect("write wasm");
    let manifest =
        "id = \"not-a-workflow\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\nworlds = [\"workflow\"]\n";
    plugin_folder(&dir, "not-a-workflow", manifest, &default_wasm).expect("plugin folder");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest("hostile", ""),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let host = PluginHost::load(&config(temp.path(), vec![dir])).expect("host loads");
    let mismatch = info(&host, "not-a-workflow");
    assert_eq!(mismatch.status, PluginStatus::Failed);
    let error = mismatch.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("does not implement world `workflow`"),
        "{error}"
    );
    // A call for a world the plugin does not declare is a typed error too.
    let wrong_world = host.workflow_start("default-policy", "{}");
    assert!(
        matches!(wrong_world, Err(PluginError::WrongWorld { .. })),
        "{wrong_world:?}"
    );
}

#[test]
fn disabled_and_native_plugins_are_reported() {
    // plugins.disabled skips a plugin (default ones too); native plugins are refused visibly.
    let temp = TempDir::new("plugins-disabled");
    let plugins = test_plugins().expect("test plugins build");
    let dir = temp.path().join("plugins");
    plugin_folder(
        &dir,
        "hostile",
        &hostile_manifest("hostile", ""),
        &plugins.hostile,
    )
    .expect("plugin folder");
    let native = "id = \"native-one\"\nversion = \"1.0.0\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\nkind = \"native\"\ncomponent = \"libnative.so\"\n";
    plugin_folder(&dir, "native-one", native, &plugins.hostile).expect("plugin folder");
    let mut config = config(temp.path(), vec![dir]);
    config.plugins.disabled = vec!["default-policy".to_string()];
    let host = PluginHost::load(&config).expect("host loads");
    assert_eq!(info(&host, "default-policy").status, PluginStatus::Disabled);
    assert_eq!(info(&host, "hostile").status, PluginStatus::Loaded);
    let native = info(&host, "native-one");
    assert_eq!(
        (native.status, native.kind),
        (PluginStatus::Disabled, "native")
    );
    assert!(native
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("allow_native"));
    assert_eq!(
        host.plugins_with(World::Policy),
        vec!["hostile".to_string()]
    );
    // The health summary serializes the list.
    let json = serde_json::to_value(host.plugins()).expect("serializable");
    let listed = json
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "default-policy"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["status"], "disabled", "{json}");
}

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

#[test]
fn native_plugins_load_only_when_allowed() {
    // With plugins.allow_native the library joins the policy chain through the C ABI; its
    // decisions and failures are typed like a wasm plugin's.
    let temp = TempDir::new("plugins-native");
    let library = support::wasm_plugins::native_test_plugin().expect("native plugin builds");
    let dir = temp.path().join("plugins");
    let manifest = "id = \"native-policy\"\nversion = \"1.0.0\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\nkind = \"native\"\ncomponent = \"plugin.so\"\n";
    let folder = dir.join("native-policy");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("plugin.toml"), manifest).expect("manifest");
    std::fs::copy(&library, folder.join("plugin.so")).expect("library");

    let mut config = config(temp.path(), vec![dir]);
    let refused = PluginHost::load(&config).expect("host loads");
    assert_eq!(
        info(&refused, "native-policy").status,
        PluginStatus::Disabled
    );

    config.plugins.allow_native = true;
    let host = PluginHost::load(&config).expect("host loads");
    let native = info(&host, "native-policy");
    assert_eq!(
        (native.status, native.kind, native.cache),
        (PluginStatus::Loaded, "native", None)
    );
    let inside = format!("{}/repo", root_of(&host));
    let allow = host.check_action(&request(&host, &inside, SandboxMode::ReadOnly, "m"));
    assert_eq!(allow.expect("call"), Decision::Allow);
    let deny = host.check_action(&request(
        &host,
        &inside,
        SandboxMode::ReadOnly,
        "native-deny",
    ));
    assert_eq!(
        deny.expect("call"),
        Decision::Deny(Denial {
            rule: "native-policy".to_string(),
            reason: "native says no (policy native-policy)".to_string(),
        })
    );
    let fail = host.check_action(&request(
        &host,
        &inside,
        SandboxMode::ReadOnly,
        "native-fail",
    ));
    assert!(
        matches!(
            fail.as_ref().map_err(PluginError::call_kind),
            Err(Some(CallErrorKind::Trap { .. }))
        ),
        "{fail:?}"
    );
    let wrong_world = host.analyze("native-policy", "{}");
    assert!(
        matches!(wrong_world, Err(PluginError::WrongWorld { .. })),
        "{wrong_world:?}"
    );
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

/// An engine over a fresh store in `temp`, with the default plugins and the hostile one (`limits`), and a
/// runtime to drive it; no app-server is configured, so nothing may reach one.
fn engine_over(
    temp: &TempDir,
    limits: &str,
) -> (
    std::sync::Arc<codex_control_plane::engine::Engine>,
    tokio::runtime::Runtime,
) {
    use codex_control_plane::appserver::{AppServer, AppServerSettings};
    use codex_control_plane::engine::{Engine, EngineSettings};
    use codex_control_plane::store::Store;

    let host = hostile_host(temp, limits);
    let cfg = config(temp.path(), Vec::new());
    let store = Store::open(&temp.path().join("state.sqlite3")).expect("store");
    let appserver = AppServer::new(AppServerSettings::from_config(&cfg));
    let engine = Engine::new(
        store,
        appserver,
        std::sync::Arc::new(host),
        EngineSettings::from_config(&cfg),
        "test".into(),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    (engine, runtime)
}

/// Stores a running operation with turn `turn_busy` on `thread`, as if app-server were running it.
async fn turn_running_on(engine: &codex_control_plane::engine::Engine, thread: &str) {
    use codex_control_plane::store::operations::{InsertOutcome, NewOperation};

    let mut new = NewOperation::new("send_message", serde_json::json!({"message": "m"}));
    new.thread_id = Some(thread.to_string());
    let op = match engine.store.insert_operation(new).await.expect("insert") {
        InsertOutcome::Created { operation, .. } | InsertOutcome::Existing { operation, .. } => {
            operation
        }
    };
    engine
        .store
        .attach_turn(&op.operation_id, "turn_busy", Some(thread))
        .await
        .expect("turn");
    engine
        .store
        .set_status(
            &op.operation_id,
            codex_control_plane::domain::operation::OperationStatus::Running,
        )
        .await
        .expect("running");
}

/// A workflow whose plugin traps or loops fails alone; the engine goes on serving other workflows.
#[test]
fn a_misbehaving_workflow_plugin_fails_only_its_own_workflow() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("hostile-workflow");
    let (engine, runtime) = engine_over(&temp, "fuel = 5_000_000\ntimeout_ms = 200");
    let start = |key: &str, input: serde_json::Value| WorkflowStart {
        kind: "echo".into(),
        plugin_id: "hostile".into(),
        input,
        client_request_id: key.into(),
        request_fingerprint: key.into(),
        runtime_policy: json!({}),
        goal: None,
    };
    for behaviour in ["panic", "loop"] {
        let (workflow, created) = runtime
            .block_on(engine.start_workflow(start(behaviour, json!({"mode": behaviour}))))
            .expect("the engine reports a failed workflow, not an error");
        assert!(created);
        assert_eq!(workflow.phase, "failed", "{behaviour}: {workflow:?}");
        let stored = runtime
            .block_on(engine.store.get_workflow(&workflow.workflow_id))
            .expect("read")
            .expect("row");
        let error = stored.error.expect("error recorded");
        assert_eq!(
            error["code"],
            json!("CODEX_PLUGIN_FAILED"),
            "{behaviour}: {error}"
        );
        assert_eq!(error["plugin"], json!("hostile"));
    }
    // The same plugin, well-behaved input: the workflow runs (its echo completes on the first event).
    let (fine, _) = runtime
        .block_on(engine.start_workflow(start("fine", json!({"mode": "fine"}))))
        .expect("start");
    assert_ne!(fine.phase, "failed", "{fine:?}");
}

#[test]
fn a_workflow_cannot_compact_a_busy_thread() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("busy-compaction");
    let (engine, runtime) = engine_over(&temp, "");
    // A turn is running on the thread.
    runtime.block_on(turn_running_on(&engine, "thr_busy"));
    let (workflow, _) = runtime
        .block_on(engine.start_workflow(WorkflowStart {
            kind: "thread_compaction".into(),
            plugin_id: "compaction-workflow".into(),
            input: json!({"threadId": "thr_busy"}),
            client_request_id: "busy".into(),
            request_fingerprint: "busy".into(),
            runtime_policy: json!({}),
            goal: None,
        }))
        .expect("start");
    // Refused before anything reached app-server (none is configured here): the plugin fails the workflow
    // with the host's code.
    assert_eq!(workflow.phase, "failed", "{workflow:?}");
    let error = workflow.error.expect("error");
    assert_eq!(error["code"], json!("CODEX_BUSY"), "{error}");
    let actions = runtime
        .block_on(engine.store.workflow_actions(&workflow.workflow_id))
        .expect("actions");
    let compact = actions
        .iter()
        .find(|a| a.kind == "compact-thread")
        .expect("journaled");
    assert_eq!(compact.state, "failed");
    assert!(
        compact.output.is_none(),
        "no lifecycle action was recorded: {compact:?}"
    );
}

#[test]
fn a_workflow_interrupt_reports_what_it_interrupted() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("workflow-interrupt");
    let (engine, runtime) = engine_over(&temp, "");
    let start = |key: &str, thread: &str| WorkflowStart {
        kind: "echo".into(),
        plugin_id: "hostile".into(),
        input: json!({"mode": "interrupt", "thread": thread}),
        client_request_id: key.into(),
        request_fingerprint: key.into(),
        runtime_policy: json!({}),
        goal: None,
    };
    let report = |workflow: &codex_control_plane::store::workflows::Workflow| {
        let stored = runtime
            .block_on(engine.store.get_workflow(&workflow.workflow_id))
            .expect("read")
            .expect("row");
        stored.final_report.expect("completed")["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // Nothing runs on the thread: nothing is sent, and the plugin is told so.
    let (idle, _) = runtime
        .block_on(engine.start_workflow(start("idle", "thr_idle")))
        .expect("start");
    let text = report(&idle);
    assert!(text.contains("ActionCompleted"), "{text}");
    assert!(text.contains(r#"\"interrupted\":false"#), "{text}");

    // A turn runs, but no app-server is configured here: app-server's refusal reaches the plugin.
    runtime.block_on(turn_running_on(&engine, "thr_busy"));
    let (busy, _) = runtime
        .block_on(engine.start_workflow(start("busy", "thr_busy")))
        .expect("start");
    let text = report(&busy);
    assert!(text.contains("ActionFailed"), "{text}");
    assert!(text.contains("CODEX_APP_SERVER_UNAVAILABLE"), "{text}");
}
