//! The workflow categories of the default analyzers built for real: a plan turn that completed without a plan
//! (`invalid_plan_artifact`), analyzed, recorded, and the retry the diagnosis recommends planned from it.

use serde_json::json;

use super::finding;
use crate::diagnostics::{fake_app_server, start_with};

#[test]
fn a_plan_turn_without_a_plan_is_an_invalid_plan_artifact_and_its_retry_is_planned() {
    // The scripted app-server completes every turn with no items: the plan turn ends without a plan.
    let mut h = start_with("analyze-no-plan", &fake_app_server("normal"));
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "plan nothing"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();
    let ended = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(ended["phase"], json!("failed"), "{ended}");

    let payload = h.call(
        "codex_analyze_issue",
        json!({"workflow_id": workflow_id, "record": true}),
    );
    assert_eq!(payload["ok"], json!(true), "{payload}");
    let invalid = finding(&payload, "invalid_plan_artifact")
        .unwrap_or_else(|| panic!("no invalid_plan_artifact finding: {payload}"));
    assert_eq!(invalid["subject"], json!(workflow_id));
    assert_eq!(
        payload["likelyRootCause"]["category"],
        json!("invalid_plan_artifact"),
        "{payload}"
    );
    let recommended = payload["recommendedRepairActions"].to_string();
    assert!(
        recommended.contains("retry_workflow_with_runtime_policy"),
        "{payload}"
    );

    // The diagnosis scopes the repair it recommends: its dry run plans the retry of exactly this workflow.
    let diagnosis = payload["diagnosisId"].as_str().expect("diagnosisId");
    let dry = h.call(
        "codex_repair_issue",
        json!({"action": "retry_workflow_with_runtime_policy", "diagnosis_id": diagnosis}),
    );
    assert_eq!(dry["result"], json!("planned"), "{dry}");
    assert_eq!(dry["scope"]["workflowId"], json!(workflow_id));
    assert_eq!(dry["steps"][0]["target"], json!(workflow_id));
    assert_eq!(
        dry["after"][0]["retries"],
        json!([format!("repair:retry:{workflow_id}:1")])
    );
}
