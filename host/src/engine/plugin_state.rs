//! Plugin key/value state backed by the store: the [`PluginStateStore`] the server hands the plugin runtime,
//! so state outlives the process. It lives here, where `store` and `plugins` meet, so neither names the other.
//!
//! The trait is synchronous and runs inside a plugin call, possibly on an async runtime's thread. Reads take a
//! pooled read-only connection on the calling thread (WAL: never behind a writer). Writes go through the
//! store's single writer thread with a bounded wait (`store::plugin_state::STATE_WRITE_WAIT`): a write still
//! queued when the wait ends is withdrawn, so a busy database fails the plugin call (a host failure, reported
//! like a trap) instead of stalling it, and the plugin never believes something was stored that was not. A
//! write from the writer thread itself is refused at once, so no path deadlocks.

use crate::plugins::capability::state::{check_sizes, StateError, MAX_STATE_KEYS};
use crate::plugins::PluginStateStore;
use crate::store::plugin_state::SetOutcome;
use crate::store::{Store, StoreError};

/// Plugin state in the `codex_plugin_state` table.
#[derive(Debug, Clone)]
pub struct StorePluginState {
    /// The state database.
    store: Store,
}

impl StorePluginState {
    /// State kept in `store`.
    pub fn new(store: Store) -> StorePluginState {
        StorePluginState { store }
    }
}

/// A store failure as the state error that fails the plugin call.
fn unavailable(error: StoreError) -> StateError {
    tracing::warn!(%error, "plugin state unavailable");
    StateError::Unavailable {
        message: error.to_string(),
    }
}

impl PluginStateStore for StorePluginState {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<String>, StateError> {
        self.store
            .plugin_state_get(plugin, key)
            .map_err(unavailable)
    }

    fn set(&self, plugin: &str, key: &str, value: &str) -> Result<(), StateError> {
        check_sizes(key, value)?;
        let max_keys = u64::try_from(MAX_STATE_KEYS).unwrap_or(u64::MAX);
        match self
            .store
            .plugin_state_set(plugin, key, value, max_keys)
            .map_err(unavailable)?
        {
            SetOutcome::Stored => Ok(()),
            SetOutcome::TooManyKeys => Err(StateError::TooManyKeys),
        }
    }

    fn delete(&self, plugin: &str, key: &str) -> Result<(), StateError> {
        self.store
            .plugin_state_delete(plugin, key)
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::capability::state::{MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES};
    use crate::store::test_support::temp_store;

    #[test]
    fn caps_are_enforced_against_the_database() {
        // The runtime's caps hold for the SQLite-backed state as for the in-memory one.
        let (_dir, store) = temp_store();
        let state = StorePluginState::new(store);
        let long_key = "k".repeat(MAX_STATE_KEY_BYTES + 1);
        assert_eq!(state.set("a", &long_key, "v"), Err(StateError::KeyTooLarge));
        let long_value = "v".repeat(MAX_STATE_VALUE_BYTES + 1);
        assert_eq!(
            state.set("a", "k", &long_value),
            Err(StateError::ValueTooLarge)
        );
        for key_idx in 0..MAX_STATE_KEYS {
            state
                .set("a", &key_idx.to_string(), "v")
                .expect("under the cap");
        }
        assert_eq!(
            state.set("a", "one-more", "v"),
            Err(StateError::TooManyKeys)
        );
        assert_eq!(state.set("a", "0", "w"), Ok(()));
        assert_eq!(state.get("a", "0"), Ok(Some("w".to_string())));
        state.delete("a", "0").expect("delete");
        assert_eq!(state.get("a", "0"), Ok(None));
    }
}
