//! The fixture resources, resource template, prompts and completions.

use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult,
};
use rmcp::ErrorData;
use serde_json::{json, Value};

use super::{result, PNG_BASE64};

const TEXT_URI: &str = "test://static-text";
const BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

/// `resources/list`: the direct resources.
pub fn list_resources() -> Result<ListResourcesResult, ErrorData> {
    result(json!({"resources": [
        {"uri": TEXT_URI, "name": "static-text", "description": "A static text resource",
         "mimeType": "text/plain"},
        {"uri": BINARY_URI, "name": "static-binary", "description": "A static PNG image",
         "mimeType": "image/png"},
        {"uri": WATCHED_URI, "name": "watched-resource",
         "description": "A resource clients may subscribe to", "mimeType": "text/plain"}]}))
}

/// `resources/templates/list`.
pub fn list_resource_templates() -> Result<ListResourceTemplatesResult, ErrorData> {
    result(json!({"resourceTemplates": [
        {"uriTemplate": "test://template/{id}/data", "name": "template-data",
         "description": "Data for an id", "mimeType": "application/json"}]}))
}

/// `resources/read`; an unknown URI is invalid params naming the URI (SEP-2164).
pub fn read_resource(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = match uri {
        TEXT_URI => json!({"uri": uri, "mimeType": "text/plain",
                           "text": "This is the content of the static text resource."}),
        BINARY_URI => json!({"uri": uri, "mimeType": "image/png", "blob": PNG_BASE64}),
        WATCHED_URI => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."})
        }
        _ => match uri
            .strip_prefix(TEMPLATE_PREFIX)
            .and_then(|rest| rest.strip_suffix(TEMPLATE_SUFFIX))
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => {
                let data =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                json!({"uri": uri, "mimeType": "application/json", "text": data.to_string()})
            }
            None => {
                return Err(ErrorData::invalid_params(
                    "Resource not found",
                    Some(json!({"uri": uri})),
                ))
            }
        },
    };
    result(json!({"contents": [contents]}))
}

/// `prompts/list`.
pub fn list_prompts() -> Result<ListPromptsResult, ErrorData> {
    result(json!({"prompts": [
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments",
         "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource",
         "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed",
                        "required": true}]},
        {"name": "test_prompt_with_image", "description": "A prompt with an image"}]}))
}

/// `prompts/get`.
pub fn get_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResult, ErrorData> {
    let argument = |key: &str| -> Result<String, ErrorData> {
        request
            .arguments
            .as_ref()
            .and_then(|args| args.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ErrorData::invalid_params(format!("missing argument {key}"), None))
    };
    let messages = match request.name.as_str() {
        "test_simple_prompt" => json!([{"role": "user", "content": {"type": "text",
            "text": "This is a simple prompt for testing."}}]),
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (argument("arg1")?, argument("arg2")?);
            json!([{"role": "user", "content": {"type": "text",
                "text": format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")}}])
        }
        "test_prompt_with_embedded_resource" => {
            let uri = argument("resourceUri")?;
            json!([
                {"role": "user", "content": {"type": "resource", "resource": {"uri": uri,
                    "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": {"type": "text",
                    "text": "Please process the embedded resource above."}}])
        }
        "test_prompt_with_image" => json!([
            {"role": "user", "content": {"type": "image", "data": PNG_BASE64, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}]),
        other => {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt {other}"),
                Some(json!({"name": other})),
            ))
        }
    };
    result(json!({"messages": messages}))
}

/// `completion/complete`: a few values that start with what was typed.
pub fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let typed = serde_json::to_value(&request.argument)
        .ok()
        .and_then(|argument| argument["value"].as_str().map(str::to_string))
        .unwrap_or_default();
    let values: Vec<&str> = ["paris", "park", "party", "hello", "world"]
        .into_iter()
        .filter(|value| value.starts_with(typed.as_str()))
        .collect();
    result(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}
