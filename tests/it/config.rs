//! Start-up configuration errors, seen the way a user sees them: the binary exits with a message naming the key.

use std::process::Command;

use support::mcp_client::{isolated_env, server_binary, TempDir};

fn run_with_config(text: &str, extra_env: &[(&str, &str)]) -> (i32, String) {
    let dir = TempDir::new("config");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(server_binary().expect("binary"))
        .arg("--config")
        .arg(&path)
        .env_clear()
        .envs(isolated_env(dir.path()))
        .envs(extra_env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_toml_is_a_clear_startup_error() {
    let (code, stderr) = run_with_config("default_sandbox = \n", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid config file"), "{stderr}");
}

#[test]
fn unknown_key_is_named() {
    let (code, stderr) = run_with_config("default_sandbx = \"read-only\"\n", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("default_sandbx"), "{stderr}");
}

#[test]
fn bad_enum_value_is_named() {
    let (code, stderr) = run_with_config("default_approval_policy = \"sometimes\"\n", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("default_approval_policy") && stderr.contains("sometimes"),
        "{stderr}"
    );
    let (code, stderr) = run_with_config("", &[("CODEX_MCP_DEFAULT_SANDBOX", "everything")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("CODEX_MCP_DEFAULT_SANDBOX"), "{stderr}");
}

#[test]
fn example_config_is_valid() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/codex-control-plane-mcp.toml"
    ))
    .expect("example config exists");
    let (code, stderr) = run_with_config(&example, &[]);
    // A valid config starts the server, which exits cleanly when stdin (here /dev/null) is closed.
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn version_and_help_work() {
    let binary = server_binary().expect("binary");
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("run");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("codex-control-plane-mcp "));
    let help = Command::new(&binary).arg("--help").output().expect("run");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
}

#[test]
fn a_misspelt_capability_grant_is_named() {
    // A grant the host does not know is a start-up error, not a silently dropped permission.
    let (code, stderr) = run_with_config("[plugins.grants]\nsite-policy = [\"stat\"]\n", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("site-policy") && stderr.contains("stat"),
        "{stderr}"
    );
}

#[test]
fn a_required_plugin_that_does_not_load_stops_start_up() {
    // `plugins.required` names a plugin nobody provides: the server refuses to start and says which.
    let (code, stderr) = run_with_config("[plugins]\nrequired = [\"site-policy\"]\n", &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("required plugin site-policy is not loaded"),
        "{stderr}"
    );
    // The default plugins are found, so requiring one is fine (stdin is closed: the server ends at once).
    let (code, stderr) = run_with_config("[plugins]\nrequired = [\"default-policy\"]\n", &[]);
    assert_eq!(code, 0, "{stderr}");
}
