//! Thin wrappers over the WIT `host` interface: what a plugin may ask of the host, each call under
//! the capability (in `plugin.toml`'s `capabilities`) that the host checks before answering.
//!
//! A call to a function whose capability the plugin does not hold fails the whole plugin call (as
//! a trap), so declare every capability whose functions you call.

use serde_json::Value;

use crate::bindings::workflow::codex_control_plane::plugin::host as raw;
pub use crate::bindings::workflow::codex_control_plane::plugin::host::StateError;
pub use crate::bindings::workflow::codex_control_plane::plugin::types::LogLevel;

/// Writes a log line through the host's logger, tagged with the plugin's id (capability `log`).
pub fn log(level: LogLevel, message: &str) {
    raw::log(level, message);
}

/// Logs at `info` (capability `log`).
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

/// Logs at `warn` (capability `log`).
pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

/// Logs at `error` (capability `log`).
pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

/// Milliseconds since the Unix epoch, as the host sees them (capability `clock`).
pub fn now_ms() -> u64 {
    raw::now_ms()
}

/// The raw JSON text of the plugin's `[config]` table (capability `config`); prefer
/// [`crate::config::load`] or the world traits, which deserialise it.
pub fn config_json() -> String {
    raw::get_config()
}

/// The value stored under `key` in the plugin's own state, if any (capability `state`).
pub fn state_get(key: &str) -> Option<String> {
    raw::state_get(key)
}

/// Stores `value` under `key`, replacing any earlier value (capability `state`). The host refuses
/// keys over 256 bytes, values over 64 KiB and more than 1024 keys.
pub fn state_set(key: &str, value: &str) -> Result<(), StateError> {
    raw::state_set(key, value)
}

/// Removes `key` from the plugin's state; a missing key is not an error (capability `state`).
pub fn state_delete(key: &str) {
    raw::state_delete(key);
}

/// The redacted view of an operation, as `codex_get_operation_status` returns it (capability
/// `views`); `None` when unknown, too large, or not JSON.
pub fn operation(id: &str) -> Option<Value> {
    raw::get_operation(id).and_then(|json| serde_json::from_str(&json).ok())
}

/// The redacted view of a workflow, as `codex_get_workflow_status` returns it (capability
/// `views`); `None` when unknown, too large, or not JSON.
pub fn workflow(id: &str) -> Option<Value> {
    raw::get_workflow(id).and_then(|json| serde_json::from_str(&json).ok())
}
