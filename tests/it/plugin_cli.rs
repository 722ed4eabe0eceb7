//! `plugins list` and `plugins check PATH`, run as an operator runs them: the built binary, a configuration
//! file, no server and no database.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::mcp_client::{isolated_env, server_binary, TempDir};
use support::wasm_plugins::{
    example_policy_plugin, hostile_manifest_with, plugin_folder, test_plugins, workspace_root,
};

/// What one run of the binary gave.
struct Run {
    /// Exit code (-1 when killed by a signal).
    code: i32,
    /// Stdout.
    stdout: String,
    /// Stderr.
    stderr: String,
}

impl Run {
    /// Stdout as JSON.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

/// Runs `codex-control-plane-mcp --config <dir>/config.toml ARGS` with `config` as that file and every path
/// inside `dir`.
fn run(dir: &Path, config: &str, args: &[&str]) -> Run {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(server_binary().expect("binary"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_clear()
        .envs(isolated_env(dir))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A folder holding the example site policy: its own manifest (edited by `manifest_edit`) and component.
fn example_folder(parent: &Path, name: &str, manifest_edit: impl Fn(String) -> String) -> PathBuf {
    let wasm = example_policy_plugin().expect("example policy builds");
    let manifest =
        std::fs::read_to_string(workspace_root().join("examples/policy-plugin/plugin.toml"))
            .expect("example manifest");
    plugin_folder(parent, name, &manifest_edit(manifest), &wasm).expect("plugin folder")
}

/// A folder holding the hostile test plugin with `manifest`.
fn hostile_folder(parent: &Path, manifest: &str) -> PathBuf {
    let plugins = test_plugins().expect("test plugins build");
    plugin_folder(parent, "hostile", manifest, &plugins.hostile).expect("plugin folder")
}

/// The hostile manifest with a `config_schema` for its settings: `greeting` a string, `retries` an integer up to 5,
/// nothing else.
fn hostile_with_schema() -> String {
    format!(
        "{}\n[config_schema]\ntype = \"object\"\nadditionalProperties = false\nrequired = [\"greeting\"]\n\
         [config_schema.properties.greeting]\ntype = \"string\"\n\
         [config_schema.properties.retries]\ntype = \"integer\"\nminimum = 0\nmaximum = 5\n",
        hostile_manifest_with("hostile", "", None)
    )
}

#[test]
fn list_shows_the_seven_default_plugins_loaded_and_linked() {
    let dir = TempDir::new("plugcli-list");
    let listed = run(dir.path(), "", &["plugins", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let plugins = listed.json()["plugins"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = plugins.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "compaction-workflow",
            "default-policy",
            "default-repairs",
            "plan-workflow",
            "review-workflow",
            "runtime-analyzer",
            "work-analyzer"
        ],
        "{}",
        listed.stdout
    );
    for plugin in &plugins {
        // Linked now, not at first call: `loaded` means the component really links.
        assert_eq!(plugin["status"], json!("loaded"), "{plugin}");
        assert_eq!(plugin["linked"], json!(true), "{plugin}");
        assert_eq!(plugin["source"], json!("embedded"), "{plugin}");
        assert_eq!(plugin["capabilities"], plugin["granted"], "{plugin}");
        assert!(
            plugin["limits"]["fuel"].as_u64().is_some_and(|f| f > 0),
            "{plugin}"
        );
        assert!(
            plugin["worlds"].as_array().is_some_and(|w| !w.is_empty()),
            "{plugin}"
        );
    }
    let policy = &plugins[1];
    assert_eq!(
        policy["limits"],
        json!({"fuel": 10_000_000, "timeoutMs": 100, "memoryBytes": 16_777_216})
    );

    // The table names the same plugins; a disabled one shows with its reason.
    let table = run(
        dir.path(),
        "[plugins]\ndisabled = [\"review-workflow\"]\n",
        &["plugins", "list"],
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("review-workflow disabled: disabled by plugins.disabled"),
        "{}",
        table.stdout
    );
}

#[test]
fn list_is_not_ok_when_a_required_plugin_does_not_load() {
    // A failing plugin that is not required is listed as failed and does not fail the listing; required, it
    // does, with the reason start-up would give.
    let dir = TempDir::new("plugcli-required");
    let plugins = dir.path().join("plugins");
    hostile_folder(
        &plugins,
        &hostile_manifest_with("hostile", "", Some(&["state"])),
    );
    let config = format!("[plugins]\ndirs = [{:?}]\n", plugins.display().to_string());
    let listed = run(dir.path(), &config, &["plugins", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let report = listed.json();
    let hostile = report["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == json!("hostile")).cloned())
        .unwrap_or_else(|| panic!("no hostile entry: {report}"));
    assert_eq!(hostile["status"], json!("failed"), "{hostile}");
    assert!(
        hostile["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not grant: state")),
        "{hostile}"
    );
    let required = format!("{config}required = [\"hostile\"]\n");
    let listed = run(dir.path(), &required, &["plugins", "list", "--json"]);
    assert_eq!(listed.code, 1, "{}", listed.stdout);
    assert!(
        listed.json()["requiredError"]
            .as_str()
            .is_some_and(|e| e.contains("required plugin hostile is not loaded")),
        "{}",
        listed.stdout
    );
}

#[test]
fn check_passes_on_the_example_policy() {
    let dir = TempDir::new("plugcli-example");
    let folder = example_folder(dir.path(), "site-policy", |m| m);
    let checked = run(
        dir.path(),
        "",
        &["plugins", "check", &folder.display().to_string(), "--json"],
    );
    assert_eq!(checked.code, 0, "{}\n{}", checked.stdout, checked.stderr);
    let report = checked.json();
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["plugin"]["id"], json!("site-policy"));
    assert_eq!(report["plugin"]["worlds"], json!(["policy"]));
    assert_eq!(report["plugin"]["capabilities"], json!(["log", "config"]));
    assert_eq!(report["plugin"]["limits"]["timeoutMs"], json!(50));
    assert_eq!(report["grantHint"], Value::Null);

    // The component named directly, under its build name beside the manifest, loads the same way.
    let built = example_policy_plugin().expect("example policy builds");
    let beside = folder.join("site_policy.wasm");
    std::fs::copy(&built, &beside).expect("copy component");
    std::fs::remove_file(folder.join("plugin.wasm")).expect("remove plugin.wasm");
    let checked = run(
        dir.path(),
        "",
        &["plugins", "check", &beside.display().to_string()],
    );
    assert_eq!(checked.code, 0, "{}\n{}", checked.stdout, checked.stderr);
    assert!(
        checked.stdout.starts_with("ok: plugin site-policy@"),
        "{}",
        checked.stdout
    );
}

#[test]
fn check_fails_naming_what_is_wrong() {
    let dir = TempDir::new("plugcli-broken");
    let check = |folder: &Path, config: &str| {
        let checked = run(
            dir.path(),
            config,
            &["plugins", "check", &folder.display().to_string(), "--json"],
        );
        assert_eq!(checked.code, 1, "{}\n{}", checked.stdout, checked.stderr);
        let report = checked.json();
        assert_eq!(report["ok"], json!(false), "{report}");
        report
    };
    let error = |report: &Value| {
        report["plugin"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // A misspelt manifest key (at the top: below `[config]` any key is the plugin's own).
    let bad = example_folder(&dir.path().join("bad"), "site-policy", |m| {
        format!("feul = 1\n{m}")
    });
    let report = check(&bad, "");
    assert!(
        error(&report).contains("invalid plugin manifest") && error(&report).contains("feul"),
        "{report}"
    );

    // A world the component does not export.
    let world = example_folder(&dir.path().join("world"), "site-policy", |m| {
        m.replace("worlds = [\"policy\"]", "worlds = [\"workflow\"]")
    });
    let report = check(&world, "");
    assert!(
        error(&report).contains("does not implement world `workflow`"),
        "{report}"
    );

    // A capability the operator did not grant: the report says which grant to add, and with it the plugin loads.
    let hostile = hostile_folder(
        &dir.path().join("caps"),
        &hostile_manifest_with("hostile", "", Some(&["log", "state"])),
    );
    let report = check(&hostile, "");
    assert!(error(&report).contains("did not grant: state"), "{report}");
    assert_eq!(
        report["grantHint"],
        json!("[plugins.grants]\nhostile = [\"log\", \"state\"]")
    );
    let granted = run(
        dir.path(),
        "[plugins.grants]\nhostile = [\"log\", \"state\"]\n",
        &["plugins", "check", &hostile.display().to_string()],
    );
    assert_eq!(granted.code, 0, "{}\n{}", granted.stdout, granted.stderr);

    // The id of a default plugin is taken.
    let taken = example_folder(&dir.path().join("taken"), "site-policy", |m| {
        m.replace("id = \"site-policy\"", "id = \"default-policy\"")
    });
    let report = check(&taken, "");
    assert!(
        error(&report).contains("another plugin with id default-policy"),
        "{report}"
    );

    // Nothing to check at all is a usage error, not a verdict.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let checked = run(
        dir.path(),
        "",
        &["plugins", "check", &empty.display().to_string()],
    );
    assert_eq!(checked.code, 2, "{}", checked.stderr);
    assert!(
        checked.stderr.contains("no plugin.toml in this folder"),
        "{}",
        checked.stderr
    );
}

#[test]
fn settings_are_checked_against_the_plugins_config_schema() {
    let dir = TempDir::new("plugcli-settings");
    let plugins = dir.path().join("plugins");
    let folder = hostile_folder(&plugins, &hostile_with_schema());
    let path = folder.display().to_string();
    let dirs = format!("[plugins]\ndirs = [{:?}]\n", plugins.display().to_string());

    // The manifest's own `[config]` fits; so does a valid operator setting.
    let checked = run(dir.path(), "", &["plugins", "check", &path]);
    assert_eq!(checked.code, 0, "{}\n{}", checked.stdout, checked.stderr);
    let valid = "[plugins.settings.hostile]\nretries = 3\n";
    assert_eq!(run(dir.path(), valid, &["plugins", "check", &path]).code, 0);

    // Out of range, mistyped or unknown: the plugin does not load and the message names the key.
    for (settings, key) in [
        ("retries = 9", "retries"),
        ("greeting = 5", "greeting"),
        ("gretting = \"hi\"", "gretting"),
    ] {
        let config = format!("[plugins.settings.hostile]\n{settings}\n");
        let checked = run(dir.path(), &config, &["plugins", "check", &path, "--json"]);
        assert_eq!(
            checked.code, 1,
            "{settings}: {}\n{}",
            checked.stdout, checked.stderr
        );
        let error = checked.json()["plugin"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains(&format!("plugins.settings.hostile.{key}"))
                && error.contains("is invalid"),
            "{settings}: {error}"
        );
        // The configured server reports the same failure and goes on without the plugin.
        let listed = run(
            dir.path(),
            &format!("{dirs}{config}"),
            &["plugins", "list", "--json"],
        );
        assert_eq!(listed.code, 0, "{}", listed.stderr);
        let report = listed.json();
        let hostile = report["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["id"] == json!("hostile")).cloned())
            .unwrap_or_else(|| panic!("no hostile entry: {report}"));
        assert_eq!(hostile["status"], json!("failed"), "{hostile}");
        assert!(
            hostile["error"].as_str().is_some_and(|e| e.contains(key)),
            "{hostile}"
        );
    }

    // A schema keyword the host does not check is refused rather than silently ignored.
    let lax = hostile_folder(
        &dir.path().join("lax"),
        &format!(
            "{}\n[config_schema]\ntype = \"object\"\npatternProperties = {{}}\n",
            hostile_manifest_with("hostile", "", None)
        ),
    );
    let checked = run(
        dir.path(),
        "",
        &["plugins", "check", &lax.display().to_string(), "--json"],
    );
    assert_eq!(checked.code, 1, "{}", checked.stdout);
    assert!(
        checked.stdout.contains("patternProperties"),
        "{}",
        checked.stdout
    );
}
