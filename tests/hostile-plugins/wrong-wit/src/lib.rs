//! A policy plugin built against `codex-control-plane:plugin@0.9.0` (a copy of
//! 0.1.0 with another version), which the host must refuse.

wit_bindgen::generate!({
    path: "wit",
    world: "policy",
});

use exports::codex_control_plane::plugin::policy_plugin::{
    ActionRequest, Answer, Decision, Guest, Interaction,
};

/// The exported implementation.
struct WrongWit;

impl Guest for WrongWit {
    fn check_action(_request: ActionRequest) -> Decision {
        codex_control_plane::plugin::host::log(
            codex_control_plane::plugin::types::LogLevel::Info,
            "this should never run",
        );
        Decision::Allow
    }

    fn on_interaction(_interaction: Interaction) -> Option<Answer> {
        None
    }
}

// Exports are only emitted for wasm (see the hostile plugin for why).
#[cfg(target_arch = "wasm32")]
export!(WrongWit);
