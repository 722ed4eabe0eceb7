//! Readiness checks the diagnostics tools share (`codex_collect_diagnostics`, `codex_preflight_project_run`):
//! the codex binary, Codex's home and authentication, the allowed roots, the state database and who owns
//! app-server. Storage, files and the lock only: nothing here starts app-server or a worker.

use std::path::Path;

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::{agent_safe_text, agent_safe_value};

/// One check, in the seed's shape `{name, status, message, details{category}, suggestedAction}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was checked (`codex_binary`, `codex_auth`, ...).
    pub name: &'static str,
    /// `ok`, `warning`, `error` or `skipped`.
    pub status: &'static str,
    /// What was found, redacted.
    pub message: String,
    /// The analyzer category this points at, when one does (`codex_auth_required`, `app_server_exited`, ...).
    pub category: Option<&'static str>,
    /// The repair or next step that addresses it.
    pub suggested_action: Option<&'static str>,
    /// Extra machine-readable facts.
    pub details: Value,
}

impl Check {
    /// A passing check.
    pub fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, "ok", message)
    }

    /// A check with `status`.
    pub fn new(name: &'static str, status: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status,
            message: message.into(),
            category: None,
            suggested_action: None,
            details: json!({}),
        }
    }

    /// With the analyzer category it points at.
    pub fn category(mut self, category: &'static str) -> Check {
        self.category = Some(category);
        self
    }

    /// With the step that addresses it.
    pub fn suggest(mut self, action: &'static str) -> Check {
        self.suggested_action = Some(action);
        self
    }

    /// With one more detail.
    pub fn detail(mut self, key: &str, value: Value) -> Check {
        self.details[key] = value;
        self
    }

    /// The wire shape (message and details redacted: no secrets, no absolute paths).
    pub fn to_json(&self) -> Value {
        let mut details = self.details.clone();
        details["category"] = json!(self.category);
        json!({
            "name": self.name,
            "status": self.status,
            "message": agent_safe_text(&self.message),
            "details": agent_safe_value(&details),
            "suggestedAction": self.suggested_action,
        })
    }
}

/// `error` when any check failed, `warning` when any warned, else `ok`.
pub fn worst(checks: &[Check]) -> &'static str {
    if checks.iter().any(|c| c.status == "error") {
        "error"
    } else if checks.iter().any(|c| c.status == "warning") {
        "warning"
    } else {
        "ok"
    }
}

/// The codex binary the app-server would run.
pub fn codex_binary(app: &App) -> Check {
    let status = app.appserver.status();
    match (&status.codex_binary_path, status.codex_binary_exists) {
        (Some(path), true) => Check::ok(
            "codex_binary",
            format!("codex binary at {}", path.display()),
        ),
        _ => Check::new(
            "codex_binary",
            "error",
            "codex binary not found; set CODEX_BINARY_PATH or put codex on PATH",
        )
        .category("codex_binary_missing")
        .suggest("validate_paths_and_config"),
    }
}

/// Codex's home directory exists.
pub fn codex_home(app: &App) -> Check {
    let home = &app.config.codex_home;
    if home.is_dir() {
        Check::ok("codex_home", format!("codex home {}", home.display()))
    } else {
        Check::new(
            "codex_home",
            "warning",
            format!(
                "codex home {} is not a directory; Codex creates it on first start",
                home.display()
            ),
        )
        .category("project_path")
        .suggest("validate_paths_and_config")
    }
}

