//! `plugin.toml`: what a plugin declares about itself.
//!
//! ```toml
//! id = "site-policy"             # unique id; `plugins.disabled` names plugins by it
//! name = "Site policy"           # optional display name (defaults to the id)
//! version = "1.2.0"
//! description = "..."
//! wit = "0.1.0"                  # WIT package version the component was built against
//! worlds = ["policy"]            # worlds it implements: workflow, analyzer, repair, policy
//! kind = "wasm"                  # or "native" (trusted shared library, off by default)
//! component = "plugin.wasm"      # optional, the component file next to the manifest
//! capabilities = ["log", "clock", "config", "state", "views"]   # host functions it calls; see below
//!
//! [limits]                       # optional; each is capped by the host configuration
//! fuel = 10_000_000
//! timeout_ms = 100
//! memory_bytes = 16_777_216
//!
//! [config]                       # optional, any table; the plugin reads it with `get-config`
//!
//! [config_schema]                # optional JSON Schema (as TOML) the settings must fit; or
//! # config_schema = "schema.json"  a JSON file next to the manifest (third-party plugins only)
//! ```
//!
//! `capabilities` names the groups of host functions the plugin calls (`log`, `clock`, `config`, `state`,
//! `views`); a manifest without the key declares the basic ones (`log`, `clock`, `config`). A call to a host
//! function of a capability the plugin did not declare fails that call, and a third-party plugin loads only
//! when the operator granted everything it declares (`plugins.grants`).
//!
//! `config_schema` describes the settings the plugin reads: its `[config]` with the operator's
//! `[plugins.settings.<id>]` applied must fit it, or the plugin does not load (the error names the key). It
//! uses the keywords of [`crate::domain::schema::SUPPORTED_KEYWORDS`]; any other keyword is refused rather
//! than silently unchecked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::PluginError;
use super::wit::{self, WitVersion};
use crate::config::{PluginCapability, BASIC_CAPABILITIES};

/// The parsed `plugin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique plugin id.
    pub id: String,
    /// Display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The plugin's own version.
    pub version: String,
    /// What the plugin does.
    #[serde(default)]
    pub description: String,
    /// WIT package version it was built against, `X.Y.Z`.
    pub wit: String,
    /// Worlds it implements.
    pub worlds: Vec<World>,
    /// WASM component or native library.
    #[serde(default)]
    pub kind: PluginKind,
    /// Component (or library) file name, relative to the manifest.
    #[serde(default)]
    pub component: Option<String>,
    /// Host capabilities it calls; `None` (no key) declares [`BASIC_CAPABILITIES`].
    #[serde(default)]
    pub capabilities: Option<Vec<PluginCapability>>,
    /// Budgets the plugin asks for.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Free-form configuration handed to the plugin as JSON.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// JSON Schema its settings must fit: inline, or a JSON file next to the manifest.
    #[serde(default)]
    pub config_schema: Option<ConfigSchema>,
}

/// Where a manifest's `config_schema` is.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConfigSchema {
    /// A JSON file next to the manifest.
    File(String),
    /// A table in the manifest itself.
    Inline(toml::Table),
}

/// A world of the plugin contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// `world workflow`.
    Workflow,
    /// `world analyzer`.
    Analyzer,
    /// `world repair`.
    Repair,
    /// `world policy`.
    Policy,
}

impl World {
    /// The world's WIT name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Workflow => "workflow",
            World::Analyzer => "analyzer",
            World::Repair => "repair",
            World::Policy => "policy",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a plugin is implemented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A WebAssembly component run in wasmtime (the default and the only sandboxed kind).
    #[default]
    Wasm,
    /// A trusted native shared library.
    Native,
}

impl PluginKind {
    /// `"wasm"` or `"native"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Wasm => "wasm",
            PluginKind::Native => "native",
        }
    }
}

/// The `[limits]` table; absent values take the host's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    /// Fuel (roughly, wasm instructions) per call.
    pub fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: Option<u64>,
}

