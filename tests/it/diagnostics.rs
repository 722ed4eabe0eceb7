//! Diagnostics over MCP: `codex_get_runtime_capabilities` against the real codex app-server (and the scripted
//! one for a failing inventory method), and `codex_health_summary` on a fresh install, over stalled and failed
//! work, and with the background worker.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp_client::workspace_binary;

use crate::harness::{assert_invalid_argument, op_id, Harness};

fn fake_app_server(mode: &'static str) -> Vec<(&'static str, String)> {
    let fake =
        workspace_binary("codex-control-plane-tests", "fake-app-server").expect("fake app-server");
    vec![
        ("CODEX_BINARY_PATH", fake.display().to_string()),
        ("FAKE_APP_SERVER_MODE", mode.to_string()),
    ]
}

fn start_with(label: &str, extra: &[(&'static str, String)]) -> Harness {
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Harness::start_with(label, &extra)
}

fn method_result<'a>(payload: &'a Value, method: &str) -> &'a Value {
    payload["methodResults"]
        .as_array()
        .expect("methodResults")
        .iter()
        .find(|r| r["method"] == json!(method))
        .unwrap_or_else(|| panic!("no methodResults entry for {method}: {payload}"))
}

fn health(h: &mut Harness) -> Value {
    h.call("codex_health_summary", json!({}))
}

#[test]
fn runtime_capabilities_of_the_real_app_server_are_cached_and_redacted() {
    let mut h = Harness::start("caps-real");
    let first = h.call("codex_get_runtime_capabilities", json!({}));
    assert_eq!(first["ok"], json!(true), "{first}");
    let caps = &first["runtimeCapabilities"];
    // Offline and signed out: usage and rate limits say so, which is no failure.
    assert_eq!(caps["status"], json!("ok"), "{first}");
    assert_eq!(first["cached"], json!(false));
    let models = caps["models"]["items"].as_array().expect("models");
    assert!(
        !models.is_empty(),
        "the bundled catalog has models: {first}"
    );
    assert!(models.iter().all(|m| m["id"].is_string()));
    assert!(caps["models"]["defaultModel"].is_string(), "{first}");
    assert_eq!(caps["accountStatus"]["signedIn"], json!(false));
    assert_eq!(
        method_result(&first, "account/usage/read")["status"],
        json!("not_signed_in")
    );
    assert_eq!(method_result(&first, "model/list")["status"], json!("ok"));
    assert_eq!(
        first["methodResults"].as_array().map(Vec::len),
        Some(8),
        "{first}"
    );
    let schema = &caps["schemaMethods"];
    assert_eq!(schema["status"], json!("ok"), "{schema}");
    assert_eq!(schema["source"], json!("generate-json-schema"));
    assert!(schema["codexVersion"]
        .as_str()
        .is_some_and(|v| v.contains("0.169")));
    assert_eq!(schema["schemaHash"].as_str().map(str::len), Some(64));
    let methods = schema["methods"].as_array().expect("methods");
    assert!(methods.contains(&json!("model/list")) && methods.contains(&json!("turn/start")));
    assert_eq!(caps["sandboxReadiness"]["platform"], json!("linux"));
    let text = first.to_string();
    assert!(!text.contains('@'), "no e-mail in the output: {text}");

    // The second call is the stored snapshot; refresh asks again.
    let second = h.call("codex_get_runtime_capabilities", json!({}));
    assert_eq!(second["cached"], json!(true), "{second}");
    assert_eq!(second["cachedAt"], first["cachedAt"]);
    assert_eq!(second["cacheState"]["hit"], json!(true));
    assert_eq!(second["runtimeCapabilities"], first["runtimeCapabilities"]);
    let refreshed = h.call("codex_get_runtime_capabilities", json!({"refresh": true}));
    assert_eq!(refreshed["cached"], json!(false), "{refreshed}");
    assert_ne!(refreshed["cachedAt"], first["cachedAt"]);
    // Other flags are another snapshot.
    let no_models = h.call(
        "codex_get_runtime_capabilities",
        json!({"include_models": false}),
    );
    assert_eq!(no_models["cached"], json!(false));
    assert_eq!(
        method_result(&no_models, "model/list")["status"],
        json!("skipped")
    );
    assert!(no_models["runtimeCapabilities"]["models"].is_null());

    // The health summary shows the newest snapshot without asking app-server.
    let summary = health(&mut h);
    assert_eq!(summary["runtimeCapabilities"]["status"], json!("ok"));
    assert_eq!(
        summary["runtimeCapabilities"]["capturedAt"],
        no_models["cachedAt"]
    );

    let refused = h.call(
        "codex_get_runtime_capabilities",
        json!({"cwd": "relative/dir"}),
    );
    assert_invalid_argument(&refused, "cwd");
    let outside = h.call("codex_get_runtime_capabilities", json!({"cwd": "/etc"}));
    assert_invalid_argument(&outside, "cwd");
}

