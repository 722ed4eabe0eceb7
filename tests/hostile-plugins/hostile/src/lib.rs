//! A plugin that implements every world and misbehaves on request.
//!
//! `check-action` reads the request's `settings.model`:
//! - `"loop"`: spins forever (stopped by fuel or the epoch deadline);
//! - `"bomb"`: allocates until the memory cap stops it;
//! - `"panic"`: panics (a trap);
//! - `"big-output"`: returns a 100 MB denial reason;
//! - `"state"`: counts calls in its key/value state and denies with the count;
//! - `"config"`: denies with its configuration JSON;
//! - `"view"`: denies with `get-operation("op-1")`, or "none";
//! - `"view-op:<id>"` / `"view-wf:<id>"`: denies with `get-operation(id)` / `get-workflow(id)`, or "none";
//! - anything else: allows.
//!
//! `on-interaction` accepts every command approval, or traps when its `[config]` holds
//! `interactions = "trap"`.
//!
//! The other worlds echo their input so that tests can check dispatch; a workflow started with an input
//! containing the string `"panic"` or `"loop"` misbehaves the same way, and one containing `"interrupt"`
//! interrupts the turn of its `"thread"` and completes with the answer. An analyzer snapshot containing
//! `hostile-loop` spins forever.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "all",
});

use codex_control_plane::plugin::host;
use codex_control_plane::plugin::types::ThreadRef;
use codex_control_plane::plugin::types::{Finding, LogLevel, Severity, TurnSettings};
use exports::codex_control_plane::plugin::analyzer_plugin;
use exports::codex_control_plane::plugin::policy_plugin::{self, ActionRequest, Answer, Decision};
use exports::codex_control_plane::plugin::repair_plugin::{
    self, RepairAction, RepairContext, RepairStep,
};
use exports::codex_control_plane::plugin::workflow_plugin::{
    self, Action, CompleteAction, Event, StartThreadAction, Step, ThreadAction, WorkflowInfo,
};

/// The value of `"thread":"..."` in a compact JSON input (this crate has no JSON parser on purpose: it stays
/// small), or an empty string.
fn thread_named_in(input: &str) -> String {
    input
        .split_once("\"thread\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(thread, _)| thread.to_string())
        .unwrap_or_default()
}

/// The exported implementation.
struct Hostile;

impl policy_plugin::Guest for Hostile {
    fn check_action(request: ActionRequest) -> Decision {
        let model = request.settings.model.as_deref().unwrap_or("");
        if let Some(id) = model.strip_prefix("view-op:") {
            return Decision::Deny(host::get_operation(id).unwrap_or_else(|| "none".to_string()));
        }
        if let Some(id) = model.strip_prefix("view-wf:") {
            return Decision::Deny(host::get_workflow(id).unwrap_or_else(|| "none".to_string()));
        }
        match model {
            "loop" => {
                let mut counter: u64 = 0;
                loop {
                    // `black_box` keeps the loop from being optimised away.
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "big-output" => Decision::Deny("x".repeat(100 * 1024 * 1024)),
            "state" => {
                let count = host::state_get("count")
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(0)
                    + 1;
                let stored = host::state_set("count", &count.to_string());
                Decision::Deny(format!("count={count} stored={}", stored.is_ok()))
            }
            "config" => Decision::Deny(host::get_config()),
            "view" => {
                Decision::Deny(host::get_operation("op-1").unwrap_or_else(|| "none".to_string()))
            }
            "narrow" => Decision::Narrow(TurnSettings {
                cwd: None,
                sandbox: None,
                approval_policy: None,
                model: Some("narrowed-model".to_string()),
                effort: None,
                collaboration_mode: None,
            }),
            _ => {
                host::log(
                    LogLevel::Debug,
                    &format!("allowing {} at {}", request.action_id, host::now_ms()),
                );
                Decision::Allow
            }
        }
    }

    fn on_interaction(interaction: policy_plugin::Interaction) -> Option<Answer> {
        // With `interactions = "trap"` in its [config] it fails on every interaction instead, so that hosts can
        // test that a failing policy decides nothing.
        if host::get_config().contains(r#""interactions":"trap""#) {
            panic!("hostile plugin traps on interactions on purpose");
        }
        (interaction.kind == "command_approval").then_some(Answer::Accept)
    }
}

impl workflow_plugin::Guest for Hostile {
    fn describe() -> WorkflowInfo {
        WorkflowInfo {
            name: "echo".to_string(),
            description: "Starts a thread, then completes with the last event.".to_string(),
            input_schema: None,
        }
    }

    fn start(input: String) -> Step {
        // A workflow input naming a misbehaviour triggers it, so hosts can test containment.
        if input.contains("\"panic\"") {
            panic!("hostile workflow panics on purpose");
        }
        if input.contains("\"loop\"") {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        if input.contains("\"interrupt\"") {
            // Interrupts whatever runs on the thread named in the input, then completes on the answer.
            let thread = thread_named_in(&input);
            return Step {
                state: input,
                actions: vec![Action::InterruptTurn(ThreadAction {
                    id: "interrupt-1".to_string(),
                    thread: ThreadRef::Thread(thread),
                })],
            };
        }
        Step {
            state: input,
            actions: vec![Action::StartThread(StartThreadAction {
                id: "thread-1".to_string(),
                settings: TurnSettings {
                    cwd: None,
                    sandbox: None,
                    approval_policy: None,
                    model: None,
                    effort: None,
                    collaboration_mode: None,
                },
            })],
        }
    }

    fn on_event(state: String, event: Event) -> Step {
        Step {
            state,
            actions: vec![Action::Complete(CompleteAction {
                id: "complete-1".to_string(),
                report: format!("{event:?}"),
                structured: None,
            })],
        }
    }
}

impl analyzer_plugin::Guest for Hostile {
    fn analyze(snapshot: String) -> Vec<Finding> {
        // A snapshot that asks for it (through the caller's problem text) makes the analyzer run away.
        if snapshot.contains("hostile-loop") {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        vec![Finding {
            code: "echo".to_string(),
            severity: Severity::Warning,
            subject: String::new(),
            message: snapshot,
            details: None,
        }]
    }
}

impl repair_plugin::Guest for Hostile {
    fn plan(finding: Finding, context: RepairContext) -> Vec<RepairStep> {
        vec![RepairStep {
            id: "step-1".to_string(),
            description: format!("{} dry_run={}", finding.code, context.dry_run),
            action: RepairAction::CancelOperation(finding.subject),
        }]
    }
}

// Exports are only emitted for wasm: their names (`pkg:ns/iface@ver#func`) are not
// valid symbols in a native version script, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
export!(Hostile);
