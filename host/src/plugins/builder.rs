//! [`PluginHostBuilder`]: what a load uses besides the configuration (state store, views, config overrides,
//! the one folder `plugins check` loads) and the load itself.

use super::*;

/// Options of [`PluginHost::builder`].
pub struct PluginHostBuilder<'a> {
    /// The host configuration.
    config: &'a Config,
    /// Backing of plugin key/value state.
    state: Arc<dyn PluginStateStore>,
    /// Backing of the read-only views.
    views: Arc<dyn HostViews>,
    /// Whether to load the embedded default plugins.
    defaults: bool,
    /// Operator overrides of plugin `[config]` tables, by plugin id.
    config_overrides: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// The one folder to load instead of `plugins.dirs` (and a component file name replacing its
    /// manifest's), for `plugins check`.
    only_folder: Option<(PathBuf, Option<String>)>,
    /// An engine and linker made beforehand (see [`PluginRuntime::prepare`]).
    runtime: Option<PluginRuntime>,
}

/// The wasmtime engine (with its instance pool) and the linker every plugin is linked with: the part of a load
/// that needs nothing but the configuration, so a start-up can make it while it opens the database.
pub struct PluginRuntime {
    engine: Engine,
    linker: Arc<wasmtime::component::Linker<PluginCtx>>,
}

impl PluginRuntime {
    /// Creates the engine with plugin memories of at most `max_memory_bytes` (`plugins.default_memory_bytes`).
    pub fn prepare(max_memory_bytes: u64) -> Result<PluginRuntime, PluginError> {
        let engine = engine::new_engine(max_memory_bytes)?;
        let linker = Arc::new(runtime::new_linker(&engine)?);
        Ok(PluginRuntime { engine, linker })
    }
}

impl<'a> PluginHostBuilder<'a> {
    /// A builder over `config` with in-memory state, no views, the default plugins and `plugins.dirs`.
    pub(super) fn new(config: &'a Config) -> Self {
        PluginHostBuilder {
            config,
            state: Arc::new(InMemoryStateStore::default()),
            views: Arc::new(NoViews),
            defaults: true,
            config_overrides: BTreeMap::new(),
            only_folder: None,
            runtime: None,
        }
    }

    /// Loads into `runtime` instead of creating one; it must come from this configuration's
    /// `plugins.default_memory_bytes`.
    pub fn runtime(mut self, runtime: PluginRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Uses `state` for plugin key/value state (default: in memory).
    pub fn state_store(mut self, state: Arc<dyn PluginStateStore>) -> Self {
        self.state = state;
        self
    }

    /// Uses `views` for `get-operation` / `get-workflow` (default: [`NoViews`]).
    pub fn views(mut self, views: Arc<dyn HostViews>) -> Self {
        self.views = views;
        self
    }

    /// Overrides keys of plugin `id`'s `[config]` table (top-level keys replace the manifest's).
    /// This is how an operator configures a default plugin, e.g. `allow_danger_full_access` of
    /// `default-policy`.
    pub fn plugin_config(
        mut self,
        id: &str,
        table: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.config_overrides.insert(id.to_string(), table);
        self
    }

    /// Loads the plugin in `folder` instead of those of `plugins.dirs`, with `component` (a file name next to
    /// its manifest) instead of the manifest's component when given. `plugins check` uses it to load a plugin
    /// exactly as the server would, next to the default plugins whose ids it must not take.
    pub fn only_folder(mut self, folder: PathBuf, component: Option<String>) -> Self {
        self.only_folder = Some((folder, component));
        self
    }

    /// Skips the embedded default plugins (for tests and benchmarks of one plugin).
    pub fn without_defaults(mut self) -> Self {
        self.defaults = false;
        self
    }

    /// Creates the engine and loads every plugin. A plugin that fails to load is reported in
    /// [`PluginHost::infos`] and skipped; only an engine failure is an error.
    pub fn load(self) -> Result<PluginHost, PluginError> {
        let PluginRuntime { engine, linker } = match self.runtime {
            Some(runtime) => runtime,
            None => PluginRuntime::prepare(self.config.plugins.default_memory_bytes)?,
        };
        let cache = ArtifactCache::new(self.config.plugin_cache_dir());
        let mut loader = Loader {
            engine: &engine,
            linker: &linker,
            cache: &cache,
            config: &self.config.plugins,
            state: self.state,
            views: self.views,
            config_overrides: self.config_overrides,
            component_override: None,
            loaded: Vec::new(),
            infos: Vec::new(),
        };
        if self.defaults {
            for plugin in DEFAULT_PLUGINS {
                loader.load_embedded(plugin);
            }
        }
        let checking = self.only_folder.is_some();
        match self.only_folder {
            Some((folder, component)) => {
                loader.component_override = component;
                loader.load_folder(&folder);
            }
            None => {
                for dir in &self.config.plugins.dirs {
                    loader.load_dir(dir);
                }
            }
        }
        let Loader { loaded, infos, .. } = loader;
        // A grant for a plugin that is not there is most likely a typo in an id: say so, it grants nothing.
        // Checking one folder, the other plugins' grants are expected to name nothing loaded.
        for id in self.config.plugins.grants.keys().filter(|_| !checking) {
            let third_party = infos
                .iter()
                .any(|info| info.id == *id && info.source != "embedded");
            if !third_party {
                tracing::warn!(plugin = %id, "plugins.grants names no third-party plugin; the grant has no effect");
            }
        }
        Ok(PluginHost {
            context: policy_context(self.config),
            cache_dir: cache.dir().to_path_buf(),
            loaded,
            infos,
            engine,
        })
    }
}
