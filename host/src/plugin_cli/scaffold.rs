//! `plugins new --world WORLD NAME`: a plugin crate on the guest SDK, written from templates embedded in the
//! binary (`templates/`), ready to build with one cargo command.
//!
//! The crate is its own plugin folder: `plugin.toml` sits at its root, and the built component is copied next
//! to it as `plugin.wasm` (the manifest's `component` must be a file beside it). The SDK dependency is a path
//! when one is given or found (a codex-control-plane checkout above the new folder), else a git URL given with
//! `--sdk-git`; nothing is guessed.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{pretty, Outcome};
use crate::plugins::manifest::is_plugin_id;

/// The SDK's package name, as a dependency key and as the `name` its `Cargo.toml` declares.
const SDK_PACKAGE: &str = "codex-control-plane-plugin-sdk";

/// Files every plugin crate gets, whatever its world: (path in the crate, template).
const COMMON_FILES: [(&str, &str); 2] = [
    ("Cargo.toml", include_str!("templates/Cargo.toml.tmpl")),
    ("README.md", include_str!("templates/README.md.tmpl")),
];

/// The world-specific files of a policy plugin.
const POLICY_FILES: [(&str, &str); 2] = [
    ("src/lib.rs", include_str!("templates/policy/lib.rs.tmpl")),
    (
        "plugin.toml",
        include_str!("templates/policy/plugin.toml.tmpl"),
    ),
];

/// The world-specific files of an analyzer plugin.
const ANALYZER_FILES: [(&str, &str); 2] = [
    ("src/lib.rs", include_str!("templates/analyzer/lib.rs.tmpl")),
    (
        "plugin.toml",
        include_str!("templates/analyzer/plugin.toml.tmpl"),
    ),
];

/// Rust keywords and the standard crates, which cargo refuses or shadows as package names.
const RESERVED_NAMES: [&str; 12] = [
    "core",
    "std",
    "alloc",
    "test",
    "proc_macro",
    "self",
    "super",
    "crate",
    "fn",
    "mod",
    "type",
    "use",
];

/// The worlds `plugins new` can scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaffoldWorld {
    /// A site policy (`check-action`, `on-interaction`).
    Policy,
    /// An analyzer (`analyze`: findings about the snapshot `codex_analyze_issue` builds).
    Analyzer,
}

impl ScaffoldWorld {
    /// The world's name in WIT and in `plugin.toml`.
    fn wit_name(self) -> &'static str {
        match self {
            ScaffoldWorld::Policy => "policy",
            ScaffoldWorld::Analyzer => "analyzer",
        }
    }

    /// Its world-specific templates.
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ScaffoldWorld::Policy => &POLICY_FILES,
            ScaffoldWorld::Analyzer => &ANALYZER_FILES,
        }
    }
}

/// Where the SDK comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A local checkout's `plugins/sdk` folder.
    Path(PathBuf),
    /// A git repository holding the SDK.
    Git(String),
}

/// What `plugins new` is asked to create.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's id, which is also the crate's name.
    pub name: String,
    /// The world it implements.
    pub world: ScaffoldWorld,
    /// The folder to create (default: `./NAME`).
    pub dir: Option<PathBuf>,
    /// Where the SDK comes from (default: the checkout the folder is in, if any).
    pub sdk: Option<SdkSource>,
}

