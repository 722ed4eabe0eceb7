//! Workflow plugins driven by the engine (no app-server): failures stay in their own workflow.

use support::mcp_client::TempDir;

use super::{config, hostile_host};

/// An engine over a fresh store in `temp`, with the default plugins and the hostile one (`limits`), and a
/// runtime to drive it; no app-server is configured, so nothing may reach one.
fn engine_over(
    temp: &TempDir,
    limits: &str,
) -> (
    std::sync::Arc<codex_control_plane::engine::Engine>,
    tokio::runtime::Runtime,
) {
    use codex_control_plane::appserver::{AppServer, AppServerSettings};
    use codex_control_plane::engine::{Engine, EngineSettings};
    use codex_control_plane::store::Store;

    let host = hostile_host(temp, limits);
    let cfg = config(temp.path(), Vec::new());
    let store = Store::open(&temp.path().join("state.sqlite3")).expect("store");
    let appserver = AppServer::new(AppServerSettings::from_config(&cfg));
    let engine = Engine::new(
        store,
        appserver,
        std::sync::Arc::new(host),
        EngineSettings::from_config(&cfg),
        "test".into(),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    (engine, runtime)
}

/// Stores a running operation with turn `turn_busy` on `thread`, as if app-server were running it.
async fn turn_running_on(engine: &codex_control_plane::engine::Engine, thread: &str) {
    use codex_control_plane::store::operations::{InsertOutcome, NewOperation};

    let mut new = NewOperation::new("send_message", serde_json::json!({"message": "m"}));
    new.thread_id = Some(thread.to_string());
    let op = match engine.store.insert_operation(new).await.expect("insert") {
        InsertOutcome::Created { operation, .. } | InsertOutcome::Existing { operation, .. } => {
            operation
        }
    };
    engine
        .store
        .attach_turn(&op.operation_id, "turn_busy", Some(thread))
        .await
        .expect("turn");
    engine
        .store
        .set_status(
            &op.operation_id,
            codex_control_plane::domain::operation::OperationStatus::Running,
        )
        .await
        .expect("running");
}

/// A workflow whose plugin traps or loops fails alone; the engine goes on serving other workflows.
#[test]
fn a_misbehaving_workflow_plugin_fails_only_its_own_workflow() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("hostile-workflow");
    let (engine, runtime) = engine_over(&temp, "fuel = 5_000_000\ntimeout_ms = 200");
    let start = |key: &str, input: serde_json::Value| WorkflowStart {
        kind: "echo".into(),
        plugin_id: "hostile".into(),
        input,
        client_request_id: key.into(),
        request_fingerprint: key.into(),
        runtime_policy: json!({}),
        goal: None,
    };
    for behaviour in ["panic", "loop"] {
        let (workflow, created) = runtime
            .block_on(engine.start_workflow(start(behaviour, json!({"mode": behaviour}))))
            .expect("the engine reports a failed workflow, not an error");
        assert!(created);
        assert_eq!(workflow.phase, "failed", "{behaviour}: {workflow:?}");
        let stored = runtime
            .block_on(engine.store.get_workflow(&workflow.workflow_id))
            .expect("read")
            .expect("row");
        let error = stored.error.expect("error recorded");
        assert_eq!(
            error["code"],
            json!("CODEX_PLUGIN_FAILED"),
            "{behaviour}: {error}"
        );
        assert_eq!(error["plugin"], json!("hostile"));
    }
    // The same plugin, well-behaved input: the workflow runs (its echo completes on the first event).
    let (fine, _) = runtime
        .block_on(engine.start_workflow(start("fine", json!({"mode": "fine"}))))
        .expect("start");
    assert_ne!(fine.phase, "failed", "{fine:?}");
}

#[test]
fn a_workflow_cannot_compact_a_busy_thread() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("busy-compaction");
    let (engine, runtime) = engine_over(&temp, "");
    // A turn is running on the thread.
    runtime.block_on(turn_running_on(&engine, "thr_busy"));
    let (workflow, _) = runtime
        .block_on(engine.start_workflow(WorkflowStart {
            kind: "thread_compaction".into(),
            plugin_id: "compaction-workflow".into(),
            input: json!({"threadId": "thr_busy"}),
            client_request_id: "busy".into(),
            request_fingerprint: "busy".into(),
            runtime_policy: json!({}),
            goal: None,
        }))
        .expect("start");
    // Refused before anything reached app-server (none is configured here): the plugin fails the workflow
    // with the host's code.
    assert_eq!(workflow.phase, "failed", "{workflow:?}");
    let error = workflow.error.expect("error");
    assert_eq!(error["code"], json!("CODEX_BUSY"), "{error}");
    let actions = runtime
        .block_on(engine.store.workflow_actions(&workflow.workflow_id))
        .expect("actions");
    let compact = actions
        .iter()
        .find(|a| a.kind == "compact-thread")
        .expect("journaled");
    assert_eq!(compact.state, "failed");
    assert!(
        compact.output.is_none(),
        "no lifecycle action was recorded: {compact:?}"
    );
}

#[test]
fn a_workflow_interrupt_reports_what_it_interrupted() {
    use codex_control_plane::engine::workflows::WorkflowStart;
    use serde_json::json;

    let temp = TempDir::new("workflow-interrupt");
    let (engine, runtime) = engine_over(&temp, "");
    let start = |key: &str, thread: &str| WorkflowStart {
        kind: "echo".into(),
        plugin_id: "hostile".into(),
        input: json!({"mode": "interrupt", "thread": thread}),
        client_request_id: key.into(),
        request_fingerprint: key.into(),
        runtime_policy: json!({}),
        goal: None,
    };
    let report = |workflow: &codex_control_plane::store::workflows::Workflow| {
        let stored = runtime
            .block_on(engine.store.get_workflow(&workflow.workflow_id))
            .expect("read")
            .expect("row");
        stored.final_report.expect("completed")["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // Nothing runs on the thread: nothing is sent, and the plugin is told so.
    let (idle, _) = runtime
        .block_on(engine.start_workflow(start("idle", "thr_idle")))
        .expect("start");
    let text = report(&idle);
    assert!(text.contains("ActionCompleted"), "{text}");
    assert!(text.contains(r#"\"interrupted\":false"#), "{text}");

    // A turn runs, but no app-server is configured here: app-server's refusal reaches the plugin.
    runtime.block_on(turn_running_on(&engine, "thr_busy"));
    let (busy, _) = runtime
        .block_on(engine.start_workflow(start("busy", "thr_busy")))
        .expect("start");
    let text = report(&busy);
    assert!(text.contains("ActionFailed"), "{text}");
    assert!(text.contains("CODEX_APP_SERVER_UNAVAILABLE"), "{text}");
}
