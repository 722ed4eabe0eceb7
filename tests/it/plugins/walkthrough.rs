//! The walk-through of `docs/PLUGINS.md` ("Start a plugin"), run as the doc shows it: its shell block is read
//! from the doc and run by `sh` (scaffold with `plugins new`, build with the documented cargo command, copy the
//! component, `plugins check .`), then its TOML block loads the new plugin into a server, whose policy then
//! refuses a turn through a real MCP tool call.
//!
//! The crate is built offline (after the example's build, the registry cache holds what the SDK needs; no test
//! reaches beyond loopback) into the target directory the example policy's build uses, so the SDK and its
//! dependencies compile once.

use std::path::{Path, PathBuf};
use std::process::Command;

use codex_control_plane::plugins::{PluginHost, PluginStatus};
use serde_json::json;
use support::mcp_client::{isolated_env, server_binary, TempDir};
use support::wasm_plugins::{example_policy_plugin, workspace_root};

use crate::harness::{op_id, Harness};

/// Runs `script` with `sh -eu` in `dir` with [`shell_env`]; returns stdout, or panics with both streams.
#[track_caller]
fn run_shell(script: &str, dir: &Path, root: &Path, config: &Path) -> String {
    let run = Command::new("sh")
        .arg("-eu")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .envs(shell_env(root, config))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{script}\n{stdout}\n{stderr}");
    stdout
}

/// The fenced block that follows `<!-- walkthrough:<name> -->` in `docs/PLUGINS.md`.
#[track_caller]
fn doc_block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- walkthrough:{name} -->");
    let after = doc
        .split_once(&marker)
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("docs/PLUGINS.md has no {marker}"));
    let body = after
        .trim_start()
        .split_once('\n')
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(body, _)| body.to_string());
    body.unwrap_or_else(|| panic!("no fenced block after {marker}"))
}

/// The environment the shell block runs in: the server's isolated one (its configuration in `root`), the built
/// binary first on `PATH`, the real toolchain (cargo and rustup homes, the toolchain of this run), the SDK of
/// this checkout as `$SDK`, the shared target directory, and cargo offline.
fn shell_env(root: &Path, config: &Path) -> Vec<(String, String)> {
    let binary = server_binary().expect("server binary");
    let bin_dir = binary
        .parent()
        .expect("binary folder")
        .display()
        .to_string();
    let real_home = std::env::var("HOME").unwrap_or_default();
    let inherited = |name: &str, fallback: String| std::env::var(name).unwrap_or(fallback);
    let mut env = isolated_env(root);
    env.extend([
        (
            "PATH".to_string(),
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        ),
        (
            "CARGO_HOME".to_string(),
            inherited("CARGO_HOME", format!("{real_home}/.cargo")),
        ),
        (
            "RUSTUP_HOME".to_string(),
            inherited("RUSTUP_HOME", format!("{real_home}/.rustup")),
        ),
        (
            "SDK".to_string(),
            workspace_root().join("plugins/sdk").display().to_string(),
        ),
        (
            "CARGO_TARGET_DIR".to_string(),
            workspace_root()
                .join("target/wasm-test-plugins/examples")
                .display()
                .to_string(),
        ),
        ("CARGO_NET_OFFLINE".to_string(), "true".to_string()),
        (
            "CODEX_CONTROL_PLANE_MCP_CONFIG".to_string(),
            config.display().to_string(),
        ),
    ]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".to_string(), toolchain));
    }
    env
}

