//! The example site policy acting on real work: built by its documented command, loaded by one line of the
//! server's TOML configuration, and driven through MCP tool calls on the built binary with the real
//! `codex app-server` and the fake model. One server and one app-server for every case (CI time): a turn whose
//! model asks for three commands (one the policy accepts, one it declines, one it leaves to a person), then
//! submits the policy denies, narrows, or cannot decide because a later policy traps.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::fake_model::{Recorded, Reply};
use support::mcp_client::TempDir;
use support::wasm_plugins::{example_policy_plugin, plugin_folder, test_plugins, workspace_root};

use crate::harness::{op_id, Harness};

/// A policy that allows every action except the model `panic` (it traps there) and traps on every interaction:
/// the hostile test plugin under another id, loaded after the site policy (folders load in name order).
const TRAPPING_POLICY: &str = "id = \"trapping-policy\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\n\
    worlds = [\"policy\"]\n[config]\ninteractions = \"trap\"\n";

/// The spelling of `cmd` in app-server's approval request: `exec_command` runs it through a login shell, named
/// here so the spelling is the same on every machine.
const SHELL: &str = "/bin/bash";

/// An `exec_command` call running `cmd` in [`SHELL`].
fn exec(cmd: &str, call_id: &str) -> Reply {
    Reply::FunctionCall {
        name: "exec_command".into(),
        arguments: json!({"cmd": cmd, "shell": SHELL, "yield_time_ms": 2000}),
        call_id: call_id.into(),
    }
}

