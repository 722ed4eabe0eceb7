//! The fixture tools: fixed content of each kind, logging and progress during a call, sampling and
//! elicitation requests to the client, and a tool that needs a capability the client may not have declared.

use std::time::Duration;

use rmcp::model::{
    CallToolResult, ClientCapabilities, CreateMessageRequestParams, ElicitRequestParams,
    LoggingMessageNotificationParam, ProgressNotificationParam, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{json, Map, Value};

use super::{from_json, result, PNG_BASE64, WAV_BASE64};

/// Names and descriptions of the fixture tools.
const TOOLS: &[(&str, &str)] = &[
    ("test_simple_text", "Returns one text block."),
    ("test_image_content", "Returns one PNG image."),
    ("test_audio_content", "Returns one WAV clip."),
    (
        "test_embedded_resource",
        "Returns one embedded text resource.",
    ),
    (
        "test_multiple_content_types",
        "Returns text, an image and an embedded resource.",
    ),
    (
        "test_tool_with_logging",
        "Logs three info messages while it runs.",
    ),
    (
        "test_tool_with_progress",
        "Reports progress 0, 50 and 100 of 100.",
    ),
    ("test_error_handling", "Always fails with a tool error."),
    (
        "test_sampling",
        "Asks the client's model to answer a prompt.",
    ),
    (
        "test_elicitation",
        "Asks the user for a name and an e-mail address.",
    ),
    (
        "test_elicitation_sep1034_defaults",
        "Asks the user for values that all have defaults.",
    ),
    (
        "test_elicitation_sep1330_enums",
        "Asks the user to pick from the five kinds of enum.",
    ),
    (
        "test_missing_capability",
        "Needs the client's sampling capability.",
    ),
    (
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
    ),
];

/// True for a fixture tool's name.
pub fn is_fixture_tool(name: &str) -> bool {
    TOOLS.iter().any(|(tool, _)| *tool == name)
}

/// The fixture tools as `tools/list` shows them.
pub fn tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .filter_map(|(name, description)| {
            let schema = match *name {
                "test_sampling" => json!({"type": "object", "properties": {
                    "prompt": {"type": "string", "description": "The prompt to send"}}, "required": ["prompt"]}),
                "test_elicitation" => json!({"type": "object", "properties": {
                    "message": {"type": "string", "description": "The message to show"}}, "required": ["message"]}),
                "json_schema_2020_12_tool" => json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"}, "email": {"type": "string"}},
                    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                    "then": {"required": ["phone"]},
                    "else": {"required": ["email"]},
                    "additionalProperties": false}),
                _ => json!({"type": "object", "properties": {}}),
            };
            let Value::Object(schema) = schema else {
                return None;
            };
            Some(Tool::new(*name, *description, schema))
        })
        .collect()
}

fn text_result(text: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    result(json!({"content": [{"type": "text", "text": text.into()}]}))
}

/// Runs one fixture tool.
pub async fn call_tool(
    name: &str,
    arguments: Option<Map<String, Value>>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let argument = |key: &str| {
        arguments
            .as_ref()
            .and_then(|args| args.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match name {
        "test_simple_text" => text_result("This is a simple text response for testing."),
        "test_image_content" => result(json!({"content": [
            {"type": "image", "data": PNG_BASE64, "mimeType": "image/png"}]})),
        "test_audio_content" => result(json!({"content": [
            {"type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav"}]})),
        "test_embedded_resource" => result(json!({"content": [{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}]})),
        "test_multiple_content_types" => result(json!({"content": [
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": PNG_BASE64, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
             "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}]})),
        "test_tool_with_logging" => {
            for (i, message) in [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let param: LoggingMessageNotificationParam =
                    from_json(json!({"level": "info", "logger": "conformance", "data": message}))?;
                if let Err(error) = context.peer.notify_logging_message(param).await {
                    tracing::debug!(%error, "log notification not delivered");
                }
            }
            text_result("Tool with logging executed successfully")
        }
        "test_tool_with_progress" => {
            let token = context.meta.get_progress_token();
            for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if let Some(token) = &token {
                    let mut param = ProgressNotificationParam::new(token.clone(), progress);
                    param.total = Some(100.0);
                    if let Err(error) = context.peer.notify_progress(param).await {
                        tracing::debug!(%error, "progress notification not delivered");
                    }
                }
            }
            text_result("Tool with progress executed successfully")
        }
        "test_error_handling" => result(json!({"isError": true, "content": [
            {"type": "text", "text": "This tool intentionally returns an error for testing"}]})),
        "test_sampling" => {
            let prompt = argument("prompt").unwrap_or_default();
            let params: CreateMessageRequestParams = from_json(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100}))?;
            let reply =
                context.peer.create_message(params).await.map_err(|e| {
                    ErrorData::internal_error(format!("sampling failed: {e}"), None)
                })?;
            let reply = serde_json::to_value(&reply).unwrap_or(Value::Null);
            let text = reply
                .pointer("/content/text")
                .or_else(|| reply.pointer("/content/0/text"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            text_result(format!("LLM response: {text}"))
        }
        "test_elicitation" => {
            let message = argument("message").unwrap_or_default();
            let schema = json!({"type": "object", "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]});
            let reply = elicit(context, &message, schema).await?;
            text_result(format!("User response: {reply}"))
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = json!({"type": "object", "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "default": true}}});
            let reply = elicit(context, "Please review the defaults", schema).await?;
            text_result(completed(&reply))
        }
        "test_elicitation_sep1330_enums" => {
            let schema = json!({"type": "object", "properties": {
                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                               "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "items": {"type": "string",
                                  "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"}]}}}});
            let reply = elicit(context, "Please pick from the enums", schema).await?;
            text_result(completed(&reply))
        }
        "json_schema_2020_12_tool" => text_result(format!(
            "Received: {}",
            Value::Object(arguments.clone().unwrap_or_default())
        )),
        "test_missing_capability" => {
            let sampling = context
                .client_capabilities()
                .is_some_and(|caps| caps.sampling.is_some());
            if !sampling {
                return Err(ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_sampling().build(),
                ));
            }
            text_result("The client declared sampling.")
        }
        other => Err(ErrorData::invalid_params(
            format!("unknown conformance fixture tool {other}"),
            None,
        )),
    }
}

/// `elicitation/create` with a form schema; the reply as JSON.
async fn elicit(
    context: &RequestContext<RoleServer>,
    message: &str,
    schema: Value,
) -> Result<Value, ErrorData> {
    let params: ElicitRequestParams =
        from_json(json!({"mode": "form", "message": message, "requestedSchema": schema}))?;
    let reply = context
        .peer
        .create_elicitation(params)
        .await
        .map_err(|e| ErrorData::internal_error(format!("elicitation failed: {e}"), None))?;
    Ok(serde_json::to_value(&reply).unwrap_or(Value::Null))
}

fn completed(reply: &Value) -> String {
    format!(
        "Elicitation completed: action={}, content={}",
        reply["action"].as_str().unwrap_or("unknown"),
        reply.get("content").unwrap_or(&Value::Null)
    )
}
