//! World `policy`: allow, deny or narrow actions before they reach app-server, and answer pending
//! approvals by rule.
//!
//! Implement [`Policy`] for a struct that is your configuration (it is deserialised from the
//! `[config]` table for every call) and hand it to [`export_policy!`](crate::export_policy).

use serde::de::DeserializeOwned;

pub use crate::bindings::policy::exports::codex_control_plane::plugin::policy_plugin::{
    ActionKind, ActionRequest, Answer, AutoAnswer, Decision, Denial, Guest, InputSummary,
    Interaction, Narrowing, PolicyContext,
};
pub use crate::types::{ApprovalPolicy, CollaborationMode, SandboxMode, TurnSettings};

/// The rule named by the denial of a policy whose `[config]` does not load.
pub const CONFIG_INVALID_RULE: &str = "invalid_config";

/// A site policy. Every method has a default that takes no position (allow, leave to a person), so
/// implement only what the policy decides. Every verdict names the rule that produced it (e.g.
/// `"denied_models"`): the host shows it to the client with the plugin's id and keeps it in its audit.
pub trait Policy: DeserializeOwned {
    /// Checks an action before it is sent: allow it, deny it with a reason the client sees
    /// ([`Decision::deny`]), or narrow its settings ([`Decision::narrow`]; `None` fields keep the
    /// request's).
    fn check_action(&self, request: &ActionRequest) -> Decision {
        let _ = request;
        Decision::Allow
    }

    /// Offers a pending approval or question; `None` leaves it to a person, an answer names its rule
    /// ([`Answer::by_rule`]).
    fn on_interaction(&self, interaction: &Interaction) -> Option<AutoAnswer> {
        let _ = interaction;
        None
    }
}

impl Decision {
    /// Refuses the action: `rule` names the policy's rule, `reason` is what the client reads.
    pub fn deny(rule: &str, reason: impl Into<String>) -> Decision {
        Decision::Deny(Denial {
            rule: rule.to_string(),
            reason: reason.into(),
        })
    }

    /// Lets the action through with `settings` instead (start from [`unchanged`]).
    pub fn narrow(rule: &str, settings: TurnSettings) -> Decision {
        Decision::Narrow(Narrowing {
            rule: rule.to_string(),
            settings,
        })
    }
}

impl Answer {
    /// This answer, given by `rule`.
    pub fn by_rule(self, rule: &str) -> AutoAnswer {
        AutoAnswer {
            answer: self,
            rule: rule.to_string(),
        }
    }
}

/// Settings that change nothing: the start of a narrowing, e.g.
/// `TurnSettings { approval_policy: Some(ApprovalPolicy::OnRequest), ..unchanged() }`.
pub fn unchanged() -> TurnSettings {
    TurnSettings {
        cwd: None,
        sandbox: None,
        approval_policy: None,
        model: None,
        effort: None,
        collaboration_mode: None,
    }
}

/// `check-action` of the exported policy. A configuration that does not load denies the action
/// (a policy that cannot read its rules must not let work through) and says why.
#[doc(hidden)]
pub fn check_action<P: Policy>(request: ActionRequest) -> Decision {
    match crate::config::load::<P>() {
        Ok(policy) => policy.check_action(&request),
        Err(error) => {
            crate::host::error(&error.to_string());
            Decision::deny(CONFIG_INVALID_RULE, error.to_string())
        }
    }
}

/// `on-interaction` of the exported policy. A configuration that does not load answers nothing,
/// so a person decides.
#[doc(hidden)]
pub fn on_interaction<P: Policy>(interaction: Interaction) -> Option<AutoAnswer> {
    match crate::config::load::<P>() {
        Ok(policy) => policy.on_interaction(&interaction),
        Err(error) => {
            crate::host::error(&error.to_string());
            None
        }
    }
}

/// Exports a [`Policy`](crate::policy::Policy) implementation as the plugin's `policy` world.
///
/// Invoke it once, at the top level of the plugin crate. The exports exist only in `wasm32`
/// builds (their names are not valid native symbols), so the same crate also builds natively for
/// unit tests.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        const _: () = {
            struct SdkPolicyExport;

            impl $crate::policy::Guest for SdkPolicyExport {
                fn check_action(request: $crate::policy::ActionRequest) -> $crate::policy::Decision {
                    $crate::policy::check_action::<$policy>(request)
                }

                fn on_interaction(
                    interaction: $crate::policy::Interaction,
                ) -> ::core::option::Option<$crate::policy::AutoAnswer> {
                    $crate::policy::on_interaction::<$policy>(interaction)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::bindings::policy::export!(SdkPolicyExport with_types_in $crate::bindings::policy);
        };
    };
}
