//! Linking, instantiation and calls: the store data (`PluginCtx`), the shared `Linker`, one
//! `InstancePre` per plugin, and the conversion of traps and limit hits into [`PluginError`].
//!
//! Every call gets a fresh `Store` and instance from the plugin's `InstancePre` (tens of
//! microseconds), so no state leaks between calls and a trap never poisons a later call.
//! [`WarmInstance`] keeps one instance for callers that want the cheapest repeated calls.

use std::fmt::Debug;

use wasmtime::component::{HasSelf, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capability::state::StateError;
use super::capability::{CapabilityCtx, CapabilityDenied};
use super::engine::{epoch_ticks, ticking};
use super::error::{CallErrorKind, PluginError};
use super::limits::{self, CallLimits, MemoryLimiter, MAX_OUTPUT_BYTES};
use super::manifest::World;
use super::wit::latest::exports::codex_control_plane::plugin::policy_plugin;
use super::wit::{latest, since_v0_1_0, WitVersion};

/// Data of one plugin store.
pub struct PluginCtx {
    /// What the `host` interface serves.
    pub(crate) capabilities: CapabilityCtx,
    /// An empty WASI context: no preopened directories, environment, arguments or network.
    /// Rust `wasm32-wasip2` components import WASI even when they never use it.
    wasi: WasiCtx,
    /// Resources handed to the guest (WASI streams, if it opens any).
    table: ResourceTable,
    /// Memory and table caps.
    limiter: MemoryLimiter,
}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Builds the linker every plugin is instantiated with: WASI (with empty contexts) and the `host`
/// interface of every known WIT version (one implementation, linked under each version's name).
pub fn new_linker(engine: &Engine) -> Result<Linker<PluginCtx>, PluginError> {
    let mut linker = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| PluginError::Engine {
        message: format!("{e:#}"),
    };
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
    latest::All::add_to_linker::<PluginCtx, HasSelf<PluginCtx>>(&mut linker, |ctx| ctx)
        .map_err(engine_error)?;
    since_v0_1_0::add_to_linker(&mut linker).map_err(engine_error)?;
    Ok(linker)
}

/// Defines `ExportIndices` in a WIT version's bindings module (`plugins::wit::since_vX_Y_Z`): the export
/// lookups of the worlds a plugin declared, resolved once at load, and the check that loads their typed
/// functions. Invoked once per version module, where `exports` names that version's generated exports.
macro_rules! export_indices {
    () => {
        /// Export lookups of the worlds a plugin declared, resolved once at load.
        #[derive(Default)]
        pub(crate) struct ExportIndices {
            /// `workflow-plugin`, if declared.
            pub(crate) workflow:
                Option<exports::codex_control_plane::plugin::workflow_plugin::GuestIndices>,
            /// `analyzer-plugin`, if declared.
            pub(crate) analyzer:
                Option<exports::codex_control_plane::plugin::analyzer_plugin::GuestIndices>,
            /// `repair-plugin`, if declared.
            pub(crate) repair:
                Option<exports::codex_control_plane::plugin::repair_plugin::GuestIndices>,
            /// `policy-plugin`, if declared.
            pub(crate) policy:
                Option<exports::codex_control_plane::plugin::policy_plugin::GuestIndices>,
        }

        impl ExportIndices {
            /// Looks up the exports of every world in `worlds`; on failure, the world that is missing.
            pub(crate) fn new(
                pre: &wasmtime::component::InstancePre<crate::plugins::runtime::PluginCtx>,
                worlds: &[crate::plugins::World],
            ) -> Result<ExportIndices, (crate::plugins::World, wasmtime::Error)> {
                use crate::plugins::World;
                use exports::codex_control_plane::plugin::{
                    analyzer_plugin, policy_plugin, repair_plugin, workflow_plugin,
                };
                let mut indices = ExportIndices::default();
                for world in worlds {
                    let missing = |e| (*world, e);
                    match world {
                        World::Workflow => {
                            indices.workflow =
                                Some(workflow_plugin::GuestIndices::new(pre).map_err(missing)?)
                        }
                        World::Analyzer => {
                            indices.analyzer =
                                Some(analyzer_plugin::GuestIndices::new(pre).map_err(missing)?)
                        }
                        World::Repair => {
                            indices.repair =
                                Some(repair_plugin::GuestIndices::new(pre).map_err(missing)?)
                        }
                        World::Policy => {
                            indices.policy =
                                Some(policy_plugin::GuestIndices::new(pre).map_err(missing)?)
                        }
                    }
                }
                Ok(indices)
            }

            /// Loads the typed functions of every looked-up world on `instance`, which checks their
            /// signatures (the index lookup does not); on failure, the world that is mistyped.
            pub(crate) fn check(
                &self,
                store: &mut wasmtime::Store<crate::plugins::runtime::PluginCtx>,
                instance: &wasmtime::component::Instance,
            ) -> Result<(), (crate::plugins::World, wasmtime::Error)> {
                use crate::plugins::World;
                if let Some(indices) = &self.workflow {
                    indices
                        .load(&mut *store, instance)
                        .map_err(|e| (World::Workflow, e))?;
                }
                if let Some(indices) = &self.analyzer {
                    indices
                        .load(&mut *store, instance)
                        .map_err(|e| (World::Analyzer, e))?;
                }
                if let Some(indices) = &self.repair {
                    indices
                        .load(&mut *store, instance)
                        .map_err(|e| (World::Repair, e))?;
                }
                if let Some(indices) = &self.policy {
                    indices
                        .load(&mut *store, instance)
                        .map_err(|e| (World::Policy, e))?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use export_indices;

/// A plugin's exports, in the bindings of the WIT version its manifest declares.
pub(crate) enum Exports {
    /// The latest version (`0.2.x`).
    Latest(latest::ExportIndices),
    /// `0.1.x`: calls convert their arguments down and their results up (`wit::since_v0_1_0`).
    V0_1(since_v0_1_0::ExportIndices),
}

/// A linked, ready-to-instantiate WASM plugin.
pub struct WasmPlugin {
    /// Host capabilities for its calls.
    capabilities: CapabilityCtx,
    /// Its budgets.
    limits: CallLimits,
    /// Imports resolved once; instantiation is then a copy of prepared state.
    pre: InstancePre<PluginCtx>,
    /// Export lookups per declared world, in the bindings of its WIT version.
    pub(crate) exports: Exports,
}

impl WasmPlugin {
    /// Links `component` and checks that it exports every declared world, in the bindings of `version`
    /// (one of [`super::wit::KNOWN_VERSIONS`], as the manifest check selected it).
    pub fn new(
        linker: &Linker<PluginCtx>,
        component: &wasmtime::component::Component,
        worlds: &[World],
        version: WitVersion,
        capabilities: CapabilityCtx,
        limits: CallLimits,
    ) -> Result<WasmPlugin, PluginError> {
        let identity = capabilities.identity.clone();
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| PluginError::Link {
                plugin: identity.id.clone(),
                version: identity.version.clone(),
                message: format!("{e:#}"),
            })?;
        let mismatch = |(world, e): (World, wasmtime::Error)| PluginError::WorldMismatch {
            plugin: identity.id.clone(),
            version: identity.version.clone(),
            world: world.to_string(),
            message: format!("{e:#}"),
        };
        let exports = if version == since_v0_1_0::MIN_VERSION {
            Exports::V0_1(since_v0_1_0::ExportIndices::new(&pre, worlds).map_err(mismatch)?)
        } else {
            Exports::Latest(latest::ExportIndices::new(&pre, worlds).map_err(mismatch)?)
        };
        let plugin = WasmPlugin {
            capabilities,
            limits,
            pre,
            exports,
        };
        // Loading the typed functions checks their signatures, which the index lookup does not;
        // a throw-away instance catches a mistyped export at load instead of at the first call.
        let (mut store, instance) = plugin.instantiate()?;
        match &plugin.exports {
            Exports::Latest(indices) => indices.check(&mut store, &instance),
            Exports::V0_1(indices) => indices.check(&mut store, &instance),
        }
        .map_err(mismatch)?;
        Ok(plugin)
    }

    /// The plugin's budgets.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// A fresh store with the call budget applied.
    fn new_store(&self) -> Result<Store<PluginCtx>, PluginError> {
        let ctx = PluginCtx {
            capabilities: self.capabilities.clone(),
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
        };
        let mut store = Store::new(self.pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limiter);
        self.refill(&mut store)?;
        Ok(store)
    }

    /// Resets fuel and the deadline for one more call on `store`.
    fn refill(&self, store: &mut Store<PluginCtx>) -> Result<(), PluginError> {
        store.set_fuel(self.limits.fuel).map_err(|e| {
            self.error(CallErrorKind::Instantiate {
                message: format!("{e:#}"),
            })
        })?;
        store.set_epoch_deadline(epoch_ticks(self.limits.timeout_ms));
        Ok(())
    }

    /// A new store and instance.
    fn instantiate(&self) -> Result<(Store<PluginCtx>, Instance), PluginError> {
        let _ticking = ticking();
        let mut store = self.new_store()?;
        match self.pre.instantiate(&mut store) {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(self.classify(&store, e, true)),
        }
    }

    /// Runs one call on a fresh instance: `indices` are the export indices of `world` (absent when
    /// the plugin does not implement it), `call` loads and calls the export.
    pub(crate) fn call<I, R: Debug>(
        &self,
        world: World,
        indices: &Option<I>,
        call: impl FnOnce(&I, &mut Store<PluginCtx>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let indices = indices.as_ref().ok_or_else(|| PluginError::WrongWorld {
            plugin: self.capabilities.identity.id.clone(),
            world: world.to_string(),
        })?;
        let (mut store, instance) = self.instantiate()?;
        let _ticking = ticking();
        let result = call(indices, &mut store, &instance);
        self.finish(&store, result)
    }

    /// Turns a call result into the caller's result: errors classified and logged, oversized
    /// output refused.
    fn finish<R: Debug>(
        &self,
        store: &Store<PluginCtx>,
        result: wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let value = result.map_err(|e| self.classify(store, e, false))?;
        if let Some(size_bytes) = limits::oversized(&value, MAX_OUTPUT_BYTES) {
            let error = self.error(CallErrorKind::OutputTooLarge {
                size_bytes,
                limit_bytes: MAX_OUTPUT_BYTES,
            });
            tracing::warn!(error = %error, "plugin call refused");
            return Err(error);
        }
        Ok(value)
    }

    /// Classifies a wasmtime error from instantiation or a call, and logs it.
    fn classify(
        &self,
        store: &Store<PluginCtx>,
        error: wasmtime::Error,
        instantiating: bool,
    ) -> PluginError {
        let kind = if store.data().limiter.hit() {
            CallErrorKind::MemoryLimit {
                limit_bytes: store.data().limiter.limit_bytes(),
            }
        } else if let Some(denied) = error.downcast_ref::<CapabilityDenied>() {
            CallErrorKind::CapabilityDenied {
                capability: denied.capability.to_string(),
            }
        } else if let Some(failure) = error.downcast_ref::<StateError>() {
            CallErrorKind::HostFailure {
                message: failure.to_string(),
            }
        } else {
            match error.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => CallErrorKind::OutOfFuel {
                    fuel: self.limits.fuel,
                },
                Some(Trap::Interrupt) => CallErrorKind::Timeout {
                    timeout_ms: self.limits.timeout_ms,
                },
                Some(_) => CallErrorKind::Trap {
                    message: format!("{error:#}"),
                },
                None if instantiating => CallErrorKind::Instantiate {
                    message: format!("{error:#}"),
                },
                None => CallErrorKind::Trap {
                    message: format!("{error:#}"),
                },
            }
        };
        let error = self.error(kind);
        tracing::warn!(error = %error, "plugin call failed");
        error
    }

    /// A call error tagged with this plugin.
    fn error(&self, kind: CallErrorKind) -> PluginError {
        PluginError::Call {
            plugin: self.capabilities.identity.id.clone(),
            version: self.capabilities.identity.version.clone(),
            kind,
        }
    }

    /// A long-lived instance of this policy plugin (see [`WarmInstance`]); latest WIT version only.
    pub fn warm_policy(&self) -> Result<WarmInstance<'_>, PluginError> {
        let latest = match &self.exports {
            Exports::Latest(indices) => Some(indices),
            Exports::V0_1(_) => None,
        };
        let indices = latest
            .and_then(|indices| indices.policy.as_ref())
            .ok_or_else(|| PluginError::WrongWorld {
                plugin: self.capabilities.identity.id.clone(),
                world: World::Policy.to_string(),
            })?;
        let (mut store, instance) = self.instantiate()?;
        let policy = indices
            .load(&mut store, &instance)
            .map_err(|e| self.classify(&store, e, true))?;
        Ok(WarmInstance {
            plugin: self,
            store,
            policy,
            poisoned: false,
        })
    }
}

/// One policy instance reused across calls: the cheapest way to call a plugin repeatedly (no
/// instantiation), at the price of guest state kept between calls. Each call gets the full fuel
/// and deadline again. After a failed call the instance may be in any state, so it refuses further
/// calls ([`CallErrorKind::Poisoned`]); make a new one.
pub struct WarmInstance<'a> {
    /// The plugin it belongs to.
    plugin: &'a WasmPlugin,
    /// Its store, holding the instance.
    store: Store<PluginCtx>,
    /// The typed policy exports of the instance.
    policy: policy_plugin::Guest,
    /// Set after a failed call.
    poisoned: bool,
}

impl WarmInstance<'_> {
    /// Calls the policy's `check-action`.
    pub fn check_action(
        &mut self,
        request: &policy_plugin::ActionRequest,
    ) -> Result<policy_plugin::Decision, PluginError> {
        if self.poisoned {
            return Err(self.plugin.error(CallErrorKind::Poisoned));
        }
        self.plugin.refill(&mut self.store)?;
        let _ticking = ticking();
        let result = self.policy.call_check_action(&mut self.store, request);
        let result = self.plugin.finish(&self.store, result);
        self.poisoned = result.is_err();
        result
    }
}
