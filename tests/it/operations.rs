//! Durable operations over MCP: the real server binary, the real codex app-server, the fake model.

use std::time::Duration;

use serde_json::json;
use support::fake_model::Reply;

use crate::harness::{op_id, Harness};

#[test]
fn start_chat_completes_with_the_model_text_and_retries_are_idempotent() {
    let mut h = Harness::start("ops-start-chat");
    h.model.push([Reply::text("Hello from the fake model.")]);
    let args = json!({"operation_type": "start_chat", "message": "say hello", "client_request_id": "req-1"});
    let submitted = h.submit(args.clone());
    assert_eq!(submitted["ok"], json!(true), "{submitted}");
    assert_eq!(submitted["idempotent"], json!(false));
    let id = op_id(&submitted);

    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        done["finalReport"]["text"],
        json!("Hello from the fake model.")
    );
    assert!(
        done["threadId"].is_string() && done["turnId"].is_string(),
        "{done}"
    );
    assert_eq!(done["nextRecommendedAction"], json!("read_final_report"));
    assert_eq!(done["turnStatus"], json!("completed"));
    assert!(
        !done["latestMessages"]
            .as_array()
            .expect("messages")
            .is_empty(),
        "{done}"
    );

    // The same key again: the same operation, and no second model call.
    let again = h.submit(args);
    assert_eq!(op_id(&again), id);
    assert_eq!(again["idempotent"], json!(true));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        h.model.n_model_calls(),
        1,
        "a retry must not start a second turn"
    );

    // The same key with another payload is refused and names the difference.
    let reused = h.submit(json!({"operation_type": "start_chat", "message": "something else", "client_request_id": "req-1"}));
    assert_eq!(reused["ok"], json!(false));
    assert_eq!(
        reused["error"]["code"],
        json!("CODEX_IDEMPOTENCY_KEY_REUSED"),
        "{reused}"
    );
    assert!(
        reused["error"]["details"]["differingFields"]
            .to_string()
            .contains("message"),
        "{reused}"
    );

    // The turn's own view agrees.
    let turn_id = done["turnId"].as_str().expect("turn").to_string();
    let turn = h.call("codex_get_turn_status", json!({"turn_id": turn_id}));
    assert_eq!(turn["status"], json!("completed"));
    assert_eq!(turn["terminalEvidence"]["trusted"], json!(true));
    assert_eq!(turn["finalMessage"], json!("Hello from the fake model."));

    // send_message continues the same thread (chat_id is the thread id, as in the seed).
    h.model.push([Reply::text("Second answer.")]);
    let thread = done["threadId"].as_str().expect("thread").to_string();
    let follow = h.submit(
        json!({"operation_type": "send_message", "chat_id": thread, "message": "and again"}),
    );
    let follow_done = h.wait_terminal(&op_id(&follow));
    assert_eq!(follow_done["status"], json!("completed"), "{follow_done}");
    assert_eq!(follow_done["threadId"], json!(thread));
    assert_eq!(follow_done["finalReport"]["text"], json!("Second answer."));
    assert_eq!(h.model.n_model_calls(), 2);

    let workers = h.call("codex_get_worker_status", json!({}));
    assert_eq!(workers["workers"][0]["alive"], json!(true), "{workers}");
    let queue = h.call("codex_get_queue_status", json!({}));
    assert_eq!(queue["queueSummary"]["queued"], json!(0), "{queue}");
    let _ = h.dir.path();
}

#[test]
fn duplicate_prompt_is_refused_while_active_and_interrupt_ends_the_turn() {
    let mut h = Harness::start("ops-dup");
    let prompt = "Please refactor the storage layer to use WAL mode and add tests for it";
    h.model.push([Reply::slow_text(
        &"streaming slowly ".repeat(40),
        40,
        Duration::from_millis(100),
    )]);
    let first = h.submit(json!({"operation_type": "start_chat", "message": prompt}));
    let id = op_id(&first);
    h.wait_for(&id, Duration::from_secs(20), |s| {
        s["status"] == json!("running")
    });

    let duplicate =
        h.submit(json!({"operation_type": "start_chat", "message": format!("  {prompt}  ")}));
    assert_eq!(duplicate["ok"], json!(false));
    assert_eq!(
        duplicate["error"]["code"],
        json!("CODEX_DUPLICATE_PROMPT_ACTIVE"),
        "{duplicate}"
    );
    assert_eq!(
        duplicate["error"]["details"]["existingOperationId"],
        json!(id)
    );

    let interrupted = h.call("codex_interrupt_turn", json!({"operation_id": id}));
    assert_eq!(interrupted["interrupted"], json!(true), "{interrupted}");
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("interrupted"), "{done}");
    assert!(
        h.model.n_model_calls() <= 1,
        "one turn at most reached the model"
    );
}

