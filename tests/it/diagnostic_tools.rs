//! The scoped diagnostics tools over MCP: `codex_collect_diagnostics` (checks, correlation, timeline, progress
//! journal) and `codex_get_diagnostic_logs` (log lines and journaled app-server frames), on an operation lost
//! to an app-server exit, a completed turn, and with the background worker.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::diagnostics::{fake_app_server, start_with};
use crate::harness::{assert_invalid_argument, op_id, Harness};

/// The check named `name` in a diagnostics payload.
fn check<'a>(payload: &'a Value, name: &str) -> &'a Value {
    payload["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == json!(name))
        .unwrap_or_else(|| panic!("no {name} check: {payload}"))
}

/// Calls `tool` until `done` holds for its answer (app-server frames reach the journal in batches, a fraction
/// of a second after the turn ended); panics with the last answer after ten seconds.
fn call_until(h: &mut Harness, tool: &str, args: Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let payload = h.call(tool, args.clone());
        if done(&payload) {
            return payload;
        }
        assert!(
            Instant::now() < deadline,
            "{tool} never got there: {payload}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `source event` of every timeline entry, oldest first.
fn timeline_events(payload: &Value) -> Vec<String> {
    payload["timeline"]["entries"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["source"].as_str().unwrap_or(""),
                e["event"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn diagnostics_of_an_operation_lost_to_an_app_server_exit_name_the_cause() {
    let (mut h, id, done) = crate::diagnostics::operation_lost_to_an_exit("diag-exit");
    let turn_id = done["turnId"].as_str().expect("turn id").to_string();

    let payload = call_until(
        &mut h,
        "codex_collect_diagnostics",
        json!({"operation_id": id, "include_logs": true}),
        |p| {
            timeline_events(p).contains(&"app_server in process/exited".to_string())
                && p["logs"]["lines"].as_array().is_some_and(|lines| {
                    lines.iter().any(|l| {
                        l["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("app-server exited"))
                    })
                })
        },
    );
    assert_eq!(payload["ok"], json!(true), "{payload}");
    assert_eq!(payload["overallStatus"], json!("broken"), "{payload}");
    let outcome = check(&payload, "operation_outcome");
    assert_eq!(outcome["status"], json!("error"));
    assert_eq!(outcome["details"]["category"], json!("app_server_exited"));
    assert_eq!(
        check(&payload, "turn_outcome")["details"]["category"],
        json!("app_server_exited")
    );
    assert!(payload["scopedFindings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|c| c["name"] == json!("operation_outcome"))));
    assert_eq!(payload["backgroundFindings"], json!([]));
    assert_eq!(payload["diagnosisConfidence"], json!("high"));
    // Operation, turn and thread are tied together; the creating calls are there.
    let correlation = &payload["correlation"];
    assert_eq!(correlation["operations"][0]["operationId"], json!(id));
    assert_eq!(correlation["turns"][0]["turnId"], json!(turn_id));
    assert_eq!(correlation["turns"][0]["operationId"], json!(id));
    assert_eq!(
        correlation["turns"][0]["status"],
        json!("unknown_after_app_server_exit")
    );
    assert_eq!(correlation["threadIds"], json!([done["threadId"]]));
    let intents: Vec<&str> = correlation["intents"]
        .as_array()
        .expect("intents")
        .iter()
        .filter_map(|i| i["method"].as_str())
        .collect();
    assert_eq!(intents, ["thread/start", "turn/start"], "{correlation}");
    // The timeline runs from the operation's creation to the turn lost with the exit.
    let events = timeline_events(&payload);
    assert_eq!(
        events.first().map(String::as_str),
        Some("operation created"),
        "{events:?}"
    );
    assert!(
        events.contains(&"app_server in process/exited".to_string()),
        "{events:?}"
    );
    let lost = payload["timeline"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["source"] == json!("turn") && e["event"] == json!("ended"))
        .unwrap_or_else(|| panic!("the turn's end is on the timeline: {events:?}"));
    assert_eq!(lost["status"], json!("unknown_after_app_server_exit"));
    // The exit's warning of this generation is among the log lines.
    let lines = payload["logs"]["lines"].as_array().expect("log lines");
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("app-server exited"))),
        "{lines:?}"
    );
    // Nothing names where the server's files are.
    let text = payload.to_string();
    assert!(
        !text.contains(&h.dir.path().display().to_string()),
        "{text}"
    );

    // The turn and the thread lead to the same operation.
    let by_turn = h.call("codex_collect_diagnostics", json!({"turn_id": turn_id}));
    assert_eq!(
        by_turn["correlation"]["operations"][0]["operationId"],
        json!(id)
    );
    let by_thread = h.call(
        "codex_collect_diagnostics",
        json!({"thread_id": done["threadId"]}),
    );
    assert_eq!(
        by_thread["correlation"]["operations"][0]["operationId"],
        json!(id)
    );
    let quiet = h.call(
        "codex_collect_diagnostics",
        json!({"operation_id": id, "include_timeline": false}),
    );
    assert_eq!(quiet["timeline"]["entries"], json!([]));
    assert!(quiet["logs"].is_null());

    // Without a scope the failure is a background finding, counted within since_minutes.
    let global = h.call("codex_collect_diagnostics", json!({}));
    assert_eq!(global["overallStatus"], json!("degraded"), "{global}");
    assert_eq!(global["scopedFindings"], json!([]));
    assert!(global["backgroundFindings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|c| c["name"] == json!("recent_errors"))));

    // Unknown ids and out-of-range bounds are refused, never guessed or clamped.
    let unknown = h.call(
        "codex_collect_diagnostics",
        json!({"operation_id": "op_nope"}),
    );
    assert_invalid_argument(&unknown, "operation_id");
    let unknown_turn = h.call("codex_collect_diagnostics", json!({"turn_id": "turn-nope"}));
    assert_eq!(
        unknown_turn["error"]["code"],
        json!("CODEX_TURN_NOT_FOUND"),
        "{unknown_turn}"
    );
    let unknown_thread = h.call(
        "codex_collect_diagnostics",
        json!({"thread_id": "thr-nope"}),
    );
    assert_eq!(
        unknown_thread["error"]["code"],
        json!("CODEX_THREAD_NOT_FOUND")
    );
    let too_many = h.call("codex_collect_diagnostics", json!({"event_limit": 501}));
    assert_invalid_argument(&too_many, "event_limit");
    assert_eq!(too_many["error"]["retryable"], json!(false));
}

#[test]
fn diagnostics_of_a_completed_turn_and_a_quiet_server() {
    let mut h = Harness::start("diag-done");
    // Before any work: healthy, nothing correlated, nothing started.
    let quiet = h.call("codex_collect_diagnostics", json!({}));
    assert_eq!(quiet["overallStatus"], json!("healthy"), "{quiet}");
    assert_eq!(quiet["scope"]["scoped"], json!(false));
    assert_eq!(quiet["correlation"]["operations"], json!([]));
    assert_eq!(
        check(&quiet, "codex_auth")["status"],
        json!("ok"),
        "the fake provider brings its key"
    );
    assert_eq!(
        check(&quiet, "app_server_running")["details"]["running"],
        json!(false)
    );

    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "say hello"}));
    let id = op_id(&submitted);
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("completed"), "{done}");
    let payload = call_until(
        &mut h,
        "codex_collect_diagnostics",
        json!({"operation_id": id}),
        |p| {
            p["correlation"]["appServerEventCount"]
                .as_u64()
                .is_some_and(|n| n > 0)
        },
    );
    assert_eq!(payload["overallStatus"], json!("healthy"), "{payload}");
    assert_eq!(payload["scopedFindings"], json!([]));
    assert_eq!(payload["nextRecommendedAction"], json!("none"));
    assert_eq!(
        payload["correlation"]["turns"][0]["status"],
        json!("completed")
    );
    let events = timeline_events(&payload);
    for expected in [
        "operation created",
        "turn started",
        "turn ended",
        "operation ended",
    ] {
        assert!(
            events.contains(&expected.to_string()),
            "{expected} in {events:?}"
        );
    }
    let journal = payload["progressJournal"].as_array().expect("journal");
    assert!(
        journal.iter().all(|p| p["turnId"] == done["turnId"]),
        "{journal:?}"
    );
}

#[test]
fn diagnostic_logs_show_warnings_and_frames_with_payloads_only_on_request() {
    // No log file: the server logs to stderr, and its warnings are read from its in-memory ring.
    let mut extra = fake_app_server("exit_mid_turn");
    extra.push(("CODEX_CONTROL_PLANE_MCP_LOG", String::new()));
    let mut h = start_with("diag-logs", &extra);
    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "crash please"}));
    let id = op_id(&submitted);
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );

    // The exit is logged while the turn is being settled: wait for the line.
    let logs = call_until(
        &mut h,
        "codex_get_diagnostic_logs",
        json!({"source": "mcp_log", "severity": "warning"}),
        |p| p.to_string().contains("app-server exited"),
    );
    assert_eq!(logs["ok"], json!(true), "{logs}");
    assert_eq!(logs["returnedEventCount"], json!(0));
    let lines = logs["logs"].as_array().expect("logs");
    let exit = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("app-server exited"))
        })
        .unwrap_or_else(|| panic!("the exit warning is served: {logs}"));
    assert_eq!(exit["severity"], json!("warning"));
    assert_eq!(exit["origin"], json!("this_process"), "{logs}");
    assert_eq!(logs["logSources"][0]["origin"], json!("this_process"));
    assert!(lines.iter().all(|l| l["severity"] != json!("info")));
    let errors_only = h.call(
        "codex_get_diagnostic_logs",
        json!({"source": "mcp_log", "severity": "error"}),
    );
    assert!(errors_only["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .all(|l| l["severity"] == json!("error")));

    // The journal has the generation's exit; a generation filter keeps to it; payloads only on request.
    let frames = call_until(
        &mut h,
        "codex_get_diagnostic_logs",
        json!({"source": "app_server_events"}),
        |p| {
            p["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["method"] == json!("process/exited")))
        },
    );
    assert_eq!(frames["auditMode"], json!("redacted"));
    assert_eq!(frames["returnedLogCount"], json!(0));
    let events = frames["events"].as_array().expect("events");
    let exited = events
        .iter()
        .find(|e| e["method"] == json!("process/exited"))
        .unwrap_or_else(|| panic!("the exit is journaled: {frames}"));
    assert!(events.iter().all(|e| e.get("payload").is_none()));
    let generation = exited["processGeneration"].as_i64().expect("generation");
    let of_generation = h.call(
        "codex_get_diagnostic_logs",
        json!({"source": "app_server_events", "process_generation": generation}),
    );
    let of_generation = of_generation["events"].as_array().expect("events");
    assert!(!of_generation.is_empty());
    assert!(of_generation
        .iter()
        .all(|e| e["processGeneration"] == json!(generation)));
    let none = h.call(
        "codex_get_diagnostic_logs",
        json!({"source": "app_server_events", "process_generation": generation + 100}),
    );
    assert_eq!(none["returnedEventCount"], json!(0));
    let audit = h.call(
        "codex_get_diagnostic_logs",
        json!({"source": "app_server_events", "include_payload": true, "limit": 1}),
    );
    assert_eq!(audit["auditMode"], json!("raw_audit"));
    assert!(audit["events"][0]["payload"].is_string(), "{audit}");

    for (args, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 1001}), "limit"),
        (json!({"max_line_chars": 199}), "max_line_chars"),
        (json!({"since_minutes": 10081}), "since_minutes"),
        (json!({"severity": "loud"}), "severity"),
        (json!({"source": "syslog"}), "source"),
    ] {
        let refused = h.call("codex_get_diagnostic_logs", args);
        assert_invalid_argument(&refused, field);
    }
}

