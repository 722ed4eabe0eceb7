//! A plugin once loaded: its manifest, its backend (wasm or native), and typed calls per world that check
//! the world is declared before calling.

use super::*;

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
    /// A trusted native library.
    Native(native::NativePlugin),
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
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Policy,
                |e| &e.policy,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_check_action(store, request)
                },
            ),
            Backend::Native(native) => {
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
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Policy,
                |e| &e.policy,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_on_interaction(store, interaction)
                },
            ),
            Backend::Native(native) => {
                self.require(World::Policy)?;
                native.call("on-interaction", &(interaction,))
            }
        }
    }

    /// `describe`.
    pub(super) fn describe(&self) -> Result<WorkflowInfo, PluginError> {
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| i.load(&mut *store, instance)?.call_describe(store),
            ),
            Backend::Native(native) => {
                self.require(World::Workflow)?;
                native.call("describe", &())
            }
        }
    }

    /// `start`.
    pub(super) fn start(&self, input: &String) -> Result<Step, PluginError> {
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| i.load(&mut *store, instance)?.call_start(store, input),
            ),
            Backend::Native(native) => {
                self.require(World::Workflow)?;
                native.call("start", &(input,))
            }
        }
    }

    /// `on-event`.
    pub(super) fn on_event(&self, state: &String, event: &Event) -> Result<Step, PluginError> {
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Workflow,
                |e| &e.workflow,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_on_event(store, state, event)
                },
            ),
            Backend::Native(native) => {
                self.require(World::Workflow)?;
                native.call("on-event", &(state, event))
            }
        }
    }

    /// `analyze`.
    pub(super) fn analyze(&self, snapshot: &String) -> Result<Vec<Finding>, PluginError> {
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Analyzer,
                |e| &e.analyzer,
                |i, store, instance| i.load(&mut *store, instance)?.call_analyze(store, snapshot),
            ),
            Backend::Native(native) => {
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
        match &self.backend {
            Backend::Wasm(wasm) => wasm.call(
                World::Repair,
                |e| &e.repair,
                |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_plan(store, finding, context)
                },
            ),
            Backend::Native(native) => {
                self.require(World::Repair)?;
                native.call("plan", &(finding, context))
            }
        }
    }
}
