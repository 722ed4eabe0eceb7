//! A scripted stand-in for `codex app-server`, for the faults the real one cannot be made to show.
//!
//! It speaks the same line-delimited JSON-RPC. `FAKE_APP_SERVER_MODE` picks the fault:
//! - `normal`: answers initialize, thread/start, turn/start (then completes the turn after 50 ms).
//! - `exit_mid_turn`: like normal, but exits with code 3 right after `turn/started`.
//! - `close_stdout`: like normal, but closes its stdout right after `turn/started` and keeps running (until
//!   it is killed).
//! - `hang`: never answers `thread/start`.
//! - `old_binary`: refuses `thread/start` with JSON-RPC -32601 (method not found), as a codex too old for the
//!   methods this server uses would.
//! - `hang_turn`: answers `thread/start` but never `turn/start` (a turn/start that may or may not have been
//!   sent, as far as the caller can tell).
//! - `malformed`: writes a malformed line before every reply.
//! - `unknown_request`: after `initialized`, sends an unknown server request `x/unknown` (id 0).
//! - `silent_turn_end`: turns never send `turn/completed`; `thread/read` reports them completed, with a plan
//!   as the agent's message (a turn end this server missed, for `refresh_live`).
//! - `overloaded_once`: the first `turn/start` is refused with JSON-RPC error -32001 (overloaded), later ones
//!   run as in `normal`.
//! - `legacy_approval`: like `approval`, with the legacy `execCommandApproval` (params name the thread
//!   `conversationId` and carry no turn id; the reply is a `ReviewDecision` such as `approved`).
//! - `approval`: on `turn/start`, sends `item/commandExecution/requestApproval` (id 0) and completes the turn
//!   when it is answered.
//! - `approval_first`: like `approval`, but `turn/started` and the approval request come before the
//!   `turn/start` reply (the order the caller can least expect; the pipe allows it).
//! - `hold_turn`: turns start and run until they are interrupted.
//! - `modelless_thread`: threads record no model (as a plan-mode turn that named an empty one leaves them):
//!   `thread/resume` without a `model` is refused with JSON-RPC -32600 "No models are available", as codex
//!   does; `config/read` reports `configured-model`, and a resume naming a model succeeds.
//! - `inventory_partial`: `skills/list` is refused with JSON-RPC error -32603; the other inventory methods of
//!   `codex_get_runtime_capabilities` answer as in every mode (an empty result).
//!
//! In every mode `turn/interrupt` ends the turn it names `interrupted`, as app-server does.
//!
//! Outside `app-server`, it answers `--version` (`codex-cli 0.0.0-fake`) and `app-server generate-json-schema
//! --out DIR` (a `ClientRequest.json` listing the methods it serves), so the protocol schema can be read of it.
//!
//! Every line it receives is appended to `FAKE_APP_SERVER_LOG` when set, so tests can see our replies; with
//! `FAKE_APP_SERVER_TIMESTAMPS=1` each logged line starts with the unix time in microseconds it was read at
//! (benchmarks measure when a request reached app-server's stdin).

use std::io::{BufRead, Write};

use serde_json::{json, Value};

/// The client request methods `generate-json-schema` reports.
const METHODS: [&str; 15] = [
    "initialize",
    "config/read",
    "thread/start",
    "thread/resume",
    "thread/read",
    "turn/start",
    "turn/interrupt",
    "model/list",
    "permissionProfile/list",
    "hooks/list",
    "skills/list",
    "modelProvider/capabilities/read",
    "account/read",
    "account/usage/read",
    "account/rateLimits/read",
];

