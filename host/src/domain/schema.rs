//! A JSON Schema subset validator: tool arguments against the tool's own `inputSchema` (`mcp`), and a plugin's
//! settings against the `config_schema` its manifest declares (`plugins`). Pure, so both layers may name it.
//!
//! The server we replace declared schemas but never checked them and clamped out-of-range integers; we check
//! every call against the schema the client was shown, so the published contract and the enforced one cannot
//! drift apart. Only the JSON Schema (2020-12) keywords listed in [`SUPPORTED_KEYWORDS`] are understood; a
//! schema using anything else fails the catalog test, not a user's call.
//!
//! What is checked, keyword by keyword:
//!
//! - `type` (one name or a list): `integer` accepts any number without a fractional part (`1.0` too).
//! - `enum`, `const`: numbers compare by mathematical value (`1` equals `1.0`), everything else structurally,
//!   recursively inside arrays and objects; object key order does not matter.
//! - `minimum`, `maximum` (inclusive); `minLength`, `maxLength` in Unicode code points; `minItems`,
//!   `maxItems`; `minProperties`, `maxProperties`.
//! - `pattern`: ECMA-262 regular expression, unanchored (see [`pattern`] for how it runs on the `regex` crate).
//! - `properties`, `required`, `additionalProperties` (`false` refuses unknown names, a schema checks them);
//!   `items` (one schema for every element).
//! - `anyOf`: at least one branch matches; `oneOf`: exactly one branch matches (none, or two or more, is a
//!   violation naming the field).
//!
//! Annotations only, never checked: `format` (as JSON Schema 2020-12 specifies by default; no input schema
//! of ours uses it, and the catalog test keeps it that way until a format is checked here), `default` (filled
//! in by [`apply_defaults`], not validated), `description`, `title`, `$schema`.
//!
//! Every violation names the offending argument by its path, so the caller gets one `INVALID_ARGUMENT` with
//! `details.field` it can act on.

mod keywords;
pub mod pattern;

pub use keywords::unsupported_keywords;

use serde_json::{Map, Number, Value};

/// Keywords this validator understands (checked or known annotations); the catalog test rejects schemas using
/// others.
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

/// [`validate`] for a schema held as an object (a tool's input schema), without wrapping it in a [`Value`].
pub fn validate_with(schema: &Map<String, Value>, value: &Value) -> Result<(), SchemaViolation> {
    check_keywords(schema, value, &mut String::new())
}

/// Fills top-level defaults declared in an object schema into `args` for properties the caller left out, so
/// handlers see one complete argument object.
pub fn apply_defaults(schema: &Map<String, Value>, args: &mut Map<String, Value>) {
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
    match schema.as_object() {
        Some(schema) => check_keywords(schema, value, path),
        // `true`/absent schemas accept anything.
        None => Ok(()),
    }
}

