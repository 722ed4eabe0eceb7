//! Workflow dispatch benchmark: what one workflow event costs the host, with the embedded `plan-workflow`
//! plugin. Run on demand:
//!
//! ```text
//! cargo bench -p codex-control-plane-mcp --bench workflow
//! ```
//!
//! Three figures (mean over many iterations after a warm-up):
//! - `start`: the plugin's `start` on a fresh instance (parse input, build two actions);
//! - `on-event`: `turn-completed` with a proposed plan (classify, hash, build the approval gate): the
//!   plugin's share of a real event;
//! - `step stored`: `on-event` plus storing the step (state, actions, history line) in one SQLite
//!   transaction: the whole per-event cost before any action is performed.

use std::time::{Duration, Instant};

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{Event, TurnCompleted};
use codex_control_plane::plugins::PluginHost;
use codex_control_plane::store::workflows::{NewWorkflow, StepRecord};
use codex_control_plane::store::Store;
use serde_json::{json, Value};

const N: u32 = 2_000;

fn main() {
    if let Err(error) = run() {
        eprintln!("benchmark failed: {error}");
        std::process::exit(1);
    }
}

fn mean(total: Duration, n: u32) -> String {
    format!("{:.1} us", total.as_secs_f64() * 1e6 / f64::from(n))
}

fn run() -> Result<(), String> {
    let root = std::env::temp_dir().join(format!("ccp-bench-workflow-{}", std::process::id()));
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let config = Config::for_tests(&root);
    std::fs::create_dir_all(&config.projects_root).map_err(|e| e.to_string())?;
    let host = PluginHost::load(&config).map_err(|e| e.to_string())?;
    let input = json!({"message": "plan the change", "cwd": "/work/p", "model": null,
                       "sandbox": "workspace-write", "approvalPolicy": "on-request", "threadId": null})
    .to_string();
    let started = host
        .workflow_start("plan-workflow", &input)
        .map_err(|e| e.to_string())?;
    let state = started.state.clone();
    let event = Event::TurnCompleted(TurnCompleted {
        action_id: Some("plan".into()),
        thread_id: "thr".into(),
        turn_id: "turn".into(),
        status: "completed".into(),
        final_message: Some(format!(
            "Here is the plan.\n<proposed_plan>\n{}\n</proposed_plan>",
            (1..=12)
                .map(|i| format!("{i}. Step number {i} of the plan"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
        plan_items: Vec::new(),
    });

    for _ in 0..200 {
        host.workflow_start("plan-workflow", &input)
            .map_err(|e| e.to_string())?;
        host.workflow_on_event("plan-workflow", &state, &event)
            .map_err(|e| e.to_string())?;
    }
    let t = Instant::now();
    for _ in 0..N {
        host.workflow_start("plan-workflow", &input)
            .map_err(|e| e.to_string())?;
    }
    println!("{:<28} {}", "start", mean(t.elapsed(), N));
    let t = Instant::now();
    for _ in 0..N {
        host.workflow_on_event("plan-workflow", &state, &event)
            .map_err(|e| e.to_string())?;
    }
    println!("{:<28} {}", "on-event (plan ready)", mean(t.elapsed(), N));

    let store = Store::open(&root.join("state.sqlite3")).map_err(|e| e.to_string())?;
    let new = NewWorkflow {
        client_request_id: "bench".into(),
        kind: "plan_then_execute".into(),
        plugin_id: "plan-workflow".into(),
        plugin_version: "0.1.0".into(),
        input: serde_json::from_str(&input).map_err(|e| e.to_string())?,
        request_fingerprint: "bench".into(),
        runtime_policy: None,
        owner_id: "bench".into(),
        goal: None,
    };
    let (workflow, _) = store
        .write_blocking(move |tx| {
            codex_control_plane::store::workflows::insert(
                tx,
                &new,
                codex_control_plane::time::now_ms(),
            )
        })
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    for i in 0..N {
        let step = host
            .workflow_on_event("plan-workflow", &state, &event)
            .map_err(|e| e.to_string())?;
        let state: Value = serde_json::from_str(&step.state).map_err(|e| e.to_string())?;
        let record = StepRecord {
            event: "turn-completed".into(),
            details: None,
            state,
            actions: vec![(
                format!("approve-{i}"),
                "wait-for-approval".into(),
                json!({"id": i}),
            )],
            source_action: None,
            report: None,
            error: None,
        };
        let id = workflow.workflow_id.clone();
        store
            .write_blocking(move |tx| {
                codex_control_plane::store::workflows::apply_step(
                    tx,
                    &id,
                    &record,
                    codex_control_plane::time::now_ms(),
                )
            })
            .map_err(|e| e.to_string())?;
    }
    println!(
        "{:<28} {}",
        "step stored (plugin + SQLite)",
        mean(t.elapsed(), N)
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
