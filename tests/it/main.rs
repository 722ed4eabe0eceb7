//! End-to-end tests, one module per area.

mod admin;
mod admission;
mod analyze;
mod appserver;
mod catalog;
mod chats;
mod config;
mod conformance;
mod diagnostic_tools;
mod diagnostics;
mod goals;
mod harness;
mod hooks;
mod http;
mod mcp_appserver;
mod mcp_stdio;
mod operations;
mod plugins;
mod preflight;
mod protocol_conformance;
mod recovery;
mod repair;
mod tasks;
mod waits;
mod worker;
mod workflows;
