//! Durable operations over MCP: the real server binary, the real codex app-server, the fake model.
//!
//! Every result is also checked against the tool's published `outputSchema`, so the schemas stay honest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_model::{FakeModel, Reply};
use support::mcp_client::{McpClient, TempDir};
use support::peer::CodexHome;

use crate::mcp_appserver::peer_env;

/// A server under test with its model, home and project.
struct Harness {
    model: FakeModel,
    _home: CodexHome,
    dir: TempDir,
    client: McpClient,
    schemas: HashMap<String, jsonschema::Validator>,
    project: PathBuf,
}

impl Harness {
    fn start(label: &str) -> Harness {
        let model = FakeModel::start();
        let home = CodexHome::new(&model);
        let dir = TempDir::new(label);
        let (client, project) = Self::spawn(&dir, &home);
        let mut harness = Harness {
            model,
            _home: home,
            dir,
            client,
            schemas: HashMap::new(),
            project,
        };
        harness.load_schemas();
        harness
    }

    fn spawn(dir: &TempDir, home: &CodexHome) -> (McpClient, PathBuf) {
        Self::spawn_with(dir, home, &[])
    }

    fn spawn_with(dir: &TempDir, home: &CodexHome, extra: &[(&str, &str)]) -> (McpClient, PathBuf) {
        let project = dir.path().join("projects").join("demo");
        std::fs::create_dir_all(&project).expect("project dir");
        let mut env = peer_env(dir, home);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let client = McpClient::start(&env).expect("server starts");
        (client, project)
    }

    /// Kills the server with SIGKILL and starts a new one on the same database, home and model.
    fn crash_and_restart(&mut self, extra: &[(&str, &str)]) {
        let placeholder = McpClient::start(&peer_env(&self.dir, &self._home)).expect("placeholder");
        let old = std::mem::replace(&mut self.client, placeholder);
        old.kill();
        let (fresh, _) = Self::spawn_with(&self.dir, &self._home, extra);
        let placeholder = std::mem::replace(&mut self.client, fresh);
        placeholder.kill();
    }

    fn load_schemas(&mut self) {
        let tools = self
            .client
            .request("tools/list", json!({}))
            .expect("tools/list");
        for tool in tools["tools"].as_array().expect("tools") {
            let name = tool["name"].as_str().expect("name").to_string();
            let validator =
                jsonschema::validator_for(&tool["outputSchema"]).expect("valid output schema");
            self.schemas.insert(name, validator);
        }
    }

    /// Calls a tool and checks its result against the tool's outputSchema.
    fn call(&mut self, tool: &str, args: Value) -> Value {
        let result = self.client.call_tool(tool, args).expect("tool call");
        let validator = self.schemas.get(tool).expect("known tool");
        let errors: Vec<String> = validator
            .iter_errors(&result)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{tool} result breaks its outputSchema: {errors:?}\n{result}"
        );
        result
    }

    fn submit(&mut self, args: Value) -> Value {
        let mut args = args;
        if args.get("project_id").is_none() {
            args["project_id"] = json!(self.project.display().to_string());
        }
        self.call("codex_submit_task", args)
    }

    fn status(&mut self, operation_id: &str) -> Value {
        self.call(
            "codex_get_operation_status",
            json!({"operation_id": operation_id}),
        )
    }

    /// Polls until `done` holds, or panics after `timeout` with the last status.
    fn wait_for(
        &mut self,
        operation_id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status(operation_id);
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting; last status: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_terminal(&mut self, operation_id: &str) -> Value {
        self.wait_for(operation_id, Duration::from_secs(30), |s| {
            s["terminal"] == json!(true)
        })
    }
}

fn op_id(payload: &Value) -> String {
    payload["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no operationId in {payload}"))
        .to_string()
}

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
    let status = h.status(&queued[0]);
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

impl Harness {
    fn workflow(&mut self, workflow_id: &str) -> Value {
        self.call(
            "codex_get_workflow_status",
            json!({"workflow_id": workflow_id}),
        )
    }

