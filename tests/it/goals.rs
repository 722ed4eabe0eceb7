//! Goal sync and live refresh of workflows, over MCP, against the real codex app-server and the fake model.
//!
//! An active goal makes app-server start "continue working" turns by itself until the model calls
//! `update_goal {"status":"complete"}` or the goal is cleared. These tests count model requests to prove that a
//! workflow's goal never runs during planning, and that nothing keeps running once the workflow ended.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_model::Reply;
use support::mcp_client::workspace_binary;

use crate::harness::Harness;

const PLAN: &str =
    "Here is my plan.\n<proposed_plan>\n1. Add the WAL pragma\n2. Add a test\n</proposed_plan>";

/// Starts a plan workflow with `extra` arguments and waits for its plan; returns the workflow id.
fn plan_ready(h: &mut Harness, extra: Value) -> String {
    h.model.push([Reply::text(PLAN)]);
    let mut args = json!({"project_id": h.project.display().to_string(), "message": "plan the storage change"});
    for (key, value) in extra.as_object().expect("object").iter() {
        args[key] = value.clone();
    }
    let started = h.call("codex_start_plan_workflow", args);
    assert_eq!(started["ok"], json!(true), "{started}");
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let ready = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) || w["phase"] == json!("plan_ready")
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    workflow_id
}

/// Waits until the workflow ended and its goal's completion action was performed.
fn settled(h: &mut Harness, workflow_id: &str) -> Value {
    h.wait_workflow(workflow_id, |w| {
        w["terminal"] == json!(true) && w["threadGoal"]["settled"] == json!(true)
    })
}

/// Waits until the workflow's goal is set on its thread (failing if the workflow ends first).
fn goal_active(h: &mut Harness, workflow_id: &str) -> Value {
    let active = h.wait_workflow(workflow_id, |w| {
        w["terminal"] == json!(true) || w["threadGoal"]["syncState"] == json!("active")
    });
    assert_eq!(
        active["threadGoal"]["syncState"],
        json!("active"),
        "{active}"
    );
    active
}

/// Approves the plan of a ready workflow whose execution turn answers "Implemented." after `think` without
/// touching the goal, and waits until the goal is settled.
pub(crate) fn execute_and_settle(h: &mut Harness, workflow_id: &str, think: Duration) -> Value {
    h.model
        .push([Reply::after(think, Reply::text("Implemented."))]);
    let approved = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(approved["ok"], json!(true), "{approved}");
    settled(h, workflow_id)
}

/// Asserts that the model gets no further request for `quiet`.
fn no_more_model_calls(h: &Harness, quiet: Duration) -> usize {
    let before = h.model.n_model_calls();
    std::thread::sleep(quiet);
    let after = h.model.n_model_calls();
    assert_eq!(
        before, after,
        "app-server kept calling the model after the workflow ended"
    );
    after
}

