//! Hostile plugins contained within their budgets: fuel, deadline, memory, traps, output size.

use std::time::Duration;

use codex_control_plane::config::Config;
use codex_control_plane::plugins::{CallErrorKind, PluginHost};
use support::mcp_client::TempDir;
use support::wasm_plugins::{hostile_manifest, plugin_folder, test_plugins};

use super::{assert_default_policy_works, config, hostile_call, hostile_host};

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
