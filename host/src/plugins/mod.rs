//! The plugin runtime: WebAssembly components (wasmtime, component model) that decide while the
//! host does the I/O.
//!
//! # Layout
//!
//! - [`PluginHost`] (this file): loads the embedded default plugins and third-party plugins,
//!   reports their status ([`PluginInfo`]), and exposes typed calls per world (the policy chain,
//!   workflows, analyzers, repairs).
//! - `builder`: [`PluginHostBuilder`], the options of a load (state, views, overrides, one folder).
//! - `loaded`: a loaded plugin and its typed calls per world; `loader`: loading the embedded defaults and
//!   third-party folders into them.
//! - [`manifest`] - `plugin.toml`.
//! - [`engine`] - the one `Engine`, its epoch ticker, the compiled-artifact cache.
//! - `runtime`: store data, linker, `InstancePre` per plugin, calls under limits, error mapping.
//! - [`limits`] - fuel, deadline, memory and output caps.
//! - [`capability`] - the host functions of the WIT `host` interface, one module per capability.
//! - [`wit`] - `bindgen!` output, one module per WIT version folder.
//! - [`embedded`] - the default plugins built by `host/build.rs`.
//! - [`native`] - trusted native plugins (C ABI, JSON), only with `plugins.allow_native`.
//!
//! **Architecture Invariant:** `plugins` knows nothing about MCP, SQLite or app-server. It turns
//! requests into decisions; callers perform them.
//!
//! # Threading
//!
//! Calls are synchronous wasmtime calls that take microseconds, bounded by the plugin's fuel and
//! wall-clock deadline (100 ms for the default policy, at most `plugins.default_timeout_ms`).
//! `PluginHost` is `Send + Sync` and every call builds its own `Store`, so it can be shared in an
//! `Arc` and called from many threads at once. Async callers should use
//! `tokio::task::spawn_blocking` for calls whose budget is large; for the default policy's
//! budget, calling inline is acceptable.

mod builder;
pub mod capability;
mod deferred;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod limits;
mod loaded;
mod loader;
pub mod manifest;
pub mod native;
mod runtime;
pub mod wit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::config::{self as host_config, Config, PluginsConfig};

pub use capability::state::{InMemoryStateStore, PluginStateStore};
pub use capability::views::{HostViews, NoViews};
pub use engine::CacheOutcome;
pub use error::{CallErrorKind, PluginError};
pub use limits::CallLimits;
pub use manifest::{Manifest, PluginKind, World};
pub use runtime::{PluginCtx, WarmInstance, WasmPlugin};

pub use builder::{PluginHostBuilder, PluginRuntime};
pub use capability::{Capability, CapabilityDenied};
use capability::{CapabilityCtx, PluginIdentity};
use embedded::{EmbeddedPlugin, DEFAULT_PLUGINS};
use engine::ArtifactCache;
use loaded::{Backend, LoadedPlugin};
use loader::Loader;

/// The WIT types of the latest contract version, re-exported for callers.
pub mod types {
    pub use super::wit::latest::codex_control_plane::plugin::types::{
        ApprovalPolicy, CollaborationMode, Finding, ReviewCommit, ReviewTarget, SandboxMode,
        Severity, ThreadRef, TurnSettings,
    };
    pub use super::wit::latest::exports::codex_control_plane::plugin::policy_plugin::{
        ActionKind, ActionRequest, Answer, AutoAnswer, Decision, Denial, InputSummary, Interaction,
        Narrowing, PolicyContext,
    };
    pub use super::wit::latest::exports::codex_control_plane::plugin::repair_plugin::{
        ProcedureStep, RepairAction, RepairContext, RepairStep,
    };
    pub use super::wit::latest::exports::codex_control_plane::plugin::workflow_plugin::{
        Action, ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, CompleteAction,
        Event, FailAction, InteractionAnswer, InteractionInfo, OperationStatus, PlanItem,
        SetGoalAction, StartReviewAction, StartThreadAction, StartTurnAction, SteerTurnAction,
        Step, ThreadAction, TurnCompleted, WaitForApprovalAction, WorkflowInfo,
    };
}

