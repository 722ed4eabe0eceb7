//! The MCP surface: the stdio transport (rmcp's protocol over [`transport`]'s lenient line decoding, on the byte
//! streams of [`stdio`]), the streamable HTTP transport ([`http`]), the tool catalog, argument validation and the
//! error shape.
//!
//! **Architecture Invariant:** `mcp` is the only module that knows about MCP and about the seed's payload
//! conventions (`ok`, `statusContract`, `CODEX_*` codes). The modules below it return typed values and typed
//! errors; [`error`] maps them once.
//!
//! Requests are served concurrently (rmcp spawns a task per request), so a slow call never blocks a status poll.

pub mod args;
pub mod call;
pub mod catalog;
mod conformance;
pub mod error;
pub mod http;
pub mod published;
pub mod schema;
pub mod server;
pub mod stdio;
pub mod tasks;
pub mod tools;
pub mod tools_list_reply;
pub mod transport;

pub use error::{ErrorCode, ToolError};
pub use server::McpServer;
