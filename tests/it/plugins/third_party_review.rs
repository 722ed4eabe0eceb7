//! A third-party review workflow built against WIT 0.2 (`tests/hostile-plugins/base-review`): it names the
//! review's target itself (a base branch from its input). Run through the real review tool
//! (`codex_start_review_workflow` with `workflow_plugin`), the real app-server and the fake model, in a git
//! repository with a feature branch over `release-7`: the review/start app-server receives carries the base
//! branch, the model's review prompt names it, and the workflow completes with the review as its report. The
//! review asks for `workspace-write`: the default policy narrows it to read-only by its rule
//! `read_only_review`, which the review operation's `runtimePolicy.policyNarrowing` records.

use serde_json::json;
use support::fake_model::Reply;
use support::mcp_client::TempDir;
use support::wasm_plugins::{plugin_folder, test_plugins, workspace_root};

use crate::harness::Harness;

/// Runs git in `repo` with a fixed identity.
fn git(repo: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "user.name=t",
            "-c",
            "init.defaultBranch=release-7",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_wit_0_2_review_workflow_reviews_the_base_branch_it_names() {
    let wasm = test_plugins().expect("test plugins build").base_review;
    let manifest = std::fs::read_to_string(
        workspace_root().join("tests/hostile-plugins/base-review/plugin.toml"),
    )
    .expect("manifest");
    let parent = TempDir::new("plugins-base-review");
    plugin_folder(parent.path(), "base-review", &manifest, &wasm).expect("plugin folder");
    let dirs = parent.path().display().to_string();
    let mut h = Harness::start_with(
        "plugins-base-review",
        &[("CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS", dirs.as_str())],
    );

    // `release-7` holds the original; `feature` changes it.
    let repo = h.project.clone();
    std::fs::write(repo.join("lib.rs"), "fn answer() -> u32 { 42 }\n").expect("write");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("lib.rs"), "fn answer() -> u32 { 41 }\n").expect("change");
    git(&repo, &["commit", "-q", "-am", "answer is 41"]);

    h.model.push([Reply::text(
        "Reviewed against release-7: answer() now returns 41.",
    )]);
    let calls_before = h.model.n_model_calls();
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "base_branch", "base_branch": "release-7",
               "workflow_plugin": "base-review", "sandbox": "workspace-write"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["pluginId"], json!("base-review"), "{started}");
    let workflow_id = started["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {started}"))
        .to_string();
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert!(
        done["finalReport"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("answer() now returns 41"),
        "{done}"
    );

    // The plugin named the target (the journaled action carries it; a 0.1 action's is null), the review
    // operation's request took it, and the prompt app-server built from the review/start it received names
    // the base branch.
    let review = done["actions"]
        .as_array()
        .and_then(|actions| actions.iter().find(|a| a["actionId"] == json!("review")))
        .and_then(|a| a["operationId"].as_str())
        .unwrap_or_else(|| panic!("no review operation: {done}"))
        .to_string();
    let db = rusqlite::Connection::open(h.db()).expect("open the state db");
    let action: String = db
        .query_row(
            "SELECT action_json FROM codex_workflow_actions WHERE workflow_id = ?1 AND action_id = 'review'",
            [&workflow_id],
            |row| row.get(0),
        )
        .expect("the journaled review action");
    let action: serde_json::Value = serde_json::from_str(&action).expect("action JSON");
    assert_eq!(
        action["target"],
        json!({"type": "baseBranch", "branch": "release-7"}),
        "{action}"
    );
    let request: String = db
        .query_row(
            "SELECT request_json FROM codex_operations WHERE operation_id = ?1",
            [&review],
            |row| row.get(0),
        )
        .expect("the review operation");
    let request: serde_json::Value = serde_json::from_str(&request).expect("request JSON");
    assert_eq!(
        request["target"],
        json!({"type": "baseBranch", "branch": "release-7"}),
        "{request}"
    );
    let status = h.call(
        "codex_get_operation_status",
        json!({"operation_id": review}),
    );
    assert_eq!(
        status["runtimePolicy"]["policyNarrowing"],
        json!({"rules": "default-policy/read_only_review", "sandbox": "read-only",
               "approvalPolicy": null, "model": null}),
        "{status}"
    );
    let requests = h.model.requests();
    let review_request = requests
        .iter()
        .filter(|r| r.path.ends_with("/responses"))
        .nth(calls_before)
        .expect("the review reached the model");
    assert!(
        review_request.body.to_string().contains("release-7"),
        "the review prompt names the base branch"
    );
}