/// Whether `id` is a valid plugin id: 1-64 characters of a-z, 0-9, '-' or '_'.
pub fn is_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Manifest {
    /// Parses a manifest; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Manifest, PluginError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| PluginError::Manifest {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        manifest.validate(origin)?;
        Ok(manifest)
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Manifest, PluginError> {
        let text = std::fs::read_to_string(path).map_err(|source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, path)
    }

    /// The display name.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The declared WIT version, checked against the versions this host serves.
    pub fn wit_version(&self) -> Result<WitVersion, PluginError> {
        let unsupported = || PluginError::UnsupportedWitVersion {
            plugin: self.id.clone(),
            version: self.version.clone(),
            wanted: self.wit.clone(),
            known: wit::known_versions_text(),
        };
        let wanted = WitVersion::parse(&self.wit).ok_or_else(unsupported)?;
        wit::select(wanted).ok_or_else(unsupported)
    }

    /// The capabilities it declares, sorted and without repeats.
    pub fn declared_capabilities(&self) -> Vec<PluginCapability> {
        let mut declared = self
            .capabilities
            .clone()
            .unwrap_or_else(|| BASIC_CAPABILITIES.to_vec());
        declared.sort();
        declared.dedup();
        declared
    }

    /// The `[config]` table as a JSON object.
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".to_string())
    }

    /// The `config_schema` as JSON, read from `folder` when it is a file (`None` for embedded plugins, which
    /// must inline it); `None` when the manifest declares none. A schema using a keyword the validator does
    /// not understand is refused, since it would be checked less than its author thinks.
    pub fn config_schema_json(
        &self,
        folder: Option<&Path>,
    ) -> Result<Option<serde_json::Value>, PluginError> {
        let invalid = |path: &Path, message: String| PluginError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let manifest_path = folder.map_or_else(
            || Path::new(&self.id).to_path_buf(),
            |folder| folder.join("plugin.toml"),
        );
        let schema = match &self.config_schema {
            None => return Ok(None),
            Some(ConfigSchema::Inline(table)) => serde_json::to_value(table)
                .map_err(|e| invalid(&manifest_path, format!("config_schema: {e}")))?,
            Some(ConfigSchema::File(name)) => {
                let Some(folder) = folder else {
                    return Err(invalid(
                        &manifest_path,
                        "an embedded plugin must inline its config_schema".to_string(),
                    ));
                };
                let path = folder.join(name);
                let text = std::fs::read_to_string(&path).map_err(|source| PluginError::Io {
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_str(&text)
                    .map_err(|e| invalid(&path, format!("config_schema is not JSON: {e}")))?
            }
        };
        if !schema.is_object() {
            return Err(invalid(
                &manifest_path,
                "config_schema must be a JSON Schema object".to_string(),
            ));
        }
        let unsupported = crate::domain::schema::unsupported_keywords(&schema);
        if !unsupported.is_empty() {
            return Err(invalid(
                &manifest_path,
                format!(
                    "config_schema uses keywords the host does not check: {}",
                    unsupported.join(", ")
                ),
            ));
        }
        Ok(Some(schema))
    }

    /// Checks what serde cannot: a usable id and at least one world.
    fn validate(&self, origin: &Path) -> Result<(), PluginError> {
        let invalid = |message: String| PluginError::Manifest {
            path: origin.to_path_buf(),
            message,
        };
        if !is_plugin_id(&self.id) {
            return Err(invalid(format!(
                "id {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                self.id
            )));
        }
        if self.worlds.is_empty() {
            return Err(invalid("`worlds` must name at least one world".to_string()));
        }
        for (key, file) in [
            ("component", self.component.as_deref()),
            (
                "config_schema",
                match &self.config_schema {
                    Some(ConfigSchema::File(name)) => Some(name.as_str()),
                    _ => None,
                },
            ),
        ] {
            let Some(file) = file else { continue };
            if file.contains('/') || file.contains('\\') || file == ".." {
                return Err(invalid(format!(
                    "{key} {file:?} must be a file name next to the manifest"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses an inline manifest.
    #[track_caller]
    fn parse(text: &str) -> Result<Manifest, PluginError> {
        Manifest::parse(text, Path::new("inline/plugin.toml"))
    }

    #[test]
    fn minimal_manifest_parses() {
        // Only id, version, wit and worlds are required.
        let manifest =
            parse("id = \"p\"\nversion = \"1.0.0\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\n")
                .expect("valid manifest");
        assert_eq!(manifest.display_name(), "p");
        assert_eq!(manifest.kind, PluginKind::Wasm);
        assert_eq!(manifest.config_json(), "{}");
        assert!(manifest.wit_version().is_ok());
        // No `capabilities` key: the basic ones, as plugins written before the key had.
        assert_eq!(manifest.declared_capabilities(), BASIC_CAPABILITIES);
    }

    #[test]
    fn capabilities_are_declared_by_name() {
        // Repeats collapse; an unknown name is a manifest error, not a silently dropped grant.
        let manifest = parse(
            "id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\n\
             capabilities = [\"state\", \"log\", \"state\"]\n",
        )
        .expect("parses");
        assert_eq!(
            manifest.declared_capabilities(),
            vec![PluginCapability::Log, PluginCapability::State]
        );
        let typo = parse(
            "id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\ncapabilities = [\"stat\"]\n",
        );
        assert!(matches!(typo, Err(PluginError::Manifest { .. })));
    }

    #[test]
    fn unknown_fields_and_worlds_are_refused() {
        // deny_unknown_fields catches typos instead of ignoring them.
        let typo = parse(
            "id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\nfeul = 1\n",
        );
        assert!(matches!(typo, Err(PluginError::Manifest { .. })));
        let world = parse("id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"nope\"]\n");
        assert!(matches!(world, Err(PluginError::Manifest { .. })));
        let no_world = parse("id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = []\n");
        assert!(matches!(no_world, Err(PluginError::Manifest { .. })));
    }

    #[test]
    fn unknown_wit_version_names_both_versions() {
        // The error tells the operator what the plugin wants and what the host has.
        let manifest =
            parse("id = \"p\"\nversion = \"1\"\nwit = \"9.0.0\"\nworlds = [\"policy\"]\n")
                .expect("parses");
        let error = manifest
            .wit_version()
            .expect_err("9.0.0 is unknown")
            .to_string();
        assert!(
            error.contains("9.0.0") && error.contains("0.1.0"),
            "{error}"
        );
    }

    #[test]
    fn config_schema_is_inline_or_a_file_beside_the_manifest() {
        // Inline TOML becomes the JSON Schema; a file is only for plugins with a folder; unchecked keywords and
        // paths out of the folder are refused.
        let base = "id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\n";
        let inline = parse(&format!(
            "{base}[config_schema]\ntype = \"object\"\n[config_schema.properties.n]\ntype = \"integer\"\n"
        ))
        .expect("parses");
        assert_eq!(
            inline.config_schema_json(None).expect("valid schema"),
            Some(serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}}))
        );
        let file = parse(&format!("config_schema = \"schema.json\"\n{base}")).expect("parses");
        assert!(matches!(
            file.config_schema_json(None),
            Err(PluginError::Manifest { .. })
        ));
        let lax = parse(&format!(
            "{base}[config_schema]\ntype = \"object\"\ndependentRequired = {{}}\n"
        ))
        .expect("parses");
        let error = lax.config_schema_json(None).expect_err("unchecked keyword");
        assert!(error.to_string().contains("dependentRequired"), "{error}");
        let escape = parse(&format!("config_schema = \"../schema.json\"\n{base}"));
        assert!(matches!(escape, Err(PluginError::Manifest { .. })));
        assert_eq!(
            parse(base).expect("parses").config_schema_json(None).ok(),
            Some(None)
        );
    }

    #[test]
    fn bad_ids_and_component_paths_are_refused() {
        // Ids become file names in the cache; components must sit next to the manifest.
        let id = parse("id = \"../x\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\n");
        assert!(matches!(id, Err(PluginError::Manifest { .. })));
        let component = parse(
            "id = \"p\"\nversion = \"1\"\nwit = \"0.1.0\"\nworlds = [\"policy\"]\ncomponent = \"../x.wasm\"\n",
        );
        assert!(matches!(component, Err(PluginError::Manifest { .. })));
    }
}
