//! The background worker (`execution_mode = "auto"`): work outlives the MCP client session that submitted it.
//! Each test drives real client processes of the server binary, the auto-started worker they share, the real
//! codex app-server and the fake model.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_model::Reply;
use support::mcp_client::{worker_pid, McpClient};

use crate::harness::{op_id, Harness};
use crate::mcp_appserver::peer_env;

const AUTO: &[(&str, &str)] = &[("CODEX_MCP_EXECUTION_MODE", "auto")];

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

fn kill9(pid: u32) {
    // SAFETY: kill(2) on the pid the worker recorded in its own lock note.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Worker rows with role `worker` that are alive.
fn live_workers(h: &mut Harness) -> Vec<Value> {
    let status = h.call(
        "codex_get_worker_status",
        json!({"include_recent_commands": true}),
    );
    status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["role"] == json!("worker") && w["alive"] == json!(true))
        .cloned()
        .collect()
}

#[test]
fn a_task_outlives_the_client_session_that_submitted_it() {
    let mut h = Harness::start_with("worker-lifetime", AUTO);
    h.model.push([Reply::after(
        Duration::from_secs(3),
        Reply::text("Finished after the client left."),
    )]);
    let submitted = h.submit(json!({"operation_type": "start_chat", "message": "a long task"}));
    assert_eq!(submitted["ok"], json!(true), "{submitted}");
    let id = op_id(&submitted);
    let worker = worker_pid(&h.db()).expect("the submit started a background worker");
    assert_ne!(worker, h.client.pid(), "the worker is its own process");
    wait_until("the model request", Duration::from_secs(20), || {
        h.model.n_model_calls() == 1
    });

    // The client session ends while the model is still answering.
    h.reconnect(AUTO);
    assert!(pid_alive(worker), "the worker outlives the client");
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        done["finalReport"]["text"],
        json!("Finished after the client left.")
    );
    assert_eq!(h.model.n_model_calls(), 1, "exactly one model request");

    // The worker journals what app-server sent, redacted, in the shared database.
    let thread = done["threadId"].as_str().expect("thread").to_string();
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    wait_until("the journal", Duration::from_secs(5), || {
        let events = runtime
            .block_on(store.list_app_server_events(
                codex_control_plane::store::EventFilter {
                    thread_id: Some(thread.clone()),
                    ..Default::default()
                },
                200,
            ))
            .expect("events");
        events
            .iter()
            .any(|e| e.method.as_deref() == Some("turn/completed"))
    });

    let status = h.call("codex_get_worker_status", json!({}));
    assert_eq!(status["executionMode"], json!("auto"), "{status}");
    assert_eq!(status["processRole"], json!("client"), "{status}");
    assert_eq!(status["backgroundWorker"]["state"], json!("running"));
    assert_eq!(status["backgroundWorker"]["pid"], json!(worker));
    let workers = live_workers(&mut h);
    assert_eq!(workers.len(), 1, "{status}");
    assert_eq!(workers[0]["holdsWorkerLock"], json!(true));
    assert_eq!(workers[0]["versionMatches"], json!(true));
    assert_eq!(workers[0]["configFingerprintMatches"], json!(true));
}