#[test]
fn one_failing_inventory_method_makes_the_snapshot_partial() {
    let mut h = start_with("caps-partial", &fake_app_server("inventory_partial"));
    let payload = h.call(
        "codex_get_runtime_capabilities",
        json!({"timeout_seconds": 5}),
    );
    assert_eq!(payload["ok"], json!(true), "{payload}");
    assert_eq!(
        payload["runtimeCapabilities"]["status"],
        json!("partial"),
        "{payload}"
    );
    let skills = method_result(&payload, "skills/list");
    assert_eq!(skills["status"], json!("error"), "{payload}");
    assert_eq!(skills["errorCode"], json!(-32603));
    assert!(payload["runtimeCapabilities"]["skills"].is_null());
    assert_eq!(method_result(&payload, "model/list")["status"], json!("ok"));
    assert!(payload["warnings"].as_array().is_some_and(|w| w
        .iter()
        .any(|w| w.as_str().is_some_and(|w| w.contains("skills/list")))));
    // The fake's schema lists what it serves; its version is its own.
    assert_eq!(
        payload["runtimeCapabilities"]["schemaMethods"]["codexVersion"],
        json!("codex-cli 0.0.0-fake")
    );
    assert_eq!(
        payload["nextRecommendedAction"],
        json!("inspect_method_results")
    );
    let summary = health(&mut h);
    assert_eq!(summary["runtimeCapabilities"]["status"], json!("partial"));
}

#[test]
fn a_fresh_install_is_healthy() {
    let mut h = Harness::start("health-fresh");
    let summary = health(&mut h);
    assert_eq!(summary["overallStatus"], json!("healthy"), "{summary}");
    assert_eq!(summary["nextRecommendedAction"], json!("none"));
    assert_eq!(summary["worker"]["state"], json!("inline"));
    assert_eq!(summary["activeWork"]["runningOperations"], json!(0));
    assert_eq!(summary["stallSupervisor"]["stalledTurnCount"], json!(0));
    assert_eq!(summary["historicalDebt"]["staleOperations"], json!(0));
    assert_eq!(summary["recentErrors"]["count"], json!(0));
    assert_eq!(summary["pluginErrors"], json!([]));
    assert_eq!(summary["runtimeCapabilities"]["status"], json!("unknown"));
    assert_eq!(
        summary["appServer"]["running"],
        json!(false),
        "health never starts it"
    );
}

