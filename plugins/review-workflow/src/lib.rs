//! The code-review workflow plugin (world `workflow`, id `review-workflow`).
//!
//! A pure state machine `(state json, event) -> step { state json, actions }`; the host does all
//! I/O, persists the state and performs the actions. Action ids are never reused for a different
//! action within one workflow.
//!
//! **Input** (`start`): `{"threadId": str|null, "cwd": str, "instructions": str|null, "model":
//! str|null, "sandbox": "read-only"|"workspace-write"|"danger-full-access"|null,
//! "approvalPolicy": "never"|"on-request"|"on-failure"|"untrusted"|null, "target": any JSON,
//! "delivery": "inline"|"detached"|null}`. `target` and `delivery` are the host's business (its review action
//! names no target of its own, WIT 0.2 `target: none`, so the host reviews the input's): they
//! are kept in `input` but never interpreted. Empty strings count as null. Invalid JSON, a
//! non-object, a missing/empty `cwd`, or a wrongly typed/unknown field value gives phase
//! `failed` and one `fail {id: "fail", code: "invalid_input"}`.
//!
//! **State** (camelCase JSON): `phase`, `status`, `input` (the parsed input), `threadId`,
//! `reviewTurnId`, `reviewThreadId`, `report`, `error {code, message}`, `events` (last 50
//! `{event, phase}`). State that does not parse (or has an unknown phase) gives phase `failed`
//! and `fail {id: "fail-corrupt-state", code: "corrupt_state"}`.
//!
//! **Phases**: `starting_thread` → `starting_review` → `reviewing` → `completed` | `failed` |
//! `orphaned`. The last three are terminal: every further event returns the same state and no
//! actions.
//!
//! **Events → actions**:
//! - `start` (status `running`): without `threadId`, phase `starting_thread` and `start-thread
//!   {id: "thread", settings}` then `start-review {id: "review", thread: action("thread"),
//!   instructions, settings}`; with `threadId`, phase `starting_review` and only `start-review
//!   {id: "review", thread: thread(threadId), …}`. `settings` = `{cwd, sandbox, approval-policy,
//!   model, effort: none, collaboration-mode: none}` from the input.
//! - `action-completed`: of `thread` remembers `output.threadId` (phase `starting_thread` →
//!   `starting_review`); of `review` remembers `output.turnId` as `reviewTurnId` and
//!   `output.threadId` as `reviewThreadId` (and as `threadId` if none is known), phase
//!   `reviewing`. No actions.
//! - `turn-completed` of the review (action-id `review`, or turn-id = `reviewTurnId`): status
//!   `completed` → `completed`, `complete {id: "complete", report: final message or "",
//!   structured: none}`; otherwise `failed`, `fail {id: "fail-review", code: "review_<status>"}`.
//! - `app-server-exited` (any non-terminal phase): phase `orphaned`, `fail {id: "fail-exit",
//!   code: "orphaned_after_app_server_exit"}`.
//! - `action-failed {action-id, code, message}`: `failed`, `fail {id: "fail-<action-id>", code,
//!   message}` (an empty code becomes `action_failed`).
//! - Anything else (other turns, `started`, `approved`, `adopted`, `interaction-*`,
//!   `operation-status-changed`): recorded in `events` only.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use workflow_guest::{
    approval_policy, complete, exit_description, handle_event, optional_string, refuse_input,
    sandbox_mode, step, string_field, truncate, Action, ErrorInfo, Event, EventRecord, Guest,
    StartReviewAction, StartThreadAction, Step, ThreadRef, TurnCompleted, TurnSettings,
    WorkflowInfo, WorkflowState,
};

pub use workflow_guest::{FAILED, ORPHANED_CODE};

/// Phase while the workflow's own thread is being started.
pub const STARTING_THREAD: &str = "starting_thread";
/// Phase while the review is being started (its turn id is not known yet).
pub const STARTING_REVIEW: &str = "starting_review";
/// Phase while the review turn runs.
pub const REVIEWING: &str = "reviewing";
/// Terminal phase: the review completed.
pub const COMPLETED: &str = "completed";
/// Terminal phase: the app-server exited before the review finished.
pub const ORPHANED: &str = "orphaned";

/// Characters of a final message quoted in a failure message.
const EXCERPT_CHARS: usize = 500;
/// Id of the `start-thread` action.
const THREAD_ACTION: &str = "thread";
/// Id of the `start-review` action.
const REVIEW_ACTION: &str = "review";

