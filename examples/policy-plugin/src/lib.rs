//! An example site policy, written against `wit/since_v0.1.0` of codex-control-plane.
//!
//! - A turn whose model is not in `allowed_models` is denied.
//! - A turn carrying more than `max_images` images is denied.
//! - A turn asking for approval policy `never` is narrowed to `on-request`.
//! - A command approval for exactly `git status` is accepted automatically.
//!
//! The configuration is the `[config]` table of `plugin.toml`, read with `host::get-config` as
//! JSON. To keep the component small this example reads it with a tiny hand-written scanner; a
//! real plugin would use `serde_json`.

wit_bindgen::generate!({
    path: "../../wit/since_v0.1.0",
    world: "policy",
});

use codex_control_plane::plugin::host;
use codex_control_plane::plugin::types::{ApprovalPolicy, LogLevel, TurnSettings};
use exports::codex_control_plane::plugin::policy_plugin::{
    ActionKind, ActionRequest, Answer, Decision, Guest, Interaction,
};

struct SitePolicy;

impl Guest for SitePolicy {
    fn check_action(request: ActionRequest) -> Decision {
        if request.kind != ActionKind::StartTurn && request.kind != ActionKind::StartThread {
            return Decision::Allow;
        }
        let config = host::get_config();
        if let Some(model) = &request.settings.model {
            let allowed = string_list(&config, "allowed_models");
            if !allowed.is_empty() && !allowed.iter().any(|m| m == model) {
                return Decision::Deny(format!("model {model} is not approved on this site"));
            }
        }
        let max_images = number(&config, "max_images").unwrap_or(u64::MAX);
        if u64::from(request.input.image_count) > max_images {
            return Decision::Deny(format!("at most {max_images} images per turn"));
        }
        if request.settings.approval_policy == Some(ApprovalPolicy::Never) {
            host::log(
                LogLevel::Info,
                "narrowing approval policy never -> on-request",
            );
            return Decision::Narrow(TurnSettings {
                cwd: None,
                sandbox: None,
                approval_policy: Some(ApprovalPolicy::OnRequest),
                model: None,
                effort: None,
                collaboration_mode: None,
            });
        }
        Decision::Allow
    }

    fn on_interaction(interaction: Interaction) -> Option<Answer> {
        let is_git_status = interaction.kind == "command_approval"
            && interaction.command.as_deref().map(str::trim) == Some("git status");
        is_git_status.then_some(Answer::Accept)
    }
}

/// The strings of `"key":["a","b"]` in a flat JSON object (enough for this example's config).
fn string_list(json: &str, key: &str) -> Vec<String> {
    let Some(start) = json.find(&format!("\"{key}\":[")) else {
        return Vec::new();
    };
    let rest = &json[start + key.len() + 4..];
    let Some(end) = rest.find(']') else {
        return Vec::new();
    };
    rest[..end]
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The number of `"key":123` in a flat JSON object.
fn number(json: &str, key: &str) -> Option<u64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

// Exports are only emitted for wasm: their names are not valid native symbols.
#[cfg(target_arch = "wasm32")]
export!(SitePolicy);