#[test]
fn in_auto_mode_the_worker_owns_app_server_and_its_log_is_read() {
    let mut extra = fake_app_server("exit_mid_turn");
    extra.push(("CODEX_MCP_EXECUTION_MODE", "auto".into()));
    let mut h = start_with("diag-auto", &extra);
    let submitted =
        h.submit(json!({"operation_type": "start_chat", "message": "crash in the worker"}));
    let id = op_id(&submitted);
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );

    // The exit happened in the worker: its warning is in the worker's log file.
    let logs = call_until(
        &mut h,
        "codex_get_diagnostic_logs",
        json!({"source": "mcp_log", "severity": "warning"}),
        |p| {
            p["logs"].as_array().is_some_and(|lines| {
                lines.iter().any(|l| {
                    l["origin"] == json!("worker_log_file")
                        && l["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("app-server exited"))
                })
            })
        },
    );
    assert!(
        !logs
            .to_string()
            .contains(&h.dir.path().display().to_string()),
        "{logs}"
    );
    let payload = h.call("codex_collect_diagnostics", json!({"operation_id": id}));
    assert_eq!(payload["overallStatus"], json!("broken"), "{payload}");
    assert_eq!(
        check(&payload, "app_server_running")["details"]["ownedBy"],
        json!("background_worker")
    );
    assert_eq!(
        check(&payload, "operation_outcome")["details"]["category"],
        json!("app_server_exited")
    );
}

