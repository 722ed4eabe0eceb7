//! Loading: the artifact cache, WIT version and world checks, disabled and native plugins.

use std::time::Instant;

use codex_control_plane::plugins::types::{Decision, Denial, SandboxMode};
use codex_control_plane::plugins::{
    CallErrorKind, PluginError, PluginHost, PluginInfo, PluginStatus, World,
};
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest, plugin_folder, test_plugins};

use super::{assert_default_policy_works, config, info, request, root_of};

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
