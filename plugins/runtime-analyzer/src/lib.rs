//! The default runtime analyzer: what went wrong with app-server, the codex binary, Codex's
//! authentication, the Linux sandbox, the model or config, and this server's state database.
//!
//! Rules (each reads the host's snapshot, `analyzer-snapshot/v1`):
//!
//! - A failing readiness check with a category of this theme (`codex_binary_missing`,
//!   `mcp_state_db`, `codex_auth_required`, `project_path`) is a finding of that category.
//! - Work that ended `unknown_after_app_server_exit`, or a log line saying app-server exited, is
//!   `app_server_exited`.
//! - Errors (an operation's `lastError` and its failed turn's `turnError`) and log lines are matched for a closed stdout (`app_server_stdout_closed`), timeouts
//!   (`app_server_timeout`, `client_timeout`), sandbox denials (`linux_sandbox_spawn_denied`),
//!   model or config errors (`model_or_config_error`), methods the binary does not know
//!   (`old_codex_binary`), paths differing only by case (`path_casing_mismatch`) and
//!   authentication failures (`codex_auth_required`).
//!
//! Texts are redacted by the host before they get here; findings name rows by id only.

use analyzer_guest::{error_text, mentions_any, str_of, Hit, Level, Snapshot};
use serde_json::Value;

wit_bindgen::generate!({
    path: "../../wit/since_v0.2.0",
    world: "analyzer",
});

use codex_control_plane::plugin::types::{Finding, Severity};
use exports::codex_control_plane::plugin::analyzer_plugin::Guest;

/// One text rule: a category, what it looks for, and what it recommends.
struct TextRule {
    category: &'static str,
    level: Level,
    title: &'static str,
    needles: &'static [&'static str],
    actions: &'static [&'static str],
}

/// Rules over error texts and log lines, first match per text wins.
const TEXT_RULES: &[TextRule] = &[
    TextRule {
        category: "app_server_stdout_closed",
        level: Level::Error,
        title: "app-server closed its output",
        needles: &[
            "stdout closed",
            "broken pipe",
            "connection closed",
            "eof from app-server",
            "channel closed",
        ],
        actions: &["restart_app_server_idle", "mark_orphaned_after_exit"],
    },
    TextRule {
        category: "codex_auth_required",
        level: Level::Error,
        title: "Codex is not signed in",
        needles: &[
            "401 unauthorized",
            "status 401",
            "unauthorized",
            "not logged in",
            "codex login",
            "authentication required",
            "invalid api key",
        ],
        actions: &["validate_paths_and_config"],
    },
    TextRule {
        category: "linux_sandbox_spawn_denied",
        level: Level::Error,
        title: "The Linux sandbox refused to start a command",
        needles: &[
            "landlock",
            "seccomp",
            "bwrap",
            "sandbox denied",
            "sandbox error",
            "operation not permitted",
        ],
        actions: &[
            "validate_paths_and_config",
            "retry_workflow_with_runtime_policy",
        ],
    },
    TextRule {
        category: "old_codex_binary",
        level: Level::Error,
        title: "The codex binary does not know a method this server uses",
        needles: &[
            "method not found",
            "-32601",
            "unknown method",
            "unknown variant",
        ],
        actions: &["validate_paths_and_config"],
    },
    TextRule {
        category: "model_or_config_error",
        level: Level::Error,
        title: "The model or Codex's configuration was refused",
        needles: &[
            "model_not_found",
            "unknown model",
            "unsupported model",
            "does not exist or you do not have access",
            "config.toml",
            "invalid config",
            "error loading config",
        ],
        actions: &["validate_paths_and_config"],
    },
    TextRule {
        category: "path_casing_mismatch",
        level: Level::Warning,
        title: "A path differs from the project's only by case",
        needles: &["casing mismatch", "differs only in case", "case mismatch"],
        actions: &["validate_paths_and_config"],
    },
];

/// Checks whose category this analyzer reports, with the title and the level they get.
const CHECKS: &[(&str, &str, Level, &[&str])] = &[
    (
        "codex_binary_missing",
        "The codex binary is missing",
        Level::Error,
        &["validate_paths_and_config"],
    ),
    (
        "mcp_state_db",
        "The state database cannot be used",
        Level::Critical,
        &["validate_paths_and_config"],
    ),
    (
        "codex_auth_required",
        "Codex is not signed in",
        Level::Error,
        &["validate_paths_and_config"],
    ),
    (
        "project_path",
        "A configured path is missing",
        Level::Warning,
        &["validate_paths_and_config"],
    ),
];

/// The runtime findings of a snapshot.
pub fn analyze(snapshot: &Snapshot) -> Vec<Hit> {
    let mut hits = Vec::new();
    check_hits(snapshot, &mut hits);
    exit_hits(snapshot, &mut hits);
    timeout_hits(snapshot, &mut hits);
    text_hits(snapshot, &mut hits);
    hits
}

/// Failing readiness checks of this theme.
fn check_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    for check in snapshot.failing_checks() {
        let category = check["details"]["category"].as_str().unwrap_or("");
        let Some((category, title, level, actions)) =
            CHECKS.iter().find(|(c, ..)| *c == category).copied()
        else {
            continue;
        };
        // The auth check only warns (a provider may need no login); a failure seen in the
        // texts raises it below.
        let level = if str_of(check, "status") == "warning" {
            level.min(Level::Warning)
        } else {
            level
        };
        hits.push(
            Hit::new(category, level, title, 0.9)
                .message(str_of(check, "message"))
                .evidence("check", str_of(check, "name"))
                .actions(actions),
        );
    }
}

