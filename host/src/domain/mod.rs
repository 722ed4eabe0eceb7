//! Pure domain rules shared by every layer: no I/O, no SQL, no MCP. `appserver`, `store`, `engine` and `mcp`
//! may all name it; it names none of them.
//!
//! - [`failure`]: the failure codes stored in rows (`lastError`, `error`), one enum for engine, store and MCP.
//! - [`operation`]: an operation's kind and status as enums (the seed's names on the wire and in rows).
//! - [`rules`]: the seed's rules (statuses, prompt normalisation and dedup, similarity, output schemas,
//!   canonical JSON and hashing, interaction replies, redaction).
//! - [`schema`]: the JSON Schema subset validator (tool arguments, plugin settings).
//! - [`server_requests`]: the typed server-to-client requests of `codex app-server`, one table for all.

pub mod failure;
pub mod operation;
pub mod rules;
pub mod schema;
pub mod server_requests;
