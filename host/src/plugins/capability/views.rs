//! `get-operation` / `get-workflow`: read-only views of the host's state, chosen by the host.
//! The store implements [`HostViews`]; until then [`NoViews`] answers `none` to everything.

/// Largest view handed to a plugin, in bytes. A view larger than this is withheld (`none`) rather
/// than copied into the guest, whose memory is capped anyway.
pub const MAX_VIEW_BYTES: usize = 256 * 1024;

/// Read-only JSON views a plugin may ask for. Implementations must be cheap and must not block on
/// the plugin (they run inside a plugin call).
pub trait HostViews: Send + Sync {
    /// The operation with this id, as the JSON object the status tool returns.
    fn operation(&self, id: &str) -> Option<String>;
    /// The workflow with this id, as JSON.
    fn workflow(&self, id: &str) -> Option<String>;
}

/// Views that expose nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoViews;

impl HostViews for NoViews {
    fn operation(&self, _id: &str) -> Option<String> {
        None
    }

    fn workflow(&self, _id: &str) -> Option<String> {
        None
    }
}

/// Applies [`MAX_VIEW_BYTES`] to a view.
pub fn capped(view: Option<String>) -> Option<String> {
    view.filter(|json| json.len() <= MAX_VIEW_BYTES)
}