#[test]
fn a_goal_is_mirrored_only_while_executing_and_cleared_when_the_workflow_completes() {
    let mut h = Harness::start("goal-clear");
    let project = h.project.display().to_string();

    // Goal parameters without a goal, or that contradict each other, are refused, not ignored.
    for (args, field) in [
        (json!({"goal_token_budget": 1000}), "goal_token_budget"),
        (
            json!({"goal": "x", "goal_completion_objective": "done"}),
            "goal_completion_objective",
        ),
    ] {
        let mut args = args;
        args["project_id"] = json!(project);
        args["message"] = json!("plan");
        let refused = h.call("codex_start_plan_workflow", args);
        assert_eq!(
            refused["error"]["code"],
            json!("INVALID_ARGUMENT"),
            "{refused}"
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{refused}"
        );
    }
    let out_of_range = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan", "goal": "x", "goal_token_budget": 0}),
    );
    assert_eq!(out_of_range["ok"], json!(false), "{out_of_range}");
    assert_eq!(h.model.n_model_calls(), 0, "refused requests start nothing");

    let workflow_id = plan_ready(
        &mut h,
        json!({"goal": "ship the storage change", "goal_token_budget": 200000}),
    );
    // Planning never runs under the goal: it would make app-server continue the plan turn by itself.
    let ready = h.workflow(&workflow_id);
    assert_eq!(
        ready["threadGoal"]["syncState"],
        json!("pending_thread"),
        "{ready}"
    );
    assert_eq!(ready["threadGoal"]["completionAction"], json!("clear"));
    assert_eq!(
        no_more_model_calls(&h, Duration::from_millis(400)),
        1,
        "only the plan turn ran"
    );

    // The execution turn: the model marks the goal complete, then reports.
    h.model.push([
        Reply::after(
            Duration::from_millis(1200),
            Reply::FunctionCall {
                name: "update_goal".into(),
                arguments: json!({"status": "complete"}),
                call_id: "call_goal".into(),
            },
        ),
        Reply::text("Implemented the WAL pragma."),
    ]);
    let approved = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(approved["ok"], json!(true), "{approved}");
    let active = goal_active(&mut h, &workflow_id);
    assert_eq!(
        active["threadGoal"]["currentGoal"]["tokenBudget"],
        json!(200000)
    );
    assert_eq!(
        active["threadGoal"]["currentGoal"]["objective"],
        json!("ship the storage change")
    );

    let done = settled(&mut h, &workflow_id);
    assert_eq!(done["phase"], json!("completed"), "{done}");
    let goal = &done["threadGoal"];
    assert_eq!(goal["syncState"], json!("cleared"), "{done}");
    assert!(goal["setAt"].is_string(), "{done}");
    assert!(goal["currentGoal"].is_null(), "{done}");
    assert_eq!(
        goal["continuationTurns"],
        json!(0),
        "the model completed the goal: {done}"
    );
    assert_eq!(
        no_more_model_calls(&h, Duration::from_millis(1000)),
        3,
        "plan + two execution requests"
    );

    let live = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": workflow_id, "refresh_live_goal": true}),
    );
    assert!(
        live["threadGoal"]
            .as_object()
            .is_some_and(|g| g.contains_key("liveGoal")),
        "{live}"
    );
    assert!(
        live["threadGoal"]["liveGoal"].is_null(),
        "cleared on the thread: {live}"
    );
}

#[test]
fn a_goal_the_model_never_completes_stops_continuing_once_the_workflow_completes() {
    let mut h = Harness::start("goal-loop");
    let workflow_id = plan_ready(&mut h, json!({"goal": "ship the storage change"}));
    // The execution turn ends without `update_goal`: app-server starts continuation turns by itself
    // (answered "Done." by the fake) until the goal is cleared.
    let done = execute_and_settle(&mut h, &workflow_id, Duration::from_millis(800));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    let goal = &done["threadGoal"];
    assert_eq!(goal["syncState"], json!("cleared"), "{done}");
    let continuation = goal["continuationTurns"].as_u64().expect("count") as usize;
    assert_eq!(
        goal["continuationTurnIds"].as_array().map(Vec::len),
        Some(continuation)
    );
    assert_eq!(
        done["finalReport"]["text"]
            .as_str()
            .map(|t| t.contains("Implemented")),
        Some(true),
        "the report is the execution turn's, not a continuation's: {done}"
    );
    let calls = no_more_model_calls(&h, Duration::from_millis(1500));
    assert!(
        calls >= 2 && calls <= 2 + continuation,
        "{calls} model calls for {continuation} continuation turns"
    );
}

