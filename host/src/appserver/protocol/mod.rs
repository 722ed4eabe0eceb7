//! The app-server methods we call, as types: each request's params are a struct that names its method and the
//! reply it expects, so a field name is spelled once and a reply is parsed in one place.
//!
//! Param field names are the pinned protocol's (the conformance test validates every frame the server sent in
//! its flows against the schema `generate-json-schema` prints). Replies are read leniently: unknown fields are
//! ignored and only what the engine uses is required, so a newer app-server that adds fields still works. The
//! inventory methods of runtime capabilities are the exception: their replies are summarised as documents.

mod replies;
mod requests;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::AppServerError;

pub use replies::{
    Ack, ConfigReadReply, Created, EffectiveConfig, GoalCleared, GoalReply, HookInfo,
    HooksListEntry, HooksListReply, ThreadReadReply, ThreadReply, TurnReply, TurnSteered,
};
pub use requests::{
    ClientInfo, CollaborationMode, CollaborationSettings, ConfigBatchWrite, ConfigEdit, ConfigRead,
    GoalStatus, HooksList, Initialize, InitializeCapabilities, InputItem, ReviewStart,
    SandboxPolicy, ThreadArchive, ThreadCompactStart, ThreadFork, ThreadGoalClear, ThreadGoalGet,
    ThreadGoalSet, ThreadRead, ThreadResume, ThreadSetName, ThreadStart, ThreadUnarchive,
    TurnInterrupt, TurnStart, TurnSteer,
};

/// A client request of the pinned protocol: its params, its method name and the reply it gets.
pub trait ClientRequest: Serialize + Send + Sync {
    /// The JSON-RPC method.
    const METHOD: &'static str;
    /// What the engine reads from the result.
    type Reply: DeserializeOwned + Send;
}

/// The params of a request, as sent.
pub fn encode<R: ClientRequest>(request: &R) -> Result<Value, AppServerError> {
    serde_json::to_value(request).map_err(|e| AppServerError::Encode {
        method: R::METHOD.to_string(),
        message: e.to_string(),
    })
}

/// The part of a request's result the engine reads.
pub fn decode<R: ClientRequest>(result: Value) -> Result<R::Reply, AppServerError> {
    serde_json::from_value(result).map_err(|e| AppServerError::BadReply {
        method: R::METHOD.to_string(),
        message: e.to_string(),
    })
}
