//! Running the analyzer plugins on a snapshot: every loaded plugin of the `analyzer` world, in chain order,
//! on the blocking pool. A plugin that fails (a trap, its fuel, deadline or memory) is reported next to the
//! others' findings and never fails the call. Findings come back as plain values so callers above the engine
//! need no plugin types.

use std::time::Instant;

use serde_json::Value;

use super::{Engine, EngineError};
use crate::plugins::types::{Finding, Severity};
use crate::plugins::{CallErrorKind, PluginError};

/// One finding as an analyzer returned it (WIT `finding`, `details` parsed when it is JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct RawFinding {
    /// The category (WIT `code`).
    pub code: String,
    /// `info`, `warning`, `error` or `critical`.
    pub severity: &'static str,
    /// What it is about ("" when global).
    pub subject: String,
    /// The explanation.
    pub message: String,
    /// The details document, when the plugin gave one that parses as JSON.
    pub details: Option<Value>,
}

/// What one analyzer did.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerRun {
    /// Plugin id.
    pub plugin: String,
    /// Its findings, or why it failed: `(kind, message)` with kind `out_of_fuel`, `timeout`,
    /// `memory_limit`, `trap`, `output_too_large`, `invalid_output` or `unavailable`.
    pub outcome: Result<Vec<RawFinding>, (&'static str, String)>,
    /// How long the call took, in milliseconds.
    pub elapsed_ms: u64,
}

impl Engine {
    /// Runs every loaded analyzer on `snapshot` (a JSON document); one report per analyzer.
    pub async fn run_analyzers(&self, snapshot: String) -> Result<Vec<AnalyzerRun>, EngineError> {
        self.with_plugins(move |plugins| {
            let started = Instant::now();
            let reports = plugins.analyze_all(&snapshot);
            tracing::debug!(analyzers = reports.len(), elapsed_ms = %started.elapsed().as_millis(), "analyzers ran");
            reports
        })
        .await
        .map(|reports| {
            reports
                .into_iter()
                .map(|report| {
                    let outcome = match report.result {
                        Ok(findings) => Ok(findings.into_iter().map(raw).collect()),
                        Err(error) => {
                            tracing::warn!(plugin = %report.plugin, %error, "analyzer failed");
                            Err((failure_kind(&error), error.to_string()))
                        }
                    };
                    AnalyzerRun {
                        plugin: report.plugin,
                        outcome,
                        elapsed_ms: report.elapsed_ms,
                    }
                })
                .collect()
        })
    }
}

/// A WIT finding as a plain value.
fn raw(finding: Finding) -> RawFinding {
    RawFinding {
        code: finding.code,
        severity: match finding.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        },
        subject: finding.subject,
        message: finding.message,
        details: finding
            .details
            .and_then(|text| serde_json::from_str(&text).ok()),
    }
}

/// The machine-readable kind of an analyzer's failure.
pub(super) fn failure_kind(error: &PluginError) -> &'static str {
    match error {
        PluginError::Call { kind, .. } => match kind {
            CallErrorKind::OutOfFuel { .. } => "out_of_fuel",
            CallErrorKind::Timeout { .. } => "timeout",
            CallErrorKind::MemoryLimit { .. } => "memory_limit",
            CallErrorKind::Trap { .. } => "trap",
            CallErrorKind::OutputTooLarge { .. } => "output_too_large",
            CallErrorKind::InvalidOutput { .. } => "invalid_output",
            // A capability refusal is a trap of the call; the message names the capability.
            CallErrorKind::CapabilityDenied { .. } => "trap",
            _ => "unavailable",
        },
        _ => "unavailable",
    }
}
