//! `hooks install|uninstall|status|doctor|record` against the real pinned Codex: the installer merges our
//! hooks into a `CODEX_HOME` that holds the user's own, records their trust through the app-server, and a
//! Codex session run outside this server (`codex exec`) then lands in the server's history and search.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::fake_model::{FakeModel, Reply};
use support::mcp_client::{server_binary, McpClient, TempDir};
use support::peer::{codex_binary, server_env, CodexHome};

fn hooks(env: &[(String, String)], args: &[&str]) -> (Output, Value) {
    let output = Command::new(server_binary().expect("server binary"))
        .arg("hooks")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run hooks");
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

fn hooks_file(home: &CodexHome) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(home.path().join("hooks.json")).expect("hooks.json"),
    )
    .expect("json")
}

#[test]
fn installed_hooks_are_trusted_and_record_a_codex_session_run_elsewhere() {
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    let dir = TempDir::new("hooks");
    let env = server_env(&dir, &home);
    let user = json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "true"}]}]}});
    std::fs::write(home.path().join("hooks.json"), user.to_string()).expect("user hooks");

    let (output, report) = hooks(&env, &["install"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report["trust"]["trusted"], json!(5), "{report}");
    assert_eq!(report["trust"]["untrusted"], json!(0), "{report}");
    let backup = report["hooksFile"]["backup"].as_str().expect("a backup");
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(backup).expect("backup"))
            .expect("json"),
        user
    );
    let installed = hooks_file(&home);
    assert_eq!(
        installed["hooks"]["Stop"][0], user["hooks"]["Stop"][0],
        "the user's hook stays first"
    );
    // Idempotent: a second install changes nothing and backs nothing up.
    let (output, again) = hooks(&env, &["install"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(again["hooksFile"]["changed"], json!(false), "{again}");
    assert_eq!(hooks_file(&home), installed);

    // A session the user runs in a terminal, not through this server.
    model.push([Reply::text("The kingfisher answer.")]);
    let exec = Command::new(codex_binary())
        .args(["exec", "--skip-git-repo-check", "-C"])
        .arg(home.work_dir())
        .arg("tell me about the kingfisher bird")
        .env("CODEX_HOME", home.path())
        .envs(home.child_env())
        .stdin(Stdio::null())
        .output()
        .expect("codex exec");
    assert!(exec.status.success(), "codex exec failed: {exec:?}");

    let mut client = McpClient::start(&env).expect("server");
    let found = client
        .call_tool("codex_search_chats", json!({"query": "kingfisher"}))
        .expect("search");
    let texts: Vec<String> = found["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["snippets"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("bird")) && texts.iter().any(|t| t.contains("answer")),
        "the prompt and the answer the hooks recorded are found: {found}"
    );
    drop(client);

    let (output, status) = hooks(&env, &["doctor"]);
    assert!(output.status.success(), "{output:?} {status}");
    assert_eq!(status["allEventsInstalled"], json!(true));
    assert_eq!(status["dbWritable"], json!(true));

    // Uninstall keeps the user's hook; status then reports the missing events and exits 1.
    let (output, _) = hooks(&env, &["uninstall"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(hooks_file(&home), user);
    let (output, status) = hooks(&env, &["status"]);
    assert!(!output.status.success());
    assert_eq!(status["allEventsInstalled"], json!(false), "{status}");
    assert!(status["trust"]["instructions"].is_string(), "{status}");
}

#[test]
fn the_recorder_never_fails_the_hook() {
    let dir = TempDir::new("hooks-record");
    let missing = dir.path().join("no-such-config.json");
    let mut child = Command::new(server_binary().expect("server binary"))
        .args(["hooks", "record", "--hook-config"])
        .arg(&missing)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(br#"{"hook_event_name": "Stop"}"#);
    }
    let status = support::mcp_client::wait_or_kill(&mut child, Duration::from_secs(30))
        .expect("wait")
        .expect("exits");
    assert!(status.success(), "{status}");
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let message: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert!(
        message["systemMessage"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-config")),
        "{message}"
    );
}
