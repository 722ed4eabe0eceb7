//! The rmcp [`ServerHandler`]: initialize and `server/discover`, `tools/list`, `tools/call`, ping, and the
//! Tasks extension's methods (served by [`super::tasks`]).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    CompleteRequestParams, CompleteResult, ContentBlock, CustomRequest, CustomResult,
    ExtensionCapabilities, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
    Implementation, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, SubscribeRequestParams,
    Tool, UnsubscribeRequestParams, UpdateTaskParams, TASKS_EXTENSION_ID,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use super::args::Args;
use super::call::CallContext;
use super::catalog::Catalog;
use super::conformance;
use super::error::{ErrorCode, ToolError};
use super::schema;
use super::tasks;
use super::tools;
use super::tools_list_reply::{CatalogByTransport, ToolsListReply};
use crate::app::App;

/// Name announced in `initialize` (the seed's, so client configs and allow-lists keep matching).
pub const SERVER_NAME: &str = "codex-control-plane-mcp";

/// Protocol revisions we serve. Up to 2025-11-25 a session starts with `initialize`; 2026-07-28 has no
/// handshake (each request names its version and client capabilities in `_meta`, `server/discover` answers
/// statelessly), so an `initialize` asking for it is answered with 2025-11-25, the newest that has one.
const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// The tools array of `tools/list`, written at build time from the specs (`published.rs`): stdio writes these
/// bytes as they are.
static PUBLISHED_TOOLS_JSON: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/published_tools.json"));

/// The published tools as rmcp [`Tool`]s, read from [`PUBLISHED_TOOLS_JSON`] on first use: only a transport
/// that hands `tools/list` to rmcp (HTTP) needs them.
fn published_tools() -> Result<&'static Arc<Vec<Tool>>, ErrorData> {
    static TOOLS: OnceLock<Result<Arc<Vec<Tool>>, String>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            serde_json::from_slice(PUBLISHED_TOOLS_JSON)
                .map(Arc::new)
                .map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| ErrorData::internal_error(format!("tools cannot be published: {err}"), None))
}

/// The MCP server: a cheap handle over the shared [`App`].
#[derive(Clone)]
pub struct McpServer {
    app: Arc<App>,
    /// The conformance suite's fixtures are served (test-only switch).
    fixtures: bool,
}

impl McpServer {
    /// Builds the handler over the tools published once per process.
    pub fn new(app: Arc<App>) -> Self {
        let fixtures = app.config.http.conformance_fixtures;
        McpServer { app, fixtures }
    }

    /// The tools this server lists: the published ones, and the fixtures when they are served.
    fn tools(&self) -> Result<Vec<Tool>, ErrorData> {
        let mut tools = (**published_tools()?).clone();
        if self.fixtures {
            tools.extend(conformance::tools());
        }
        Ok(tools)
    }

    /// Parses the catalog on a thread of its own, so a cold start does that work while it opens the database
    /// and loads plugins; the first call that needs it waits only for what is not done yet.
    pub fn prepare_in_background() {
        let spawned = std::thread::Builder::new()
            .name("catalog".to_string())
            .spawn(|| {
                Catalog::get();
            });
        if let Err(err) = spawned {
            tracing::debug!(error = %err, "the catalog is prepared on first use instead");
        }
    }

    /// This server's tools serialised, for a transport that writes `tools/list` answers itself.
    pub fn tools_list_reply(&self) -> Result<ToolsListReply, ErrorData> {
        if !self.fixtures {
            return Ok(ToolsListReply::new(PUBLISHED_TOOLS_JSON));
        }
        let tools = self.tools()?;
        ToolsListReply::serialise(&tools)
            .map(ToolsListReply::new)
            .map_err(|err| {
                ErrorData::internal_error(format!("tools cannot be published: {err}"), None)
            })
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
                if err.code == ErrorCode::DuplicatePromptActive {
                    // Kept in the log ring (WARN) so the analyzers can tell a client that resends a prompt.
                    tracing::warn!(
                        tool = name,
                        code = err.code.as_str(),
                        existing_operation_id = err
                            .details
                            .get("existingOperationId")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or(""),
                        "duplicate prompt refused"
                    );
                }
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
        // Validated in place: the arguments move into a `Value` and back, the catalog's schema is borrowed.
        let arguments = Value::Object(arguments.unwrap_or_default());
        schema::validate_with(&spec.input_schema, &arguments)
            .map_err(|v| ToolError::invalid_argument(&v.field, v.message))?;
        let mut args = match arguments {
            Value::Object(args) => args,
            _ => Map::new(),
        };
        let provided = args.keys().cloned().collect();
        schema::apply_defaults(&spec.input_schema, &mut args);
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

    /// Method not found unless the conformance fixtures are served: the production server has no resources,
    /// prompts, completions or log level.
    fn fixture(&self, method: &'static str) -> Result<(), ErrorData> {
        if self.fixtures {
            Ok(())
        } else {
            Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                method,
                None,
            ))
        }
    }

    /// The shared state (the Tasks view reads the store's change signal).
    pub(crate) fn app(&self) -> &App {
        &self.app
    }
}

