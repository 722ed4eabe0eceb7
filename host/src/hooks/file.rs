//! `hooks.json` and the side config: merging our hooks in, taking them out, and reading what is there.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{hooks_file, io_error, side_config_file, HooksError, EVENTS, MARKER};
use crate::domain::rules::shell::shell_quote;

/// What an install or uninstall did to `hooks.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// The file.
    pub hooks_file: String,
    /// Whether its content changed.
    pub changed: bool,
    /// Where the previous content was copied first (none when nothing changed or there was no file).
    pub backup: Option<String>,
    /// Events whose group of ours was added (install) or removed (uninstall).
    pub events: Vec<String>,
}

/// What `hooks.json` holds of ours.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookFileStatus {
    /// The file.
    pub hooks_file: String,
    /// Events that have our hook.
    pub installed_events: Vec<String>,
    /// Events we record that do not.
    pub missing_events: Vec<String>,
    /// Hooks of others in the file (kept as they are).
    pub other_hooks: usize,
    /// The side config, if written.
    pub side_config: Option<Value>,
}

/// The command Codex runs for our hook.
pub fn hook_command(binary: &Path, side_config: &Path) -> String {
    format!(
        "{} {MARKER} {}",
        shell_quote(&binary.display().to_string()),
        shell_quote(&side_config.display().to_string())
    )
}

fn is_ours(handler: &Value) -> bool {
    handler["command"]
        .as_str()
        .is_some_and(|command| command.contains(MARKER))
}

fn read_hooks(path: &Path) -> Result<Option<Map<String, Value>>, HooksError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path)(source)),
    };
    let bad = |message: String| HooksError::BadHooksFile {
        path: path.to_path_buf(),
        message,
    };
    match serde_json::from_str::<Value>(&text).map_err(|e| bad(e.to_string()))? {
        Value::Object(map) => {
            if map.get("hooks").is_some_and(|h| !h.is_object()) {
                return Err(bad("\"hooks\" is not an object".into()));
            }
            Ok(Some(map))
        }
        _ => Err(bad("the top level is not an object".into())),
    }
}

/// Copies `path` next to itself with a UTC time stamp; returns the copy.
fn back_up(path: &Path) -> Result<String, HooksError> {
    let stamp = crate::time::iso8601_now().replace([':', '.'], "-");
    let backup = path.with_file_name(format!(
        "{}.codex-control-plane-backup-{stamp}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("hooks.json")
    ));
    std::fs::copy(path, &backup).map_err(io_error(path))?;
    Ok(backup.display().to_string())
}

/// Writes through a temporary file and a rename, so Codex never reads half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), HooksError> {
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))
}

/// Removes our handlers from every group, and groups left empty; returns the events that had one.
fn strip_ours(hooks: &mut Map<String, Value>) -> Vec<String> {
    let mut touched = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let Some(list) = groups.as_array_mut() else {
            continue;
        };
        let before = list.clone();
        for group in list.iter_mut() {
            if let Some(handlers) = group.get_mut("hooks").and_then(Value::as_array_mut) {
                handlers.retain(|h| !is_ours(h));
            }
        }
        list.retain(|group| {
            group
                .get("hooks")
                .and_then(Value::as_array)
                .is_none_or(|handlers| !handlers.is_empty())
        });
        if *list != before {
            touched.push(event.clone());
        }
    }
    hooks.retain(|_, groups| groups.as_array().is_none_or(|l| !l.is_empty()));
    touched
}

/// Puts our hook (running `command`) on every event we record, keeping everyone else's hooks; writes the
/// side config naming `state_db`. Idempotent: a second install changes nothing.
pub fn install_file(
    codex_home: &Path,
    command: &str,
    state_db: &Path,
    max_text_chars: usize,
) -> Result<FileChange, HooksError> {
    std::fs::create_dir_all(codex_home).map_err(io_error(codex_home))?;
    let path = hooks_file(codex_home);
    let existing = read_hooks(&path)?;
    let mut document = existing.clone().unwrap_or_default();
    let hooks = document
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(hooks) = hooks.as_object_mut() else {
        return Err(HooksError::BadHooksFile {
            path,
            message: "\"hooks\" is not an object".into(),
        });
    };
    // An older command of ours (another binary path) is replaced, not duplicated.
    strip_ours(hooks);
    for (event, matcher) in EVENTS {
        let handler = json!({"type": "command", "command": command, "timeout": 30,
                             "statusMessage": "Recording Codex Control Plane MCP history"});
        let mut group = json!({"hooks": [handler]});
        if let Some(matcher) = matcher {
            group["matcher"] = json!(matcher);
        }
        let groups = hooks.entry(event).or_insert_with(|| json!([]));
        match groups.as_array_mut() {
            Some(list) => list.push(group),
            None => *groups = json!([group]),
        }
    }
    let changed = existing.as_ref() != Some(&document);
    let backup = match (&existing, changed) {
        (Some(_), true) => Some(back_up(&path)?),
        _ => None,
    };
    if changed {
        let text = serde_json::to_string_pretty(&Value::Object(document)).unwrap_or_default();
        write_atomically(&path, &(text + "\n"))?;
    }
    let side = side_config_file(codex_home);
    let side_config = json!({
        "stateDb": state_db.display().to_string(),
        "maxTextChars": max_text_chars,
        "installedBy": "codex-control-plane-mcp",
        "version": env!("CARGO_PKG_VERSION"),
        "installedAt": crate::time::iso8601_now(),
    });
    write_atomically(
        &side,
        &(serde_json::to_string_pretty(&side_config).unwrap_or_default() + "\n"),
    )?;
    Ok(FileChange {
        hooks_file: path.display().to_string(),
        changed,
        backup,
        events: if changed {
            EVENTS.iter().map(|(e, _)| e.to_string()).collect()
        } else {
            Vec::new()
        },
    })
}

