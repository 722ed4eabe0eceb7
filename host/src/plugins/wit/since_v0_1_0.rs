//! Host bindings for `codex-control-plane:plugin@0.1.0` (`wit/since_v0.1.0`), served through the latest ones.
//!
//! The interfaces 0.2 left unchanged (`types`, `host`) are mapped onto `latest` with `with:`, so their Rust
//! types are the latest ones and the host functions are implemented once, in `plugins::capability::host`:
//! do not write a second `Host` impl here. `add_to_linker` links the latest `host` functions under the 0.1
//! instance name (the generated world linker would use the latest name). The exports whose interfaces changed
//! (`policy-plugin`, `workflow-plugin`, `repair-plugin`; `analyzer-plugin` only by its package version) are
//! generated here, and `convert` turns their types into the latest ones and back with `From`.

use wasmtime::component::{HasSelf, Linker};

use crate::plugins::runtime::PluginCtx;

mod convert;

/// Lowest package version this module serves (plugins declaring `wit = "0.1.x"`).
pub const MIN_VERSION: super::WitVersion = super::WitVersion::new(0, 1, 0);

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "all",
    // Serde is the JSON encoding of the native plugin ABI (`plugins::native`), per WIT version.
    additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    imports: { default: trappable },
    with: {
        "codex-control-plane:plugin/types@0.1.0": crate::plugins::wit::latest::codex_control_plane::plugin::types,
        "codex-control-plane:plugin/host@0.1.0": crate::plugins::wit::latest::codex_control_plane::plugin::host,
    },
});

crate::plugins::runtime::export_indices!();

/// The instance name 0.1 components import the host functions from.
const HOST_INSTANCE: &str = "codex-control-plane:plugin/host@0.1.0";

/// Links the latest `host` functions under the 0.1 instance name (`types` has no functions to link).
pub fn add_to_linker(linker: &mut Linker<PluginCtx>) -> wasmtime::Result<()> {
    let mut instance = linker.instance(HOST_INSTANCE)?;
    super::latest::codex_control_plane::plugin::host::add_to_linker_instance::<
        PluginCtx,
        HasSelf<PluginCtx>,
    >(&mut instance, |ctx| ctx)
}
