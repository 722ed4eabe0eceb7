//! A third-party workflow plugin's thread actions (`steer-turn`, `set-goal`, `clear-goal`), over MCP, against
//! the real codex app-server and the fake model. The plugin is `tests/hostile-plugins/goal-steer` (on the guest
//! SDK), loaded from a plugins dir with the id `plan-workflow` in place of the default (disabled by its name),
//! so `codex_start_plan_workflow` starts it. The same component is a policy that denies one steer and one goal.

use std::time::Duration;

use serde_json::{json, Value};
use support::fake_model::{Gate, Reply};
use support::mcp_client::TempDir;

use crate::harness::Harness;

/// The plugin's steer message and goal (`goal_steer_plugin::{STEER_MESSAGE, GOAL}`).
const STEER_MESSAGE: &str = "focus on the tests instead";
const GOAL: &str = "ship the storage change";

/// A server whose `plan-workflow` is the goal-steer test plugin; the directory must outlive the harness.
fn goal_steer_harness() -> (TempDir, Harness) {
    let plugins = support::wasm_plugins::test_plugins().expect("test plugins");
    let parent = TempDir::new("goal-steer-plugins");
    let manifest =
        "id = \"plan-workflow\"\nname = \"goal-steer\"\nversion = \"0.1.0\"\nwit = \"0.2.0\"\n\
                    worlds = [\"workflow\", \"policy\"]\n";
    support::wasm_plugins::plugin_folder(
        parent.path(),
        "goal-steer",
        manifest,
        &plugins.goal_steer,
    )
    .expect("plugin folder");
    let config = parent.path().join("config.toml");
    // `plugins.disabled` matches ids and names: the default's name disables it and leaves its id free.
    std::fs::write(&config, "[plugins]\ndisabled = [\"Plan then execute\"]\n").expect("config");
    let dirs = parent.path().display().to_string();
    let config = config.display().to_string();
    let harness = Harness::start_with(
        "goal-steer",
        &[
            ("CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS", dirs.as_str()),
            ("CODEX_CONTROL_PLANE_MCP_CONFIG", config.as_str()),
        ],
    );
    (parent, harness)
}

/// The journaled action `id` of a workflow payload, if the plugin returned it yet.
fn find_action<'a>(workflow: &'a Value, id: &str) -> Option<&'a Value> {
    workflow["actions"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["actionId"] == json!(id)))
}

/// The journaled action `id` of a workflow payload.
fn action<'a>(workflow: &'a Value, id: &str) -> &'a Value {
    find_action(workflow, id).unwrap_or_else(|| panic!("no action {id}: {workflow}"))
}

/// Whether action `id` reached `state`.
fn in_state(workflow: &Value, id: &str, state: &str) -> bool {
    find_action(workflow, id).is_some_and(|a| a["state"] == json!(state))
}

/// What the plugin was told about action `id` (its `seen` list is the final report's `structured` part).
fn seen<'a>(report: &'a Value, event: &str, id: &str) -> &'a Value {
    report["structured"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["event"] == json!(event) && s["action"] == json!(id))
        })
        .unwrap_or_else(|| panic!("the plugin saw no {event} for {id}: {report}"))
}

