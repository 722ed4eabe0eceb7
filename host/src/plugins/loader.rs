//! Loading plugins: the embedded defaults and third-party folders, each manifest checked, linked against the
//! host functions and recorded with its status.

use super::*;

use deferred::{DeferredWasm, LinkJob};

/// Where a plugin's component comes from.
pub(super) enum WasmSource {
    /// Built into the binary (a default plugin): linked on first use.
    Embedded(&'static [u8]),
    /// The manifest's `component` file (default `plugin.wasm`) in the plugin's folder: linked at load.
    Folder,
}

/// Loading state shared by the default and third-party plugins.
pub(super) struct Loader<'a> {
    /// The engine.
    pub(super) engine: &'a Engine,
    /// The shared linker.
    pub(super) linker: &'a Arc<wasmtime::component::Linker<PluginCtx>>,
    /// The artifact cache.
    pub(super) cache: &'a ArtifactCache,
    /// Plugin configuration.
    pub(super) config: &'a PluginsConfig,
    /// State store handed to every plugin.
    pub(super) state: Arc<dyn PluginStateStore>,
    /// Views handed to every plugin.
    pub(super) views: Arc<dyn HostViews>,
    /// Operator overrides of plugin `[config]` tables, by plugin id.
    pub(super) config_overrides: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// A component file name replacing the manifest's in folders loaded from now on (`plugins check PATH.wasm`).
    pub(super) component_override: Option<String>,
    /// Plugins loaded so far.
    pub(super) loaded: Vec<LoadedPlugin>,
    /// Status of every plugin seen so far.
    pub(super) infos: Vec<PluginInfo>,
}