#[test]
fn a_pending_approval_is_found_and_no_output_shows_a_path_mail_or_token() {
    let mut h = Harness::start("diag-corpus");
    let command = "cat /srv/private/notes.txt # ada@example.com sk-abcdefghijklmnopqrst1234";
    h.model.push([
        support::fake_model::Reply::exec(command, "call_1"),
        support::fake_model::Reply::text("Done."),
    ]);
    let submitted = h.submit(json!({
        "operation_type": "start_chat",
        "message": "read the notes of ada@example.com in /srv/private",
        "approval_policy": "untrusted",
        "sandbox": "workspace-write",
    }));
    let id = op_id(&submitted);
    h.wait_for(&id, Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });

    // The approval request reaches the journal (in a batch, soon after): the raw-audit view shows its command's
    // path, and only that view.
    let audit = call_until(
        &mut h,
        "codex_get_diagnostic_logs",
        json!({"source": "app_server_events", "include_payload": true}),
        |p| p.to_string().contains("/srv/private"),
    );
    let payload = h.call(
        "codex_collect_diagnostics",
        json!({"operation_id": id, "include_logs": true}),
    );
    assert_eq!(payload["overallStatus"], json!("degraded"), "{payload}");
    let pending = check(&payload, "pending_interactions");
    assert_eq!(pending["details"]["category"], json!("pending_approval"));
    assert_eq!(
        pending["suggestedAction"],
        json!("codex_answer_pending_interaction")
    );
    assert_eq!(
        payload["correlation"]["interactions"][0]["status"],
        json!("pending")
    );
    assert!(timeline_events(&payload).contains(&"interaction approval asked".to_string()));
    let logs = h.call("codex_get_diagnostic_logs", json!({"severity": "debug"}));
    let secrets = ["ada@example.com", "sk-abcdefghijklmnopqrst1234"];
    for (name, output) in [
        ("collect", &payload),
        ("logs", &logs),
        ("raw audit", &audit),
    ] {
        let text = output.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{name} shows {secret}: {text}");
        }
    }
    // Paths are kept only in the raw-audit view.
    for (name, output) in [("collect", &payload), ("logs", &logs)] {
        let text = output.to_string();
        assert!(
            !text.contains("/srv/private"),
            "{name} shows the path: {text}"
        );
        assert!(
            !text.contains(&h.dir.path().display().to_string()),
            "{name}: {text}"
        );
    }
}
