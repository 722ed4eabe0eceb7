//! End-to-end tests, one module per area.

mod appserver;
mod config;
mod mcp_stdio;
mod plugins;
