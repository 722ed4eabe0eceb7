//! Host capabilities offered to plugins through the WIT `host` interface, one module per
//! capability. Each module holds the policy and the caps of its capability; `host.rs` only wires
//! the generated `Host` trait to them.
//!
//! Every host function belongs to one [`Capability`]. `host.rs` checks the calling plugin's
//! capabilities before it reaches the capability module: a call outside them traps with
//! [`CapabilityDenied`], which names the capability, and fails that plugin call.
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

pub use crate::config::PluginCapability as Capability;

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
    /// The capabilities its calls may use: what its manifest declares (and, for a third-party plugin,
    /// the operator granted, or it would not have loaded).
    pub capabilities: Arc<[Capability]>,
}

impl CapabilityCtx {
    /// `Ok` when the plugin may use `capability`; otherwise the error that traps the call.
    pub fn check(&self, capability: Capability) -> Result<(), CapabilityDenied> {
        if self.capabilities.contains(&capability) {
            return Ok(());
        }
        Err(CapabilityDenied {
            plugin: self.identity.id.clone(),
            capability,
        })
    }
}

/// A host function was called outside the plugin's capabilities. Raised as the trap that ends the
/// call, so the host function is never reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} called a host function of capability `{capability}`, which it does not hold (declare it in plugin.toml `capabilities`; a third-party plugin also needs it in plugins.grants)")]
pub struct CapabilityDenied {
    /// Plugin id.
    pub plugin: String,
    /// The capability the call needed.
    pub capability: Capability,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_refuses_a_capability_the_plugin_does_not_hold_and_names_it() {
        // The error that traps the call names the plugin, the capability and where to declare and grant it.
        let ctx = CapabilityCtx {
            identity: Arc::new(PluginIdentity {
                id: "site".to_string(),
                version: "1.0.0".to_string(),
            }),
            config_json: Arc::from("{}"),
            state: Arc::new(state::InMemoryStateStore::default()),
            views: Arc::new(views::NoViews),
            capabilities: Arc::from(vec![Capability::Log, Capability::Config]),
        };
        assert_eq!(ctx.check(Capability::Log), Ok(()));
        let denied = ctx.check(Capability::State).expect_err("not held");
        assert_eq!(denied.capability, Capability::State);
        let message = denied.to_string();
        assert!(
            message.contains("plugin site")
                && message.contains("`state`")
                && message.contains("plugins.grants"),
            "{message}"
        );
    }
}
