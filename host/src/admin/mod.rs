//! `admin init|doctor|print-config|smoke`: setting the server up for a user and checking that it works.
//!
//! `init` creates the state database, installs the hooks (unless `--skip-hooks`), runs the protocol smoke
//! (unless `--skip-smoke`) and prints ready-to-paste client configurations: the JSON `mcpServers` block most
//! clients read, the `[mcp_servers]` TOML of Codex, and the `claude mcp add` command of Claude Code. Each
//! carries the environment that points the server at the same state, so every client shares one database.

mod smoke;

pub use smoke::{smoke, SmokeScenario};

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::domain::rules::shell::shell_quote;
use crate::mcp::server::SERVER_NAME;

/// The environment a client must give the server so it finds this configuration's state.
fn client_env(config: &Config) -> Map<String, Value> {
    let roots: Vec<String> = config
        .allowed_roots
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut env = Map::new();
    env.insert(
        "CODEX_HOME".into(),
        json!(config.codex_home.display().to_string()),
    );
    env.insert(
        "CODEX_MCP_STATE_DB".into(),
        json!(config.state_db_path.display().to_string()),
    );
    env.insert(
        "CODEX_PROJECTS_ROOT".into(),
        json!(config.projects_root.display().to_string()),
    );
    env.insert("CODEX_ALLOWED_ROOTS".into(), json!(roots.join(";")));
    // Clients that share the state share the compiled plugins too (a cold cache slows the first start).
    if let Some(dir) = &config.plugins.cache_dir {
        env.insert(
            "CODEX_CONTROL_PLANE_MCP_PLUGIN_CACHE".into(),
            json!(dir.display().to_string()),
        );
    }
    if let Some(file) = &config.source_file {
        env.insert(
            crate::config::CONFIG_PATH_ENV.into(),
            json!(file.display().to_string()),
        );
    }
    env
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The three client configurations for running `binary` with this configuration.
pub fn client_configs(config: &Config, binary: &Path) -> Value {
    let command = binary.display().to_string();
    let env = client_env(config);
    let mut codex = format!(
        "[mcp_servers.{SERVER_NAME}]\ncommand = {}\nstartup_timeout_sec = 60\ntool_timeout_sec = 120\n\n[mcp_servers.{SERVER_NAME}.env]\n",
        toml_string(&command)
    );
    let mut claude = format!("claude mcp add {SERVER_NAME} --scope user");
    for (key, value) in &env {
        let value = value.as_str().unwrap_or_default();
        codex.push_str(&format!("{key} = {}\n", toml_string(value)));
        claude.push_str(&format!(" -e {}", shell_quote(&format!("{key}={value}"))));
    }
    claude.push_str(&format!(" -- {}", shell_quote(&command)));
    json!({
        "mcpServers": {SERVER_NAME: {"command": command, "args": [], "env": env}},
        "codexConfigToml": codex,
        "claudeCodeCommand": claude,
    })
}

/// `admin print-config`.
pub fn print_config(config: &Config, binary: &Path) -> Value {
    let mut out = client_configs(config, binary);
    out["ok"] = json!(true);
    out
}

/// `admin doctor`: the paths, the database, the codex binary, the hooks.
pub async fn doctor(config: &Config) -> (Value, bool) {
    let db = match crate::store::Store::open(&config.state_db_path) {
        Ok(_) => json!({"ok": true, "path": config.state_db_path}),
        Err(err) => json!({"ok": false, "path": config.state_db_path, "error": err.to_string()}),
    };
    let binary = crate::appserver::find_codex_binary(config.codex_binary_path.as_deref());
    let codex = match &binary {
        Some(path) => json!({"ok": true, "path": path}),
        None => {
            json!({"ok": false, "error": "codex binary not found (set CODEX_BINARY_PATH or put codex on PATH)"})
        }
    };
    let roots: Vec<Value> = config
        .allowed_roots
        .iter()
        .map(|root| json!({"path": root, "exists": root.is_dir()}))
        .collect();
    let roots_ok = config.allowed_roots.iter().all(|r| r.is_dir());
    let hooks = crate::hooks::status(config, true).await;
    let ok = db["ok"] == json!(true) && codex["ok"] == json!(true) && roots_ok;
    (
        json!({"ok": ok, "action": "doctor", "stateDb": db, "codexBinary": codex,
               "codexHome": {"path": config.codex_home, "exists": config.codex_home.is_dir()},
               "allowedRoots": roots, "hooks": hooks.json,
               "hint": (!hooks.ok).then_some("history of sessions run outside the server needs `hooks install`")}),
        ok,
    )
}

/// `admin init`: the database, the hooks, the smoke test, the client configurations.
pub async fn init(
    config: &Config,
    binary: &Path,
    skip_hooks: bool,
    skip_smoke: bool,
) -> (Value, bool) {
    let db = match crate::store::Store::open(&config.state_db_path) {
        Ok(_) => json!({"ok": true, "path": config.state_db_path}),
        Err(err) => json!({"ok": false, "path": config.state_db_path, "error": err.to_string()}),
    };
    let mut ok = db["ok"] == json!(true);
    let hooks = if skip_hooks {
        json!({"skipped": true})
    } else {
        let report = crate::hooks::install(config, None, false).await;
        ok &= report.ok;
        report.json
    };
    let smoke = if skip_smoke {
        json!({"skipped": true})
    } else {
        let report = smoke(config, binary, SmokeScenario::Protocol).await;
        ok &= report["ok"] == json!(true);
        report
    };
    let mut out = client_configs(config, binary);
    out["ok"] = json!(ok);
    out["action"] = json!("init");
    out["stateDb"] = db;
    out["hooks"] = hooks;
    out["smoke"] = smoke;
    (out, ok)
}
