//! The default policy plugin.
//!
//! Rules, in order (the first that matches decides):
//!
//! 1. A `cwd` must be an absolute path without `..` components. A plugin has
//!    no filesystem, so it cannot resolve `..` through symlinks; rather than
//!    guess, it refuses such paths (the host passes canonical paths).
//! 2. A `cwd` must lie inside one of the allowed roots (compared component by
//!    component after removing `.` and repeated separators: `/work/a` does not
//!    contain `/work/ab`). Outside the roots the action is denied, not narrowed
//!    to read-only: a read-only agent could still read anything outside the
//!    roots, and the operator declared where work may happen.
//! 3. `danger-full-access` is denied unless the plugin config sets
//!    `allow_danger_full_access = true`.
//! 4. A write-capable sandbox is narrowed to `read-only` for reviews and for a
//!    `cwd` inside one of the configured `read_only_roots`.
//! 5. Everything else is allowed.
//!
//! Interactions: a command approval whose `cwd` is outside the allowed roots is
//! declined automatically; every other interaction is left to a person.
//!
//! Every verdict names its rule (WIT 0.2): `cwd_invalid`, `no_allowed_roots`,
//! `cwd_outside_roots`, `danger_full_access`, `read_only_review`,
//! `read_only_root`.

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../../wit/since_v0.2.0",
    world: "policy",
    // Decisions are compared in the native unit tests.
    additional_derives: [PartialEq],
});

use codex_control_plane::plugin::types::{SandboxMode, TurnSettings};
use exports::codex_control_plane::plugin::policy_plugin::{
    ActionKind, ActionRequest, Answer, AutoAnswer, Decision, Denial, Guest, Interaction, Narrowing,
};

/// A denial by `rule`.
fn deny(rule: &str, reason: String) -> Decision {
    Decision::Deny(Denial {
        rule: rule.to_string(),
        reason,
    })
}

/// A decline by `rule`.
fn decline(rule: &str) -> Option<AutoAnswer> {
    Some(AutoAnswer {
        answer: Answer::Decline,
        rule: rule.to_string(),
    })
}

/// The `[config]` table of this plugin's manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Whether `danger-full-access` may be used at all.
    pub allow_danger_full_access: bool,
    /// Roots where only the read-only sandbox is allowed.
    pub read_only_roots: Vec<String>,
}

/// Decides on one action given the plugin configuration.
pub fn decide(request: &ActionRequest, config: &PolicyConfig) -> Decision {
    let settings = &request.settings;
    if let Some(cwd) = &settings.cwd {
        let cwd_parts = match normalise(cwd) {
            Ok(parts) => parts,
            Err(reason) => return deny("cwd_invalid", format!("cwd {cwd:?} refused: {reason}")),
        };
        let roots: Vec<Vec<&str>> = request
            .context
            .allowed_roots
            .iter()
            .filter_map(|root| normalise(root).ok())
            .collect();
        if roots.is_empty() {
            return deny(
                "no_allowed_roots",
                "no allowed roots are configured".to_string(),
            );
        }
        if !roots.iter().any(|root| is_inside(&cwd_parts, root)) {
            return deny(
                "cwd_outside_roots",
                format!(
                    "cwd {cwd:?} is outside the allowed roots ({})",
                    request.context.allowed_roots.join(", ")
                ),
            );
        }
    }
    if settings.sandbox == Some(SandboxMode::DangerFullAccess) && !config.allow_danger_full_access {
        return deny(
            "danger_full_access",
            "sandbox danger-full-access is not allowed by the default policy".to_string(),
        );
    }
    let writes = matches!(
        settings.sandbox,
        Some(SandboxMode::WorkspaceWrite | SandboxMode::DangerFullAccess)
    );
    let rule = if request.kind == ActionKind::StartReview {
        "read_only_review"
    } else {
        "read_only_root"
    };
    if writes && (request.kind == ActionKind::StartReview || in_read_only_root(settings, config)) {
        return Decision::Narrow(Narrowing {
            rule: rule.to_string(),
            settings: TurnSettings {
                cwd: None,
                sandbox: Some(SandboxMode::ReadOnly),
                approval_policy: None,
                model: None,
                effort: None,
                collaboration_mode: None,
            },
        });
    }
    Decision::Allow
}

