//! `codex_analyze_issue` over MCP: each default analyzer category built for real (an app-server exit mid-turn,
//! a stale operation, an approval pending too long, a duplicate prompt, a missing codex binary, a state database
//! that cannot be written) and named as the likely root cause; a third-party analyzer contributes findings and a
//! runaway one is reported without failing the call. `runtime` and `workflows` build more
//! categories.

use std::time::Duration;

use serde_json::{json, Value};

use crate::diagnostics::{fake_app_server, start_with};
use crate::harness::{assert_invalid_argument, op_id, Harness};

mod runtime;
mod workflows;

/// The finding of `category`, if any.
fn finding<'a>(payload: &'a Value, category: &str) -> Option<&'a Value> {
    payload["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["category"] == json!(category))
}

/// Sets the given timestamp columns of every row of each table two hours back.
fn backdate(h: &Harness, columns: &'static [(&'static str, &'static str)]) {
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let past = codex_control_plane::time::now_ms() - 2 * 3_600_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.write(move |tx| {
            for (table, column) in columns {
                tx.execute(&format!("UPDATE {table} SET {column} = ?1"), [past])?;
            }
            Ok(())
        }))
        .expect("backdate");
}

/// Every analyzer that ran succeeded.
fn all_analyzers_ok(payload: &Value) {
    let analyzers = payload["analyzers"].as_array().expect("analyzers");
    let ids: Vec<&str> = analyzers
        .iter()
        .filter_map(|a| a["plugin"].as_str())
        .collect();
    assert!(
        ids.contains(&"runtime-analyzer") && ids.contains(&"work-analyzer"),
        "{ids:?}"
    );
    assert!(
        analyzers.iter().all(|a| a["status"] == json!("ok")),
        "{analyzers:?}"
    );
}

#[test]
fn an_app_server_exit_mid_turn_is_the_root_cause_and_the_diagnosis_is_recorded() {
    let (mut h, id, _) = crate::diagnostics::operation_lost_to_an_exit("analyze-exit");

    let payload = h.call(
        "codex_analyze_issue",
        json!({"operation_id": id, "record": true, "problem_text": "my chat vanished"}),
    );
    assert_eq!(payload["ok"], json!(true), "{payload}");
    all_analyzers_ok(&payload);
    let cause = &payload["likelyRootCause"];
    assert_eq!(cause["category"], json!("app_server_exited"), "{payload}");
    assert_eq!(cause["subject"], json!(id));
    assert_eq!(cause["analyzers"], json!(["runtime-analyzer"]));
    let exited = finding(&payload, "app_server_exited").expect("finding");
    assert_eq!(exited["severity"], json!("error"));
    assert!(exited["evidence"]
        .as_array()
        .is_some_and(|e| e.contains(&json!({"kind": "operation", "id": id}))));
    let repairs = payload["recommendedRepairActions"]
        .as_array()
        .expect("repairs");
    assert_eq!(repairs[0], json!("mark_orphaned_after_exit"), "{repairs:?}");
    // Recorded: the row holds the same root cause.
    let diagnosis_id = payload["diagnosisId"].as_str().expect("diagnosisId");
    assert_eq!(payload["recorded"], json!(true));
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let row = runtime
        .block_on(store.get_diagnosis(diagnosis_id))
        .expect("read")
        .expect("recorded row");
    assert_eq!(
        row.recorded.likely_root_cause.as_deref(),
        Some("app_server_exited")
    );
    assert_eq!(row.recorded.scope["operationId"], json!(id));

    // Without evidence the references are left out; without record nothing is stored.
    let lean = h.call(
        "codex_analyze_issue",
        json!({"operation_id": id, "include_evidence": false}),
    );
    assert_eq!(lean["findings"][0]["evidence"], json!([]));
    assert!(lean["diagnosisId"].is_null());
    let text = payload.to_string();
    assert!(
        !text.contains(&h.dir.path().display().to_string()),
        "{text}"
    );
    assert_invalid_argument(
        &h.call("codex_analyze_issue", json!({"operation_id": "op_nope"})),
        "operation_id",
    );
    assert_invalid_argument(
        &h.call("codex_analyze_issue", json!({"action_id": "act_nope"})),
        "action_id",
    );
    assert_invalid_argument(
        &h.call("codex_analyze_issue", json!({"command_id": "cmd_nope"})),
        "command_id",
    );
}

