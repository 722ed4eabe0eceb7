//! `plugins list | check PATH | new`: what an operator asks about plugins without starting the server, and a
//! new plugin crate for a plugin author ([`scaffold`]).
//!
//! Both load plugins with the server's own loader ([`PluginHost`]) and the server's configuration (its
//! `plugins.*` keys and artifact cache; no database is opened), so what they report is what start-up would
//! see. Both link every default plugin ([`PluginHost::link_all`]), which the server defers to first use:
//! a status shown as `loaded` means the component linked, not only that its manifest was read.

pub mod scaffold;
mod table;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::Config;
use crate::plugins::{PluginHost, PluginInfo, PluginStatus};

/// What a command prints and whether it succeeded.
#[derive(Debug)]
pub struct Outcome {
    /// The text for stdout (JSON with `--json`, a table or a report otherwise).
    pub output: String,
    /// Whether the command's question has a good answer (every required plugin loaded; the plugin would load).
    pub ok: bool,
}

/// Why a command could not run at all (the answer to its question is then unknown).
#[derive(Debug, thiserror::Error)]
pub enum PluginCliError {
    /// The plugin runtime could not start.
    #[error("the plugin runtime could not start: {0}")]
    Runtime(String),
    /// `check PATH` names nothing loadable.
    #[error("{path}: {message}")]
    Path {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// `plugins list`: every plugin the configured server would load, with its status. Not ok when a plugin of
/// `plugins.required` is not loaded (the server would refuse to start).
pub fn list(config: &Config, as_json: bool) -> Result<Outcome, PluginCliError> {
    let host = PluginHost::load(config).map_err(|e| PluginCliError::Runtime(e.to_string()))?;
    host.link_all();
    let infos = host.plugins();
    let required = host.check_required(&config.plugins.required);
    let output = if as_json {
        pretty(&json!({
            "plugins": infos.iter().map(|info| entry(config, info)).collect::<Vec<_>>(),
            "required": config.plugins.required,
            "requiredError": required.as_ref().err().map(ToString::to_string),
        }))
    } else {
        let mut text = table::list(&infos);
        if let Err(error) = &required {
            text.push_str(&format!("\n{error}\n"));
        }
        text
    };
    Ok(Outcome {
        output,
        ok: required.is_ok(),
    })
}

/// `plugins check PATH`: loads the plugin at `path` (a folder with `plugin.toml`, that manifest, or a
/// component beside it) as the server would, next to the default plugins, and reports whether it loads.
pub fn check(config: &Config, path: &Path, as_json: bool) -> Result<Outcome, PluginCliError> {
    let (folder, component) = locate(path)?;
    let host = PluginHost::builder(config)
        .only_folder(folder.clone(), component)
        .load()
        .map_err(|e| PluginCliError::Runtime(e.to_string()))?;
    host.link_all();
    let source = folder.display().to_string();
    let Some(info) = host
        .plugins()
        .into_iter()
        .find(|info| info.source == source)
    else {
        return Err(PluginCliError::Path {
            path: path.to_path_buf(),
            message: "the loader found no plugin there".to_string(),
        });
    };
    let ok = info.status == PluginStatus::Loaded;
    let hint = grant_hint(&info);
    let output = if as_json {
        pretty(&json!({
            "ok": ok,
            "path": path.display().to_string(),
            "plugin": entry(config, &info),
            "grantHint": hint,
        }))
    } else {
        table::check(&info, ok, hint.as_deref())
    };
    Ok(Outcome { output, ok })
}

/// The plugin folder of `path`, and the component file name when `path` names a component rather than the
/// folder or its manifest.
fn locate(path: &Path) -> Result<(PathBuf, Option<String>), PluginCliError> {
    let refuse = |message: &str| PluginCliError::Path {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    // Absolute, so that the source the loader records is the one looked up afterwards.
    let path = std::path::absolute(path).map_err(|e| refuse(&e.to_string()))?;
    if path.is_dir() {
        if !path.join("plugin.toml").is_file() {
            return Err(refuse("no plugin.toml in this folder"));
        }
        return Ok((path, None));
    }
    if !path.is_file() {
        return Err(refuse("no such file or folder"));
    }
    let folder = path
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| refuse("a file without a folder"))?;
    if !folder.join("plugin.toml").is_file() {
        return Err(refuse("no plugin.toml beside this file"));
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let component = (name != "plugin.toml").then_some(name);
    Ok((folder, component))
}

/// The `plugins.grants` entry that grants a third-party plugin what it declares, when its grant falls short (a
/// grant replaces the basic set, so it lists every declared capability).
fn grant_hint(info: &PluginInfo) -> Option<String> {
    if info.source == "embedded" || info.capabilities.iter().all(|c| info.granted.contains(c)) {
        return None;
    }
    let names: Vec<String> = info
        .capabilities
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    Some(format!(
        "[plugins.grants]\n{} = [{}]",
        toml_key(&info.id),
        names.join(", ")
    ))
}

/// `id` as a TOML key (ids are `a-z0-9-_`, which TOML takes bare).
fn toml_key(id: &str) -> String {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        id.to_string()
    } else {
        format!("{id:?}")
    }
}

/// One plugin as the JSON of `list` and `check` show it.
fn entry(config: &Config, info: &PluginInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "version": info.version,
        "kind": info.kind,
        "worlds": info.worlds,
        "wit": info.wit_version,
        "source": info.source,
        "status": info.status,
        "error": info.error,
        "capabilities": info.capabilities,
        "granted": info.granted,
        "required": config.plugins.required.contains(&info.id),
        "linked": info.linked,
        "cache": info.cache,
        "limits": info.limits.map(|limits| json!({
            "fuel": limits.fuel,
            "timeoutMs": limits.timeout_ms,
            "memoryBytes": limits.memory_bytes,
        })),
    })
}

/// `value` as indented JSON with a final newline.
fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}
