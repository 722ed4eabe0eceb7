//! A workflow on the guest SDK that uses the thread actions a goal or steering workflow needs. It starts a
//! turn; once the turn runs it steers it (`steer`), sets a thread goal (`goal`), and asks for a steer and a goal
//! its own policy denies (`denied-steer`, `denied-goal`); when the turn completed it clears the goal (`clear`)
//! and steers again (`late-steer`), which the host must refuse because nothing runs. Every outcome the host
//! reports is recorded, in order, in the state's `seen` and becomes the final report's `structured` part, so a
//! test reads what the plugin was told.
//!
//! The same component is a policy (world `policy`) that allows everything except those two: a `set-goal` whose
//! workflow action id starts with `denied-`, and a `steer-turn` whose message is [`DENIED_STEER`] (a steer is
//! checked on its operation, whose request carries only the message's size).

use codex_control_plane_plugin_sdk::policy::{ActionKind, ActionRequest, Decision, Policy};
use codex_control_plane_plugin_sdk::workflow::{
    complete, handle_event, refuse_input, step, Action, CollaborationMode, ErrorInfo, Event,
    EventRecord, Json, SetGoalAction, StartThreadAction, StartTurnAction, SteerTurnAction, Step,
    ThreadAction, ThreadRef, TurnSettings, Workflow, WorkflowInfo, WorkflowState, FAILED,
};
use codex_control_plane_plugin_sdk::{export_policy, export_workflow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The message the running turn is steered with.
pub const STEER_MESSAGE: &str = "focus on the tests instead";
/// The goal set while the turn runs.
pub const GOAL: &str = "ship the storage change";
/// The message of the steer this plugin's policy denies.
pub const DENIED_STEER: &str = "a steer the goal-steer policy denies";

/// The persisted state.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// `executing`, `completed` or `failed`.
    pub phase: String,
    /// Finer status.
    pub status: String,
    /// Why it failed.
    pub error: Option<ErrorInfo>,
    /// The capped history.
    pub events: Vec<EventRecord>,
    /// What the host reported, in order.
    pub seen: Vec<Value>,
}

impl WorkflowState for State {
    const PHASES: &'static [&'static str] = &["executing", "completed", FAILED];
    const TERMINAL_PHASES: &'static [&'static str] = &["completed", FAILED];
    fn phase(&self) -> &str {
        &self.phase
    }
    fn set_phase(&mut self, phase: &str, status: &str) {
        self.phase = phase.to_string();
        self.status = status.to_string();
    }
    fn set_error(&mut self, error: ErrorInfo) {
        self.error = Some(error);
    }
    fn events_mut(&mut self) -> &mut Vec<EventRecord> {
        &mut self.events
    }
}

/// The configuration (none is needed).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct GoalSteer {}

fn thread() -> ThreadRef {
    ThreadRef::Action("thread".to_string())
}

fn steer(id: &str, message: &str) -> Action {
    Action::SteerTurn(SteerTurnAction {
        id: id.to_string(),
        thread: thread(),
        message: message.to_string(),
    })
}

fn set_goal(id: &str) -> Action {
    Action::SetGoal(SetGoalAction {
        id: id.to_string(),
        thread: thread(),
        goal: GOAL.to_string(),
    })
}

/// Completes with everything seen as the structured report.
fn finish(state: &mut State) -> Vec<Action> {
    state.set_phase("completed", "completed");
    let seen = Value::Array(state.seen.clone()).to_string();
    vec![complete("steered, set and cleared".to_string(), Some(seen))]
}

impl Workflow for GoalSteer {
    fn describe(&self) -> WorkflowInfo {
        WorkflowInfo {
            name: "goal-steer".to_string(),
            description:
                "Steers its turn, sets a goal and clears it (a test of the host's thread actions)."
                    .to_string(),
            input_schema: None,
        }
    }

    fn start(&self, input: Json) -> Step {
        let mut state = State::default();
        let Ok(input) = serde_json::from_str::<Value>(&input) else {
            return refuse_input(state, "input is not JSON".to_string());
        };
        let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_string);
        let settings = TurnSettings {
            cwd: text("cwd"),
            sandbox: None,
            approval_policy: None,
            model: text("model"),
            effort: None,
            collaboration_mode: Some(CollaborationMode::Default),
        };
        state.set_phase("executing", "running");
        state.record("started");
        let actions = vec![
            Action::StartThread(StartThreadAction {
                id: "thread".to_string(),
                settings: settings.clone(),
            }),
            Action::StartTurn(StartTurnAction {
                id: "execute".to_string(),
                thread: thread(),
                message: text("message").unwrap_or_default(),
                settings,
                output_schema: None,
            }),
        ];
        step(&state, actions)
    }

    fn on_event(&self, state: Json, event: Event) -> Step {
        handle_event(&state, event, |state: &mut State, event| match event {
            Event::ActionCompleted(done) => {
                let output = serde_json::from_str::<Value>(&done.output).unwrap_or(Value::Null);
                state.seen.push(
                    json!({"event": "action-completed", "action": done.action_id, "output": output}),
                );
                match done.action_id.as_str() {
                    "execute" => vec![
                        steer("steer", STEER_MESSAGE),
                        steer("denied-steer", DENIED_STEER),
                        set_goal("goal"),
                        set_goal("denied-goal"),
                    ],
                    // Succeeding is wrong, but the test reads it from the report rather than time out.
                    "late-steer" => finish(state),
                    _ => Vec::new(),
                }
            }
            Event::ActionFailed(failure) => {
                state.seen.push(
                    json!({"event": "action-failed", "action": failure.action_id,
                                       "code": failure.code, "message": failure.message}),
                );
                match failure.action_id.as_str() {
                    "late-steer" => finish(state),
                    // Expected refusals; the test reads their codes from the report.
                    "denied-steer" | "denied-goal" => Vec::new(),
                    _ => vec![state.fail_action(failure)],
                }
            }
            Event::TurnCompleted(turn) if turn.action_id.as_deref() == Some("execute") => {
                state
                    .seen
                    .push(json!({"event": "turn-completed", "turnId": turn.turn_id,
                                       "status": turn.status, "finalMessage": turn.final_message}));
                vec![
                    Action::ClearGoal(ThreadAction {
                        id: "clear".to_string(),
                        thread: thread(),
                    }),
                    steer("late-steer", "too late"),
                ]
            }
            Event::AppServerExited(_) => {
                vec![state.fail(
                    FAILED,
                    FAILED,
                    "fail-exit",
                    "app_server_exited",
                    "app-server exited".into(),
                )]
            }
            _ => Vec::new(),
        })
    }
}

impl Policy for GoalSteer {
    fn check_action(&self, request: &ActionRequest) -> Decision {
        let denied = match request.kind {
            ActionKind::SetGoal => request.action_id.starts_with("denied-"),
            ActionKind::SteerTurn => request.input.text_bytes == DENIED_STEER.len() as u64,
            _ => false,
        };
        if denied {
            Decision::deny(
                "own_actions",
                format!("goal-steer denies {}", request.action_id),
            )
        } else {
            Decision::Allow
        }
    }
}

export_workflow!(GoalSteer);
export_policy!(GoalSteer);
