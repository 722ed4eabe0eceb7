//! The thread compaction workflow plugin (world `workflow`, id `compaction-workflow`).
//!
//! A pure state machine `(state json, event) -> step { state json, actions }`; the host does all
//! I/O, persists the state and performs the actions. Action ids are never reused for a different
//! action within one workflow.
//!
//! **Input** (`start`): `{"threadId": str, "timeoutSeconds": int|null, …}`. `threadId` is
//! required and must be a non-empty string. `timeoutSeconds` is the host's business: it is kept
//! in the state as given but never interpreted. Any other field is ignored. Invalid JSON, a
//! non-object, or a missing/null/empty/non-string `threadId` gives phase `failed` and one `fail
//! {id: "fail", code: "invalid_input"}`.
//!
//! **State** (camelCase JSON): `phase`, `status`, `threadId`, `timeoutSeconds`,
//! `lifecycleActionId`, `turnId`, `report`, `error {code, message}`, `events` (last 50 `{event,
//! phase}`). State that does not parse (or has an unknown phase) gives phase `failed` and `fail
//! {id: "fail-corrupt-state", code: "corrupt_state"}`.
//!
//! **Phases**: `compacting` → `completed` | `failed` | `orphaned`. The last three are terminal:
//! every further event returns the same state, unchanged (nothing is recorded), and no actions.
//!
//! **Events → actions**:
//! - `start` (status `running`): phase `compacting` and exactly `compact-thread {id: "compact",
//!   thread: thread(threadId)}`.
//! - `action-completed` of `compact`: remembers `output.lifecycleActionId` and `output.turnId`
//!   (null when absent, empty, not a string, or when the output is not JSON); phase and status
//!   `completed`, `complete {id: "complete", report: "Thread <threadId> was compacted.",
//!   structured: {"threadId", "lifecycleActionId", "turnId"}}`.
//! - `action-failed` of `compact {code, message}`: phase and status `failed`, `fail {id:
//!   "fail-compact", code, message}` (an empty code becomes `action_failed`).
//! - `app-server-exited`: phase and status `orphaned`, `fail {id: "fail-exit", code:
//!   "orphaned_after_app_server_exit"}`.
//! - Anything else (other action ids, `turn-completed`, `started`, `approved`, `adopted`,
//!   `interaction-*`, `operation-status-changed`): recorded in `events` only.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use workflow_guest::{
    complete, exit_description, handle_event, refuse_input, step, string_field, Action, ErrorInfo,
    Event, EventRecord, Guest, Step, ThreadAction, ThreadRef, WorkflowInfo, WorkflowState,
};

pub use workflow_guest::{FAILED, ORPHANED_CODE};

/// Phase while the compaction runs.
pub const COMPACTING: &str = "compacting";
/// Terminal phase: the thread was compacted.
pub const COMPLETED: &str = "completed";
/// Terminal phase: the app-server exited before the compaction was reported.
pub const ORPHANED: &str = "orphaned";

/// Id of the `compact-thread` action.
const COMPACT_ACTION: &str = "compact";

/// The workflow's input, as given to `start`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// App-server thread id of the thread to compact.
    pub thread_id: String,
    /// Timeout requested by the caller; opaque to the plugin (the host interprets it).
    pub timeout_seconds: Option<Value>,
}

/// The persisted workflow state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct State {
    /// Current phase (see the crate docs).
    pub phase: String,
    /// Finer status: `running`, `completed`, `failed` or `orphaned`.
    pub status: String,
    /// App-server thread id of the thread being compacted (empty only after invalid input).
    pub thread_id: String,
    /// The input's `timeoutSeconds`, kept verbatim for the host.
    pub timeout_seconds: Option<Value>,
    /// Host id of the thread lifecycle action that performed the compaction, once known.
    pub lifecycle_action_id: Option<String>,
    /// App-server turn id of the compaction turn, once known.
    pub turn_id: Option<String>,
    /// The final report, once completed.
    pub report: Option<String>,
    /// Why the workflow failed, if it did.
    pub error: Option<ErrorInfo>,
    /// The last events handled.
    pub events: Vec<EventRecord>,
}

