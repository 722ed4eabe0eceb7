//! codex-control-plane: an MCP server that turns `codex app-server` into a durable, retry-safe worker.
//!
//! # Layout
//!
//! Imports run one way: `server`/`worker` → `mcp` → `engine` → {`store`, `appserver`, `plugins`} → `domain`,
//! `config`. Nothing lower names anything higher.
//!
//! - [`server`]: the MCP server process: start-up and shutdown wiring (`run` for stdio, `run_http` for HTTP).
//! - [`worker`]: the background worker process (owns app-server, runs the engine and worker commands).
//! - [`admin`]: `admin init|doctor|print-config|smoke`: set-up, client configurations, smoke tests.
//! - [`hooks`]: the Codex hooks installer (trust through app-server) and the history recorder they run.
//! - [`plugin_cli`]: `plugins list|check PATH`: what the configuration loads, whether one plugin would load.
//! - [`app`]: the state shared by tool handlers.
//! - [`mcp`]: the MCP transports (rmcp over stdio and streamable HTTP), the tool catalog, argument validation
//!   and the error shape.
//!   The only module that knows about MCP.
//! - [`engine`]: turns requests into durable operations and drives them through app-server (dispatcher,
//!   tracker, courier, workflow pump, goal sync), and the client side of the background worker.
//! - [`store`]: the SQLite state (WAL, migrations, leases, admission, worker commands, owner liveness locks).
//!   The only module with SQL.
//! - [`appserver`]: the `codex app-server` supervisor and its JSON-RPC client. Knows nothing about MCP or SQLite.
//! - [`plugins`]: the WebAssembly plugin runtime (wasmtime): default and third-party plugins, limits, the
//!   policy chain. Knows nothing about MCP.
//! - [`projects`]: project references (registry file, allowed roots) resolved to directories.
//! - [`domain`]: pure rules every layer shares (statuses, dedup, similarity, hashing, redaction, the typed
//!   app-server server requests); names no other module.
//! - [`config`]: one typed configuration from a TOML file and the seed's environment variables.
//! - [`logs`]: this server's own log lines for the diagnostics tools (a `tracing` ring of WARN+ lines, log file tails).
//! - [`shutdown`]: the shutdown signal passed to every long-lived task.
//! - [`time`]: clock helpers.
//!
//! See `docs/ARCHITECTURE.md` for the code map and the invariants.

pub mod admin;
pub mod app;
pub mod appserver;
pub mod config;
pub mod domain;
pub mod engine;
pub mod hooks;
pub mod logs;
pub mod mcp;
pub mod memory;
pub mod plugin_cli;
pub mod plugins;
pub mod projects;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod summarizer;
pub mod time;
pub mod worker;
