//! `[plugins]`: where plugins come from, the budget each call gets, and which host capabilities the operator
//! grants each third-party plugin.
//!
//! The capability names live here rather than in `plugins` because the operator writes them in this file's
//! TOML (`plugins.grants`) and a misspelt one must fail start-up like any other bad key; `plugins` names
//! `config`, never the other way round.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A host capability of the WIT `host` interface, as a manifest declares it and the operator grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginCapability {
    /// `log`: log lines through the host's logger.
    Log,
    /// `now-ms`: the wall clock.
    Clock,
    /// `get-config`: the plugin's own `[config]` table.
    Config,
    /// `state-get` / `state-set` / `state-delete`: the plugin's own persisted key/value state.
    State,
    /// `get-operation` / `get-workflow`: redacted views of the host's operations and workflows.
    Views,
}

/// What a manifest without a `capabilities` key declares, and what a third-party plugin without a
/// `plugins.grants` entry is granted: the capabilities that show a plugin nothing of the host's work and write
/// nothing durable. Plugins written before capabilities existed keep loading with exactly these.
pub const BASIC_CAPABILITIES: &[PluginCapability] = &[
    PluginCapability::Log,
    PluginCapability::Clock,
    PluginCapability::Config,
];

impl PluginCapability {
    /// Every capability, in declaration order.
    pub const ALL: &'static [PluginCapability] = &[
        PluginCapability::Log,
        PluginCapability::Clock,
        PluginCapability::Config,
        PluginCapability::State,
        PluginCapability::Views,
    ];

    /// The name a manifest and `plugins.grants` use.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginCapability::Log => "log",
            PluginCapability::Clock => "clock",
            PluginCapability::Config => "config",
            PluginCapability::State => "state",
            PluginCapability::Views => "views",
        }
    }
}

impl fmt::Display for PluginCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where plugins come from and the budget each call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Directories holding third-party plugins (each plugin is a folder with `plugin.toml` and `plugin.wasm`).
    pub dirs: Vec<PathBuf>,
    /// Whether trusted native (shared library) plugins may be loaded at all.
    pub allow_native: bool,
    /// Where compiled components are cached; `None` means next to the state database.
    pub cache_dir: Option<PathBuf>,
    /// Fuel per plugin call unless the manifest asks for less.
    pub default_fuel: u64,
    /// Wall-clock deadline per plugin call, in milliseconds.
    pub default_timeout_ms: u64,
    /// Linear memory cap per plugin instance, in bytes.
    pub default_memory_bytes: u64,
    /// Plugin names not to load, default plugins included.
    pub disabled: Vec<String>,
    /// Host capabilities granted to third-party plugins, by plugin id (`plugins.grants`). A plugin without an
    /// entry is granted [`BASIC_CAPABILITIES`]; default plugins are granted what they declare.
    pub grants: BTreeMap<String, Vec<PluginCapability>>,
    /// Plugin ids that must load (`plugins.required`): start-up fails when one of them is not loaded.
    pub required: Vec<String>,
    /// Operator settings of plugins, by plugin id (`[plugins.settings.<id>]`): top-level keys replace those of
    /// the plugin's own `[config]`, and the result must fit the `config_schema` its manifest declares.
    pub settings: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl PluginsConfig {
    /// The capabilities the operator grants the third-party plugin `id`.
    pub fn granted_to(&self, id: &str) -> &[PluginCapability] {
        self.grants
            .get(id)
            .map_or(BASIC_CAPABILITIES, Vec::as_slice)
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dirs: Vec::new(),
            allow_native: false,
            cache_dir: None,
            default_fuel: 50_000_000,
            default_timeout_ms: 1_000,
            default_memory_bytes: 64 * 1024 * 1024,
            disabled: Vec::new(),
            grants: BTreeMap::new(),
            required: Vec::new(),
            settings: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_without_a_grant_gets_the_basic_capabilities() {
        // Only an explicit entry changes what a third-party plugin may call.
        let mut config = PluginsConfig::default();
        config.grants.insert(
            "site".to_string(),
            vec![PluginCapability::Log, PluginCapability::State],
        );
        assert_eq!(config.granted_to("other"), BASIC_CAPABILITIES);
        assert_eq!(
            config.granted_to("site"),
            &[PluginCapability::Log, PluginCapability::State]
        );
    }
}