#[test]
fn set_complete_and_leave_keep_the_goal_on_the_thread_without_more_turns() {
    let mut h = Harness::start("goal-keep");

    let completed = plan_ready(
        &mut h,
        json!({"goal": "ship the storage change", "goal_completion_action": "set_complete",
               "goal_completion_objective": "storage change shipped"}),
    );
    let done = execute_and_settle(&mut h, &completed, Duration::from_millis(800));
    let goal = &done["threadGoal"];
    assert_eq!(goal["syncState"], json!("complete"), "{done}");
    assert_eq!(goal["currentGoal"]["status"], json!("complete"), "{done}");
    assert_eq!(
        goal["currentGoal"]["objective"],
        json!("storage change shipped")
    );
    let live = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": completed, "refresh_live_goal": true}),
    );
    assert_eq!(
        live["threadGoal"]["liveGoal"]["status"],
        json!("complete"),
        "{live}"
    );
    no_more_model_calls(&h, Duration::from_millis(800));

    let left = plan_ready(
        &mut h,
        json!({"goal": "keep improving storage", "goal_completion_action": "leave"}),
    );
    let done = execute_and_settle(&mut h, &left, Duration::from_millis(800));
    let goal = &done["threadGoal"];
    assert_eq!(goal["syncState"], json!("left"), "{done}");
    assert_eq!(
        goal["currentGoal"]["status"],
        json!("paused"),
        "left visible but paused: {done}"
    );
    assert_eq!(
        goal["currentGoal"]["objective"],
        json!("keep improving storage")
    );
    no_more_model_calls(&h, Duration::from_millis(1000));
}

#[test]
fn refresh_live_settles_a_turn_end_the_server_missed() {
    let fake =
        workspace_binary("codex-control-plane-tests", "fake-app-server").expect("fake app-server");
    let fake = fake.display().to_string();
    let mut h = Harness::start_with(
        "wf-live",
        &[
            ("CODEX_BINARY_PATH", fake.as_str()),
            ("FAKE_APP_SERVER_MODE", "silent_turn_end"),
        ],
    );
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "plan it"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();
    let running = h.wait_workflow(&workflow_id, |w| w["planTurn"]["turnId"].is_string());
    std::thread::sleep(Duration::from_millis(300));
    // Passive polling only reads SQLite: the turn end that never arrived is not invented.
    let passive = h.workflow(&workflow_id);
    assert_eq!(passive["phase"], running["phase"], "{passive}");
    assert!(passive.get("liveRefresh").is_none());

    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        let live = h.call(
            "codex_get_workflow_status",
            json!({"workflow_id": workflow_id, "refresh_live": true}),
        );
        if live["phase"] == json!("plan_ready") || Instant::now() > deadline {
            break live;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(live["phase"], json!("plan_ready"), "{live}");
    assert_eq!(live["liveRefresh"]["errors"], json!([]), "{live}");
    assert_eq!(live["planTurn"]["status"], json!("completed"), "{live}");
    assert!(
        live["latestPlan"]["plan"]
            .as_str()
            .unwrap_or_default()
            .contains("silent step"),
        "{live}"
    );
}

#[test]
fn a_crash_while_the_goal_is_active_still_clears_it_and_starts_nothing() {
    let mut h = Harness::start("goal-crash");
    let workflow_id = plan_ready(&mut h, json!({"goal": "ship the storage change"}));
    h.model.push([Reply::after(
        Duration::from_secs(3),
        Reply::text("Implemented."),
    )]);
    h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    goal_active(&mut h, &workflow_id);

    // kill -9 mid-execution: the app-server child goes with the server, the goal stays active in its
    // thread store. The next server ends the workflow and clears the goal on the resumed thread.
    h.crash_and_restart(&[]);
    let done = settled(&mut h, &workflow_id);
    assert_eq!(
        done["phase"],
        json!("orphaned_after_app_server_exit"),
        "{done}"
    );
    assert_eq!(done["threadGoal"]["syncState"], json!("cleared"), "{done}");
    let calls = no_more_model_calls(&h, Duration::from_millis(1500));
    let continuation = done["threadGoal"]["continuationTurns"]
        .as_u64()
        .expect("count") as usize;
    assert!(
        calls <= 2 + continuation,
        "{calls} model calls for {continuation} continuation turns: {done}"
    );
}