/// The output the model was sent for its call `call_id`, as text (empty when no request carries it).
fn call_output(requests: &[Recorded], call_id: &str) -> String {
    requests
        .iter()
        .filter_map(|request| request.body.get("input").and_then(Value::as_array))
        .flatten()
        .filter(|item| {
            item["type"] == json!("function_call_output") && item["call_id"] == json!(call_id)
        })
        .map(|item| match &item["output"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .next()
        .unwrap_or_default()
}

/// The plugins folder: the example as its documentation installs it, and the trapping policy.
fn plugins_folder(parent: &Path) {
    let wasm = example_policy_plugin().expect("the example builds by its documented command");
    let manifest =
        std::fs::read_to_string(workspace_root().join("examples/policy-plugin/plugin.toml"))
            .expect("example manifest");
    plugin_folder(parent, "site-policy", &manifest, &wasm).expect("site-policy folder");
    let hostile = test_plugins().expect("test plugins build").hostile;
    plugin_folder(parent, "trapping-policy", TRAPPING_POLICY, &hostile).expect("trapping folder");
}

#[test]
fn the_example_site_policy_answers_real_approvals_and_checks_submits() {
    let plugins = TempDir::new("site-policy-plugins");
    plugins_folder(&plugins.path().join("plugins"));
    // The one line that loads it, with the example's own [config]: its `ls` matches the approval app-server shows
    // for the model's `ls` (the shell line `/bin/bash -lc ls`, compared by its script).
    let config = plugins.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins]\ndirs = [{:?}]\n",
            plugins.path().join("plugins").display().to_string()
        ),
    )
    .expect("config file");
    let config = config.display().to_string();
    let mut h = Harness::start_with(
        "site-policy",
        &[("CODEX_CONTROL_PLANE_MCP_CONFIG", config.as_str())],
    );
    let health = h.call("codex_health_summary", json!({}));
    for id in ["site-policy", "trapping-policy"] {
        let entry = health["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == json!(id)).cloned());
        assert_eq!(
            entry.as_ref().map(|e| e["status"].clone()),
            Some(json!("loaded")),
            "{id}: {health}"
        );
    }

    // One turn, three command approvals: `ls` (allow-listed: accepted by the policy), `rm -rf build` (declined
    // by the policy), `touch asked.txt` (left to a person: the test answers it).
    std::fs::write(h.project.join("policy-marker.txt"), "x").expect("marker file");
    std::fs::create_dir_all(h.project.join("build")).expect("build dir");
    h.model.push([
        exec("ls", "call_ls"),
        exec("rm -rf build", "call_rm"),
        exec("touch asked.txt", "call_ask"),
        Reply::text("Three commands handled."),
    ]);
    let turn = op_id(&h.submit(json!({
        "operation_type": "start_chat",
        "message": "tidy the project",
        "approval_policy": "untrusted",
        "sandbox": "workspace-write",
    })));
    let waiting = h.wait_for(&turn, Duration::from_secs(30), |s| {
        s["status"] == json!("waiting_for_approval")
            && s["pendingInteractions"].to_string().contains("asked.txt")
    });
    let pending = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": turn}),
    );
    assert_eq!(pending["returnedCount"], json!(1), "{pending} {waiting}");
    let asked = &pending["interactions"][0];
    assert_eq!(asked["answeredBy"], Value::Null, "{asked}");
    let asked_id = asked["interactionId"].as_str().expect("id").to_string();
    // The first two were answered by the policy before anyone could see them pending.
    let answered = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": turn, "status": "answered"}),
    );
    let by_command = |needle: &str| {
        answered["interactions"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|i| i["params"]["command"].to_string().contains(needle))
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no answered interaction for {needle}: {answered}"))
    };
    assert_eq!(
        by_command("ls")["answeredBy"],
        json!("policy:site-policy"),
        "{answered}"
    );
    assert_eq!(
        by_command("rm -rf")["answeredBy"],
        json!("policy:site-policy"),
        "{answered}"
    );
    // The audit names the rule that answered, not only the plugin.
    assert_eq!(
        by_command("ls")["answeredRule"],
        json!("read_only_commands"),
        "{answered}"
    );
    assert_eq!(
        by_command("rm -rf")["answeredRule"],
        json!("rm_rf"),
        "{answered}"
    );
    // The accepted `ls` ran: its listing went back to the model. The declined `rm -rf` did not run.
    let requests = h.model.requests();
    let listing = call_output(&requests, "call_ls");
    assert!(listing.contains("policy-marker.txt"), "{listing}");
    assert!(h.project.join("build").is_dir(), "a declined rm -rf ran");
    let refused = call_output(&requests, "call_rm");
    assert!(!refused.is_empty(), "the model heard of the decline");

    let answer = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": asked_id, "decision": "accept"}),
    );
    assert_eq!(answer["answered"], json!(true), "{answer}");
    let done = h.wait_terminal(&turn);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert!(
        h.project.join("asked.txt").exists(),
        "the answered command ran"
    );

    // A denied model is refused before app-server sees a turn, naming the rule and the plugin.
    let calls = h.model.n_model_calls();
    let denied = op_id(
        &h.submit(json!({"operation_type": "start_chat", "message": "hi", "model": "gpt-4o"})),
    );
    let denied = h.wait_terminal(&denied);
    assert_eq!(denied["status"], json!("failed"), "{denied}");
    assert_eq!(
        denied["lastError"]["code"],
        json!("CODEX_POLICY_DENIED"),
        "{denied}"
    );
    let reason = denied["lastError"].to_string();
    assert!(
        reason.contains(
            "model gpt-4o is denied on this site (policy site-policy, rule denied_models)"
        ),
        "{reason}"
    );

    // A policy that traps cannot decide: the action is refused, and the server goes on serving.
    let trapped = op_id(
        &h.submit(json!({"operation_type": "start_chat", "message": "hi", "model": "panic"})),
    );
    let trapped = h.wait_terminal(&trapped);
    assert_eq!(trapped["status"], json!("failed"), "{trapped}");
    let reason = trapped["lastError"].to_string();
    assert!(
        reason.contains("policy plugin failed") && reason.contains("trapping-policy"),
        "{reason}"
    );
    assert_eq!(
        h.model.n_model_calls(),
        calls,
        "no refused work reached the model"
    );

    // `never` is narrowed to `on-request`: the operation shows what Codex was given.
    h.model.push([Reply::text("Narrowed.")]);
    let narrowed = op_id(
        &h.submit(json!({"operation_type": "start_chat", "message": "go",
                                          "approval_policy": "never"})),
    );
    let narrowed = h.wait_terminal(&narrowed);
    assert_eq!(narrowed["status"], json!("completed"), "{narrowed}");
    let policy = &narrowed["runtimePolicy"];
    assert_eq!(
        policy["requestedApprovalPolicy"],
        json!("never"),
        "{policy}"
    );
    assert_eq!(
        policy["effectiveApprovalPolicy"],
        json!("on-request"),
        "{policy}"
    );
    assert_eq!(policy["runtimePolicyAdjusted"], json!(true), "{policy}");
    assert_eq!(
        policy["policyNarrowing"]["rules"],
        json!("site-policy/narrow_never"),
        "{policy}"
    );
    let reason = policy["adjustmentReason"].as_str().unwrap_or_default();
    assert!(reason.contains("site-policy/narrow_never"), "{policy}");
}
