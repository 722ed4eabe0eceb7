//! `state-get` / `state-set` / `state-delete`: a small key/value store per plugin. Keys are scoped
//! by plugin id, so a plugin sees only its own. The store is a trait so that SQLite can back it
//! (the server passes its store-backed implementation in through `PluginHost::builder`);
//! [`InMemoryStateStore`] keeps state for the life of the process (tests, benchmarks).

use std::collections::HashMap;
use std::sync::Mutex;

/// Longest key, in bytes. Keys are identifiers, not data.
pub const MAX_STATE_KEY_BYTES: usize = 256;
/// Longest value, in bytes. Larger data belongs in the workflow state the host persists.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one plugin may hold. With the value cap this bounds one plugin's state to 64 MiB.
pub const MAX_STATE_KEYS: usize = 1024;

/// Why a state call did not succeed. The first three mirror the WIT `state-error` and are answered to
/// the plugin; [`StateError::Unavailable`] fails the plugin call (a trap), because the WIT has no case
/// for it and answering "no value" would be untrue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Key longer than [`MAX_STATE_KEY_BYTES`].
    #[error("key longer than {MAX_STATE_KEY_BYTES} bytes")]
    KeyTooLarge,
    /// Value longer than [`MAX_STATE_VALUE_BYTES`].
    #[error("value longer than {MAX_STATE_VALUE_BYTES} bytes")]
    ValueTooLarge,
    /// The plugin already holds [`MAX_STATE_KEYS`] keys.
    #[error("more than {MAX_STATE_KEYS} keys")]
    TooManyKeys,
    /// The backing store could not answer in time or failed.
    #[error("plugin state is unavailable: {message}")]
    Unavailable {
        /// What went wrong.
        message: String,
    },
}

/// Per-plugin key/value state. Implementations enforce the `MAX_STATE_*` caps (use
/// [`check_sizes`]) and must not block for long: they run inside a plugin call, under its deadline,
/// possibly on an async runtime's thread.
pub trait PluginStateStore: Send + Sync {
    /// The value of `key` for `plugin`.
    fn get(&self, plugin: &str, key: &str) -> Result<Option<String>, StateError>;
    /// Stores `value` under `key` for `plugin`.
    fn set(&self, plugin: &str, key: &str, value: &str) -> Result<(), StateError>;
    /// Removes `key` for `plugin` (a missing key is not an error).
    fn delete(&self, plugin: &str, key: &str) -> Result<(), StateError>;
}

/// Checks the key and value caps.
pub fn check_sizes(key: &str, value: &str) -> Result<(), StateError> {
    if key.len() > MAX_STATE_KEY_BYTES {
        return Err(StateError::KeyTooLarge);
    }
    if value.len() > MAX_STATE_VALUE_BYTES {
        return Err(StateError::ValueTooLarge);
    }
    Ok(())
}

/// State kept in memory for the life of the process.
#[derive(Debug, Default)]
pub struct InMemoryStateStore {
    /// plugin id -> key -> value. A std `Mutex`: it is held only for a map operation, never
    /// across an await or a plugin call.
    plugins: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl PluginStateStore for InMemoryStateStore {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<String>, StateError> {
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok(plugins
            .get(plugin)
            .and_then(|entries| entries.get(key))
            .cloned())
    }

    fn set(&self, plugin: &str, key: &str, value: &str) -> Result<(), StateError> {
        check_sizes(key, value)?;
        let mut plugins = self
            .plugins
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let entries = plugins.entry(plugin.to_string()).or_default();
        if !entries.contains_key(key) && entries.len() >= MAX_STATE_KEYS {
            return Err(StateError::TooManyKeys);
        }
        entries.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn delete(&self, plugin: &str, key: &str) -> Result<(), StateError> {
        let mut plugins = self
            .plugins
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(entries) = plugins.get_mut(plugin) {
            entries.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_scoped_per_plugin() {
        // Plugin b cannot see plugin a's key.
        let store = InMemoryStateStore::default();
        store.set("a", "k", "1").expect("stored");
        assert_eq!(store.get("a", "k"), Ok(Some("1".to_string())));
        assert_eq!(store.get("b", "k"), Ok(None));
        store.delete("a", "k").expect("deleted");
        assert_eq!(store.get("a", "k"), Ok(None));
    }

    #[test]
    fn caps_are_enforced() {
        // Oversized keys and values, and one key too many, are refused; overwriting is fine.
        let store = InMemoryStateStore::default();
        let long_key = "k".repeat(MAX_STATE_KEY_BYTES + 1);
        assert_eq!(store.set("a", &long_key, "v"), Err(StateError::KeyTooLarge));
        let long_value = "v".repeat(MAX_STATE_VALUE_BYTES + 1);
        assert_eq!(
            store.set("a", "k", &long_value),
            Err(StateError::ValueTooLarge)
        );
        for key_idx in 0..MAX_STATE_KEYS {
            store
                .set("a", &key_idx.to_string(), "v")
                .expect("under the cap");
        }
        assert_eq!(
            store.set("a", "one-more", "v"),
            Err(StateError::TooManyKeys)
        );
        assert_eq!(store.set("a", "0", "w"), Ok(()));
    }
}