fn check_keywords(
    schema: &Map<String, Value>,
    value: &Value,
    path: &mut String,
) -> Result<(), SchemaViolation> {
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
        if !json_equal(constant, value) {
            return Err(violation(path, format!("must be {constant}")));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.iter().any(|option| json_equal(option, value)) {
            let listed: Vec<String> = options.iter().map(Value::to_string).collect();
            return Err(violation(
                path,
                format!("{value} is not one of {}", listed.join(", ")),
            ));
        }
    }
    if let Some(Value::Array(branches)) = schema.get("anyOf") {
        if let Err(closest) = first_match(branches, value, path) {
            return Err(violation(
                path,
                format!("does not match any allowed shape ({closest})"),
            ));
        }
    }
    if let Some(Value::Array(branches)) = schema.get("oneOf") {
        match first_match(branches, value, path) {
            Err(closest) => {
                return Err(violation(
                    path,
                    format!("does not match any allowed shape ({closest})"),
                ));
            }
            Ok(first) => {
                let also = branches[first + 1..]
                    .iter()
                    .position(|b| check(b, value, &mut path.clone()).is_ok());
                if let Some(offset) = also {
                    return Err(violation(
                        path,
                        format!(
                            "matches more than one allowed shape (#{} and #{}); exactly one must match",
                            first + 1,
                            first + offset + 2
                        ),
                    ));
                }
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
            if let Some(expr) = schema.get("pattern").and_then(Value::as_str) {
                match pattern::is_match(expr, text) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(violation(path, format!("must match the pattern {expr}")));
                    }
                    // Our own specs are compiled by the catalog test, so this is a build defect; refusing keeps
                    // an unchecked argument from reaching a handler.
                    Err(err) => {
                        return Err(violation(path, format!("cannot be checked: {err}")));
                    }
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

/// Index of the first branch `value` matches, or else the violation of the branch that came closest, to
/// explain why none did: a branch whose tag (`enum`/`const` property such as `type`) the value carries beats
/// one whose tag it lacks, then the deepest violation wins.
fn first_match(branches: &[Value], value: &Value, path: &str) -> Result<usize, String> {
    let mut closest: Option<((bool, usize), SchemaViolation)> = None;
    for (idx, branch) in branches.iter().enumerate() {
        let mut scratch = path.to_string();
        match check(branch, value, &mut scratch) {
            Ok(()) => return Ok(idx),
            Err(err) => {
                let rank = (!rejects_tag(branch, value), depth(&err.field));
                if closest.as_ref().is_none_or(|(best, _)| rank > *best) {
                    closest = Some((rank, err));
                }
            }
        }
    }
    Err(match closest {
        Some((_, err)) if err.field.is_empty() => err.message,
        Some((_, err)) => format!("{}: {}", err.field, err.message),
        None => "no shape is allowed".to_string(),
    })
}

/// True when `value` has a property that `branch` pins with `enum` or `const` to something else.
fn rejects_tag(branch: &Value, value: &Value) -> bool {
    let (Some(properties), Some(object)) = (
        branch.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) else {
        return false;
    };
    properties.iter().any(|(name, property)| {
        let pinned = property.get("enum").is_some() || property.get("const").is_some();
        pinned
            && object
                .get(name)
                .is_some_and(|v| check(property, v, &mut String::new()).is_err())
    })
}

/// Nesting depth of a violation path (`a.b[2]` is 3).
fn depth(field: &str) -> usize {
    if field.is_empty() {
        0
    } else {
        1 + field.matches(['.', '[']).count()
    }
}

/// JSON equality as JSON Schema defines it for `enum` and `const`: numbers by mathematical value, the rest
/// structurally.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    match (exact_integer(x), exact_integer(y)) {
        // Integers compare exactly, so 2^53 + 1 is not equal to 2^53 after a round trip through f64.
        (Some(a), Some(b)) => a == b,
        _ => x.as_f64().zip(y.as_f64()).is_some_and(|(a, b)| a == b),
    }
}

/// The number as an integer when it has no fractional part (`1` and `1.0` alike).
fn exact_integer(number: &Number) -> Option<i128> {
    if let Some(int) = number.as_i64() {
        return Some(int.into());
    }
    if let Some(uint) = number.as_u64() {
        return Some(uint.into());
    }
    let float = number.as_f64()?;
    // Every integral f64 below 2^127 converts to i128 exactly; larger ones compare as floats.
    (float.fract() == 0.0 && float.abs() < 1.0e38).then_some(float as i128)
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
        let schema = schema();
        apply_defaults(schema.as_object().expect("object schema"), &mut args);
        assert_eq!(args.get("limit"), Some(&json!(3)));
        assert_eq!(args.get("mode"), Some(&json!("a")));
    }

    #[test]
    fn one_of_needs_exactly_one_branch() {
        let schema = json!({"type": "object", "properties": {"n": {"oneOf": [
            {"type": "integer", "maximum": 10},
            {"type": "number", "minimum": 5}
        ]}}});
        assert_eq!(validate(&schema, &json!({"n": 2})), Ok(()));
        assert_eq!(validate(&schema, &json!({"n": 20.5})), Ok(()));
        let both = validate(&schema, &json!({"n": 7})).expect_err("ambiguous");
        assert_eq!(both.field, "n");
        assert!(both.message.contains("more than one"), "{both:?}");
        let none = validate(&schema, &json!({"n": "7"})).expect_err("no branch");
        assert_eq!(none.field, "n");
        assert!(none.message.contains("does not match any"), "{none:?}");
    }

    #[test]
    fn no_matching_branch_explains_the_closest_one() {
        let schema = json!({"type": "array", "items": {"oneOf": [
            {"type": "object", "required": ["type", "url"], "properties": {"type": {"enum": ["image"]}}},
            {"type": "object", "required": ["type", "path"], "properties": {"type": {"enum": ["localImage"]}}}
        ]}});
        let err = validate(&schema, &json!([{"type": "image"}])).expect_err("url missing");
        assert_eq!(err.field, "[0]");
        assert!(err.message.contains("[0].url: is required"), "{err:?}");
    }

    #[test]
    fn enum_and_const_compare_numbers_by_value() {
        let schema = json!({"type": "object", "properties": {
            "level": {"enum": [1, 2.5, "x", null]},
            "pair": {"const": {"a": [1, {"b": 2}]}}
        }});
        assert_eq!(validate(&schema, &json!({"level": 1.0})), Ok(()));
        assert_eq!(validate(&schema, &json!({"level": 2.5})), Ok(()));
        assert_eq!(
            validate(&schema, &json!({"pair": {"a": [1.0, {"b": 2.0}]}})),
            Ok(())
        );
        let err = validate(&schema, &json!({"level": 1.5})).expect_err("not listed");
        assert_eq!(err.field, "level");
        let err = validate(&schema, &json!({"pair": {"a": [1, {"b": 2}, 3]}})).expect_err("longer");
        assert_eq!(err.field, "pair");
        assert!(!json_equal(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(json_equal(&json!(-3), &json!(-3.0)));
        assert!(!json_equal(&json!("1"), &json!(1)));
        assert!(!json_equal(&json!(true), &json!(1)));
    }

    #[test]
    fn pattern_is_checked_and_names_the_field() {
        let schema = json!({"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+\\d?$"}}
        }});
        assert_eq!(validate(&schema, &json!({"tags": ["ab", "c1"]})), Ok(()));
        let err = validate(&schema, &json!({"tags": ["ab", "C1"]})).expect_err("uppercase");
        assert_eq!(err.field, "tags[1]");
        assert!(err.message.contains("must match the pattern"), "{err:?}");
        let broken = json!({"type": "string", "pattern": "(?<=a)b"});
        let err = validate(&broken, &json!("ab")).expect_err("refused, not skipped");
        assert!(err.message.contains("invalid pattern"), "{err:?}");
    }

    #[test]
    fn format_is_an_annotation() {
        let schema = json!({"type": "string", "format": "date-time"});
        assert_eq!(validate(&schema, &json!("not a date")), Ok(()));
    }
}
