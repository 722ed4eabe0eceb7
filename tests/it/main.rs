//! End-to-end tests, one module per area.

mod appserver;
mod config;
mod mcp_appserver;
mod mcp_stdio;
mod operations;
mod plugins;
mod recovery;
