//! The rmcp [`ServerHandler`]: initialize, `tools/list`, `tools/call` and ping.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListToolsResult, MetaObject, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use super::args::Args;
use super::call::CallContext;
use super::catalog::{Catalog, ToolSpec};
use super::error::{ErrorCode, ToolError};
use super::schema;
use super::tools;
use crate::app::App;

/// Name announced in `initialize` (the seed's, so client configs and allow-lists keep matching).
pub const SERVER_NAME: &str = "codex-control-plane-mcp";

/// Protocol revisions we negotiate: the ones clients use today that still have `initialize`.
const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
];

/// The MCP server: a cheap handle over the shared [`App`].
#[derive(Clone)]
pub struct McpServer {
    app: Arc<App>,
    tools: Arc<Vec<Tool>>,
}

impl McpServer {
    /// Builds the handler and renders the tool list once.
    pub fn new(app: Arc<App>) -> Self {
        let tools = Catalog::get().tools.iter().map(to_rmcp_tool).collect();
        McpServer {
            app,
            tools: Arc::new(tools),
        }
    }

    /// Runs one tool call to its JSON payload (`ok:true` or the error shape); never fails at the protocol level.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: &CallContext,
    ) -> Value {
        match self.try_call(name, arguments, ctx).await {
            Ok(Value::Object(fields)) => {
                // `ok` first: clients and people reading the text block look for it there.
                let mut payload = Map::with_capacity(fields.len() + 2);
                payload.insert("ok".into(), Value::Bool(true));
                payload.extend(fields);
                payload.insert(
                    "statusContract".into(),
                    json!({"version": "status-v2", "surface": name}),
                );
                Value::Object(payload)
            }
            Ok(other) => other,
            Err(err) => {
                tracing::debug!(tool = name, error = %err, "tool call failed");
                err.to_payload()
            }
        }
    }

    async fn try_call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let spec = Catalog::get().find(name).ok_or_else(|| {
            ToolError::new(ErrorCode::InvalidArgument, format!("unknown tool: {name}"))
                .with_detail("tool", json!(name))
        })?;
        let mut args = arguments.unwrap_or_default();
        let schema_value = Value::Object((*spec.input_schema).clone());
        schema::validate(&schema_value, &Value::Object(args.clone()))
            .map_err(|v| ToolError::invalid_argument(&v.field, v.message))?;
        let provided = args.keys().cloned().collect();
        schema::apply_defaults(&schema_value, &mut args);
        let args = Args::new(args, provided);
        if spec.is_write() && self.app.recursion_guard_active() {
            return Err(ToolError::new(
                ErrorCode::RecursionGuard,
                "this server runs inside a Codex session started by codex-control-plane-mcp; write tools are refused to prevent recursion",
            )
            .with_detail("tool", json!(name)));
        }
        tools::dispatch(&self.app, spec, args, ctx).await
    }
}

fn to_rmcp_tool(spec: &ToolSpec) -> Tool {
    let role = spec
        .codex_mcp
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("");
    let idempotent = spec.is_passive_read()
        || matches!(
            spec.codex_mcp.get("idempotency").and_then(Value::as_str),
            Some("required") | Some("natural")
        );
    // Custom contract metadata goes to `_meta`, the place MCP reserves for it; the standard hints go to
    // `annotations`, where clients look for them.
    let mut meta = Map::new();
    meta.insert("codexMcp".into(), spec.codex_mcp.clone());
    meta.insert("openclawContractGroup".into(), json!(spec.group.as_str()));
    Tool::new(
        spec.name,
        spec.description.clone(),
        spec.input_schema.clone(),
    )
    .with_raw_output_schema(spec.output_schema.clone())
    .with_annotations(
        ToolAnnotations::new()
            .read_only(spec.is_passive_read())
            .destructive(role == "lifecycle")
            .idempotent(idempotent)
            .open_world(false),
    )
    .with_meta(MetaObject(meta))
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        let mut capabilities = ServerCapabilities::default();
        capabilities.tools = Some(Default::default());
        InitializeResult::new(capabilities)
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_instructions(
                "Durable Codex worker. Start with codex_health_summary; submit work with codex_submit_task \
                 (wait_seconds returns a quick task's result inline), then follow the returned operationId \
                 with codex_wait, which returns when the work ends or needs you (an approval, a plan).",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items((*self.tools).clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = CallContext::from_request(&context);
        let payload = self.call(&request.name, request.arguments, &ctx).await;
        let ok = payload.get("ok").and_then(Value::as_bool).unwrap_or(false);
        // The same JSON as text too, for clients that read only `content`.
        let text = payload.to_string();
        let mut result = if ok {
            CallToolResult::success(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::error(vec![ContentBlock::text(text)])
        };
        result.structured_content = Some(payload);
        Ok(result.into())
    }
}
