//! How the tool specs are published in `tools/list`: the list of specs and the entry of each, written once, at
//! build time. `build.rs` includes this file as it is (so it names nothing of the crate, only `serde_json`) and
//! writes the whole tools array into the binary; a server process never builds it (see `catalog.rs` for the
//! specs' use at run time).

use serde_json::{json, Map, Value};

/// The tools this build serves, in `tools/list` order; each has its spec in `tools/specs/<name>.json`.
pub const TOOL_NAMES: &[&str] = &[
    "codex_health_summary",
    "codex_get_agent_contract",
    "codex_get_app_server_status",
    "codex_restart_app_server",
    "codex_get_runtime_capabilities",
    "codex_submit_task",
    "codex_start_chat",
    "codex_send_message",
    "codex_get_operation_status",
    "codex_get_turn_status",
    "codex_list_pending_interactions",
    "codex_answer_pending_interaction",
    "codex_interrupt_turn",
    "codex_get_queue_status",
    "codex_get_concurrency_status",
    "codex_get_worker_status",
    "codex_get_worker_command_status",
    "codex_wait",
    "codex_start_plan_workflow",
    "codex_get_workflow_status",
    "codex_approve_plan",
    "codex_adopt_workflow_plan",
    "codex_start_review_workflow",
    "codex_execute_plan",
    "codex_archive_thread",
    "codex_unarchive_thread",
    "codex_start_thread_compaction",
    "codex_get_thread_compaction_status",
    "codex_list_projects",
    "codex_list_project_chats",
    "codex_list_active_chats",
    "codex_get_chat_status",
    "codex_get_chat",
    "codex_search_chats",
    "codex_collect_diagnostics",
    "codex_get_diagnostic_logs",
    "codex_analyze_issue",
    "codex_repair_issue",
    "codex_preflight_project_run",
];

/// True when a tool's `codexMcp` block marks it as one that only reads state.
pub fn is_passive_read(codex_mcp: &Value) -> bool {
    codex_mcp
        .get("passiveRead")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The `tools/list` entry of tool `name` with spec `spec`, field for field as rmcp's `Tool` writes it: the
/// standard hints in `annotations`, where clients look for them, and our contract metadata in `_meta`, the
/// place MCP reserves for it.
pub fn published_tool(name: &str, spec: &Map<String, Value>) -> Result<Value, String> {
    let field = |key: &str| {
        spec.get(key)
            .ok_or_else(|| format!("{name}: missing {key}"))
    };
    let codex_mcp = field("codexMcp")?;
    let hint = |key: &str| codex_mcp.get(key).and_then(Value::as_str);
    let passive_read = is_passive_read(codex_mcp);
    let idempotent = passive_read || matches!(hint("idempotency"), Some("required" | "natural"));
    Ok(json!({
        "name": name,
        "description": field("description")?,
        "inputSchema": field("inputSchema")?,
        "outputSchema": field("outputSchema")?,
        "annotations": {
            "readOnlyHint": passive_read,
            "destructiveHint": hint("role") == Some("lifecycle"),
            "idempotentHint": idempotent,
            "openWorldHint": false,
        },
        "_meta": {
            "codexMcp": codex_mcp,
            "openclawContractGroup": field("contractGroup")?,
        },
    }))
}