/// Serves `--version` and `app-server generate-json-schema --out DIR`; true when the call was one of them.
fn offline_command() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("codex-cli 0.0.0-fake");
        return true;
    }
    if args.get(1).map(String::as_str) != Some("generate-json-schema") {
        return false;
    }
    let Some(out) = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
    else {
        std::process::exit(2);
    };
    let variants: Vec<Value> = METHODS
        .iter()
        .map(|m| json!({"properties": {"method": {"enum": [m]}}}))
        .collect();
    let written = std::fs::create_dir_all(out).and_then(|()| {
        std::fs::write(
            std::path::Path::new(out).join("ClientRequest.json"),
            json!({"oneOf": variants}).to_string(),
        )
    });
    if written.is_err() {
        std::process::exit(1);
    }
    true
}

fn main() {
    if offline_command() {
        return;
    }
    let mode = std::env::var("FAKE_APP_SERVER_MODE").unwrap_or_else(|_| "normal".into());
    let log_path = std::env::var_os("FAKE_APP_SERVER_LOG");
    let timestamps = std::env::var("FAKE_APP_SERVER_TIMESTAMPS").is_ok_and(|v| v == "1");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut send = |value: Value| {
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    };
    let mut turn_counter = 0;
    let mut pending_turn: Option<(String, String)> = None;
    let mut silent_turns: Vec<String> = Vec::new();
    let mut refused_once = false;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if let Some(path) = &log_path {
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                if timestamps {
                    let micros = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros())
                        .unwrap_or(0);
                    let _ = writeln!(file, "{micros} {line}");
                } else {
                    let _ = writeln!(file, "{line}");
                }
            }
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let id = message.get("id").cloned();
        if mode == "malformed" && id.is_some() && !method.is_empty() {
            send_raw("{this is not json");
        }
        match (method, id) {
            ("initialize", Some(id)) => {
                send(json!({"id": id, "result": {"userAgent": "fake/0.0.0"}}))
            }
            ("initialized", None) if mode == "unknown_request" => {
                send(json!({"id": 0, "method": "x/unknown", "params": {}}));
            }
            ("thread/start", Some(id)) => {
                if mode == "hang" {
                    continue;
                }
                if mode == "old_binary" {
                    send(
                        json!({"id": id, "error": {"code": -32601, "message": "Method not found: thread/start"}}),
                    );
                    continue;
                }
                send(json!({"id": id, "result": {"thread": {"id": "thr_fake", "turns": []}}}));
            }
            ("skills/list", Some(id)) if mode == "inventory_partial" => {
                send(json!({"id": id, "error": {"code": -32603, "message": "skills scan failed"}}))
            }
            ("turn/start", Some(_)) if mode == "hang_turn" => {}
            ("turn/start", Some(id)) if mode == "overloaded_once" && !refused_once => {
                refused_once = true;
                send(
                    json!({"id": id, "error": {"code": -32001, "message": "server overloaded; retry later"}}),
                );
            }
            ("config/read", Some(id)) if mode == "modelless_thread" => send(
                json!({"id": id, "result": {"config": {"model": "configured-model"}, "origins": {}}}),
            ),
            ("thread/resume", Some(id)) => {
                let thread = message
                    .pointer("/params/threadId")
                    .cloned()
                    .unwrap_or(json!("thr_fake"));
                let model = message.pointer("/params/model").cloned();
                if mode == "modelless_thread" && model.is_none() {
                    send(json!({"id": id, "error": {"code": -32600, "message":
                        "No models are available. Set `model` explicitly or check your model catalog configuration."}}));
                    continue;
                }
                send(
                    json!({"id": id, "result": {"thread": {"id": thread, "turns": []}, "model": model}}),
                );
            }
            ("turn/start", Some(id)) => {
                turn_counter += 1;
                let turn = format!("turn_fake_{turn_counter}");
                let thread = message
                    .pointer("/params/threadId")
                    .and_then(Value::as_str)
                    .unwrap_or("thr_fake")
                    .to_string();
                let reply = json!({"id": id, "result": {"turn": {"id": turn, "status": "inProgress", "items": []}}});
                let started = json!({"method": "turn/started", "params": {"threadId": thread, "turn": {"id": turn, "status": "inProgress"}}});
                if mode == "approval_first" {
                    send(started);
                    send(
                        json!({"id": 0, "method": "item/commandExecution/requestApproval",
                        "params": {"threadId": thread, "turnId": turn, "itemId": "call_1", "command": "echo hi",
                                   "cwd": Value::Null, "availableDecisions": ["accept", "cancel"]}}),
                    );
                    // Long enough for the request to be recorded before the reply is read.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    send(reply);
                    pending_turn = Some((thread, turn));
                    continue;
                }
                send(reply);
                send(started);
                match mode.as_str() {
                    "exit_mid_turn" => std::process::exit(3),
                    "close_stdout" => {
                        // Stdout closed, the process still running: it can no longer answer anyone.
                        // SAFETY: fd 1 is this process's stdout; nothing writes to it after this point.
                        drop(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(1) });
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(1));
                        }
                    }
                    "hold_turn" => {}
                    "silent_turn_end" => silent_turns.push(turn),
                    "legacy_approval" => {
                        let cwd = message
                            .pointer("/params/cwd")
                            .cloned()
                            .unwrap_or(json!("/tmp"));
                        send(json!({"id": 0, "method": "execCommandApproval",
                            "params": {"conversationId": thread, "callId": "call_1", "approvalId": null,
                                       "command": ["echo", "hi"], "cwd": cwd, "parsedCmd": [], "reason": null}}));
                        pending_turn = Some((thread, turn));
                    }
                    "approval" => {
                        let cwd = message
                            .pointer("/params/cwd")
                            .cloned()
                            .unwrap_or(Value::Null);
                        send(
                            json!({"id": 0, "method": "item/commandExecution/requestApproval",
                            "params": {"threadId": thread, "turnId": turn, "itemId": "call_1", "command": "echo hi",
                                       "cwd": cwd, "availableDecisions": ["accept", "cancel"]}}),
                        );
                        pending_turn = Some((thread, turn));
                    }
                    _ => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        send(
                            json!({"method": "turn/completed", "params": {"threadId": thread,
                            "turn": {"id": turn, "status": "completed", "items": []}}}),
                        );
                    }
                }
            }
            ("thread/read", Some(id)) if mode == "silent_turn_end" => {
                let thread = message
                    .pointer("/params/threadId")
                    .cloned()
                    .unwrap_or(json!("thr_fake"));
                let turns: Vec<Value> = silent_turns
                    .iter()
                    .map(|turn| {
                        json!({"id": turn, "status": "completed", "items": [{"type": "agentMessage", "id": "msg_1",
                               "text": "Plan.\n<proposed_plan>\n1. Do the silent step\n</proposed_plan>"}]})
                    })
                    .collect();
                send(json!({"id": id, "result": {"thread": {"id": thread, "turns": turns}}}));
            }
            ("turn/interrupt", Some(id)) => {
                send(json!({"id": id, "result": {}}));
                let param = |key: &str| message.pointer(key).cloned().unwrap_or(Value::Null);
                let (thread, turn) = (param("/params/threadId"), param("/params/turnId"));
                if pending_turn
                    .as_ref()
                    .is_some_and(|(_, t)| Some(t.as_str()) == turn.as_str())
                {
                    pending_turn = None;
                }
                send(
                    json!({"method": "turn/completed", "params": {"threadId": thread,
                    "turn": {"id": turn, "status": "interrupted", "items": []}}}),
                );
            }
            ("", Some(_)) => {
                // A reply to one of our server requests.
                if let Some((thread, turn)) = pending_turn.take() {
                    send(
                        json!({"method": "turn/completed", "params": {"threadId": thread,
                        "turn": {"id": turn, "status": "completed", "items": []}}}),
                    );
                }
            }
            (_, Some(id)) => send(json!({"id": id, "result": {}})),
            _ => {}
        }
    }
}

fn send_raw(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