impl Loader<'_> {
    /// Loads one embedded default plugin.
    pub(super) fn load_embedded(&mut self, plugin: &EmbeddedPlugin) {
        let origin = PathBuf::from(format!("embedded:{}", plugin.crate_name));
        match Manifest::parse(plugin.manifest, &origin) {
            Ok(manifest) => self.load_manifest(
                manifest,
                "embedded".to_string(),
                None,
                WasmSource::Embedded(plugin.wasm),
            ),
            Err(error) => self.record_unreadable(plugin.crate_name, "embedded".to_string(), error),
        }
    }

    /// Loads the plugin in `dir` (a folder with `plugin.toml`), or every plugin folder inside it.
    pub(super) fn load_dir(&mut self, dir: &Path) {
        if dir.join("plugin.toml").is_file() {
            self.load_folder(dir);
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "plugin directory unreadable; skipped");
                return;
            }
        };
        let mut folders: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.join("plugin.toml").is_file())
            .collect();
        folders.sort();
        for folder in folders {
            self.load_folder(&folder);
        }
    }

    /// Loads the plugin in one folder.
    pub(super) fn load_folder(&mut self, folder: &Path) {
        let source = folder.display().to_string();
        match Manifest::read(&folder.join("plugin.toml")) {
            Ok(mut manifest) => {
                if let Some(component) = &self.component_override {
                    manifest.component = Some(component.clone());
                }
                self.load_manifest(manifest, source, Some(folder), WasmSource::Folder)
            }
            Err(error) => {
                let fallback_id = folder
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.record_unreadable(&fallback_id, source, error)
            }
        }
    }

    /// Loads a plugin whose manifest was read from `folder` (`None` for embedded plugins), its component
    /// from `wasm`.
    pub(super) fn load_manifest(
        &mut self,
        manifest: Manifest,
        source: String,
        folder: Option<&Path>,
        wasm: WasmSource,
    ) {
        let started = Instant::now();
        let declared = manifest.declared_capabilities();
        // Default plugins ship with the binary: they are granted what they declare. A third-party plugin
        // gets what the operator grants it (the basic capabilities without a `plugins.grants` entry).
        let granted: Vec<Capability> = if folder.is_none() {
            declared.clone()
        } else {
            self.config.granted_to(&manifest.id).to_vec()
        };
        let missing: Vec<String> = declared
            .iter()
            .filter(|capability| !granted.contains(capability))
            .map(ToString::to_string)
            .collect();
        let mut info = PluginInfo {
            id: manifest.id.clone(),
            name: manifest.display_name().to_string(),
            version: manifest.version.clone(),
            kind: manifest.kind.as_str(),
            source,
            worlds: manifest.worlds.clone(),
            wit_version: manifest.wit.clone(),
            capabilities: declared.clone(),
            granted: granted.clone(),
            status: PluginStatus::Failed,
            error: None,
            cache: None,
            load_micros: 0,
            linked: false,
            limits: None,
        };
        let disabled = self
            .config
            .disabled
            .iter()
            .any(|name| *name == manifest.id || *name == manifest.display_name());
        let outcome = if disabled {
            Err((
                PluginStatus::Disabled,
                "disabled by plugins.disabled".to_string(),
            ))
        } else if self.loaded.iter().any(|p| p.manifest.id == manifest.id) {
            Err((
                PluginStatus::Failed,
                format!("another plugin with id {} is already loaded", manifest.id),
            ))
        } else if !missing.is_empty() {
            Err((
                PluginStatus::Failed,
                PluginError::CapabilityNotGranted {
                    plugin: manifest.id.clone(),
                    version: manifest.version.clone(),
                    missing,
                    wanted: declared.iter().map(ToString::to_string).collect(),
                }
                .to_string(),
            ))
        } else if let Err(error) = self.check_settings(&manifest, folder) {
            Err((PluginStatus::Failed, error.to_string()))
        } else if manifest.kind == PluginKind::Native {
            match (self.config.allow_native, folder) {
                (true, Some(folder)) => {
                    let file = manifest.component.as_deref().unwrap_or("plugin.so");
                    native::NativePlugin::load(&folder.join(file), &manifest.id, &manifest.version)
                        .map(|plugin| (Backend::Native(plugin), None))
                        .map_err(|error| (PluginStatus::Failed, error.to_string()))
                }
                (true, None) => Err((
                    PluginStatus::Failed,
                    "embedded plugins cannot be native".to_string(),
                )),
                (false, _) => Err((
                    PluginStatus::Disabled,
                    "native plugins are disabled (plugins.allow_native = false)".to_string(),
                )),
            }
        } else {
            match (wasm, folder) {
                (WasmSource::Embedded(bytes), _) => self
                    .defer(&manifest, &declared, bytes)
                    .map(|deferred| (Backend::Deferred(Box::new(deferred)), None))
                    .map_err(|error| (PluginStatus::Failed, error.to_string())),
                (WasmSource::Folder, Some(folder)) => self
                    .link(&manifest, &declared, folder)
                    .map(|(wasm, cache)| (Backend::Wasm(wasm), Some(cache)))
                    .map_err(|error| (PluginStatus::Failed, error.to_string())),
                (WasmSource::Folder, None) => Err((
                    PluginStatus::Failed,
                    "a plugin without a folder has no component file".to_string(),
                )),
            }
        };
        info.load_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok((backend, cache)) => {
                info.status = PluginStatus::Loaded;
                info.cache = cache.map(CacheOutcome::as_str);
                info.limits = backend.limits();
                info.linked = !matches!(backend, Backend::Deferred(_));
                tracing::info!(plugin = %manifest.id, version = %manifest.version, kind = manifest.kind.as_str(), cache = ?info.cache, micros = info.load_micros, "plugin loaded");
                self.loaded.push(LoadedPlugin { manifest, backend });
            }
            Err((status, message)) => {
                if status == PluginStatus::Failed {
                    tracing::warn!(plugin = %manifest.id, error = %message, "plugin not loaded");
                } else {
                    tracing::info!(plugin = %manifest.id, reason = %message, "plugin not loaded");
                }
                info.status = status;
                info.error = Some(message);
            }
        }
        self.infos.push(info);
    }

    /// Checks the WIT version, reads the component from `folder`, compiles or deserializes it, links it and
    /// checks the exports. Its calls may use `capabilities`.
    pub(super) fn link(
        &self,
        manifest: &Manifest,
        capabilities: &[Capability],
        folder: &Path,
    ) -> Result<(WasmPlugin, CacheOutcome), PluginError> {
        let version = manifest.wit_version()?;
        let path = folder.join(manifest.component.as_deref().unwrap_or("plugin.wasm"));
        let wasm = std::fs::read(&path).map_err(|source| PluginError::Io { path, source })?;
        let (component, outcome): (Component, CacheOutcome) =
            self.cache
                .load(self.engine, &manifest.id, &manifest.version, &wasm)?;
        let plugin = WasmPlugin::new(
            self.linker,
            &component,
            &manifest.worlds,
            version,
            self.capabilities(manifest, capabilities, Some(folder)),
            CallLimits::resolve(self.config, &manifest.limits),
        )?;
        Ok((plugin, outcome))
    }

    /// Checks the WIT version and prepares an embedded plugin to be linked on its first call, with `capabilities`.
    pub(super) fn defer(
        &self,
        manifest: &Manifest,
        capabilities: &[Capability],
        wasm: &'static [u8],
    ) -> Result<DeferredWasm, PluginError> {
        manifest.wit_version()?;
        Ok(DeferredWasm::new(LinkJob {
            engine: self.engine.clone(),
            linker: self.linker.clone(),
            cache: self.cache.clone(),
            manifest: manifest.clone(),
            wasm,
            capabilities: self.capabilities(manifest, capabilities, None),
            limits: CallLimits::resolve(self.config, &manifest.limits),
        }))
    }

    /// What the plugin's host calls are served with: its identity, config, state, views and `capabilities`.
    fn capabilities(
        &self,
        manifest: &Manifest,
        capabilities: &[Capability],
        folder: Option<&Path>,
    ) -> CapabilityCtx {
        CapabilityCtx {
            identity: Arc::new(PluginIdentity {
                id: manifest.id.clone(),
                version: manifest.version.clone(),
            }),
            config_json: Arc::from(self.config_json(manifest, folder)),
            state: self.state.clone(),
            views: self.views.clone(),
            capabilities: Arc::from(capabilities),
        }
    }

    /// The plugin's settings as JSON: what [`settings`](Self::settings) gives.
    pub(super) fn config_json(&self, manifest: &Manifest, folder: Option<&Path>) -> String {
        serde_json::Value::Object(self.settings(manifest, folder)).to_string()
    }

    /// The manifest's `[config]` with the operator's `plugins.settings` and then the builder's overrides
    /// applied (top-level keys replace the manifest's), then the `default` of every `config_schema` property
    /// still missing. A schema that cannot be read adds nothing here: [`check_settings`](Self::check_settings)
    /// fails the plugin for it before anything is served.
    fn settings(
        &self,
        manifest: &Manifest,
        folder: Option<&Path>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let table = match serde_json::to_value(&manifest.config) {
            Ok(serde_json::Value::Object(table)) => table,
            _ => serde_json::Map::new(),
        };
        let overrides = [
            self.config.settings.get(&manifest.id),
            self.config_overrides.get(&manifest.id),
        ];
        let schema = manifest.config_schema_json(folder).ok().flatten();
        merged_settings(table, overrides.into_iter().flatten(), schema.as_ref())
    }

    /// Checks the plugin's settings against the `config_schema` its manifest declares (nothing to check
    /// without one); the error names the offending key.
    fn check_settings(
        &self,
        manifest: &Manifest,
        folder: Option<&Path>,
    ) -> Result<(), PluginError> {
        let Some(schema) = manifest.config_schema_json(folder)? else {
            return Ok(());
        };
        let settings = serde_json::Value::Object(self.settings(manifest, folder));
        crate::domain::schema::validate(&schema, &settings).map_err(|violation| {
            PluginError::InvalidSetting {
                plugin: manifest.id.clone(),
                version: manifest.version.clone(),
                key: if violation.field.is_empty() {
                    "(settings)".to_string()
                } else {
                    violation.field
                },
                message: violation.message,
            }
        })
    }

    /// Records a plugin whose manifest could not be read.
    pub(super) fn record_unreadable(&mut self, id: &str, source: String, error: PluginError) {
        tracing::warn!(plugin = id, %error, "plugin manifest unreadable");
        self.infos.push(PluginInfo {
            id: id.to_string(),
            name: id.to_string(),
            version: String::new(),
            kind: PluginKind::Wasm.as_str(),
            source,
            worlds: Vec::new(),
            wit_version: String::new(),
            capabilities: Vec::new(),
            granted: Vec::new(),
            status: PluginStatus::Failed,
            error: Some(error.to_string()),
            cache: None,
            load_micros: 0,
            linked: false,
            limits: None,
        });
    }
}

