//! An example site policy for codex-control-plane, written on the guest SDK (WIT 0.2). Its rules,
//! configured in the `[config]` table of `plugin.toml`, each named in the verdicts it gives (the host
//! shows the rule to the client and keeps it in its audit):
//!
//! - `denied_models`: a turn or thread using a model in `denied_models` is denied;
//! - `full_access_root`: sandbox `danger-full-access` is denied unless the work's cwd is inside
//!   `full_access_root`;
//! - `narrow_never`: approval policy `never` is narrowed to `on-request`, so codex still asks before
//!   risky commands;
//! - `read_only_commands`: a command approval for a command in `read_only_commands` (exact match,
//!   also as the script of the shell line app-server shows, e.g. `/bin/bash -lc ls` for `ls`) is
//!   accepted;
//! - `rm_rf`: a command approval for `rm -rf` (any spelling of recursive + force) is declined.

use codex_control_plane_plugin_sdk::export_policy;
use codex_control_plane_plugin_sdk::policy::{
    unchanged, ActionRequest, Answer, ApprovalPolicy, AutoAnswer, Decision, Interaction, Policy,
    SandboxMode, TurnSettings,
};
use serde::Deserialize;

/// The policy is its configuration, read from `[config]` for every call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePolicy {
    /// Models no turn may use.
    pub denied_models: Vec<String>,
    /// The only directory tree in which `danger-full-access` is allowed.
    pub full_access_root: String,
    /// Read-only commands approved without asking.
    pub read_only_commands: Vec<String>,
}

impl Policy for SitePolicy {
    fn check_action(&self, request: &ActionRequest) -> Decision {
        let settings = &request.settings;
        if let Some(model) = settings
            .model
            .as_ref()
            .filter(|m| self.denied_models.contains(m))
        {
            return Decision::deny("denied_models", format!("model {model} is denied on this site"));
        }
        let in_root = settings
            .cwd
            .as_deref()
            .is_some_and(|cwd| inside(cwd, &self.full_access_root));
        if settings.sandbox == Some(SandboxMode::DangerFullAccess) && !in_root {
            let root = &self.full_access_root;
            return Decision::deny(
                "full_access_root",
                format!("danger-full-access is allowed only inside {root}"),
            );
        }
        if settings.approval_policy == Some(ApprovalPolicy::Never) {
            let approval_policy = Some(ApprovalPolicy::OnRequest);
            return Decision::narrow(
                "narrow_never",
                TurnSettings {
                    approval_policy,
                    ..unchanged()
                },
            );
        }
        Decision::Allow
    }

    fn on_interaction(&self, interaction: &Interaction) -> Option<AutoAnswer> {
        if interaction.kind != "command_approval" {
            return None;
        }
        let command = interaction.command.as_deref()?.trim();
        if is_rm_rf(command) {
            return Some(Answer::Decline.by_rule("rm_rf"));
        }
        let script = shell_script(command);
        self.read_only_commands
            .iter()
            .any(|c| c == command || c == script)
            .then(|| Answer::Accept.by_rule("read_only_commands"))
    }
}

/// Whether `path` is `root` or below it, compared lexically; `..` is refused rather than resolved.
pub fn inside(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    let below = path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'));
    below && !path.split('/').any(|part| part == "..")
}