#[test]
fn command_approval_is_a_pending_interaction_answered_through_the_tool() {
    let mut h = Harness::start("ops-approval");
    h.model.push([
        Reply::exec("echo approved-ok > approved.txt", "call_1"),
        Reply::text("Wrote the file."),
    ]);
    let submitted = h.submit(json!({
        "operation_type": "start_chat",
        "message": "write a file",
        "approval_policy": "untrusted",
        "sandbox": "workspace-write",
    }));
    let id = op_id(&submitted);
    let waiting = h.wait_for(&id, Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    assert_eq!(
        waiting["nextRecommendedAction"],
        json!("answer_pending_interaction"),
        "{waiting}"
    );

    let listed = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": id}),
    );
    assert_eq!(listed["returnedCount"], json!(1), "{listed}");
    let interaction = &listed["interactions"][0];
    assert_eq!(interaction["kind"], json!("approval"));
    let interaction_id = interaction["interactionId"]
        .as_str()
        .expect("id")
        .to_string();

    let bad = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": interaction_id, "decision": "acceptForSessionX"}),
    );
    assert_eq!(bad["ok"], json!(false), "{bad}");

    let answered = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": interaction_id, "decision": "accept"}),
    );
    assert_eq!(answered["answered"], json!(true), "{answered}");
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(done["finalReport"]["text"], json!("Wrote the file."));
    assert!(
        h.project.join("approved.txt").exists(),
        "the approved command ran in the project"
    );

    let again = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": interaction_id, "decision": "accept"}),
    );
    assert_eq!(
        again["error"]["code"],
        json!("CODEX_PENDING_INTERACTION_UNAVAILABLE"),
        "{again}"
    );
}

