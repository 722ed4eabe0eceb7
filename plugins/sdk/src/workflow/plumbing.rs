//! The plumbing every workflow state machine needs: the capped `events` history, the `error
//! {code, message}` shape, refusing bad input, failing on a corrupt state, returning a terminal
//! state unchanged, and small input helpers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, ActionFailure, AppServerExit, ApprovalPolicy, CompleteAction, Event, FailAction, Json,
    SandboxMode, Step,
};

/// Most entries kept in a state's `events`: enough to see how a workflow got where it is, while
/// the state the host stores on every event stays bounded.
pub const MAX_EVENTS: usize = 50;

/// Phase (and status) of a workflow whose input was refused or whose state was corrupt. The
/// shared plumbing moves there by itself, so every workflow must list it in
/// [`WorkflowState::PHASES`] and [`WorkflowState::TERMINAL_PHASES`].
pub const FAILED: &str = "failed";

/// Error code of the `fail` action sent when the app-server exits while a workflow depends on it;
/// the host and its clients match on this exact code.
pub const ORPHANED_CODE: &str = "orphaned_after_app_server_exit";

/// What [`step`] stores if a state cannot be serialised: still a valid terminal state, so the
/// workflow stops instead of handing the host something it cannot parse back.
const FALLBACK_STATE: &str = r#"{"phase":"failed","status":"failed"}"#;

/// Why the workflow failed, as persisted in the state's `error` (`{code, message}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorInfo {
    /// Machine-readable code, the same as the `fail` action's.
    pub code: String,
    /// Human-readable explanation, the same as the `fail` action's.
    pub message: String,
}

/// One handled event, as persisted in the state's `events` (`{event, phase}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventRecord {
    /// Event name as given by [`event_name`], e.g. `turn-completed`.
    pub event: String,
    /// Phase after the event, so the history shows what each event did.
    pub phase: String,
}

/// A workflow's persisted state, as far as the shared plumbing needs it.
///
/// Each plugin implements it for its own struct rather than embedding a shared one, so that the
/// plugin alone decides its JSON: states already stored by the host must keep parsing.
pub trait WorkflowState: Default + Serialize + DeserializeOwned {
    /// Every phase a persisted state may have. A state in any other phase is treated as corrupt
    /// rather than guessed at. Must contain [`FAILED`].
    const PHASES: &'static [&'static str];

    /// Phases after which every event is ignored. Must contain [`FAILED`].
    const TERMINAL_PHASES: &'static [&'static str];

    /// The current phase.
    fn phase(&self) -> &str;

    /// Moves to `phase` with the finer `status` (e.g. a turn's terminal status).
    fn set_phase(&mut self, phase: &str, status: &str);

    /// Stores why the workflow failed.
    fn set_error(&mut self, error: ErrorInfo);

    /// The event history that [`record`](Self::record) appends to.
    fn events_mut(&mut self) -> &mut Vec<EventRecord>;

    /// Whether the phase is terminal, i.e. whether every further event is ignored.
    fn is_terminal(&self) -> bool {
        Self::TERMINAL_PHASES.contains(&self.phase())
    }

    /// Appends an event record with the current phase, keeping the last [`MAX_EVENTS`].
    fn record(&mut self, event: &str) {
        let phase = self.phase().to_string();
        let events = self.events_mut();
        events.push(EventRecord {
            event: event.to_string(),
            phase,
        });
        if events.len() > MAX_EVENTS {
            let excess = events.len() - MAX_EVENTS;
            events.drain(..excess);
        }
    }

    /// Moves to a failing terminal phase and returns the matching `fail` action, so that the
    /// state's `error` and the action the host sees can never disagree.
    fn fail(&mut self, phase: &str, status: &str, id: &str, code: &str, message: String) -> Action {
        self.set_phase(phase, status);
        self.set_error(ErrorInfo {
            code: code.to_string(),
            message: message.clone(),
        });
        Action::Fail(FailAction {
            id: id.to_string(),
            code: code.to_string(),
            message,
        })
    }

    /// Fails because the host could not perform an action. The id `fail-<action-id>` stays unique
    /// as long as action ids are, and an empty code still gives the caller something to match.
    fn fail_action(&mut self, failure: ActionFailure) -> Action {
        let code = if failure.code.is_empty() {
            "action_failed".to_string()
        } else {
            failure.code
        };
        let id = format!("fail-{}", failure.action_id);
        self.fail(FAILED, FAILED, &id, &code, failure.message)
    }
}

