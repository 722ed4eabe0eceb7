//! Strict `output_schema` validation (seed §f): Codex structured output needs closed objects with every property
//! required, so a schema that would be rejected at turn time is refused at submit time instead.

use serde_json::Value;

use super::canonical::canonical_json;
use super::prompt::sha256_hex;

/// Largest accepted schema, in characters of its compact JSON (the seed's bound).
pub const MAX_OUTPUT_SCHEMA_CHARS: usize = 50_000;

/// Why a schema was refused; `pointer` is the JSON pointer of the offending node (`""` is the root).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output_schema{pointer}: {message}")]
pub struct OutputSchemaError {
    /// JSON pointer of the offending node.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

fn refuse(pointer: &str, message: impl Into<String>) -> OutputSchemaError {
    OutputSchemaError {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// Validates `schema` and returns its hash (sha256 hex of the canonical JSON, first 32 chars).
pub fn validate_output_schema(schema: &Value) -> Result<String, OutputSchemaError> {
    let Value::Object(map) = schema else {
        return Err(refuse("", "must be a JSON object"));
    };
    if map.is_empty() {
        return Err(refuse("", "must not be empty"));
    }
    let text = canonical_json(schema);
    let n_chars = text.chars().count();
    if n_chars > MAX_OUTPUT_SCHEMA_CHARS {
        return Err(refuse(
            "",
            format!("is {n_chars} characters; the limit is {MAX_OUTPUT_SCHEMA_CHARS}"),
        ));
    }
    check_node(schema, "")?;
    Ok(output_schema_hash(schema))
}

/// The schema hash without validation.
pub fn output_schema_hash(schema: &Value) -> String {
    sha256_hex(canonical_json(schema))[..32].to_string()
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn is_object_node(map: &serde_json::Map<String, Value>) -> bool {
    let typed_object = match map.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => false,
    };
    typed_object || map.contains_key("properties")
}

fn check_node(node: &Value, pointer: &str) -> Result<(), OutputSchemaError> {
    let Value::Object(map) = node else {
        // Boolean schemas and other scalars have no object nodes inside.
        return Ok(());
    };
    if is_object_node(map) {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(refuse(
                pointer,
                "object nodes need \"additionalProperties\": false",
            ));
        }
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                return Err(refuse(
                    &format!("{pointer}/required"),
                    "must be an array of strings",
                ))
            }
        };
        if let Some(properties) = map.get("properties") {
            let Value::Object(properties) = properties else {
                return Err(refuse(
                    &format!("{pointer}/properties"),
                    "must be an object",
                ));
            };
            for key in properties.keys() {
                if !required.contains(&key.as_str()) {
                    return Err(refuse(
                        &format!("{pointer}/properties/{}", pointer_token(key)),
                        format!("property {key:?} must be listed in \"required\""),
                    ));
                }
            }
        }
    }
    // Walk every place a sub-schema can sit.
    for key in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get(key) {
            for (name, child) in children {
                check_node(child, &format!("{pointer}/{key}/{}", pointer_token(name)))?;
            }
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(children)) = map.get(key) {
            for (idx, child) in children.iter().enumerate() {
                check_node(child, &format!("{pointer}/{key}/{idx}"))?;
            }
        }
    }
    for key in [
        "items",
        "not",
        "additionalProperties",
        "if",
        "then",
        "else",
        "contains",
    ] {
        match map.get(key) {
            Some(child @ Value::Object(_)) => check_node(child, &format!("{pointer}/{key}"))?,
            Some(Value::Array(children)) if key == "items" => {
                for (idx, child) in children.iter().enumerate() {
                    check_node(child, &format!("{pointer}/items/{idx}"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(schema: Value, expect: Result<(), &str>) {
        match (validate_output_schema(&schema), expect) {
            (Ok(hash), Ok(())) => assert_eq!(hash.len(), 32),
            (Err(err), Err(pointer)) => assert_eq!(err.pointer, pointer, "{err}"),
            (got, want) => panic!("schema {schema}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn strict_schemas_pass() {
        check(
            json!({"type": "object", "additionalProperties": false, "required": ["a", "b"],
                   "properties": {"a": {"type": "string"},
                                  "b": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                                        "required": ["c"], "properties": {"c": {"type": "integer"}}}}}}),
            Ok(()),
        );
        // A non-object root schema that is still a JSON object is accepted.
        check(json!({"type": "string"}), Ok(()));
    }

    #[test]
    fn violations_name_the_node() {
        // Not an object, empty.
        check(json!([1]), Err(""));
        check(json!({}), Err(""));
        // Root without additionalProperties:false.
        check(json!({"type": "object", "properties": {}}), Err(""));
        // A property missing from required.
        check(
            json!({"type": "object", "additionalProperties": false, "required": ["a"],
                   "properties": {"a": {"type": "string"}, "b/c": {"type": "string"}}}),
            Err("/properties/b~1c"),
        );
        // A nested object inside array items.
        check(
            json!({"type": "object", "additionalProperties": false, "required": ["list"],
                   "properties": {"list": {"type": "array", "items": {"type": "object", "properties": {}}}}}),
            Err("/properties/list/items"),
        );
        // Inside anyOf and $defs.
        check(
            json!({"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": true}]}),
            Err("/anyOf/1"),
        );
        check(
            json!({"$defs": {"x": {"type": ["object", "null"], "additionalProperties": false,
                                   "properties": {"y": {}}}}}),
            Err("/$defs/x/properties/y"),
        );
    }

    #[test]
    fn size_limit_and_stable_hash() {
        let big = "x".repeat(MAX_OUTPUT_SCHEMA_CHARS);
        check(json!({"type": "string", "description": big}), Err(""));
        let a = json!({"type": "string", "description": "d"});
        let b = json!({"description": "d", "type": "string"});
        assert_eq!(validate_output_schema(&a), validate_output_schema(&b));
    }
}