/// The workflow's input, as given to `start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Input {
    /// Existing thread to review on, if any.
    pub thread_id: Option<String>,
    /// Working directory of the thread and review.
    pub cwd: String,
    /// Review instructions beyond the default, if any.
    pub instructions: Option<String>,
    /// Model, if not the host's default.
    pub model: Option<String>,
    /// Sandbox (`read-only`, `workspace-write`, `danger-full-access`).
    pub sandbox: Option<String>,
    /// Approval policy (`never`, `on-request`, `on-failure`, `untrusted`).
    pub approval_policy: Option<String>,
    /// What to review; opaque to the plugin (the host interprets it).
    pub target: Option<Value>,
    /// `inline` or `detached`; opaque to the plugin (the host interprets it).
    pub delivery: Option<String>,
}

/// The persisted workflow state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct State {
    /// Current phase (see the crate docs).
    pub phase: String,
    /// Finer status: `running`, `completed`, `failed`, `orphaned` or the review turn's status.
    pub status: String,
    /// The workflow's input.
    pub input: Input,
    /// App-server thread id of the workflow's thread, once known.
    pub thread_id: Option<String>,
    /// App-server turn id of the review turn, once known.
    pub review_turn_id: Option<String>,
    /// App-server thread id the review runs on (differs from `threadId` when detached).
    pub review_thread_id: Option<String>,
    /// The final report, once completed.
    pub report: Option<String>,
    /// Why the workflow failed, if it did.
    pub error: Option<ErrorInfo>,
    /// The last events handled.
    pub events: Vec<EventRecord>,
}

impl WorkflowState for State {
    const PHASES: &'static [&'static str] = &[
        STARTING_THREAD,
        STARTING_REVIEW,
        REVIEWING,
        COMPLETED,
        FAILED,
        ORPHANED,
    ];
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

/// Thread and review settings from the input (no effort, no collaboration mode).
fn settings(input: &Input) -> TurnSettings {
    TurnSettings {
        cwd: Some(input.cwd.clone()),
        sandbox: input.sandbox.as_deref().and_then(sandbox_mode),
        approval_policy: input.approval_policy.as_deref().and_then(approval_policy),
        model: input.model.clone(),
        effort: None,
        collaboration_mode: None,
    }
}

/// Reads an optional string field that must be one of `allowed`.
fn optional_enum(
    object: &serde_json::Map<String, Value>,
    key: &str,
    allowed: impl Fn(&str) -> bool,
) -> Result<Option<String>, String> {
    let value = optional_string(object, key)?;
    match &value {
        Some(name) if !allowed(name) => Err(format!("unknown {key} {name:?}")),
        _ => Ok(value),
    }
}

/// Parses and checks the workflow input.
pub fn parse_input(input: &str) -> Result<Input, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("input is not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("input must be a JSON object".to_string());
    };
    let cwd = match optional_string(&object, "cwd")? {
        Some(cwd) if !cwd.trim().is_empty() => cwd,
        _ => return Err("`cwd` is required".to_string()),
    };
    let target = match object.get("target") {
        None | Some(Value::Null) => None,
        Some(target) => Some(target.clone()),
    };
    Ok(Input {
        thread_id: optional_string(&object, "threadId")?,
        cwd,
        instructions: optional_string(&object, "instructions")?,
        model: optional_string(&object, "model")?,
        sandbox: optional_enum(&object, "sandbox", |s| sandbox_mode(s).is_some())?,
        approval_policy: optional_enum(&object, "approvalPolicy", |s| {
            approval_policy(s).is_some()
        })?,
        target,
        delivery: optional_enum(&object, "delivery", |s| matches!(s, "inline" | "detached"))?,
    })
}

