//! Diagnostics over MCP: `codex_get_runtime_capabilities` against the real codex app-server (and the scripted
//! one for a failing inventory method), and `codex_health_summary` on a fresh install, over stalled and failed
//! work, and with the background worker.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp_client::workspace_binary;

use crate::harness::{assert_invalid_argument, op_id, Harness};

pub fn fake_app_server(mode: &'static str) -> Vec<(&'static str, String)> {
    let fake =
        workspace_binary("codex-control-plane-tests", "fake-app-server").expect("fake app-server");
    vec![
        ("CODEX_BINARY_PATH", fake.display().to_string()),
        ("FAKE_APP_SERVER_MODE", mode.to_string()),
    ]
}

pub fn start_with(label: &str, extra: &[(&'static str, String)]) -> Harness {
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Harness::start_with(label, &extra)
}

/// A harness on the scripted app-server that exits mid-turn, and one `start_chat` it lost that way:
/// the harness, the operation id and its terminal status (asserted `unknown_after_app_server_exit`).
pub fn operation_lost_to_an_exit(label: &str) -> (Harness, String, Value) {
    let mut h = start_with(label, &fake_app_server("exit_mid_turn"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "crash please"})));
    let done = h.wait_terminal(&id);
    assert_eq!(
        done["status"],
        json!("unknown_after_app_server_exit"),
        "{done}"
    );
    (h, id, done)
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
    let (mut h, id, _) = operation_lost_to_an_exit("health-failed");
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