/// `table` (a manifest's `[config]`) with each of `overrides` applied in turn (top-level keys replace), then the
/// `default` of each top-level property of `schema` that is still missing: what the plugin reads and what is
/// checked against the schema.
fn merged_settings<'a>(
    mut table: serde_json::Map<String, serde_json::Value>,
    overrides: impl Iterator<Item = &'a serde_json::Map<String, serde_json::Value>>,
    schema: Option<&serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    for layer in overrides {
        table.extend(layer.clone());
    }
    if let Some(schema) = schema.and_then(serde_json::Value::as_object) {
        crate::domain::schema::apply_defaults(schema, &mut table);
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::merged_settings;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn schema_defaults_fill_only_what_nobody_set() {
        let schema = json!({"type": "object", "properties": {
            "reason": {"type": "string", "default": "is denied"},
            "limit": {"type": "integer", "default": 3},
            "models": {"type": "array", "default": []},
            "plain": {"type": "string"},
        }});
        let manifest = object(json!({"models": ["gpt-4o"]}));
        let operator = object(json!({"limit": 7}));
        let merged = merged_settings(manifest, [&operator].into_iter(), Some(&schema));
        // `reason` from its default; `limit` from the operator and `models` from [config] win over theirs; a
        // property without a default stays absent.
        assert_eq!(
            Value::Object(merged),
            json!({"models": ["gpt-4o"], "limit": 7, "reason": "is denied"})
        );
    }

    #[test]
    fn without_a_schema_the_layers_alone_decide() {
        let manifest = object(json!({"a": 1, "b": 1}));
        let operator = object(json!({"b": 2}));
        let builder = object(json!({"c": 3}));
        let merged = merged_settings(manifest, [&operator, &builder].into_iter(), None);
        assert_eq!(Value::Object(merged), json!({"a": 1, "b": 2, "c": 3}));
    }
}
