//! A plugin once loaded: its manifest, its backend (wasm or native), and typed calls per world that check
//! the world is declared before calling.

use super::*;

use deferred::DeferredWasm;
// The WIT answer (with its rule), not the chain's `AutoAnswer` (with its plugin).
use runtime::Exports;
use types::AutoAnswer;
use wit::since_v0_1_0;
use wit::since_v0_1_0::exports::codex_control_plane::plugin::{
    policy_plugin as old_policy, repair_plugin as old_repair, workflow_plugin as old_workflow,
};

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

    /// Whether its manifest declares WIT 0.1 (native plugins: the JSON of the 0.1 types).
    fn speaks_v0_1(&self) -> bool {
        self.manifest.wit_version().ok() == Some(since_v0_1_0::MIN_VERSION)
    }

    /// `check-action`.
    pub(super) fn check_action(&self, request: &ActionRequest) -> Result<Decision, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => wasm.call(World::Policy, &e.policy, |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_check_action(store, request)
                }),
                Exports::V0_1(e) => {
                    let old = old_policy::ActionRequest::from(request.clone());
                    wasm.call(World::Policy, &e.policy, |i, store, instance| {
                        i.load(&mut *store, instance)?
                            .call_check_action(store, &old)
                    })
                    .map(Decision::from)
                }
            },
            Ready::Native(native) => {
                self.require(World::Policy)?;
                if self.speaks_v0_1() {
                    let old = old_policy::ActionRequest::from(request.clone());
                    native
                        .call::<_, old_policy::Decision>("check-action", &(old,))
                        .map(Decision::from)
                } else {
                    native.call("check-action", &(request,))
                }
            }
        }
    }

    /// `on-interaction`.
    pub(super) fn on_interaction(
        &self,
        interaction: &Interaction,
    ) -> Result<Option<AutoAnswer>, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => wasm.call(World::Policy, &e.policy, |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_on_interaction(store, interaction)
                }),
                Exports::V0_1(e) => {
                    let old = old_policy::Interaction::from(interaction.clone());
                    wasm.call(World::Policy, &e.policy, |i, store, instance| {
                        i.load(&mut *store, instance)?
                            .call_on_interaction(store, &old)
                    })
                    .map(|answer| answer.map(AutoAnswer::from))
                }
            },
            Ready::Native(native) => {
                self.require(World::Policy)?;
                if self.speaks_v0_1() {
                    let old = old_policy::Interaction::from(interaction.clone());
                    native
                        .call::<_, Option<old_policy::Answer>>("on-interaction", &(old,))
                        .map(|answer| answer.map(AutoAnswer::from))
                } else {
                    native.call("on-interaction", &(interaction,))
                }
            }
        }
    }

    /// `describe`.
    pub(super) fn describe(&self) -> Result<WorkflowInfo, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => {
                    wasm.call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_describe(store)
                    })
                }
                Exports::V0_1(e) => wasm
                    .call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_describe(store)
                    })
                    .map(WorkflowInfo::from),
            },
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                native.call("describe", &())
            }
        }
    }

    /// `start`.
    pub(super) fn start(&self, input: &String) -> Result<Step, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => {
                    wasm.call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_start(store, input)
                    })
                }
                Exports::V0_1(e) => wasm
                    .call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_start(store, input)
                    })
                    .map(Step::from),
            },
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                if self.speaks_v0_1() {
                    native
                        .call::<_, old_workflow::Step>("start", &(input,))
                        .map(Step::from)
                } else {
                    native.call("start", &(input,))
                }
            }
        }
    }

    /// `on-event`.
    pub(super) fn on_event(&self, state: &String, event: &Event) -> Result<Step, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => {
                    wasm.call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?
                            .call_on_event(store, state, event)
                    })
                }
                Exports::V0_1(e) => {
                    let old = old_workflow::Event::from(event.clone());
                    wasm.call(World::Workflow, &e.workflow, |i, store, instance| {
                        i.load(&mut *store, instance)?
                            .call_on_event(store, state, &old)
                    })
                    .map(Step::from)
                }
            },
            Ready::Native(native) => {
                self.require(World::Workflow)?;
                if self.speaks_v0_1() {
                    let old = old_workflow::Event::from(event.clone());
                    native
                        .call::<_, old_workflow::Step>("on-event", &(state, old))
                        .map(Step::from)
                } else {
                    native.call("on-event", &(state, event))
                }
            }
        }
    }

    /// `analyze` (its types are the same in every version).
    pub(super) fn analyze(&self, snapshot: &String) -> Result<Vec<Finding>, PluginError> {
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => {
                    wasm.call(World::Analyzer, &e.analyzer, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_analyze(store, snapshot)
                    })
                }
                Exports::V0_1(e) => {
                    wasm.call(World::Analyzer, &e.analyzer, |i, store, instance| {
                        i.load(&mut *store, instance)?.call_analyze(store, snapshot)
                    })
                }
            },
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
        let up =
            |steps: Vec<old_repair::RepairStep>| steps.into_iter().map(RepairStep::from).collect();
        match self.backend.ready()? {
            Ready::Wasm(wasm) => match &wasm.exports {
                Exports::Latest(e) => wasm.call(World::Repair, &e.repair, |i, store, instance| {
                    i.load(&mut *store, instance)?
                        .call_plan(store, finding, context)
                }),
                Exports::V0_1(e) => {
                    let old = old_repair::RepairContext::from(context.clone());
                    wasm.call(World::Repair, &e.repair, |i, store, instance| {
                        i.load(&mut *store, instance)?
                            .call_plan(store, finding, &old)
                    })
                    .map(up)
                }
            },
            Ready::Native(native) => {
                self.require(World::Repair)?;
                if self.speaks_v0_1() {
                    let old = old_repair::RepairContext::from(context.clone());
                    native.call("plan", &(finding, old)).map(up)
                } else {
                    native.call("plan", &(finding, context))
                }
            }
        }
    }
}