/// The script of a shell command line as app-server shows an `exec_command` approval (`/bin/bash -lc ls`,
/// `sh -c 'git status'`): what follows `-c` / `-lc`, without its quotes; any other line as it is. The script
/// is compared whole, so `ls; rm x` never matches `ls`.
pub fn shell_script(command: &str) -> &str {
    let mut parts = command.splitn(3, ' ');
    let (Some(shell), Some(flag), Some(script)) = (parts.next(), parts.next(), parts.next()) else {
        return command;
    };
    let name = shell.rsplit('/').next().unwrap_or(shell);
    if !["bash", "sh", "zsh"].contains(&name) || !["-c", "-lc"].contains(&flag) {
        return command;
    }
    let script = script.trim();
    for quote in ['\'', '"'] {
        if let Some(inner) = script
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    script
}

/// Whether a command line runs `rm` with both recursive and force flags, in any spelling
/// (`-rf`, `-fr`, `-r -f`, `--recursive --force`), also inside `sh -c '...'` or after `;`/`&&`.
pub fn is_rm_rf(command: &str) -> bool {
    let words = command.split(|c: char| c.is_whitespace() || ";&|'\"".contains(c));
    let mut flags = None::<String>;
    for word in words.filter(|w| !w.is_empty()) {
        match (&mut flags, word) {
            (_, rm) if rm == "rm" || rm.ends_with("/rm") => flags = Some(String::new()),
            (Some(seen), "--recursive") => seen.push('r'),
            (Some(seen), "--force") => seen.push('f'),
            (Some(seen), flag) if flag.starts_with('-') && !flag.starts_with("--") => {
                seen.push_str(flag)
            }
            (Some(seen), _) if seen.contains(['r', 'R']) && seen.contains('f') => return true,
            _ => {}
        }
    }
    flags.is_some_and(|seen| seen.contains(['r', 'R']) && seen.contains('f'))
}

export_policy!(SitePolicy);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_compare_by_their_script() {
        assert_eq!(shell_script("/bin/bash -lc ls"), "ls");
        assert_eq!(shell_script("sh -c 'git status'"), "git status");
        assert_eq!(shell_script("/usr/bin/zsh -lc \"git log --oneline\""), "git log --oneline");
        assert_eq!(shell_script("/bin/bash -lc 'ls; rm x'"), "ls; rm x");
        assert_eq!(shell_script("python -c print"), "python -c print");
        assert_eq!(shell_script("ls"), "ls");
    }

    #[test]
    fn rm_rf_in_every_spelling() {
        for bad in [
            "rm -rf /",
            "rm -fr x",
            "rm -r -f x",
            "sudo /bin/rm -Rf x",
            "ls; rm --recursive --force x",
            "bash -lc 'rm -rf build'",
        ] {
            assert!(is_rm_rf(bad), "{bad}");
        }
        for fine in [
            "rm x",
            "rm -r x",
            "rm -f x",
            "git rm -r --cached x",
            "rm -r --one-file-system x",
            "echo rm",
            "grep -rf x",
        ] {
            assert!(!is_rm_rf(fine), "{fine}");
        }
    }

    /// The policy as `plugin.toml`'s `[config]` would build it, without a host.
    fn site() -> SitePolicy {
        SitePolicy {
            denied_models: vec!["gpt-4o".to_string()],
            full_access_root: "/srv/sandbox".to_string(),
            read_only_commands: vec!["git status".to_string()],
        }
    }

    #[test]
    fn the_rules_run_natively() {
        // The trait methods are plain Rust: no host call happens until the SDK's export calls them.
        let answer = |command: &str| {
            site().on_interaction(&Interaction {
                interaction_id: "i".to_string(),
                kind: "command_approval".to_string(),
                thread_id: "t".to_string(),
                cwd: None,
                command: Some(command.to_string()),
                payload: "{}".to_string(),
                context: codex_control_plane_plugin_sdk::policy::PolicyContext {
                    allowed_roots: Vec::new(),
                    default_sandbox: SandboxMode::ReadOnly,
                    default_approval_policy: ApprovalPolicy::OnRequest,
                },
            })
        };
        assert_eq!(
            answer("git status"),
            Some(Answer::Accept.by_rule("read_only_commands"))
        );
        assert_eq!(answer("rm -rf /"), Some(Answer::Decline.by_rule("rm_rf")));
        assert_eq!(answer("git push"), None);
    }

    #[test]
    fn inside_is_lexical() {
        assert!(inside("/srv/sandbox", "/srv/sandbox/"));
        assert!(inside("/srv/sandbox/a", "/srv/sandbox"));
        assert!(!inside("/srv/sandboxed", "/srv/sandbox"));
        assert!(!inside("/srv/sandbox/../etc", "/srv/sandbox"));
    }
}
