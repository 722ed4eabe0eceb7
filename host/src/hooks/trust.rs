//! Whether Codex will run our hooks, and recording that it may: through the app-server, which reads the
//! hooks the way Codex does (`hooks/list`) and writes its own config (`config/batchWrite`).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{HooksError, MARKER};
use crate::appserver::protocol::{ConfigBatchWrite, ConfigEdit, HookInfo, HooksList};
use crate::appserver::AppServer;

/// Our hooks as Codex sees them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustReport {
    /// One line per hook of ours: event, key, trust status.
    pub hooks: Vec<Value>,
    /// How many Codex will run.
    pub trusted: usize,
    /// How many it will not (untrusted or modified).
    pub untrusted: usize,
    /// Hook files Codex could not read.
    pub warnings: Vec<String>,
    /// What to do when some are not trusted.
    pub instructions: Option<String>,
}

fn ours(hook: &HookInfo) -> bool {
    hook.command.as_deref().is_some_and(|c| c.contains(MARKER))
}

fn runs(hook: &HookInfo) -> bool {
    matches!(hook.trust_status.as_str(), "trusted" | "managed")
}

async fn list(
    appserver: &AppServer,
    cwd: &Path,
) -> Result<(Vec<HookInfo>, Vec<String>), HooksError> {
    let reply = appserver
        .send(&HooksList {
            cwds: vec![cwd.display().to_string()],
        })
        .await?;
    let mut hooks = Vec::new();
    let mut warnings = Vec::new();
    for entry in reply.data {
        hooks.extend(entry.hooks.into_iter().filter(ours));
        warnings.extend(entry.warnings);
    }
    Ok((hooks, warnings))
}

fn report(hooks: &[HookInfo], warnings: Vec<String>) -> TrustReport {
    let trusted = hooks.iter().filter(|h| runs(h)).count();
    let untrusted = hooks.len() - trusted;
    TrustReport {
        hooks: hooks
            .iter()
            .map(|h| json!({"event": h.event_name, "key": h.key, "trustStatus": h.trust_status}))
            .collect(),
        trusted,
        untrusted,
        warnings,
        instructions: (untrusted > 0 || hooks.is_empty()).then(|| {
            if hooks.is_empty() {
                "Codex lists none of our hooks: run `codex-control-plane-mcp hooks install`.".to_string()
            } else {
                "Codex does not run untrusted or modified hooks: run `codex-control-plane-mcp hooks install` \
                 again (it records their current hashes as trusted), or trust them in Codex's hooks view."
                    .to_string()
            }
        }),
    }
}

/// Our hooks and their trust, as the app-server reports them for `cwd`.
pub async fn trust_report(appserver: &AppServer, cwd: &Path) -> Result<TrustReport, HooksError> {
    let (hooks, warnings) = list(appserver, cwd).await?;
    Ok(report(&hooks, warnings))
}

/// Records the current hash of each of our hooks that Codex would not run as trusted (in the user's
/// `config.toml`, `[hooks.state."<key>"] trusted_hash`), then reports the result as Codex now sees it.
pub async fn trust_our_hooks(appserver: &AppServer, cwd: &Path) -> Result<TrustReport, HooksError> {
    let (hooks, _) = list(appserver, cwd).await?;
    let mut state = Map::new();
    for hook in hooks.iter().filter(|h| !runs(h)) {
        state.insert(
            hook.key.clone(),
            json!({"trusted_hash": hook.current_hash, "enabled": true}),
        );
    }
    if !state.is_empty() {
        appserver
            .send(&ConfigBatchWrite {
                edits: vec![ConfigEdit {
                    key_path: "hooks.state".into(),
                    merge_strategy: "upsert".into(),
                    value: Value::Object(state),
                }],
            })
            .await?;
    }
    trust_report(appserver, cwd).await
}
