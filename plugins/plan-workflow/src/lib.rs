//! The plan-then-execute workflow plugin (world `workflow`, id `plan-workflow`).
//!
//! A pure state machine `(state json, event) -> step { state json, actions }`; the host does all
//! I/O, persists the state and performs the actions. Action ids are never reused for a different
//! action within one workflow.
//!
//! **Input** (`start`): `{"message": str, "cwd": str, "model": str|null, "sandbox":
//! "read-only"|"workspace-write"|"danger-full-access"|null, "approvalPolicy":
//! "never"|"on-request"|"on-failure"|"untrusted"|null, "threadId": str|null}`. Sandbox and
//! approval floors are the host's job; they are copied into the turn settings. Invalid JSON, a
//! missing/empty `message` or `cwd`, or a wrongly typed/unknown field value gives phase `failed`
//! and one `fail {id: "fail", code: "invalid_input"}`.
//!
//! **State** (camelCase JSON): `phase`, `status`, `input` (the parsed input), `threadId`,
//! `planTurnId`, `plan` (text or null), `planHash` (lowercase hex sha256 of `plan`),
//! `planQuality`, `approvalActionId` (initially `approve-plan`), `adoptions`, `executionTurnId`,
//! `report`, `error {code, message}`, `events` (last 50 `{event, phase}`). State that does not
//! parse (or has an unknown phase) gives phase `failed` and `fail {id: "fail-corrupt-state",
//! code: "corrupt_state"}`.
//!
//! **Phases**: `planning` → `plan_ready` | `plan_needs_review` (| `plan_candidate_found`) →
//! `executing` → `completed` | `failed` | `orphaned_after_app_server_exit`. The last three are
//! terminal: every further event returns the same state and no actions.
//!
//! **Events → actions**:
//! - `start`: phase `planning`; `start-thread {id: "thread"}` unless `threadId` is given, then
//!   `start-turn {id: "plan", thread: action("thread") | thread(threadId), collaboration-mode:
//!   plan}`.
//! - `action-completed`: `output.threadId` of `thread`, `output.turnId` of `plan` / `execute`
//!   are remembered. No actions.
//! - `turn-completed` of the plan turn (action-id `plan` or turn-id = `planTurnId`, phase
//!   `planning`): status ≠ `completed` → `failed`, `fail {id: "fail-plan", code:
//!   "plan_turn_<status>"}`. Otherwise the plan is classified, first match wins: `valid_plan`
//!   (`<proposed_plan>…</proposed_plan>` in the final message, or non-empty plan items as
//!   `1. step` lines), `blocker` ("permission denied", "blocked", "cannot proceed",
//!   "недостаточно прав", "заблокирован"), `question` ("?" plus "could you", "should i",
//!   "do you want", "which ", "уточните"), `partial` (< 300 chars), `needs_review`, `unknown`
//!   (empty). `valid_plan` → `plan_ready` (status `waiting_for_approval`) and
//!   `wait-for-approval {id: approvalActionId, summary: first 200 chars, details: {plan, planHash,
//!   planQuality}}`; `blocker` → `fail {id: "fail-plan", code: "plan_blocked"}`; `unknown` →
//!   `fail {id: "fail-plan", code: "no_plan"}`; the rest → `plan_needs_review`, no actions.
//! - `approved` (phase `plan_ready` and action-id = `approvalActionId`, else ignored): rejected →
//!   `fail {id: "fail-rejected", code: "plan_rejected"}`; approved → `executing` and `start-turn
//!   {id: "execute", thread: thread(threadId) | action("thread"), message: (comment.message or
//!   "Implement the plan.") + "\n\n<approved_plan>\n" + plan + "\n</approved_plan>",
//!   collaboration-mode: default, output-schema: comment.outputSchema}`. The comment is JSON
//!   `{message, outputSchema, sandbox, approvalPolicy}`; absent or invalid fields keep defaults.
//! - `turn-completed` of the execution turn (action-id `execute` or turn-id = `executionTurnId`,
//!   phase `executing`): `completed` → `complete {id: "complete", report: final message}`;
//!   otherwise `fail {id: "fail-execute", code: "execution_<status>"}`.
//! - `adopted` (phases `plan_needs_review`, `plan_candidate_found`, `plan_ready`; details JSON
//!   `{candidateTurnId, plan, planHash}` with a non-empty plan): plan, planHash (computed when
//!   absent), planTurnId set, quality `valid_plan`, phase `plan_ready`, approvalActionId =
//!   `approve-plan-<n>` (n-th adoption), `wait-for-approval` with that id.
//! - `app-server-exited` in `planning` / `executing`: phase `orphaned_after_app_server_exit`,
//!   `fail {id: "fail-exit", code: "orphaned_after_app_server_exit"}`; otherwise recorded only.
//! - `action-failed {action-id, code, message}`: `failed`, `fail {id: "fail-<action-id>", code,
//!   message}`.
//! - `interaction-pending`, `interaction-answered`, `operation-status-changed`, `started`:
//!   recorded in `events` only.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use workflow_guest::{
    approval_policy, complete, exit_description, handle_event, optional_string, refuse_input,
    sandbox_mode, step, string_field, truncate, Action, ApprovalPolicy, CollaborationMode,
    ErrorInfo, Event, EventRecord, Guest, PlanItem, SandboxMode, StartThreadAction,
    StartTurnAction, Step, ThreadRef, TurnCompleted, TurnSettings, WaitForApprovalAction,
    WorkflowInfo, WorkflowState,
};

pub use workflow_guest::FAILED;

/// Phase while the plan turn runs.
pub const PLANNING: &str = "planning";
/// Phase while a valid plan waits for approval.
pub const PLAN_READY: &str = "plan_ready";
/// Phase when the plan turn produced something that is not clearly a plan.
pub const PLAN_NEEDS_REVIEW: &str = "plan_needs_review";
/// Phase when a candidate plan was found elsewhere (accepted for adoption; never set here).
pub const PLAN_CANDIDATE_FOUND: &str = "plan_candidate_found";
/// Phase while the execution turn runs.
pub const EXECUTING: &str = "executing";
/// Terminal phase: the execution turn completed.
pub const COMPLETED: &str = "completed";
/// Terminal phase: the app-server exited while a turn of the workflow was running.
pub const ORPHANED: &str = "orphaned_after_app_server_exit";

/// Characters of the plan shown in the approval summary.
const SUMMARY_CHARS: usize = 200;
/// A plan text shorter than this (in characters) is `partial`.
const PARTIAL_CHARS: usize = 300;
/// Characters of a final message quoted in a failure message.
const EXCERPT_CHARS: usize = 500;
/// Message of the execution turn when the approval does not give one.
const DEFAULT_EXECUTE_MESSAGE: &str = "Implement the plan.";
/// Id of the first approval gate.
const FIRST_APPROVAL_ID: &str = "approve-plan";

