//! Merging what the analyzers found: findings in the seed's shape (WIT `code` = category; title, confidence,
//! evidence and recommended actions read from `details`), one per category and subject, ranked by severity ×
//! confidence; the likely root cause; the repair actions they recommend, by the seed's names. Plugin output is
//! untrusted: texts are redacted and cut, lists are capped, a malformed `details` reads as absent.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::domain::rules::agent_safe::{agent_safe_text, agent_safe_value};
use crate::domain::rules::repairs;
use crate::engine::analyzers::{AnalyzerRun, RawFinding};

/// Most findings taken from one analyzer.
const MAX_FINDINGS_PER_ANALYZER: usize = 100;
/// Most evidence references and recommended actions per finding.
const MAX_REFS: usize = 20;
/// Longest title and message.
const MAX_TITLE_CHARS: usize = 200;
const MAX_MESSAGE_CHARS: usize = 2_000;

/// One merged finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The category.
    pub category: String,
    /// `info`, `warning`, `error` or `critical`.
    pub severity: &'static str,
    /// What it is about ("" when global).
    pub subject: String,
    /// One line.
    pub title: String,
    /// The explanation.
    pub message: String,
    /// 0..=1.
    pub confidence: f64,
    /// Evidence references.
    pub evidence: Vec<Value>,
    /// Recommended actions (repair names or tools), most useful first.
    pub actions: Vec<String>,
    /// The analyzers that reported it.
    pub analyzers: Vec<String>,
}

impl Merged {
    /// Severity × confidence: what ranks the findings.
    pub fn score(&self) -> f64 {
        weight(self.severity) * self.confidence
    }

    /// The wire shape; evidence left out unless asked for.
    pub fn to_json(&self, include_evidence: bool) -> Value {
        json!({
            "category": self.category,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "subject": (!self.subject.is_empty()).then_some(&self.subject),
            "confidence": round(self.confidence),
            "score": round(self.score()),
            "evidence": if include_evidence { self.evidence.clone() } else { Vec::new() },
            "recommendedActions": self.actions,
            "analyzers": self.analyzers,
        })
    }
}

/// The findings of every analyzer that ran, merged and ranked best first.
pub fn merge(runs: &[AnalyzerRun]) -> Vec<Merged> {
    let mut merged: Vec<Merged> = Vec::new();
    for run in runs {
        let Ok(findings) = &run.outcome else { continue };
        for finding in findings.iter().take(MAX_FINDINGS_PER_ANALYZER) {
            let Some(next) = normalise(finding, &run.plugin) else {
                continue;
            };
            match merged
                .iter_mut()
                .find(|m| m.category == next.category && m.subject == next.subject)
            {
                Some(known) => absorb(known, next),
                None => merged.push(next),
            }
        }
    }
    merged.sort_by(|a, b| {
        b.score()
            .total_cmp(&a.score())
            .then_with(|| a.category.cmp(&b.category))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    merged
}

/// The finding of an empty analysis (the seed's `no_obvious_issue`).
pub fn no_obvious_issue() -> Merged {
    Merged {
        category: "no_obvious_issue".to_string(),
        severity: "info",
        subject: String::new(),
        title: "No analyzer found a problem".to_string(),
        message: "no analyzer found a problem in the checks, rows and log lines of this scope"
            .to_string(),
        confidence: 0.5,
        evidence: Vec::new(),
        actions: vec![
            "codex_collect_diagnostics".to_string(),
            "codex_get_diagnostic_logs".to_string(),
        ],
        analyzers: Vec::new(),
    }
}

/// The repair actions the findings recommend, canonical names, best finding first, each once.
pub fn repair_actions(findings: &[Merged]) -> Vec<&'static str> {
    let mut seen = BTreeSet::new();
    findings
        .iter()
        .flat_map(|f| f.actions.iter())
        .filter_map(|a| repairs::canonical(a))
        .filter(|a| seen.insert(*a))
        .collect()
}

/// A plugin's finding in the seed's shape, or `None` when it has no usable category.
fn normalise(finding: &RawFinding, plugin: &str) -> Option<Merged> {
    let category: String = finding
        .code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if category.is_empty() {
        return None;
    }
    let details = finding.details.as_ref().filter(|d| d.is_object());
    let field = |key: &str| details.and_then(|d| d.get(key));
    let message = cut(&agent_safe_text(&finding.message), MAX_MESSAGE_CHARS);
    let title = field("title")
        .and_then(Value::as_str)
        .map(agent_safe_text)
        .unwrap_or_else(|| message.lines().next().unwrap_or("").to_string());
    let confidence = field("confidence")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite())
        .map_or(0.5, |c| c.clamp(0.0, 1.0));
    let evidence = field("evidence")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().take(MAX_REFS).map(agent_safe_value).collect())
        .unwrap_or_default();
    let actions = field("recommendedActions")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_REFS)
                .map(|name| cut(&agent_safe_text(name), 100))
                .collect()
        })
        .unwrap_or_default();
    Some(Merged {
        category,
        severity: finding.severity,
        subject: cut(&agent_safe_text(&finding.subject), 200),
        title: cut(&title, MAX_TITLE_CHARS),
        message,
        confidence,
        evidence,
        actions,
        analyzers: vec![plugin.to_string()],
    })
}