impl WorkflowState for State {
    const PHASES: &'static [&'static str] = &[COMPACTING, COMPLETED, FAILED, ORPHANED];
    const TERMINAL_PHASES: &'static [&'static str] = &[COMPLETED, FAILED, ORPHANED];

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

/// Parses and checks the workflow input.
pub fn parse_input(input: &str) -> Result<Input, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("input is not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("input must be a JSON object".to_string());
    };
    let thread_id = match object.get("threadId") {
        None | Some(Value::Null) => return Err("`threadId` is required".to_string()),
        Some(Value::String(id)) if id.trim().is_empty() => {
            return Err("`threadId` must not be empty".to_string())
        }
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err("`threadId` must be a string".to_string()),
    };
    let timeout_seconds = object
        .get("timeoutSeconds")
        .filter(|v| !v.is_null())
        .cloned();
    Ok(Input {
        thread_id,
        timeout_seconds,
    })
}

/// Static description of the workflow.
pub fn describe() -> WorkflowInfo {
    // Open to extra fields: the host may add its own to the input, and the plugin ignores them.
    let schema = json!({
        "type": "object",
        "required": ["threadId"],
        "properties": {
            "threadId": {"type": "string", "minLength": 1},
            "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 120}
        },
        "additionalProperties": true
    });
    WorkflowInfo {
        name: "thread compaction".to_string(),
        description: "Compacts the history of one existing thread and completes with the \
                      compaction's result."
            .to_string(),
        input_schema: Some(schema.to_string()),
    }
}

/// Starts a workflow from its input.
pub fn start(input: &str) -> Step {
    let mut state = State::default();
    let input = match parse_input(input) {
        Ok(input) => input,
        Err(reason) => return refuse_input(state, reason),
    };
    let actions = vec![Action::CompactThread(ThreadAction {
        id: COMPACT_ACTION.to_string(),
        thread: ThreadRef::Thread(input.thread_id.clone()),
    })];
    state.phase = COMPACTING.to_string();
    state.status = "running".to_string();
    state.thread_id = input.thread_id;
    state.timeout_seconds = input.timeout_seconds;
    state.record("started");
    step(&state, actions)
}

/// Handles one event given the persisted state.
pub fn on_event(state_json: &str, event: Event) -> Step {
    handle_event(state_json, event, |state: &mut State, event| match event {
        Event::ActionCompleted(done) if done.action_id == COMPACT_ACTION => {
            vec![compacted(state, &done.output)]
        }
        Event::ActionFailed(failure) if failure.action_id == COMPACT_ACTION => {
            vec![state.fail_action(failure)]
        }
        Event::AppServerExited(exit) => {
            let message = format!(
                "{} while thread {} was being compacted",
                exit_description(&exit),
                state.thread_id
            );
            vec![state.fail(ORPHANED, ORPHANED, "fail-exit", ORPHANED_CODE, message)]
        }
        // The compaction is reported by its action, not by the turn it ran as; everything else
        // (including other actions' results) is only recorded.
        _ => Vec::new(),
    })
}

/// Completes the workflow from the `compact` action's output.
fn compacted(state: &mut State, output: &str) -> Action {
    // The compaction did happen even if its output is unreadable, so a bad output only loses ids.
    let output = serde_json::from_str::<Value>(output).unwrap_or(Value::Null);
    state.lifecycle_action_id = string_field(&output, "lifecycleActionId");
    state.turn_id = string_field(&output, "turnId");
    state.phase = COMPLETED.to_string();
    state.status = COMPLETED.to_string();
    let report = format!("Thread {} was compacted.", state.thread_id);
    state.report = Some(report.clone());
    let structured = json!({
        "threadId": state.thread_id,
        "lifecycleActionId": state.lifecycle_action_id,
        "turnId": state.turn_id,
    });
    complete(report, Some(structured.to_string()))
}

