//! The fixtures of the official MCP conformance suite (`@modelcontextprotocol/conformance`): the tools,
//! resources, prompts and completions its server scenarios call, with the content each scenario expects.
//!
//! Served only behind the test-only switch `CODEX_CONTROL_PLANE_MCP_CONFORMANCE_FIXTURES` (see
//! [`crate::config::CONFORMANCE_FIXTURES_ENV`]); a normal server lists none of them and answers their methods
//! with "method not found". They touch nothing stateful: no engine, no store, no app-server. What the suite
//! measures beyond them (initialize, sessions, `server/discover`, Host and Origin checks, headers, the Tasks
//! extension) is the production server itself.

// Logging and sampling are deprecated by SEP-2577 (gone from 2026-07-28), but the 2025-11-25 scenarios still
// call them.
#![allow(deprecated)]

mod content;
mod tools;

pub use content::{
    complete, get_prompt, list_prompts, list_resource_templates, list_resources, read_resource,
};
pub use tools::{call_tool, is_fixture_tool, tools};

/// A 1×1 red PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// Eight silent samples of 16-bit mono WAV at 8 kHz.
const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Decodes a fixture result: every result carries `resultType: "complete"` (required from 2026-07-28, ignored
/// before).
fn result<T: serde::de::DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<T, rmcp::ErrorData> {
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("resultType")
            .or_insert_with(|| serde_json::Value::from("complete"));
    }
    from_json(value)
}

/// Decodes a fixture document into an rmcp type; the fixtures are literals, so a failure is a bug here, reported
/// to the client as an internal error rather than a panic.
fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, rmcp::ErrorData> {
    serde_json::from_value(value)
        .map_err(|e| rmcp::ErrorData::internal_error(format!("conformance fixture: {e}"), None))
}
