//! Key-based secret redaction for payloads the store journals (app-server frames, interaction params).

use serde_json::{Map, Value};

/// Object keys whose values are never stored: any key containing one of these (case-insensitive).
const SECRET_KEY_MARKERS: [&str; 9] = [
    "token",
    "secret",
    "password",
    "apikey",
    "api_key",
    "authorization",
    "cookie",
    "credential",
    "private_key",
];

/// The replacement for a redacted value.
pub const REDACTED: &str = "[redacted]";

/// `value` with the values of secret-looking keys replaced by [`REDACTED`], recursively.
pub fn redact_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                let lower = key.to_ascii_lowercase();
                // Token *counts* (tokenUsage, inputTokens) are not secrets.
                let is_count = lower.ends_with("tokens") || lower.contains("tokenusage");
                if !is_count && SECRET_KEY_MARKERS.iter().any(|m| lower.contains(m)) {
                    out.insert(key.clone(), Value::String(REDACTED.to_string()));
                } else {
                    out.insert(key.clone(), redact_secrets(child));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact_secrets).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_go_counts_stay() {
        let input = json!({"params": {"apiKey": "sk-1", "headers": [{"Authorization": "Bearer x"}],
                           "tokenUsage": {"inputTokens": 5}, "refresh_token": "r", "text": "hello"}});
        let out = redact_secrets(&input);
        assert_eq!(out["params"]["apiKey"], REDACTED);
        assert_eq!(out["params"]["headers"][0]["Authorization"], REDACTED);
        assert_eq!(out["params"]["refresh_token"], REDACTED);
        assert_eq!(out["params"]["tokenUsage"]["inputTokens"], 5);
        assert_eq!(out["params"]["text"], "hello");
    }
}
