//! Workflows over MCP (plan, review, lifecycle): the real server binary, the real codex app-server, the fake
//! model.

use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_model::Reply;

use crate::harness::{op_id, Harness};

#[test]
fn plan_workflow_plans_waits_for_approval_then_executes_once() {
    let mut h = Harness::start("wf-plan");
    h.model.push([Reply::text(
        "Here is my plan.\n<proposed_plan>\n1. Add the WAL pragma\n2. Add a test\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the storage change", "client_request_id": "wf-1"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["workflowKind"], json!("plan_then_execute"));
    assert_eq!(
        started["runtimePolicy"]["effectiveSandbox"],
        json!("workspace-write"),
        "Plan Mode floor: {started}"
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    assert!(workflow_id.starts_with("wf_"));

    let ready = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) || w["phase"] == json!("plan_ready")
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    assert_eq!(ready["latestPlan"]["valid"], json!(true));
    assert!(
        ready["latestPlan"]["plan"]
            .as_str()
            .unwrap_or_default()
            .contains("Add the WAL pragma"),
        "{ready}"
    );
    assert_eq!(ready["nextRecommendedAction"], json!("execute_plan"));
    // The plan turn ran in plan mode.
    let plan_request = &h.model.requests()[0];
    assert!(
        format!("{:?}", plan_request.body)
            .to_lowercase()
            .contains("plan"),
        "plan mode reached the model"
    );

    // The same key again: the same workflow, no new turn.
    let again = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the storage change", "client_request_id": "wf-1"}),
    );
    assert_eq!(again["workflowId"], json!(workflow_id));
    assert_eq!(again["idempotent"], json!(true));

    h.model.push([Reply::text(
        "Implemented.\n```json\n{\"summary\": \"done\", \"tests\": 1}\n```",
    )]);
    let schema = json!({"type": "object", "properties": {"summary": {"type": "string"}, "tests": {"type": "integer"}},
                        "required": ["summary", "tests"], "additionalProperties": false});
    let approved = h.call(
        "codex_approve_plan",
        json!({"workflow_id": workflow_id, "output_schema": schema}),
    );
    assert_eq!(approved["ok"], json!(true), "{approved}");
    assert_eq!(approved["idempotent"], json!(false));
    assert!(
        approved["approveOperation"]["operationId"].is_string(),
        "{approved}"
    );

    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(done["nextRecommendedAction"], json!("read_final_report"));
    assert_eq!(
        done["finalReport"]["structured"],
        json!({"summary": "done", "tests": 1}),
        "{done}"
    );
    assert_eq!(done["planTurn"]["status"], json!("completed"));
    assert_eq!(done["executionTurn"]["status"], json!("completed"));
    assert!(done["planTurn"]["turnId"].is_string());

    let twice = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(twice["idempotent"], json!(true), "{twice}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        h.model.n_model_calls(),
        2,
        "one plan turn and one execution turn"
    );
}

#[test]
fn a_blocked_plan_fails_the_workflow_and_approval_is_refused() {
    let mut h = Harness::start("wf-blocked");
    h.model.push([Reply::text(
        "I cannot do this: permission denied on the repository.",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan it", "goal": "ship it"}),
    );
    // The goal waits for an execution turn, which a blocked plan never gets.
    assert_eq!(
        started["threadGoal"]["syncState"],
        json!("pending_thread"),
        "{started}"
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let done = h.wait_workflow(&workflow_id, |w| {
        w["terminal"] == json!(true) && w["threadGoal"]["settled"] == json!(true)
    });
    assert_eq!(done["phase"], json!("failed"), "{done}");
    assert_eq!(done["error"]["code"], json!("plan_blocked"), "{done}");
    assert_eq!(done["threadGoal"]["syncState"], json!("cleared"), "{done}");
    assert!(
        done["threadGoal"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("never set"),
        "{done}"
    );
    assert!(done["threadGoal"]["setAt"].is_null(), "{done}");
    let refused = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(
        refused["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{refused}"
    );
    let unknown = h.call(
        "codex_get_workflow_status",
        json!({"workflow_id": "wf_missing"}),
    );
    assert_eq!(unknown["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_plan_mode_question_is_answered_through_pending_interactions() {
    let mut h = Harness::start("wf-question");
    h.model.push([
        Reply::FunctionCall {
            name: "request_user_input".into(),
            arguments: json!({"questions": [{"id": "color", "header": "Color", "question": "Which color should the button be?",
                               "options": [{"label": "Blue", "description": "calm"}, {"label": "Red", "description": "loud"}]}]}),
            call_id: "call_q".into(),
        },
        Reply::text("<proposed_plan>\n1. Paint the button blue\n</proposed_plan>"),
    ]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan the button"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let waiting = h.wait_workflow(&workflow_id, |w| {
        w["status"] == json!("waiting_for_user_input") || w["terminal"] == json!(true)
    });
    assert_eq!(
        waiting["nextRecommendedAction"],
        json!("answer_pending_interaction"),
        "{waiting}"
    );
    let interaction = &waiting["pendingInteractions"][0];
    assert_eq!(interaction["kind"], json!("user_input"), "{interaction}");
    assert!(
        interaction["questions"].to_string().contains("Which color"),
        "{interaction}"
    );
    let id = interaction["interactionId"]
        .as_str()
        .expect("id")
        .to_string();
    let answered = h.call(
        "codex_answer_pending_interaction",
        json!({"interaction_id": id, "answers": {"color": "Blue"}}),
    );
    assert_eq!(
        answered["response"],
        json!({"answers": {"color": {"answers": ["Blue"]}}}),
        "{answered}"
    );
    let ready = h.wait_workflow(&workflow_id, |w| {
        w["phase"] == json!("plan_ready") || w["terminal"] == json!(true)
    });
    assert_eq!(ready["phase"], json!("plan_ready"), "{ready}");
    let texts: Vec<String> = h
        .model
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(
        texts.last().is_some_and(|t| t.contains("Blue")),
        "the answer reached the model"
    );
}

#[test]
fn a_crash_after_approval_never_runs_the_execution_twice() {
    let mut h = Harness::start("wf-crash");
    h.model.push([Reply::text(
        "<proposed_plan>\n1. Do the thing\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a thing"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| w["phase"] == json!("plan_ready"));
    h.model.push([Reply::slow_text(
        &"executing ".repeat(30),
        30,
        Duration::from_millis(100),
    )]);
    let approved = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(approved["ok"], json!(true), "{approved}");
    // Crash while the execution turn may be queued or running.
    h.crash_and_restart(&[]);
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert!(
        ["completed", "orphaned_after_app_server_exit"]
            .contains(&done["phase"].as_str().unwrap_or("")),
        "{done}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        h.model.n_model_calls() <= 2,
        "the execution turn reached the model at most once"
    );
    let again = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(again["idempotent"], json!(true), "{again}");
}

/// The plan turn runs in plan mode, which names a model: had it named none, codex would record an empty model
/// and no later app-server could resume the thread ("No models are available"), so a plan approved after a
/// restart would fail. The execution runs on the thread the new app-server resumed.
#[test]
fn a_plan_approved_after_an_app_server_restart_runs_on_the_resumed_thread() {
    let mut h = Harness::start("wf-restart");
    h.model.push([Reply::text(
        "<proposed_plan>\n1. Do the thing\n</proposed_plan>",
    )]);
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": h.project.display().to_string(), "message": "plan a thing"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| w["phase"] == json!("plan_ready"));
    let restarted = h.call("codex_restart_app_server", json!({}));
    assert_eq!(restarted["ok"], json!(true), "{restarted}");

    h.model.push([Reply::text("Executed the plan.")]);
    let approved = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(approved["ok"], json!(true), "{approved}");
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(h.model.n_model_calls(), 2, "plan turn and execution turn");
}

#[test]
fn archive_unarchive_and_compaction_are_audited_lifecycle_actions() {
    let mut h = Harness::start("lifecycle");
    h.model.push([Reply::slow_text(
        &"long answer ".repeat(20),
        20,
        Duration::from_millis(100),
    )]);
    let op = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "start a thread"})));
    let running = h.wait_for(&op, Duration::from_secs(20), |s| {
        s["status"] == json!("running")
    });
    let thread = running["threadId"].as_str().expect("thread").to_string();
    let busy = h.call("codex_archive_thread", json!({"thread_id": thread}));
    assert_eq!(busy["error"]["code"], json!("CODEX_BUSY"), "{busy}");
    assert_eq!(busy["error"]["details"]["status"], json!("active_turn"));
    h.wait_terminal(&op);

    let archived = h.call("codex_archive_thread", json!({"thread_id": thread}));
    assert_eq!(archived["status"], json!("completed"), "{archived}");
    assert_eq!(archived["threadState"], json!("archived"));
    assert!(archived["actionId"]
        .as_str()
        .unwrap_or_default()
        .starts_with("tla_"));
    let unarchived = h.call("codex_unarchive_thread", json!({"thread_id": thread}));
    assert_eq!(unarchived["status"], json!("completed"), "{unarchived}");

    h.model
        .push([Reply::text("Summary of the conversation so far.")]);
    let compaction = h.call(
        "codex_start_thread_compaction",
        json!({"thread_id": thread}),
    );
    let action_id = compaction["actionId"]
        .as_str()
        .expect("actionId")
        .to_string();
    assert!(
        ["running", "completed"].contains(&compaction["status"].as_str().unwrap_or("")),
        "{compaction}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let status = h.call(
            "codex_get_thread_compaction_status",
            json!({"action_id": action_id, "include_events": true}),
        );
        if status["terminal"] == json!(true) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "compaction did not end: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert!(done["targetTurnId"].is_string(), "{done}");
    // The procedure is the compaction-workflow plugin: its workflow completes with the action.
    let workflow_id = compaction["workflowId"]
        .as_str()
        .unwrap_or_else(|| panic!("no workflowId in {compaction}"))
        .to_string();
    let workflow = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(workflow["phase"], json!("completed"), "{workflow}");
    assert_eq!(workflow["workflowKind"], json!("thread_compaction"));
    assert_eq!(workflow["pluginId"], json!("compaction-workflow"));
    assert_eq!(
        workflow["finalReport"]["structured"],
        json!({"threadId": thread, "lifecycleActionId": action_id, "turnId": done["targetTurnId"]}),
        "{workflow}"
    );
    let unknown = h.call(
        "codex_get_thread_compaction_status",
        json!({"action_id": "tla_missing"}),
    );
    assert_eq!(unknown["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_review_of_uncommitted_changes_reports_through_the_review_workflow() {
    let mut h = Harness::start("wf-review");
    let repo = h.project.clone();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "user.name=t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git runs");
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    std::fs::write(h.project.join("lib.rs"), "fn answer() -> u32 { 42 }\n").expect("write");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "initial"]);
    std::fs::write(h.project.join("lib.rs"), "fn answer() -> u32 { 41 }\n").expect("change");

    h.model.push([Reply::text(
        "The change makes answer() return 41 instead of 42; that looks like a bug.",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "uncommitted_changes"}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["workflowKind"], json!("code_review"));
    assert_eq!(
        started["reviewTarget"],
        json!({"type": "uncommittedChanges"})
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    assert_eq!(done["nextRecommendedAction"], json!("read_review_report"));
    let report = done["finalReport"]["text"].as_str().unwrap_or_default();
    assert!(
        report.contains("41"),
        "the review text is the report: {done}"
    );

    let bad = h.call(
        "codex_start_review_workflow",
        json!({"project_id": project, "target_type": "base_branch"}),
    );
    assert_eq!(bad["error"]["code"], json!("INVALID_ARGUMENT"), "{bad}");
    assert_eq!(bad["error"]["details"]["field"], json!("base_branch"));

    // The change committed on a feature branch: review it against `main`, then as a single commit. Each
    // target reaches app-server, whose review prompt names the branch or the commit.
    git(&["checkout", "-q", "-b", "feature"]);
    git(&["commit", "-q", "-am", "answer is 41"]);
    let sha = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&repo)
        .output()
        .expect("git rev-parse");
    let sha = String::from_utf8_lossy(&sha.stdout).trim().to_string();
    for (args, target, needle) in [
        (
            json!({"target_type": "base_branch", "base_branch": "main"}),
            json!({"type": "baseBranch", "branch": "main"}),
            "main".to_string(),
        ),
        (
            json!({"target_type": "commit", "commit_sha": sha, "commit_title": "answer is 41"}),
            json!({"type": "commit", "sha": sha, "title": "answer is 41"}),
            sha.clone(),
        ),
    ] {
        let mut args = args;
        args["project_id"] = json!(project);
        h.model
            .push([Reply::text("Reviewed: answer() now returns 41.")]);
        let calls_before = h.model.n_model_calls();
        let started = h.call("codex_start_review_workflow", args);
        assert_eq!(started["reviewTarget"], target, "{started}");
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
                .contains("41"),
            "{done}"
        );
        let requests = h.model.requests();
        let review_request = requests
            .iter()
            .filter(|r| r.path.ends_with("/responses"))
            .nth(calls_before)
            .expect("the review reached the model");
        assert!(
            review_request.body.to_string().contains(&needle),
            "the review prompt names {needle}"
        );
    }
}

#[test]
fn execute_plan_is_approve_for_workflows_and_a_turn_for_chats() {
    let mut h = Harness::start("wf-execute-plan");
    h.model.push([Reply::text(
        "<proposed_plan>\n1. Rename the module\n</proposed_plan>",
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan a rename"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| w["phase"] == json!("plan_ready"));
    h.model.push([Reply::text("Renamed.")]);
    let executed = h.call("codex_execute_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(executed["ok"], json!(true), "{executed}");
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(done["phase"], json!("completed"), "{done}");
    let thread = done["threadId"].as_str().expect("thread").to_string();

    h.model.push([Reply::text("Executed on the chat.")]);
    let on_chat = h.call(
        "codex_execute_plan",
        json!({"chat_id": thread, "project_id": project, "message": "Implement the plan again."}),
    );
    assert_eq!(on_chat["operationType"], json!("execute_plan"), "{on_chat}");
    let op = on_chat["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    let finished = h.wait_terminal(&op);
    assert_eq!(
        finished["finalReport"]["text"],
        json!("Executed on the chat."),
        "{finished}"
    );
    let neither = h.call("codex_execute_plan", json!({}));
    assert_eq!(neither["error"]["code"], json!("INVALID_ARGUMENT"));
}

#[test]
fn a_crash_during_planning_orphans_the_workflow_without_a_second_plan_turn() {
    let mut h = Harness::start("wf-crash-planning");
    h.model.push([Reply::slow_text(
        &"thinking about the plan ".repeat(30),
        30,
        Duration::from_millis(100),
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_plan_workflow",
        json!({"project_id": project, "message": "plan slowly"}),
    );
    let workflow_id = started["workflowId"]
        .as_str()
        .expect("workflowId")
        .to_string();
    h.wait_workflow(&workflow_id, |w| {
        w["planTurn"]["status"] == json!("running")
    });
    h.crash_and_restart(&[]);
    let done = h.wait_workflow(&workflow_id, |w| w["terminal"] == json!(true));
    assert_eq!(
        done["phase"],
        json!("orphaned_after_app_server_exit"),
        "{done}"
    );
    assert_eq!(
        done["planTurn"]["status"],
        json!("unknown_after_app_server_exit")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        h.model.n_model_calls() <= 1,
        "the plan turn was never sent twice"
    );
    let refused = h.call("codex_approve_plan", json!({"workflow_id": workflow_id}));
    assert_eq!(
        refused["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{refused}"
    );
}
