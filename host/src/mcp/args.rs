//! [`Args`]: a tool's arguments after schema validation, with the schema's defaults filled in and a record of
//! which ones the caller actually sent (some defaults come from the server's config instead of the schema).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::error::ToolError;

/// Validated arguments of one tool call.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: Map<String, Value>,
    provided: BTreeSet<String>,
}

impl Args {
    /// Wraps arguments; `provided` names the keys the caller sent (before defaults were applied).
    pub fn new(values: Map<String, Value>, provided: BTreeSet<String>) -> Args {
        Args { values, provided }
    }

    /// Arguments exactly as given, every key counted as provided (tests, internal calls).
    pub fn from_map(values: Map<String, Value>) -> Args {
        let provided = values.keys().cloned().collect();
        Args { values, provided }
    }

    /// The same arguments with `key` set to `value` (counted as provided): for tools that delegate.
    pub fn with(&self, key: &str, value: Value) -> Args {
        let mut out = self.clone();
        out.values.insert(key.to_string(), value);
        out.provided.insert(key.to_string());
        out
    }

    /// The arguments as stored for another process: every value, and the keys the caller sent.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"arguments": self.values, "provided": self.provided})
    }

    /// The same arguments without `key`: a parameter the MCP layer consumes (such as `wait_seconds`) must not
    /// reach a handler's fingerprint or a stored worker command.
    pub fn without(&self, key: &str) -> Args {
        let mut out = self.clone();
        out.values.remove(key);
        out.provided.remove(key);
        out
    }

    /// A number argument (integer or not), `None` when absent or null.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.value(key).and_then(Value::as_f64)
    }

    /// Arguments stored by [`Args::to_json`].
    pub fn from_json(stored: &Value) -> Args {
        let values = stored
            .get("arguments")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let provided = stored
            .get("provided")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Args { values, provided }
    }

    /// True when the caller sent `key` with a non-null value.
    pub fn was_provided(&self, key: &str) -> bool {
        self.provided.contains(key) && !self.values.get(key).is_none_or(Value::is_null)
    }

    /// The raw value, `None` when absent or null.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// A string argument, `None` when absent, null or blank.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// A string argument, owned.
    pub fn string(&self, key: &str) -> Option<String> {
        self.str(key).map(str::to_string)
    }

    /// A required string argument.
    pub fn required_str(&self, key: &str) -> Result<&str, ToolError> {
        self.str(key)
            .ok_or_else(|| ToolError::invalid_argument(key, "is required"))
    }

    /// A boolean argument (schema defaults make it present).
    pub fn bool(&self, key: &str) -> bool {
        self.value(key).and_then(Value::as_bool).unwrap_or(false)
    }

    /// An integer argument, `None` when absent or null.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.value(key).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        })
    }

    /// An integer argument with a fallback.
    pub fn int_or(&self, key: &str, fallback: i64) -> i64 {
        self.int(key).unwrap_or(fallback)
    }

    /// All values (for fingerprints and echoing back).
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }
}
