//! `get-config`: the plugin's own `[config]` table, as JSON. The host decides what a plugin is
//! configured with; a plugin cannot read anyone else's configuration.

use super::CapabilityCtx;

/// The configuration JSON of the calling plugin.
pub fn get_config(ctx: &CapabilityCtx) -> String {
    ctx.config_json.to_string()
}
