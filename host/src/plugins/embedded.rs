//! Default plugins compiled into the binary. `host/build.rs` builds every crate under `plugins/`
//! for `wasm32-wasip2` and generates the `DEFAULT_PLUGINS` table included here.

/// A default plugin: its manifest and component, embedded at build time.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// The crate it was built from, e.g. `default-policy`.
    pub crate_name: &'static str,
    /// Its `plugin.toml`.
    pub manifest: &'static str,
    /// Its component bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/default_plugins.rs"));