#[test]
fn the_plugins_walkthrough_runs_as_documented() {
    // The example's build (online when the registry cache is cold) fetches every crate the SDK needs and warms
    // the target directory this build shares.
    example_policy_plugin().expect("the example builds");
    let doc = std::fs::read_to_string(workspace_root().join("docs/PLUGINS.md")).expect("doc");
    let shell = doc_block(&doc, "shell");
    let toml = doc_block(&doc, "config");
    let work = TempDir::new("walkthrough");
    let config = work.path().join("config.toml");
    std::fs::write(&config, "").expect("empty config");

    let stdout = run_shell(&shell, work.path(), work.path(), &config);
    assert!(
        stdout.contains("created policy plugin my-policy"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: plugin my-policy@0.1.0"), "{stdout}");
    let crate_dir: PathBuf = work.path().join("my-policy");
    for file in ["Cargo.toml", "src/lib.rs", "plugin.toml", "README.md"] {
        assert!(crate_dir.join(file).is_file(), "{file} scaffolded");
    }
    // The README names the same build command.
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).expect("readme");
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"));

    // Never overwrites; a bad name is refused with a code, exit 2.
    let again = Command::new(server_binary().expect("binary"))
        .args(["plugins", "new", "--world", "policy", "my-policy", "--json"])
        .args([
            "--sdk-path",
            &workspace_root().join("plugins/sdk").display().to_string(),
        ])
        .current_dir(work.path())
        .env_clear()
        .envs(isolated_env(work.path()))
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json error");
    assert_eq!(error["error"]["code"], json!("exists"), "{error}");
    let bad = Command::new(server_binary().expect("binary"))
        .args(["plugins", "new", "--world", "policy", "My Policy", "--json"])
        .current_dir(work.path())
        .env_clear()
        .envs(isolated_env(work.path()))
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json error");
    assert_eq!(error["error"]["code"], json!("invalid_name"), "{error}");
    assert!(!work.path().join("My Policy").exists());

    // The doc's TOML loads it into a server; its one rule acts on a real submit, with the reason the
    // config_schema's default gives (neither [config] nor the operator sets it).
    let loaded = toml.replace("/path/to/my-policy", &crate_dir.display().to_string());
    std::fs::write(&config, loaded).expect("config");
    let config = config.display().to_string();
    let mut h = Harness::start_with(
        "walkthrough-server",
        &[("CODEX_CONTROL_PLANE_MCP_CONFIG", config.as_str())],
    );
    let denied = op_id(
        &h.submit(json!({"operation_type": "start_chat", "message": "hi", "model": "gpt-4o"})),
    );
    let denied = h.wait_terminal(&denied);
    assert_eq!(denied["status"], json!("failed"), "{denied}");
    let reason = denied["lastError"].to_string();
    assert!(
        reason
            .contains("model gpt-4o is denied on this site (policy my-policy, rule denied_models)"),
        "{reason}"
    );
    assert_eq!(
        h.model.n_model_calls(),
        0,
        "the denied turn reached no model"
    );
}

#[test]
fn a_scaffolded_analyzer_builds_by_its_readme_and_finds() {
    // `plugins new --world analyzer`, then the README's own commands (build, copy, check), then the library host
    // runs it: its `max_failed` comes from the config_schema default (0), or from the operator's settings.
    example_policy_plugin().expect("the example builds");
    let work = TempDir::new("scaffold-analyzer");
    let config = work.path().join("config.toml");
    std::fs::write(&config, "").expect("empty config");
    let created = run_shell(
        "codex-control-plane-mcp plugins new --world analyzer site-analyzer --sdk-path \"$SDK\" --json",
        work.path(),
        work.path(),
        &config,
    );
    let created: serde_json::Value = serde_json::from_str(&created).expect("json");
    assert_eq!(created["world"], json!("analyzer"), "{created}");
    let crate_dir = work.path().join("site-analyzer");
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).expect("readme");
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect();
    assert_eq!(blocks.len(), 2, "build, then install and check: {readme}");
    let checked = run_shell(&blocks.concat(), &crate_dir, work.path(), &config);
    assert!(
        checked.contains("ok: plugin site-analyzer@0.1.0"),
        "{checked}"
    );

    let snapshot =
        r#"{"operations": [{"status": "failed"}, {"status": "failed"}, {"status": "completed"}]}"#;
    let host =
        PluginHost::load(&super::config(work.path(), vec![crate_dir.clone()])).expect("host");
    assert_eq!(
        super::info(&host, "site-analyzer").status,
        PluginStatus::Loaded
    );
    let findings = host.analyze("site-analyzer", snapshot).expect("analyze");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, "site_analyzer.failed_operations");
    assert!(findings[0].message.contains("more than 0"), "{findings:?}");
    let mut lenient = serde_json::Map::new();
    lenient.insert("max_failed".to_string(), json!(2));
    let host = PluginHost::builder(&super::config(work.path(), vec![crate_dir]))
        .plugin_config("site-analyzer", lenient)
        .load()
        .expect("host");
    let findings = host.analyze("site-analyzer", snapshot).expect("analyze");
    assert!(findings.is_empty(), "{findings:?}");
}
