//! A plugin once loaded: its manifest, its backend (wasm or native), and typed calls per world that check
//! the world is declared before calling.

use super::*;

use deferred::DeferredWasm;

/// A loaded plugin.
pub(super) struct LoadedPlugin {
    /// Its manifest.
    pub(super) manifest: Manifest,
    /// How it runs.
    pub(super) backend: Backend,
}

/// How a loaded plugin runs.
pub(super) enum Backend {
    /// A linked component in wasmtime.
    Wasm(WasmPlugin),
    /// A default plugin, linked on its first call.
    Deferred(Box<DeferredWasm>),
    /// A trusted native library.
    Native(native::NativePlugin),
}

/// A backend ready for a call: a deferred plugin resolved to its linked component.
enum Ready<'a> {
    /// A linked component.
    Wasm(&'a WasmPlugin),
    /// A native library.
    Native(&'a native::NativePlugin),
}

impl Backend {
    /// The budgets of a wasm plugin's calls (native plugins have none).
    pub(super) fn limits(&self) -> Option<CallLimits> {
        match self {
            Backend::Wasm(wasm) => Some(wasm.limits()),
            Backend::Deferred(deferred) => Some(deferred.limits()),
            Backend::Native(_) => None,
        }
    }

    /// The linked wasm plugin, linking a deferred one now; `None` for a native plugin.
    pub(super) fn wasm(&self) -> Option<Result<&WasmPlugin, PluginError>> {
        match self {
            Backend::Wasm(wasm) => Some(Ok(wasm)),
            Backend::Deferred(deferred) => Some(deferred.get()),
            Backend::Native(_) => None,
        }
    }

    /// The backend ready for a call.
    fn ready(&self) -> Result<Ready<'_>, PluginError> {
        match self {
            Backend::Wasm(wasm) => Ok(Ready::Wasm(wasm)),
            Backend::Deferred(deferred) => deferred.get().map(Ready::Wasm),
            Backend::Native(native) => Ok(Ready::Native(native)),
        }
    }
}

impl LoadedPlugin {
    /// Fails unless the manifest declares `world` (wasm plugins check their exports instead).
    pub(super) fn require(&self, world: World) -> Result<(), PluginError> {
        if self.manifest.worlds.contains(&world) {
            Ok(())
        } else {
            Err(PluginError::WrongWorld {
                plugin: self.manifest.id.clone(),
                world: world.to_string(),
            })
        }
    }

    /// `check-action`.
    pub(super) fn check_action(&self, request: &ActionRequest) -> Result<Decision, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Policy,
                |e| &e.policy,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_check_action(store, request)
                },
            ),
            Ready::Native(native) => {
                self.require(World::Policy)?;
                native.call("check-action", &(request,))
            }
        }
    }

    /// `on-interaction`.
    pub(super) fn on_interaction(
        &self,
        interaction: &Interaction,
    ) -> Result<Option<Answer>, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Policy,
                |e| &e.policy,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_on_interaction(store, interaction)
                },
            ),
            Ready::Native(native) => {
                self.require(World::Policy)?;
                native.call("on-interaction", &(interaction,))
            }
        }
    }

    /// `describe`.
    pub(super) fn describe(&self) -> Result<WorkflowInfo, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| i.load(&mut *store, instance)?.call_describe(store),
            ),
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                native.call("describe", &())
            }
        }
    }

    /// `start`.
    pub(super) fn start(&self, input: &String) -> Result<Step, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| i.load(&mut *store, instance)?.call_start(store, input),
            ),
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                native.call("start", &(input,))
            }
        }
    }

    /// `on-event`.
    pub(super) fn on_event(&self, state: &String, event: &Event) -> Result<Step, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_on_event(store, state, event)
                },
            ),
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                native.call("on-event", &(state, event))
            }
        }
    }

    /// `analyze`.
    pub(super) fn analyze(&self, snapshot: &String) -> Result<Vec<Finding>, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Analyzer,
                |e| &e.analyzer,
                |i, store, instance| i.load(&mut *store, instance)?.call_analyze(store, snapshot),
            ),
            Ready::Native(native) => {
                self.require(World::Analyzer)?;
                native.call("analyze", &(snapshot,))
            }
        }
    }

    /// `plan`.
    pub(super) fn plan(
        &self,
        finding: &Finding,
        context: &RepairContext,
    ) -> Result<Vec<RepairStep>, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => wasm.call(
                World::Repair,
                |e| &e.repair,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_plan(store, finding, context)
                },
            ),
            Ready::Native(native) => {
                self.require(World::Repair)?;
                native.call("plan", &(finding, context))
            }
        }
    }
}
