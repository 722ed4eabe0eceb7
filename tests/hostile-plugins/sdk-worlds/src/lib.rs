//! One component exporting all four worlds through the guest SDK's macros. Every answer echoes
//! its typed configuration (`label`) and its input, so a test through the host sees that the
//! configuration was read and the call reached the author's trait.

use codex_control_plane_plugin_sdk::analyzer::{Analyzer, Finding, Severity};
use codex_control_plane_plugin_sdk::policy::{ActionRequest, Decision, Policy};
use codex_control_plane_plugin_sdk::repair::{Repair, RepairAction, RepairContext, RepairStep};
use codex_control_plane_plugin_sdk::workflow::{
    complete, Event, Json, Step, Workflow, WorkflowInfo,
};
use codex_control_plane_plugin_sdk::{
    export_analyzer, export_policy, export_repair, export_workflow,
};
use serde::Deserialize;
use serde_json::Value;

/// The configuration: `[config] label = "..."`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Echoed in every answer.
    pub label: String,
}

impl Policy for Probe {
    fn check_action(&self, request: &ActionRequest) -> Decision {
        match request.settings.model.as_deref() {
            Some("sdk-deny") => Decision::deny("sdk_deny", format!("{} denies", self.label)),
            _ => Decision::Allow,
        }
    }
}

impl Analyzer for Probe {
    fn analyze(&self, snapshot: &Value) -> Vec<Finding> {
        vec![Finding {
            code: "sdk_probe".to_string(),
            severity: Severity::Info,
            subject: self.label.clone(),
            message: snapshot["note"].as_str().unwrap_or("no note").to_string(),
            details: None,
        }]
    }
}

impl Repair for Probe {
    fn plan(&self, finding: &Finding, context: &RepairContext) -> Vec<RepairStep> {
        vec![RepairStep {
            id: "cancel".to_string(),
            description: format!("{} dry_run={}", self.label, context.dry_run),
            action: RepairAction::CancelOperation(finding.subject.clone()),
        }]
    }
}

impl Workflow for Probe {
    fn describe(&self) -> WorkflowInfo {
        WorkflowInfo {
            name: self.label.clone(),
            description: "Completes at once with its input.".to_string(),
            input_schema: None,
        }
    }

    fn start(&self, input: Json) -> Step {
        Step {
            state: r#"{"phase":"completed","status":"completed"}"#.to_string(),
            actions: vec![complete(format!("{}: {input}", self.label), None)],
        }
    }

    fn on_event(&self, state: Json, _event: Event) -> Step {
        Step {
            state,
            actions: Vec::new(),
        }
    }
}

export_policy!(Probe);
export_analyzer!(Probe);
export_repair!(Probe);
export_workflow!(Probe);