#[test]
fn an_approval_is_answered_from_another_client_after_the_first_exited() {
    let mut h = Harness::start_with("worker-approval", AUTO);
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
    h.wait_for(&id, Duration::from_secs(30), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    h.reconnect(AUTO);

    let listed = h.call(
        "codex_list_pending_interactions",
        json!({"operation_id": id}),
    );
    assert_eq!(listed["returnedCount"], json!(1), "{listed}");
    let interaction_id = listed["interactions"][0]["interactionId"]
        .as_str()
        .expect("id")
        .to_string();
    let answered = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": interaction_id, "decision": "accept"}),
    );
    // The worker ran the answer and the tool returned its result inline.
    assert_eq!(answered["answered"], json!(true), "{answered}");
    assert_eq!(answered["delivery"], json!("delivered"), "{answered}");
    let command_id = answered["workerCommandId"]
        .as_str()
        .expect("the answer ran as a worker command")
        .to_string();
    let done = h.wait_terminal(&id);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert!(h.project.join("approved.txt").exists());

    let command = h.call(
        "codex_get_worker_command_status",
        json!({"command_id": command_id}),
    );
    assert_eq!(command["status"], json!("completed"), "{command}");
    assert_eq!(command["commandType"], json!("answer_pending_interaction"));
    assert_eq!(command["result"]["answered"], json!(true), "{command}");
    let unknown = h.call(
        "codex_get_worker_command_status",
        json!({"command_id": "cmd_nope"}),
    );
    assert_eq!(unknown["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_plan_workflow_survives_its_client_and_another_client_approves_it() {
    let mut h = Harness::start_with("worker-plan", AUTO);
    h.model.push([
        Reply::after(
            Duration::from_secs(2),
            Reply::text("My plan.\n<proposed_plan>\n1. Do the thing\n</proposed_plan>"),
        ),
        Reply::text("Implemented."),
    ]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the change", "client_request_id": "wf-auto-1"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("the worker answered with the workflow")
        .to_string();
    // The client leaves during planning.
    h.reconnect(AUTO);
    let ready = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) || w["phase"] == json!("plan_ready")
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    let approved = h.call(
        "codex_approve_plan",
        json!({"workflow_id": workflow_id, "sandbox": "workspace-write"}),
    );
    assert_eq!(approved["ok"], json!(true), "{approved}");
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(
        h.model.n_model_calls(),
        2,
        "one plan turn, one execution turn"
    );
}

#[test]
fn a_killed_worker_is_replaced_and_its_turn_ends_without_a_second_request() {
    let mut h = Harness::start_with("worker-kill", AUTO);
    h.model.push([Reply::after(
        Duration::from_secs(30),
        Reply::text("never seen"),
    )]);
    let first = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "slow one"})));
    wait_until("the model request", Duration::from_secs(20), || {
        h.model.n_model_calls() == 1
    });
    let worker = worker_pid(&h.db()).expect("worker");
    kill9(worker);
    wait_until(
        "the worker lock to be released",
        Duration::from_secs(5),
        || worker_pid(&h.db()).is_none(),
    );

    // The next client call that needs a worker starts a new one, which settles the dead worker's turn.
    h.reconnect(AUTO);
    h.model.push([Reply::text("queued work ran")]);
    let second =
        op_id(&h.submit(json!({"operation_type": "start_chat", "message": "after the crash"})));
    wait_until("a new worker", Duration::from_secs(20), || {
        worker_pid(&h.db()).is_some_and(|pid| pid != worker)
    });
    let ended = h.wait_terminal(&first);
    assert_eq!(
        ended["status"],
        json!("unknown_after_app_server_exit"),
        "{ended}"
    );
    let done = h.wait_terminal(&second);
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(done["finalReport"]["text"], json!("queued work ran"));
    assert_eq!(
        h.model.n_model_calls(),
        2,
        "the killed turn was not sent again"
    );
}

