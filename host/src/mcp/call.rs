//! [`CallContext`]: what a tool handler may know about the MCP request it serves: whether the client cancelled
//! it, and where its progress notifications go.

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use rmcp::RoleServer;
use tokio_util::sync::CancellationToken;

/// The request-scoped part of a tool call.
#[derive(Clone, Default)]
pub struct CallContext {
    cancel: CancellationToken,
    progress: Option<ProgressSink>,
}

/// Where `notifications/progress` for one request go.
#[derive(Clone)]
struct ProgressSink {
    token: ProgressToken,
    peer: Peer<RoleServer>,
}

impl CallContext {
    /// The context of an rmcp request: its cancellation token and, when the client sent a `progressToken`,
    /// the peer to notify.
    pub fn from_request(context: &RequestContext<RoleServer>) -> CallContext {
        let progress = context.meta.get_progress_token().map(|token| ProgressSink {
            token,
            peer: context.peer.clone(),
        });
        CallContext {
            cancel: context.ct.clone(),
            progress,
        }
    }

    /// A context whose cancellation the caller controls and that reports no progress (internal calls, tests).
    pub fn detached(cancel: CancellationToken) -> CallContext {
        CallContext {
            cancel,
            progress: None,
        }
    }

    /// Resolves when the client cancelled the request (`notifications/cancelled`) or the session ended.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// True when the client asked for progress notifications.
    pub fn wants_progress(&self) -> bool {
        self.progress.is_some()
    }

    /// Sends one `notifications/progress`; a failure (the client went away) is logged, never raised.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(sink) = &self.progress else {
            return;
        };
        let mut param = ProgressNotificationParam::new(sink.token.clone(), progress);
        param.total = total;
        param.message = message;
        if let Err(error) = sink.peer.notify_progress(param).await {
            tracing::debug!(%error, "progress notification not delivered");
        }
    }
}
