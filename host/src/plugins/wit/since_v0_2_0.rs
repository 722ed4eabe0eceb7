//! Host bindings for `codex-control-plane:plugin@0.2.0` (`wit/since_v0.2.0`).
//!
//! This is the latest version: `wit::latest` points here, and the rest of the host speaks its types. Older
//! modules (`since_v0_1_0`) map their unchanged interfaces onto these bindings with `with:` and convert
//! their changed types with `From`, so host functions are implemented once, here.

/// Lowest package version this module serves (plugins declaring `wit = "0.2.x"`).
pub const MIN_VERSION: super::WitVersion = super::WitVersion::new(0, 2, 0);

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "all",
    // Values are compared in tests and by the policy chain; serde is the JSON encoding of the
    // native plugin ABI (`plugins::native`).
    additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    // Host functions may trap: a call outside the plugin's capabilities, or a state store that cannot
    // answer, fails the plugin call (`plugins::capability::host`).
    imports: { default: trappable },
});

crate::plugins::runtime::export_indices!();
