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
use super::wit::latest;
use super::wit::latest::exports::codex_control_plane::plugin::{
    analyzer_plugin, policy_plugin, repair_plugin, workflow_plugin,
};

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

/// Builds the linker every plugin is instantiated with: WASI (with empty contexts) and the
/// latest `host` interface.
pub fn new_linker(engine: &Engine) -> Result<Linker<PluginCtx>, PluginError> {
    let mut linker = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| PluginError::Engine {
        message: format!("{e:#}"),
    };
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
    latest::All::add_to_linker::<PluginCtx, HasSelf<PluginCtx>>(&mut linker, |ctx| ctx)
        .map_err(engine_error)?;
    Ok(linker)
}

/// Export lookups of the worlds a plugin declared, resolved once at load.
#[derive(Default)]
pub(crate) struct ExportIndices {
    /// `workflow-plugin`, if declared.
    pub(crate) workflow: Option<workflow_plugin::GuestIndices>,
    /// `analyzer-plugin`, if declared.
    pub(crate) analyzer: Option<analyzer_plugin::GuestIndices>,
    /// `repair-plugin`, if declared.
    pub(crate) repair: Option<repair_plugin::GuestIndices>,
    /// `policy-plugin`, if declared.
    pub(crate) policy: Option<policy_plugin::GuestIndices>,
}

/// A linked, ready-to-instantiate WASM plugin.
pub struct WasmPlugin {
    /// Host capabilities for its calls.
    capabilities: CapabilityCtx,
    /// Its budgets.
    limits: CallLimits,
    /// Imports resolved once; instantiation is then a copy of prepared state.
    pre: InstancePre<PluginCtx>,
    /// Export lookups per declared world.
    pub(crate) exports: ExportIndices,
}

impl WasmPlugin {
    /// Links `component` and checks that it exports every declared world.
    pub fn new(
        linker: &Linker<PluginCtx>,
        component: &wasmtime::component::Component,
        worlds: &[World],
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
        let mismatch = |world: World, e: wasmtime::Error| PluginError::WorldMismatch {
            plugin: identity.id.clone(),
            version: identity.version.clone(),
            world: world.to_string(),
            message: format!("{e:#}"),
        };
        let mut exports = ExportIndices::default();
        for world in worlds {
            match world {
                World::Workflow => {
                    exports.workflow = Some(
                        workflow_plugin::GuestIndices::new(&pre)
                            .map_err(|e| mismatch(*world, e))?,
                    )
                }
                World::Analyzer => {
                    exports.analyzer = Some(
                        analyzer_plugin::GuestIndices::new(&pre)
                            .map_err(|e| mismatch(*world, e))?,
                    )
                }
                World::Repair => {
                    exports.repair = Some(
                        repair_plugin::GuestIndices::new(&pre).map_err(|e| mismatch(*world, e))?,
                    )
                }
                World::Policy => {
                    exports.policy = Some(
                        policy_plugin::GuestIndices::new(&pre).map_err(|e| mismatch(*world, e))?,
                    )
                }
            }
        }
        let plugin = WasmPlugin {
            capabilities,
            limits,
            pre,
            exports,
        };
        // Loading the typed functions checks their signatures, which the index lookup does not;
        // a throw-away instance catches a mistyped export at load instead of at the first call.
        let (mut store, instance) = plugin.instantiate()?;
        for world in worlds {
            let loaded = match world {
                World::Workflow => plugin.typed(
                    |e| &e.workflow,
                    &mut store,
                    &instance,
                    |i, s, n| i.load(s, n).map(|_| ()),
                ),
                World::Analyzer => plugin.typed(
                    |e| &e.analyzer,
                    &mut store,
                    &instance,
                    |i, s, n| i.load(s, n).map(|_| ()),
                ),
                World::Repair => plugin.typed(
                    |e| &e.repair,
                    &mut store,
                    &instance,
                    |i, s, n| i.load(s, n).map(|_| ()),
                ),
                World::Policy => plugin.typed(
                    |e| &e.policy,
                    &mut store,
                    &instance,
                    |i, s, n| i.load(s, n).map(|_| ()),
                ),
            };
            loaded.map_err(|e| mismatch(*world, e))?;
        }
        Ok(plugin)
    }

    /// Runs `load` on the indices selected by `pick` (which are present for declared worlds).
    fn typed<I>(
        &self,
        pick: impl Fn(&ExportIndices) -> &Option<I>,
        store: &mut Store<PluginCtx>,
        instance: &Instance,
        load: impl Fn(&I, &mut Store<PluginCtx>, &Instance) -> wasmtime::Result<()>,
    ) -> wasmtime::Result<()> {
        match pick(&self.exports) {
            Some(indices) => load(indices, store, instance),
            None => Ok(()),
        }
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

    /// Runs one call on a fresh instance: `pick` selects the export indices (absent when the
    /// plugin does not implement `world`), `call` loads and calls the export.
    pub(crate) fn call<I, R: Debug>(
        &self,
        world: World,
        pick: impl Fn(&ExportIndices) -> &Option<I>,
        call: impl FnOnce(&I, &mut Store<PluginCtx>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let indices = pick(&self.exports)
            .as_ref()
            .ok_or_else(|| PluginError::WrongWorld {
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

    /// A long-lived instance of this policy plugin (see [`WarmInstance`]).
    pub fn warm_policy(&self) -> Result<WarmInstance<'_>, PluginError> {
        let indices = self
            .exports
            .policy
            .as_ref()
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