    fn wait_workflow(&mut self, workflow_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.workflow(workflow_id);
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "workflow timed out: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn plan_workflow_plans_waits_for_approval_then_executes_once() {
    let mut h = Harness::start("wf-plan");
    h.model.push([Reply::text(
        "Here is my plan.\n<proposed_plan>\n1. Add the WAL pragma\n2. Add a test\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the storage change", "client_request_id": "wf-1"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["workflowKind"], json!("plan_then_execute"));
    assert_eq!(
        started["runtimePolicy"]["effectiveSandbox"],
        json!("workspace-write"),
        "Plan Mode floor: {started}"
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    assert!(workflow_id.starts_with("wf_"));

    let ready = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) || w["phase"] == json!("plan_ready")
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    assert_eq!(ready["latestPlan"]["valid"], json!(true));
    assert!(
        ready["latestPlan"]["plan"]
            .as_str()
            .unwrap_or_default()
            .contains("Add the WAL pragma"),
        "{ready}"
    );
    assert_eq!(ready["nextRecommendedAction"], json!("execute_plan"));
    // The plan turn ran in plan mode.
    let plan_request = &h.model.requests()[0];
    assert!(
        format!("{:?}", plan_request.body)
            .to_lowercase()
            .contains("plan"),
        "plan mode reached the model"
    );

    // The same key again: the same workflow, no new turn.
    let again = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the storage change", "client_request_id": "wf-1"}),
    );
    assert_eq!(again["workflowId"], json!(workflow_id));
    assert_eq!(again["idempotent"], json!(true));

    h.model.push([Reply::text(
        "Implemented.\n```json\n{\"summary\": \"done\", \"tests\": 1}\n```",
    )]);
    let schema = json!({"type": "object", "properties": {"summary": {"type": "string"}, "tests": {"type": "integer"}},
                        "required": ["summary", "tests"], "additionalProperties": false});
    let approved = h.call(
        "codex_approve_plan",
        json!({"workflow_id": workflow_id, "output_schema": schema}),
    );
    assert_eq!(approved["ok"], json!(true), "{approved}");
    assert_eq!(approved["idempotent"], json!(false));
    assert!(
        approved["approveOperation"]["operationId"].is_string(),
        "{approved}"
    );

    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(done["nextRecommendedAction"], json!("read_final_report"));
    assert_eq!(
        done["finalReport"]["structured"],
        json!({"summary": "done", "tests": 1}),
        "{done}"
    );
    assert_eq!(done["planTurn"]["status"], json!("completed"));
    assert_eq!(done["executionTurn"]["status"], json!("completed"));
    assert!(done["planTurn"]["turnId"].is_string());

    let twice = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(twice["idempotent"], json!(true), "{twice}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        h.model.n_model_calls(),
        2,
        "one plan turn and one execution turn"
    );
}

#[test]
fn a_blocked_plan_fails_the_workflow_and_approval_is_refused() {
    let mut h = Harness::start("wf-blocked");
    h.model.push([Reply::text(
        "I cannot do this: permission denied on the repository.",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan it", "goal": "ship it"}),
    );
    // Goal sync is not implemented: the workflow says so rather than ignoring the goal.
    assert_eq!(
        started["threadGoal"]["syncState"],
        json!("unsupported"),
        "{started}"
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("failed"), "{done}");
    assert_eq!(done["error"]["code"], json!("plan_blocked"), "{done}");
    let refused = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(
        refused["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{refused}"
    );
    let unknown = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": "wf_missing"}),
    );
    assert_eq!(unknown["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_plan_mode_question_is_answered_through_pending_interactions() {
    let mut h = Harness::start("wf-question");
    h.model.push([
        Reply::FunctionCall {
            name: "request_user_input".into(),
            arguments: json!({"questions": [{"id": "color", "header": "Color", "question": "Which color should the button be?",
                               "options": [{"label": "Blue", "description": "calm"}, {"label": "Red", "description": "loud"}]}]}),
            call_id: "call_q".into(),
        },
        Reply::text("<proposed_plan>\n1. Paint the button blue\n</proposed_plan>"),
    ]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the button"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let waiting = h.wait_workflow(&workflow_id, |w| {
        w["status"] == json!("waiting_for_user_input") || w["terminal"] == json!(true)
    });
    assert_eq!(
        waiting["nextRecommendedAction"],
        json!("answer_pending_interaction"),
        "{waiting}"
    );
    let interaction = &waiting["pendingInteractions"][0];
    assert_eq!(interaction["kind"], json!("user_input"), "{interaction}");
    assert!(
        interaction["questions"].to_string().contains("Which color"),
        "{interaction}"
    );
    let id = interaction["interactionId"]
        .as_str()
        .expect("id")
        .to_string();
    let answered = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": id, "answers": {"color": "Blue"}}),
    );
    assert_eq!(
        answered["response"],
        json!({"answers": {"color": {"answers": ["Blue"]}}}),
        "{answered}"
    );
    let ready = h.wait_workflow(&workflow_id, |w| {
        w["phase"] == json!("plan_ready") || w["terminal"] == json!(true)
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    let texts: Vec<String> = h
        .model
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(
        texts.last().is_some_and(|t| t.contains("Blue")),
        "the answer reached the model"
    );
}

#[test]
fn a_crash_after_approval_never_runs_the_execution_twice() {
    let mut h = Harness::start("wf-crash");
    h.model.push([Reply::text(
        "<proposed_plan>\n1. Do the thing\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a thing"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| w["phase"] == json!("plan_ready"));
    h.model.push([Reply::slow_text(
        &"executing ".repeat(30),
        30,
        Duration::from_millis(100),
    )]);
    let approved = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(approved["ok"], json!(true), "{approved}");
    // Crash while the execution turn may be queued or running.
    h.crash_and_restart(&[]);
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert!(
        ["completed", "orphaned_after_app_server_exit"]
            .contains(&done["phase"].as_str().unwrap_or("")),
        "{done}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        h.model.n_model_calls() <= 2,
        "the execution turn reached the model at most once"
    );
    let again = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(again["idempotent"], json!(true), "{again}");
}

#[test]
fn archive_unarchive_and_compaction_are_audited_lifecycle_actions() {
    let mut h = Harness::start("lifecycle");
    h.model.push([Reply::slow_text(
        &"long answer ".repeat(20),
        20,
        Duration::from_millis(100),
    )]);
    let op = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "start a thread"})));
    let running = h.wait_for(&op, Duration::from_secs(20), |s| {
        s["status"] == json!("running")
    });
    let thread = running["threadId"].as_str().expect("thread").to_string();
    let busy = h.call("codex_archive_thread", json!({"thread_id": thread}));
    assert_eq!(busy["error"]["code"], json!("CODEX_BUSY"), "{busy}");
    assert_eq!(busy["error"]["details"]["status"], json!("active_turn"));
    h.wait_terminal(&op);

    let archived = h.call("codex_archive_thread", json!({"thread_id": thread}));
    assert_eq!(archived["status"], json!("completed"), "{archived}");
    assert_eq!(archived["threadState"], json!("archived"));
    assert!(archived["actionId"]
        .as_str()
        .unwrap_or_default()
        .starts_with("tla_"));
    let unarchived = h.call("codex_unarchive_thread", json!({"thread_id": thread}));
    assert_eq!(unarchived["status"], json!("completed"), "{unarchived}");

    h.model
        .push([Reply::text("Summary of the conversation so far.")]);
    let compaction = h.call(
        "codex_start_thread_compaction",
        json!({"thread_id": thread}),
    );
    let action_id = compaction["actionId"]
        .as_str()
        .expect("actionId")
        .to_string();
    assert!(
        ["running", "completed"].contains(&compaction["status"].as_str().unwrap_or("")),
        "{compaction}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let status = h.call(
            "codex_get_thread_compaction_status",
            json!({"action_id": action_id, "include_events": true}),
        );
        if status["terminal"] == json!(true) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "compaction did not end: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert!(done["targetTurnId"].is_string(), "{done}");
    let unknown = h.call(
        "codex_get_thread_compaction_status",
        json!({"action_id": "tla_missing"}),
    );
    assert_eq!(unknown["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_review_of_uncommitted_changes_reports_through_the_review_workflow() {
    let mut h = Harness::start("wf-review");
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "user.name=t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&h.project)
            .output()
            .expect("git runs");
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    std::fs::write(h.project.join("lib.rs"), "fn answer() -> u32 { 42 }\n").expect("write");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "initial"]);
    std::fs::write(h.project.join("lib.rs"), "fn answer() -> u32 { 41 }\n").expect("change");

    h.model.push([Reply::text(
        "The change makes answer() return 41 instead of 42; that looks like a bug.",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "uncommitted_changes"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["workflowKind"], json!("code_review"));
    assert_eq!(
        started["reviewTarget"],
        json!({"type": "uncommittedChanges"})
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(done["nextRecommendedAction"], json!("read_review_report"));
    let report = done["finalReport"]["text"].as_str().unwrap_or_default();
    assert!(
        report.contains("41"),
        "the review text is the report: {done}"
    );

    let bad = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "base_branch"}),
    );
    assert_eq!(bad["error"]["code"], json!("INVALID_ARGUMENT"), "{bad}");
    assert_eq!(bad["error"]["details"]["field"], json!("base_branch"));
}

#[test]
fn execute_plan_is_approve_for_workflows_and_a_turn_for_chats() {
    let mut h = Harness::start("wf-execute-plan");
    h.model.push([Reply::text(
        "<proposed_plan>\n1. Rename the module\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a rename"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| w["phase"] == json!("plan_ready"));
    h.model.push([Reply::text("Renamed.")]);
    let executed = h.call("codex_execute_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(executed["ok"], json!(true), "{executed}");
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    let thread = done["threadId"].as_str().expect("thread").to_string();

    h.model.push([Reply::text("Executed on the chat.")]);
    let on_chat = h.call(
        "codex_execute_plan",
        json!({"chat_id": thread, "project_id": project, "message": "Implement the plan again."}),
    );
    assert_eq!(on_chat["operationType"], json!("execute_plan"), "{on_chat}");
    let op = on_chat["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    let finished = h.wait_terminal(&op);
    assert_eq!(
        finished["finalReport"]["text"],
        json!("Executed on the chat."),
        "{finished}"
    );
    let neither = h.call("codex_execute_plan", json!({}));
    assert_eq!(neither["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_crash_during_planning_orphans_the_workflow_without_a_second_plan_turn() {
    let mut h = Harness::start("wf-crash-planning");
    h.model.push([Reply::slow_text(
        &"thinking about the plan ".repeat(30),
        30,
        Duration::from_millis(100),
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan slowly"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| {
        w["planTurn"]["status"] == json!("running")
    });
    h.crash_and_restart(&[]);
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(
        done["phase"],
        json!("orphaned_after_app_server_exit"),
        "{done}"
    );
    assert_eq!(
        done["planTurn"]["status"],
        json!("unknown_after_app_server_exit")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        h.model.n_model_calls() <= 1,
        "the plan turn was never sent twice"
    );
    let refused = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(
        refused["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{refused}"
    );
}
