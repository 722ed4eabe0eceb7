//! Codex hooks: the installer that puts our history recorder into Codex's `hooks.json`
//! (`hooks install|uninstall|status|doctor`), and the recorder itself (`hooks record`), which Codex runs on
//! each hook event of a session it runs anywhere (a terminal, the desktop app), so chats started outside this
//! server reach its history and search.
//!
//! Codex runs a hook only when it is trusted: `hooks/list` reports each one's `trustStatus`, and trust is the
//! hook's current hash recorded under `[hooks.state."<key>"] trusted_hash` in the user's `config.toml`. The
//! installer asks the app-server for the keys and hashes of our hooks and records them through
//! `config/batchWrite`, so Codex itself writes its config; a hook the user edits afterwards becomes `modified`
//! and stops running until trusted again (`hooks install` does that).
//!
//! **Invariant:** the installer never removes or rewrites a hook that is not ours (ours carry
//! [`MARKER`] in their command), and it backs `hooks.json` up before changing it.

mod commands;
mod file;
mod record;
mod trust;

pub use commands::{install, status, uninstall, Report};
pub use file::{
    file_status, hook_command, install_file, uninstall_file, FileChange, HookFileStatus,
};
pub use record::{record, RecordOutcome};
pub use trust::{trust_our_hooks, trust_report, TrustReport};

use std::path::{Path, PathBuf};

/// The part of our hook command that identifies a hook as ours.
pub const MARKER: &str = "hooks record --hook-config";

/// The events we record, with the matcher Codex expects for each (`None`: every occurrence).
pub const EVENTS: [(&str, Option<&str>); 5] = [
    ("UserPromptSubmit", None),
    ("Stop", None),
    ("SessionStart", Some("startup|resume|clear|compact")),
    ("PreCompact", Some("manual|auto")),
    ("PostCompact", Some("manual|auto")),
];

/// Longest text a recorded message keeps, by default.
pub const DEFAULT_MAX_TEXT_CHARS: usize = 20_000;

/// Why a hooks command failed.
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `hooks.json` is not the JSON object Codex reads.
    #[error("{path} is not a hooks file Codex can read: {message}")]
    BadHooksFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The app-server could not list or trust the hooks.
    #[error("codex app-server: {0}")]
    AppServer(#[from] crate::appserver::AppServerError),
}

/// `<CODEX_HOME>/hooks.json`.
pub fn hooks_file(codex_home: &Path) -> PathBuf {
    codex_home.join("hooks.json")
}

/// The side config our hook command names: where the state DB is, and the text limit.
pub fn side_config_file(codex_home: &Path) -> PathBuf {
    codex_home.join("codex-control-plane-mcp-hooks.json")
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HooksError + '_ {
    move |source| HooksError::Io {
        path: path.to_path_buf(),
        source,
    }
}