#[test]
fn racing_clients_start_one_worker_and_a_second_worker_refuses() {
    let mut h = Harness::start_with("worker-race", AUTO);
    let mut env = peer_env(&h.dir, &h._home);
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), "auto".into()));
    let project = h.project.display().to_string();
    let messages = [
        "list the files",
        "explain the build script",
        "count test modules",
        "summarise the readme",
    ];
    let racers: Vec<_> = messages
        .into_iter()
        .map(|message| {
            let env = env.clone();
            let project = project.clone();
            std::thread::spawn(move || {
                let mut client = McpClient::start(&env).expect("client");
                let submitted = client
                    .call_tool(
                        "codex_submit_task",
                        json!({"operation_type": "start_chat", "project_id": project,
                               "message": message}),
                    )
                    .expect("submit");
                op_id(&submitted)
            })
        })
        .collect();
    let ids: Vec<String> = racers
        .into_iter()
        .map(|r| r.join().expect("racer"))
        .collect();
    for id in &ids {
        let done = h.wait_terminal(id);
        assert_eq!(done["status"], json!("completed"), "{done}");
    }
    assert_eq!(live_workers(&mut h).len(), 1, "one worker for four clients");

    // An operator starting a second worker on the same database is refused, clearly.
    let output = std::process::Command::new(support::mcp_client::server_binary().expect("binary"))
        .args(["worker", "run"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("second worker");
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already serves"), "{stderr}");
}

#[test]
fn an_idle_worker_exits_and_the_next_submit_starts_another() {
    let extra = [
        ("CODEX_MCP_EXECUTION_MODE", "auto"),
        ("CODEX_MCP_WORKER_IDLE_EXIT_SECONDS", "1"),
    ];
    let mut h = Harness::start_with("worker-idle", &extra);
    h.model.push([Reply::text("first")]);
    let first = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "first task"})));
    let worker = worker_pid(&h.db()).expect("worker");
    assert_eq!(h.wait_terminal(&first)["status"], json!("completed"));
    wait_until("the idle worker to exit", Duration::from_secs(15), || {
        worker_pid(&h.db()).is_none()
    });
    wait_until(
        "the idle worker process to end",
        Duration::from_secs(5),
        || !pid_alive(worker),
    );

    h.model.push([Reply::text("second")]);
    let second =
        op_id(&h.submit(json!({"operation_type": "start_chat", "message": "second task"})));
    wait_until("a new worker", Duration::from_secs(20), || {
        worker_pid(&h.db()).is_some_and(|pid| pid != worker)
    });
    assert_eq!(h.wait_terminal(&second)["status"], json!("completed"));
}