/// The exported implementation.
pub struct CompactionWorkflow;

impl Guest for CompactionWorkflow {
    fn describe() -> WorkflowInfo {
        describe()
    }

    fn start(input: String) -> Step {
        start(&input)
    }

    fn on_event(state: String, event: Event) -> Step {
        on_event(&state, event)
    }
}

// Exports are only emitted for wasm: their names (`pkg:ns/iface@ver#func`) are not
// valid symbols in a native version script, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
workflow_guest::export_workflow!(CompactionWorkflow);

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_guest::{
        ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, FailAction,
        InteractionAnswer, InteractionInfo, OperationStatus, TurnCompleted, MAX_EVENTS,
    };

    const THREAD: &str = "thr-1";

    /// A valid input with a timeout and a field the plugin does not know.
    fn input() -> String {
        json!({"threadId": THREAD, "timeoutSeconds": 30, "requestedBy": "cli"}).to_string()
    }

    /// Starts through the exported implementation.
    fn begin(input: &str) -> Step {
        <CompactionWorkflow as Guest>::start(input.to_string())
    }

    /// Feeds one event through the exported implementation.
    fn feed(state: &str, event: Event) -> Step {
        <CompactionWorkflow as Guest>::on_event(state.to_string(), event)
    }

    /// Parses a raw state.
    fn parse(state: &str) -> State {
        serde_json::from_str(state).expect("state is valid JSON")
    }

    /// Parses a step's state.
    fn state_of(step: &Step) -> State {
        parse(&step.state)
    }

    /// State right after a valid start.
    fn compacting() -> String {
        let step = begin(&input());
        assert_eq!(state_of(&step).phase, COMPACTING);
        step.state
    }

    /// An action-completed event with a raw output.
    fn completed_raw(action_id: &str, output: &str) -> Event {
        Event::ActionCompleted(ActionOutput {
            action_id: action_id.to_string(),
            output: output.to_string(),
        })
    }

    /// An action-completed event.
    fn completed(action_id: &str, output: Value) -> Event {
        completed_raw(action_id, &output.to_string())
    }

    /// The output the host reports for a successful compaction.
    fn compact_output() -> Value {
        json!({
            "lifecycleActionId": "tla_1",
            "status": "completed",
            "turnId": "turn-9",
            "threadId": THREAD,
        })
    }

    /// An action-failed event.
    fn action_failed(action_id: &str, code: &str, message: &str) -> Event {
        Event::ActionFailed(ActionFailure {
            action_id: action_id.to_string(),
            code: code.to_string(),
            message: message.to_string(),
        })
    }

    /// An app-server exit event.
    fn exit() -> Event {
        Event::AppServerExited(AppServerExit {
            generation: 3,
            code: Some(1),
        })
    }

    fn interaction_pending() -> Event {
        Event::InteractionPending(InteractionInfo {
            interaction_id: "int-1".to_string(),
            kind: "command_approval".to_string(),
            thread_id: THREAD.to_string(),
            payload: "{}".to_string(),
        })
    }

    /// Every event that is only recorded, in the order of [`INFORMATIONAL_NAMES`].
    fn informational_events() -> Vec<Event> {
        vec![
            Event::Started(input()),
            Event::OperationStatusChanged(OperationStatus {
                operation_id: "op-1".to_string(),
                status: "running".to_string(),
            }),
            interaction_pending(),
            Event::InteractionAnswered(InteractionAnswer {
                interaction_id: "int-1".to_string(),
                answer: "{}".to_string(),
            }),
            Event::Approved(Approval {
                action_id: "compact".to_string(),
                approved: true,
                comment: None,
            }),
            Event::Adopted(Adoption {
                thread_id: "thr-9".to_string(),
                details: Some("{}".to_string()),
            }),
            // Even a turn carrying the compact action's id: only the action reports the result.
            Event::TurnCompleted(TurnCompleted {
                action_id: Some("compact".to_string()),
                thread_id: THREAD.to_string(),
                turn_id: "turn-9".to_string(),
                status: "completed".to_string(),
                final_message: None,
                plan_items: Vec::new(),
            }),
            // Actions this workflow never issued.
            completed("other", compact_output()),
            action_failed("other", "policy_denied", "no"),
        ]
    }

    /// Names recorded for [`informational_events`].
    const INFORMATIONAL_NAMES: [&str; 9] = [
        "started",
        "operation-status-changed",
        "interaction-pending",
        "interaction-answered",
        "approved",
        "adopted",
        "turn-completed",
        "action-completed",
        "action-failed",
    ];

    /// One state per terminal phase (and per way of reaching it).
    fn terminal_states() -> Vec<String> {
        vec![
            feed(&compacting(), completed("compact", compact_output())).state,
            feed(&compacting(), action_failed("compact", "c", "m")).state,
            feed(&compacting(), exit()).state,
            begin("not json").state,
            feed("garbage", exit()).state,
        ]
    }

    /// Asserts a step failed with one `fail` action of this id and code, mirrored in the state.
    #[track_caller]
    fn assert_fail(step: &Step, phase: &str, id: &str, code: &str) {
        let state = state_of(step);
        assert_eq!(state.phase, phase);
        assert_eq!(state.status, phase);
        assert_eq!(state.error.as_ref().map(|e| e.code.as_str()), Some(code));
        match step.actions.as_slice() {
            [Action::Fail(fail)] => {
                assert_eq!(fail.id, id);
                assert_eq!(fail.code, code);
                assert!(!fail.message.is_empty());
                assert_eq!(
                    state.error.as_ref().map(|e| e.message.as_str()),
                    Some(fail.message.as_str())
                );
            }
            other => panic!("expected one fail action, got {other:?}"),
        }
    }

    #[test]
    fn start_compacts_the_thread() {
        let step = begin(&input());
        assert_eq!(
            step.actions,
            vec![Action::CompactThread(ThreadAction {
                id: "compact".to_string(),
                thread: ThreadRef::Thread(THREAD.to_string()),
            })]
        );
        let state = state_of(&step);
        assert_eq!(state.phase, COMPACTING);
        assert_eq!(state.status, "running");
        assert_eq!(state.thread_id, THREAD);
        assert_eq!(state.timeout_seconds, Some(json!(30)));
        assert_eq!(state.lifecycle_action_id, None);
        assert_eq!(state.turn_id, None);
        assert_eq!(state.report, None);
        assert_eq!(state.error, None);
        assert_eq!(
            state.events,
            vec![EventRecord {
                event: "started".to_string(),
                phase: COMPACTING.to_string(),
            }]
        );
    }

    #[test]
    fn minimal_input_is_enough() {
        for raw in [
            json!({"threadId": THREAD}),
            json!({"threadId": THREAD, "timeoutSeconds": null}),
        ] {
            let step = begin(&raw.to_string());
            assert_eq!(
                step.actions,
                vec![Action::CompactThread(ThreadAction {
                    id: "compact".to_string(),
                    thread: ThreadRef::Thread(THREAD.to_string()),
                })],
                "{raw}"
            );
            assert_eq!(state_of(&step).timeout_seconds, None);
        }
        // The timeout is the host's to check: the plugin keeps whatever it was given.
        let step = begin(&json!({"threadId": THREAD, "timeoutSeconds": "soon"}).to_string());
        assert_eq!(step.actions.len(), 1);
        assert_eq!(state_of(&step).timeout_seconds, Some(json!("soon")));
    }

    #[test]
    fn invalid_input_fails() {
        for (bad, reason) in [
            ("not json".to_string(), "not valid JSON"),
            ("[]".to_string(), "JSON object"),
            ("\"thr-1\"".to_string(), "JSON object"),
            ("null".to_string(), "JSON object"),
            (json!({}).to_string(), "required"),
            (json!({"threadId": null}).to_string(), "required"),
            (json!({"thread": THREAD}).to_string(), "required"),
            (json!({"threadId": ""}).to_string(), "empty"),
            (json!({"threadId": "  "}).to_string(), "empty"),
            (json!({"threadId": 7}).to_string(), "must be a string"),
            (
                json!({"threadId": [THREAD]}).to_string(),
                "must be a string",
            ),
        ] {
            let step = begin(&bad);
            assert_fail(&step, FAILED, "fail", "invalid_input");
            let [Action::Fail(fail)] = step.actions.as_slice() else {
                unreachable!();
            };
            assert!(fail.message.contains(reason), "{bad}: {}", fail.message);
            let state = state_of(&step);
            assert_eq!(
                state.events,
                vec![EventRecord {
                    event: "started".to_string(),
                    phase: FAILED.to_string(),
                }],
                "{bad}"
            );
        }
    }

    #[test]
    fn completion_completes_with_structured_result() {
        let step = feed(&compacting(), completed("compact", compact_output()));
        let [Action::Complete(complete)] = step.actions.as_slice() else {
            panic!("expected one complete action, got {:?}", step.actions);
        };
        assert_eq!(complete.id, "complete");
        assert_eq!(complete.report, "Thread thr-1 was compacted.");
        let structured: Value =
            serde_json::from_str(complete.structured.as_deref().expect("structured report"))
                .expect("structured report is JSON");
        assert_eq!(
            structured,
            json!({"threadId": THREAD, "lifecycleActionId": "tla_1", "turnId": "turn-9"})
        );
        let state = state_of(&step);
        assert_eq!(state.phase, COMPLETED);
        assert_eq!(state.status, COMPLETED);
        assert_eq!(state.lifecycle_action_id.as_deref(), Some("tla_1"));
        assert_eq!(state.turn_id.as_deref(), Some("turn-9"));
        assert_eq!(state.report.as_deref(), Some("Thread thr-1 was compacted."));
        assert_eq!(state.error, None);
        assert_eq!(
            state.events.last(),
            Some(&EventRecord {
                event: "action-completed".to_string(),
                phase: COMPLETED.to_string(),
            })
        );
    }

    #[test]
    fn odd_completion_outputs_still_complete() {
        for output in [
            "not json",
            "{}",
            "null",
            r#"{"lifecycleActionId":5,"turnId":""}"#,
            r#"{"lifecycleActionId":null,"turnId":null,"status":"completed"}"#,
        ] {
            let step = feed(&compacting(), completed_raw("compact", output));
            let [Action::Complete(complete)] = step.actions.as_slice() else {
                panic!(
                    "{output}: expected one complete action, got {:?}",
                    step.actions
                );
            };
            assert_eq!(complete.report, "Thread thr-1 was compacted.");
            let structured: Value =
                serde_json::from_str(complete.structured.as_deref().unwrap_or_default())
                    .expect("structured report is JSON");
            assert_eq!(
                structured,
                json!({"threadId": THREAD, "lifecycleActionId": null, "turnId": null}),
                "{output}"
            );
            let state = state_of(&step);
            assert_eq!(state.phase, COMPLETED);
            assert_eq!(state.lifecycle_action_id, None);
            assert_eq!(state.turn_id, None);
        }
        // A compaction without a turn still carries its lifecycle id.
        let step = feed(
            &compacting(),
            completed(
                "compact",
                json!({"lifecycleActionId": "tla_2", "turnId": null}),
            ),
        );
        let state = state_of(&step);
        assert_eq!(state.lifecycle_action_id.as_deref(), Some("tla_2"));
        assert_eq!(state.turn_id, None);
    }

    #[test]
    fn compact_failure_fails() {
        let step = feed(
            &compacting(),
            action_failed("compact", "policy_denied", "not allowed"),
        );
        assert_eq!(
            step.actions,
            vec![Action::Fail(FailAction {
                id: "fail-compact".to_string(),
                code: "policy_denied".to_string(),
                message: "not allowed".to_string(),
            })]
        );
        assert_fail(&step, FAILED, "fail-compact", "policy_denied");
        let state = state_of(&step);
        assert_eq!(state.report, None);
        assert_eq!(
            state.events.last().map(|e| e.event.as_str()),
            Some("action-failed")
        );

        // An empty code still gives a code.
        let step = feed(&compacting(), action_failed("compact", "", "rejected"));
        assert_fail(&step, FAILED, "fail-compact", "action_failed");
        let [Action::Fail(fail)] = step.actions.as_slice() else {
            unreachable!();
        };
        assert_eq!(fail.message, "rejected");
    }

    #[test]
    fn app_server_exit_orphans() {
        let step = feed(&compacting(), exit());
        assert_fail(&step, ORPHANED, "fail-exit", ORPHANED_CODE);
        let [Action::Fail(fail)] = step.actions.as_slice() else {
            unreachable!();
        };
        assert!(fail.message.contains("generation 3"), "{}", fail.message);
        assert!(fail.message.contains("exit code 1"), "{}", fail.message);
        assert!(fail.message.contains(THREAD), "{}", fail.message);

        let step = feed(
            &compacting(),
            Event::AppServerExited(AppServerExit {
                generation: 1,
                code: None,
            }),
        );
        assert_fail(&step, ORPHANED, "fail-exit", ORPHANED_CODE);
        assert_eq!(
            state_of(&step).events.last().map(|e| e.event.as_str()),
            Some("app-server-exited")
        );
    }

    #[test]
    fn informational_events_are_recorded_only() {
        let before = parse(&compacting());
        let mut current = compacting();
        for event in informational_events() {
            let step = feed(&current, event);
            assert!(step.actions.is_empty(), "{:?}", step.actions);
            current = step.state;
        }
        let mut after = parse(&current);
        let recorded: Vec<(&str, &str)> = after.events[before.events.len()..]
            .iter()
            .map(|e| (e.event.as_str(), e.phase.as_str()))
            .collect();
        let expected: Vec<(&str, &str)> = INFORMATIONAL_NAMES
            .iter()
            .map(|name| (*name, COMPACTING))
            .collect();
        assert_eq!(recorded, expected);
        // Nothing but the event log changed.
        after.events = before.events.clone();
        assert_eq!(after, before);

        // The compaction still completes afterwards.
        let step = feed(&current, completed("compact", compact_output()));
        assert_eq!(state_of(&step).phase, COMPLETED);
    }

    #[test]
    fn events_are_capped() {
        let mut state = compacting();
        for _ in 0..80 {
            state = feed(&state, interaction_pending()).state;
        }
        let parsed = parse(&state);
        assert_eq!(parsed.events.len(), MAX_EVENTS);
        // The oldest entries (including `started`) were dropped.
        assert!(parsed
            .events
            .iter()
            .all(|e| e.event == "interaction-pending" && e.phase == COMPACTING));

        let step = feed(&state, exit());
        let parsed = state_of(&step);
        assert_eq!(parsed.events.len(), MAX_EVENTS);
        assert_eq!(
            parsed.events.last(),
            Some(&EventRecord {
                event: "app-server-exited".to_string(),
                phase: ORPHANED.to_string(),
            })
        );
    }

    #[test]
    fn terminal_phases_ignore_everything() {
        let states = terminal_states();
        let phases: Vec<String> = states.iter().map(|s| parse(s).phase).collect();
        assert_eq!(phases, [COMPLETED, FAILED, ORPHANED, FAILED, FAILED]);
        for state in states {
            let mut events = informational_events();
            events.extend([
                exit(),
                completed("compact", compact_output()),
                completed_raw("compact", "not json"),
                action_failed("compact", "c", "m"),
            ]);
            for event in events {
                let step = feed(&state, event);
                assert_eq!(step.state, state);
                assert!(step.actions.is_empty(), "{:?}", step.actions);
            }
        }
    }

    #[test]
    fn corrupt_state_fails() {
        for bad in [
            "not json",
            "{}",
            "[]",
            "null",
            r#"{"phase":"dancing"}"#,
            r#"{"phase":"reviewing"}"#,
            r#"{"phase":3}"#,
            r#"{"phase":"compacting","events":"x"}"#,
        ] {
            let step = feed(bad, completed("compact", compact_output()));
            assert_fail(&step, FAILED, "fail-corrupt-state", "corrupt_state");
            let state = state_of(&step);
            assert_eq!(state.report, None);
            assert_eq!(
                state.events,
                vec![EventRecord {
                    event: "corrupt-state".to_string(),
                    phase: FAILED.to_string(),
                }]
            );
            // The replacement state is a valid terminal state.
            let next = feed(&step.state, exit());
            assert_eq!(next.state, step.state);
            assert!(next.actions.is_empty());
        }
    }

    #[test]
    fn state_json_is_camel_case() {
        let step = feed(&compacting(), completed("compact", compact_output()));
        let value: Value = serde_json::from_str(&step.state).expect("state is JSON");
        for key in [
            "phase",
            "status",
            "threadId",
            "timeoutSeconds",
            "lifecycleActionId",
            "turnId",
            "report",
            "error",
            "events",
        ] {
            assert!(value.get(key).is_some(), "missing {key}: {value}");
        }
        assert_eq!(value["threadId"], THREAD);
        assert_eq!(value["timeoutSeconds"], 30);
        assert_eq!(value["lifecycleActionId"], "tla_1");
        assert_eq!(value["turnId"], "turn-9");
        assert_eq!(value["error"], Value::Null);
        assert_eq!(
            value["events"][0],
            json!({"event": "started", "phase": COMPACTING})
        );

        let step = feed(&compacting(), action_failed("compact", "boom", "it broke"));
        let value: Value = serde_json::from_str(&step.state).expect("state is JSON");
        assert_eq!(
            value["error"],
            json!({"code": "boom", "message": "it broke"})
        );
    }

    #[test]
    fn action_ids_are_never_reused() {
        let mut ids = Vec::new();
        let mut push = |step: &Step| {
            for action in &step.actions {
                let id = match action {
                    Action::CompactThread(a) => a.id.clone(),
                    Action::Complete(a) => a.id.clone(),
                    Action::Fail(a) => a.id.clone(),
                    other => panic!("unexpected {other:?}"),
                };
                ids.push(id);
            }
            step.state.clone()
        };
        let mut state = push(&begin(&input()));
        state = push(&feed(&state, interaction_pending()));
        state = push(&feed(&state, completed("compact", compact_output())));
        state = push(&feed(&state, completed("compact", compact_output())));
        push(&feed(&state, exit()));
        assert_eq!(ids, ["compact", "complete"]);
    }

    #[test]
    fn describe_has_an_input_schema() {
        let info = <CompactionWorkflow as Guest>::describe();
        assert_eq!(info.name, "thread compaction");
        assert!(!info.description.is_empty());
        let schema: Value =
            serde_json::from_str(info.input_schema.as_deref().expect("input schema"))
                .expect("schema is JSON");
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["threadId"]));
        assert_eq!(
            schema["properties"]["threadId"],
            json!({"type": "string", "minLength": 1})
        );
        assert_eq!(
            schema["properties"]["timeoutSeconds"],
            json!({"type": "integer", "minimum": 1, "maximum": 120})
        );
        assert_eq!(schema["additionalProperties"], true);
    }
}