use types::{
    ActionRequest, Answer, Decision, Denial, Event, Finding, Interaction, Narrowing, PolicyContext,
    RepairContext, RepairStep, Step, TurnSettings, WorkflowInfo,
};

/// Load status of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Loaded and callable.
    Loaded,
    /// Could not be loaded; see `error`.
    Failed,
    /// Not loaded on purpose (`plugins.disabled`, or native plugins not allowed).
    Disabled,
}

/// What the health summary shows about one plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginInfo {
    /// Plugin id (from the manifest; the directory name when the manifest is unreadable).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Plugin version ("" when the manifest is unreadable).
    pub version: String,
    /// `"wasm"` or `"native"`.
    pub kind: &'static str,
    /// `"embedded"` for default plugins, otherwise the plugin directory.
    pub source: String,
    /// Worlds the manifest declares.
    pub worlds: Vec<World>,
    /// WIT package version the manifest declares.
    pub wit_version: String,
    /// Host capabilities the manifest declares (what its calls may use once loaded).
    pub capabilities: Vec<Capability>,
    /// Host capabilities it is granted: what it declares for a default plugin, `plugins.grants` (or the
    /// basic ones) for a third-party plugin.
    pub granted: Vec<Capability>,
    /// Loaded, failed or disabled.
    pub status: PluginStatus,
    /// Why it failed or is disabled.
    pub error: Option<String>,
    /// Whether the compiled artifact came from the cache (`"hit"`), was compiled (`"miss"`), or
    /// could not be cached (`"uncached"`); `None` when not loaded.
    pub cache: Option<&'static str>,
    /// Time spent loading it, in microseconds (a default plugin's link on first use not included).
    pub load_micros: u64,
    /// Whether its component is linked: default plugins link on their first call, everything else
    /// at load.
    pub linked: bool,
    /// The budgets of its calls, when loaded.
    #[serde(skip)]
    pub limits: Option<CallLimits>,
}

/// An automatic answer to an interaction, with the policy and the rule that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoAnswer {
    /// Id of the policy plugin that answered.
    pub plugin: String,
    /// The answer.
    pub answer: Answer,
    /// The policy's rule that answered (`""` when the policy names none, as WIT 0.1 policies).
    pub rule: String,
}

/// How the chain names a policy's rule: `plugin/rule`, or the plugin alone when it names no rule.
pub fn rule_source(plugin: &str, rule: &str) -> String {
    if rule.is_empty() {
        plugin.to_string()
    } else {
        format!("{plugin}/{rule}")
    }
}

/// What one analyzer reported.
#[derive(Debug)]
pub struct AnalyzerReport {
    /// Analyzer plugin id.
    pub plugin: String,
    /// Its findings, or why it failed.
    pub result: Result<Vec<Finding>, PluginError>,
    /// How long the call took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The loaded plugins and typed calls into them.
pub struct PluginHost {
    /// Loaded plugins, in chain order: default plugins, then each directory of `plugins.dirs` in
    /// order (plugins inside one directory sorted by directory name).
    loaded: Vec<LoadedPlugin>,
    /// Status of every plugin seen, loaded or not, in the same order.
    infos: Vec<PluginInfo>,
    /// Policy context built from the configuration.
    context: PolicyContext,
    /// Where compiled artifacts are cached.
    cache_dir: PathBuf,
    /// The engine; kept last so plugins (which hold engine references) drop first.
    engine: Engine,
}

impl PluginHost {
    /// Loads the default plugins and those of `config.plugins.dirs`, with in-memory state and no
    /// views.
    pub fn load(config: &Config) -> Result<PluginHost, PluginError> {
        PluginHost::builder(config).load()
    }

    /// A builder for other state stores or views.
    pub fn builder(config: &Config) -> PluginHostBuilder<'_> {
        PluginHostBuilder::new(config)
    }

    /// Status of every plugin, for the health summary.
    pub fn infos(&self) -> &[PluginInfo] {
        &self.infos
    }

