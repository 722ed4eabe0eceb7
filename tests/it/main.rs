//! End-to-end tests, one module per area.

mod config;
mod mcp_stdio;
mod plugins;
