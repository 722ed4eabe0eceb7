//! Test plugins built for `wasm32-wasip2` at test time: the hostile plugin (every world, misbehaves
//! on request, WIT 0.1), the wrong-WIT plugin (built against `codex-control-plane:plugin@0.9.0`), the
//! SDK plugin (every world through the guest SDK's export macros), the goal-steer workflow (the
//! thread actions `steer-turn`, `set-goal`, `clear-goal` on the SDK) and the base-branch review workflow
//! (WIT 0.2, naming its review target).
//!
//! They are built once per test run with a nested `cargo build` into `target/wasm-test-plugins`
//! (a target directory of their own, so the outer cargo's lock is never contended), then copied
//! into per-test plugin folders with whatever manifest a test needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Paths of the built test components.
#[derive(Debug, Clone)]
pub struct TestPlugins {
    /// `hostile_plugin.wasm`.
    pub hostile: PathBuf,
    /// `wrong_wit_plugin.wasm`.
    pub wrong_wit: PathBuf,
    /// `sdk_worlds_plugin.wasm`: all four worlds through the guest SDK.
    pub sdk_worlds: PathBuf,
    /// `goal_steer_plugin.wasm`: a workflow that steers its turn, sets a goal and clears it.
    pub goal_steer: PathBuf,
    /// `base_review_plugin.wasm`: a third-party review workflow on WIT 0.2 naming its review target.
    pub base_review: PathBuf,
}

/// The workspace root (parent of the tests crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Builds the test plugins once per process and returns their paths.
pub fn test_plugins() -> anyhow::Result<TestPlugins> {
    static BUILT: OnceLock<Result<TestPlugins, String>> = OnceLock::new();
    BUILT
        .get_or_init(build)
        .clone()
        .map_err(|message| anyhow::anyhow!(message))
}

/// Runs the nested build.
fn build() -> Result<TestPlugins, String> {
    let root = workspace_root();
    let target_dir = root.join("target/wasm-test-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args([
            "-p",
            "hostile-plugin",
            "-p",
            "wrong-wit-plugin",
            "-p",
            "sdk-worlds-plugin",
            "-p",
            "goal-steer-plugin",
            "-p",
            "base-review-plugin",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags and the jobserver of an outer build are meant for the host target.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let release = target_dir.join("wasm32-wasip2/release");
    Ok(TestPlugins {
        hostile: release.join("hostile_plugin.wasm"),
        wrong_wit: release.join("wrong_wit_plugin.wasm"),
        sdk_worlds: release.join("sdk_worlds_plugin.wasm"),
        goal_steer: release.join("goal_steer_plugin.wasm"),
        base_review: release.join("base_review_plugin.wasm"),
    })
}

/// Builds the example third-party policy (`examples/policy-plugin`, a crate outside the
/// workspace) once per process and returns its component.
pub fn example_policy_plugin() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let target_dir = root.join("target/wasm-test-plugins/examples");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let output = Command::new(cargo)
                .current_dir(root.join("examples/policy-plugin"))
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .arg("--target-dir")
                .arg(&target_dir)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET")
                .env_remove("CARGO_MAKEFLAGS")
                .env_remove("MAKEFLAGS")
                .env_remove("RUSTC_WORKSPACE_WRAPPER")
                .output()
                .map_err(|e| format!("running cargo: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building examples/policy-plugin failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(target_dir.join("wasm32-wasip2/release/site_policy.wasm"))
        })
        .clone()
        .map_err(|message| anyhow::anyhow!(message))
}

/// Builds the native test plugin (`tests/hostile-plugins/native`, a `cdylib` for the host
/// target) once per process and returns the shared library.
pub fn native_test_plugin() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let target_dir = root.join("target/native-test-plugins");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let output = Command::new(cargo)
                .current_dir(&root)
                .args(["build", "-p", "native-test-plugin"])
                .arg("--target-dir")
                .arg(&target_dir)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_MAKEFLAGS")
                .env_remove("MAKEFLAGS")
                .env_remove("RUSTC_WORKSPACE_WRAPPER")
                .output()
                .map_err(|e| format!("running cargo: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building the native test plugin failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(target_dir.join(format!(
                "debug/{}native_test_plugin{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )))
        })
        .clone()
        .map_err(|message| anyhow::anyhow!(message))
}

/// Writes a plugin folder `parent/name` holding `manifest` as `plugin.toml` and a copy of `wasm`
/// as `plugin.wasm`; returns the folder.
pub fn plugin_folder(
    parent: &Path,
    name: &str,
    manifest: &str,
    wasm: &Path,
) -> anyhow::Result<PathBuf> {
    let folder = parent.join(name);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join("plugin.toml"), manifest)?;
    std::fs::copy(wasm, folder.join("plugin.wasm"))?;
    Ok(folder)
}

/// A manifest for the hostile plugin with the given id and `[limits]` lines; it declares no
/// `capabilities`, so it holds the basic ones (log, clock, config).
pub fn hostile_manifest(id: &str, limits: &str) -> String {
    hostile_manifest_with(id, limits, None)
}

/// [`hostile_manifest`] declaring `capabilities` (e.g. `["state", "views"]`), or no key for `None`.
pub fn hostile_manifest_with(id: &str, limits: &str, capabilities: Option<&[&str]>) -> String {
    let capabilities = capabilities
        .map(|names| {
            let names: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
            format!("capabilities = [{}]\n", names.join(", "))
        })
        .unwrap_or_default();
    format!(
        "id = \"{id}\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\n\
         worlds = [\"workflow\", \"analyzer\", \"repair\", \"policy\"]\n{capabilities}\
         [limits]\n{limits}\n[config]\ngreeting = \"hello\"\n"
    )
}
