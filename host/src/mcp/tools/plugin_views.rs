//! The plugin views (WIT `get-operation` / `get-workflow`): the payloads `codex_get_operation_status` and
//! `codex_get_workflow_status` return (default options), rendered by the same code from one store snapshot and
//! passed through `agent_safe` (secrets and absolute paths redacted), because a third-party plugin is no more
//! trusted with them than a diagnostics reader.
//!
//! A view runs inside a plugin call, synchronously: it reads on a pooled read-only connection on the calling
//! thread, which in WAL mode never waits for a writer, and never touches app-server. A read that fails is a
//! `none` (logged), as the WIT allows ("unknown or not exposed").

use std::sync::OnceLock;

use serde_json::Value;

use super::operations::{render_operation, PayloadOptions};
use super::workflows::render_workflow;
use crate::domain::rules::agent_safe::agent_safe_value;
use crate::plugins::HostViews;
use crate::store::{operations, workflows, Store};

/// History lines a workflow view carries (what the status tool shows by default).
const WORKFLOW_EVENTS: usize = 50;
/// Longest plan or report text in a workflow view, in characters (the status tool's default).
const WORKFLOW_TEXT_CHARS: usize = 8000;

/// [`HostViews`] backed by the store's status snapshots.
pub struct StoreViews {
    /// The state database.
    store: Store,
    /// This process's worker id, for an operation's `leaseState`; known once the engine exists, which is
    /// built after the plugins.
    owner_id: OnceLock<String>,
}

impl StoreViews {
    /// Views over `store`.
    pub fn new(store: Store) -> StoreViews {
        StoreViews {
            store,
            owner_id: OnceLock::new(),
        }
    }

    /// Records this process's worker id (the first call wins).
    pub fn set_owner(&self, owner_id: &str) {
        let _ = self.owner_id.set(owner_id.to_string());
    }

    /// The operation payload of `id`, if the operation exists.
    fn operation_payload(&self, id: &str) -> Option<Value> {
        let options = PayloadOptions::default();
        let snapshot = self
            .store
            .read_blocking(|conn| {
                operations::snapshot(conn, id, options.last_messages, options.progress_events)
            })
            .map_err(|error| tracing::warn!(%error, operation = id, "plugin view: read failed"))
            .ok()??;
        let owner = self.owner_id.get().map_or("", String::as_str);
        render_operation(owner, snapshot, &options)
            .map_err(|error| tracing::warn!(?error, operation = id, "plugin view: render failed"))
            .ok()
    }

    /// The workflow payload of `id`, if the workflow exists.
    fn workflow_payload(&self, id: &str) -> Option<Value> {
        let snapshot = self
            .store
            .read_blocking(|conn| workflows::snapshot(conn, id, WORKFLOW_EVENTS))
            .map_err(|error| tracing::warn!(%error, workflow = id, "plugin view: read failed"))
            .ok()??;
        Some(render_workflow(&snapshot, WORKFLOW_TEXT_CHARS))
    }
}

impl HostViews for StoreViews {
    fn operation(&self, id: &str) -> Option<String> {
        self.operation_payload(id)
            .map(|payload| agent_safe_value(&payload).to_string())
    }

    fn workflow(&self, id: &str) -> Option<String> {
        self.workflow_payload(id)
            .map(|payload| agent_safe_value(&payload).to_string())
    }
}