/// Serialises a state into the step handed back to the host.
pub fn step<S: Serialize>(state: &S, actions: Vec<Action>) -> Step {
    Step {
        state: serde_json::to_string(state).unwrap_or_else(|_| FALLBACK_STATE.to_string()),
        actions,
    }
}

/// The step of a `start` whose input is refused: `state` (the plugin's initial state) fails with
/// `fail {id: "fail", code: "invalid_input"}`, and the refusal is recorded as `started` so the
/// history still shows the start.
pub fn refuse_input<S: WorkflowState>(mut state: S, reason: String) -> Step {
    let action = state.fail(FAILED, FAILED, "fail", "invalid_input", reason);
    state.record("started");
    step(&state, vec![action])
}

/// Parses a persisted state; an unknown phase counts as corrupt.
pub fn parse_state<S: WorkflowState>(json: &str) -> Result<S, String> {
    let state: S = serde_json::from_str(json).map_err(|e| format!("state is not valid: {e}"))?;
    if !S::PHASES.contains(&state.phase()) {
        return Err(format!("state has an unknown phase {:?}", state.phase()));
    }
    Ok(state)
}

/// Handles one event given the persisted state, leaving only the workflow's own logic to
/// `handle`.
///
/// A corrupt state is replaced by a fresh failed one (`fail {id: "fail-corrupt-state", code:
/// "corrupt_state"}`) rather than trusted. A terminal state is returned verbatim, so that an
/// event replayed after a crash changes nothing. Otherwise `handle` runs and the event is
/// recorded under [`event_name`] with the phase it left.
pub fn handle_event<S: WorkflowState>(
    state_json: &str,
    event: Event,
    handle: impl FnOnce(&mut S, Event) -> Vec<Action>,
) -> Step {
    let mut state = match parse_state::<S>(state_json) {
        Ok(state) => state,
        Err(reason) => {
            let mut state = S::default();
            let action = state.fail(
                FAILED,
                FAILED,
                "fail-corrupt-state",
                "corrupt_state",
                reason,
            );
            state.record("corrupt-state");
            return step(&state, vec![action]);
        }
    };
    if state.is_terminal() {
        return Step {
            state: state_json.to_string(),
            actions: Vec::new(),
        };
    }
    let name = event_name(&event);
    let actions = handle(&mut state, event);
    state.record(name);
    step(&state, actions)
}

/// The name an event is recorded under: its WIT case name, so histories read the same in every
/// workflow.
pub fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Started(_) => "started",
        Event::OperationStatusChanged(_) => "operation-status-changed",
        Event::TurnCompleted(_) => "turn-completed",
        Event::InteractionPending(_) => "interaction-pending",
        Event::InteractionAnswered(_) => "interaction-answered",
        Event::AppServerExited(_) => "app-server-exited",
        Event::Approved(_) => "approved",
        Event::Adopted(_) => "adopted",
        Event::ActionCompleted(_) => "action-completed",
        Event::ActionFailed(_) => "action-failed",
    }
}

/// The start of every orphaning message (`the app-server exited (generation G, exit code C)`),
/// so that the host's logs and clients read one wording whichever workflow was orphaned.
pub fn exit_description(exit: &AppServerExit) -> String {
    let code = exit.code.map_or("none".to_string(), |c| c.to_string());
    format!(
        "the app-server exited (generation {}, exit code {code})",
        exit.generation
    )
}