/// Work lost when app-server exited.
fn exit_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    let lost = |row: &&Value| str_of(row, "status") == "unknown_after_app_server_exit";
    for op in snapshot.list("operations").iter().filter(lost) {
        let id = str_of(op, "operationId");
        let mut hit = Hit::new(
            "app_server_exited",
            Level::Error,
            "app-server exited while the operation ran",
            0.95,
        )
        .subject(id)
        .message(format!(
            "operation {id} was lost when app-server exited mid-turn"
        ))
        .evidence("operation", id)
        .actions(&["mark_orphaned_after_exit", "restart_app_server_idle"]);
        if let Some(turn) = op["turnId"].as_str() {
            hit = hit.evidence("turn", turn);
        }
        hits.push(hit);
    }
    if hits.iter().any(|h| h.category == "app_server_exited") {
        return;
    }
    for turn in snapshot.list("turns").iter().filter(lost) {
        let id = str_of(turn, "turnId");
        hits.push(
            Hit::new(
                "app_server_exited",
                Level::Error,
                "app-server exited during the turn",
                0.9,
            )
            .subject(id)
            .evidence("turn", id)
            .actions(&["mark_orphaned_after_exit", "restart_app_server_idle"]),
        );
    }
    let exited = snapshot
        .log_messages()
        .iter()
        .any(|m| m.contains("app-server exited"));
    if exited && !hits.iter().any(|h| h.category == "app_server_exited") {
        hits.push(
            Hit::new(
                "app_server_exited",
                Level::Warning,
                "app-server exited",
                0.6,
            )
            .message("the server log records an app-server exit; no work in scope was lost to it")
            .evidence("log", "app-server exited")
            .actions(&["restart_app_server_idle"]),
        );
    }
}

/// Operations that failed on a timeout: app-server's (it did not answer) or the client's.
fn timeout_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    for op in snapshot.list("operations") {
        let code = str_of(&op["lastError"], "code");
        if !code.contains("TIMEOUT") {
            continue;
        }
        let id = str_of(op, "operationId");
        let client = error_text(&op["lastError"]).contains("client");
        let category = if client {
            "client_timeout"
        } else {
            "app_server_timeout"
        };
        hits.push(
            Hit::new(
                category,
                Level::Error,
                "A request to app-server timed out",
                0.85,
            )
            .subject(id)
            .message(format!("operation {id} failed with {code}"))
            .evidence("operation", id)
            .actions(&["restart_app_server_idle", "recover_stale_operations"]),
        );
    }
}

/// Error texts of the rows and log lines, matched against [`TEXT_RULES`].
fn text_hits(snapshot: &Snapshot, hits: &mut Vec<Hit>) {
    let mut texts: Vec<(String, &str, String)> = Vec::new();
    for op in snapshot.list("operations") {
        for error in [&op["lastError"], &op["turnError"]] {
            texts.push((
                error_text(error),
                "operation",
                str_of(op, "operationId").to_string(),
            ));
        }
    }
    for wf in snapshot.list("workflows") {
        texts.push((
            error_text(&wf["error"]),
            "workflow",
            str_of(wf, "workflowId").to_string(),
        ));
    }
    for intent in snapshot.list("intents") {
        texts.push((
            error_text(&intent["error"]),
            "operation",
            str_of(intent, "operationId").to_string(),
        ));
    }
    for line in snapshot.log_messages() {
        texts.push((line, "log", String::new()));
    }
    let problem = snapshot.problem_text();
    if !problem.is_empty() {
        texts.push((problem, "problem_text", String::new()));
    }
    for (text, kind, id) in texts.iter().filter(|(t, ..)| !t.is_empty()) {
        let Some(rule) = TEXT_RULES.iter().find(|r| mentions_any(text, r.needles)) else {
            continue;
        };
        if hits
            .iter()
            .any(|h| h.category == rule.category && h.subject == *id)
        {
            continue;
        }
        // The caller's words alone are a lead, not proof.
        let confidence = if *kind == "problem_text" { 0.4 } else { 0.75 };
        let evidence_id = if id.is_empty() {
            rule.category
        } else {
            id.as_str()
        };
        hits.push(
            Hit::new(rule.category, rule.level, rule.title, confidence)
                .subject(id)
                .evidence(kind, evidence_id)
                .actions(rule.actions),
        );
    }
}

/// The WIT finding of a hit.
fn to_finding(hit: Hit) -> Finding {
    Finding {
        code: hit.category.to_string(),
        severity: match hit.level {
            Level::Info => Severity::Info,
            Level::Warning => Severity::Warning,
            Level::Error => Severity::Error,
            Level::Critical => Severity::Critical,
        },
        subject: hit.subject.clone(),
        message: hit.message.clone(),
        details: Some(hit.details_json()),
    }
}

/// The exported implementation.
struct RuntimeAnalyzer;

impl Guest for RuntimeAnalyzer {
    fn analyze(snapshot: String) -> Vec<Finding> {
        analyze(&Snapshot::parse(&snapshot))
            .into_iter()
            .map(to_finding)
            .collect()
    }
}

// Exports are only emitted for wasm: native builds exist for the unit tests.
#[cfg(target_arch = "wasm32")]
export!(RuntimeAnalyzer);

#[cfg(test)]
mod tests;
