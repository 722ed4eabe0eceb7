//! The generated `Host` traits of the latest WIT version, implemented by delegating to the
//! capability modules. Older WIT versions map their unchanged interfaces to these (`with:`), so
//! these impls are written once.

use crate::plugins::runtime::PluginCtx;
use crate::plugins::wit::latest::codex_control_plane::plugin::{host, types};

use super::{clock, config, log, state, views};

impl types::Host for PluginCtx {}

impl host::Host for PluginCtx {
    fn log(&mut self, level: types::LogLevel, message: String) {
        let level = match level {
            types::LogLevel::Trace => log::Level::Trace,
            types::LogLevel::Debug => log::Level::Debug,
            types::LogLevel::Info => log::Level::Info,
            types::LogLevel::Warn => log::Level::Warn,
            types::LogLevel::Error => log::Level::Error,
        };
        log::log(&self.capabilities.identity, level, &message);
    }

    fn now_ms(&mut self) -> u64 {
        clock::now_ms()
    }

    fn get_config(&mut self) -> String {
        config::get_config(&self.capabilities)
    }

    fn state_get(&mut self, key: String) -> Option<String> {
        let plugin = &self.capabilities.identity.id;
        self.capabilities.state.get(plugin, &key)
    }

    fn state_set(&mut self, key: String, value: String) -> Result<(), host::StateError> {
        let plugin = &self.capabilities.identity.id;
        self.capabilities
            .state
            .set(plugin, &key, &value)
            .map_err(|error| match error {
                state::StateError::KeyTooLarge => host::StateError::KeyTooLarge,
                state::StateError::ValueTooLarge => host::StateError::ValueTooLarge,
                state::StateError::TooManyKeys => host::StateError::TooManyKeys,
            })
    }

    fn state_delete(&mut self, key: String) {
        let plugin = &self.capabilities.identity.id;
        self.capabilities.state.delete(plugin, &key);
    }

    fn get_operation(&mut self, id: String) -> Option<String> {
        views::capped(self.capabilities.views.operation(&id))
    }

    fn get_workflow(&mut self, id: String) -> Option<String> {
        views::capped(self.capabilities.views.workflow(&id))
    }
}
