//! The `wit-bindgen` bindings of the four worlds of `wit/since_v0.2.0`, one module per world.
//!
//! The `workflow` world generates the shared interfaces (`types`, `host`); the other three reuse
//! them through `with`, so a `TurnSettings` or a `Finding` is one Rust type in every world and the
//! host wrappers are written once. Every export macro is public (`pub_export_macro`) because it is
//! invoked in the plugin's crate, through this crate's `export_*!` macros; a world whose macro is
//! never invoked adds nothing to the component.

// The generated items carry the WIT doc comments where the WIT has them; the rest is plumbing.
#![allow(missing_docs)]

/// World `workflow`, and the shared `types` and `host` interfaces.
pub mod workflow {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "workflow",
        // Plugins compare actions and decisions in their native unit tests.
        additional_derives: [PartialEq],
        pub_export_macro: true,
        default_bindings_module: "codex_control_plane_plugin_sdk::bindings::workflow",
    });
}

/// World `policy`.
pub mod policy {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "policy",
        additional_derives: [PartialEq],
        with: {
            "codex-control-plane:plugin/types@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::types,
            "codex-control-plane:plugin/host@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::host,
        },
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "codex_control_plane_plugin_sdk::bindings::policy",
    });
}

/// World `analyzer`.
pub mod analyzer {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "analyzer",
        additional_derives: [PartialEq],
        with: {
            "codex-control-plane:plugin/types@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::types,
            "codex-control-plane:plugin/host@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::host,
        },
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "codex_control_plane_plugin_sdk::bindings::analyzer",
    });
}

/// World `repair`.
pub mod repair {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "repair",
        additional_derives: [PartialEq],
        with: {
            "codex-control-plane:plugin/types@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::types,
            "codex-control-plane:plugin/host@0.2.0": crate::bindings::workflow::codex_control_plane::plugin::host,
        },
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "codex_control_plane_plugin_sdk::bindings::repair",
    });
}
