//! codex-control-plane: an MCP server that turns `codex app-server` into a durable, retry-safe worker.
//!
//! # Layout
//!
//! - [`config`]: one typed configuration from a TOML file and the seed's environment variables.
//! - [`mcp`]: the MCP transport (rmcp over stdio), the tool catalog, argument validation and the error shape.
//!   The only module that knows about MCP.
//! - [`plugins`]: the WebAssembly plugin runtime (wasmtime): default and third-party plugins, limits, the
//!   policy chain. Knows nothing about MCP.
//! - [`app`]: the state shared by tool handlers.
//! - [`server`]: start-up and shutdown wiring (`run`).
//! - [`shutdown`]: the shutdown signal passed to every long-lived task.
//! - [`time`]: clock helpers.
//! - [`worker`]: the background worker process (owns app-server, runs the engine and worker commands).
//!
//! See `docs/ARCHITECTURE.md` for the code map and the invariants.

pub mod app;
pub mod appserver;
pub mod config;
pub mod engine;
pub mod mcp;
pub mod plugins;
pub mod projects;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod time;
pub mod worker;