#[test]
fn a_stale_operation_and_its_turn_are_found() {
    let mut h = start_with("analyze-stale", &fake_app_server("hold_turn"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hold on"})));
    h.wait_for(&id, Duration::from_secs(30), |s| {
        s["turnId"].is_string() && s["status"] != json!("queued")
    });
    let fresh = h.call("codex_analyze_issue", json!({"operation_id": id}));
    assert!(finding(&fresh, "stale_operation").is_none(), "{fresh}");

    backdate(
        &h,
        &[
            ("codex_operations", "updated_at"),
            ("tracked_turns", "updated_at"),
        ],
    );
    let payload = h.call("codex_analyze_issue", json!({"operation_id": id}));
    all_analyzers_ok(&payload);
    assert_eq!(
        payload["likelyRootCause"]["category"],
        json!("stale_operation"),
        "{payload}"
    );
    assert_eq!(payload["likelyRootCause"]["subject"], json!(id));
    assert!(finding(&payload, "stale_turn").is_some(), "{payload}");
    assert_eq!(
        payload["recommendedRepairActions"][0],
        json!("recover_stale_operations")
    );
    // The whole server: the counts stand in for the rows.
    let global = h.call("codex_analyze_issue", json!({}));
    assert_eq!(
        global["likelyRootCause"]["category"],
        json!("stale_operation"),
        "{global}"
    );
}

#[test]
fn an_approval_pending_too_long_is_stale() {
    let mut h = Harness::start("analyze-approval");
    h.model.push([
        support::fake_model::Reply::exec("ls", "call_1"),
        support::fake_model::Reply::text("Done."),
    ]);
    let id = op_id(&h.submit(json!({
        "operation_type": "start_chat",
        "message": "list the files",
        "approval_policy": "untrusted",
        "sandbox": "workspace-write",
    })));
    h.wait_for(&id, Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    let waiting = h.call("codex_analyze_issue", json!({"operation_id": id}));
    assert!(finding(&waiting, "pending_approval").is_some(), "{waiting}");
    assert!(finding(&waiting, "pending_interaction_stale").is_none());

    backdate(&h, &[("pending_interactions", "created_at")]);
    let payload = h.call("codex_analyze_issue", json!({"operation_id": id}));
    all_analyzers_ok(&payload);
    let stale = finding(&payload, "pending_interaction_stale").expect("stale approval");
    assert_eq!(
        stale["recommendedActions"][0],
        json!("expire_stale_pending_interactions")
    );
    assert!(payload["recommendedRepairActions"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("expire_stale_pending_interactions"))));
    assert!(finding(&payload, "pending_approval").is_none(), "{payload}");
}

#[test]
fn a_duplicate_prompt_names_the_running_operation() {
    let mut h = start_with("analyze-duplicate", &fake_app_server("hold_turn"));
    let first =
        op_id(&h.submit(json!({"operation_type": "start_chat", "message": "count the lines"})));
    h.wait_for(&first, Duration::from_secs(30), |s| s["turnId"].is_string());
    let refused = h.submit(json!({"operation_type": "start_chat", "message": "count the lines"}));
    assert_eq!(
        refused["error"]["code"],
        json!("CODEX_DUPLICATE_PROMPT_ACTIVE"),
        "{refused}"
    );
    let payload = h.call("codex_analyze_issue", json!({"operation_id": first}));
    all_analyzers_ok(&payload);
    let duplicate = finding(&payload, "duplicate_prompt").unwrap_or_else(|| panic!("{payload}"));
    assert_eq!(duplicate["subject"], json!(first));
    assert_eq!(
        payload["likelyRootCause"]["category"],
        json!("duplicate_prompt")
    );
}

#[test]
fn a_missing_codex_binary_is_found_without_starting_anything() {
    let mut h = Harness::start_with(
        "analyze-binary",
        &[("CODEX_BINARY_PATH", "/nonexistent/bin/codex")],
    );
    let payload = h.call("codex_analyze_issue", json!({}));
    all_analyzers_ok(&payload);
    assert_eq!(payload["overallStatus"], json!("broken"));
    assert_eq!(
        payload["likelyRootCause"]["category"],
        json!("codex_binary_missing"),
        "{payload}"
    );
    assert_eq!(
        payload["recommendedRepairActions"][0],
        json!("validate_paths_and_config")
    );
    assert!(!payload.to_string().contains("/nonexistent"), "{payload}");
}

#[test]
fn a_state_database_that_cannot_be_written_is_critical() {
    let mut h = Harness::start("analyze-db");
    assert!(finding(&h.call("codex_analyze_issue", json!({})), "mcp_state_db").is_none());
    // Another process holds the write lock for as long as the analysis runs.
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (locked, wait_locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        store
            .write_blocking(move |_tx| {
                let _ = locked.send(());
                let _ = held.recv_timeout(Duration::from_secs(60));
                Ok(())
            })
            .expect("held write");
    });
    wait_locked.recv().expect("lock taken");
    let payload = h.call("codex_analyze_issue", json!({}));
    let _ = release.send(());
    holder.join().expect("holder");
    all_analyzers_ok(&payload);
    let cause = &payload["likelyRootCause"];
    assert_eq!(cause["category"], json!("mcp_state_db"), "{payload}");
    assert_eq!(cause["severity"], json!("critical"));
    let db = finding(&payload, "mcp_state_db").expect("finding");
    assert!(
        db["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot write")),
        "{db}"
    );
}

