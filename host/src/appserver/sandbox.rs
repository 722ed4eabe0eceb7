//! Whether the sandbox the `codex` child runs commands in can work on this host. The seed reported Windows
//! sandbox readiness (`windowsSandbox/readiness`); on Linux Codex sandboxes with bubblewrap, which needs
//! unprivileged user namespaces, so that is what is checked. Other platforms report `unsupported`.

use std::path::Path;

/// The sandbox readiness of this host (`runtimeCapabilities.sandboxReadiness`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxReadiness {
    /// `linux`, or the OS name elsewhere.
    pub platform: &'static str,
    /// `ready`, `restricted` (commands will fail to sandbox) or `unsupported` (not checked on this OS).
    pub status: &'static str,
    /// `bubblewrap` on Linux.
    pub mechanism: Option<&'static str>,
    /// A `bwrap` on `PATH`; without one Codex falls back to the copy it bundles.
    pub bubblewrap_on_path: Option<bool>,
    /// `enabled`, `disabled`, `restricted_by_apparmor` or `unknown`.
    pub user_namespaces: Option<&'static str>,
    /// Why the status is not `ready`.
    pub reason: Option<String>,
}

/// Checks this host (a few reads under `/proc/sys` and a `PATH` lookup; no process is started).
pub fn sandbox_readiness() -> SandboxReadiness {
    if !cfg!(target_os = "linux") {
        return SandboxReadiness {
            platform: std::env::consts::OS,
            status: "unsupported",
            mechanism: None,
            bubblewrap_on_path: None,
            user_namespaces: None,
            reason: Some("sandbox readiness is checked on Linux only".into()),
        };
    }
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let namespaces = user_namespaces(
        read("/proc/sys/kernel/unprivileged_userns_clone").as_deref(),
        read("/proc/sys/user/max_user_namespaces").as_deref(),
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref(),
    );
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| is_file(&dir.join("bwrap"))));
    let (status, reason) = match namespaces {
        "disabled" => (
            "restricted",
            Some(
                "unprivileged user namespaces are disabled; bubblewrap cannot sandbox commands"
                    .into(),
            ),
        ),
        "restricted_by_apparmor" => (
            "restricted",
            Some(
                "AppArmor restricts unprivileged user namespaces; bubblewrap may be refused".into(),
            ),
        ),
        _ => ("ready", None),
    };
    SandboxReadiness {
        platform: "linux",
        status,
        mechanism: Some("bubblewrap"),
        bubblewrap_on_path: Some(on_path),
        user_namespaces: Some(namespaces),
        reason,
    }
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}

/// The user-namespace verdict from the three kernel knobs that can forbid them (absent knobs allow).
fn user_namespaces(
    unprivileged_clone: Option<&str>,
    max_namespaces: Option<&str>,
    apparmor: Option<&str>,
) -> &'static str {
    if unprivileged_clone == Some("0") || max_namespaces == Some("0") {
        "disabled"
    } else if apparmor == Some("1") {
        "restricted_by_apparmor"
    } else if max_namespaces.is_some() {
        "enabled"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_knobs() {
        assert_eq!(user_namespaces(None, Some("63000"), None), "enabled");
        assert_eq!(user_namespaces(Some("0"), Some("63000"), None), "disabled");
        assert_eq!(user_namespaces(None, Some("0"), None), "disabled");
        assert_eq!(
            user_namespaces(Some("1"), Some("10"), Some("1")),
            "restricted_by_apparmor"
        );
        assert_eq!(user_namespaces(None, None, None), "unknown");
    }
}
