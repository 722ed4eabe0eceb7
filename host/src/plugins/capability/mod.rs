//! Host capabilities offered to plugins through the WIT `host` interface, one module per
//! capability. Each module holds the policy and the caps of its capability; `host.rs` only wires
//! the generated `Host` trait to them.
//!
//! **Architecture Invariant:** capabilities never call each other and know nothing about MCP,
//! SQLite or app-server: the state store and the read-only views are traits the host implements.

pub mod clock;
pub mod config;
mod host;
pub mod log;
pub mod state;
pub mod views;

use std::sync::Arc;

/// The identity of the plugin a call runs for, attached to everything it logs or stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    /// Plugin id from its manifest.
    pub id: String,
    /// Plugin version from its manifest.
    pub version: String,
}

/// Everything the `host` interface needs for one plugin, shared by all of its calls.
#[derive(Clone)]
pub struct CapabilityCtx {
    /// Who is calling.
    pub identity: Arc<PluginIdentity>,
    /// The `[config]` table of the manifest as JSON (`get-config`).
    pub config_json: Arc<str>,
    /// Backing store of `state-get` / `state-set` / `state-delete`.
    pub state: Arc<dyn state::PluginStateStore>,
    /// Backing of `get-operation` / `get-workflow`.
    pub views: Arc<dyn views::HostViews>,
}
