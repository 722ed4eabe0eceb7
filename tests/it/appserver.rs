//! The app-server supervisor against the real `codex app-server` (pinned npm package) and the fake model,
//! and against the scripted fake app-server for faults the real one cannot show.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codex_control_plane::appserver::protocol::{
    self, ClientInfo, ClientRequest, CollaborationMode, CollaborationSettings, ConfigRead, Created,
    GoalStatus, Initialize, InitializeCapabilities, InputItem, ReviewStart, SandboxPolicy,
    ThreadArchive, ThreadCompactStart, ThreadFork, ThreadGoalClear, ThreadGoalGet, ThreadGoalSet,
    ThreadRead, ThreadResume, ThreadSetName, ThreadStart, ThreadUnarchive, TurnInterrupt,
    TurnStart, TurnSteer,
};
use codex_control_plane::appserver::{
    AppServer, AppServerError, AppServerEvent, AppServerSettings, EventReceiver, RestartMode,
};
use serde_json::{json, Value};
use support::fake_model::{FakeModel, Reply};
use support::mcp_client::{workspace_binary, TempDir};
use support::peer::CodexHome;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(20);

fn real_settings(home: &CodexHome) -> AppServerSettings {
    support::peer::app_server_settings(home)
}

fn fake_settings(mode: &str, log: Option<PathBuf>) -> AppServerSettings {
    let mut env = vec![("FAKE_APP_SERVER_MODE".to_string(), mode.to_string())];
    if let Some(log) = log {
        env.push(("FAKE_APP_SERVER_LOG".into(), log.display().to_string()));
    }
    AppServerSettings {
        binary: Some(
            workspace_binary("codex-control-plane-tests", "fake-app-server")
                .expect("fake app-server"),
        ),
        codex_home: std::env::temp_dir(),
        cwd: std::env::temp_dir(),
        extra_args: Vec::new(),
        env,
        request_timeout: Duration::from_secs(5),
        initialize_timeout: Duration::from_secs(5),
        self_mcp_server_name: "codex-control-plane-mcp".into(),
        experimental_api: false,
    }
}

/// Waits for the first event matching `pick`, returning what it extracts.
async fn wait_for<T>(
    events: &mut EventReceiver,
    timeout: Duration,
    mut pick: impl FnMut(&AppServerEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, events.recv()).await {
            Ok(Ok(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                panic!("event subscriber lagged by {n}")
            }
            Ok(Err(err)) => panic!("event channel closed: {err}"),
            Err(_) => panic!("expected event did not arrive within {timeout:?}"),
        }
    }
}

fn notification<'a>(event: &'a AppServerEvent, wanted: &str) -> Option<&'a Value> {
    match event {
        AppServerEvent::Notification { method, params, .. } if method == wanted => Some(params),
        _ => None,
    }
}

async fn wait_turn_completed(events: &mut EventReceiver, turn_id: &str) -> Value {
    wait_for(events, WAIT, |event| {
        notification(event, "turn/completed")
            .filter(|p| p.pointer("/turn/id").and_then(Value::as_str) == Some(turn_id))
            .map(|p| p["turn"].clone())
    })
    .await
}

async fn start_thread(
    server: &AppServer,
    home: &CodexHome,
    approval: &str,
    sandbox: &str,
) -> String {
    let reply = server
        .request(
            "thread/start",
            json!({"cwd": home.work_dir(), "approvalPolicy": approval, "sandbox": sandbox}),
        )
        .await
        .expect("thread/start");
    protocol::decode::<ThreadStart>(reply)
        .expect("thread id")
        .created_id()
}