#[test]
fn a_workflow_plugin_steers_its_running_turn_and_sets_and_clears_a_goal() {
    let (_plugins, mut h) = goal_steer_harness();
    // The turn's first model request is held open until the test has seen the steer and the goal land.
    let gate = Gate::new();
    h.model.push([
        Reply::held(&gate, Reply::text("Working on the storage.")),
        Reply::text("Steered answer."),
    ]);
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "change the storage"}),
    );
    assert_eq!(started["pluginId"], json!("plan-workflow"), "{started}");
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();

    // While the turn runs: the steer joined it and the goal is on the thread.
    let running = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true)
            || (in_state(w, "steer", "reported")
                && in_state(w, "goal", "reported")
                && in_state(w, "denied-steer", "reported")
                && in_state(w, "denied-goal", "failed"))
    });
    assert_eq!(running["phase"], json!("executing"), "{running}");
    let turn_id = running["executionTurn"]["turnId"]
        .as_str()
        .unwrap_or_else(|| panic!("no execution turn: {running}"))
        .to_string();
    let steer_op = action(&running, "steer")["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("the steer has no operation: {running}"))
        .to_string();
    let steer = h.status(&steer_op);
    assert_eq!(steer["operationType"], json!("steer_turn"), "{steer}");
    assert_eq!(
        steer["steerState"]["joinedTurnId"],
        json!(turn_id),
        "{steer}"
    );
    let goal = &running["threadGoal"];
    assert_eq!(goal["syncState"], json!("active"), "{running}");
    assert_eq!(goal["objective"], json!(GOAL), "{running}");
    assert_eq!(goal["completionAction"], json!("clear"), "{running}");
    // The policy chain saw both under their kinds (`steer-turn` on the steer's operation, `set-goal`).
    let denied_op = action(&running, "denied-steer")["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("the denied steer has no operation: {running}"))
        .to_string();
    let denied = h.status(&denied_op);
    assert_eq!(denied["status"], json!("failed"), "{denied}");
    assert_eq!(
        denied["lastError"]["code"],
        json!("CODEX_POLICY_DENIED"),
        "{denied}"
    );
    let live = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": workflow_id, "refresh_live_goal": true}),
    );
    assert_eq!(
        live["threadGoal"]["liveGoal"]["objective"],
        json!(GOAL),
        "app-server has the plugin's goal: {live}"
    );
    assert_eq!(live["threadGoal"]["liveGoal"]["status"], json!("active"));

    // The turn ends; the plugin clears the goal and steers again, which nothing running can take.
    gate.open();
    let done = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) && w["threadGoal"]["settled"] == json!(true)
    });
    assert_eq!(done["phase"], json!("completed"), "{done}");
    let report = &done["finalReport"];
    let steered = seen(report, "action-completed", "steer");
    assert_eq!(steered["output"]["turnId"], json!(turn_id), "{report}");
    assert_eq!(steered["output"]["operationId"], json!(steer_op));
    let set = seen(report, "action-completed", "goal");
    assert_eq!(set["output"]["syncState"], json!("active"), "{report}");
    assert_eq!(set["output"]["goal"]["objective"], json!(GOAL), "{report}");
    let cleared = seen(report, "action-completed", "clear");
    assert_eq!(cleared["output"]["cleared"], json!(true), "{report}");
    for denied in ["denied-steer", "denied-goal"] {
        let refused = seen(report, "action-failed", denied);
        assert_eq!(refused["code"], json!("CODEX_POLICY_DENIED"), "{report}");
    }
    let late = seen(report, "action-failed", "late-steer");
    assert_eq!(late["code"], json!("no_active_turn"), "{report}");
    assert_eq!(action(&done, "late-steer")["state"], json!("failed"));
    assert!(
        action(&done, "late-steer")["operationId"].is_null(),
        "a refused steer starts no operation: {done}"
    );

    // The steer reached the model inside the turn, and the goal is gone from the thread.
    let texts: Vec<String> = h
        .model
        .requests()
        .iter()
        .flat_map(|r| r.user_texts())
        .collect();
    assert!(texts.iter().any(|t| t.contains(STEER_MESSAGE)), "{texts:?}");
    let turn = report["structured"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["event"] == json!("turn-completed")))
        .unwrap_or_else(|| panic!("no turn-completed: {report}"));
    assert_eq!(turn["finalMessage"], json!("Steered answer."), "{report}");
    assert_eq!(done["threadGoal"]["syncState"], json!("cleared"), "{done}");
    assert!(done["threadGoal"]["currentGoal"].is_null(), "{done}");
    let live = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": workflow_id, "refresh_live_goal": true}),
    );
    assert!(
        live["threadGoal"]
            .as_object()
            .is_some_and(|g| g.contains_key("liveGoal") && g["liveGoal"].is_null()),
        "cleared in app-server: {live}"
    );
    // Nothing keeps running on the thread once the workflow ended.
    let before = h.model.n_model_calls();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(h.model.n_model_calls(), before, "{done}");
}
