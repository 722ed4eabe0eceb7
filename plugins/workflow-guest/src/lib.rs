//! The workflow plumbing of the default workflow plugins: a re-export of the guest SDK's
//! [`workflow`](codex_control_plane_plugin_sdk::workflow) module, kept so that they (and any
//! plugin written against this crate) build unchanged.
//!
//! A plugin implements the generated [`Guest`] trait for a type and exports it with
//! `workflow_guest::export_workflow!(Type)` under `#[cfg(target_arch = "wasm32")]`. New plugins
//! should depend on the SDK (`codex-control-plane-plugin-sdk`) instead: its
//! [`Workflow`](codex_control_plane_plugin_sdk::workflow::Workflow) trait adds typed configuration.

pub use codex_control_plane_plugin_sdk::host;
pub use codex_control_plane_plugin_sdk::types;
pub use codex_control_plane_plugin_sdk::workflow::*;

/// The SDK, for [`export_workflow!`] to name from the plugin's crate.
#[doc(hidden)]
pub use codex_control_plane_plugin_sdk as sdk;

/// Exports a type implementing [`Guest`] as the plugin's `workflow` world.
#[macro_export]
macro_rules! export_workflow {
    ($guest:ident) => {
        $crate::sdk::export_workflow_guest!($guest);
    };
}
