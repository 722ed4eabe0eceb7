//! Guest SDK for codex-control-plane plugins: the WIT 0.2 contract (`wit/since_v0.2.0`) as Rust
//! traits, one module per world. (Plugins built with the 0.1 SDK keep loading: see `docs/PLUGINS.md`.)
//!
//! | world | module | implement | export with |
//! | --- | --- | --- | --- |
//! | `policy` | [`policy`] | [`policy::Policy`] | [`export_policy!`] |
//! | `workflow` | [`workflow`] | [`workflow::Workflow`] | [`export_workflow!`] |
//! | `analyzer` | [`analyzer`] | [`analyzer::Analyzer`] | [`export_analyzer!`] |
//! | `repair` | [`repair`] | [`repair::Repair`] | [`export_repair!`] |
//!
//! The type you implement the trait for is your plugin's configuration: before each call the SDK
//! reads the `[config]` table of `plugin.toml` (with the operator's overrides) through the host's
//! `get-config` and deserialises it with `serde` (see [`config`]), so a plugin never parses JSON
//! by hand. A struct without configuration is written `struct MyPlugin {}`. Each call runs on a
//! fresh instance, so nothing survives between calls except what [`host::state_set`] stores.
//!
//! ```
//! use codex_control_plane_plugin_sdk::policy::{ActionRequest, Decision, Policy};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct NoGpt4 {
//!     denied_models: Vec<String>,
//! }
//!
//! impl Policy for NoGpt4 {
//!     fn check_action(&self, request: &ActionRequest) -> Decision {
//!         match &request.settings.model {
//!             Some(model) if self.denied_models.contains(model) => {
//!                 Decision::deny("denied_models", format!("model {model} is not allowed here"))
//!             }
//!             _ => Decision::Allow,
//!         }
//!     }
//! }
//!
//! codex_control_plane_plugin_sdk::export_policy!(NoGpt4);
//! ```
//!
//! Build the plugin crate (`crate-type = ["cdylib", "rlib"]`) with `cargo build --release --target
//! wasm32-wasip2`; the exports exist only in `wasm32` builds, so the same crate runs its unit tests
//! natively.

#![warn(missing_docs)]

pub mod analyzer;
pub mod bindings;
pub mod config;
pub mod host;
pub mod policy;
pub mod repair;
pub mod workflow;

pub use config::ConfigError;

/// The types shared by every world (`types` in the WIT).
pub mod types {
    pub use crate::bindings::workflow::codex_control_plane::plugin::types::{
        ApprovalPolicy, CollaborationMode, Finding, Json, LogLevel, ReviewCommit, ReviewTarget,
        SandboxMode, Severity, ThreadRef, TurnSettings,
    };
}