#[test]
fn output_schema_yields_a_structured_report_and_bad_input_is_refused() {
    let mut h = Harness::start("ops-schema");
    h.model.push([Reply::text(
        "Result:\n```json\n{\"summary\": \"all good\", \"files\": 2}\n```",
    )]);
    let schema = json!({"type": "object", "properties": {"summary": {"type": "string"}, "files": {"type": "integer"}},
                        "required": ["summary", "files"], "additionalProperties": false});
    let submitted = h.submit(
        json!({"operation_type": "start_chat", "message": "report", "output_schema": schema}),
    );
    let done = h.wait_terminal(&op_id(&submitted));
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        done["finalReport"]["structured"],
        json!({"summary": "all good", "files": 2}),
        "{done}"
    );
    assert_eq!(
        done["finalReport"]["structuredParseStatus"],
        json!("valid_json")
    );

    let outside = h.submit(json!({"operation_type": "start_chat", "message": "look",
        "input_items": [{"type": "localImage", "path": "/etc/hostname.png"}]}));
    assert_eq!(
        outside["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{outside}"
    );

    let unknown = h.call(
        "codex_get_operation_status",
        json!({"operation_id": "op_missing"}),
    );
    assert_eq!(
        unknown["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{unknown}"
    );
    let out_of_range = h.call(
        "codex_get_operation_status",
        json!({"operation_id": "x", "last_messages": 500}),
    );
    assert_eq!(
        out_of_range["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{out_of_range}"
    );
}

#[test]
fn a_crash_ends_the_running_turn_unknown_and_queued_work_runs_once_after_restart() {
    let mut h = Harness::start("ops-crash");
    let one_at_a_time = [("CODEX_MCP_MAX_ACTIVE_TURNS_GLOBAL", "1")];
    h.crash_and_restart(&one_at_a_time);
    h.model.push([Reply::slow_text(
        &"working on it ".repeat(40),
        40,
        Duration::from_millis(100),
    )]);
    let running =
        op_id(&h.submit(json!({"operation_type": "start_chat", "message": "first task"})));
    h.wait_for(&running, Duration::from_secs(20), |s| {
        s["status"] == json!("running")
    });
    // Committed but not started: the global limit of 1 keeps them queued.
    let queued: Vec<String> = (0..3)
        .map(|i| {
            op_id(&h.submit(
                json!({"operation_type": "start_chat", "message": format!("queued task {i}")}),
            ))
        })
        .collect();
    // The submit answers once the row is committed; the dispatcher's claim, which records why it waits, follows.
    let status = h.wait_for(&queued[0], Duration::from_secs(10), |s| {
        s["queueState"]["queuedReason"] != json!("waiting_for_worker")
    });
    assert_eq!(
        status["queueState"]["queuedReason"],
        json!("global_slot_limit"),
        "{status}"
    );

    // kill -9: no shutdown code runs; the server's codex child exits when its stdin closes.
    h.crash_and_restart(&one_at_a_time);
    let ended = h.wait_terminal(&running);
    assert_eq!(
        ended["status"],
        json!("unknown_after_app_server_exit"),
        "{ended}"
    );
    assert_eq!(ended["nextRecommendedAction"], json!("inspect_diagnostics"));
    for id in &queued {
        let done = h.wait_terminal(id);
        assert_eq!(done["status"], json!("completed"), "{done}");
    }
    std::thread::sleep(Duration::from_millis(300));
    // Each queued operation reached the model exactly once; the killed turn at most once (it may die
    // between `turn/start` and its model request).
    let texts: Vec<String> = h
        .model
        .requests()
        .iter()
        .map(|r| r.user_texts().join("\n"))
        .collect();
    for i in 0..3 {
        let wanted = format!("queued task {i}");
        let n = texts.iter().filter(|t| t.ends_with(&wanted)).count();
        assert_eq!(n, 1, "{wanted} reached the model {n} times: {texts:?}");
    }
    let first = texts.iter().filter(|t| t.ends_with("first task")).count();
    assert!(first <= 1, "the killed turn was sent {first} times");
    let workers = h.call("codex_get_worker_status", json!({}));
    let recovered = &workers["startupRecovery"];
    assert!(
        recovered["running"].to_string().contains(&running),
        "{workers}"
    );
}

#[test]
fn two_servers_on_one_database_run_each_operation_exactly_once() {
    let mut h = Harness::start("ops-two-servers");
    // Limits above the seed's defaults keep the run short; the global limit still spans both processes.
    let limits = [
        ("CODEX_MCP_MAX_ACTIVE_TURNS_GLOBAL", "8"),
        ("CODEX_MCP_MAX_ACTIVE_TURNS_PER_PROJECT", "8"),
    ];
    h.crash_and_restart(&limits);
    let (mut second, _) = Harness::spawn_with(&h.dir, &h._home, &limits);
    let n = 200;
    let mut ids = Vec::new();
    for i in 0..n {
        let args = json!({"operation_type": "start_chat", "message": format!("parallel task {i}"),
                          "project_id": h.project.display().to_string()});
        let payload = if i % 2 == 0 {
            h.submit(args)
        } else {
            second
                .call_tool("codex_submit_task", args)
                .expect("submit on the second server")
        };
        ids.push(op_id(&payload));
    }
    let mut owners = std::collections::HashSet::new();
    for id in &ids {
        let done = h.wait_for(id, Duration::from_secs(300), |s| {
            s["terminal"] == json!(true)
        });
        assert_eq!(done["status"], json!("completed"), "{done}");
        owners.insert(done["queueState"]["workerId"].to_string());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        h.model.n_model_calls(),
        n,
        "every operation ran exactly once across both servers"
    );
    // Two live workers; the processes killed by the restart above are listed as not alive.
    let workers = h.call("codex_get_worker_status", json!({}));
    assert_eq!(
        workers["workers"]
            .as_array()
            .map(|w| w.iter().filter(|w| w["alive"] == json!(true)).count()),
        Some(2),
        "{workers}"
    );
    second
        .close(Duration::from_secs(15))
        .expect("second server exits");
}

#[test]
fn steer_joins_the_active_turn_and_forks_copy_the_thread() {
    let mut h = Harness::start("ops-steer-fork");
    h.model.push([
        Reply::slow_text(
            &"thinking out loud ".repeat(40),
            40,
            Duration::from_millis(100),
        ),
        Reply::text("Steered answer."),
    ]);
    let first = op_id(
        &h.submit(json!({"operation_type": "start_chat", "message": "start something long"})),
    );
    let running = h.wait_for(&first, Duration::from_secs(20), |s| {
        s["status"] == json!("running")
    });
    let thread = running["threadId"].as_str().expect("thread").to_string();
    let turn = running["turnId"].as_str().expect("turn").to_string();
    // Let the stream start, so the steer lands mid-turn.
    std::thread::sleep(Duration::from_millis(400));
    let steer = op_id(&h.submit(json!({"operation_type": "steer_turn", "thread_id": thread,
                                        "expected_turn_id": turn, "message": "focus on the tests instead"})));
    let steered = h.wait_terminal(&steer);
    assert_eq!(steered["status"], json!("completed"), "{steered}");
    assert_eq!(
        steered["turnId"],
        json!(turn),
        "a steer follows the turn it joined"
    );
    assert_eq!(steered["steerState"]["joinedTurnId"], json!(turn));
    let done = h.wait_terminal(&first);
    assert_eq!(
        done["finalReport"]["text"],
        json!("Steered answer."),
        "{done}"
    );
    let texts: Vec<String> = h
        .model
        .requests()
        .iter()
        .flat_map(|r| r.user_texts())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("focus on the tests instead")),
        "{texts:?}"
    );

    // A fork without a message completes as soon as the new thread exists.
    let fork =
        op_id(&h.submit(json!({"operation_type": "fork_thread", "source_thread_id": thread})));
    let forked = h.wait_terminal(&fork);
    assert_eq!(forked["status"], json!("completed"), "{forked}");
    assert_eq!(forked["nextRecommendedAction"], json!("read_forked_thread"));
    let copy = forked["threadId"]
        .as_str()
        .expect("forked thread")
        .to_string();
    assert_ne!(copy, thread);
    assert_eq!(forked["forkState"]["sourceThreadId"], json!(thread));

    // With a message, the fork runs a turn on the copy.
    h.model.push([Reply::text("Answer on the fork.")]);
    let calls = h.model.n_model_calls();
    let fork_turn = op_id(&h.submit(
        json!({"operation_type": "fork_thread", "source_thread_id": thread,
                                            "message": "continue on a copy"}),
    ));
    let fork_done = h.wait_terminal(&fork_turn);
    assert_eq!(fork_done["status"], json!("completed"), "{fork_done}");
    assert_eq!(
        fork_done["finalReport"]["text"],
        json!("Answer on the fork.")
    );
    assert_ne!(fork_done["threadId"], json!(thread));
    assert_eq!(h.model.n_model_calls(), calls + 1);
}

