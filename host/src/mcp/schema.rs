//! Validation of tool arguments against the tool's own `inputSchema`.
//!
//! The server we replace declared schemas but never checked them and clamped out-of-range integers; we check
//! every call against the schema the client was shown, so the published contract and the enforced one cannot
//! drift apart. Only the JSON Schema keywords our tool schemas use are supported; a schema using anything else
//! fails the catalog test, not a user's call.

use serde_json::{Map, Value};

/// Keywords this validator understands; the catalog test rejects schemas using others.
pub const SUPPORTED_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "items",
    "default",
    "description",
    "title",
    "const",
    "anyOf",
    "oneOf",
    "format",
    "pattern",
    "minProperties",
    "maxProperties",
    "$schema",
];

/// One argument that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Dotted path of the offending argument (`input_items[2].type`); empty for the whole object.
    pub field: String,
    /// What is wrong, in words a client author can act on.
    pub message: String,
}

/// Checks `value` against `schema`, returning the first violation found.
pub fn validate(schema: &Value, value: &Value) -> Result<(), SchemaViolation> {
    check(schema, value, &mut String::new())
}

/// Fills top-level defaults declared in an object schema into `args` for properties the caller left out, so
/// handlers see one complete argument object.
pub fn apply_defaults(schema: &Value, args: &mut Map<String, Value>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        if args.contains_key(name) {
            continue;
        }
        if let Some(default) = property.get("default") {
            args.insert(name.clone(), default.clone());
        }
    }
}

fn violation(path: &str, message: impl Into<String>) -> SchemaViolation {
    SchemaViolation {
        field: path.to_string(),
        message: message.into(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(expected: &str, value: &Value) -> bool {
    match expected {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

fn check(schema: &Value, value: &Value, path: &mut String) -> Result<(), SchemaViolation> {
    let Some(schema) = schema.as_object() else {
        // `true`/absent schemas accept anything.
        return Ok(());
    };
    if let Some(expected) = schema.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| matches_type(t, value)) {
            return Err(violation(
                path,
                format!(
                    "expected {}, got {}",
                    allowed.join(" or "),
                    type_name(value)
                ),
            ));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(violation(path, format!("must be {constant}")));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            let listed: Vec<String> = options.iter().map(Value::to_string).collect();
            return Err(violation(
                path,
                format!("{value} is not one of {}", listed.join(", ")),
            ));
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(keyword) {
            let mut scratch = path.clone();
            if !branches
                .iter()
                .any(|b| check(b, value, &mut scratch).is_ok())
            {
                return Err(violation(path, "does not match any allowed shape"));
            }
        }
    }
    match value {
        Value::Number(number) => {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if number.as_f64().is_some_and(|n| n < min) {
                    return Err(violation(
                        path,
                        format!("must be at least {min}, got {number}"),
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if number.as_f64().is_some_and(|n| n > max) {
                    return Err(violation(
                        path,
                        format!("must be at most {max}, got {number}"),
                    ));
                }
            }
        }
        Value::String(text) => {
            let n_chars = text.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if n_chars < min {
                    return Err(violation(
                        path,
                        format!("must have at least {min} characters"),
                    ));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if n_chars > max {
                    return Err(violation(
                        path,
                        format!("must have at most {max} characters, got {n_chars}"),
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    return Err(violation(path, format!("must have at least {min} items")));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    return Err(violation(
                        path,
                        format!("must have at most {max} items, got {}", items.len()),
                    ));
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (idx, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{idx}]"));
                    check(item_schema, item, path)?;
                    path.truncate(len);
                }
            }
        }
        Value::Object(object) => check_object(schema, object, path)?,
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

fn check_object(
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    path: &str,
) -> Result<(), SchemaViolation> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                return Err(violation(&join(path, name), "is required"));
            }
        }
    }
    for (name, value) in object {
        let child = join(path, name);
        match properties.and_then(|p| p.get(name)) {
            Some(property) => {
                let mut child_path = child;
                check(property, value, &mut child_path)?;
            }
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    return Err(violation(&child, "is not a known argument of this tool"));
                }
                Some(extra @ Value::Object(_)) => {
                    let mut child_path = child;
                    check(extra, value, &mut child_path)?;
                }
                _ => {}
            },
        }
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
        if (object.len() as u64) < min {
            return Err(violation(
                path,
                format!("must have at least {min} properties"),
            ));
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
        if object.len() as u64 > max {
            return Err(violation(
                path,
                format!("must have at most {max} properties"),
            ));
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "name": {"type": ["string", "null"], "maxLength": 5},
                "items": {"type": "array", "maxItems": 2, "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string", "enum": ["image"]}},
                    "required": ["type"],
                    "additionalProperties": false
                }}
            },
            "required": ["mode"],
            "additionalProperties": false
        })
    }

    #[track_caller]
    fn check_err(value: Value, field: &str, needle: &str) {
        let err = validate(&schema(), &value).expect_err("must be refused");
        assert_eq!(err.field, field, "{err:?}");
        assert!(err.message.contains(needle), "{err:?}");
    }

    #[test]
    fn accepts_valid_arguments() {
        let value = json!({"mode": "b", "limit": 50, "name": null, "items": [{"type": "image"}]});
        assert_eq!(validate(&schema(), &value), Ok(()));
    }

    #[test]
    fn out_of_range_is_refused_not_clamped() {
        check_err(json!({"mode": "a", "limit": 51}), "limit", "at most 50");
        check_err(json!({"mode": "a", "limit": 0}), "limit", "at least 1");
    }

    #[test]
    fn wrong_types_unknown_fields_and_enums_are_named() {
        check_err(
            json!({"mode": "a", "limit": "5"}),
            "limit",
            "expected integer",
        );
        check_err(
            json!({"mode": "a", "limt": 5}),
            "limt",
            "not a known argument",
        );
        check_err(json!({"mode": "c"}), "mode", "not one of");
        check_err(json!({}), "mode", "required");
        check_err(json!({"mode": "a", "name": "toolong"}), "name", "at most 5");
    }

    #[test]
    fn nested_paths_are_reported() {
        check_err(
            json!({"mode": "a", "items": [{"type": "image"}, {"type": "video"}]}),
            "items[1].type",
            "not one of",
        );
        check_err(
            json!({"mode": "a", "items": [{"type": "image"}, {"type": "image"}, {"type": "image"}]}),
            "items",
            "at most 2 items",
        );
    }

    #[test]
    fn defaults_fill_missing_arguments_only() {
        let mut args = json!({"limit": 3}).as_object().cloned().unwrap_or_default();
        apply_defaults(&schema(), &mut args);
        assert_eq!(args.get("limit"), Some(&json!(3)));
        assert_eq!(args.get("mode"), Some(&json!("a")));
    }
}