    /// Fails with the first of `required` (plugin ids) that is not loaded, naming why: its load error, the
    /// reason it is disabled, or that no plugin has that id. Start-up stops on it.
    pub fn check_required(&self, required: &[String]) -> Result<(), PluginError> {
        for id in required {
            if self.loaded.iter().any(|plugin| plugin.manifest.id == *id) {
                continue;
            }
            let reason = match self.infos.iter().find(|info| info.id == *id) {
                Some(info) => info
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("status {:?}", info.status)),
                None => "no plugin with this id was found in the embedded plugins or plugins.dirs"
                    .to_string(),
            };
            return Err(PluginError::RequiredNotLoaded {
                plugin: id.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// Status of every plugin as of now, owned: [`PluginHost::infos`] with what the default plugins
    /// linked since load learned (linked, artifact cache outcome, or why their link failed).
    pub fn plugins(&self) -> Vec<PluginInfo> {
        let mut infos = self.infos.clone();
        for info in &mut infos {
            let deferred = self
                .loaded
                .iter()
                .find(|plugin| plugin.manifest.id == info.id)
                .and_then(|plugin| match &plugin.backend {
                    Backend::Deferred(deferred) => Some(deferred),
                    _ => None,
                });
            let Some(deferred) = deferred else { continue };
            if let Some(outcome) = deferred.cache_outcome() {
                info.linked = true;
                info.cache = Some(outcome.as_str());
            } else if let Some(error) = deferred.link_error() {
                info.status = PluginStatus::Failed;
                info.error = Some(error.to_string());
            }
        }
        infos
    }

    /// Links every default plugin not linked yet (they otherwise link on first call), so that
    /// [`PluginHost::plugins`] shows whether each one really links: `plugins list` and `plugins check` call
    /// it; the server does not, to keep start-up fast.
    pub fn link_all(&self) {
        for plugin in &self.loaded {
            if let Backend::Deferred(deferred) = &plugin.backend {
                // A failure is recorded in the plugin and shown by `plugins()`; nothing else to do here.
                let _ = deferred.get();
            }
        }
    }

    /// The engine (for benchmarks and diagnostics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Directory of the compiled-artifact cache.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The policy context (allowed roots, defaults) to put into requests.
    pub fn policy_context(&self) -> PolicyContext {
        self.context.clone()
    }

    /// Ids of the loaded plugins implementing `world`, in chain order.
    pub fn plugins_with(&self, world: World) -> Vec<String> {
        self.loaded
            .iter()
            .filter(|plugin| plugin.manifest.worlds.contains(&world))
            .map(|plugin| plugin.manifest.id.clone())
            .collect()
    }

    /// A loaded plugin by id.
    pub fn plugin(&self, id: &str) -> Result<&WasmPlugin, PluginError> {
        self.loaded
            .iter()
            .find(|plugin| plugin.manifest.id == id)
            .ok_or_else(|| PluginError::NotFound {
                plugin: id.to_string(),
            })
            .and_then(|plugin| match plugin.backend.wasm() {
                Some(wasm) => wasm,
                None => Err(PluginError::Native {
                    plugin: id.to_string(),
                    message: "a native plugin has no wasm instance".to_string(),
                }),
            })
    }

    /// Runs the policy chain on `request`. Each policy sees the request as narrowed by the ones
    /// before it; the first denial ends the chain: its rule becomes `plugin/rule` ([`rule_source`]) and
    /// its reason ends with `(policy <plugin>, rule <rule>)`. Returns `Allow` when nothing changed,
    /// `Narrow` with the complete effective settings when something did, its rule the comma-separated
    /// `plugin/rule` of every policy that narrowed. An error from any policy is returned as is: callers
    /// must treat it as a denial (fail closed).
    pub fn check_action(&self, request: &ActionRequest) -> Result<Decision, PluginError> {
        let mut current = request.clone();
        let mut narrowed_by = Vec::new();
        for plugin in self.loaded_with(World::Policy) {
            let id = &plugin.manifest.id;
            match plugin.check_action(&current)? {
                Decision::Allow => {}
                Decision::Deny(Denial { rule, reason }) => {
                    tracing::info!(plugin = %id, %rule, action = %request.action_id, %reason, "policy denied action");
                    let named = if rule.is_empty() {
                        format!("policy {id}")
                    } else {
                        format!("policy {id}, rule {rule}")
                    };
                    return Ok(Decision::Deny(Denial {
                        rule: rule_source(id, &rule),
                        reason: format!("{reason} ({named})"),
                    }));
                }
                Decision::Narrow(Narrowing { rule, settings }) => {
                    tracing::info!(plugin = %id, %rule, action = %request.action_id, "policy narrowed action");
                    narrowed_by.push(rule_source(id, &rule));
                    current.settings = merge_settings(&current.settings, &settings);
                }
            }
        }
        Ok(if narrowed_by.is_empty() {
            Decision::Allow
        } else {
            Decision::Narrow(Narrowing {
                rule: narrowed_by.join(", "),
                settings: current.settings,
            })
        })
    }

    /// Calls one policy's `check-action`, without the chain.
    pub fn check_action_with(
        &self,
        plugin: &str,
        request: &ActionRequest,
    ) -> Result<Decision, PluginError> {
        let plugin = self.find(plugin)?;
        plugin.check_action(request)
    }

    /// Offers an interaction to the policies in chain order; the first answer wins. A policy that
    /// fails is logged and skipped, which leaves the interaction to a person.
    pub fn on_interaction(&self, interaction: &Interaction) -> Option<AutoAnswer> {
        for plugin in self.loaded_with(World::Policy) {
            match plugin.on_interaction(interaction) {
                Ok(Some(auto)) => {
                    return Some(AutoAnswer {
                        plugin: plugin.manifest.id.clone(),
                        answer: auto.answer,
                        rule: auto.rule,
                    })
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "policy failed on an interaction; skipped");
                }
            }
        }
        None
    }

    /// A workflow plugin's description.
    pub fn workflow_describe(&self, plugin: &str) -> Result<WorkflowInfo, PluginError> {
        self.find(plugin)?.describe()
    }

    /// Starts a workflow: initial state and first actions. The input must be JSON.
    pub fn workflow_start(&self, plugin: &str, input: &str) -> Result<Step, PluginError> {
        let loaded = self.find(plugin)?;
        // The generated signatures take `&String` (WIT `json` is a string alias).
        let step = loaded.start(&input.to_string())?;
        check_step(loaded, step)
    }

    /// Feeds an event to a workflow: new state and actions.
    pub fn workflow_on_event(
        &self,
        plugin: &str,
        state: &str,
        event: &Event,
    ) -> Result<Step, PluginError> {
        let loaded = self.find(plugin)?;
        let step = loaded.on_event(&state.to_string(), event)?;
        check_step(loaded, step)
    }

    /// Runs one analyzer on a snapshot (JSON).
    pub fn analyze(&self, plugin: &str, snapshot: &str) -> Result<Vec<Finding>, PluginError> {
        self.find(plugin)?.analyze(&snapshot.to_string())
    }

    /// Runs every analyzer on a snapshot; one failing analyzer does not hide the others.
    pub fn analyze_all(&self, snapshot: &str) -> Vec<AnalyzerReport> {
        let snapshot = snapshot.to_string();
        self.loaded_with(World::Analyzer)
            .map(|plugin| {
                let started = Instant::now();
                let result = plugin.analyze(&snapshot);
                AnalyzerReport {
                    plugin: plugin.manifest.id.clone(),
                    result,
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }

    /// Asks a repair plugin for the steps repairing `finding`. The host executes them only when
    /// asked to, and in dry-run mode by default (`context.dry_run`).
    pub fn plan_repair(
        &self,
        plugin: &str,
        finding: &Finding,
        context: &RepairContext,
    ) -> Result<Vec<RepairStep>, PluginError> {
        self.find(plugin)?.plan(finding, context)
    }

    /// Loaded plugins implementing `world`, in chain order.
    fn loaded_with(&self, world: World) -> impl Iterator<Item = &LoadedPlugin> {
        self.loaded
            .iter()
            .filter(move |plugin| plugin.manifest.worlds.contains(&world))
    }

    /// A loaded plugin by id.
    fn find(&self, id: &str) -> Result<&LoadedPlugin, PluginError> {
        self.loaded
            .iter()
            .find(|plugin| plugin.manifest.id == id)
            .ok_or_else(|| PluginError::NotFound {
                plugin: id.to_string(),
            })
    }
}

/// The policy context derived from the configuration.
fn policy_context(config: &Config) -> PolicyContext {
    use types::{ApprovalPolicy, SandboxMode};
    PolicyContext {
        allowed_roots: config
            .allowed_roots
            .iter()
            .map(|root| host_config::normalize_path(root).display().to_string())
            .collect(),
        default_sandbox: match config.default_sandbox {
            host_config::SandboxMode::ReadOnly => SandboxMode::ReadOnly,
            host_config::SandboxMode::WorkspaceWrite => SandboxMode::WorkspaceWrite,
            host_config::SandboxMode::DangerFullAccess => SandboxMode::DangerFullAccess,
        },
        default_approval_policy: match config.default_approval_policy {
            host_config::ApprovalPolicy::Never => ApprovalPolicy::Never,
            host_config::ApprovalPolicy::OnRequest => ApprovalPolicy::OnRequest,
            host_config::ApprovalPolicy::OnFailure => ApprovalPolicy::OnFailure,
            host_config::ApprovalPolicy::Untrusted => ApprovalPolicy::Untrusted,
        },
    }
}

/// `base` with every `Some` field of `narrowed` applied.
fn merge_settings(base: &TurnSettings, narrowed: &TurnSettings) -> TurnSettings {
    TurnSettings {
        cwd: narrowed.cwd.clone().or_else(|| base.cwd.clone()),
        sandbox: narrowed.sandbox.or(base.sandbox),
        approval_policy: narrowed.approval_policy.or(base.approval_policy),
        model: narrowed.model.clone().or_else(|| base.model.clone()),
        effort: narrowed.effort.clone().or_else(|| base.effort.clone()),
        collaboration_mode: narrowed.collaboration_mode.or(base.collaboration_mode),
    }
}

/// Refuses a step whose state is not JSON (the host persists it as JSON).
fn check_step(plugin: &LoadedPlugin, step: Step) -> Result<Step, PluginError> {
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&step.state) {
        return Err(PluginError::Call {
            plugin: plugin.manifest.id.clone(),
            version: plugin.manifest.version.clone(),
            kind: CallErrorKind::InvalidOutput {
                message: format!("workflow state is not JSON: {error}"),
            },
        });
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_host_is_shareable_across_threads() {
        // Callers keep one host in an `Arc` and call it from blocking threads.
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PluginHost>();
    }

    #[test]
    fn narrowing_keeps_unnarrowed_fields() {
        // Only `Some` fields of the narrowing replace the request's settings.
        let base = TurnSettings {
            cwd: Some("/w".to_string()),
            sandbox: Some(types::SandboxMode::WorkspaceWrite),
            approval_policy: Some(types::ApprovalPolicy::Never),
            model: Some("m".to_string()),
            effort: None,
            collaboration_mode: None,
        };
        let narrowed = TurnSettings {
            cwd: None,
            sandbox: Some(types::SandboxMode::ReadOnly),
            approval_policy: None,
            model: None,
            effort: Some("low".to_string()),
            collaboration_mode: None,
        };
        let merged = merge_settings(&base, &narrowed);
        assert_eq!(merged.cwd.as_deref(), Some("/w"));
        assert_eq!(merged.sandbox, Some(types::SandboxMode::ReadOnly));
        assert_eq!(merged.approval_policy, Some(types::ApprovalPolicy::Never));
        assert_eq!(merged.effort.as_deref(), Some("low"));
    }
}
