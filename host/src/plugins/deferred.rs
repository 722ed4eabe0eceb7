//! Default plugins linked on first use instead of at start-up.
//!
//! Linking a plugin hashes its component bytes (the artifact key), maps its compiled artifact and
//! instantiates it once to check its exports: about a megabyte of resident memory per plugin, and
//! milliseconds of start-up, for plugins most sessions never call (a status poll calls none). The
//! default plugins are built with the binary and checked by its tests, so nothing is learned by
//! linking them early; third-party plugins are still linked at start-up, where a broken one is
//! reported before it is needed.

use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::Linker;
use wasmtime::Engine;

use super::capability::CapabilityCtx;
use super::engine::{ArtifactCache, CacheOutcome};
use super::error::PluginError;
use super::limits::CallLimits;
use super::manifest::Manifest;
use super::runtime::{PluginCtx, WasmPlugin};

/// Everything linking one plugin needs, kept until its first call.
pub(super) struct LinkJob {
    /// The engine (a cheap handle).
    pub(super) engine: Engine,
    /// The shared linker. Shared, not cloned: a clone copies its name maps, which cost each deferred plugin more
    /// start-up time than the rest of deferring it.
    pub(super) linker: Arc<Linker<PluginCtx>>,
    /// The artifact cache.
    pub(super) cache: ArtifactCache,
    /// The plugin's manifest.
    pub(super) manifest: Manifest,
    /// The component bytes, embedded in the binary.
    pub(super) wasm: &'static [u8],
    /// What its host calls are served with.
    pub(super) capabilities: CapabilityCtx,
    /// Its budgets.
    pub(super) limits: CallLimits,
}

impl LinkJob {
    /// Compiles or loads the artifact and links it.
    fn link(self) -> Result<(WasmPlugin, CacheOutcome), PluginError> {
        let manifest = &self.manifest;
        let version = manifest.wit_version()?;
        let (component, outcome) =
            self.cache
                .load(&self.engine, &manifest.id, &manifest.version, self.wasm)?;
        let plugin = WasmPlugin::new(
            &self.linker,
            &component,
            &manifest.worlds,
            version,
            self.capabilities,
            self.limits,
        )?;
        Ok((plugin, outcome))
    }
}

/// A plugin that links itself on its first call. Concurrent first calls wait for one link.
pub(super) struct DeferredWasm {
    /// Plugin id, for errors.
    id: String,
    /// Plugin version, for errors.
    version: String,
    /// The budgets, known before linking.
    limits: CallLimits,
    /// The pending link, taken by the first call.
    job: Mutex<Option<LinkJob>>,
    /// The outcome of the link: the plugin, or why it could not be linked (kept, so a broken
    /// plugin fails every call the same way instead of retrying the link each time).
    linked: OnceLock<Result<(WasmPlugin, CacheOutcome), String>>,
}

impl DeferredWasm {
    /// A plugin that `job` links on first use.
    pub(super) fn new(job: LinkJob) -> DeferredWasm {
        DeferredWasm {
            id: job.manifest.id.clone(),
            version: job.manifest.version.clone(),
            limits: job.limits,
            job: Mutex::new(Some(job)),
            linked: OnceLock::new(),
        }
    }

    /// The linked plugin, linking it now if this is its first use.
    pub(super) fn get(&self) -> Result<&WasmPlugin, PluginError> {
        let linked = self.linked.get_or_init(|| {
            // `get_or_init` runs one initializer at a time, so the job is taken exactly once.
            let job = self
                .job
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .take();
            let Some(job) = job else {
                return Err("the link job was already taken".to_string());
            };
            let result = job.link();
            match &result {
                Ok((_, outcome)) => {
                    tracing::info!(plugin = %self.id, cache = outcome.as_str(), "plugin linked on first use")
                }
                Err(error) => {
                    tracing::warn!(plugin = %self.id, %error, "plugin could not be linked on first use")
                }
            }
            result.map_err(|error| error.to_string())
        });
        match linked {
            Ok((plugin, _)) => Ok(plugin),
            Err(message) => Err(PluginError::Deferred {
                plugin: self.id.clone(),
                version: self.version.clone(),
                message: message.clone(),
            }),
        }
    }

    /// The budgets of its calls.
    pub(super) fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Where its artifact came from, once linked.
    pub(super) fn cache_outcome(&self) -> Option<CacheOutcome> {
        match self.linked.get() {
            Some(Ok((_, outcome))) => Some(*outcome),
            _ => None,
        }
    }

    /// Why its link failed, once it did.
    pub(super) fn link_error(&self) -> Option<&str> {
        match self.linked.get() {
            Some(Err(message)) => Some(message),
            _ => None,
        }
    }
}
