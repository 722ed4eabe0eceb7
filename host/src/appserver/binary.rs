//! Finding the `codex` binary and building the recursion-guard overrides for the child.

use std::path::{Path, PathBuf};

/// The explicit path if it is an executable file, else `codex` from `PATH`.
pub fn find_codex_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return is_executable(path).then(|| path.to_path_buf());
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("codex"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Binary name whose `[mcp_servers]` entries are ours.
const OUR_BINARY: &str = "codex-control-plane-mcp";

/// `-c` overrides that replace our own `[mcp_servers]` entries with disabled stubs in the child.
///
/// Setting only `mcp_servers.<name>.enabled=false` is not enough: for a name the user's config does not define,
/// Codex sees a half-defined server and refuses to start ("invalid transport"). A whole inline table is always
/// valid, so we replace the configured name plus every entry of `$CODEX_HOME/config.toml` whose command or
/// arguments mention this binary.
pub fn self_disable_overrides(codex_home: &Path, configured_name: &str) -> Vec<(String, String)> {
    let mut names = vec![configured_name.to_string()];
    if let Ok(text) = std::fs::read_to_string(codex_home.join("config.toml")) {
        if let Ok(table) = text.parse::<toml::Table>() {
            if let Some(servers) = table.get("mcp_servers").and_then(|v| v.as_table()) {
                for (name, entry) in servers {
                    let mentions_us = entry
                        .get("command")
                        .and_then(|c| c.as_str())
                        .is_some_and(|c| c.contains(OUR_BINARY))
                        || entry
                            .get("args")
                            .and_then(|a| a.as_array())
                            .is_some_and(|args| {
                                args.iter()
                                    .filter_map(|a| a.as_str())
                                    .any(|a| a.contains(OUR_BINARY))
                            });
                    if mentions_us && !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            (
                "-c".to_string(),
                format!(
                    "mcp_servers.{}={{command=\"{OUR_BINARY}\", enabled=false}}",
                    toml_key(&name)
                ),
            )
        })
        .collect()
}

/// A TOML key, quoted unless it is a bare key.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        toml::Value::String(name.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_cover_the_configured_name_and_entries_running_us() {
        let home = std::env::temp_dir().join(format!("ccp-binary-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&home).expect("mkdir");
        std::fs::write(
            home.join("config.toml"),
            "[mcp_servers.cp]\ncommand = \"/opt/bin/codex-control-plane-mcp\"\n\
             [mcp_servers.\"via npx\"]\ncommand = \"npx\"\nargs = [\"codex-control-plane-mcp\"]\n\
             [mcp_servers.other]\ncommand = \"other-server\"\n",
        )
        .expect("write");
        let overrides = self_disable_overrides(&home, "codex-control-plane-mcp");
        let values: Vec<&str> = overrides.iter().map(|(_, v)| v.as_str()).collect();
        assert!(
            values[0].starts_with("mcp_servers.codex-control-plane-mcp={"),
            "{values:?}"
        );
        assert!(
            values.iter().any(|v| v.starts_with("mcp_servers.cp={")),
            "{values:?}"
        );
        assert!(
            values
                .iter()
                .any(|v| v.starts_with("mcp_servers.\"via npx\"={")),
            "{values:?}"
        );
        assert!(!values.iter().any(|v| v.contains("other")), "{values:?}");
        assert!(overrides
            .iter()
            .all(|(flag, v)| flag == "-c" && v.ends_with("enabled=false}")));
        let _ = std::fs::remove_dir_all(&home);
    }
}
