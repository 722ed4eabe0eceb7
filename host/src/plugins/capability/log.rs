//! `log`: plugin log lines go through `tracing`, tagged with the plugin's id and version, under
//! the target `plugin`.

use super::PluginIdentity;

/// Longest log message kept, in bytes. A guest chooses how much it sends; without a cap one call
/// could flood the log file. Longer messages are truncated (at a character boundary).
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 * 1024;

/// Severity of a plugin log line (mirrors the WIT `log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// Writes one plugin log line.
pub fn log(identity: &PluginIdentity, level: Level, message: &str) {
    let message = truncate(message, MAX_LOG_MESSAGE_BYTES);
    let plugin = identity.id.as_str();
    let version = identity.version.as_str();
    match level {
        Level::Trace => tracing::trace!(target: "plugin", plugin, version, "{message}"),
        Level::Debug => tracing::debug!(target: "plugin", plugin, version, "{message}"),
        Level::Info => tracing::info!(target: "plugin", plugin, version, "{message}"),
        Level::Warn => tracing::warn!(target: "plugin", plugin, version, "{message}"),
        Level::Error => tracing::error!(target: "plugin", plugin, version, "{message}"),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        // "é" is two bytes; cutting in its middle backs off to before it.
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
    }
}
