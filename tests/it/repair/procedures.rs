//! The repair actions performed as host procedures (`procedures.rs` in the host): each builds its failure for
//! real, runs a dry run that changes no table but the audit trail, then the real run, which leaves exactly the
//! state the dry run predicted.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{audited, changed_rows, dump};
use crate::diagnostics::{fake_app_server, start_with};
use crate::harness::{assert_invalid_argument, op_id, Harness};

/// A dry run of `args`, checked to have changed nothing but the audit trail; returns it.
fn dry_run(h: &mut Harness, args: &Value) -> Value {
    let before = dump(h, false);
    let dry = h.call("codex_repair_issue", args.clone());
    assert_eq!(dry["ok"], json!(true), "{dry}");
    assert_eq!(dry["dryRun"], json!(true));
    assert_eq!(dry["result"], json!("planned"), "{dry}");
    assert_eq!(dry["plugin"]["id"], json!("default-repairs"));
    assert_eq!(
        before,
        dump(h, false),
        "a dry run changes no table but the audit trail"
    );
    dry
}

/// The real run of `args` (with `extra` merged in), checked to leave what `dry` predicted; returns it.
fn real_run(h: &mut Harness, args: &Value, extra: Value, dry: &Value) -> Value {
    let mut args = args.clone();
    args["dry_run"] = json!(false);
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        args[key] = value;
    }
    let real = h.call("codex_repair_issue", args);
    assert_eq!(real["ok"], json!(true), "{real}");
    assert_eq!(real["result"], json!("completed"), "{real}");
    assert_eq!(real["before"], dry["before"], "{real}");
    assert_eq!(
        real["after"], dry["after"],
        "the real run did what the dry run said: {real}"
    );
    assert_eq!(real["loopGuard"]["counted"], json!(true));
    real
}

fn backdate(h: &Harness, sql: &'static str, ms_ago: i64) {
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let past = codex_control_plane::time::now_ms() - ms_ago;
    store
        .write_blocking(move |tx| {
            tx.execute(sql, [past])?;
            Ok(())
        })
        .expect("backdate");
}

#[test]
fn interrupt_turn_needs_force_and_interrupts_exactly_the_running_turn() {
    let mut h = start_with("repair-interrupt", &fake_app_server("hold_turn"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hold on"})));
    let running = h.wait_for(&id, Duration::from_secs(30), |s| {
        s["turnId"].is_string() && s["status"] == json!("running")
    });
    let turn = running["turnId"].as_str().expect("turn").to_string();
    let args = json!({"action": "interrupt_turn", "operation_id": id});
    let dry = dry_run(&mut h, &args);
    assert_eq!(dry["forceRequired"], json!(true));
    assert_eq!(dry["steps"][0]["kind"], json!("run-procedure"));
    assert_eq!(dry["steps"][0]["target"], json!(id));
    assert_eq!(dry["before"][0]["status"], json!("running"));
    assert_eq!(
        dry["after"],
        json!([{"kind": "operation", "id": id, "status": "interrupted", "turnStatus": "interrupted"}])
    );
    assert_invalid_argument(
        &h.call(
            "codex_repair_issue",
            json!({"action": "interrupt_turn", "operation_id": id, "dry_run": false}),
        ),
        "force",
    );

    let before = dump(&h, false);
    let real = real_run(&mut h, &args, json!({"force": true}), &dry);
    assert_eq!(real["steps"][0]["output"]["interrupted"], json!(true));
    for (table, row) in changed_rows(&before, &dump(&h, false)) {
        // The full-text index holds only the text of the history rows checked here (the ended turn's prompt
        // is mirrored as the turn ends).
        if table.starts_with("chat_history_fts") {
            continue;
        }
        assert!(
            row.contains(&id) || row.contains(&turn),
            "{table}: {row} is about neither {id} nor {turn}"
        );
    }
    assert_eq!(h.status(&id)["status"], json!("interrupted"));
    // An interrupt is allowed once per 2 hours on one target.
    let again = h.call(
        "codex_repair_issue",
        json!({"action": "interrupt_turn", "operation_id": id, "dry_run": false, "force": true}),
    );
    assert_eq!(again["result"], json!("blocked_by_loop_guard"), "{again}");
}

#[test]
fn old_prompt_submissions_of_ended_operations_are_cleaned_up() {
    let mut h = start_with("repair-submissions", &fake_app_server("normal"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "remember me"})));
    h.wait_terminal(&id);
    let args = json!({"action": "cleanup_prompt_submissions"});
    let fresh = h.call("codex_repair_issue", args.clone());
    assert_eq!(fresh["result"], json!("nothing_to_do"), "{fresh}");

    backdate(
        &h,
        "UPDATE codex_prompt_submissions SET created_at = ?1",
        40 * 86_400_000,
    );
    let dry = dry_run(&mut h, &args);
    assert_eq!(dry["steps"][0]["kind"], json!("run-procedure"));
    let submission = dry["steps"][0]["target"]
        .as_str()
        .expect("target")
        .to_string();
    assert_eq!(
        dry["before"],
        json!([{"kind": "submission", "id": submission, "present": true}])
    );
    assert_eq!(
        dry["after"],
        json!([{"kind": "submission", "id": submission, "present": false}])
    );
    // Younger than older_than_days: nothing.
    let young = h.call(
        "codex_repair_issue",
        json!({"action": "cleanup_prompt_submissions", "older_than_days": 60}),
    );
    assert_eq!(young["result"], json!("nothing_to_do"), "{young}");

    let before = dump(&h, false);
    let real = real_run(&mut h, &args, json!({}), &dry);
    assert_eq!(real["steps"][0]["output"], json!({"deleted": true}));
    let changed = changed_rows(&before, &dump(&h, false));
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].0, "codex_prompt_submissions");
    assert!(changed[0].1.contains(&submission) && changed[0].1.contains(&id));
    assert_eq!(
        h.status(&id)["status"],
        json!("completed"),
        "the operation stays"
    );
}