#[test]
fn worker_stop_drains_and_status_reports_the_worker() {
    let mut h = Harness::start_with("worker-stop", AUTO);
    h.model.push([Reply::text("done")]);
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "one task"})));
    assert_eq!(h.wait_terminal(&id)["status"], json!("completed"));
    let worker = worker_pid(&h.db()).expect("worker");
    let mut env = peer_env(&h.dir, &h._home);
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), "auto".into()));
    let cli = |args: &[&str]| {
        std::process::Command::new(support::mcp_client::server_binary().expect("binary"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("cli")
    };
    let status = cli(&["worker", "status"]);
    assert!(status.status.success(), "{status:?}");
    let report: Value = serde_json::from_slice(&status.stdout).expect("json status");
    assert_eq!(report["worker"]["state"], json!("running"), "{report}");
    assert_eq!(report["worker"]["pid"], json!(worker));

    let stopped = cli(&["worker", "stop"]);
    assert!(stopped.status.success(), "{stopped:?}");
    let stopped: Value = serde_json::from_slice(&stopped.stdout).expect("json stop");
    assert_eq!(stopped["stopped"], json!(true), "{stopped}");
    assert!(worker_pid(&h.db()).is_none());
    wait_until("the stopped worker to end", Duration::from_secs(5), || {
        !pid_alive(worker)
    });
    let log = std::fs::read_to_string(Path::new(&format!("{}.worker.log", h.db().display())))
        .expect("the worker logs next to the database");
    assert!(log.contains("worker stopped"), "{log}");
}

/// The user's path end to end, with Codex itself as the MCP client: `codex exec` (configured with this server
/// in its `config.toml`) submits a long task and its session ends; a second `codex exec` session asks for the
/// operation and the model reads the final report. The client's Codex and the Codex our worker drives talk to
/// two different fake models, so each script is consumed in order.
#[test]
fn codex_exec_submits_a_task_closes_and_a_later_session_reads_its_report() {
    use support::fake_model::FakeModel;
    use support::peer::{codex_binary, CodexHome};

    // The Codex our worker drives (through app-server) and the project the task runs in.
    let worker_model = FakeModel::start();
    let worker_home = CodexHome::new(&worker_model);
    let dir = support::mcp_client::TempDir::new("worker-codex-exec");
    let project = dir.path().join("projects").join("demo");
    std::fs::create_dir_all(&project).expect("project");
    let mut server_env = peer_env(&dir, &worker_home);
    server_env.retain(|(k, _)| k != "CODEX_MCP_EXECUTION_MODE");
    server_env.push(("CODEX_MCP_EXECUTION_MODE".into(), "auto".into()));
    worker_model.push([Reply::after(
        Duration::from_secs(3),
        Reply::text("The long task is finished."),
    )]);

    // A user's second start: the plugin artifacts are compiled and cached once, so the server answers
    // `tools/list` before Codex sends its first model request.
    let warm =
        std::process::Command::new(support::mcp_client::server_binary().expect("server binary"))
            .envs(server_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("warm-up start");
    assert!(warm.status.success(), "{warm:?}");

    // The user's Codex, with this server configured as `ccp`.
    let client_model = FakeModel::start();
    let client_home = CodexHome::new(&client_model);
    let server = support::mcp_client::server_binary().expect("server binary");
    let mut config =
        std::fs::read_to_string(client_home.path().join("config.toml")).expect("config");
    config.push_str(&format!(
        "\n[mcp_servers.ccp]\ncommand = {:?}\nstartup_timeout_sec = 60\ntool_timeout_sec = 60\n\n[mcp_servers.ccp.env]\n",
        server.display().to_string()
    ));
    for (key, value) in &server_env {
        config.push_str(&format!("{key} = {value:?}\n"));
    }
    std::fs::write(client_home.path().join("config.toml"), config).expect("config");
    let exec = |prompt: &str| {
        let output = std::process::Command::new(codex_binary())
            .args(["exec", "--skip-git-repo-check", "-C"])
            .arg(client_home.work_dir())
            .arg(prompt)
            .env("CODEX_HOME", client_home.path())
            .envs(client_home.child_env())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("codex exec");
        assert!(output.status.success(), "codex exec failed: {output:?}");
    };

    // Session 1: the model submits the task, then answers; the session ends and stops our stdio server.
    client_model.push([
        Reply::mcp_tool(
            "ccp",
            "codex_submit_task",
            json!({"operation_type": "start_chat", "message": "run the long task",
                   "project_id": project.display().to_string()}),
            "call_submit",
        ),
        Reply::text("Submitted."),
    ]);
    exec("please run the long task in the background");
    let submitted = tool_output(&client_model, "call_submit");
    assert_eq!(submitted["ok"], json!(true), "{submitted}");
    let operation_id = submitted["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    let db = dir.path().join("state").join("state.sqlite3");
    assert!(
        worker_pid(&db).is_some(),
        "the worker outlives the codex exec session"
    );

    // Session 2: the model polls until the report is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client_model.push([
            Reply::mcp_tool(
                "ccp",
                "codex_get_operation_status",
                json!({"operation_id": operation_id}),
                "call_status",
            ),
            Reply::text("Checked."),
        ]);
        exec("is the long task done?");
        let status = tool_output(&client_model, "call_status");
        if status["terminal"] == json!(true) {
            assert_eq!(status["status"], json!("completed"), "{status}");
            assert_eq!(
                status["finalReport"]["text"],
                json!("The long task is finished.")
            );
            break;
        }
        assert!(Instant::now() < deadline, "never completed: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        worker_model.n_model_calls(),
        1,
        "one turn, one model request"
    );
}

/// The structured result of the last MCP tool call `call_id` as the client's model received it.
fn tool_output(model: &support::fake_model::FakeModel, call_id: &str) -> Value {
    let requests = model.requests();
    let output = requests
        .iter()
        .rev()
        .flat_map(|r| r.body["input"].as_array().cloned().unwrap_or_default())
        .find(|item| {
            item["type"] == json!("function_call_output") && item["call_id"] == json!(call_id)
        })
        .unwrap_or_else(|| panic!("no output for {call_id} in the model requests"));
    let text = match &output["output"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    // Codex hands the model the tool result as text ("Wall time: …\nOutput:\n<the JSON payload>"), or as a
    // content list.
    let text = text
        .split_once("Output:\n")
        .map(|(_, json)| json.to_string())
        .unwrap_or(text);
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            if v.is_array() {
                v.as_array()?.iter().find_map(|c| {
                    c["text"]
                        .as_str()
                        .and_then(|t| serde_json::from_str(t).ok())
                })
            } else {
                Some(v)
            }
        })
        .unwrap_or_else(|| {
            let offered: Vec<Value> = requests
                .first()
                .and_then(|r| r.body["tools"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    json!([
                        t["type"],
                        t["name"],
                        t.get("tools").map(|inner| inner
                            .as_array()
                            .map(|a| a.iter().map(|x| x["name"].clone()).collect::<Vec<_>>()))
                    ])
                })
                .collect();
            panic!("tool output is not JSON: {text}; tools offered: {offered:?}")
        })
}

