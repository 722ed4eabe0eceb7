//! Guest-side plumbing shared by the default analyzer plugins: reading the host's snapshot
//! (`analyzer-snapshot/v1`, documented in `docs/arch/plugins.md`) and building findings in the
//! seed's richer shape, carried in the WIT `finding` (`code` = category; title, confidence,
//! evidence and recommended actions in `details`).
//!
//! It knows no WIT types: each plugin turns a [`Hit`] into its generated `finding` with
//! [`Hit::details_json`], so the rules here and in the plugins are plain Rust, tested natively.

use serde_json::{json, Value};

/// The snapshot schema this crate reads.
pub const SNAPSHOT_SCHEMA: &str = "analyzer-snapshot/v1";

/// Work untouched for this long is stale (the seed's 30 minutes).
pub const STALE_AFTER_MS: i64 = 30 * 60_000;

/// How serious a finding is (the WIT `severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Informational.
    Info,
    /// Worth a look.
    Warning,
    /// Something is broken.
    Error,
    /// Something is broken and losing work.
    Critical,
}

/// One finding before it becomes a WIT `finding`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The category (WIT `code`), e.g. `stale_operation`.
    pub category: &'static str,
    /// How serious.
    pub level: Level,
    /// What it is about (an operation, turn, interaction or workflow id; empty when global).
    pub subject: String,
    /// One-line title.
    pub title: String,
    /// The longer explanation (WIT `message`).
    pub message: String,
    /// How sure the rule is, 0..=1.
    pub confidence: f64,
    /// References into the snapshot: `{kind, id}` or `{kind, name}` objects.
    pub evidence: Vec<Value>,
    /// Repair action names or tools that address it, most useful first.
    pub actions: Vec<&'static str>,
}

impl Hit {
    /// A finding of `category` with the given level, title and confidence.
    pub fn new(
        category: &'static str,
        level: Level,
        title: impl Into<String>,
        confidence: f64,
    ) -> Hit {
        let title = title.into();
        Hit {
            category,
            level,
            subject: String::new(),
            message: title.clone(),
            title,
            confidence: confidence.clamp(0.0, 1.0),
            evidence: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// About `subject`.
    pub fn subject(mut self, subject: &str) -> Hit {
        self.subject = subject.to_string();
        self
    }

    /// With a longer message.
    pub fn message(mut self, message: impl Into<String>) -> Hit {
        self.message = message.into();
        self
    }

    /// With one more evidence reference `{kind, id}`.
    pub fn evidence(mut self, kind: &str, id: &str) -> Hit {
        self.evidence.push(json!({"kind": kind, "id": id}));
        self
    }

    /// With recommended actions.
    pub fn actions(mut self, actions: &[&'static str]) -> Hit {
        self.actions.extend_from_slice(actions);
        self
    }

    /// The WIT `details` document: `{title, confidence, evidence, recommendedActions}`.
    pub fn details_json(&self) -> String {
        json!({
            "title": self.title,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "recommendedActions": self.actions,
        })
        .to_string()
    }
}

/// The host's snapshot, read leniently: a missing or malformed part reads as empty, so an
/// analyzer never fails on a snapshot newer than itself.
#[derive(Debug, Clone)]
pub struct Snapshot {
    doc: Value,
}

impl Snapshot {
    /// Parses the snapshot; anything that is not a JSON object reads as an empty snapshot.
    pub fn parse(text: &str) -> Snapshot {
        let doc = serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        Snapshot { doc }
    }

    /// The whole document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// The array at `key` (empty when absent).
    pub fn list(&self, key: &str) -> &[Value] {
        self.doc[key].as_array().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The checks that did not pass.
    pub fn failing_checks(&self) -> impl Iterator<Item = &Value> {
        self.list("checks")
            .iter()
            .filter(|c| matches!(str_of(c, "status"), "warning" | "error"))
    }

    /// The failing check named `name`, if any.
    pub fn failing_check(&self, name: &str) -> Option<&Value> {
        self.failing_checks().find(|c| str_of(c, "name") == name)
    }

    /// The caller's description of the problem, lower-cased ("" when none).
    pub fn problem_text(&self) -> String {
        self.doc["problemText"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
    }

    /// Every log line message, lower-cased.
    pub fn log_messages(&self) -> Vec<String> {
        self.list("logs")
            .iter()
            .filter_map(|l| l["message"].as_str())
            .map(str::to_lowercase)
            .collect()
    }
}

/// The string at `key` of `value` ("" when absent).
pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

/// The integer at `key` of `value` (0 when absent).
pub fn int_of(value: &Value, key: &str) -> i64 {
    value[key].as_i64().unwrap_or(0)
}

/// Whether a row of the snapshot is work that has not ended (the host's `live` flag).
pub fn is_live(row: &Value) -> bool {
    row["live"].as_bool().unwrap_or(false)
}

/// The text of an error object (`{code, message}`) or string, lower-cased.
pub fn error_text(error: &Value) -> String {
    match error {
        Value::String(text) => text.to_lowercase(),
        Value::Object(_) => {
            format!("{} {}", str_of(error, "code"), str_of(error, "message")).to_lowercase()
        }
        _ => String::new(),
    }
}

/// Whether `text` contains any of `needles` (all lower-case).
pub fn mentions_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_snapshot_reads_as_empty() {
        let snapshot = Snapshot::parse("not json");
        assert!(snapshot.list("operations").is_empty());
        assert_eq!(snapshot.problem_text(), "");
        assert!(Snapshot::parse("[1]").list("checks").is_empty());
    }

    #[test]
    fn details_carry_the_seed_fields() {
        let hit = Hit::new("stale_operation", Level::Warning, "stale", 1.5)
            .evidence("operation", "op_1")
            .actions(&["recover_stale_operations"]);
        let details: Value = serde_json::from_str(&hit.details_json()).expect("json");
        assert_eq!(details["confidence"], json!(1.0));
        assert_eq!(details["evidence"][0]["id"], json!("op_1"));
        assert_eq!(
            details["recommendedActions"][0],
            json!("recover_stale_operations")
        );
    }
}
