//! Admission as the seed's worker does it: write turns of one project queue behind the project's write slot,
//! read-only turns and write turns with disjoint `resource_keys` run side by side, and the locks are listed.

use std::time::Duration;

use serde_json::{json, Value};
use support::fake_model::Reply;

use crate::harness::{op_id, Harness};

fn slow(text: &str) -> Reply {
    Reply::after(Duration::from_millis(2500), Reply::text(text))
}

fn running(status: &Value) -> bool {
    status["turnId"].is_string() && status["terminal"] == json!(false)
}

/// Submits two operations and waits until the first runs; returns both ids.
fn pair(h: &mut Harness, first: Value, second: Value) -> (String, String) {
    let a = op_id(&h.submit(first));
    h.wait_for(&a, Duration::from_secs(30), running);
    let b = op_id(&h.submit(second));
    (a, b)
}

#[test]
fn write_turns_queue_per_project_while_reads_and_disjoint_keys_run_side_by_side() {
    let mut h = Harness::start("admission");
    h.model.push((0..6).map(|i| slow(&format!("done {i}"))));

    // Two write turns without resource keys: the second waits for the project's write slot.
    let (a, b) = pair(
        &mut h,
        json!({"operation_type": "start_chat", "message": "refactor the parser module", "sandbox": "workspace-write"}),
        json!({"operation_type": "start_chat", "message": "rename every test helper", "sandbox": "workspace-write"}),
    );
    let blocked = h.wait_for(&b, Duration::from_secs(10), |s| {
        s["queueState"]["queuedReason"] == json!("write_project_slot_limit")
    });
    assert_eq!(
        blocked["nextRecommendedAction"],
        json!("wait_for_resource_lock"),
        "{blocked}"
    );
    let concurrency = h.call("codex_get_concurrency_status", json!({}));
    let locks: Vec<String> = concurrency["resourceLocks"]
        .as_array()
        .expect("locks")
        .iter()
        .filter_map(|l| l["lockKey"].as_str().map(str::to_string))
        .collect();
    assert!(
        locks
            .iter()
            .any(|k| k.starts_with("project:") && k.ends_with(":write")),
        "{concurrency}"
    );
    assert!(
        locks
            .iter()
            .any(|k| k.starts_with("thread:") && k.ends_with(":active-turn")),
        "{concurrency}"
    );
    assert_eq!(concurrency["limits"]["writePerProject"], json!(1));
    assert_eq!(h.wait_terminal(&a)["status"], json!("completed"));
    assert_eq!(h.wait_terminal(&b)["status"], json!("completed"));

    // Two read-only turns run at the same time.
    let (c, d) = pair(
        &mut h,
        json!({"operation_type": "start_chat", "message": "explain the build script", "sandbox": "read-only"}),
        json!({"operation_type": "start_chat", "message": "list the public modules", "sandbox": "read-only"}),
    );
    h.wait_for(&d, Duration::from_secs(10), running);
    assert!(running(&h.status(&c)), "the first read still runs");
    assert_eq!(h.wait_terminal(&c)["status"], json!("completed"));
    assert_eq!(h.wait_terminal(&d)["status"], json!("completed"));

    // Two write turns with disjoint resource keys run at the same time.
    let (e, f) = pair(
        &mut h,
        json!({"operation_type": "start_chat", "message": "fix the store module", "sandbox": "workspace-write",
               "resource_keys": ["store"]}),
        json!({"operation_type": "start_chat", "message": "fix the docs folder", "sandbox": "workspace-write",
               "resource_keys": ["docs"]}),
    );
    h.wait_for(&f, Duration::from_secs(10), running);
    assert!(running(&h.status(&e)), "the first keyed write still runs");
    assert_eq!(h.wait_terminal(&e)["status"], json!("completed"));
    assert_eq!(h.wait_terminal(&f)["status"], json!("completed"));
}
