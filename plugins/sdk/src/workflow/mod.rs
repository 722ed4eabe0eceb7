//! World `workflow`: a state machine `(state, event) -> step { new state, actions }` driving codex
//! threads and turns; the host persists the state and performs the actions.
//!
//! Implement [`Workflow`] for a struct that is your configuration and hand it to
//! [`export_workflow!`](crate::export_workflow). Keep the persisted state in a struct of your own
//! implementing [`WorkflowState`], and let [`handle_event`] and [`refuse_input`] apply the rules the
//! host relies on (the capped `events` history, failing on a corrupt state, a terminal state never
//! changing again):
//!
//! ```
//! use codex_control_plane_plugin_sdk::workflow::{
//!     complete, handle_event, refuse_input, step, ErrorInfo, Event, EventRecord, Json, Step,
//!     Workflow, WorkflowInfo, WorkflowState, FAILED,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! #[serde(default)]
//! struct State {
//!     phase: String,
//!     status: String,
//!     error: Option<ErrorInfo>,
//!     events: Vec<EventRecord>,
//! }
//!
//! impl WorkflowState for State {
//!     const PHASES: &'static [&'static str] = &["waiting", "completed", FAILED];
//!     const TERMINAL_PHASES: &'static [&'static str] = &["completed", FAILED];
//!     fn phase(&self) -> &str {
//!         &self.phase
//!     }
//!     fn set_phase(&mut self, phase: &str, status: &str) {
//!         self.phase = phase.to_string();
//!         self.status = status.to_string();
//!     }
//!     fn set_error(&mut self, error: ErrorInfo) {
//!         self.error = Some(error);
//!     }
//!     fn events_mut(&mut self) -> &mut Vec<EventRecord> {
//!         &mut self.events
//!     }
//! }
//!
//! /// The configuration: `[config] report_prefix = "..."` in plugin.toml.
//! #[derive(Deserialize)]
//! struct Echo {
//!     #[serde(default)]
//!     report_prefix: String,
//! }
//!
//! impl Workflow for Echo {
//!     fn describe(&self) -> WorkflowInfo {
//!         WorkflowInfo {
//!             name: "echo".to_string(),
//!             description: "Completes with the first action output it sees.".to_string(),
//!             input_schema: None,
//!         }
//!     }
//!
//!     fn start(&self, input: Json) -> Step {
//!         let mut state = State::default();
//!         if serde_json::from_str::<serde_json::Value>(&input).is_err() {
//!             return refuse_input(state, "input is not JSON".to_string());
//!         }
//!         state.set_phase("waiting", "running");
//!         state.record("started");
//!         step(&state, Vec::new())
//!     }
//!
//!     fn on_event(&self, state: Json, event: Event) -> Step {
//!         handle_event(&state, event, |state: &mut State, event| match event {
//!             Event::ActionCompleted(done) => {
//!                 state.set_phase("completed", "completed");
//!                 vec![complete(format!("{}{}", self.report_prefix, done.output), None)]
//!             }
//!             Event::ActionFailed(failure) => vec![state.fail_action(failure)],
//!             _ => Vec::new(),
//!         })
//!     }
//! }
//!
//! codex_control_plane_plugin_sdk::export_workflow!(Echo);
//! # let echo = Echo { report_prefix: String::new() };
//! # assert!(echo.start("{}".to_string()).state.contains(r#""phase":"waiting""#));
//! ```

mod plumbing;

use serde::de::DeserializeOwned;

pub use crate::bindings::workflow::exports::codex_control_plane::plugin::workflow_plugin::{
    Action, ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, CompleteAction, Event,
    FailAction, Guest, InteractionAnswer, InteractionInfo, OperationStatus, PlanItem,
    SetGoalAction, StartReviewAction, StartThreadAction, StartTurnAction, SteerTurnAction, Step,
    ThreadAction, TurnCompleted, WaitForApprovalAction, WorkflowInfo,
};
pub use crate::types::{
    ApprovalPolicy, CollaborationMode, Json, ReviewCommit, ReviewTarget, SandboxMode, ThreadRef,
    TurnSettings,
};
pub use plumbing::*;

/// A workflow plugin.
pub trait Workflow: DeserializeOwned {
    /// Describes the workflow (name, description, input schema).
    fn describe(&self) -> WorkflowInfo;

    /// Starts an instance from its input (a JSON text): the initial state and first actions.
    fn start(&self, input: Json) -> Step;

    /// Handles one event given the persisted state (a JSON text).
    fn on_event(&self, state: Json, event: Event) -> Step;
}

/// Error code of the `fail` action a workflow ends with when its configuration does not load.
pub const CONFIG_INVALID_CODE: &str = "invalid_config";

/// The step of a workflow whose configuration does not load: it fails at once, with the reason,
/// instead of running on rules it could not read.
fn config_failure(error: &crate::config::ConfigError) -> Step {
    let message = error.to_string();
    crate::host::error(&message);
    let state = serde_json::json!({
        "phase": FAILED,
        "status": FAILED,
        "error": {"code": CONFIG_INVALID_CODE, "message": message},
    });
    Step {
        state: state.to_string(),
        actions: vec![Action::Fail(FailAction {
            id: "fail-config".to_string(),
            code: CONFIG_INVALID_CODE.to_string(),
            message,
        })],
    }
}

/// `describe` of the exported workflow. A configuration that does not load fails the call after
/// logging why: there is no honest description of a workflow that cannot run.
#[doc(hidden)]
pub fn describe<W: Workflow>() -> WorkflowInfo {
    match crate::config::load::<W>() {
        Ok(workflow) => workflow.describe(),
        Err(error) => {
            crate::host::error(&error.to_string());
            panic!("{error}");
        }
    }
}

/// `start` of the exported workflow.
#[doc(hidden)]
pub fn start<W: Workflow>(input: Json) -> Step {
    match crate::config::load::<W>() {
        Ok(workflow) => workflow.start(input),
        Err(error) => config_failure(&error),
    }
}

/// `on-event` of the exported workflow.
#[doc(hidden)]
pub fn on_event<W: Workflow>(state: Json, event: Event) -> Step {
    match crate::config::load::<W>() {
        Ok(workflow) => workflow.on_event(state, event),
        Err(error) => config_failure(&error),
    }
}

/// Exports a [`Workflow`](crate::workflow::Workflow) implementation as the plugin's `workflow`
/// world (exports only in `wasm32` builds).
#[macro_export]
macro_rules! export_workflow {
    ($workflow:ty) => {
        const _: () = {
            struct SdkWorkflowExport;

            impl $crate::workflow::Guest for SdkWorkflowExport {
                fn describe() -> $crate::workflow::WorkflowInfo {
                    $crate::workflow::describe::<$workflow>()
                }

                fn start(input: $crate::workflow::Json) -> $crate::workflow::Step {
                    $crate::workflow::start::<$workflow>(input)
                }

                fn on_event(
                    state: $crate::workflow::Json,
                    event: $crate::workflow::Event,
                ) -> $crate::workflow::Step {
                    $crate::workflow::on_event::<$workflow>(state, event)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::bindings::workflow::export!(SdkWorkflowExport with_types_in $crate::bindings::workflow);
        };
    };
}

/// Exports a type implementing the generated [`Guest`] trait directly, without the typed
/// configuration of [`Workflow`]; this is how the default workflow plugins (through the
/// `workflow-guest` crate) export themselves. The type must be named by a plain identifier.
#[macro_export]
macro_rules! export_workflow_guest {
    ($guest:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::workflow::export!($guest with_types_in $crate::bindings::workflow);
    };
}