/// Markers of a plan turn that cannot go on (matched lower-cased).
const BLOCKER_MARKERS: &[&str] = &[
    "permission denied",
    "blocked",
    "cannot proceed",
    "недостаточно прав",
    "заблокирован",
];
/// Markers of a plan turn that asks the user something (matched lower-cased, with a `?`).
const QUESTION_MARKERS: &[&str] = &["could you", "should i", "do you want", "which ", "уточните"];

/// The workflow's input, as given to `start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Input {
    /// The task.
    pub message: String,
    /// Working directory of the turns.
    pub cwd: String,
    /// Model, if not the host's default.
    pub model: Option<String>,
    /// Sandbox (`read-only`, `workspace-write`, `danger-full-access`).
    pub sandbox: Option<String>,
    /// Approval policy (`never`, `on-request`, `on-failure`, `untrusted`).
    pub approval_policy: Option<String>,
    /// Existing thread to plan on, if any.
    pub thread_id: Option<String>,
}

/// The persisted workflow state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct State {
    /// Current phase (see the crate docs).
    pub phase: String,
    /// Finer status, e.g. `running`, `waiting_for_approval`, a turn's terminal status.
    pub status: String,
    /// The workflow's input.
    pub input: Input,
    /// App-server thread id, once known.
    pub thread_id: Option<String>,
    /// App-server turn id of the plan turn (or of an adopted candidate).
    pub plan_turn_id: Option<String>,
    /// The plan text, once there is a valid plan.
    pub plan: Option<String>,
    /// Lowercase hex sha256 of `plan`.
    pub plan_hash: Option<String>,
    /// Quality of the last plan classified or adopted.
    pub plan_quality: Option<String>,
    /// Id of the `wait-for-approval` action whose answer is awaited.
    pub approval_action_id: String,
    /// Number of adoptions so far.
    pub adoptions: u32,
    /// App-server turn id of the execution turn.
    pub execution_turn_id: Option<String>,
    /// The final report, once completed.
    pub report: Option<String>,
    /// Why the workflow failed, if it did.
    pub error: Option<ErrorInfo>,
    /// The last events handled.
    pub events: Vec<EventRecord>,
}

impl WorkflowState for State {
    const PHASES: &'static [&'static str] = &[
        PLANNING,
        PLAN_READY,
        PLAN_NEEDS_REVIEW,
        PLAN_CANDIDATE_FOUND,
        EXECUTING,
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

impl State {
    /// The `wait-for-approval` action for the current plan.
    fn approval_action(&self) -> Action {
        let plan = self.plan.clone().unwrap_or_default();
        let details = json!({
            "plan": plan,
            "planHash": self.plan_hash,
            "planQuality": self.plan_quality,
        });
        Action::WaitForApproval(WaitForApprovalAction {
            id: self.approval_action_id.clone(),
            summary: truncate(&plan, SUMMARY_CHARS),
            details: Some(details.to_string()),
        })
    }
}

/// Result of classifying a plan turn's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// `valid_plan`, `blocker`, `question`, `partial`, `needs_review` or `unknown`.
    pub quality: &'static str,
    /// The plan text, for `valid_plan`.
    pub plan: Option<String>,
}

/// Classifies a plan turn's final message and plan items (first match wins; see the crate docs).
pub fn classify(final_message: Option<&str>, items: &[PlanItem]) -> Classification {
    let text = final_message.unwrap_or("");
    let valid = |plan: String| Classification {
        quality: "valid_plan",
        plan: Some(plan),
    };
    if let Some(inner) = proposed_plan(text) {
        return valid(inner.to_string());
    }
    let steps: Vec<&str> = items
        .iter()
        .map(|item| item.step.trim())
        .filter(|step| !step.is_empty())
        .collect();
    if !steps.is_empty() {
        let lines: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| format!("{}. {step}", i + 1))
            .collect();
        return valid(lines.join("\n"));
    }
    let trimmed = text.trim();
    let quality = if trimmed.is_empty() {
        "unknown"
    } else {
        let lower = trimmed.to_lowercase();
        if BLOCKER_MARKERS.iter().any(|m| lower.contains(m)) {
            "blocker"
        } else if lower.contains('?') && QUESTION_MARKERS.iter().any(|m| lower.contains(m)) {
            "question"
        } else if trimmed.chars().count() < PARTIAL_CHARS {
            "partial"
        } else {
            "needs_review"
        }
    };
    Classification {
        quality,
        plan: None,
    }
}

/// The trimmed text between the first `<proposed_plan>` and the next `</proposed_plan>`, if
/// both are present and the text is not empty.
fn proposed_plan(text: &str) -> Option<&str> {
    const OPEN: &str = "<proposed_plan>";
    const CLOSE: &str = "</proposed_plan>";
    let start = text.find(OPEN)? + OPEN.len();
    let end = start + text[start..].find(CLOSE)?;
    let inner = text[start..end].trim();
    (!inner.is_empty()).then_some(inner)
}

/// Lowercase hex sha256 of a text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Turn settings from the input, with the given sandbox, approval policy and mode.
fn settings(
    input: &Input,
    sandbox: Option<SandboxMode>,
    approval: Option<ApprovalPolicy>,
    mode: Option<CollaborationMode>,
) -> TurnSettings {
    TurnSettings {
        cwd: Some(input.cwd.clone()),
        sandbox,
        approval_policy: approval,
        model: input.model.clone(),
        effort: None,
        collaboration_mode: mode,
    }
}

/// Parses and checks the workflow input.
pub fn parse_input(input: &str) -> Result<Input, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("input is not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("input must be a JSON object".to_string());
    };
    let required = |key: &str| -> Result<String, String> {
        match optional_string(&object, key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(format!("`{key}` is required")),
        }
    };
    let message = required("message")?;
    let cwd = required("cwd")?;
    let sandbox = optional_string(&object, "sandbox")?;
    if let Some(name) = &sandbox {
        if sandbox_mode(name).is_none() {
            return Err(format!("unknown sandbox {name:?}"));
        }
    }
    let approval_policy_name = optional_string(&object, "approvalPolicy")?;
    if let Some(name) = &approval_policy_name {
        if approval_policy(name).is_none() {
            return Err(format!("unknown approvalPolicy {name:?}"));
        }
    }
    Ok(Input {
        message,
        cwd,
        model: optional_string(&object, "model")?,
        sandbox,
        approval_policy: approval_policy_name,
        thread_id: optional_string(&object, "threadId")?,
    })
}

