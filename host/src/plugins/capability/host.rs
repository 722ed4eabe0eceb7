//! The generated `Host` traits of the latest WIT version, implemented by delegating to the
//! capability modules. Older WIT versions map their unchanged interfaces to these (`with:`), so
//! these impls are written once.
//!
//! Every function first checks the calling plugin's capabilities ([`CapabilityCtx::check`]): a call
//! outside them returns the trap error before the capability module is reached. The imports are
//! generated `trappable` for this reason, and so that a state store that cannot answer fails the
//! call instead of answering something untrue.

use crate::plugins::runtime::PluginCtx;
use crate::plugins::wit::latest::codex_control_plane::plugin::{host, types};

use super::{clock, config, log, state, views, Capability, CapabilityCtx};

impl types::Host for PluginCtx {}

/// The capability check as a trap.
fn check(ctx: &CapabilityCtx, capability: Capability) -> wasmtime::Result<()> {
    ctx.check(capability).map_err(wasmtime::Error::new)
}

/// A state store failure as a trap (the WIT `state-error` cases are answered, not trapped).
fn state_trap(error: state::StateError) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

impl host::Host for PluginCtx {
    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        check(&self.capabilities, Capability::Log)?;
        let level = match level {
            types::LogLevel::Trace => log::Level::Trace,
            types::LogLevel::Debug => log::Level::Debug,
            types::LogLevel::Info => log::Level::Info,
            types::LogLevel::Warn => log::Level::Warn,
            types::LogLevel::Error => log::Level::Error,
        };
        log::log(&self.capabilities.identity, level, &message);
        Ok(())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        check(&self.capabilities, Capability::Clock)?;
        Ok(clock::now_ms())
    }

    fn get_config(&mut self) -> wasmtime::Result<String> {
        check(&self.capabilities, Capability::Config)?;
        Ok(config::get_config(&self.capabilities))
    }

    fn state_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        check(&self.capabilities, Capability::State)?;
        let plugin = &self.capabilities.identity.id;
        self.capabilities
            .state
            .get(plugin, &key)
            .map_err(state_trap)
    }

    fn state_set(
        &mut self,
        key: String,
        value: String,
    ) -> wasmtime::Result<Result<(), host::StateError>> {
        check(&self.capabilities, Capability::State)?;
        let plugin = &self.capabilities.identity.id;
        match self.capabilities.state.set(plugin, &key, &value) {
            Ok(()) => Ok(Ok(())),
            Err(state::StateError::KeyTooLarge) => Ok(Err(host::StateError::KeyTooLarge)),
            Err(state::StateError::ValueTooLarge) => Ok(Err(host::StateError::ValueTooLarge)),
            Err(state::StateError::TooManyKeys) => Ok(Err(host::StateError::TooManyKeys)),
            Err(error @ state::StateError::Unavailable { .. }) => Err(state_trap(error)),
        }
    }

    fn state_delete(&mut self, key: String) -> wasmtime::Result<()> {
        check(&self.capabilities, Capability::State)?;
        let plugin = &self.capabilities.identity.id;
        self.capabilities
            .state
            .delete(plugin, &key)
            .map_err(state_trap)
    }

    fn get_operation(&mut self, id: String) -> wasmtime::Result<Option<String>> {
        check(&self.capabilities, Capability::Views)?;
        Ok(views::capped(self.capabilities.views.operation(&id)))
    }

    fn get_workflow(&mut self, id: String) -> wasmtime::Result<Option<String>> {
        check(&self.capabilities, Capability::Views)?;
        Ok(views::capped(self.capabilities.views.workflow(&id)))
    }
}
