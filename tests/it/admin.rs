//! `admin init|doctor|print-config|smoke` against the built binary: the client configurations it prints
//! parse and work (the Codex snippet makes a real `codex exec` offer our tools to its model), the seed's
//! `-admin` entry point is the same binary under another name, and the safe-operation smoke runs one real
//! read-only turn.

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::fake_model::{FakeModel, Reply};
use support::mcp_client::{server_binary, TempDir};
use support::peer::{codex_binary, server_env, CodexHome};

fn run(program: &std::path::Path, env: &[(String, String)], args: &[&str]) -> (Output, Value) {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

#[test]
fn init_prints_client_configs_that_work_and_the_admin_name_is_the_same_binary() {
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    let dir = TempDir::new("admin");
    let env = server_env(&dir, &home);
    let binary = server_binary().expect("server binary");
    let (output, report) = run(&binary, &env, &["admin", "init", "--skip-hooks"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report["smoke"]["ok"], json!(true), "{report}");
    assert!(std::path::Path::new(report["stateDb"]["path"].as_str().expect("db")).exists());

    // The JSON block names this binary and the state the environment points at.
    let server = &report["mcpServers"]["codex-control-plane-mcp"];
    assert_eq!(server["command"], json!(binary.display().to_string()));
    let db = env
        .iter()
        .find(|(k, _)| k == "CODEX_MCP_STATE_DB")
        .expect("db")
        .1
        .clone();
    assert_eq!(server["env"]["CODEX_MCP_STATE_DB"], json!(db));
    // The Claude Code command adds this server with that environment.
    let claude = report["claudeCodeCommand"].as_str().expect("claude");
    assert!(
        claude.starts_with("claude mcp add codex-control-plane-mcp "),
        "{claude}"
    );
    assert!(
        claude.contains(&format!("-e CODEX_MCP_STATE_DB={db}")),
        "{claude}"
    );
    assert!(
        claude.ends_with(&format!("-- {}", binary.display())),
        "{claude}"
    );

    // The Codex snippet parses, and appended to a Codex config it makes `codex exec` offer our tools.
    let snippet = report["codexConfigToml"].as_str().expect("toml");
    let parsed: toml::Table = toml::from_str(snippet).expect("valid TOML");
    assert!(parsed["mcp_servers"]["codex-control-plane-mcp"]["env"]["CODEX_MCP_STATE_DB"].is_str());
    let client_model = FakeModel::start();
    let client_home = CodexHome::new(&client_model);
    let mut config =
        std::fs::read_to_string(client_home.path().join("config.toml")).expect("config");
    config.push('\n');
    config.push_str(snippet);
    std::fs::write(client_home.path().join("config.toml"), config).expect("config");
    client_model.push([Reply::text("Listed.")]);
    let exec = Command::new(codex_binary())
        .args(["exec", "--skip-git-repo-check", "-C"])
        .arg(client_home.work_dir())
        .arg("which tools do you have?")
        .env("CODEX_HOME", client_home.path())
        .envs(client_home.child_env())
        .stdin(Stdio::null())
        .output()
        .expect("codex exec");
    assert!(exec.status.success(), "codex exec failed: {exec:?}");
    let offered = client_model
        .requests()
        .iter()
        .map(|r| r.body["tools"].to_string())
        .collect::<String>();
    assert!(
        offered.contains("codex_submit_task") && offered.contains("codex_wait"),
        "the model was not offered our tools: {offered:.2000}"
    );

    // `codex-control-plane-mcp-admin print-config` is `admin print-config`.
    let link = dir.path().join("codex-control-plane-mcp-admin");
    std::os::unix::fs::symlink(&binary, &link).expect("symlink");
    let (output, printed) = run(&link, &env, &["print-config"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(printed["mcpServers"], report["mcpServers"]);

    let (output, doctor) = run(&binary, &env, &["admin", "doctor"]);
    assert!(output.status.success(), "{output:?} {doctor}");
    assert_eq!(doctor["codexBinary"]["ok"], json!(true), "{doctor}");
}

#[test]
fn the_safe_operation_smoke_runs_one_read_only_turn() {
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    let dir = TempDir::new("admin-smoke");
    let env = server_env(&dir, &home);
    model.push([Reply::text("Probe answered; no files touched.")]);
    let binary = server_binary().expect("server binary");
    let (output, report) = run(
        &binary,
        &env,
        &["admin", "smoke", "--scenario", "safe-operation"],
    );
    assert!(output.status.success(), "{output:?} {report}");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 3, "{report}");
    let prompts: Vec<String> = model
        .requests()
        .iter()
        .flat_map(|r| r.user_texts())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("MCP LIVE TEST / DO NOT MODIFY FILES")),
        "{prompts:?}"
    );
}
