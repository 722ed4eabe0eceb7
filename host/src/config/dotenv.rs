//! Dotenv files (`KEY=VALUE` lines), the seed's way of handing the summarizer its `DEEPSEEK_*` settings
//! (`DEEPSEEK_ENV_PATH`).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

/// The `KEY=VALUE` lines of a dotenv file (`#` comments, blank lines and a leading `export ` allowed; a value
/// may be quoted); `key` names the setting that named the file.
pub(super) fn read_env_file(
    key: &str,
    path: &Path,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| ConfigError::value(key, format!("cannot read {}: {err}", path.display())))?;
    let mut vars = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(ConfigError::value(
                key,
                format!("{} line {}: expected KEY=VALUE", path.display(), number + 1),
            ));
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.insert(name.trim().to_string(), unquoted.to_string());
    }
    Ok(vars)
}