#[test]
fn an_interaction_can_be_answered_through_another_server_and_expires_unanswered() {
    let mut h = Harness::start("ops-cross-answer");
    // The first server gets a short approval timeout so the second approval expires.
    h.crash_and_restart(&[("CODEX_MCP_APPROVAL_RESPONSE_TIMEOUT_SECONDS", "3")]);
    let (mut other, _) = Harness::spawn(&h.dir, &h._home);
    h.model.push([
        Reply::exec("echo one > one.txt", "call_1"),
        Reply::text("First done."),
    ]);
    let first = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "write one",
                                       "approval_policy": "untrusted", "sandbox": "workspace-write"})));
    let waiting = h.wait_for(&first, Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    let interaction_id = waiting["pendingInteractions"][0]["interactionId"]
        .as_str()
        .expect("interaction")
        .to_string();
    // The other process sees it and answers it; the owner delivers the answer.
    let listed = other
        .call_tool("codex_list_pending_interactions", json!({}))
        .expect("list");
    assert_eq!(listed["returnedCount"], json!(1), "{listed}");
    let answered = other
        .call_tool(
            "codex_answer_pending_interaction",
            json!({"interaction_id": interaction_id, "decision": "accept"}),
        )
        .expect("answer");
    assert_eq!(
        answered["delivery"],
        json!("queued_for_owner"),
        "{answered}"
    );
    let done = h.wait_terminal(&first);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert!(h.project.join("one.txt").exists());

    // Nobody answers the next one: it is auto-declined after the timeout. Codex offers no `decline` here, so
    // the seed's rule answers `cancel`, which ends the turn `interrupted` (never `completed`).
    h.model.push([Reply::exec("echo two > two.txt", "call_2")]);
    let second = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "write two",
                                        "approval_policy": "untrusted", "sandbox": "workspace-write"})));
    let done = h.wait_for(&second, Duration::from_secs(30), |s| {
        s["terminal"] == json!(true)
    });
    assert_eq!(done["status"], json!("interrupted"), "{done}");
    assert!(
        !h.project.join("two.txt").exists(),
        "a declined command must not run"
    );
    let declined = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": second, "status": "auto_declined"}),
    );
    assert_eq!(declined["returnedCount"], json!(1), "{declined}");
    other
        .close(Duration::from_secs(15))
        .expect("other server exits");
}

#[test]
fn a_thread_from_before_a_crash_takes_new_messages() {
    let mut h = Harness::start("resume-after-crash");
    let first = h.submit(json!({"operation_type": "start_chat", "message": "first"}));
    let first = h.wait_terminal(&op_id(&first));
    assert_eq!(first["status"], json!("completed"), "{first}");
    let thread = first["threadId"].as_str().expect("threadId").to_string();
    h.crash_and_restart(&[]);
    h.model.push([Reply::text("Second answer.")]);
    let second = h.submit(
        json!({"operation_type": "send_message", "thread_id": thread, "message": "second"}),
    );
    let second = h.wait_terminal(&op_id(&second));
    assert_eq!(second["status"], json!("completed"), "{second}");
}