/// Why `plugins new` wrote nothing; each kind has a stable code for `--json`.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a plugin id and a crate name.
    #[error("invalid plugin name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target folder exists.
    #[error("{}: already exists; plugins new never overwrites a folder", path.display())]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// No SDK path was given or found and no git URL was given.
    #[error(
        "no codex-control-plane checkout above {} to take the SDK from: pass --sdk-path PATH (a checkout's \
         plugins/sdk) or --sdk-git URL (the repository's git URL)", dir.display()
    )]
    NoSdk {
        /// The folder that would have been created.
        dir: PathBuf,
    },
    /// `--sdk-path` names no SDK.
    #[error("{}: not the plugin SDK (no Cargo.toml naming {SDK_PACKAGE})", path.display())]
    NotAnSdk {
        /// The path given.
        path: PathBuf,
    },
    /// Writing the crate failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ScaffoldError {
    /// A stable code for machines.
    pub fn code(&self) -> &'static str {
        match self {
            ScaffoldError::InvalidName { .. } => "invalid_name",
            ScaffoldError::Exists { .. } => "exists",
            ScaffoldError::NoSdk { .. } => "no_sdk",
            ScaffoldError::NotAnSdk { .. } => "not_an_sdk",
            ScaffoldError::Io { .. } => "io",
        }
    }

    /// The error as the JSON `--json` prints: `{ok: false, error: {code, message}}`.
    pub fn to_json(&self) -> String {
        pretty(&json!({"ok": false, "error": {"code": self.code(), "message": self.to_string()}}))
    }
}

/// `plugins new`: writes the crate and reports what it wrote and the command that builds it.
pub fn new_plugin(request: &NewPlugin, as_json: bool) -> Result<Outcome, ScaffoldError> {
    validate_name(&request.name)?;
    let dir = request
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&request.name));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    let absolute = std::path::absolute(&dir).map_err(io(&dir))?;
    if absolute.exists() {
        return Err(ScaffoldError::Exists { path: dir });
    }
    let sdk = match &request.sdk {
        Some(SdkSource::Path(path)) => SdkSource::Path(sdk_folder(path)?),
        Some(git @ SdkSource::Git(_)) => git.clone(),
        None => SdkSource::Path(
            find_checkout_sdk(&absolute).ok_or(ScaffoldError::NoSdk { dir: dir.clone() })?,
        ),
    };
    let crate_name = request.name.replace('-', "_");
    let values = [
        ("{{name}}", request.name.clone()),
        ("{{crate_name}}", crate_name.clone()),
        ("{{type_name}}", type_name(&request.name)),
        ("{{world}}", request.world.wit_name().to_string()),
        ("{{sdk_dependency}}", sdk_dependency(&sdk)),
    ];
    let files: Vec<(&str, &str)> = COMMON_FILES
        .iter()
        .chain(request.world.files())
        .copied()
        .collect();
    let write_all = || -> Result<(), ScaffoldError> {
        for (relative, template) in &files {
            let path = absolute.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let text = values
                .iter()
                .fold(template.to_string(), |text, (key, value)| {
                    text.replace(key, value)
                });
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        Ok(())
    };
    if let Err(error) = write_all() {
        // The folder did not exist before: leave nothing half-written behind.
        let _ = std::fs::remove_dir_all(&absolute);
        return Err(error);
    }
    let written: Vec<&str> = files.iter().map(|(relative, _)| *relative).collect();
    let build = "cargo build --release --target wasm32-wasip2";
    let component = format!("target/wasm32-wasip2/release/{crate_name}.wasm");
    let output = if as_json {
        pretty(&json!({
            "ok": true,
            "path": absolute.display().to_string(),
            "id": request.name,
            "world": request.world.wit_name(),
            "files": written,
            "sdk": match &sdk {
                SdkSource::Path(path) => json!({"path": path.display().to_string()}),
                SdkSource::Git(url) => json!({"git": url}),
            },
            "build": build,
            "component": component,
        }))
    } else {
        format!(
            "created {world} plugin {name} in {path}\nnext, in that folder:\n  {build}\n  cp {component} plugin.wasm\n  \
             codex-control-plane-mcp plugins check .\n",
            world = request.world.wit_name(),
            name = request.name,
            path = absolute.display(),
        )
    };
    Ok(Outcome { output, ok: true })
}

