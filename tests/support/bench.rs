//! What the benchmarks share: percentiles, the one-line report, wall-clock stamps and CPU time of a process.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// The `p`-th percentile (nearest rank) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints `name` with n, p50, p99 and min of `samples` in milliseconds.
pub fn report(name: &str, mut samples: Vec<Duration>) {
    if samples.is_empty() {
        println!("  {name:<62} no samples");
        return;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {name:<62} n={:<4} p50={:>8.3} ms  p99={:>8.3} ms  min={:>8.3} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples[0])
    );
}

/// Now, in unix microseconds (comparable with the scripted app-server's log stamps).
pub fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid`, in clock ticks (100 per second on Linux).
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("stat")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state field.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// [`crate::mcp_client::scripted_env`] with the scripted app-server logging every line it reads to `log`, each
/// stamped with the unix microsecond it was read at.
pub fn timestamped_env(
    dir: &Path,
    execution_mode: &str,
    fake_mode: &str,
    log: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = crate::mcp_client::scripted_env(dir, execution_mode, fake_mode)?;
    env.push(("FAKE_APP_SERVER_LOG".into(), log.display().to_string()));
    env.push(("FAKE_APP_SERVER_TIMESTAMPS".into(), "1".into()));
    Ok(env)
}

/// The `idx`-th project directory under `dir` (created), as a path string for `project_id`.
pub fn project(dir: &Path, idx: usize) -> anyhow::Result<String> {
    let path = dir.join("projects").join(format!("p{idx}"));
    std::fs::create_dir_all(&path)?;
    Ok(path.display().to_string())
}

/// When the scripted app-server read the first `method` request for `cwd` (unix µs), from its log.
pub fn read_at(log: &Path, method: &str, cwd: &str) -> Option<u128> {
    let needle = format!("\"cwd\":\"{cwd}\"");
    let method = format!("\"method\":\"{method}\"");
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .find(|l| l.contains(&method) && l.contains(&needle))
        .and_then(|l| l.split_once(' '))
        .and_then(|(t, _)| t.parse().ok())
}