#[test]
fn a_lost_search_index_is_rebuilt_by_refresh_catalog_and_history() {
    let mut h = start_with("repair-history", &fake_app_server("normal"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "zebra quartz"})));
    h.wait_terminal(&id);
    let search = |h: &mut Harness| h.call("codex_search_chats", json!({"query": "zebra"}));
    assert!(search(&mut h).to_string().contains("quartz"), "mirrored");
    // The index loses its rows; the history keeps them.
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    store
        .write_blocking(|tx| {
            tx.execute(
                "INSERT INTO chat_history_fts (chat_history_fts) VALUES ('delete-all')",
                [],
            )?;
            Ok(())
        })
        .expect("lose the index");
    assert!(!search(&mut h).to_string().contains("quartz"), "index lost");

    let args = json!({"action": "rebuild_search_index"});
    let dry = dry_run(&mut h, &args);
    assert_eq!(dry["action"], json!("refresh_catalog_and_history"));
    assert_eq!(dry["steps"][0]["kind"], json!("run-procedure"));
    assert_eq!(dry["steps"][0]["target"], json!("chat_history"));
    assert_eq!(dry["before"][0]["unindexedEntries"], json!(1), "{dry}");
    assert_eq!(
        dry["after"],
        json!([{"kind": "chatHistory", "id": "chat_history", "unmirroredPrompts": 0,
                "unmirroredMessages": 0, "unindexedEntries": 0}])
    );
    assert!(
        !search(&mut h).to_string().contains("quartz"),
        "still lost after the dry run"
    );

    let real = real_run(&mut h, &args, json!({}), &dry);
    assert_eq!(real["steps"][0]["output"]["indexRebuilt"], json!(true));
    assert!(search(&mut h).to_string().contains("quartz"), "found again");
}

#[test]
fn validate_paths_and_config_reports_a_missing_binary_and_changes_nothing() {
    let mut h = Harness::start_with(
        "repair-validate",
        &[("CODEX_BINARY_PATH", "/nonexistent/bin/codex")],
    );
    let args = json!({"action": "validate_paths_and_config"});
    let dry = dry_run(&mut h, &args);
    assert_eq!(dry["steps"][0]["target"], json!("paths_and_config"));
    assert_eq!(
        dry["before"][0]["checks"]["codex_binary"],
        json!("error"),
        "{dry}"
    );
    assert_eq!(dry["after"], dry["before"], "validation changes nothing");

    let before = dump(&h, false);
    let real = real_run(&mut h, &args, json!({}), &dry);
    assert_eq!(real["changed"], json!(false));
    let checks = real["steps"][0]["output"]["checks"]
        .as_array()
        .expect("checks");
    let binary = checks
        .iter()
        .find(|c| c["name"] == json!("codex_binary"))
        .expect("codex_binary check");
    assert_eq!(binary["status"], json!("error"), "{binary}");
    assert!(
        !real.to_string().contains("/nonexistent/bin"),
        "paths are redacted: {real}"
    );
    assert_eq!(before, dump(&h, false), "nothing but the audit trail");
    assert_eq!(audited(&h, "completed"), 1);
}

