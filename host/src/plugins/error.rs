//! Errors of the plugin runtime. Every error names the plugin (and its version once the manifest
//! was read) so that a log line or a health entry says which plugin misbehaved.

use std::path::PathBuf;

/// Why a plugin could not be loaded or a plugin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// A call failed inside the plugin or hit one of its limits. The host is unaffected.
    #[error("plugin {plugin}@{version} {kind}")]
    Call {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// What went wrong.
        kind: CallErrorKind,
    },
    /// The manifest could not be read or is invalid.
    #[error("invalid plugin manifest {path}: {message}")]
    Manifest {
        /// Path of the `plugin.toml` (or the embedded plugin's crate name).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The plugin targets a WIT package version this host does not serve.
    #[error("plugin {plugin}@{version} targets WIT {wanted}, but this host serves {known}")]
    UnsupportedWitVersion {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// The `wit` version of its manifest.
        wanted: String,
        /// The versions this host serves.
        known: String,
    },
    /// The component's imports cannot be satisfied, typically because it was built against
    /// another WIT package version than its manifest declares.
    #[error("plugin {plugin}@{version} cannot be linked (built against another WIT version?): {message}")]
    Link {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// The linker's explanation.
        message: String,
    },
    /// The component does not export what a world its manifest declares requires.
    #[error("plugin {plugin}@{version} does not implement world `{world}`: {message}")]
    WorldMismatch {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// The declared world.
        world: String,
        /// The missing or mistyped export.
        message: String,
    },
    /// The bytes are not a valid component for this engine.
    #[error("plugin {plugin}@{version} failed to compile: {message}")]
    Compile {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// The compiler's explanation.
        message: String,
    },
    /// A default plugin could not be linked on its first call (see `plugins::deferred`).
    #[error("plugin {plugin}@{version} could not be linked: {message}")]
    Deferred {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// Why the link failed.
        message: String,
    },
    /// Reading a plugin file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The wasmtime engine could not be created.
    #[error("plugin engine: {message}")]
    Engine {
        /// The engine's explanation.
        message: String,
    },
    /// No loaded plugin has this id.
    #[error("no loaded plugin named {plugin}")]
    NotFound {
        /// The requested id.
        plugin: String,
    },
    /// The plugin exists but does not implement the world a call needs.
    #[error("plugin {plugin} does not implement world `{world}`")]
    WrongWorld {
        /// Plugin id.
        plugin: String,
        /// The world the call needs.
        world: String,
    },
    /// The manifest declares host capabilities the operator did not grant this third-party plugin.
    #[error("plugin {plugin}@{version} declares capabilities the operator did not grant: {}; grant them with plugins.grants.{plugin} = [{}] or remove them from its plugin.toml", missing.join(", "), wanted.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "))]
    CapabilityNotGranted {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// Declared capabilities missing from the grant.
        missing: Vec<String>,
        /// Everything it declares (what the grant would have to list).
        wanted: Vec<String>,
    },
    /// The plugin's settings (its `[config]` with the operator's `plugins.settings`) do not fit the
    /// `config_schema` its manifest declares.
    #[error("plugin {plugin}@{version} setting {key} is invalid: {message} (check plugins.settings.{plugin}.{key} against the plugin's config_schema)")]
    InvalidSetting {
        /// Plugin id.
        plugin: String,
        /// Plugin version.
        version: String,
        /// Dotted path of the offending key; `(settings)` for the table as a whole.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A plugin listed in `plugins.required` is not loaded; start-up stops.
    #[error("required plugin {plugin} is not loaded (plugins.required): {reason}")]
    RequiredNotLoaded {
        /// Plugin id.
        plugin: String,
        /// Why: its load error, its disabled reason, or that no plugin has this id.
        reason: String,
    },
    /// A native plugin was found but native plugins are disabled or unsupported.
    #[error("plugin {plugin}: {message}")]
    Native {
        /// Plugin id.
        plugin: String,
        /// Why it was refused.
        message: String,
    },
}

/// What went wrong during one plugin call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The call used up its fuel (instruction budget).
    #[error("ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The budget it had.
        fuel: u64,
    },
    /// The call ran past its wall-clock deadline (epoch interruption).
    #[error("exceeded its {timeout_ms} ms deadline")]
    Timeout {
        /// The deadline it had.
        timeout_ms: u64,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap it had.
        limit_bytes: u64,
    },
    /// The plugin trapped (a panic, an `unreachable`, a bad memory access...).
    #[error("trapped: {message}")]
    Trap {
        /// The trap and its backtrace, as wasmtime printed them.
        message: String,
    },
    /// The plugin returned more data than the host accepts.
    #[error("returned {size_bytes} bytes, more than the {limit_bytes} bytes allowed")]
    OutputTooLarge {
        /// Size of what it returned.
        size_bytes: u64,
        /// The cap.
        limit_bytes: u64,
    },
    /// The plugin returned something malformed (e.g. a state that is not JSON).
    #[error("returned invalid output: {message}")]
    InvalidOutput {
        /// What is wrong with it.
        message: String,
    },
    /// Instantiation failed for a reason other than a limit.
    #[error("could not be instantiated: {message}")]
    Instantiate {
        /// Wasmtime's explanation.
        message: String,
    },
    /// The plugin called a host function of a capability it does not hold; the host function was
    /// not run.
    #[error("called a host function of capability `{capability}`, which it does not hold")]
    CapabilityDenied {
        /// The capability the call needed (`state`, `views`, ...).
        capability: String,
    },
    /// A host function could not serve the plugin (e.g. its state store was unavailable).
    #[error("host function failed: {message}")]
    HostFailure {
        /// What failed.
        message: String,
    },
    /// A reused instance is unusable because an earlier call on it failed.
    #[error("instance is unusable after an earlier failure")]
    Poisoned,
}

impl PluginError {
    /// The call failure, if this is one.
    pub fn call_kind(&self) -> Option<&CallErrorKind> {
        match self {
            PluginError::Call { kind, .. } => Some(kind),
            _ => None,
        }
    }
}
