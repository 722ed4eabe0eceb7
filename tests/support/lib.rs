//! Test support: a real MCP stdio client and a minimal MCP HTTP client for the built server, the fake model
//! server, the fake chat-completions endpoint of the summarizer, the real codex peer, and helpers to build
//! isolated configurations. Everything talks to 127.0.0.1 only.

pub mod bench;
pub mod fake_model;
pub mod fake_summarizer;
pub mod http_client;
pub mod http_request;
pub mod mcp_client;
pub mod peer;
pub mod wasm_plugins;
