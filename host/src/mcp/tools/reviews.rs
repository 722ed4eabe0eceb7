//! `codex_start_review_workflow`: a review through the `review-workflow` plugin (or the workflow plugin named by
//! `workflow_plugin`), on the caller's thread or a fresh service thread.

use serde_json::{json, Value};

use super::workflows::{
    effective_approval, start, workflow_payload, WorkflowRequest, REVIEW_PLUGIN,
};
use crate::app::App;
use crate::engine::request::RequestError;
use crate::engine::workflows::review_target_json;
use crate::mcp::args::Args;
use crate::mcp::error::ToolError;
use crate::plugins::types::{ReviewCommit, ReviewTarget};

/// The `review/start` target of a `codex_start_review_workflow` call.
fn review_target(args: &Args) -> Result<Value, ToolError> {
    let needed = |key: &str| {
        args.str(key)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                ToolError::invalid_argument(key, format!("{key} is required for this target_type"))
            })
    };
    let target = match args.required_str("target_type")? {
        "uncommitted_changes" => ReviewTarget::UncommittedChanges,
        "base_branch" => ReviewTarget::BaseBranch(needed("base_branch")?),
        "commit" => ReviewTarget::Commit(ReviewCommit {
            sha: needed("commit_sha")?,
            title: args.string("commit_title"),
        }),
        "custom" => ReviewTarget::Custom(needed("instructions")?),
        other => {
            return Err(ToolError::invalid_argument(
                "target_type",
                format!("unknown target type {other}"),
            ))
        }
    };
    Ok(review_target_json(&target))
}

/// Handler of `codex_start_review_workflow`: a review on the given thread (`delivery: inline`) or on a
/// fresh service thread (`detached`, the default when a thread is given, and the only way without one).
pub async fn start_review(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let target = review_target(args)?;
    let thread_id = args.string("thread_id");
    let project = match args.str("project_id") {
        Some(reference) => Some(
            app.projects
                .resolve(reference)
                .map_err(|err| ToolError::from(RequestError::Project(err)))?,
        ),
        None => None,
    };
    let cwd = match (args.str("cwd"), &project) {
        (Some(cwd), _) => {
            let path = crate::config::normalize_path(std::path::Path::new(cwd));
            app.projects
                .for_cwd(&path)
                .map_err(|err| ToolError::from(RequestError::Project(err)))?;
            path
        }
        (None, Some(project)) => project.root_path.clone(),
        (None, None) if thread_id.is_some() => app.config.projects_root.clone(),
        (None, None) => {
            return Err(ToolError::invalid_argument(
                "project_id",
                "a review needs thread_id, project_id or cwd",
            ))
        }
    };
    let delivery = args.string("delivery").unwrap_or_else(|| {
        if thread_id.is_some() {
            "detached"
        } else {
            "inline"
        }
        .to_string()
    });
    let sandbox = if args.was_provided("sandbox") {
        args.str("sandbox").map(str::to_string)
    } else {
        Some(app.config.default_sandbox.as_str().to_string())
    };
    let approval = if args.was_provided("approval_policy") {
        args.str("approval_policy").and_then(effective_approval)
    } else {
        Some(app.config.default_approval_policy.as_str().to_string())
    };
    let review_thread = if delivery == "inline" {
        thread_id.clone()
    } else {
        None
    };
    let input = json!({
        "threadId": review_thread,
        "cwd": cwd.display().to_string(),
        "instructions": args.str("instructions"),
        "model": args.str("model").map(str::to_string).or_else(|| app.config.default_model.clone()),
        "sandbox": sandbox,
        "approvalPolicy": approval,
        "target": target,
        "delivery": delivery,
    });
    let plugin_id = args
        .string("workflow_plugin")
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| REVIEW_PLUGIN.to_string());
    let mut fingerprint_material = input.clone();
    fingerprint_material["workflowPlugin"] = json!(plugin_id);
    let runtime_policy = json!({"requestedSandbox": args.str("sandbox"), "effectiveSandbox": sandbox,
                                   "requestedApprovalPolicy": args.str("approval_policy"),
                                   "effectiveApprovalPolicy": approval});
    let (workflow, created) = start(
        app,
        args,
        WorkflowRequest {
            kind: "code_review",
            plugin_id,
            input,
            fingerprint_material,
            runtime_policy,
            goal: None,
        },
    )
    .await?;
    let mut payload = workflow_payload(app, &workflow, args).await?;
    let actions = engine.store.workflow_actions(&workflow.workflow_id).await?;
    let review_op = actions
        .iter()
        .find(|a| a.action_id == "review")
        .and_then(|a| a.operation_id.clone());
    let op = match &review_op {
        Some(id) => engine.store.get_operation(id).await?,
        None => None,
    };
    payload["idempotent"] = json!(!created);
    payload["reviewOperationId"] = json!(review_op);
    payload["reviewTarget"] = workflow.input["target"].clone();
    payload["reviewDelivery"] = workflow.input["delivery"].clone();
    payload["reviewSourceThreadId"] = json!(thread_id);
    payload["reviewThreadId"] = json!(op.as_ref().and_then(|o| o.thread_id.clone()));
    payload["reviewTurnId"] = json!(op.as_ref().and_then(|o| o.turn_id.clone()));
    Ok(payload)
}