async fn start_turn(server: &AppServer, thread: &str, text: &str) -> String {
    let reply = server
        .request(
            "turn/start",
            json!({"threadId": thread, "input": [InputItem::text(text)]}),
        )
        .await
        .expect("turn/start");
    protocol::decode::<TurnStart>(reply)
        .expect("turn id")
        .created_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_turn_streams_and_completes_with_the_model_text() {
    let model = FakeModel::start();
    model.push([Reply::Text {
        chunks: vec!["Hello ".into(), "from the ".into(), "fake model.".into()],
        delay: Duration::ZERO,
    }]);
    let home = CodexHome::new(&model);
    let server = AppServer::new(real_settings(&home));
    let mut events = server.subscribe();
    let generation = server.ensure_started().await.expect("start");
    assert_eq!(generation, 1);
    let thread = start_thread(&server, &home, "never", "read-only").await;
    let turn = start_turn(&server, &thread, "say hello").await;
    let mut deltas = String::new();
    let completed = wait_for(&mut events, WAIT, |event| {
        if let Some(p) = notification(event, "item/agentMessage/delta") {
            deltas.push_str(p["delta"].as_str().unwrap_or(""));
        }
        notification(event, "turn/completed")
            .filter(|p| p.pointer("/turn/id").and_then(Value::as_str) == Some(turn.as_str()))
            .map(|p| p["turn"].clone())
    })
    .await;
    assert_eq!(completed["status"], json!("completed"), "{completed}");
    assert_eq!(deltas, "Hello from the fake model.");
    let text = completed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["type"] == "agentMessage"))
        .and_then(|i| i["text"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(text, "Hello from the fake model.");
    assert_eq!(model.n_model_calls(), 1);
    assert!(model.requests()[0]
        .user_texts()
        .iter()
        .any(|t| t.contains("say hello")));
    server.shutdown().await;
    assert!(!server.status().running);
}

async fn approval_round_trip(decision: &str) -> (Value, bool, usize) {
    let model = FakeModel::start();
    model.push([
        Reply::exec(
            "echo probe-ok > approved.txt && cat approved.txt",
            "call_probe_1",
        ),
        Reply::text("All done."),
    ]);
    let home = CodexHome::new(&model);
    let server = AppServer::new(real_settings(&home));
    let mut events = server.subscribe();
    let thread = start_thread(&server, &home, "untrusted", "workspace-write").await;
    let turn = start_turn(&server, &thread, "write the file").await;
    let (generation, id, params) = wait_for(&mut events, WAIT, |event| match event {
        AppServerEvent::ServerRequest {
            generation,
            id,
            method,
            params,
        } if method == "item/commandExecution/requestApproval" => {
            Some((*generation, id.clone(), params.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(params["turnId"], json!(turn));
    assert!(params["command"]
        .as_str()
        .unwrap_or("")
        .contains("approved.txt"));
    server
        .respond(generation, &id, Ok(json!({"decision": decision})))
        .await
        .expect("respond");
    let completed = wait_turn_completed(&mut events, &turn).await;
    let written = home.work_dir().join("approved.txt").exists();
    let calls = model.n_model_calls();
    server.shutdown().await;
    (completed, written, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_approval_accept_runs_the_command() {
    let (completed, written, calls) = approval_round_trip("accept").await;
    assert_eq!(completed["status"], json!("completed"), "{completed}");
    assert!(written, "the approved command must have run");
    assert_eq!(calls, 2, "one call for the tool, one after its output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_approval_decline_skips_the_command() {
    let (completed, written, calls) = approval_round_trip("decline").await;
    assert_eq!(completed["status"], json!("completed"), "{completed}");
    assert!(!written, "a declined command must not run");
    assert_eq!(calls, 2, "the model hears of the refusal and finishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_mid_stream_ends_the_turn_interrupted() {
    let model = FakeModel::start();
    model.push([Reply::slow_text(
        &"slow ".repeat(40),
        40,
        Duration::from_millis(150),
    )]);
    let home = CodexHome::new(&model);
    let server = AppServer::new(real_settings(&home));
    let mut events = server.subscribe();
    let thread = start_thread(&server, &home, "never", "read-only").await;
    let turn = start_turn(&server, &thread, "talk slowly").await;
    wait_for(&mut events, WAIT, |event| {
        notification(event, "item/agentMessage/delta").map(|_| ())
    })
    .await;
    let asked = Instant::now();
    server
        .request(
            "turn/interrupt",
            json!({"threadId": thread, "turnId": turn}),
        )
        .await
        .expect("turn/interrupt");
    let completed = wait_turn_completed(&mut events, &turn).await;
    assert_eq!(completed["status"], json!("interrupted"), "{completed}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "interrupt took {:?}",
        asked.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steer_lands_in_the_active_turn() {
    let model = FakeModel::start();
    model.push([
        Reply::slow_text(&"first ".repeat(30), 30, Duration::from_millis(150)),
        Reply::text("Steered answer."),
    ]);
    let home = CodexHome::new(&model);
    let server = AppServer::new(real_settings(&home));
    let mut events = server.subscribe();
    let thread = start_thread(&server, &home, "never", "read-only").await;
    let turn = start_turn(&server, &thread, "start talking").await;
    wait_for(&mut events, WAIT, |event| {
        notification(event, "item/agentMessage/delta").map(|_| ())
    })
    .await;
    let steer = TurnSteer {
        thread_id: thread.clone(),
        expected_turn_id: turn.clone(),
        input: vec![InputItem::text("focus on tests")],
        client_user_message_id: None,
    };
    let reply = server.send(&steer).await.expect("turn/steer");
    assert_eq!(reply.created_id(), turn);
    let completed = wait_turn_completed(&mut events, &turn).await;
    assert_eq!(completed["status"], json!("completed"), "{completed}");
    let requests = model.requests();
    assert_eq!(
        requests.len(),
        2,
        "the steer restarts the model request once"
    );
    assert!(requests[1]
        .user_texts()
        .iter()
        .any(|t| t.contains("focus on tests")));
    // With no active turn, steering is an RPC error, not a hang.
    let err = server
        .request(
            "turn/steer",
            json!({"threadId": thread, "expectedTurnId": turn, "input": [InputItem::text("late")]}),
        )
        .await
        .expect_err("no active turn");
    assert!(matches!(err, AppServerError::Rpc { .. }), "{err:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_fails_the_turn_with_codex_error_info() {
    let model = FakeModel::start();
    model.push([Reply::HttpError { status: 500 }]);
    let home = CodexHome::new(&model);
    let server = AppServer::new(real_settings(&home));
    let mut events = server.subscribe();
    let thread = start_thread(&server, &home, "never", "read-only").await;
    let turn = start_turn(&server, &thread, "fail please").await;
    let completed = wait_turn_completed(&mut events, &turn).await;
    assert_eq!(completed["status"], json!("failed"), "{completed}");
    assert!(
        completed["error"]
            .to_string()
            .contains("internalServerError"),
        "{completed}"
    );
    assert_eq!(model.n_model_calls(), 1, "retries are off");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursion_guard_disables_our_entry_and_marks_the_child() {
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    // A user config that would let the nested Codex call us back.
    let config_path = home.path().join("config.toml");
    let mut config = std::fs::read_to_string(&config_path).expect("config");
    config.push_str(
        "\n[mcp_servers.my-control-plane]\ncommand = \"/usr/local/bin/codex-control-plane-mcp\"\n",
    );
    std::fs::write(&config_path, config).expect("write config");
    let server = AppServer::new(real_settings(&home));
    let effective = server
        .request("config/read", json!({}))
        .await
        .expect("config/read");
    let servers = &effective["config"]["mcp_servers"];
    for name in ["my-control-plane", "codex-control-plane-mcp"] {
        assert_eq!(servers[name]["enabled"], json!(false), "{name}: {servers}");
    }
    let pid = server.status().pid.expect("pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("child environ");
    let marker = format!("CODEX_CONTROL_PLANE_MCP_PARENT={}", std::process::id());
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes()),
        "child lacks the recursion marker"
    );
    server.shutdown().await;
}

/// Every request type, with every field it can carry set, validates against its params schema in the pinned
/// protocol, and names no property the schema lacks (app-server would ignore it silently). The flows of
/// `protocol_conformance` check the frames actually sent; this covers the optional fields those flows leave
/// unset.
#[test]
fn every_request_type_with_all_its_fields_conforms_to_the_pinned_schema() {
    let dir = TempDir::new("schema");
    support::peer::write_protocol_schema(dir.path());
    let thread = || "thr".to_string();
    let plan = CollaborationMode {
        mode: "plan".into(),
        settings: CollaborationSettings {
            model: "m".into(),
            reasoning_effort: Some("high".into()),
            developer_instructions: None,
        },
    };
    let input = || {
        vec![
            InputItem::text("hi"),
            InputItem::Given(json!({"type": "image", "url": "https://x/y.png"})),
            InputItem::Given(json!({"type": "localImage", "path": "/tmp/a.png"})),
        ]
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "v1/InitializeParams",
            encode(&Initialize {
                client_info: ClientInfo {
                    name: "n".into(),
                    title: "t".into(),
                    version: "1".into(),
                },
                capabilities: InitializeCapabilities {
                    experimental_api: true,
                },
            }),
        ),
        (
            "v2/ThreadStartParams",
            encode(&ThreadStart {
                service_name: "codex-control-plane-mcp".into(),
                cwd: Some("/tmp/x".into()),
                approval_policy: Some("on-request".into()),
                sandbox: Some("read-only".into()),
                model: Some("m".into()),
            }),
        ),
        (
            "v2/ThreadForkParams",
            encode(&ThreadFork {
                thread_id: thread(),
                ephemeral: true,
                cwd: Some("/tmp/x".into()),
                approval_policy: Some("never".into()),
                sandbox: Some("workspace-write".into()),
                model: Some("m".into()),
                config: Some(json!({"model_reasoning_effort": "low"})),
            }),
        ),
        (
            "v2/ThreadResumeParams",
            encode(&ThreadResume {
                thread_id: thread(),
                cwd: Some("/tmp/x".into()),
                model: Some("m".into()),
            }),
        ),
        (
            "v2/ConfigReadParams",
            encode(&ConfigRead {
                cwd: Some("/tmp/x".into()),
            }),
        ),
        (
            "v2/ThreadSetNameParams",
            encode(&ThreadSetName {
                thread_id: thread(),
                name: "title".into(),
            }),
        ),
        (
            "v2/ThreadReadParams",
            encode(&ThreadRead {
                thread_id: thread(),
                include_turns: true,
            }),
        ),
        (
            "v2/ThreadArchiveParams",
            encode(&ThreadArchive {
                thread_id: thread(),
            }),
        ),
        (
            "v2/ThreadUnarchiveParams",
            encode(&ThreadUnarchive {
                thread_id: thread(),
            }),
        ),
        (
            "v2/ThreadCompactStartParams",
            encode(&ThreadCompactStart {
                thread_id: thread(),
            }),
        ),
        (
            "v2/ThreadGoalGetParams",
            encode(&ThreadGoalGet {
                thread_id: thread(),
            }),
        ),
        (
            "v2/ThreadGoalClearParams",
            encode(&ThreadGoalClear {
                thread_id: thread(),
            }),
        ),
        (
            "v2/ThreadGoalSetParams",
            encode(&ThreadGoalSet {
                thread_id: thread(),
                objective: Some("ship".into()),
                status: Some(GoalStatus::Complete),
                token_budget: Some(10_000),
            }),
        ),
        (
            "v2/TurnStartParams",
            encode(&TurnStart {
                thread_id: thread(),
                input: input(),
                client_user_message_id: Some("mcp-turn:op".into()),
                cwd: Some("/tmp/x".into()),
                approval_policy: Some("untrusted".into()),
                sandbox_policy: SandboxPolicy::from_mode("workspace-write"),
                model: Some("m".into()),
                effort: Some("low".into()),
                collaboration_mode: Some(plan),
                output_schema: Some(json!({"type": "object"})),
            }),
        ),
        (
            "v2/TurnSteerParams",
            encode(&TurnSteer {
                thread_id: thread(),
                expected_turn_id: "u".into(),
                input: input(),
                client_user_message_id: Some("mcp-steer:op".into()),
            }),
        ),
        (
            "v2/TurnInterruptParams",
            encode(&TurnInterrupt {
                thread_id: thread(),
                turn_id: "u".into(),
            }),
        ),
        (
            "v2/ReviewStartParams",
            encode(&ReviewStart {
                thread_id: thread(),
                target: json!({"type": "custom", "instructions": "look"}),
                delivery: "inline".into(),
            }),
        ),
    ];
    for mode in ["read-only", "workspace-write", "danger-full-access"] {
        let policy = SandboxPolicy::from_mode(mode).expect("a policy for each mode");
        let turn = TurnStart {
            thread_id: thread(),
            input: input(),
            client_user_message_id: None,
            cwd: None,
            approval_policy: None,
            sandbox_policy: Some(policy),
            model: None,
            effort: None,
            collaboration_mode: None,
            output_schema: None,
        };
        check_params(dir.path(), "v2/TurnStartParams", &encode(&turn));
    }
    for (name, params) in cases {
        check_params(dir.path(), name, &params);
    }
}

fn encode<R: ClientRequest>(request: &R) -> Value {
    protocol::encode(request).expect("encode")
}

fn check_params(dir: &std::path::Path, name: &str, params: &Value) {
    let path = dir.join(format!("{name}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file"))
        .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("compile schema");
    let errors: Vec<String> = validator
        .iter_errors(params)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{params}");
    let known = schema["properties"].as_object().expect("properties");
    for key in params.as_object().expect("object").keys() {
        assert!(known.contains_key(key), "{name} has no property {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_mid_turn_is_detected_within_a_second() {
    let server = AppServer::new(fake_settings("exit_mid_turn", None));
    let mut events = server.subscribe();
    let (generation, reply) = server
        .request_on("thread/start", json!({}))
        .await
        .expect("thread/start");
    let thread = protocol::decode::<ThreadStart>(reply)
        .expect("thread")
        .created_id();
    let sent = Instant::now();
    let _ = server
        .request("turn/start", json!({"threadId": thread, "input": []}))
        .await;
    let (exited_generation, code, active) =
        wait_for(&mut events, Duration::from_secs(5), |event| match event {
            AppServerEvent::Exited {
                generation,
                code,
                active_turns,
            } => Some((*generation, *code, active_turns.clone())),
            _ => None,
        })
        .await;
    assert!(
        sent.elapsed() <= Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(exited_generation, generation);
    assert_eq!(code, Some(3));
    assert_eq!(
        active,
        vec![("thr_fake".to_string(), "turn_fake_1".to_string())]
    );
    assert!(!server.status().running);
    // A request to a dead process fails at once; a new one starts a fresh generation.
    let (next, _) = server
        .request_on("thread/start", json!({}))
        .await
        .expect("restart lazily");
    assert_eq!(next, generation + 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_request_times_out_with_a_typed_error() {
    let server = AppServer::new(fake_settings("hang", None));
    let started = Instant::now();
    let err = server
        .request_with_timeout("thread/start", json!({}), Duration::from_millis(300))
        .await
        .expect_err("must time out");
    assert!(
        matches!(err, AppServerError::Timeout { ref method, .. } if method == "thread/start"),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The connection is still usable afterwards.
    server
        .request("model/list", json!({}))
        .await
        .expect("other requests still work");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_skipped() {
    let server = AppServer::new(fake_settings("malformed", None));
    let reply = server
        .request("thread/start", json!({}))
        .await
        .expect("reply after garbage");
    assert_eq!(
        protocol::decode::<ThreadStart>(reply)
            .ok()
            .map(Created::created_id),
        Some("thr_fake".into())
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_server_request_gets_an_error_reply() {
    let dir = TempDir::new("fake-log");
    let log = dir.path().join("received.jsonl");
    let server = AppServer::new(fake_settings("unknown_request", Some(log.clone())));
    server.ensure_started().await.expect("start");
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m.get("id") == Some(&json!(0)) && m.get("method").is_none())
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no reply to the unknown request: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reply["error"]["code"], json!(-32601), "{reply}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_bumps_the_generation_and_old_answers_are_refused() {
    let server = AppServer::new(fake_settings("approval", None));
    let mut events = server.subscribe();
    server
        .request("thread/start", json!({}))
        .await
        .expect("thread");
    server
        .request("turn/start", json!({"threadId": "thr_fake", "input": []}))
        .await
        .expect("turn");
    let (generation, id) = wait_for(&mut events, Duration::from_secs(5), |event| match event {
        AppServerEvent::ServerRequest { generation, id, .. } => Some((*generation, id.clone())),
        _ => None,
    })
    .await;
    let err = server
        .restart(RestartMode::Idle)
        .await
        .expect_err("idle restart with an active turn");
    assert!(
        matches!(err, AppServerError::Busy { active_turns: 1 }),
        "{err:?}"
    );
    let next = server
        .restart(RestartMode::Force)
        .await
        .expect("force restart");
    assert_eq!(next, generation + 1);
    let err = server
        .respond(generation, &id, Ok(json!({"decision": "accept"})))
        .await
        .expect_err("old generation");
    assert!(
        matches!(err, AppServerError::StaleGeneration { requested, current: Some(current) } if requested == generation && current == next),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binary_is_unavailable_not_a_hang() {
    let mut settings = fake_settings("normal", None);
    settings.binary = Some(PathBuf::from("/nonexistent/codex"));
    let server = AppServer::new(settings);
    let err = server
        .request("thread/start", json!({}))
        .await
        .expect_err("no binary");
    assert!(matches!(err, AppServerError::Unavailable { .. }), "{err:?}");
    assert!(!server.status().codex_binary_exists);
}

/// The replies we send to each kind of server request, as the courier delivers them (a stored answer in the
/// v2 words, translated for the legacy methods; the default answer when one expires), validate against the
/// response schema of that request in the pinned protocol.
#[test]
fn our_replies_to_every_server_request_kind_conform_to_the_pinned_schema() {
    use codex_control_plane::domain::rules::interactions::default_decline_response;
    use codex_control_plane::domain::server_requests::ServerRequestKind;
    let dir = TempDir::new("replies");
    support::peer::write_protocol_schema(dir.path());
    let methods = [
        (
            "item/commandExecution/requestApproval",
            "CommandExecutionRequestApproval",
        ),
        (
            "item/fileChange/requestApproval",
            "FileChangeRequestApproval",
        ),
        ("execCommandApproval", "ExecCommandApproval"),
        ("applyPatchApproval", "ApplyPatchApproval"),
        (
            "item/permissions/requestApproval",
            "PermissionsRequestApproval",
        ),
        ("item/tool/requestUserInput", "ToolRequestUserInput"),
        (
            "mcpServer/elicitation/request",
            "McpServerElicitationRequest",
        ),
    ];
    for (method, schema_name) in methods {
        let kind = ServerRequestKind::parse(method).expect("an interaction method");
        let mut stored = vec![default_decline_response(kind.seed_kind(), &[])];
        stored.extend(
            kind.default_decisions()
                .into_iter()
                .map(|decision| json!({"decision": decision})),
        );
        for answer in stored {
            let reply = kind.wire_reply(&answer);
            let path = dir.path().join(format!("{schema_name}Response.json"));
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file"))
                    .expect("schema json");
            let validator = jsonschema::validator_for(&schema).expect("compile schema");
            let errors: Vec<String> = validator
                .iter_errors(&reply)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{method}: {errors:?}\n{reply}");
        }
    }
}
