//! MCP surface benchmark against the built release binary over real stdio, measured the way the seed was:
//! a small client timing each request from write to reply line.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench mcp`
//! Prints cold start (spawn -> tools/list answered, default plugins loaded), tools/list and
//! codex_health_summary latencies (median, p99 nearest-rank) and the server's VmRSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::mcp_client::{isolated_env, McpClient, TempDir};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<40} n={:<5} median={:>9.3} ms  p99={:>9.3} ms  min={:>9.3} ms",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
    );
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The seed (Python `codex-control-plane-mcp` 0.2.1) in a venv under `target/`, installed on first use so
/// both servers are measured in the same run on the same machine.
fn seed_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CODEX_SEED_BIN") {
        return Some(PathBuf::from(path));
    }
    let venv = support::mcp_client::profile_dir()
        .parent()
        .map(|target| target.join("seed-venv"))?;
    let binary = venv.join("bin").join("codex-control-plane-mcp");
    if !binary.exists() {
        eprintln!(
            "installing the seed (codex-control-plane-mcp==0.2.1) into {}",
            venv.display()
        );
        let created = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .ok()?;
        let installed = Command::new(venv.join("bin").join("pip"))
            .args(["install", "-q", "codex-control-plane-mcp==0.2.1"])
            .status()
            .ok()?;
        if !created.success() || !installed.success() {
            eprintln!("seed install failed; measuring this server only");
            return None;
        }
    }
    Some(binary)
}

fn main() -> anyhow::Result<()> {
    let dir = TempDir::new("bench-mcp");
    let env = isolated_env(dir.path());
    println!("== codex-control-plane-mcp (this server)");
    bench(&support::mcp_client::server_binary()?, &env)?;
    if let Some(seed) = seed_binary() {
        println!("== seed: codex-control-plane-mcp 0.2.1 (Python)");
        bench(&seed, &env)?;
    }
    Ok(())
}

fn bench(binary: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    // Warm the plugin cache and the page cache once, as a user's second start would be.
    let mut warm = McpClient::spawn_program(binary, env, &[])?;
    warm.initialize("2025-06-18")?;
    warm.close(Duration::from_secs(10))?;

    let mut cold = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let mut client = McpClient::spawn_program(binary, env, &[])?;
        client.initialize("2025-06-18")?;
        client.request("tools/list", json!({}))?;
        cold.push(started.elapsed());
        client.close(Duration::from_secs(10))?;
    }
    report("cold start: spawn -> tools/list reply", cold);

    let mut client = McpClient::spawn_program(binary, env, &[])?;
    client.initialize("2025-06-18")?;
    let mut list = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        client.request("tools/list", json!({}))?;
        list.push(started.elapsed());
    }
    report("tools/list", list);

    let mut health = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        client.call_tool("codex_health_summary", json!({}))?;
        health.push(started.elapsed());
    }
    report("tools/call codex_health_summary", health);
    if let Some(kb) = vm_rss_kb(client.pid()) {
        println!("{:<40} {kb} kB", "server VmRSS after both series");
    }
    client.close(Duration::from_secs(10))?;
    Ok(())
}
