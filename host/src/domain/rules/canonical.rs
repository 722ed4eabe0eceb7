//! Canonical JSON (sorted keys, compact) and sha256: the one implementation behind request fingerprints, output
//! schema hashes, the tool surface hash and event keys, and the top-level fields two requests differ in.
//!
//! serde_json keeps insertion order in this workspace (`preserve_order`), so sorting is done here explicitly.
//!
//! `host/build.rs` includes this file to compute the tool surface hash: it names nothing of the crate.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// `value` with every object's keys sorted, recursively.
pub fn canonicalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(map.len());
            for key in keys {
                out.insert(key.clone(), canonicalize(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

/// Compact canonical JSON text of `value`: keys sorted at every level, no insignificant whitespace. Written
/// in one pass, without building the sorted tree.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // Only serde_json's output and ASCII punctuation went in.
    String::from_utf8(out)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// Appends the canonical JSON of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_canonical_map(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// Appends the canonical JSON of an object to `out`.
pub fn write_canonical_map(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by_key(|(key, _)| *key);
    out.push(b'{');
    for (idx, (key, value)) in entries.into_iter().enumerate() {
        if idx > 0 {
            out.push(b',');
        }
        write_canonical_str(key, out);
        out.push(b':');
        write_canonical(value, out);
    }
    out.push(b'}');
}

/// Appends `text` as a JSON string, escaped by serde_json (as `Value::String(text).to_string()` writes it).
pub fn write_canonical_str(text: &str, out: &mut Vec<u8>) {
    write_json(text, out);
}

/// Appends serde_json's compact text of a string or scalar.
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and a string or a `Value` scalar always serialises.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// sha256 hex of the canonical JSON: equal for requests that differ only in key order.
pub fn fingerprint(value: &Value) -> String {
    sha256_hex(canonical_json(value))
}

/// The top-level keys whose values differ between two request objects (a key missing on one side counts as
/// `null`), sorted. Non-objects compare as a whole under the name `"request"`.
pub fn differing_fields(stored: &Value, incoming: &Value) -> Vec<String> {
    let (Value::Object(a), Value::Object(b)) = (stored, incoming) else {
        return if canonicalize(stored) == canonicalize(incoming) {
            Vec::new()
        } else {
            vec!["request".to_string()]
        };
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| {
            let left = a.get(*key).unwrap_or(&Value::Null);
            let right = b.get(*key).unwrap_or(&Value::Null);
            canonicalize(left) != canonicalize(right)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é ü \u{2028} \u{10ffff} \\u0041");
        for text in [every.as_str(), "", "plain", "\"", "a\\b", "\u{7f}"] {
            let mut written = Vec::new();
            write_canonical_str(text, &mut written);
            assert_eq!(
                String::from_utf8_lossy(&written),
                Value::from(text).to_string(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn key_order_does_not_change_the_fingerprint() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"b": 2})));
    }

    #[test]
    fn differing_fields_are_named_and_sorted() {
        let cases = [
            (json!({"m": "x", "p": 1}), json!({"p": 1, "m": "x"}), vec![]),
            (
                json!({"m": "x", "p": 1}),
                json!({"m": "y", "p": 2}),
                vec!["m", "p"],
            ),
            (
                json!({"m": "x"}),
                json!({"m": "x", "extra": true}),
                vec!["extra"],
            ),
            // A key set to null equals a missing key.
            (json!({"m": "x", "t": null}), json!({"m": "x"}), vec![]),
            (json!(1), json!(2), vec!["request"]),
        ];
        for (a, b, expected) in cases {
            assert_eq!(differing_fields(&a, &b), expected, "{a} vs {b}");
        }
    }
}
