//! World `repair`: turn a finding into steps the host may execute (in dry-run mode by default).
//!
//! Implement [`Repair`] for a struct that is your configuration and hand it to
//! [`export_repair!`](crate::export_repair).

use serde::de::DeserializeOwned;

pub use crate::bindings::repair::exports::codex_control_plane::plugin::repair_plugin::{
    Guest, ProcedureStep, RepairAction, RepairContext, RepairStep,
};
pub use crate::types::{Finding, Severity};

/// A repair plugin.
pub trait Repair: DeserializeOwned {
    /// Plans the repair of one finding; an empty plan means "nothing to do".
    fn plan(&self, finding: &Finding, context: &RepairContext) -> Vec<RepairStep>;
}

/// `plan` of the exported repair plugin. A configuration that does not load fails the call after
/// logging why: an empty plan would claim there is nothing to do.
#[doc(hidden)]
pub fn plan<R: Repair>(finding: Finding, context: RepairContext) -> Vec<RepairStep> {
    match crate::config::load::<R>() {
        Ok(repair) => repair.plan(&finding, &context),
        Err(error) => {
            crate::host::error(&error.to_string());
            panic!("{error}");
        }
    }
}

/// Exports a [`Repair`](crate::repair::Repair) implementation as the plugin's `repair` world
/// (exports only in `wasm32` builds).
#[macro_export]
macro_rules! export_repair {
    ($repair:ty) => {
        const _: () = {
            struct SdkRepairExport;

            impl $crate::repair::Guest for SdkRepairExport {
                fn plan(
                    finding: $crate::repair::Finding,
                    context: $crate::repair::RepairContext,
                ) -> ::std::vec::Vec<$crate::repair::RepairStep> {
                    $crate::repair::plan::<$repair>(finding, context)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::bindings::repair::export!(SdkRepairExport with_types_in $crate::bindings::repair);
        };
    };
}