/// The approval comment's overrides.
#[derive(Debug, Default, PartialEq)]
struct ApprovalComment {
    message: Option<String>,
    output_schema: Option<String>,
    sandbox: Option<SandboxMode>,
    approval_policy: Option<ApprovalPolicy>,
}

/// Parses an approval comment; absent, invalid or wrongly typed fields keep their defaults.
fn parse_comment(comment: Option<&str>) -> ApprovalComment {
    let Some(Ok(Value::Object(object))) = comment.map(serde_json::from_str::<Value>) else {
        return ApprovalComment::default();
    };
    let string = |key: &str| match object.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    };
    let output_schema = match object.get("outputSchema") {
        None | Some(Value::Null) => None,
        // A schema given as JSON text is passed on as it is.
        Some(Value::String(s)) if serde_json::from_str::<Value>(s).is_ok() => Some(s.clone()),
        Some(Value::String(_)) => None,
        Some(schema) => Some(schema.to_string()),
    };
    ApprovalComment {
        message: string("message"),
        output_schema,
        sandbox: string("sandbox").as_deref().and_then(sandbox_mode),
        approval_policy: string("approvalPolicy")
            .as_deref()
            .and_then(approval_policy),
    }
}

/// Static description of the workflow.
pub fn describe() -> WorkflowInfo {
    let schema = json!({
        "type": "object",
        "required": ["message", "cwd"],
        "properties": {
            "message": {"type": "string", "minLength": 1},
            "cwd": {"type": "string", "minLength": 1},
            "model": {"type": ["string", "null"]},
            "sandbox": {"enum": ["read-only", "workspace-write", "danger-full-access", null]},
            "approvalPolicy": {"enum": ["never", "on-request", "on-failure", "untrusted", null]},
            "threadId": {"type": ["string", "null"]}
        }
    });
    WorkflowInfo {
        name: "plan then execute".to_string(),
        description: "Runs a plan-mode turn, waits for approval of a valid plan, then runs the \
                      execution turn with the approved plan."
            .to_string(),
        input_schema: Some(schema.to_string()),
    }
}

/// Starts a workflow from its input.
pub fn start(input: &str) -> Step {
    let mut state = State {
        approval_action_id: FIRST_APPROVAL_ID.to_string(),
        ..State::default()
    };
    let input = match parse_input(input) {
        Ok(input) => input,
        Err(reason) => return refuse_input(state, reason),
    };
    let sandbox = input.sandbox.as_deref().and_then(sandbox_mode);
    let approval = input.approval_policy.as_deref().and_then(approval_policy);
    let mut actions = Vec::new();
    let thread = match &input.thread_id {
        Some(id) => ThreadRef::Thread(id.clone()),
        None => {
            actions.push(Action::StartThread(StartThreadAction {
                id: "thread".to_string(),
                settings: settings(&input, sandbox, approval, None),
            }));
            ThreadRef::Action("thread".to_string())
        }
    };
    actions.push(Action::StartTurn(StartTurnAction {
        id: "plan".to_string(),
        thread,
        message: input.message.clone(),
        settings: settings(&input, sandbox, approval, Some(CollaborationMode::Plan)),
        output_schema: None,
    }));
    state.phase = PLANNING.to_string();
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
        Event::Approved(approval) => approved(
            state,
            &approval.action_id,
            approval.approved,
            approval.comment.as_deref(),
        ),
        Event::Adopted(adoption) => {
            adopted(state, &adoption.thread_id, adoption.details.as_deref())
        }
        Event::AppServerExited(exit) if matches!(state.phase.as_str(), PLANNING | EXECUTING) => {
            let message = format!(
                "{} while the workflow was {}",
                exit_description(&exit),
                state.phase
            );
            vec![state.fail(ORPHANED, "orphaned", "fail-exit", ORPHANED, message)]
        }
        Event::ActionFailed(failure) => vec![state.fail_action(failure)],
        // An exit while waiting for a person orphans nothing: no turn of the workflow was running.
        Event::AppServerExited(_)
        | Event::Started(_)
        | Event::OperationStatusChanged(_)
        | Event::InteractionPending(_)
        | Event::InteractionAnswered(_) => Vec::new(),
    })
}

/// Remembers the thread and turn ids an action produced.
fn action_completed(state: &mut State, action_id: &str, output: &str) {
    let Ok(output) = serde_json::from_str::<Value>(output) else {
        return;
    };
    let field = |key: &str| string_field(&output, key);
    match action_id {
        "thread" => {
            if let Some(thread) = field("threadId") {
                state.thread_id = Some(thread);
            }
        }
        "plan" => {
            if state.plan_turn_id.is_none() {
                state.plan_turn_id = field("turnId");
            }
            if state.thread_id.is_none() {
                state.thread_id = field("threadId");
            }
        }
        "execute" if state.execution_turn_id.is_none() => {
            state.execution_turn_id = field("turnId");
        }
        _ => {}
    }
}

/// Handles a finished turn: the plan turn while planning, the execution turn while executing.
fn turn_completed(state: &mut State, turn: TurnCompleted) -> Vec<Action> {
    if state.thread_id.is_none() && !turn.thread_id.is_empty() {
        state.thread_id = Some(turn.thread_id.clone());
    }
    let action_id = turn.action_id.as_deref();
    let turn_id = Some(turn.turn_id.as_str());
    match state.phase.as_str() {
        PLANNING if action_id == Some("plan") || state.plan_turn_id.as_deref() == turn_id => {
            plan_turn_completed(state, turn)
        }
        EXECUTING
            if action_id == Some("execute") || state.execution_turn_id.as_deref() == turn_id =>
        {
            if state.execution_turn_id.is_none() {
                state.execution_turn_id = Some(turn.turn_id.clone());
            }
            if turn.status == "completed" {
                let report = turn.final_message.unwrap_or_default();
                state.phase = COMPLETED.to_string();
                state.status = COMPLETED.to_string();
                state.report = Some(report.clone());
                vec![complete(report, None)]
            } else {
                let code = format!("execution_{}", turn.status);
                let message = format!("the execution turn ended with status {}", turn.status);
                vec![state.fail(FAILED, &turn.status, "fail-execute", &code, message)]
            }
        }
        _ => Vec::new(),
    }
}

