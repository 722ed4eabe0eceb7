//! What the production code sends to `codex app-server` conforms to the pinned protocol: the server under test
//! drives the real app-server through a wrapper that copies both directions of its stdio to files, a set of
//! flows runs over MCP, and every request, notification and reply we wrote is validated against the schema
//! `codex app-server generate-json-schema --experimental` prints for the same binary. No literal of ours is
//! checked: only the frames the builders emitted.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::fake_model::{Gate, Reply};
use support::peer::codex_binary;

use crate::harness::{op_id, Harness};

fn schema(dir: &Path, name: &str) -> Value {
    let path = dir.join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
        .expect("schema json")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `definitions` entry a `$ref` names.
fn definition<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let name = reference.trim_start_matches("#/definitions/");
    &root["definitions"][name]
}

#[test]
fn every_frame_we_send_to_app_server_conforms_to_the_pinned_schema() {
    let scratch = support::mcp_client::TempDir::new("conformance");
    let schemas = scratch.path().join("schema");
    support::peer::write_protocol_schema(&schemas);
    let wrapper = scratch.path().join("codex-tee");
    let (sent, received) = (
        scratch.path().join("in.log"),
        scratch.path().join("out.log"),
    );
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ntee -a {:?} | {:?} \"$@\" | tee -a {:?}\n",
            sent.display().to_string(),
            codex_binary().display().to_string(),
            received.display().to_string()
        ),
    )
    .expect("wrapper");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let binary = wrapper.display().to_string();
    let mut h = Harness::start_with("conformance", &[("CODEX_BINARY_PATH", binary.as_str())]);

    // A chat with a title and an output schema, an approval answered, a follow-up, a fork.
    h.model.push([
        Reply::exec("echo conformance > c.txt", "call_1"),
        Reply::text("{\"done\": true}"),
    ]);
    let first = op_id(&h.submit(json!({
        "operation_type": "start_chat", "message": "write the file", "title": "Conformance",
        "approval_policy": "untrusted", "sandbox": "workspace-write",
        "output_schema": {"type": "object", "properties": {"done": {"type": "boolean"}},
                          "required": ["done"], "additionalProperties": false},
    })));
    h.wait_for(&first, Duration::from_secs(30), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    let listed = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": first}),
    );
    let interaction = listed["interactions"][0]["interactionId"]
        .as_str()
        .expect("interaction")
        .to_string();
    h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": interaction, "decision": "accept"}),
    );
    let done = h.wait_terminal(&first);
    assert_eq!(done["status"], json!("completed"), "{done}");
    let thread = done["threadId"].as_str().expect("thread").to_string();
    h.model.push([Reply::text("again")]);
    let follow = op_id(&h.submit(
        json!({"operation_type": "send_message", "chat_id": thread, "message": "and once more"}),
    ));
    assert_eq!(h.wait_terminal(&follow)["status"], json!("completed"));
    let fork =
        op_id(&h.submit(json!({"operation_type": "fork_thread", "source_thread_id": thread})));
    assert_eq!(h.wait_terminal(&fork)["status"], json!("completed"));

    // A slow turn that is steered, another that is interrupted; then archive and unarchive.
    h.model.push([
        Reply::slow_text(
            "a slow answer that takes its time",
            20,
            Duration::from_millis(150),
        ),
        Reply::text("steered"),
    ]);
    let slow = op_id(&h.submit(
        json!({"operation_type": "send_message", "chat_id": thread, "message": "take your time"}),
    ));
    let running = h.wait_for(&slow, Duration::from_secs(30), |s| s["turnId"].is_string());
    let steer = op_id(
        &h.submit(json!({"operation_type": "steer_turn", "thread_id": thread,
        "expected_turn_id": running["turnId"], "message": "hurry up"})),
    );
    h.wait_terminal(&steer);
    h.wait_terminal(&slow);
    h.model.push([Reply::slow_text(
        "another slow answer, to be interrupted",
        40,
        Duration::from_millis(150),
    )]);
    let doomed = op_id(&h.submit(
        json!({"operation_type": "send_message", "chat_id": thread, "message": "this one gets stopped"}),
    ));
    h.wait_for(&doomed, Duration::from_secs(30), |s| {
        s["turnId"].is_string()
    });
    let interrupted = h.call("codex_interrupt_turn", json!({"operation_id": doomed}));
    assert_eq!(interrupted["interrupted"], json!(true), "{interrupted}");
    h.wait_terminal(&doomed);
    h.call("codex_archive_thread", json!({"thread_id": thread}));
    h.call("codex_unarchive_thread", json!({"thread_id": thread}));

    // A plan workflow with a goal: the goal is set while it executes, read on a live refresh and cleared at
    // the end; a live refresh of the workflow reads its thread. (The steered turn may not have asked for all
    // the replies scripted for it.)
    h.model.clear_script();
    let gate = Gate::new();
    h.model.push([Reply::held(
        &gate,
        Reply::text("Plan.\n<proposed_plan>\n1. Ship it\n</proposed_plan>"),
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the change", "goal": "ship the conformance change"}),
    );
    let planned = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&planned, |w| w["planTurn"]["turnId"].is_string());
    h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": planned, "refresh_live": true}),
    );
    gate.open();
    h.wait_workflow(&planned, |w| w["phase"] == json!("plan_ready"));
    crate::goals::execute_and_settle(&mut h, &planned, Duration::from_millis(300));
    h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": planned, "refresh_live_goal": true}),
    );

    // A review and a compaction.
    h.model.push([Reply::text("The file looks fine.")]);
    let review = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "custom", "instructions": "review c.txt"}),
    );
    let review_id = review["workflowId"]
        .as_str()
        .expect("review workflow")
        .to_string();
    h.wait_workflow(&review_id, |w| w["terminal"] == json!(true));
    h.model.push([Reply::text("Summary of the conversation.")]);
    let compaction = h.call(
        "codex_start_thread_compaction",
        json!({"thread_id": thread}),
    );
    let action = compaction["actionId"]
        .as_str()
        .expect("actionId")
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.call(
        "codex_get_thread_compaction_status",
        json!({"action_id": action}),
    )["terminal"]
        != json!(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "compaction did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // After a crash the thread is no longer loaded: the next message resumes it.
    h.crash_and_restart(&[("CODEX_BINARY_PATH", binary.as_str())]);
    h.model.push([Reply::text("resumed")]);
    let resumed = op_id(&h.submit(
        json!({"operation_type": "send_message", "chat_id": thread, "message": "after the restart"}),
    ));
    assert_eq!(h.wait_terminal(&resumed)["status"], json!("completed"));
    drop(h);

    let client_requests = schema(&schemas, "ClientRequest");
    let client_notifications = schema(&schemas, "ClientNotification");
    let server_requests = schema(&schemas, "ServerRequest");
    let request_validator = jsonschema::validator_for(&client_requests).expect("ClientRequest");
    let notification_validator =
        jsonschema::validator_for(&client_notifications).expect("ClientNotification");
    // Server requests app-server sent, by id, with the schema name of their params.
    let mut asked: HashMap<String, String> = HashMap::new();
    for frame in lines(&received) {
        let (Some(method), Some(id)) = (frame["method"].as_str(), frame.get("id")) else {
            continue;
        };
        let branch = server_requests["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .find(|b| b["properties"]["method"]["enum"][0] == json!(method))
            .unwrap_or_else(|| panic!("app-server sent an unknown request {method}"));
        let params = branch["properties"]["params"]["$ref"]
            .as_str()
            .expect("params ref")
            .trim_start_matches("#/definitions/")
            .to_string();
        asked.insert(id.to_string(), params);
    }

    let mut methods: Vec<String> = Vec::new();
    let mut replies = 0;
    for frame in lines(&sent) {
        match (frame["method"].as_str(), frame.get("id")) {
            (Some(method), Some(_)) => {
                let errors: Vec<String> = request_validator
                    .iter_errors(&frame)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{method}: {errors:?}\n{frame}");
                // Properties the schema does not know would be ignored silently by app-server.
                let branch = client_requests["oneOf"]
                    .as_array()
                    .expect("oneOf")
                    .iter()
                    .find(|b| b["properties"]["method"]["enum"][0] == json!(method))
                    .expect("branch");
                let known = &definition(
                    &client_requests,
                    branch["properties"]["params"]["$ref"]
                        .as_str()
                        .unwrap_or_default(),
                )["properties"];
                if let (Some(known), Some(params)) =
                    (known.as_object(), frame["params"].as_object())
                {
                    for key in params.keys() {
                        assert!(
                            known.contains_key(key),
                            "{method} has no property {key}: {frame}"
                        );
                    }
                }
                methods.push(method.to_string());
            }
            (Some(method), None) => {
                let errors: Vec<String> = notification_validator
                    .iter_errors(&frame)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{method}: {errors:?}");
            }
            (None, Some(id)) => {
                let params = asked
                    .get(&id.to_string())
                    .unwrap_or_else(|| panic!("a reply to no server request: {frame}"));
                let response = schema(&schemas, &params.replace("Params", "Response"));
                let validator = jsonschema::validator_for(&response).expect("response schema");
                let errors: Vec<String> = validator
                    .iter_errors(&frame["result"])
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "reply to {params}: {errors:?}\n{frame}");
                replies += 1;
            }
            (None, None) => panic!("a frame that is neither request nor reply: {frame}"),
        }
    }
    for expected in [
        "initialize",
        "thread/start",
        "turn/start",
        "turn/steer",
        "turn/interrupt",
        "thread/fork",
        "thread/archive",
        "thread/unarchive",
        "thread/name/set",
        "thread/read",
        "thread/goal/set",
        "thread/goal/get",
        "thread/goal/clear",
        "review/start",
        "thread/compact/start",
        "thread/resume",
    ] {
        assert!(
            methods.iter().any(|m| m == expected),
            "the flows sent no {expected}: {methods:?}"
        );
    }
    assert!(replies >= 1, "the approval reply was checked");
    // The fields that tie app-server's records to ours are on every frame that should carry them.
    for frame in lines(&sent) {
        match frame["method"].as_str() {
            Some("thread/start") => assert_eq!(
                frame["params"]["serviceName"],
                json!("codex-control-plane-mcp"),
                "{frame}"
            ),
            Some("turn/start") => assert!(
                frame["params"]["clientUserMessageId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("mcp-turn:")),
                "{frame}"
            ),
            Some("turn/steer") => assert!(
                frame["params"]["clientUserMessageId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("mcp-steer:")),
                "{frame}"
            ),
            _ => {}
        }
    }
}
