//! The `hooks install|uninstall|status|doctor` commands: each returns the JSON report the CLI prints and
//! whether everything is in order (the exit code).

use std::path::Path;

use serde_json::{json, Value};

use super::file::{file_status, hook_command};
use super::{
    install_file, side_config_file, trust_our_hooks, trust_report, uninstall_file, HooksError,
    DEFAULT_MAX_TEXT_CHARS,
};
use crate::appserver::{AppServer, AppServerSettings};
use crate::config::Config;

/// A command's report and whether it found everything in order.
pub struct Report {
    /// Printed as JSON.
    pub json: Value,
    /// Exit code 0 when true.
    pub ok: bool,
}

/// Runs `work` against a fresh app-server on the config's `CODEX_HOME`, stopped afterwards.
async fn with_app_server<T>(
    config: &Config,
    work: impl AsyncFnOnce(&AppServer) -> Result<T, HooksError>,
) -> Result<T, HooksError> {
    let appserver = AppServer::new(AppServerSettings::from_config(config));
    let result = work(&appserver).await;
    appserver.shutdown().await;
    result
}

fn trust_json(result: &Result<super::TrustReport, HooksError>) -> (Value, bool) {
    match result {
        Ok(report) => (
            serde_json::to_value(report).unwrap_or(Value::Null),
            report.untrusted == 0 && !report.hooks.is_empty(),
        ),
        Err(err) => (json!({"error": err.to_string()}), false),
    }
}

/// `hooks install`: our hooks into `hooks.json` (merged, backed up), the side config, then trust recorded
/// through the app-server unless `skip_trust`.
pub async fn install(config: &Config, max_text_chars: Option<usize>, skip_trust: bool) -> Report {
    let binary = std::env::current_exe().unwrap_or_else(|_| "codex-control-plane-mcp".into());
    let command = hook_command(&binary, &side_config_file(&config.codex_home));
    let max = max_text_chars.unwrap_or(DEFAULT_MAX_TEXT_CHARS);
    let change = match install_file(&config.codex_home, &command, &config.state_db_path, max) {
        Ok(change) => change,
        Err(err) => return failed("install", &err),
    };
    let (trust, trusted) = if skip_trust {
        (json!({"skipped": true}), true)
    } else {
        let cwd = config.projects_root.clone();
        let result =
            with_app_server(config, async |a: &AppServer| trust_our_hooks(a, &cwd).await).await;
        trust_json(&result)
    };
    Report {
        ok: trusted,
        json: json!({"ok": trusted, "action": "install", "hooksFile": change, "command": command,
                     "sideConfig": side_config_file(&config.codex_home), "trust": trust}),
    }
}

/// `hooks uninstall`: our hooks out, everyone else's kept.
pub async fn uninstall(config: &Config) -> Report {
    match uninstall_file(&config.codex_home) {
        Ok(change) => Report {
            ok: true,
            json: json!({"ok": true, "action": "uninstall", "hooksFile": change}),
        },
        Err(err) => failed("uninstall", &err),
    }
}

/// `hooks status` (and, with `doctor`, whether the state DB takes a write).
pub async fn status(config: &Config, doctor: bool) -> Report {
    let files = match file_status(&config.codex_home) {
        Ok(files) => files,
        Err(err) => return failed(if doctor { "doctor" } else { "status" }, &err),
    };
    let cwd = config.projects_root.clone();
    let result = with_app_server(config, async |a: &AppServer| trust_report(a, &cwd).await).await;
    let (trust, trusted) = trust_json(&result);
    let all_events = files.missing_events.is_empty();
    let mut json = json!({"action": if doctor { "doctor" } else { "status" }, "files": files,
                          "trust": trust, "allEventsInstalled": all_events});
    let mut ok = all_events && trusted;
    if doctor {
        let (writable, error) = db_writable(&config.state_db_path);
        json["dbWritable"] = json!(writable);
        json["dbError"] = json!(error);
        ok &= writable;
    }
    json["ok"] = json!(ok);
    Report { json, ok }
}

fn db_writable(path: &Path) -> (bool, Option<String>) {
    match crate::store::Store::open(path) {
        Ok(_) => (true, None),
        Err(err) => (false, Some(err.to_string())),
    }
}

fn failed(action: &str, err: &HooksError) -> Report {
    Report {
        ok: false,
        json: json!({"ok": false, "action": action, "error": err.to_string()}),
    }
}