/// Classifies the plan turn's output and moves on accordingly.
fn plan_turn_completed(state: &mut State, turn: TurnCompleted) -> Vec<Action> {
    if state.plan_turn_id.is_none() {
        state.plan_turn_id = Some(turn.turn_id.clone());
    }
    if turn.status != "completed" {
        let code = format!("plan_turn_{}", turn.status);
        let message = format!("the plan turn ended with status {}", turn.status);
        return vec![state.fail(FAILED, &turn.status, "fail-plan", &code, message)];
    }
    let text = turn.final_message.as_deref();
    let classification = classify(text, &turn.plan_items);
    state.plan_quality = Some(classification.quality.to_string());
    let excerpt = truncate(text.unwrap_or("").trim(), EXCERPT_CHARS);
    match (classification.quality, classification.plan) {
        ("valid_plan", Some(plan)) => {
            state.plan_hash = Some(sha256_hex(&plan));
            state.plan = Some(plan);
            state.phase = PLAN_READY.to_string();
            state.status = "waiting_for_approval".to_string();
            vec![state.approval_action()]
        }
        ("blocker", _) => {
            let message = format!("the plan turn reported a blocker: {excerpt}");
            vec![state.fail(FAILED, FAILED, "fail-plan", "plan_blocked", message)]
        }
        ("unknown", _) => {
            let message = "the plan turn completed without a plan".to_string();
            vec![state.fail(FAILED, FAILED, "fail-plan", "no_plan", message)]
        }
        _ => {
            state.phase = PLAN_NEEDS_REVIEW.to_string();
            state.status = "needs_review".to_string();
            Vec::new()
        }
    }
}

/// Handles the answer to the approval gate.
fn approved(
    state: &mut State,
    action_id: &str,
    approved: bool,
    comment: Option<&str>,
) -> Vec<Action> {
    if state.phase != PLAN_READY || action_id != state.approval_action_id {
        return Vec::new();
    }
    if !approved {
        let message = match comment.map(str::trim).filter(|c| !c.is_empty()) {
            Some(comment) => format!("the plan was rejected: {comment}"),
            None => "the plan was rejected".to_string(),
        };
        return vec![state.fail(
            FAILED,
            "rejected",
            "fail-rejected",
            "plan_rejected",
            message,
        )];
    }
    let comment = parse_comment(comment);
    let input = &state.input;
    let sandbox = comment
        .sandbox
        .or_else(|| input.sandbox.as_deref().and_then(sandbox_mode));
    let approval = comment
        .approval_policy
        .or_else(|| input.approval_policy.as_deref().and_then(approval_policy));
    let thread = match &state.thread_id {
        Some(id) => ThreadRef::Thread(id.clone()),
        None => ThreadRef::Action("thread".to_string()),
    };
    let message = format!(
        "{}\n\n<approved_plan>\n{}\n</approved_plan>",
        comment
            .message
            .as_deref()
            .unwrap_or(DEFAULT_EXECUTE_MESSAGE),
        state.plan.as_deref().unwrap_or("")
    );
    let action = Action::StartTurn(StartTurnAction {
        id: "execute".to_string(),
        thread,
        message,
        settings: settings(input, sandbox, approval, Some(CollaborationMode::Default)),
        output_schema: comment.output_schema,
    });
    state.phase = EXECUTING.to_string();
    state.status = "running".to_string();
    vec![action]
}

