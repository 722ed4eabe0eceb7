//! [`App`]: the state every tool handler shares, built once at start-up and owned by `Arc`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use serde_json::{json, Value};

use crate::config::Config;
use crate::plugins::PluginHost;
use crate::projects::ProjectRegistry;

pub use crate::appserver::RECURSION_MARKER_ENV;

/// Shared server state.
pub struct App {
    /// The resolved configuration.
    pub config: Config,
    /// When this process started serving (monotonic).
    pub started_at: Instant,
    /// When this process started serving (wall clock).
    pub started_at_wall: SystemTime,
    /// The loaded plugins (default and third-party).
    pub plugins: Arc<PluginHost>,
    /// Project references to roots.
    pub projects: ProjectRegistry,
    recursion_guard: bool,
}

impl App {
    /// Builds the application state from a validated configuration.
    pub fn new(config: Config) -> anyhow::Result<App> {
        let recursion_guard = std::env::var_os(RECURSION_MARKER_ENV).is_some_and(|v| !v.is_empty());
        if recursion_guard {
            tracing::warn!(
                "started inside a Codex session spawned by codex-control-plane-mcp; write tools are refused"
            );
        }
        let plugins = PluginHost::load(&config)
            .map_err(|err| anyhow::anyhow!("{err}"))
            .context("failed to start the plugin runtime")?;
        for info in plugins.infos() {
            tracing::info!(
                plugin = %info.id,
                version = %info.version,
                status = ?info.status,
                cache = ?info.cache,
                load_micros = info.load_micros,
                error = ?info.error,
                "plugin"
            );
        }
        Ok(App {
            projects: ProjectRegistry::new(&config),
            plugins: Arc::new(plugins),
            config,
            started_at: Instant::now(),
            started_at_wall: SystemTime::now(),
            recursion_guard,
        })
    }

    /// True when this process must refuse write tools (see [`RECURSION_MARKER_ENV`]).
    pub fn recursion_guard_active(&self) -> bool {
        self.recursion_guard
    }

    /// The plugins this process knows, as the health summary shows them.
    pub fn plugin_infos(&self) -> Vec<Value> {
        self.plugins
            .infos()
            .iter()
            .map(|info| {
                json!({
                    "name": info.id,
                    "displayName": info.name,
                    "version": info.version,
                    "kind": info.kind,
                    "worlds": info.worlds,
                    "witVersion": info.wit_version,
                    "status": info.status,
                    "builtin": info.source == "embedded",
                    "source": info.source,
                    "error": info.error,
                    "cache": info.cache,
                    "loadMicros": info.load_micros,
                })
            })
            .collect()
    }
}