#[test]
fn a_third_party_analyzer_contributes_and_a_runaway_one_is_reported() {
    let (_plugins, mut h) =
        Harness::start_with_hostile_plugin("analyze-third-party", "site-analyzer", "id = \"site-analyzer\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\nworlds = [\"analyzer\"]\n[limits]\ntimeout_ms = 300\n");
    let health = h.call("codex_health_summary", json!({}));
    let inventory = health["plugins"].to_string();
    assert!(
        inventory.contains("site-analyzer") && inventory.contains("work-analyzer"),
        "{inventory}"
    );

    let payload = h.call(
        "codex_analyze_issue",
        json!({"problem_text": "just looking"}),
    );
    let echo = finding(&payload, "echo").unwrap_or_else(|| panic!("{payload}"));
    assert_eq!(echo["analyzers"], json!(["site-analyzer"]));
    // It received the snapshot (it echoes it), redacted and in the documented schema.
    assert!(
        echo["message"]
            .as_str()
            .is_some_and(|m| m.contains("analyzer-snapshot/v1")),
        "{echo}"
    );

    let started = std::time::Instant::now();
    let runaway = h.call(
        "codex_analyze_issue",
        json!({"problem_text": "hostile-loop"}),
    );
    assert_eq!(runaway["ok"], json!(true), "{runaway}");
    let report = runaway["analyzers"]
        .as_array()
        .expect("analyzers")
        .iter()
        .find(|a| a["plugin"] == json!("site-analyzer"))
        .expect("site-analyzer ran")
        .clone();
    assert_eq!(report["status"], json!("failed"), "{report}");
    assert!(
        ["timeout", "out_of_fuel"].contains(&report["error"]["kind"].as_str().unwrap_or("")),
        "{report}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The default analyzers still answered.
    assert!(runaway["analyzers"].as_array().is_some_and(|a| a
        .iter()
        .any(|r| r["plugin"] == json!("work-analyzer") && r["status"] == json!("ok"))));
    assert!(runaway["nextDiagnosticSteps"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["tool"] == json!("codex_health_summary"))));
}

#[test]
fn the_default_analyzers_judge_the_largest_snapshot_within_their_budgets() {
    // The most a snapshot carries: 50 rows of each kind, 100 timeline entries, 50 log lines of 500
    // characters. Each default analyzer judges all of it within its fuel and deadline.
    let temp = support::mcp_client::TempDir::new("analyze-budget");
    let config = codex_control_plane::config::Config::for_tests(temp.path());
    let host = codex_control_plane::plugins::PluginHost::load(&config).expect("plugins");
    let hour = 3_600_000;
    let operations: Vec<Value> = (0..50)
        .map(|i| json!({"operationId": format!("op_{i:032x}"), "operationType": "start_chat", "status": "running",
                        "live": true, "idleMs": 2 * hour, "lastError": {"code": "CODEX_TIMEOUT", "message": "x".repeat(500)}}))
        .collect();
    let turns: Vec<Value> = (0..50)
        .map(|i| json!({"turnId": format!("turn-{i}"), "status": "inProgress", "live": true, "idleMs": 2 * hour}))
        .collect();
    let interactions: Vec<Value> = (0..50)
        .map(|i| json!({"interactionId": format!("int_{i}"), "kind": "approval", "status": "pending", "ageMs": hour}))
        .collect();
    let timeline: Vec<Value> = (0..100)
        .map(|i| json!({"at": "2026-11-26T08:00:00.000Z", "source": "operation", "event": "created", "id": format!("op_{i}")}))
        .collect();
    let logs: Vec<Value> = (0..50)
        .map(|i| json!({"severity": "warning", "message": format!("line {i} {}", "y".repeat(490))}))
        .collect();
    let snapshot = json!({
        "schemaVersion": "analyzer-snapshot/v1", "scope": {"scoped": true},
        "operations": operations, "turns": turns, "interactions": interactions,
        "timeline": timeline, "logs": logs,
    })
    .to_string();
    assert!(snapshot.len() > 70_000, "{}", snapshot.len());
    for report in host.analyze_all(&snapshot) {
        let findings = report
            .result
            .unwrap_or_else(|e| panic!("{} failed: {e}", report.plugin));
        assert!(!findings.is_empty(), "{} found nothing", report.plugin);
    }
}
