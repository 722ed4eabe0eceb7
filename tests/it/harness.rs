//! The harness of the end-to-end tool tests: the real server binary over stdio, the real codex app-server,
//! the fake model. Every tool result is checked against the tool's published `outputSchema`, so the schemas
//! stay honest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_model::FakeModel;
use support::mcp_client::{McpClient, TempDir};
use support::peer::CodexHome;

use crate::mcp_appserver::peer_env;

/// A server under test with its model, home and project.
///
/// Fields drop in declaration order: the server first (it stops its app-server child on stdin EOF), then the
/// directories that process wrote into, then the model it talked to. Removing the codex home while app-server
/// still ran let it recreate files there after the test had cleaned up.
pub struct Harness {
    pub client: McpClient,
    pub dir: TempDir,
    pub _home: CodexHome,
    pub model: FakeModel,
    schemas: HashMap<String, jsonschema::Validator>,
    pub project: PathBuf,
}

impl Harness {
    pub fn start(label: &str) -> Harness {
        Self::start_with(label, &[])
    }

    /// A harness whose server also loads the hostile test plugin as the third-party plugin `folder` with
    /// `manifest`; the returned directory holds the plugin and must outlive the harness.
    pub fn start_with_hostile_plugin(
        label: &str,
        folder: &str,
        manifest: &str,
    ) -> (TempDir, Harness) {
        let plugins = support::wasm_plugins::test_plugins().expect("test plugins");
        let parent = TempDir::new(&format!("{label}-plugins"));
        support::wasm_plugins::plugin_folder(parent.path(), folder, manifest, &plugins.hostile)
            .expect("plugin folder");
        let dirs = parent.path().display().to_string();
        let harness = Self::start_with(
            label,
            &[("CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS", dirs.as_str())],
        );
        (parent, harness)
    }

    /// [`start`](Self::start) with extra environment for the server (e.g. the scripted fake app-server).
    pub fn start_with(label: &str, extra: &[(&str, &str)]) -> Harness {
        let model = FakeModel::start();
        let home = CodexHome::new(&model);
        let dir = TempDir::new(label);
        let (client, project) = Self::spawn_with(&dir, &home, extra);
        let mut harness = Harness {
            model,
            _home: home,
            dir,
            client,
            schemas: HashMap::new(),
            project,
        };
        harness.load_schemas();
        harness
    }

    pub fn spawn(dir: &TempDir, home: &CodexHome) -> (McpClient, PathBuf) {
        Self::spawn_with(dir, home, &[])
    }

    pub fn spawn_with(
        dir: &TempDir,
        home: &CodexHome,
        extra: &[(&str, &str)],
    ) -> (McpClient, PathBuf) {
        let project = dir.path().join("projects").join("demo");
        std::fs::create_dir_all(&project).expect("project dir");
        let mut env = peer_env(dir, home);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let client = McpClient::start(&env).expect("server starts");
        (client, project)
    }

    /// Kills the server with SIGKILL and starts a new one on the same database, home and model.
    pub fn crash_and_restart(&mut self, extra: &[(&str, &str)]) {
        let placeholder = McpClient::start(&peer_env(&self.dir, &self._home)).expect("placeholder");
        let old = std::mem::replace(&mut self.client, placeholder);
        old.kill();
        let (fresh, _) = Self::spawn_with(&self.dir, &self._home, extra);
        let placeholder = std::mem::replace(&mut self.client, fresh);
        placeholder.kill();
    }

    /// Replaces the client process with a new one on the same database, home and model; the old one closes
    /// its stdin and exits first (as an MCP client ending its session does) before the new one is used.
    pub fn reconnect(&mut self, extra: &[(&str, &str)]) {
        let (fresh, _) = Self::spawn_with(&self.dir, &self._home, extra);
        let old = std::mem::replace(&mut self.client, fresh);
        old.close(Duration::from_secs(15))
            .expect("the old client exits when its stdin closes");
    }

    /// The state database of this harness.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("state").join("state.sqlite3")
    }

    pub fn load_schemas(&mut self) {
        let tools = self
            .client
            .request("tools/list", json!({}))
            .expect("tools/list");
        for tool in tools["tools"].as_array().expect("tools") {
            let name = tool["name"].as_str().expect("name").to_string();
            let validator =
                jsonschema::validator_for(&tool["outputSchema"]).expect("valid output schema");
            self.schemas.insert(name, validator);
        }
    }

    /// Calls a tool and checks its result against the tool's outputSchema.
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let result = self.client.call_tool(tool, args).expect("tool call");
        let validator = self.schemas.get(tool).expect("known tool");
        let errors: Vec<String> = validator
            .iter_errors(&result)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{tool} result breaks its outputSchema: {errors:?}\n{result}"
        );
        result
    }

    pub fn submit(&mut self, args: Value) -> Value {
        let mut args = args;
        if args.get("project_id").is_none() {
            args["project_id"] = json!(self.project.display().to_string());
        }
        self.call("codex_submit_task", args)
    }

    pub fn status(&mut self, operation_id: &str) -> Value {
        self.call(
            "codex_get_operation_status",
            json!({"operation_id": operation_id}),
        )
    }

    /// Polls until `done` holds, or panics after `timeout` with the last status.
    pub fn wait_for(
        &mut self,
        operation_id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status(operation_id);
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting; last status: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_terminal(&mut self, operation_id: &str) -> Value {
        self.wait_for(operation_id, Duration::from_secs(30), |s| {
            s["terminal"] == json!(true)
        })
    }
}

pub fn op_id(payload: &Value) -> String {
    payload["operationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no operationId in {payload}"))
        .to_string()
}

impl Harness {
    pub fn workflow(&mut self, workflow_id: &str) -> Value {
        self.call(
            "codex_get_workflow_status",
            json!({"workflow_id": workflow_id}),
        )
    }

    pub fn wait_workflow(&mut self, workflow_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.workflow(workflow_id);
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "workflow timed out: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Asserts that a tool refused its arguments with `INVALID_ARGUMENT` naming `field`.
pub fn assert_invalid_argument(refused: &Value, field: &str) {
    assert_eq!(
        refused["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "{refused}"
    );
    assert_eq!(
        refused["error"]["details"]["field"],
        json!(field),
        "{refused}"
    );
}
