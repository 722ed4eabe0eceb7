//! The seed's `AgentSafeRedactor` for diagnostics output: secrets (see [`redact`](super::redact)) plus absolute
//! paths, which become `[redacted-path:<basename>:<hash10>]` (the basename keeps a line readable, the hash
//! tells two paths apart without showing where they are).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

use super::canonical::sha256_hex;
use super::redact::{redact_secrets, redact_text};

/// An absolute path: a `/` at the start of the text or after a separator, followed by a name (so `//host` of a
/// URL, a lone `/` and `turn/start` are not paths).
static ABSOLUTE_PATH: LazyLock<Regex> = LazyLock::new(|| {
    // A constant covered by the tests below; a typo fails every test, not a request.
    Regex::new(r#"(^|[\s"'=(,;\[{<])(/[^/\s"'<>(),;\[\]{}`|][^\s"'<>(),;\[\]{}`|]*)"#)
        .expect("path pattern compiles")
});

/// `[redacted-path:<basename>:<hash10>]` for one path.
pub fn redacted_path(path: &str) -> String {
    let trimmed = path.trim_end_matches(['/', '.', ':']);
    let name = trimmed.rsplit('/').next().unwrap_or_default();
    let hash = sha256_hex(trimmed.as_bytes());
    format!("[redacted-path:{name}:{}]", &hash[..10])
}

/// `text` without secrets and absolute paths.
pub fn agent_safe_text(text: &str) -> String {
    let secrets_gone = redact_text(text);
    match ABSOLUTE_PATH.is_match(&secrets_gone) {
        false => secrets_gone.into_owned(),
        true => ABSOLUTE_PATH
            .replace_all(&secrets_gone, |c: &Captures<'_>| {
                format!("{}{}", &c[1], redacted_path(&c[2]))
            })
            .into_owned(),
    }
}

/// `value` without secrets (keys and text) and absolute paths in any string.
pub fn agent_safe_value(value: &Value) -> Value {
    without_paths(redact_secrets(value))
}

fn without_paths(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(paths_only(&text).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(without_paths).collect()),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                out.insert(key, without_paths(child));
            }
            Value::Object(out)
        }
        other => other,
    }
}

fn paths_only(text: &str) -> Cow<'_, str> {
    ABSOLUTE_PATH.replace_all(text, |c: &Captures<'_>| {
        format!("{}{}", &c[1], redacted_path(&c[2]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_secrets_and_mails_go_and_methods_and_urls_stay() {
        let text = "spawn /usr/local/bin/codex failed in cwd=/home/alice/project (key sk-abcdefghijklmnop0123) \
                    for bob@example.com; turn/start at http://127.0.0.1:9/v1";
        let out = agent_safe_text(text);
        assert!(
            !out.contains("/usr/local") && !out.contains("/home/alice"),
            "{out}"
        );
        assert!(
            out.contains("[redacted-path:codex:") && out.contains("cwd=[redacted-path:project:"),
            "{out}"
        );
        assert!(!out.contains("sk-abc") && !out.contains("bob@"), "{out}");
        assert!(
            out.contains("turn/start") && out.contains("http://127.0.0.1:9/v1"),
            "{out}"
        );
        // The same path always gives the same marker, two paths two markers.
        assert_eq!(redacted_path("/a/b"), redacted_path("/a/b"));
        assert_ne!(redacted_path("/a/b"), redacted_path("/c/b"));
    }

    #[test]
    fn values_are_redacted_recursively() {
        let value = json!({"cwd": "/srv/work/demo", "apiKey": "x", "items": ["/tmp/t", 3]});
        let out = agent_safe_value(&value);
        assert!(out["cwd"]
            .as_str()
            .is_some_and(|c| c.starts_with("[redacted-path:demo:")));
        assert_eq!(out["apiKey"], json!(super::super::redact::REDACTED));
        assert!(out["items"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("[redacted-path:t:")));
        assert_eq!(out["items"][1], json!(3));
    }
}