/// Static description of the workflow.
pub fn describe() -> WorkflowInfo {
    let schema = json!({
        "type": "object",
        "required": ["cwd"],
        "properties": {
            "threadId": {"type": ["string", "null"]},
            "cwd": {"type": "string", "minLength": 1},
            "instructions": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "sandbox": {"enum": ["read-only", "workspace-write", "danger-full-access", null]},
            "approvalPolicy": {"enum": ["never", "on-request", "on-failure", "untrusted", null]},
            "target": {},
            "delivery": {"enum": ["inline", "detached", null]}
        }
    });
    WorkflowInfo {
        name: "code review".to_string(),
        description: "Starts a thread unless one is given, runs a code review on it and \
                      completes with the review's final message."
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
    let mut actions = Vec::new();
    let thread = match &input.thread_id {
        Some(id) => {
            state.phase = STARTING_REVIEW.to_string();
            ThreadRef::Thread(id.clone())
        }
        None => {
            state.phase = STARTING_THREAD.to_string();
            actions.push(Action::StartThread(StartThreadAction {
                id: THREAD_ACTION.to_string(),
                settings: settings(&input),
            }));
            ThreadRef::Action(THREAD_ACTION.to_string())
        }
    };
    actions.push(Action::StartReview(StartReviewAction {
        id: REVIEW_ACTION.to_string(),
        thread,
        instructions: input.instructions.clone(),
        settings: settings(&input),
        target: None,
    }));
    state.status = "running".to_string();
    state.thread_id = input.thread_id.clone();
    state.input = input;
    state.record("started");
    step(&state, actions)
}

/// Handles one event given the persisted state.
pub fn on_event(state_json: &str, event: Event) -> Step {
    handle_event(state_json, event, |state: &mut State, event| match event {
        Event::ActionCompleted(done) => {
            action_completed(state, &done.action_id, &done.output);
            Vec::new()
        }
        Event::TurnCompleted(turn) => turn_completed(state, turn),
        Event::AppServerExited(exit) => {
            let message = format!(
                "{} while the workflow was {}",
                exit_description(&exit),
                state.phase
            );
            vec![state.fail(ORPHANED, ORPHANED, "fail-exit", ORPHANED_CODE, message)]
        }
        Event::ActionFailed(failure) => vec![state.fail_action(failure)],
        Event::Started(_)
        | Event::OperationStatusChanged(_)
        | Event::InteractionPending(_)
        | Event::InteractionAnswered(_)
        | Event::Approved(_)
        | Event::Adopted(_) => Vec::new(),
    })
}

/// Remembers the thread and turn ids an action produced.
fn action_completed(state: &mut State, action_id: &str, output: &str) {
    let output = serde_json::from_str::<Value>(output).unwrap_or(Value::Null);
    match action_id {
        THREAD_ACTION => {
            if let Some(thread) = string_field(&output, "threadId") {
                state.thread_id = Some(thread);
            }
            if state.phase == STARTING_THREAD {
                state.phase = STARTING_REVIEW.to_string();
            }
        }
        REVIEW_ACTION => {
            if let Some(turn) = string_field(&output, "turnId") {
                state.review_turn_id = Some(turn);
            }
            if let Some(thread) = string_field(&output, "threadId") {
                if state.thread_id.is_none() {
                    state.thread_id = Some(thread.clone());
                }
                state.review_thread_id = Some(thread);
            }
            state.phase = REVIEWING.to_string();
        }
        _ => {}
    }
}

/// Handles a finished turn: only the review turn matters.
fn turn_completed(state: &mut State, turn: TurnCompleted) -> Vec<Action> {
    let is_review = turn.action_id.as_deref() == Some(REVIEW_ACTION)
        || state.review_turn_id.as_deref() == Some(turn.turn_id.as_str());
    if !is_review {
        return Vec::new();
    }
    if state.review_turn_id.is_none() && !turn.turn_id.is_empty() {
        state.review_turn_id = Some(turn.turn_id.clone());
    }
    if state.review_thread_id.is_none() && !turn.thread_id.is_empty() {
        state.review_thread_id = Some(turn.thread_id.clone());
    }
    if turn.status == "completed" {
        let report = turn.final_message.unwrap_or_default();
        state.phase = COMPLETED.to_string();
        state.status = COMPLETED.to_string();
        state.report = Some(report.clone());
        return vec![complete(report, None)];
    }
    let status = if turn.status.is_empty() {
        "unknown"
    } else {
        turn.status.as_str()
    };
    let code = format!("review_{status}");
    let excerpt = truncate(
        turn.final_message.as_deref().unwrap_or("").trim(),
        EXCERPT_CHARS,
    );
    let message = if excerpt.is_empty() {
        format!("the review turn ended with status {status}")
    } else {
        format!("the review turn ended with status {status}: {excerpt}")
    };
    vec![state.fail(FAILED, status, "fail-review", &code, message)]
}

/// The exported implementation.
pub struct ReviewWorkflow;

impl Guest for ReviewWorkflow {
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
workflow_guest::export_workflow!(ReviewWorkflow);

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_guest::{
        ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, ApprovalPolicy,
        CompleteAction, FailAction, InteractionAnswer, InteractionInfo, OperationStatus,
        SandboxMode, MAX_EVENTS,
    };

    const CWD: &str = "/work/a";

    /// A full valid input, optionally on an existing thread.
    fn input(thread: Option<&str>) -> String {
        json!({
            "threadId": thread,
            "cwd": CWD,
            "instructions": "Focus on error handling.",
            "model": "gpt-5-codex",
            "sandbox": "read-only",
            "approvalPolicy": "never",
            "target": {"type": "baseBranch", "branch": "main"},
            "delivery": "inline",
        })
        .to_string()
    }

    /// Starts through the exported implementation.
    fn begin(input: &str) -> Step {
        <ReviewWorkflow as Guest>::start(input.to_string())
    }

    /// Parses a step's state.
    fn state_of(step: &Step) -> State {
        serde_json::from_str(&step.state).expect("state is valid JSON")
    }

    /// Parses a raw state.
    fn parse(state: &str) -> State {
        serde_json::from_str(state).expect("state is valid JSON")
    }

    /// Feeds one event through the exported implementation.
    fn feed(state: &str, event: Event) -> Step {
        <ReviewWorkflow as Guest>::on_event(state.to_string(), event)
    }

    /// A turn-completed event.
    fn turn(action_id: Option<&str>, turn_id: &str, status: &str, message: Option<&str>) -> Event {
        Event::TurnCompleted(TurnCompleted {
            action_id: action_id.map(str::to_string),
            thread_id: "thr-1".to_string(),
            turn_id: turn_id.to_string(),
            status: status.to_string(),
            final_message: message.map(str::to_string),
            plan_items: Vec::new(),
        })
    }

    /// An action-completed event.
    fn completed(action_id: &str, output: Value) -> Event {
        Event::ActionCompleted(ActionOutput {
            action_id: action_id.to_string(),
            output: output.to_string(),
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
            thread_id: "thr-1".to_string(),
            payload: "{}".to_string(),
        })
    }

    /// Every event that is only recorded.
    fn informational_events() -> Vec<Event> {
        vec![
            Event::Started(input(None)),
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
                action_id: "review".to_string(),
                approved: true,
                comment: None,
            }),
            Event::Adopted(Adoption {
                thread_id: "thr-9".to_string(),
                details: Some("{}".to_string()),
            }),
            // A turn that is not the review.
            turn(Some("other"), "turn-other", "completed", Some("x")),
            turn(None, "turn-other", "failed", None),
            // Completion of an action this workflow never issued.
            completed("other", json!({"threadId": "thr-x", "turnId": "turn-x"})),
        ]
    }

    /// State right after starting on a new thread.
    fn starting_thread() -> String {
        begin(&input(None)).state
    }

    /// State after the thread started, before the review's turn id is known.
    fn starting_review() -> String {
        let step = feed(
            &starting_thread(),
            completed("thread", json!({"threadId": "thr-1"})),
        );
        assert_eq!(state_of(&step).phase, STARTING_REVIEW);
        step.state
    }

    /// State with the review running.
    fn reviewing() -> String {
        let step = feed(
            &starting_review(),
            completed("review", json!({"threadId": "thr-1", "turnId": "turn-rev"})),
        );
        assert_eq!(state_of(&step).phase, REVIEWING);
        step.state
    }

    /// One state per non-terminal phase.
    fn non_terminal_states() -> Vec<String> {
        vec![
            starting_thread(),
            begin(&input(Some("thr-0"))).state,
            starting_review(),
            reviewing(),
        ]
    }

    /// One state per terminal phase.
    fn terminal_states() -> Vec<String> {
        vec![
            feed(
                &reviewing(),
                turn(Some("review"), "turn-rev", "completed", Some("ok")),
            )
            .state,
            feed(&reviewing(), action_failed("review", "c", "m")).state,
            feed(&reviewing(), exit()).state,
            begin("not json").state,
            feed("garbage", exit()).state,
        ]
    }

    /// Asserts a step failed with one `fail` action of this id and code.
    #[track_caller]
    fn assert_fail(step: &Step, phase: &str, id: &str, code: &str) {
        let state = state_of(step);
        assert_eq!(state.phase, phase);
        assert_eq!(state.error.as_ref().map(|e| e.code.as_str()), Some(code));
        match step.actions.as_slice() {
            [Action::Fail(fail)] => {
                assert_eq!(fail.id, id);
                assert_eq!(fail.code, code);
                assert_eq!(
                    state.error.as_ref().map(|e| e.message.as_str()),
                    Some(fail.message.as_str())
                );
            }
            other => panic!("expected one fail action, got {other:?}"),
        }
    }

    fn full_settings() -> TurnSettings {
        TurnSettings {
            cwd: Some(CWD.to_string()),
            sandbox: Some(SandboxMode::ReadOnly),
            approval_policy: Some(ApprovalPolicy::Never),
            model: Some("gpt-5-codex".to_string()),
            effort: None,
            collaboration_mode: None,
        }
    }

    #[test]
    fn start_without_thread_starts_thread_then_review() {
        let step = begin(&input(None));
        assert_eq!(
            step.actions,
            vec![
                Action::StartThread(StartThreadAction {
                    id: "thread".to_string(),
                    settings: full_settings(),
                }),
                Action::StartReview(StartReviewAction {
                    id: "review".to_string(),
                    thread: ThreadRef::Action("thread".to_string()),
                    instructions: Some("Focus on error handling.".to_string()),
                    settings: full_settings(),
                    target: None,
                }),
            ]
        );
        let state = state_of(&step);
        assert_eq!(state.phase, STARTING_THREAD);
        assert_eq!(state.status, "running");
        assert_eq!(state.thread_id, None);
        assert_eq!(state.review_turn_id, None);
        assert_eq!(state.error, None);
        assert_eq!(state.input.cwd, CWD);
        assert_eq!(
            state.input.target,
            Some(json!({"type": "baseBranch", "branch": "main"}))
        );
        assert_eq!(state.input.delivery.as_deref(), Some("inline"));
        assert_eq!(
            state.events,
            vec![EventRecord {
                event: "started".to_string(),
                phase: STARTING_THREAD.to_string(),
            }]
        );
    }

    #[test]
    fn start_with_thread_starts_only_review() {
        let step = begin(&input(Some("thr-0")));
        assert_eq!(
            step.actions,
            vec![Action::StartReview(StartReviewAction {
                id: "review".to_string(),
                thread: ThreadRef::Thread("thr-0".to_string()),
                instructions: Some("Focus on error handling.".to_string()),
                settings: full_settings(),
                target: None,
            })]
        );
        let state = state_of(&step);
        assert_eq!(state.phase, STARTING_REVIEW);
        assert_eq!(state.status, "running");
        assert_eq!(state.thread_id.as_deref(), Some("thr-0"));
    }

    #[test]
    fn minimal_input_leaves_settings_to_the_host() {
        for raw in [
            json!({"cwd": CWD}),
            json!({"cwd": CWD, "threadId": null, "instructions": null, "model": null,
                   "sandbox": null, "approvalPolicy": null, "target": null, "delivery": null}),
            json!({"cwd": CWD, "threadId": "", "instructions": "", "model": ""}),
        ] {
            let step = begin(&raw.to_string());
            let bare = TurnSettings {
                cwd: Some(CWD.to_string()),
                sandbox: None,
                approval_policy: None,
                model: None,
                effort: None,
                collaboration_mode: None,
            };
            assert_eq!(
                step.actions,
                vec![
                    Action::StartThread(StartThreadAction {
                        id: "thread".to_string(),
                        settings: bare.clone(),
                    }),
                    Action::StartReview(StartReviewAction {
                        id: "review".to_string(),
                        thread: ThreadRef::Action("thread".to_string()),
                        instructions: None,
                        settings: bare,
                        target: None,
                    }),
                ],
                "{raw}"
            );
            assert_eq!(state_of(&step).input.target, None);
        }
    }

    #[test]
    fn every_sandbox_and_approval_policy_is_mapped() {
        let cases = [
            (
                "read-only",
                SandboxMode::ReadOnly,
                "never",
                ApprovalPolicy::Never,
            ),
            (
                "workspace-write",
                SandboxMode::WorkspaceWrite,
                "on-request",
                ApprovalPolicy::OnRequest,
            ),
            (
                "danger-full-access",
                SandboxMode::DangerFullAccess,
                "on-failure",
                ApprovalPolicy::OnFailure,
            ),
            (
                "read-only",
                SandboxMode::ReadOnly,
                "untrusted",
                ApprovalPolicy::Untrusted,
            ),
        ];
        for (sandbox, mode, approval, policy) in cases {
            let raw = json!({"cwd": CWD, "sandbox": sandbox, "approvalPolicy": approval, "threadId": "t"});
            let step = begin(&raw.to_string());
            let [Action::StartReview(review)] = step.actions.as_slice() else {
                panic!("expected start-review");
            };
            assert_eq!(review.settings.sandbox, Some(mode));
            assert_eq!(review.settings.approval_policy, Some(policy));
        }
    }

    #[test]
    fn target_is_opaque() {
        for target in [json!("HEAD~3..HEAD"), json!(42), json!([1, {"a": null}])] {
            let step = begin(&json!({"cwd": CWD, "target": target}).to_string());
            assert_eq!(step.actions.len(), 2);
            assert_eq!(state_of(&step).input.target, Some(target));
        }
        let step = begin(&json!({"cwd": CWD, "delivery": "detached"}).to_string());
        assert_eq!(step.actions.len(), 2);
        assert_eq!(state_of(&step).input.delivery.as_deref(), Some("detached"));
    }

    #[test]
    fn invalid_input_fails() {
        for bad in [
            "not json".to_string(),
            "[]".to_string(),
            "\"cwd\"".to_string(),
            json!({}).to_string(),
            json!({"cwd": ""}).to_string(),
            json!({"cwd": "   "}).to_string(),
            json!({"cwd": null}).to_string(),
            json!({"cwd": 7}).to_string(),
            json!({"cwd": CWD, "threadId": 1}).to_string(),
            json!({"cwd": CWD, "instructions": ["x"]}).to_string(),
            json!({"cwd": CWD, "model": true}).to_string(),
            json!({"cwd": CWD, "sandbox": "yolo"}).to_string(),
            json!({"cwd": CWD, "approvalPolicy": "always"}).to_string(),
            json!({"cwd": CWD, "delivery": "email"}).to_string(),
        ] {
            let step = begin(&bad);
            assert_fail(&step, FAILED, "fail", "invalid_input");
            let state = state_of(&step);
            assert_eq!(state.status, FAILED);
            assert_eq!(state.events.len(), 1, "{bad}");
        }
    }

    #[test]
    fn thread_completion_is_remembered() {
        let step = feed(
            &starting_thread(),
            completed("thread", json!({"threadId": "thr-1"})),
        );
        assert!(step.actions.is_empty());
        let state = state_of(&step);
        assert_eq!(state.thread_id.as_deref(), Some("thr-1"));
        assert_eq!(state.phase, STARTING_REVIEW);
        assert_eq!(state.status, "running");
        assert_eq!(state.events.last().unwrap().event, "action-completed");
    }

    #[test]
    fn review_completion_is_remembered() {
        let step = feed(
            &starting_review(),
            completed("review", json!({"threadId": "thr-2", "turnId": "turn-rev"})),
        );
        assert!(step.actions.is_empty());
        let state = state_of(&step);
        assert_eq!(state.phase, REVIEWING);
        assert_eq!(state.review_turn_id.as_deref(), Some("turn-rev"));
        assert_eq!(state.review_thread_id.as_deref(), Some("thr-2"));
        // The workflow's own thread is kept (a detached review runs on another thread).
        assert_eq!(state.thread_id.as_deref(), Some("thr-1"));

        // The review can complete before the thread action is reported.
        let step = feed(
            &starting_thread(),
            completed("review", json!({"threadId": "thr-2", "turnId": "turn-rev"})),
        );
        let state = state_of(&step);
        assert_eq!(state.phase, REVIEWING);
        assert_eq!(state.thread_id.as_deref(), Some("thr-2"));

        // On an existing thread.
        let step = feed(
            &begin(&input(Some("thr-0"))).state,
            completed("review", json!({"threadId": "thr-0", "turnId": "turn-rev"})),
        );
        let state = state_of(&step);
        assert_eq!(state.phase, REVIEWING);
        assert_eq!(state.thread_id.as_deref(), Some("thr-0"));
        assert_eq!(state.review_turn_id.as_deref(), Some("turn-rev"));

        // A late thread completion does not move the phase back.
        let step = feed(
            &reviewing(),
            completed("thread", json!({"threadId": "thr-1"})),
        );
        assert_eq!(state_of(&step).phase, REVIEWING);
    }

    #[test]
    fn odd_action_outputs_are_tolerated() {
        for output in ["not json", "{}", r#"{"threadId":5,"turnId":""}"#] {
            let step = feed(
                &starting_thread(),
                Event::ActionCompleted(ActionOutput {
                    action_id: "review".to_string(),
                    output: output.to_string(),
                }),
            );
            assert!(step.actions.is_empty());
            let state = state_of(&step);
            assert_eq!(state.phase, REVIEWING);
            assert_eq!(state.review_turn_id, None);
            assert_eq!(state.thread_id, None);
        }
    }

    #[test]
    fn review_completes_by_action_id() {
        // Also before the review's turn id was reported.
        for state in [starting_review(), reviewing(), starting_thread()] {
            let step = feed(
                &state,
                turn(
                    Some("review"),
                    "turn-rev",
                    "completed",
                    Some("LGTM, 2 nits."),
                ),
            );
            assert_eq!(
                step.actions,
                vec![Action::Complete(CompleteAction {
                    id: "complete".to_string(),
                    report: "LGTM, 2 nits.".to_string(),
                    structured: None,
                })]
            );
            let after = state_of(&step);
            assert_eq!(after.phase, COMPLETED);
            assert_eq!(after.status, COMPLETED);
            assert_eq!(after.report.as_deref(), Some("LGTM, 2 nits."));
            assert_eq!(after.review_turn_id.as_deref(), Some("turn-rev"));
            assert_eq!(after.error, None);
            assert_eq!(
                after.events.last(),
                Some(&EventRecord {
                    event: "turn-completed".to_string(),
                    phase: COMPLETED.to_string(),
                })
            );
        }
    }

    #[test]
    fn review_completes_by_turn_id_without_message() {
        let step = feed(&reviewing(), turn(None, "turn-rev", "completed", None));
        assert_eq!(
            step.actions,
            vec![Action::Complete(CompleteAction {
                id: "complete".to_string(),
                report: String::new(),
                structured: None,
            })]
        );
        assert_eq!(state_of(&step).report.as_deref(), Some(""));
    }

    #[test]
    fn review_failure_fails() {
        for status in ["failed", "interrupted"] {
            let step = feed(
                &reviewing(),
                turn(Some("review"), "turn-rev", status, Some("boom")),
            );
            let code = format!("review_{status}");
            assert_fail(&step, FAILED, "fail-review", &code);
            let state = state_of(&step);
            assert_eq!(state.status, status);
            assert_eq!(state.report, None);
            let [Action::Fail(fail)] = step.actions.as_slice() else {
                unreachable!();
            };
            assert!(fail.message.contains(status), "{}", fail.message);
            assert!(fail.message.contains("boom"), "{}", fail.message);
        }
        // Matched by turn id too.
        let step = feed(&reviewing(), turn(None, "turn-rev", "interrupted", None));
        assert_fail(&step, FAILED, "fail-review", "review_interrupted");
    }

    #[test]
    fn other_turns_are_recorded_only() {
        // Before the review turn id is known, only the action id matches.
        for state in [starting_thread(), starting_review(), reviewing()] {
            let before = parse(&state);
            let step = feed(&state, turn(None, "turn-other", "completed", Some("x")));
            assert!(step.actions.is_empty());
            let after = state_of(&step);
            assert_eq!(after.phase, before.phase);
            assert_eq!(after.review_turn_id, before.review_turn_id);
            assert_eq!(after.events.len(), before.events.len() + 1);
        }
    }

    #[test]
    fn app_server_exit_orphans_every_non_terminal_phase() {
        for state in non_terminal_states() {
            let step = feed(&state, exit());
            assert_fail(&step, ORPHANED, "fail-exit", ORPHANED_CODE);
            let after = state_of(&step);
            assert_eq!(after.status, ORPHANED);
            let [Action::Fail(fail)] = step.actions.as_slice() else {
                unreachable!();
            };
            assert!(fail.message.contains("generation 3"), "{}", fail.message);
            assert!(fail.message.contains(&parse(&state).phase));
        }
        let step = feed(
            &reviewing(),
            Event::AppServerExited(AppServerExit {
                generation: 1,
                code: None,
            }),
        );
        assert_fail(&step, ORPHANED, "fail-exit", ORPHANED_CODE);
    }

    #[test]
    fn action_failure_fails() {
        for (state, id) in [
            (starting_thread(), "thread"),
            (starting_review(), "review"),
            (reviewing(), "review"),
        ] {
            let step = feed(&state, action_failed(id, "policy_denied", "not allowed"));
            let expected_id = format!("fail-{id}");
            assert_fail(&step, FAILED, &expected_id, "policy_denied");
            assert_eq!(
                step.actions,
                vec![Action::Fail(FailAction {
                    id: expected_id,
                    code: "policy_denied".to_string(),
                    message: "not allowed".to_string(),
                })]
            );
            assert_eq!(state_of(&step).status, FAILED);
        }
        // An empty code still gives a code.
        let step = feed(&reviewing(), action_failed("review", "", "?"));
        assert_fail(&step, FAILED, "fail-review", "action_failed");
    }

    #[test]
    fn informational_events_are_recorded_only() {
        for state in non_terminal_states() {
            let before = parse(&state);
            let mut current = state;
            for event in informational_events() {
                let step = feed(&current, event);
                assert!(step.actions.is_empty(), "{:?}", step.actions);
                current = step.state;
            }
            let mut after = parse(&current);
            let names: Vec<&str> = after.events[before.events.len()..]
                .iter()
                .map(|e| e.event.as_str())
                .collect();
            assert_eq!(
                names,
                [
                    "started",
                    "operation-status-changed",
                    "interaction-pending",
                    "interaction-answered",
                    "approved",
                    "adopted",
                    "turn-completed",
                    "turn-completed",
                    "action-completed",
                ]
            );
            // Nothing but the event log changed.
            after.events = before.events.clone();
            assert_eq!(after, before);
        }
    }

    #[test]
    fn events_are_capped() {
        let mut state = reviewing();
        for _ in 0..80 {
            state = feed(&state, interaction_pending()).state;
        }
        let parsed = parse(&state);
        assert_eq!(parsed.events.len(), MAX_EVENTS);
        assert!(parsed
            .events
            .iter()
            .all(|e| e.event == "interaction-pending" && e.phase == REVIEWING));
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
                turn(Some("review"), "turn-rev", "completed", Some("again")),
                turn(None, "turn-rev", "failed", None),
                completed("review", json!({"turnId": "turn-2"})),
                completed("thread", json!({"threadId": "thr-2"})),
                action_failed("review", "c", "m"),
            ]);
            for event in events {
                let step = feed(&state, event);
                assert_eq!(step.state, state);
                assert!(step.actions.is_empty());
            }
        }
    }

    #[test]
    fn corrupt_state_fails() {
        for bad in [
            "not json",
            "{}",
            "[]",
            r#"{"phase":"dancing"}"#,
            r#"{"phase":3}"#,
            r#"{"phase":"reviewing","events":"x"}"#,
        ] {
            let step = feed(bad, interaction_pending());
            assert_fail(&step, FAILED, "fail-corrupt-state", "corrupt_state");
            assert_eq!(state_of(&step).status, FAILED);
            // The replacement state is a valid terminal state.
            let next = feed(&step.state, exit());
            assert_eq!(next.state, step.state);
            assert!(next.actions.is_empty());
        }
    }

    #[test]
    fn state_json_is_camel_case() {
        let step = feed(
            &reviewing(),
            turn(Some("review"), "turn-rev", "failed", None),
        );
        let value: Value = serde_json::from_str(&step.state).unwrap();
        for key in [
            "phase",
            "status",
            "input",
            "threadId",
            "reviewTurnId",
            "reviewThreadId",
            "report",
            "error",
            "events",
        ] {
            assert!(value.get(key).is_some(), "missing {key}: {value}");
        }
        assert_eq!(value["reviewTurnId"], "turn-rev");
        assert_eq!(value["error"]["code"], "review_failed");
        assert!(value["error"]["message"].is_string());
        assert_eq!(value["input"]["approvalPolicy"], "never");
        assert_eq!(value["input"]["cwd"], CWD);
        assert_eq!(
            value["events"][0],
            json!({"event": "started", "phase": STARTING_THREAD})
        );
    }

    #[test]
    fn action_ids_are_never_reused() {
        let mut ids = Vec::new();
        let mut push = |step: &Step| {
            for action in &step.actions {
                let id = match action {
                    Action::StartThread(a) => a.id.clone(),
                    Action::StartReview(a) => a.id.clone(),
                    Action::Complete(a) => a.id.clone(),
                    Action::Fail(a) => a.id.clone(),
                    other => panic!("unexpected {other:?}"),
                };
                ids.push(id);
            }
            step.state.clone()
        };
        let mut state = push(&begin(&input(None)));
        state = push(&feed(
            &state,
            completed("thread", json!({"threadId": "thr-1"})),
        ));
        state = push(&feed(
            &state,
            completed("review", json!({"threadId": "thr-1", "turnId": "turn-rev"})),
        ));
        state = push(&feed(
            &state,
            turn(Some("review"), "turn-rev", "completed", Some("ok")),
        ));
        push(&feed(
            &state,
            turn(Some("review"), "turn-rev", "completed", Some("ok")),
        ));
        assert_eq!(ids, ["thread", "review", "complete"]);
    }

    #[test]
    fn describe_has_an_input_schema() {
        let info = <ReviewWorkflow as Guest>::describe();
        assert_eq!(info.name, "code review");
        let schema: Value = serde_json::from_str(info.input_schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["required"], json!(["cwd"]));
        assert!(schema["properties"]["target"].is_object());
    }
}
