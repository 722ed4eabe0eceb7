//! World `analyzer`: read the host's snapshot and report findings.
//!
//! Implement [`Analyzer`] for a struct that is your configuration and hand it to
//! [`export_analyzer!`](crate::export_analyzer). The snapshot's fields are specified in the
//! project's `docs/arch/plugins.md` (`analyzer-snapshot/v1`); read them leniently.

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::bindings::analyzer::exports::codex_control_plane::plugin::analyzer_plugin::Guest;
pub use crate::types::{Finding, Severity};

/// An analyzer plugin.
pub trait Analyzer: DeserializeOwned {
    /// Findings about the snapshot (`Value::Null` if the host's text was not JSON), possibly none.
    fn analyze(&self, snapshot: &Value) -> Vec<Finding>;
}

/// Code of the finding an analyzer reports instead of its own when its configuration does not
/// load, so the operator sees the mistake in the analysis itself.
pub const CONFIG_INVALID: &str = "plugin_config_invalid";

/// `analyze` of the exported analyzer.
#[doc(hidden)]
pub fn analyze<A: Analyzer>(snapshot: String) -> Vec<Finding> {
    match crate::config::load::<A>() {
        Ok(analyzer) => {
            let snapshot = serde_json::from_str(&snapshot).unwrap_or(Value::Null);
            analyzer.analyze(&snapshot)
        }
        Err(error) => vec![Finding {
            code: CONFIG_INVALID.to_string(),
            severity: Severity::Error,
            subject: String::new(),
            message: error.to_string(),
            details: None,
        }],
    }
}

/// Exports an [`Analyzer`](crate::analyzer::Analyzer) implementation as the plugin's `analyzer`
/// world (exports only in `wasm32` builds).
#[macro_export]
macro_rules! export_analyzer {
    ($analyzer:ty) => {
        const _: () = {
            struct SdkAnalyzerExport;

            impl $crate::analyzer::Guest for SdkAnalyzerExport {
                fn analyze(
                    snapshot: ::std::string::String,
                ) -> ::std::vec::Vec<$crate::analyzer::Finding> {
                    $crate::analyzer::analyze::<$analyzer>(snapshot)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::bindings::analyzer::export!(SdkAnalyzerExport with_types_in $crate::bindings::analyzer);
        };
    };
}