/// Folds a second report of the same category and subject into the first: the graver severity, the higher
/// confidence, the union of evidence, actions and analyzers.
fn absorb(known: &mut Merged, next: Merged) {
    if weight(next.severity) > weight(known.severity) {
        known.severity = next.severity;
        known.title = next.title;
        known.message = next.message;
    }
    known.confidence = known.confidence.max(next.confidence);
    for item in next.evidence {
        if !known.evidence.contains(&item) && known.evidence.len() < MAX_REFS {
            known.evidence.push(item);
        }
    }
    for action in next.actions {
        if !known.actions.contains(&action) && known.actions.len() < MAX_REFS {
            known.actions.push(action);
        }
    }
    for plugin in next.analyzers {
        if !known.analyzers.contains(&plugin) {
            known.analyzers.push(plugin);
        }
    }
}

/// The weight of a severity in the ranking.
fn weight(severity: &str) -> f64 {
    match severity {
        "critical" => 4.0,
        "error" => 3.0,
        "warning" => 2.0,
        _ => 1.0,
    }
}

/// `value` to three decimals (for the wire).
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `text` cut to `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, severity: &'static str, subject: &str, details: Value) -> RawFinding {
        RawFinding {
            code: code.into(),
            severity,
            subject: subject.into(),
            message: format!("{code} about {subject}"),
            details: Some(details),
        }
    }

    fn run(plugin: &str, findings: Vec<RawFinding>) -> AnalyzerRun {
        AnalyzerRun {
            plugin: plugin.into(),
            outcome: Ok(findings),
            elapsed_ms: 1,
        }
    }

    #[test]
    fn findings_rank_by_severity_times_confidence_and_merge_by_subject() {
        let runs = vec![
            run(
                "a",
                vec![
                    finding(
                        "pending_approval",
                        "info",
                        "int_1",
                        json!({"confidence": 0.9}),
                    ),
                    finding(
                        "stale_operation",
                        "warning",
                        "op_1",
                        json!({"confidence": 0.8,
                        "recommendedActions": ["recover_stale_operations"], "evidence": [{"kind": "operation", "id": "op_1"}]}),
                    ),
                ],
            ),
            run(
                "b",
                vec![
                    finding(
                        "app_server_exited",
                        "error",
                        "op_1",
                        json!({"confidence": 0.95,
                        "recommendedActions": ["mark_stale_turns_orphaned", "codex_get_operation_status"]}),
                    ),
                    finding(
                        "stale_operation",
                        "error",
                        "op_1",
                        json!({"confidence": 0.5, "recommendedActions": ["refresh_catalog"]}),
                    ),
                ],
            ),
            AnalyzerRun {
                plugin: "broken".into(),
                outcome: Err(("timeout", "exceeded".into())),
                elapsed_ms: 500,
            },
        ];
        let merged = merge(&runs);
        let order: Vec<&str> = merged.iter().map(|m| m.category.as_str()).collect();
        assert_eq!(
            order,
            ["app_server_exited", "stale_operation", "pending_approval"]
        );
        let stale = &merged[1];
        assert_eq!(stale.severity, "error");
        assert_eq!(stale.confidence, 0.8);
        assert_eq!(stale.analyzers, ["a", "b"]);
        assert_eq!(
            stale.actions,
            ["recover_stale_operations", "refresh_catalog"]
        );
        assert_eq!(
            repair_actions(&merged),
            [
                "mark_orphaned_after_exit",
                "recover_stale_operations",
                "refresh_catalog_and_history"
            ]
        );
        assert_eq!(merged[0].to_json(false)["evidence"], json!([]));
    }

    #[test]
    fn untrusted_output_is_cleaned() {
        let runs = vec![run(
            "third",
            vec![
                finding("", "error", "", json!({})),
                RawFinding {
                    code: "Leak Check!".into(),
                    severity: "warning",
                    subject: "/home/ada/secret".into(),
                    message: "token sk-abcdefghijklmnopqrst1234 at /home/ada/secret".into(),
                    details: Some(json!({"confidence": 7, "title": 3})),
                },
            ],
        )];
        let merged = merge(&runs);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].category, "leakcheck");
        assert_eq!(merged[0].confidence, 1.0);
        let text = merged[0].to_json(true).to_string();
        assert!(
            !text.contains("sk-abcdefghijklmnopqrst1234") && !text.contains("/home/ada"),
            "{text}"
        );
    }
}
