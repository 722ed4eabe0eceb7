//! Which keywords of a schema the validator does not understand: a schema using one would be checked less
//! than its author thinks, so the catalog test and the plugin loader refuse it instead.

use serde_json::Value;

use super::SUPPORTED_KEYWORDS;

/// Every keyword of `schema` and its subschemas missing from [`SUPPORTED_KEYWORDS`], as `path: keyword`
/// (the path dotted through `properties`, `items`, `additionalProperties` and the `anyOf`/`oneOf` branches).
pub fn unsupported_keywords(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// Collects the unsupported keywords of `schema`, found at `path`, into `out`.
fn walk(schema: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    let at = |suffix: &str| {
        if path.is_empty() {
            suffix.to_string()
        } else {
            format!("{path}.{suffix}")
        }
    };
    for (key, value) in map {
        if !SUPPORTED_KEYWORDS.contains(&key.as_str()) {
            out.push(format!(
                "{}: {key}",
                if path.is_empty() { "/" } else { path }
            ));
        }
        match key.as_str() {
            "properties" => {
                if let Value::Object(props) = value {
                    for (name, prop) in props {
                        walk(prop, &at(name), out);
                    }
                }
            }
            "items" | "additionalProperties" => walk(value, &at(key), out),
            "anyOf" | "oneOf" => {
                if let Value::Array(branches) = value {
                    for (index, branch) in branches.iter().enumerate() {
                        walk(branch, &at(&format!("{key}[{index}]")), out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keywords_are_named_with_their_path() {
        // `patternProperties` inside a property would silently go unchecked; it is reported where it sits, in
        // the schema's order.
        let schema = json!({
            "type": "object",
            "properties": {"roots": {"type": "object", "patternProperties": {}}},
            "anyOf": [{"required": ["roots"]}, {"if": {}}]
        });
        assert_eq!(
            unsupported_keywords(&schema),
            vec![
                "roots: patternProperties".to_string(),
                "anyOf[1]: if".to_string()
            ]
        );
        assert!(unsupported_keywords(&json!({"type": "string", "pattern": "^a"})).is_empty());
    }
}
