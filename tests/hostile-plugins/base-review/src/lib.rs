//! A third-party review workflow written against WIT 0.2 on the guest SDK. Unlike a 0.1 workflow, whose
//! review reads the host's `target`, it names what is reviewed: the base branch in its input
//! (`{"cwd": ..., "target": {"type": "baseBranch", "branch": ...}}`, as `codex_start_review_workflow`
//! writes it). It starts a thread, starts the review on it with `target: base-branch(branch)`, and
//! completes with the review's final message (or fails with the turn's status).

use codex_control_plane_plugin_sdk::export_workflow;
use codex_control_plane_plugin_sdk::workflow::{
    complete, sandbox_mode, Action, Event, FailAction, Json, ReviewTarget, SandboxMode,
    StartReviewAction, StartThreadAction, Step, ThreadRef, TurnSettings, Workflow, WorkflowInfo,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// No configuration.
#[derive(Deserialize)]
pub struct BaseReview {}

/// Id of the thread action; the review refers to its thread by it.
const THREAD: &str = "thread";
/// Id of the review action.
const REVIEW: &str = "review";

/// Settings with a cwd and a sandbox (the host's defaults for the rest).
fn in_cwd(cwd: Option<String>, sandbox: Option<SandboxMode>) -> TurnSettings {
    TurnSettings {
        cwd,
        sandbox,
        approval_policy: None,
        model: None,
        effort: None,
        collaboration_mode: None,
    }
}

/// A state with `phase` and `status`.
fn state(phase: &str, status: &str) -> Json {
    json!({"phase": phase, "status": status}).to_string()
}

/// The step that fails the workflow with `code` and `message`.
fn fail(code: &str, message: String) -> Step {
    Step {
        state: state("failed", "failed"),
        actions: vec![Action::Fail(FailAction {
            id: "fail".to_string(),
            code: code.to_string(),
            message,
        })],
    }
}

impl Workflow for BaseReview {
    fn describe(&self) -> WorkflowInfo {
        WorkflowInfo {
            name: "base branch review".to_string(),
            description: "Reviews the current branch against the base branch its input names."
                .to_string(),
            input_schema: None,
        }
    }

    fn start(&self, input: Json) -> Step {
        let input: Value = serde_json::from_str(&input).unwrap_or(Value::Null);
        let Some(branch) = input["target"]["branch"].as_str().filter(|b| !b.is_empty()) else {
            return fail(
                "invalid_input",
                "the input names no base branch".to_string(),
            );
        };
        let cwd = input["cwd"].as_str().map(str::to_string);
        let sandbox = input["sandbox"].as_str().and_then(sandbox_mode);
        Step {
            state: state("reviewing", "running"),
            actions: vec![
                Action::StartThread(StartThreadAction {
                    id: THREAD.to_string(),
                    settings: in_cwd(cwd.clone(), sandbox),
                }),
                Action::StartReview(StartReviewAction {
                    id: REVIEW.to_string(),
                    thread: ThreadRef::Action(THREAD.to_string()),
                    instructions: None,
                    settings: in_cwd(cwd, sandbox),
                    target: Some(ReviewTarget::BaseBranch(branch.to_string())),
                }),
            ],
        }
    }

    fn on_event(&self, current: Json, event: Event) -> Step {
        match event {
            Event::TurnCompleted(turn) if turn.action_id.as_deref() == Some(REVIEW) => {
                if turn.status == "completed" {
                    let report = turn.final_message.unwrap_or_default();
                    Step {
                        state: state("completed", "completed"),
                        actions: vec![complete(report, None)],
                    }
                } else {
                    fail(
                        "review_failed",
                        format!("the review turn ended {}", turn.status),
                    )
                }
            }
            Event::ActionFailed(failure) => fail(&failure.code, failure.message),
            _ => Step {
                state: current,
                actions: Vec::new(),
            },
        }
    }
}

export_workflow!(BaseReview);