/// A tool payload as MCP returns it: `structuredContent`, the same JSON as one text block for clients that read
/// only `content`, and `isError` when it is not `ok`.
pub(crate) fn tool_result(payload: Value) -> CallToolResult {
    let ok = payload.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let text = payload.to_string();
    let mut result = if ok {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(payload);
    result
}

/// True when the request (its `_meta`, or the session's `initialize`) declared the Tasks extension.
fn declares_tasks(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|caps| caps.supports_tasks())
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        let mut capabilities = ServerCapabilities::default();
        capabilities.tools = Some(Default::default());
        let mut extensions = ExtensionCapabilities::new();
        extensions.insert(TASKS_EXTENSION_ID.to_string(), Default::default());
        capabilities.extensions = Some(extensions);
        if self.fixtures {
            capabilities.resources = Some(Default::default());
            capabilities.prompts = Some(Default::default());
            capabilities.completions = Some(Default::default());
            capabilities.logging = Some(Default::default());
        }
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
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        if context.extensions.get::<CatalogByTransport>().is_some() {
            // The transport writes the tools serialised at start-up around this envelope.
            return Ok(ListToolsResult::with_all_items(Vec::new()));
        }
        Ok(ListToolsResult::with_all_items(self.tools()?))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.fixtures && conformance::is_fixture_tool(&request.name) {
            return conformance::call_tool(&request.name, request.arguments, &context)
                .await
                .map(Into::into);
        }
        let ctx = CallContext::from_request(&context);
        if tasks::is_task_tool(&request.name) && declares_tasks(&context) {
            return Ok(tasks::call(self, &request.name, request.arguments, &ctx).await);
        }
        let payload = self.call(&request.name, request.arguments, &ctx).await;
        Ok(tool_result(payload).into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        tasks::get(self, request, &CallContext::from_request(&context)).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::cancel(self, request, &CallContext::from_request(&context)).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::update(self, request, &CallContext::from_request(&context)).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.fixture("resources/list")?;
        conformance::list_resources()
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.fixture("resources/templates/list")?;
        conformance::list_resource_templates()
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.fixture("resources/read")?;
        conformance::read_resource(&request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // The fixture resources never change, so a subscription has nothing to deliver.
        self.fixture("resources/subscribe")
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture("resources/unsubscribe")
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.fixture("prompts/list")?;
        conformance::list_prompts()
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.fixture("prompts/get")?;
        conformance::get_prompt(&request).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.fixture("completion/complete")?;
        conformance::complete(&request)
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Only the fixtures log to the client; they log at info, which every level but the strictest admits.
        self.fixture("logging/setLevel")
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        match request.method.as_str() {
            // rmcp gates the extension's own methods on the client's declaration; this one likewise.
            // SEP-2663 removed `tasks/result` from the extension on 2026-07-28: there it does not exist.
            "tasks/result"
                if context
                    .protocol_version()
                    .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28) =>
            {
                Err(ErrorData::new(
                    rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                    request.method,
                    None,
                ))
            }
            "tasks/result" if declares_tasks(&context) => {
                tasks::result(self, request.params, &CallContext::from_request(&context)).await
            }
            "tasks/result" => Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            )),
            _ => Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                request.method,
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{MetaObject, ToolAnnotations};

    use crate::mcp::catalog::ToolSpec;

    use super::*;

    /// A catalog tool built through rmcp's own API, independently of `published.rs`.
    fn built_by_rmcp(spec: &ToolSpec) -> Tool {
        let hint = |key: &str| spec.codex_mcp.get(key).and_then(Value::as_str);
        let mut meta = Map::new();
        meta.insert("codexMcp".into(), spec.codex_mcp.clone());
        meta.insert("openclawContractGroup".into(), json!(spec.group.as_str()));
        Tool::new(
            spec.name,
            spec.description.clone(),
            spec.input_schema.clone(),
        )
        .with_raw_output_schema(Arc::new(spec.output_schema.parse().expect("output schema")))
        .with_annotations(
            ToolAnnotations::new()
                .read_only(spec.is_passive_read())
                .destructive(hint("role") == Some("lifecycle"))
                .idempotent(
                    spec.is_passive_read()
                        || matches!(hint("idempotency"), Some("required" | "natural")),
                )
                .open_world(false),
        )
        .with_meta(MetaObject(meta))
    }

    #[test]
    fn the_array_written_at_build_time_is_what_rmcp_writes_for_the_catalog() {
        let by_rmcp: Vec<Tool> = Catalog::get().tools.iter().map(built_by_rmcp).collect();
        let expected = ToolsListReply::serialise(&by_rmcp).expect("serialise");
        assert_eq!(
            std::str::from_utf8(PUBLISHED_TOOLS_JSON).expect("UTF-8"),
            std::str::from_utf8(expected).expect("UTF-8"),
        );
        // HTTP reads the same bytes back into the same tools.
        assert_eq!(**published_tools().expect("published tools"), by_rmcp);
        let destructive: Vec<&str> = by_rmcp
            .iter()
            .filter(|tool| tool.annotations.as_ref().and_then(|a| a.destructive_hint) == Some(true))
            .map(|tool| tool.name.as_ref())
            .collect();
        assert!(
            destructive.contains(&"codex_restart_app_server"),
            "{destructive:?}"
        );
    }
}