/// Decides whether to answer an interaction automatically.
pub fn answer(interaction: &Interaction) -> Option<AutoAnswer> {
    if interaction.kind != "command_approval" {
        return None;
    }
    let cwd = interaction.cwd.as_deref()?;
    let Ok(cwd_parts) = normalise(cwd) else {
        return decline("cwd_invalid");
    };
    let inside = interaction
        .context
        .allowed_roots
        .iter()
        .filter_map(|root| normalise(root).ok())
        .any(|root| is_inside(&cwd_parts, &root));
    if inside {
        None
    } else {
        decline("cwd_outside_roots")
    }
}

/// Parses the plugin configuration; an invalid one falls back to the strict
/// defaults rather than failing every call.
pub fn parse_config(json: &str) -> PolicyConfig {
    serde_json::from_str(json).unwrap_or_default()
}

/// Splits an absolute path into its components, dropping `.` and empty ones.
/// Refuses relative paths and `..` components (see the module docs).
fn normalise(path: &str) -> Result<Vec<&str>, &'static str> {
    if !path.starts_with('/') {
        return Err("not an absolute path");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("contains a `..` component"),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// Whether `path` equals `root` or lies below it.
fn is_inside(path: &[&str], root: &[&str]) -> bool {
    path.len() >= root.len() && path[..root.len()] == *root
}

/// Whether the settings' cwd lies in one of the configured read-only roots.
fn in_read_only_root(settings: &TurnSettings, config: &PolicyConfig) -> bool {
    let Some(Ok(cwd_parts)) = settings.cwd.as_deref().map(normalise) else {
        return false;
    };
    config
        .read_only_roots
        .iter()
        .filter_map(|root| normalise(root).ok())
        .any(|root| is_inside(&cwd_parts, &root))
}

/// The exported implementation.
struct DefaultPolicy;

/// The configuration, read once per instance: it cannot change while an instance lives, and
/// parsing it on every call would dominate the cost of a call on a reused instance.
static CONFIG: std::sync::OnceLock<PolicyConfig> = std::sync::OnceLock::new();

impl Guest for DefaultPolicy {
    fn check_action(request: ActionRequest) -> Decision {
        let config =
            CONFIG.get_or_init(|| parse_config(&codex_control_plane::plugin::host::get_config()));
        decide(&request, config)
    }

    fn on_interaction(interaction: Interaction) -> Option<AutoAnswer> {
        answer(&interaction)
    }
}

// Exports are only emitted for wasm: their names (`pkg:ns/iface@ver#func`) are not
// valid symbols in a native version script, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
export!(DefaultPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use codex_control_plane::plugin::types::ApprovalPolicy;
    use exports::codex_control_plane::plugin::policy_plugin::{InputSummary, PolicyContext};

    /// Builds a request with the given cwd and sandbox and roots `/work/a`, `/srv`.
    fn request(kind: ActionKind, cwd: Option<&str>, sandbox: SandboxMode) -> ActionRequest {
        ActionRequest {
            action_id: "a1".to_string(),
            kind,
            operation_id: None,
            thread_id: None,
            settings: TurnSettings {
                cwd: cwd.map(str::to_string),
                sandbox: Some(sandbox),
                approval_policy: Some(ApprovalPolicy::Never),
                model: None,
                effort: None,
                collaboration_mode: None,
            },
            input: InputSummary {
                text_bytes: 0,
                image_count: 0,
            },
            context: PolicyContext {
                allowed_roots: vec!["/work/a".to_string(), "/srv/".to_string()],
                default_sandbox: SandboxMode::ReadOnly,
                default_approval_policy: ApprovalPolicy::Never,
            },
        }
    }

    /// Runs `decide` with the default configuration.
    #[track_caller]
    fn check(kind: ActionKind, cwd: Option<&str>, sandbox: SandboxMode) -> Decision {
        decide(&request(kind, cwd, sandbox), &PolicyConfig::default())
    }

    #[test]
    fn cwd_inside_root_is_allowed() {
        // The root itself and anything below it are inside.
        let kind = ActionKind::StartTurn;
        assert_eq!(
            check(kind, Some("/work/a"), SandboxMode::WorkspaceWrite),
            Decision::Allow
        );
        assert_eq!(
            check(kind, Some("/work/a/x/./y//"), SandboxMode::ReadOnly),
            Decision::Allow
        );
        assert_eq!(
            check(kind, Some("/srv/p"), SandboxMode::ReadOnly),
            Decision::Allow
        );
    }

    #[test]
    fn cwd_outside_roots_is_denied() {
        // A sibling with a common string prefix is not inside.
        let kind = ActionKind::StartThread;
        assert!(matches!(
            check(kind, Some("/work/ab"), SandboxMode::ReadOnly),
            Decision::Deny(_)
        ));
        assert!(matches!(
            check(kind, Some("/etc"), SandboxMode::ReadOnly),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn dot_dot_and_relative_paths_are_denied() {
        // `..` cannot be resolved safely without a filesystem.
        let kind = ActionKind::StartTurn;
        let escape = check(kind, Some("/work/a/../../etc"), SandboxMode::ReadOnly);
        assert!(matches!(escape, Decision::Deny(d) if d.reason.contains("..")));
        let relative = check(kind, Some("work/a"), SandboxMode::ReadOnly);
        assert!(
            matches!(relative, Decision::Deny(d) if d.reason.contains("absolute") && d.rule == "cwd_invalid")
        );
    }

    #[test]
    fn danger_full_access_needs_config() {
        // Denied by default, allowed when the config says so.
        let request = request(
            ActionKind::StartTurn,
            Some("/work/a"),
            SandboxMode::DangerFullAccess,
        );
        assert!(matches!(
            decide(&request, &PolicyConfig::default()),
            Decision::Deny(_)
        ));
        let config = PolicyConfig {
            allow_danger_full_access: true,
            ..PolicyConfig::default()
        };
        assert_eq!(decide(&request, &config), Decision::Allow);
    }

    #[test]
    fn reviews_and_read_only_roots_are_narrowed() {
        // A write sandbox becomes read-only, other settings are kept.
        let review = check(
            ActionKind::StartReview,
            Some("/work/a"),
            SandboxMode::WorkspaceWrite,
        );
        assert!(
            matches!(review, Decision::Narrow(n) if n.settings.sandbox == Some(SandboxMode::ReadOnly) && n.settings.cwd.is_none() && n.rule == "read_only_review")
        );
        let config = PolicyConfig {
            read_only_roots: vec!["/work/a/vendor".to_string()],
            ..PolicyConfig::default()
        };
        let turn = request(
            ActionKind::StartTurn,
            Some("/work/a/vendor/x"),
            SandboxMode::WorkspaceWrite,
        );
        assert!(matches!(decide(&turn, &config), Decision::Narrow(_)));
        let read = request(
            ActionKind::StartTurn,
            Some("/work/a/vendor/x"),
            SandboxMode::ReadOnly,
        );
        assert_eq!(decide(&read, &config), Decision::Allow);
    }

    #[test]
    fn no_cwd_and_no_roots() {
        // Without a cwd only the sandbox rules apply; with no roots every cwd is refused.
        assert_eq!(
            check(ActionKind::InterruptTurn, None, SandboxMode::ReadOnly),
            Decision::Allow
        );
        let mut request = request(
            ActionKind::StartThread,
            Some("/work/a"),
            SandboxMode::ReadOnly,
        );
        request.context.allowed_roots.clear();
        assert!(matches!(
            decide(&request, &PolicyConfig::default()),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn command_approvals_outside_roots_are_declined() {
        // Inside the roots a person decides; outside the policy declines.
        let context = request(ActionKind::StartTurn, None, SandboxMode::ReadOnly).context;
        let mut interaction = Interaction {
            interaction_id: "i1".to_string(),
            kind: "command_approval".to_string(),
            thread_id: "t1".to_string(),
            cwd: Some("/work/a/src".to_string()),
            command: Some("ls".to_string()),
            payload: "{}".to_string(),
            context,
        };
        assert_eq!(answer(&interaction), None);
        interaction.cwd = Some("/tmp".to_string());
        assert_eq!(answer(&interaction), decline("cwd_outside_roots"));
        interaction.kind = "user_input".to_string();
        assert_eq!(answer(&interaction), None);
    }

    #[test]
    fn config_parsing_falls_back_to_defaults() {
        // Unknown or malformed configuration is strict, not permissive.
        assert!(!parse_config("not json").allow_danger_full_access);
        assert!(parse_config(r#"{"allow_danger_full_access":true}"#).allow_danger_full_access);
    }
}
