//! Builds the default plugins (every crate under `plugins/` that has a `plugin.toml`) for
//! `wasm32-wasip2` with a nested `cargo build`, and writes `default_plugins.rs` into `OUT_DIR`:
//! one `EmbeddedPlugin` per crate with its manifest and component bytes (`include_bytes!`).
//!
//! The nested build uses its own target directory (`target/wasm-plugins`) so it never waits on the
//! outer build's lock, and clears the variables the outer cargo sets for build scripts (flags meant
//! for the host target, the jobserver, clippy's wrapper) so the wasm build is an ordinary one.
//!
//! It also writes the published tools (`publish_tools`) and passes the release server binary's code layout
//! to the linker (`code_layout`).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables the outer cargo (or clippy) sets that must not leak into the nested wasm build.
const CLEARED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
];

#[path = "src/mcp/published.rs"]
mod published;

// Only `canonical_json` and `sha256_hex` are used here.
#[allow(dead_code)]
#[path = "src/domain/rules/canonical.rs"]
mod canonical;

fn main() {
    if let Err(message) = run() {
        // A build script reports failure by panicking; the message is what the user sees.
        panic!("the host crate's build script failed: {message}");
    }
}

/// Writes what the tool specs publish into `OUT_DIR`: `tool_specs.rs`, the table of every spec's text in
/// `tools/list` order (`catalog.rs` includes it), `published_tools.json`, the whole tools array of
/// `tools/list` (`published.rs` says what each entry holds), and `tool_surface_hash.txt`, the seed's
/// `toolSurfaceHash` of the specs (see `catalog::Catalog::tool_surface_hash`). Serialising the 180 KB array
/// was most of a cold start's catalog work, and holding it most of the catalog's memory; now it is a constant
/// of the binary, and so is the hash.
fn publish_tools(manifest_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let specs_dir = manifest_dir.join("src/mcp/tools/specs");
    println!("cargo:rerun-if-changed={}", specs_dir.display());
    for source in ["src/mcp/published.rs", "src/domain/rules/canonical.rs"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(source).display()
        );
    }
    let mut unlisted = Vec::new();
    for entry in
        fs::read_dir(&specs_dir).map_err(|e| format!("reading {}: {e}", specs_dir.display()))?
    {
        let entry = entry.map_err(|e| format!("reading {}: {e}", specs_dir.display()))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".json") {
            if !published::TOOL_NAMES.contains(&name) {
                unlisted.push(file);
            }
        }
    }
    if !unlisted.is_empty() {
        return Err(format!(
            "tool specs missing from published::TOOL_NAMES: {unlisted:?}"
        ));
    }
    let mut tools = Vec::with_capacity(published::TOOL_NAMES.len());
    let mut surface = Vec::with_capacity(published::TOOL_NAMES.len());
    let mut table = String::from(
        "/// Every tool's spec, in `tools/list` order (written by `host/build.rs`).\n\
         const SPECS: &[(&str, &str)] = &[\n",
    );
    for name in published::TOOL_NAMES {
        let path = specs_dir.join(format!("{name}.json"));
        let text =
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let spec: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        tools.push(published::published_tool(name, &spec)?);
        surface.push(surface_entry(name, &spec)?);
        writeln!(
            table,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    table.push_str("];\n");
    let json = serde_json::to_vec(&tools).map_err(|e| format!("serialising the tools: {e}"))?;
    fs::write(out_dir.join("published_tools.json"), json)
        .map_err(|e| format!("writing published_tools.json: {e}"))?;
    fs::write(out_dir.join("tool_specs.rs"), table)
        .map_err(|e| format!("writing tool_specs.rs: {e}"))?;
    surface.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let hash = canonical::sha256_hex(canonical::canonical_json(&serde_json::Value::Array(
        surface,
    )));
    fs::write(out_dir.join("tool_surface_hash.txt"), hash)
        .map_err(|e| format!("writing tool_surface_hash.txt: {e}"))
}

/// A tool's part of the surface hash: `{name, description, inputSchema, outputSchema, contractGroup,
/// codexMcp}` of its spec.
fn surface_entry(
    name: &str,
    spec: &serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), serde_json::Value::from(name));
    for key in [
        "description",
        "inputSchema",
        "outputSchema",
        "contractGroup",
        "codexMcp",
    ] {
        let value = spec
            .get(key)
            .ok_or_else(|| format!("{name}: missing {key}"))?;
        entry.insert(key.into(), value.clone());
    }
    Ok(serde_json::Value::Object(entry))
}