/// A plugin id (1-64 of `a-z 0-9 - _`, as the manifest requires) that is also a crate name: it starts with a
/// letter and is not reserved.
fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let refuse = |reason: &str| ScaffoldError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    // The manifest's own rule for ids: the scaffolded plugin.toml must load.
    if !is_plugin_id(name) {
        return Err(refuse("must be 1-64 characters of a-z, 0-9, '-' or '_'"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(refuse("must start with a letter (a crate name)"));
    }
    if RESERVED_NAMES.contains(&name.replace('-', "_").as_str()) {
        return Err(refuse("is reserved by Rust"));
    }
    Ok(())
}

/// `my-site_policy` as a Rust type name: `MySitePolicy`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The SDK folder `path` names (absolute), if its `Cargo.toml` is the SDK's.
fn sdk_folder(path: &Path) -> Result<PathBuf, ScaffoldError> {
    let not_sdk = || ScaffoldError::NotAnSdk {
        path: path.to_path_buf(),
    };
    let absolute = std::path::absolute(path).map_err(|_| not_sdk())?;
    if is_sdk(&absolute) {
        Ok(absolute)
    } else {
        Err(not_sdk())
    }
}

/// The `plugins/sdk` of the closest checkout above `dir`, found lexically (the new folder does not exist yet).
fn find_checkout_sdk(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .skip(1)
        .map(|ancestor| ancestor.join("plugins/sdk"))
        .find(|candidate| is_sdk(candidate))
}

/// Whether `folder` holds the SDK's `Cargo.toml`.
fn is_sdk(folder: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(folder.join("Cargo.toml")) else {
        return false;
    };
    text.parse::<toml::Table>().is_ok_and(|table| {
        table
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(toml::Value::as_str)
            == Some(SDK_PACKAGE)
    })
}

/// The dependency's TOML value, e.g. `{ path = "/src/ccp/plugins/sdk" }`.
fn sdk_dependency(sdk: &SdkSource) -> String {
    let (key, value) = match sdk {
        SdkSource::Path(path) => ("path", path.display().to_string()),
        SdkSource::Git(url) => ("git", url.clone()),
    };
    format!("{{ {key} = {} }}", toml::Value::String(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plugin_ids_and_crate_names() {
        for good in ["my-policy", "p", "site_policy2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        // Upper case, a leading digit or dash, a path, a reserved word, too long.
        let long = "a".repeat(65);
        for bad in ["My", "2fast", "-x", "a/b", "", "std", "self", long.as_str()] {
            let error = validate_name(bad).expect_err(bad);
            assert_eq!(error.code(), "invalid_name", "{bad}");
        }
    }

    #[test]
    fn type_names_and_dependencies() {
        assert_eq!(type_name("my-site_policy"), "MySitePolicy");
        assert_eq!(type_name("p"), "P");
        // Quoted as TOML strings, so a path with a quote or a backslash stays one value.
        let odd = "/a \"b\" \\c/sdk";
        let line = format!(
            "sdk = {}",
            sdk_dependency(&SdkSource::Path(PathBuf::from(odd)))
        );
        let parsed: toml::Table = line.parse().expect("valid TOML");
        assert_eq!(parsed["sdk"]["path"].as_str(), Some(odd));
        assert_eq!(
            sdk_dependency(&SdkSource::Git("https://example.test/ccp".into())),
            r#"{ git = "https://example.test/ccp" }"#
        );
    }

    #[test]
    fn every_template_placeholder_is_filled() {
        // A placeholder with no value would reach the user's files verbatim.
        let known = [
            "{{name}}",
            "{{crate_name}}",
            "{{type_name}}",
            "{{world}}",
            "{{sdk_dependency}}",
        ];
        let all = COMMON_FILES
            .iter()
            .chain(&POLICY_FILES)
            .chain(&ANALYZER_FILES);
        for (file, template) in all {
            let mut rest = *template;
            while let Some(start) = rest.find("{{") {
                let end = rest[start..]
                    .find("}}")
                    .map_or(rest.len(), |e| start + e + 2);
                assert!(
                    known.contains(&&rest[start..end]),
                    "{file}: {}",
                    &rest[start..end]
                );
                rest = &rest[end..];
            }
        }
    }
}