/// The `complete` action. Its id is always `complete`: a workflow completes at most once.
pub fn complete(report: String, structured: Option<Json>) -> Action {
    Action::Complete(CompleteAction {
        id: "complete".to_string(),
        report,
        structured,
    })
}

/// A non-empty string field of an action's output; the host may report an unknown id as absent,
/// null or empty, and all three mean "not known".
pub fn string_field(output: &Value, key: &str) -> Option<String> {
    output
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads an optional string field of an input object: absent, null or empty is `None`, any other
/// type is an error, so that a mistyped input is refused instead of silently ignored.
pub fn optional_string(
    object: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string or null")),
    }
}

/// Parses a sandbox name as spelled in inputs (`read-only`, `workspace-write`,
/// `danger-full-access`); `None` for anything else so the caller decides whether that is an error.
pub fn sandbox_mode(name: &str) -> Option<SandboxMode> {
    match name {
        "read-only" => Some(SandboxMode::ReadOnly),
        "workspace-write" => Some(SandboxMode::WorkspaceWrite),
        "danger-full-access" => Some(SandboxMode::DangerFullAccess),
        _ => None,
    }
}

/// Parses an approval policy name as spelled in inputs (`never`, `on-request`, `on-failure`,
/// `untrusted`); `None` for anything else so the caller decides whether that is an error.
pub fn approval_policy(name: &str) -> Option<ApprovalPolicy> {
    match name {
        "never" => Some(ApprovalPolicy::Never),
        "on-request" => Some(ApprovalPolicy::OnRequest),
        "on-failure" => Some(ApprovalPolicy::OnFailure),
        "untrusted" => Some(ApprovalPolicy::Untrusted),
        _ => None,
    }
}