/// Takes our hooks out of `hooks.json` (backing it up first) and leaves everyone else's.
pub fn uninstall_file(codex_home: &Path) -> Result<FileChange, HooksError> {
    let path = hooks_file(codex_home);
    let Some(existing) = read_hooks(&path)? else {
        return Ok(FileChange {
            hooks_file: path.display().to_string(),
            changed: false,
            backup: None,
            events: Vec::new(),
        });
    };
    let mut document = existing.clone();
    let events = match document.get_mut("hooks").and_then(Value::as_object_mut) {
        Some(hooks) => strip_ours(hooks),
        None => Vec::new(),
    };
    let changed = document != existing;
    let backup = if changed { Some(back_up(&path)?) } else { None };
    if changed {
        let text = serde_json::to_string_pretty(&Value::Object(document)).unwrap_or_default();
        write_atomically(&path, &(text + "\n"))?;
    }
    let side = side_config_file(codex_home);
    if side.exists() {
        std::fs::remove_file(&side).map_err(io_error(&side))?;
    }
    Ok(FileChange {
        hooks_file: path.display().to_string(),
        changed,
        backup,
        events,
    })
}

/// What `hooks.json` and the side config hold now.
pub fn file_status(codex_home: &Path) -> Result<HookFileStatus, HooksError> {
    let path = hooks_file(codex_home);
    let document = read_hooks(&path)?.unwrap_or_default();
    let hooks = document
        .get("hooks")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut installed = Vec::new();
    let mut others = 0;
    for (event, groups) in &hooks {
        for group in groups.as_array().into_iter().flatten() {
            for handler in group["hooks"].as_array().into_iter().flatten() {
                if is_ours(handler) {
                    installed.push(event.clone());
                } else {
                    others += 1;
                }
            }
        }
    }
    let missing = EVENTS
        .iter()
        .map(|(e, _)| e.to_string())
        .filter(|e| !installed.contains(e))
        .collect();
    let side = std::fs::read_to_string(side_config_file(codex_home))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    installed.dedup();
    Ok(HookFileStatus {
        hooks_file: path.display().to_string(),
        installed_events: installed,
        missing_events: missing,
        other_hooks: others,
        side_config: side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> std::path::PathBuf {
        // Tests run in parallel: a counter, not the clock, keeps their directories apart.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "ccp-hooks-{}-{n}-{}",
            std::process::id(),
            crate::time::now_ms()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn install_merges_with_the_users_hooks_is_idempotent_and_uninstall_restores_them() {
        let home = temp();
        let user = json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
                                     "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit"}]}]}});
        std::fs::write(hooks_file(&home), user.to_string()).expect("write");
        let command = hook_command(
            Path::new("/opt/ccp/bin/codex-control-plane-mcp"),
            &side_config_file(&home),
        );
        let first =
            install_file(&home, &command, Path::new("/state/db.sqlite3"), 100).expect("install");
        assert!(first.changed && first.backup.is_some(), "{first:?}");
        let status = file_status(&home).expect("status");
        assert!(status.missing_events.is_empty(), "{status:?}");
        assert_eq!(status.other_hooks, 2);
        assert_eq!(
            status.side_config.expect("side")["stateDb"],
            json!("/state/db.sqlite3")
        );
        let second =
            install_file(&home, &command, Path::new("/state/db.sqlite3"), 100).expect("again");
        assert!(!second.changed && second.backup.is_none(), "{second:?}");
        let removed = uninstall_file(&home).expect("uninstall");
        assert!(removed.changed);
        let back: Value =
            serde_json::from_str(&std::fs::read_to_string(hooks_file(&home)).expect("read"))
                .expect("json");
        assert_eq!(back, user);
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn a_file_codex_cannot_read_is_refused_untouched() {
        let home = temp();
        std::fs::write(hooks_file(&home), "[1, 2]").expect("write");
        assert!(matches!(
            install_file(
                &home,
                "x hooks record --hook-config y",
                Path::new("/db"),
                10
            ),
            Err(HooksError::BadHooksFile { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(hooks_file(&home)).expect("read"),
            "[1, 2]"
        );
        let _ = std::fs::remove_dir_all(&home);
    }
}