/// Whether Codex can authenticate: `auth.json`, an API key in the environment, or a configured model provider
/// that needs no OpenAI login (its own `env_key`, or `requires_openai_auth = false`).
pub fn codex_auth(app: &App) -> Check {
    let home = &app.config.codex_home;
    if home.join("auth.json").is_file() {
        return Check::ok("codex_auth", "auth.json present");
    }
    for key in ["OPENAI_API_KEY", "CODEX_API_KEY"] {
        if std::env::var_os(key).is_some_and(|v| !v.is_empty()) {
            return Check::ok("codex_auth", format!("{key} is set"));
        }
    }
    if let Some(provider) = provider_without_openai_auth(&home.join("config.toml")) {
        return Check::ok(
            "codex_auth",
            format!("model provider {provider} needs no OpenAI login"),
        );
    }
    Check::new(
        "codex_auth",
        "warning",
        "no auth.json, OPENAI_API_KEY or CODEX_API_KEY, and the configured model provider needs an OpenAI login",
    )
    .category("codex_auth_required")
    .suggest("run `codex login` or set OPENAI_API_KEY")
}

/// The configured model provider, when `config.toml` names one that brings its own credentials.
fn provider_without_openai_auth(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config).ok()?;
    let parsed: toml::Table = text.parse().ok()?;
    let name = parsed.get("model_provider")?.as_str()?;
    let provider = parsed.get("model_providers")?.get(name)?;
    let own_key = provider.get("env_key").is_some();
    let no_login = provider
        .get("requires_openai_auth")
        .and_then(toml::Value::as_bool)
        == Some(false);
    (own_key || no_login).then(|| name.to_string())
}

/// Every allowed root is a directory.
pub fn allowed_roots(app: &App) -> Check {
    let missing: Vec<String> = app
        .config
        .allowed_roots
        .iter()
        .filter(|root| !root.is_dir())
        .map(|root| root.display().to_string())
        .collect();
    if missing.is_empty() {
        Check::ok(
            "allowed_roots",
            format!("{} allowed root(s)", app.config.allowed_roots.len()),
        )
    } else {
        Check::new(
            "allowed_roots",
            "warning",
            format!(
                "allowed root(s) that are not directories: {}",
                missing.join(", ")
            ),
        )
        .category("project_path")
        .suggest("validate_paths_and_config")
    }
}

/// The state database answers a read and can take its write lock.
pub async fn state_db(app: &App) -> Check {
    match app.engine.store.health_counts().await {
        Ok(counts) => match app.engine.store.probe_writable().await {
            Ok(()) => Check::ok(
                "mcp_state_db",
                format!("schema version {}, writable", counts.schema_version),
            ),
            Err(error) => Check::new(
                "mcp_state_db",
                "error",
                format!("cannot write the state database: {error}"),
            )
            .category("mcp_state_db")
            .suggest("validate_paths_and_config")
            .detail("readable", json!(true)),
        },
        Err(error) => Check::new(
            "mcp_state_db",
            "error",
            format!("cannot read the state database: {error}"),
        )
        .category("mcp_state_db")
        .suggest("validate_paths_and_config"),
    }
}

/// Who owns app-server and whether it runs: this process (inline) or the background worker. Not running is
/// no failure: app-server starts on the first call that needs it.
pub fn app_server(app: &App) -> Check {
    if let Some(link) = app.delegates_to_worker() {
        let presence = link.presence();
        return if presence.is_running() {
            Check::ok(
                "app_server_running",
                format!(
                    "owned by the background worker (pid {})",
                    presence.pid.unwrap_or(0)
                ),
            )
            .detail("ownedBy", json!("background_worker"))
            .detail("workerState", json!(presence.state))
        } else {
            Check::ok(
                "app_server_running",
                "no background worker runs; the next write starts one, and it starts app-server",
            )
            .detail("ownedBy", json!("background_worker"))
            .detail("workerState", json!(presence.state))
        };
    }
    let status = app.appserver.status();
    let check = if status.running {
        Check::ok(
            "app_server_running",
            format!(
                "running, generation {}",
                status.process_generation.unwrap_or(0)
            ),
        )
    } else {
        Check::ok(
            "app_server_running",
            "not started; starts on the first call that needs it",
        )
    };
    check
        .detail("ownedBy", json!("this_process"))
        .detail("running", json!(status.running))
        .detail("processGeneration", json!(status.process_generation))
        .detail("lastExit", status.last_exit.clone().unwrap_or(Value::Null))
}