/// The first `max` characters of a text; by characters, not bytes, so that a multi-byte
/// character is never cut in half.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Toy {
        phase: String,
        status: String,
        error: Option<ErrorInfo>,
        events: Vec<EventRecord>,
    }

    impl WorkflowState for Toy {
        const PHASES: &'static [&'static str] = &["running", "done", FAILED];
        const TERMINAL_PHASES: &'static [&'static str] = &["done", FAILED];
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

    fn running() -> String {
        r#"{"phase":"running","status":"running"}"#.to_string()
    }

    fn exit() -> Event {
        Event::AppServerExited(AppServerExit {
            generation: 2,
            code: None,
        })
    }

    #[test]
    fn history_is_capped_and_keeps_the_newest() {
        let mut toy = Toy::default();
        for i in 0..MAX_EVENTS + 7 {
            toy.record(&i.to_string());
        }
        assert_eq!(toy.events.len(), MAX_EVENTS);
        assert_eq!(toy.events[0].event, "7");
        assert_eq!(
            toy.events.last().map(|e| e.event.as_str()),
            Some((MAX_EVENTS + 6).to_string().as_str())
        );
    }

    #[test]
    fn fail_mirrors_the_action_in_the_state() {
        let mut toy = Toy::default();
        let action = toy.fail("done", "odd", "fail-x", "x_failed", "why".to_string());
        assert_eq!(
            action,
            Action::Fail(FailAction {
                id: "fail-x".to_string(),
                code: "x_failed".to_string(),
                message: "why".to_string(),
            })
        );
        assert_eq!((toy.phase.as_str(), toy.status.as_str()), ("done", "odd"));
        assert_eq!(
            toy.error,
            Some(ErrorInfo {
                code: "x_failed".to_string(),
                message: "why".to_string(),
            })
        );
    }

    #[test]
    fn action_failure_gets_an_id_and_a_code() {
        let mut toy = Toy::default();
        let action = toy.fail_action(ActionFailure {
            action_id: "turn".to_string(),
            code: String::new(),
            message: "no".to_string(),
        });
        assert!(
            matches!(action, Action::Fail(f) if f.id == "fail-turn" && f.code == "action_failed")
        );
        assert_eq!(toy.phase, FAILED);
        assert_eq!(toy.status, FAILED);
    }

    #[test]
    fn refused_input_is_a_recorded_failure() {
        let step = refuse_input(Toy::default(), "bad".to_string());
        let toy: Toy = serde_json::from_str(&step.state).unwrap_or_default();
        assert_eq!(toy.phase, FAILED);
        assert_eq!(toy.events.len(), 1);
        assert_eq!(toy.events[0].event, "started");
        assert!(
            matches!(step.actions.as_slice(), [Action::Fail(f)] if f.id == "fail" && f.code == "invalid_input")
        );
    }

    #[test]
    fn events_are_handled_and_recorded() {
        let step = handle_event(&running(), exit(), |toy: &mut Toy, event| {
            assert!(matches!(event, Event::AppServerExited(_)));
            toy.set_phase("done", "done");
            vec![complete("ok".to_string(), None)]
        });
        let toy: Toy = serde_json::from_str(&step.state).unwrap_or_default();
        assert_eq!(
            toy.events,
            vec![EventRecord {
                event: "app-server-exited".to_string(),
                phase: "done".to_string(),
            }]
        );
        assert!(matches!(step.actions.as_slice(), [Action::Complete(c)] if c.id == "complete"));
    }

    #[test]
    fn terminal_state_is_returned_verbatim() {
        // Deliberately not in serde's output format: it must come back byte for byte.
        let done = r#"{ "phase": "done", "extra": 1 }"#;
        let step = handle_event(done, exit(), |_: &mut Toy, _| {
            panic!("a terminal state must not be handled")
        });
        assert_eq!(step.state, done);
        assert!(step.actions.is_empty());
    }

    #[test]
    fn corrupt_state_is_replaced_by_a_failed_one() {
        for bad in ["nope", "{}", r#"{"phase":"dancing"}"#, r#"{"phase":1}"#] {
            let step = handle_event(bad, exit(), |_: &mut Toy, _| {
                panic!("a corrupt state must not be handled")
            });
            let toy: Toy = serde_json::from_str(&step.state).unwrap_or_default();
            assert_eq!(toy.phase, FAILED, "{bad}");
            assert_eq!(toy.events[0].event, "corrupt-state");
            assert!(
                matches!(step.actions.as_slice(), [Action::Fail(f)] if f.id == "fail-corrupt-state" && f.code == "corrupt_state")
            );
        }
    }

    #[test]
    fn exit_description_names_generation_and_code() {
        assert_eq!(
            exit_description(&AppServerExit {
                generation: 4,
                code: Some(-9),
            }),
            "the app-server exited (generation 4, exit code -9)"
        );
        assert!(exit_description(&AppServerExit {
            generation: 1,
            code: None,
        })
        .ends_with("exit code none)"));
    }

    #[test]
    fn input_helpers() {
        let object = serde_json::json!({"a": "x", "b": "", "c": null, "d": 3});
        let object = object.as_object().cloned().unwrap_or_default();
        assert_eq!(optional_string(&object, "a"), Ok(Some("x".to_string())));
        assert_eq!(optional_string(&object, "b"), Ok(None));
        assert_eq!(optional_string(&object, "c"), Ok(None));
        assert_eq!(optional_string(&object, "missing"), Ok(None));
        assert!(optional_string(&object, "d").is_err());
        assert_eq!(
            string_field(&serde_json::json!({"id": "", "n": 1}), "id"),
            None
        );
        assert_eq!(string_field(&Value::Null, "id"), None);
        assert_eq!(sandbox_mode("read-only"), Some(SandboxMode::ReadOnly));
        assert_eq!(sandbox_mode("yolo"), None);
        assert_eq!(
            approval_policy("untrusted"),
            Some(ApprovalPolicy::Untrusted)
        );
        assert_eq!(approval_policy("always"), None);
        assert_eq!(truncate("жжж", 2), "жж");
    }
}