#[test]
fn a_workflow_whose_turn_end_was_missed_is_reconciled_from_its_thread() {
    let mut h = start_with("repair-reconcile", &fake_app_server("silent_turn_end"));
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "plan it"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();
    let running = h.wait_workflow(&workflow_id, |w| w["planTurn"]["turnId"].is_string());
    let turn = running["planTurn"]["turnId"]
        .as_str()
        .expect("turn")
        .to_string();
    std::thread::sleep(Duration::from_millis(300));

    let args = json!({"action": "reconcile_workflow_from_thread", "workflow_id": workflow_id});
    let dry = dry_run(&mut h, &args);
    assert_eq!(dry["steps"][0]["target"], json!(workflow_id));
    assert_eq!(dry["before"][0]["turns"][0]["turnId"], json!(turn), "{dry}");
    assert_ne!(
        dry["before"][0]["turns"][0]["turnStatus"],
        json!("completed")
    );
    assert_eq!(
        dry["after"][0]["turns"][0]["turnStatus"],
        json!("completed"),
        "{dry}"
    );
    assert_eq!(
        h.workflow(&workflow_id)["phase"],
        running["phase"],
        "the dry run settled nothing"
    );

    let real = real_run(&mut h, &args, json!({}), &dry);
    assert_eq!(real["steps"][0]["output"]["refresh"]["errors"], json!([]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let settled = loop {
        let status = h.workflow(&workflow_id);
        if status["phase"] == json!("plan_ready") || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(settled["phase"], json!("plan_ready"), "{settled}");
    assert_eq!(settled["planTurn"]["status"], json!("completed"));

    // Left waiting long after its work ended, the workflow drifts from its thread, and the analyzer recommends
    // this repair.
    backdate(
        &h,
        "UPDATE codex_workflows SET updated_at = ?1",
        2 * 3_600_000,
    );
    let analysis = h.call("codex_analyze_issue", json!({"workflow_id": workflow_id}));
    let drift = analysis["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["category"] == json!("workflow_thread_drift"))
        .unwrap_or_else(|| panic!("no workflow_thread_drift finding: {analysis}"));
    assert_eq!(drift["subject"], json!(workflow_id));
    assert!(
        analysis["recommendedRepairActions"]
            .to_string()
            .contains("reconcile_workflow_from_thread"),
        "{analysis}"
    );
}

#[test]
fn a_workflow_lost_to_an_exit_is_retried_as_a_linked_workflow_with_the_runtime_policy() {
    let mut h = start_with("repair-retry", &fake_app_server("exit_mid_turn"));
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "plan then crash"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();
    let ended = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_ne!(ended["phase"], json!("completed"), "{ended}");
    // The analyzer finds the workflow recoverable and recommends this repair.
    let analysis = h.call("codex_analyze_issue", json!({"workflow_id": workflow_id}));
    assert!(
        analysis["findings"]
            .to_string()
            .contains("workflow_recoverable_candidate_found"),
        "{analysis}"
    );
    assert!(
        analysis["recommendedRepairActions"]
            .to_string()
            .contains("retry_workflow_with_runtime_policy"),
        "{analysis}"
    );
    // A retry is never offered for every failed workflow at once.
    let global = h.call(
        "codex_repair_issue",
        json!({"action": "retry_workflow_with_runtime_policy"}),
    );
    assert_eq!(global["result"], json!("nothing_to_do"), "{global}");

    let args = json!({"action": "retry_workflow_with_runtime_policy", "workflow_id": workflow_id,
                      "sandbox": "danger-full-access", "approval_policy": "never"});
    let dry = dry_run(&mut h, &args);
    let key = format!("repair:retry:{workflow_id}:1");
    assert_eq!(dry["before"][0]["retries"], json!([]), "{dry}");
    assert_eq!(dry["after"][0]["retries"], json!([key]), "{dry}");

    let real = real_run(&mut h, &args, json!({}), &dry);
    let output = &real["steps"][0]["output"];
    assert_eq!(output["retryOf"], json!(workflow_id), "{real}");
    let retry = output["workflowId"].as_str().expect("retry id").to_string();
    assert_ne!(retry, workflow_id);
    let status = h.workflow(&retry);
    assert_eq!(status["ok"], json!(true), "{status}");
    let policy = status.to_string();
    assert!(
        policy.contains("danger-full-access") && policy.contains(&workflow_id),
        "the retry carries the policy and its link: {status}"
    );
    // The original stays as it ended.
    assert_eq!(h.workflow(&workflow_id)["phase"], ended["phase"]);

    // A second retry asking for read-only keeps a plan workflow's floor, as starting one would.
    let second = h.call(
        "codex_repair_issue",
        json!({"action": "retry_workflow_with_runtime_policy", "workflow_id": workflow_id,
               "sandbox": "read-only", "dry_run": false}),
    );
    assert_eq!(second["result"], json!("completed"), "{second}");
    let output = &second["steps"][0]["output"];
    assert_eq!(
        output["clientRequestId"],
        json!(format!("repair:retry:{workflow_id}:2"))
    );
    assert_eq!(
        output["runtimePolicy"]["effectiveSandbox"],
        json!("workspace-write"),
        "{second}"
    );
    assert_eq!(
        output["runtimePolicy"]["adjustmentReason"],
        json!("plan_mode_floor")
    );
}