/// Lays out the release server's code from `link/symbol-order.txt`: the functions a profiled session
/// executes, placed side by side so the pages a running server keeps resident hold little else (the
/// kernel maps code in 64 KiB windows around each page it faults, so scattered functions keep whole
/// windows of unrelated code resident). Relative relocations are packed (`DT_RELR`) so start-up reads
/// kilobytes of them, not a megabyte and a half. Only for release builds on x86_64 Linux, whose default
/// linker (rust-lld) reads both options; the names in the file match builds of the whole workspace
/// (`cargo build --release`), and a name the build does not have is skipped, never an error.
/// `CODEX_CONTROL_PLANE_DEFAULT_LAYOUT=1` links with the linker's own layout instead.
fn code_layout(manifest_dir: &Path) {
    let order = manifest_dir.join("link/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=CODEX_CONTROL_PLANE_DEFAULT_LAYOUT");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux_x86_64 = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let opted_out = env::var_os("CODEX_CONTROL_PLANE_DEFAULT_LAYOUT").is_some_and(|v| v == "1");
    if !release || !linux_x86_64 || opted_out || !order.is_file() {
        return;
    }
    // `-Xlinker` passes the next argument whole, so a checkout path with a comma stays one path.
    for arg in [
        "-Xlinker".to_string(),
        format!("--symbol-ordering-file={}", order.display()),
        "-Xlinker".to_string(),
        "--no-warn-symbol-ordering".to_string(),
        "-Xlinker".to_string(),
        "-zpack-relative-relocs".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

/// One default plugin crate found under `plugins/`.
struct PluginCrate {
    /// The crate directory, e.g. `plugins/default-policy`.
    dir: PathBuf,
    /// The package name from its `Cargo.toml`.
    package: String,
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir
        .parent()
        .ok_or("host crate has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let plugins_dir = workspace.join("plugins");

    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed={}", plugins_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    code_layout(&manifest_dir);
    publish_tools(&manifest_dir, &out_dir)?;

    // Cargo scans a watched directory recursively, so any edit under wit/ or plugins/ reruns this.
    let crates = find_plugin_crates(&plugins_dir)?;
    if !crates.is_empty() {
        ensure_wasm_target()?;
        build_wasm(&workspace, &crates)?;
    }

    let wasm_dir = workspace.join("target/wasm-plugins/wasm32-wasip2/release");
    // The component bytes are statics in a section of their own: among the constants of `.rodata` they
    // shared pages with data the server reads at every start, so the kernel's read-around kept a third of
    // them resident in a process that never runs a plugin.
    let mut statics = String::new();
    let mut source = String::from(
        "/// Default plugins built from `plugins/*` by `host/build.rs`.\n\
         pub const DEFAULT_PLUGINS: &[EmbeddedPlugin] = &[\n",
    );
    for (idx, plugin) in crates.iter().enumerate() {
        let wasm_name = format!("{}.wasm", plugin.package.replace('-', "_"));
        let wasm_src = wasm_dir.join(&wasm_name);
        // Copy into OUT_DIR so the embedded bytes cannot change under a finished build.
        let wasm_dst = out_dir.join(&wasm_name);
        fs::copy(&wasm_src, &wasm_dst)
            .map_err(|e| format!("copying {}: {e}", wasm_src.display()))?;
        let manifest_src = plugin.dir.join("plugin.toml");
        let manifest_dst = out_dir.join(format!("{}.plugin.toml", plugin.package));
        fs::copy(&manifest_src, &manifest_dst)
            .map_err(|e| format!("copying {}: {e}", manifest_src.display()))?;
        let wasm_len = fs::metadata(&wasm_dst)
            .map_err(|e| format!("reading {}: {e}", wasm_dst.display()))?
            .len();
        writeln!(
            statics,
            "#[cfg_attr(target_os = \"linux\", link_section = \".plugin_components\")]\n\
             static COMPONENT_{idx}: [u8; {wasm_len}] = *include_bytes!({:?});",
            wasm_dst.display().to_string()
        )
        .map_err(|e| e.to_string())?;
        writeln!(
            source,
            "    EmbeddedPlugin {{ crate_name: {:?}, manifest: include_str!({:?}), wasm: &COMPONENT_{idx} }},",
            plugin.package,
            manifest_dst.display().to_string(),
        )
        .map_err(|e| e.to_string())?;
    }
    source.push_str("];\n");
    source.push_str(&statics);
    fs::write(out_dir.join("default_plugins.rs"), source)
        .map_err(|e| format!("writing default_plugins.rs: {e}"))?;
    Ok(())
}

/// Lists the crates under `plugins/` that carry a `plugin.toml`, sorted by directory name so the
/// embedded order (and so the policy chain order) is stable.
fn find_plugin_crates(plugins_dir: &Path) -> Result<Vec<PluginCrate>, String> {
    let mut crates = Vec::new();
    let entries = match fs::read_dir(plugins_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(crates),
        Err(e) => return Err(format!("reading {}: {e}", plugins_dir.display())),
    };
    for entry in entries {
        let dir = entry.map_err(|e| e.to_string())?.path();
        if !dir.join("plugin.toml").is_file() || !dir.join("Cargo.toml").is_file() {
            continue;
        }
        let cargo_toml = fs::read_to_string(dir.join("Cargo.toml"))
            .map_err(|e| format!("reading {}/Cargo.toml: {e}", dir.display()))?;
        let package = package_name(&cargo_toml)
            .ok_or_else(|| format!("{}/Cargo.toml has no package name", dir.display()))?;
        crates.push(PluginCrate { dir, package });
    }
    crates.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(crates)
}

/// The `name = "..."` of the `[package]` table (a line scan keeps the build script dependency-free).
fn package_name(cargo_toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package {
            if let Some(rest) = line.strip_prefix("name") {
                let value = rest.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_string());
            }
        }
    }
    None
}

/// Makes sure the active toolchain has the standard library for `wasm32-wasip2`.
///
/// `rust-toolchain.toml` names the target, but rustup installs a toolchain's `targets` only when it installs
/// the toolchain itself, and machines that set `RUSTUP_AUTO_INSTALL=0` never do; a toolchain that came
/// without the target would then fail deep inside the nested build ("can't find crate for `std`"). So the
/// build script adds the target through rustup when its sysroot lacks it, and says plainly what to do when
/// rustup is not there.
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc} --print sysroot: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib/wasm32-wasip2/lib").is_dir() {
        return Ok(());
    }
    println!(
        "cargo:warning=the wasm32-wasip2 target is missing from {}; installing it with rustup",
        sysroot.display()
    );
    let mut command = Command::new("rustup");
    command.args(["target", "add", "wasm32-wasip2"]);
    // The toolchain that runs this build, not whatever rustup would pick in another directory.
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        command.args(["--toolchain", &toolchain]);
    }
    let output = command.output().map_err(|e| {
        format!(
            "the default plugins need the wasm32-wasip2 target, which {} lacks, and rustup could not be run \
             to add it ({e}); install it with your toolchain manager (rustup: `rustup target add wasm32-wasip2`)",
            sysroot.display()
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "`rustup target add wasm32-wasip2` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Runs the nested `cargo build --release --target wasm32-wasip2` for all plugin crates at once.
fn build_wasm(workspace: &Path, crates: &[PluginCrate]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(workspace.join("target/wasm-plugins"));
    for plugin in crates {
        command.args(["-p", &plugin.package]);
    }
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    for (name, _) in env::vars() {
        if name.starts_with("CARGO_FEATURE_") || name.starts_with("CARGO_CFG_") {
            command.env_remove(name);
        }
    }
    let output = command
        .output()
        .map_err(|e| format!("running cargo for wasm32-wasip2: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build --target wasm32-wasip2 failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