#[test]
fn a_stalled_turn_makes_health_degraded() {
    let mut h = start_with("health-stalled", &fake_app_server("hold_turn"));
    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "hold on"}));
    let id = op_id(&submitted);
    h.wait_for(&id, Duration::from_secs(30), |s| {
        s["turnId"].is_string() && s["status"] != json!("queued")
    });
    assert_eq!(health(&mut h)["overallStatus"], json!("healthy"));

    // Two hours without activity, as far as the store can tell.
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let past = codex_control_plane::time::now_ms() - 2 * 3_600_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.write(move |tx| {
            for table in ["tracked_turns", "codex_operations"] {
                tx.execute(&format!("UPDATE {table} SET updated_at = ?1"), [past])?;
            }
            for table in ["tracked_turn_progress_events", "tracked_turn_messages"] {
                tx.execute(&format!("UPDATE {table} SET created_at = ?1"), [past])?;
            }
            Ok(())
        }))
        .expect("backdate");
    drop(store);

    let summary = health(&mut h);
    assert_eq!(summary["overallStatus"], json!("degraded"), "{summary}");
    assert_eq!(summary["stallSupervisor"]["stalledTurnCount"], json!(1));
    assert_eq!(
        summary["stallSupervisor"]["stalledTurns"][0]["operationId"],
        json!(id)
    );
    assert_eq!(summary["historicalDebt"]["staleOperations"], json!(1));
    assert_eq!(
        summary["nextRecommendedAction"],
        json!("recover_stale_operations")
    );
    // A wider stale window does not count it.
    let patient = h.call("codex_health_summary", json!({"stale_after_minutes": 600}));
    assert_eq!(patient["overallStatus"], json!("healthy"), "{patient}");
}

#[test]
fn a_failed_operation_makes_health_degraded() {
    let mut h = start_with("health-failed", &fake_app_server("exit_mid_turn"));
    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "crash please"}));
    let id = op_id(&submitted);
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );
    let summary = health(&mut h);
    assert_eq!(summary["overallStatus"], json!("degraded"), "{summary}");
    assert_eq!(summary["recentErrors"]["count"], json!(1));
    assert_eq!(summary["recentErrors"]["items"][0]["id"], json!(id));
    assert_eq!(
        summary["nextRecommendedAction"],
        json!("inspect_recent_errors")
    );
    let quiet = h.call(
        "codex_health_summary",
        json!({"include_recent_errors": false}),
    );
    assert_eq!(quiet["recentErrors"]["items"], json!([]));
    assert_eq!(quiet["recentErrors"]["count"], json!(1));
}

#[test]
fn in_auto_mode_the_worker_takes_the_snapshot_and_a_cache_hit_needs_none() {
    let mut extra = fake_app_server("normal");
    extra.push(("CODEX_MCP_EXECUTION_MODE", "auto".into()));
    let mut h = start_with("caps-worker", &extra);
    let first = h.call("codex_get_runtime_capabilities", json!({}));
    assert_eq!(first["ok"], json!(true), "{first}");
    assert!(
        first["workerCommandId"].is_string(),
        "asked through the worker: {first}"
    );
    assert_eq!(
        first["runtimeCapabilities"]["status"],
        json!("ok"),
        "{first}"
    );
    let second = h.call("codex_get_runtime_capabilities", json!({}));
    assert_eq!(second["cached"], json!(true));
    assert!(second.get("workerCommandId").is_none(), "{second}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let summary = loop {
        let summary = health(&mut h);
        if summary["worker"]["state"] == json!("running") || Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(summary["worker"]["executionMode"], json!("auto"));
    assert_eq!(summary["worker"]["state"], json!("running"), "{summary}");
    assert_eq!(summary["runtimeCapabilities"]["status"], json!("ok"));
}

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
    let mut h = start_with("diag-exit", &fake_app_server("exit_mid_turn"));
    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "crash please"}));
    let id = op_id(&submitted);
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );
    let turn_id = done["turnId"].as_str().expect("turn id").to_string();

    let payload = call_until(
        &mut h,
        "codex_collect_diagnostics",
        json!({"operation_id": id, "include_logs": true}),
        |p| timeline_events(p).contains(&"app_server in process/exited".to_string()),
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
    let payload = h.call("codex_collect_diagnostics", json!({"operation_id": id}));
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
    assert!(payload["correlation"]["appServerEventCount"]
        .as_u64()
        .is_some_and(|n| n > 0));
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

    let logs = h.call(
        "codex_get_diagnostic_logs",
        json!({"source": "mcp_log", "severity": "warning"}),
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