/// Adopts a candidate plan found outside the plan turn.
fn adopted(state: &mut State, thread_id: &str, details: Option<&str>) -> Vec<Action> {
    if !matches!(
        state.phase.as_str(),
        PLAN_NEEDS_REVIEW | PLAN_CANDIDATE_FOUND | PLAN_READY
    ) {
        return Vec::new();
    }
    let Some(Ok(details)) = details.map(serde_json::from_str::<Value>) else {
        return Vec::new();
    };
    let field = |key: &str| {
        details
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let Some(plan) = field("plan") else {
        return Vec::new();
    };
    state.plan_hash = Some(field("planHash").unwrap_or_else(|| sha256_hex(&plan)));
    state.plan = Some(plan);
    if let Some(turn) = field("candidateTurnId") {
        state.plan_turn_id = Some(turn);
    }
    if state.thread_id.is_none() && !thread_id.is_empty() {
        state.thread_id = Some(thread_id.to_string());
    }
    state.plan_quality = Some("valid_plan".to_string());
    state.adoptions += 1;
    state.approval_action_id = format!("{FIRST_APPROVAL_ID}-{}", state.adoptions);
    state.phase = PLAN_READY.to_string();
    state.status = "waiting_for_approval".to_string();
    vec![state.approval_action()]
}

/// The exported implementation.
pub struct PlanWorkflow;

impl Guest for PlanWorkflow {
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
workflow_guest::export_workflow!(PlanWorkflow);

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_guest::{
        ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, CompleteAction,
        InteractionAnswer, InteractionInfo, OperationStatus, MAX_EVENTS,
    };

    const CWD: &str = "/work/a";

    /// A valid input, optionally on an existing thread.
    fn input(thread: Option<&str>) -> String {
        json!({
            "message": "Add a README",
            "cwd": CWD,
            "model": "gpt-5-codex",
            "sandbox": "workspace-write",
            "approvalPolicy": "on-request",
            "threadId": thread,
        })
        .to_string()
    }

    /// Parses a step's state.
    fn state_of(step: &Step) -> State {
        serde_json::from_str(&step.state).expect("state is valid JSON")
    }

    /// Feeds one event through the exported implementation.
    fn feed(state: &str, event: Event) -> Step {
        <PlanWorkflow as Guest>::on_event(state.to_string(), event)
    }

    /// A turn-completed event.
    fn turn(
        action_id: Option<&str>,
        turn_id: &str,
        status: &str,
        message: Option<&str>,
        items: &[&str],
    ) -> Event {
        Event::TurnCompleted(TurnCompleted {
            action_id: action_id.map(str::to_string),
            thread_id: "thr-1".to_string(),
            turn_id: turn_id.to_string(),
            status: status.to_string(),
            final_message: message.map(str::to_string),
            plan_items: items
                .iter()
                .map(|step| PlanItem {
                    step: step.to_string(),
                    status: "pending".to_string(),
                })
                .collect(),
        })
    }

    /// The plan turn completing with a message.
    fn plan_done(message: &str) -> Event {
        turn(Some("plan"), "turn-plan", "completed", Some(message), &[])
    }

    /// An action-completed event.
    fn completed(action_id: &str, output: Value) -> Event {
        Event::ActionCompleted(ActionOutput {
            action_id: action_id.to_string(),
            output: output.to_string(),
        })
    }

    /// An approval event.
    fn approval(action_id: &str, approved: bool, comment: Option<&str>) -> Event {
        Event::Approved(Approval {
            action_id: action_id.to_string(),
            approved,
            comment: comment.map(str::to_string),
        })
    }

    /// An adoption event with these details.
    fn adoption(details: Value) -> Event {
        Event::Adopted(Adoption {
            thread_id: "thr-1".to_string(),
            details: Some(details.to_string()),
        })
    }

    /// An app-server exit event.
    fn exit() -> Event {
        Event::AppServerExited(AppServerExit {
            generation: 3,
            code: Some(1),
        })
    }

    /// Planning state after the thread and plan turn have started.
    fn planning() -> String {
        let step = <PlanWorkflow as Guest>::start(input(None));
        let step = feed(
            &step.state,
            completed("thread", json!({"threadId": "thr-1"})),
        );
        feed(
            &step.state,
            completed("plan", json!({"turnId": "turn-plan"})),
        )
        .state
    }

    /// State with a valid plan waiting for approval.
    fn ready() -> String {
        let step = feed(
            &planning(),
            plan_done("<proposed_plan>\n1. Write it\n2. Check it\n</proposed_plan>"),
        );
        assert_eq!(state_of(&step).phase, PLAN_READY);
        step.state
    }

    /// State with the execution turn running.
    fn executing() -> String {
        let step = feed(&ready(), approval("approve-plan", true, None));
        let step = feed(
            &step.state,
            completed("execute", json!({"turnId": "turn-exec"})),
        );
        assert_eq!(state_of(&step).phase, EXECUTING);
        step.state
    }

    /// State in plan_needs_review.
    fn needs_review() -> String {
        let step = feed(
            &planning(),
            plan_done("Which file should I edit? Could you say?"),
        );
        assert_eq!(state_of(&step).phase, PLAN_NEEDS_REVIEW);
        step.state
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
            }
            other => panic!("expected one fail action, got {other:?}"),
        }
    }

    fn expected_settings(
        sandbox: Option<SandboxMode>,
        approval: Option<ApprovalPolicy>,
        mode: Option<CollaborationMode>,
    ) -> TurnSettings {
        TurnSettings {
            cwd: Some(CWD.to_string()),
            sandbox,
            approval_policy: approval,
            model: Some("gpt-5-codex".to_string()),
            effort: None,
            collaboration_mode: mode,
        }
    }

    #[test]
    fn start_without_thread_starts_thread_then_plan_turn() {
        let step = <PlanWorkflow as Guest>::start(input(None));
        let sandbox = Some(SandboxMode::WorkspaceWrite);
        let approval = Some(ApprovalPolicy::OnRequest);
        assert_eq!(
            step.actions,
            vec![
                Action::StartThread(StartThreadAction {
                    id: "thread".to_string(),
                    settings: expected_settings(sandbox, approval, None),
                }),
                Action::StartTurn(StartTurnAction {
                    id: "plan".to_string(),
                    thread: ThreadRef::Action("thread".to_string()),
                    message: "Add a README".to_string(),
                    settings: expected_settings(sandbox, approval, Some(CollaborationMode::Plan)),
                    output_schema: None,
                }),
            ]
        );
        let state = state_of(&step);
        assert_eq!(state.phase, PLANNING);
        assert_eq!(state.approval_action_id, "approve-plan");
        assert_eq!(state.plan, None);
        assert_eq!(state.events.len(), 1);
    }

    #[test]
    fn start_with_thread_plans_on_it() {
        let step = <PlanWorkflow as Guest>::start(input(Some("thr-9")));
        match step.actions.as_slice() {
            [Action::StartTurn(turn)] => {
                assert_eq!(turn.id, "plan");
                assert_eq!(turn.thread, ThreadRef::Thread("thr-9".to_string()));
                assert_eq!(
                    turn.settings.collaboration_mode,
                    Some(CollaborationMode::Plan)
                );
            }
            other => panic!("unexpected actions {other:?}"),
        }
        assert_eq!(state_of(&step).thread_id.as_deref(), Some("thr-9"));
    }

    #[test]
    fn start_with_null_settings_keeps_defaults() {
        let step = <PlanWorkflow as Guest>::start(
            json!({"message": "m", "cwd": CWD, "model": null, "sandbox": null,
                   "approvalPolicy": null, "threadId": null})
            .to_string(),
        );
        let Action::StartThread(thread) = &step.actions[0] else {
            panic!("expected start-thread");
        };
        assert_eq!(thread.settings.sandbox, None);
        assert_eq!(thread.settings.approval_policy, None);
        assert_eq!(thread.settings.model, None);
        assert_eq!(thread.settings.cwd.as_deref(), Some(CWD));
    }

    #[test]
    fn invalid_input_fails() {
        for bad in [
            "not json".to_string(),
            "[]".to_string(),
            json!({"cwd": CWD}).to_string(),
            json!({"message": "m"}).to_string(),
            json!({"message": "", "cwd": CWD}).to_string(),
            json!({"message": 1, "cwd": CWD}).to_string(),
            json!({"message": "m", "cwd": CWD, "sandbox": "yolo"}).to_string(),
            json!({"message": "m", "cwd": CWD, "approvalPolicy": "sometimes"}).to_string(),
            json!({"message": "m", "cwd": CWD, "threadId": 5}).to_string(),
        ] {
            let step = <PlanWorkflow as Guest>::start(bad.clone());
            assert_fail(&step, FAILED, "fail", "invalid_input");
            // The failed state is terminal.
            let next = feed(&step.state, plan_done("<proposed_plan>x</proposed_plan>"));
            assert_eq!(next.state, step.state, "{bad}");
            assert!(next.actions.is_empty());
        }
    }

    #[test]
    fn action_completed_remembers_ids() {
        let state = state_of(&Step {
            state: planning(),
            actions: Vec::new(),
        });
        assert_eq!(state.thread_id.as_deref(), Some("thr-1"));
        assert_eq!(state.plan_turn_id.as_deref(), Some("turn-plan"));
        let step = feed(&executing(), interaction_pending());
        assert_eq!(
            state_of(&step).execution_turn_id.as_deref(),
            Some("turn-exec")
        );
        // Garbage output is ignored.
        let step = feed(
            &planning(),
            Event::ActionCompleted(ActionOutput {
                action_id: "thread".to_string(),
                output: "nope".to_string(),
            }),
        );
        assert!(step.actions.is_empty());
        assert_eq!(state_of(&step).thread_id.as_deref(), Some("thr-1"));
    }

    #[test]
    fn valid_plan_via_tag_waits_for_approval() {
        let step = feed(
            &planning(),
            plan_done("Here it is.\n<proposed_plan>\n  abc  \n</proposed_plan>\nDone?"),
        );
        let state = state_of(&step);
        assert_eq!(state.phase, PLAN_READY);
        assert_eq!(state.status, "waiting_for_approval");
        assert_eq!(state.plan.as_deref(), Some("abc"));
        let hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(state.plan_hash.as_deref(), Some(hash));
        assert_eq!(state.plan_quality.as_deref(), Some("valid_plan"));
        match step.actions.as_slice() {
            [Action::WaitForApproval(wait)] => {
                assert_eq!(wait.id, "approve-plan");
                assert_eq!(wait.summary, "abc");
                let details: Value = serde_json::from_str(wait.details.as_deref().unwrap())
                    .expect("details are JSON");
                assert_eq!(
                    details,
                    json!({"plan": "abc", "planHash": hash, "planQuality": "valid_plan"})
                );
            }
            other => panic!("unexpected actions {other:?}"),
        }
    }

    #[test]
    fn summary_is_first_200_chars() {
        let plan = "я".repeat(250);
        let step = feed(
            &planning(),
            plan_done(&format!("<proposed_plan>{plan}</proposed_plan>")),
        );
        let Action::WaitForApproval(wait) = &step.actions[0] else {
            panic!("expected wait-for-approval");
        };
        assert_eq!(wait.summary.chars().count(), 200);
    }

    #[test]
    fn valid_plan_via_items() {
        let step = feed(
            &planning(),
            turn(
                Some("plan"),
                "turn-plan",
                "completed",
                None,
                &["Write it", " ", "Check it"],
            ),
        );
        let state = state_of(&step);
        assert_eq!(state.phase, PLAN_READY);
        assert_eq!(state.plan.as_deref(), Some("1. Write it\n2. Check it"));
        assert_eq!(
            state.plan_hash.as_deref(),
            Some(sha256_hex("1. Write it\n2. Check it").as_str())
        );
        assert!(
            matches!(step.actions.as_slice(), [Action::WaitForApproval(w)] if w.id == "approve-plan")
        );
    }

    #[test]
    fn plan_turn_matched_by_turn_id() {
        // No action id: the turn id decides; an unrelated turn is only recorded.
        let other = feed(
            &planning(),
            turn(
                None,
                "turn-other",
                "completed",
                Some("<proposed_plan>x</proposed_plan>"),
                &[],
            ),
        );
        assert!(other.actions.is_empty());
        assert_eq!(state_of(&other).phase, PLANNING);
        let step = feed(
            &other.state,
            turn(
                None,
                "turn-plan",
                "completed",
                Some("<proposed_plan>x</proposed_plan>"),
                &[],
            ),
        );
        assert_eq!(state_of(&step).phase, PLAN_READY);
    }

    #[test]
    fn blocker_fails_the_plan() {
        for text in [
            "I got Permission denied on src/",
            "The task is blocked by a missing token.",
            "Не могу: недостаточно прав.",
        ] {
            let step = feed(&planning(), plan_done(text));
            assert_fail(&step, FAILED, "fail-plan", "plan_blocked");
            assert_eq!(state_of(&step).plan_quality.as_deref(), Some("blocker"));
        }
    }

    #[test]
    fn tag_wins_over_blocker_words() {
        let step = feed(
            &planning(),
            plan_done("<proposed_plan>1. Fix the blocked queue</proposed_plan>"),
        );
        assert_eq!(state_of(&step).phase, PLAN_READY);
    }

    #[test]
    fn question_partial_and_long_text_need_review() {
        let long = "word ".repeat(80);
        for (text, quality) in [
            ("Which file should I edit?", "question"),
            ("Уточните, пожалуйста, какой каталог?", "question"),
            ("I looked around a bit.", "partial"),
            ("Is this fine?", "partial"),
            (long.as_str(), "needs_review"),
        ] {
            let step = feed(&planning(), plan_done(text));
            let state = state_of(&step);
            assert!(step.actions.is_empty(), "{text}");
            assert_eq!(state.phase, PLAN_NEEDS_REVIEW, "{text}");
            assert_eq!(state.plan_quality.as_deref(), Some(quality), "{text}");
            assert_eq!(state.plan, None);
        }
    }

    #[test]
    fn empty_plan_turn_fails_with_no_plan() {
        for message in [None, Some("  "), Some("<proposed_plan> </proposed_plan>")] {
            let step = feed(
                &planning(),
                turn(Some("plan"), "turn-plan", "completed", message, &[]),
            );
            // An empty tag is not a plan, and its text is short: only truly empty text is unknown.
            if message == Some("<proposed_plan> </proposed_plan>") {
                assert_eq!(state_of(&step).phase, PLAN_NEEDS_REVIEW);
            } else {
                assert_fail(&step, FAILED, "fail-plan", "no_plan");
            }
        }
    }

    #[test]
    fn unsuccessful_plan_turn_fails() {
        let step = feed(
            &planning(),
            turn(Some("plan"), "turn-plan", "interrupted", None, &[]),
        );
        assert_fail(&step, FAILED, "fail-plan", "plan_turn_interrupted");
        assert_eq!(state_of(&step).status, "interrupted");
    }

    #[test]
    fn rejection_fails() {
        let step = feed(&ready(), approval("approve-plan", false, Some("too risky")));
        assert_fail(&step, FAILED, "fail-rejected", "plan_rejected");
        assert!(state_of(&step).error.unwrap().message.contains("too risky"));
    }

    #[test]
    fn approval_starts_execution() {
        let step = feed(&ready(), approval("approve-plan", true, None));
        let state = state_of(&step);
        assert_eq!(state.phase, EXECUTING);
        assert_eq!(
            step.actions,
            vec![Action::StartTurn(StartTurnAction {
                id: "execute".to_string(),
                thread: ThreadRef::Thread("thr-1".to_string()),
                message: "Implement the plan.\n\n<approved_plan>\n1. Write it\n2. Check it\n</approved_plan>"
                    .to_string(),
                settings: expected_settings(
                    Some(SandboxMode::WorkspaceWrite),
                    Some(ApprovalPolicy::OnRequest),
                    Some(CollaborationMode::Default)
                ),
                output_schema: None,
            })]
        );
    }

    #[test]
    fn approval_comment_overrides() {
        let schema = json!({"type": "object", "additionalProperties": false});
        let comment = json!({
            "message": "Go ahead.",
            "outputSchema": schema,
            "sandbox": "read-only",
            "approvalPolicy": "never",
        })
        .to_string();
        let step = feed(&ready(), approval("approve-plan", true, Some(&comment)));
        let Action::StartTurn(turn) = &step.actions[0] else {
            panic!("expected start-turn");
        };
        assert!(turn.message.starts_with("Go ahead.\n\n<approved_plan>\n"));
        assert_eq!(turn.settings.sandbox, Some(SandboxMode::ReadOnly));
        assert_eq!(turn.settings.approval_policy, Some(ApprovalPolicy::Never));
        let given: Value = serde_json::from_str(turn.output_schema.as_deref().unwrap()).unwrap();
        assert_eq!(given, schema);

        // An invalid comment (or invalid fields) keeps the defaults.
        for comment in [
            "not json",
            r#"{"sandbox":"yolo","message":7,"outputSchema":null}"#,
        ] {
            let step = feed(&ready(), approval("approve-plan", true, Some(comment)));
            let Action::StartTurn(turn) = &step.actions[0] else {
                panic!("expected start-turn");
            };
            assert!(turn.message.starts_with("Implement the plan."));
            assert_eq!(turn.settings.sandbox, Some(SandboxMode::WorkspaceWrite));
            assert_eq!(turn.output_schema, None);
        }
    }

    #[test]
    fn execution_uses_thread_action_when_thread_unknown() {
        // No action-completed for the thread and no thread id anywhere yet.
        let start = <PlanWorkflow as Guest>::start(input(None));
        let mut state = state_of(&start);
        state.phase = PLAN_READY.to_string();
        state.plan = Some("p".to_string());
        let json = serde_json::to_string(&state).unwrap();
        let step = feed(&json, approval("approve-plan", true, None));
        let Action::StartTurn(turn) = &step.actions[0] else {
            panic!("expected start-turn");
        };
        assert_eq!(turn.thread, ThreadRef::Action("thread".to_string()));
    }

    #[test]
    fn approval_is_idempotent_and_gated() {
        // Wrong id or wrong phase: nothing.
        let wrong = feed(&ready(), approval("approve-plan-7", true, None));
        assert!(wrong.actions.is_empty());
        assert_eq!(state_of(&wrong).phase, PLAN_READY);
        let early = feed(&planning(), approval("approve-plan", true, None));
        assert!(early.actions.is_empty());
        assert_eq!(state_of(&early).phase, PLANNING);
        // A repeated approval (or a late rejection) after execution started does nothing.
        for repeat in [true, false] {
            let again = feed(&executing(), approval("approve-plan", repeat, None));
            assert!(again.actions.is_empty());
            assert_eq!(state_of(&again).phase, EXECUTING);
        }
    }

    #[test]
    fn execution_completes() {
        let step = feed(
            &executing(),
            turn(
                Some("execute"),
                "turn-exec",
                "completed",
                Some("All done."),
                &[],
            ),
        );
        let state = state_of(&step);
        assert_eq!(state.phase, COMPLETED);
        assert_eq!(state.report.as_deref(), Some("All done."));
        assert_eq!(
            step.actions,
            vec![Action::Complete(CompleteAction {
                id: "complete".to_string(),
                report: "All done.".to_string(),
                structured: None,
            })]
        );
        // Matched by turn id, without a final message.
        let step = feed(
            &executing(),
            turn(None, "turn-exec", "completed", None, &[]),
        );
        assert!(matches!(step.actions.as_slice(), [Action::Complete(c)] if c.report.is_empty()));
    }

    #[test]
    fn execution_failure_fails() {
        let step = feed(
            &executing(),
            turn(Some("execute"), "turn-exec", "failed", None, &[]),
        );
        assert_fail(&step, FAILED, "fail-execute", "execution_failed");
        // A late duplicate of the plan turn does not disturb execution.
        let step = feed(&executing(), plan_done("<proposed_plan>y</proposed_plan>"));
        assert!(step.actions.is_empty());
        assert_eq!(state_of(&step).phase, EXECUTING);
    }

    #[test]
    fn adoption_from_needs_review() {
        let details = json!({"candidateTurnId": "turn-c", "plan": "1. Do it", "planHash": "h1"});
        let step = feed(&needs_review(), adoption(details));
        let state = state_of(&step);
        assert_eq!(state.phase, PLAN_READY);
        assert_eq!(state.plan.as_deref(), Some("1. Do it"));
        assert_eq!(state.plan_hash.as_deref(), Some("h1"));
        assert_eq!(state.plan_turn_id.as_deref(), Some("turn-c"));
        assert_eq!(state.plan_quality.as_deref(), Some("valid_plan"));
        assert_eq!(state.approval_action_id, "approve-plan-1");
        assert!(
            matches!(step.actions.as_slice(), [Action::WaitForApproval(w)] if w.id == "approve-plan-1" && w.summary == "1. Do it")
        );

        // A second adoption gets a fresh id; the old gate is then ignored.
        let second = feed(&step.state, adoption(json!({"plan": "2. Other"})));
        let state2 = state_of(&second);
        assert_eq!(state2.approval_action_id, "approve-plan-2");
        assert_eq!(
            state2.plan_hash.as_deref(),
            Some(sha256_hex("2. Other").as_str())
        );
        assert!(
            matches!(second.actions.as_slice(), [Action::WaitForApproval(w)] if w.id == "approve-plan-2")
        );
        let stale = feed(&second.state, approval("approve-plan-1", true, None));
        assert!(stale.actions.is_empty());
        let go = feed(&second.state, approval("approve-plan-2", true, None));
        assert!(
            matches!(go.actions.as_slice(), [Action::StartTurn(t)] if t.message.contains("2. Other"))
        );

        // Adopting over a ready plan replaces the original gate too.
        let over = feed(&ready(), adoption(json!({"plan": "3. Third"})));
        assert_eq!(state_of(&over).approval_action_id, "approve-plan-1");
        assert!(feed(&over.state, approval("approve-plan", true, None))
            .actions
            .is_empty());
    }

    #[test]
    fn adoption_refused_outside_review_phases_or_without_plan() {
        let details = json!({"candidateTurnId": "turn-c", "plan": "1. Do it"});
        for state in [planning(), executing()] {
            let step = feed(&state, adoption(details.clone()));
            assert!(step.actions.is_empty());
            assert_ne!(state_of(&step).phase, PLAN_READY);
        }
        for bad in [json!({"candidateTurnId": "turn-c"}), json!({"plan": "  "})] {
            let step = feed(&needs_review(), adoption(bad));
            assert!(step.actions.is_empty());
            assert_eq!(state_of(&step).phase, PLAN_NEEDS_REVIEW);
        }
        let none = feed(
            &needs_review(),
            Event::Adopted(Adoption {
                thread_id: "thr-1".to_string(),
                details: None,
            }),
        );
        assert!(none.actions.is_empty());
    }

    #[test]
    fn app_server_exit_orphans_running_turns() {
        for state in [planning(), executing()] {
            let step = feed(&state, exit());
            assert_fail(&step, ORPHANED, "fail-exit", ORPHANED);
        }
        for state in [ready(), needs_review()] {
            let step = feed(&state, exit());
            assert!(step.actions.is_empty());
            let before = state_of(&Step {
                state,
                actions: Vec::new(),
            });
            assert_eq!(state_of(&step).phase, before.phase);
        }
    }

    #[test]
    fn action_failure_fails() {
        let step = feed(
            &planning(),
            Event::ActionFailed(ActionFailure {
                action_id: "plan".to_string(),
                code: "policy_denied".to_string(),
                message: "no".to_string(),
            }),
        );
        assert_fail(&step, FAILED, "fail-plan", "policy_denied");
        let step = feed(
            &executing(),
            Event::ActionFailed(ActionFailure {
                action_id: "execute".to_string(),
                code: "rejected".to_string(),
                message: "no".to_string(),
            }),
        );
        assert_fail(&step, FAILED, "fail-execute", "rejected");
    }

    fn interaction_pending() -> Event {
        Event::InteractionPending(InteractionInfo {
            interaction_id: "int-1".to_string(),
            kind: "command_approval".to_string(),
            thread_id: "thr-1".to_string(),
            payload: "{}".to_string(),
        })
    }

    #[test]
    fn informational_events_are_recorded_only() {
        let before = state_of(&Step {
            state: planning(),
            actions: Vec::new(),
        });
        let mut state = planning();
        for event in [
            interaction_pending(),
            Event::InteractionAnswered(InteractionAnswer {
                interaction_id: "int-1".to_string(),
                answer: "{}".to_string(),
            }),
            Event::OperationStatusChanged(OperationStatus {
                operation_id: "op-1".to_string(),
                status: "running".to_string(),
            }),
        ] {
            let step = feed(&state, event);
            assert!(step.actions.is_empty());
            state = step.state;
        }
        let after = state_of(&Step {
            state,
            actions: Vec::new(),
        });
        assert_eq!(after.phase, PLANNING);
        let names: Vec<&str> = after.events[before.events.len()..]
            .iter()
            .map(|e| e.event.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "interaction-pending",
                "interaction-answered",
                "operation-status-changed"
            ]
        );
    }

    #[test]
    fn events_are_capped() {
        let mut state = planning();
        for _ in 0..80 {
            state = feed(&state, interaction_pending()).state;
        }
        let parsed = state_of(&Step {
            state,
            actions: Vec::new(),
        });
        assert_eq!(parsed.events.len(), MAX_EVENTS);
        assert!(parsed
            .events
            .iter()
            .all(|e| e.event == "interaction-pending"));
    }

    #[test]
    fn terminal_phases_ignore_everything() {
        let completed_state = feed(
            &executing(),
            turn(Some("execute"), "turn-exec", "completed", Some("ok"), &[]),
        )
        .state;
        let failed_state = feed(&ready(), approval("approve-plan", false, None)).state;
        let orphaned_state = feed(&planning(), exit()).state;
        for state in [completed_state, failed_state, orphaned_state] {
            for event in [
                exit(),
                approval("approve-plan", true, None),
                adoption(json!({"plan": "x"})),
                plan_done("<proposed_plan>x</proposed_plan>"),
                turn(
                    Some("execute"),
                    "turn-exec",
                    "completed",
                    Some("again"),
                    &[],
                ),
                Event::ActionFailed(ActionFailure {
                    action_id: "x".to_string(),
                    code: "c".to_string(),
                    message: "m".to_string(),
                }),
                interaction_pending(),
            ] {
                let step = feed(&state, event);
                assert_eq!(step.state, state);
                assert!(step.actions.is_empty());
            }
        }
    }

    #[test]
    fn corrupt_state_fails() {
        for bad in ["not json", "{}", r#"{"phase":"dancing"}"#, r#"{"phase":3}"#] {
            let step = feed(bad, interaction_pending());
            assert_fail(&step, FAILED, "fail-corrupt-state", "corrupt_state");
            // The replacement state is a valid terminal state.
            let next = feed(&step.state, exit());
            assert_eq!(next.state, step.state);
            assert!(next.actions.is_empty());
        }
    }

    #[test]
    fn action_ids_are_never_reused() {
        // A full run with two adoptions: every action id is distinct.
        let mut ids = Vec::new();
        let mut push = |step: &Step| {
            for action in &step.actions {
                let id = match action {
                    Action::StartThread(a) => a.id.clone(),
                    Action::StartTurn(a) => a.id.clone(),
                    Action::WaitForApproval(a) => a.id.clone(),
                    Action::Complete(a) => a.id.clone(),
                    Action::Fail(a) => a.id.clone(),
                    other => panic!("unexpected {other:?}"),
                };
                ids.push(id);
            }
            step.state.clone()
        };
        let mut state = push(&<PlanWorkflow as Guest>::start(input(None)));
        state = push(&feed(
            &state,
            completed("thread", json!({"threadId": "thr-1"})),
        ));
        state = push(&feed(&state, plan_done("Should I use Rust or Go?")));
        state = push(&feed(&state, adoption(json!({"plan": "a"}))));
        state = push(&feed(&state, adoption(json!({"plan": "b"}))));
        state = push(&feed(&state, approval("approve-plan-2", true, None)));
        state = push(&feed(&state, approval("approve-plan-2", true, None)));
        push(&feed(
            &state,
            turn(Some("execute"), "turn-exec", "completed", Some("ok"), &[]),
        ));
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert_eq!(
            ids,
            [
                "thread",
                "plan",
                "approve-plan-1",
                "approve-plan-2",
                "execute",
                "complete"
            ]
        );
    }

    #[test]
    fn classify_order() {
        assert_eq!(classify(None, &[]).quality, "unknown");
        assert_eq!(
            classify(Some("Blocked? which one?"), &[]).quality,
            "blocker"
        );
        assert_eq!(classify(Some("Do you want X"), &[]).quality, "partial");
        assert_eq!(classify(Some("Do you want X?"), &[]).quality, "question");
        assert_eq!(
            classify(Some("Работа заблокирована"), &[]).quality,
            "blocker"
        );
        assert_eq!(classify(Some(&"a".repeat(299)), &[]).quality, "partial");
        assert_eq!(
            classify(Some(&"a".repeat(300)), &[]).quality,
            "needs_review"
        );
    }

    #[test]
    fn describe_has_an_input_schema() {
        let info = <PlanWorkflow as Guest>::describe();
        let schema: Value = serde_json::from_str(info.input_schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["required"], json!(["message", "cwd"]));
    }
}