/// Several approvals in a row, each on its own project, answered through the worker. The scripted app-server
/// numbers every server request 0 and names the same thread for every turn, as a long-lived app-server may
/// reuse ids across turns: each approval must still reach the client and each answer its own turn.
#[test]
fn approvals_in_a_row_each_reach_the_client_and_their_answers_complete_the_turns() {
    use support::mcp_client::{scripted_env, TempDir};
    let dir = TempDir::new("worker-approvals-in-a-row");
    let env = scripted_env(dir.path(), "auto", "approval").expect("scripted app-server");
    let mut client = McpClient::start(&env).expect("client");
    for idx in 0..4 {
        let project = dir.path().join("projects").join(format!("p{idx}"));
        std::fs::create_dir_all(&project).expect("project");
        let submitted = client
            .call_tool(
                "codex_submit_task",
                json!({"operation_type": "start_chat", "project_id": project.display().to_string(),
                       "message": format!("approval {idx}")}),
            )
            .expect("submit");
        let id = op_id(&submitted);
        let mut interaction = None;
        wait_until(&format!("approval {idx}"), Duration::from_secs(20), || {
            let listed = client
                .call_tool(
                    "codex_list_pending_interactions",
                    json!({"operation_id": id}),
                )
                .expect("list");
            interaction = listed["interactions"][0]["interactionId"]
                .as_str()
                .map(str::to_string);
            interaction.is_some()
        });
        let answered = client
            .call_tool(
                "codex_answer_pending_interaction",
                json!({"interaction_id": interaction, "decision": "accept"}),
            )
            .expect("answer");
        assert_eq!(answered["answered"], json!(true), "{answered}");
        wait_until(&format!("turn {idx} ends"), Duration::from_secs(20), || {
            let status = client
                .call_tool("codex_get_operation_status", json!({"operation_id": id}))
                .expect("status");
            status["terminal"] == json!(true)
        });
    }
    client.close(Duration::from_secs(15)).expect("close");
}

/// The app-server may ask for an approval before its `turn/start` reply reaches us (scripted here in that
/// order): the request must still belong to the operation, which then waits for its answer instead of
/// reporting `running` over a turn that cannot go on.
#[test]
fn an_approval_that_overtakes_the_turn_start_reply_still_reaches_the_client() {
    use support::mcp_client::{scripted_env, TempDir};
    let dir = TempDir::new("worker-approval-first");
    let env = scripted_env(dir.path(), "auto", "approval_first").expect("scripted app-server");
    let mut client = McpClient::start(&env).expect("client");
    let project = dir.path().join("projects").join("early");
    std::fs::create_dir_all(&project).expect("project");
    let submitted = client
        .call_tool(
            "codex_submit_task",
            json!({"operation_type": "start_chat", "project_id": project.display().to_string(),
                   "message": "an approval before the reply"}),
        )
        .expect("submit");
    let id = op_id(&submitted);
    let waited = client
        .call_tool(
            "codex_wait",
            json!({"operation_ids": [id], "timeout_seconds": 20}),
        )
        .expect("wait");
    assert_eq!(waited["reason"], json!("pending_interaction"), "{waited}");
    let operation = &waited["operations"][0];
    assert_eq!(
        operation["status"],
        json!("waiting_for_approval"),
        "{waited}"
    );
    let interaction = operation["pendingInteractions"][0]["interactionId"]
        .as_str()
        .expect("the interaction belongs to the operation")
        .to_string();
    let answered = client
        .call_tool(
            "codex_answer_pending_interaction",
            json!({"interaction_id": interaction, "decision": "accept", "wait_seconds": 20}),
        )
        .expect("answer");
    assert_eq!(answered["answered"], json!(true), "{answered}");
    wait_until("the turn ends", Duration::from_secs(20), || {
        let status = client
            .call_tool("codex_get_operation_status", json!({"operation_id": id}))
            .expect("status");
        status["status"] == json!("completed")
    });
    client.close(Duration::from_secs(15)).expect("close");
}
