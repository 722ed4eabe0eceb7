//! Plugin dispatch benchmark: cold load (artifact cache miss and hit; the load and the first call,
//! which links a default plugin), a call on a fresh instance from the `InstancePre`, and a call on a
//! reused (warm) instance, all against the embedded default policy. Run on demand:
//!
//! ```text
//! cargo bench -p codex-control-plane-mcp --bench plugins
//! ```
//!
//! A plain timing loop (no benchmark framework): each figure is the mean over many iterations
//! after a warm-up, plus the best of several rounds for the loads.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codex_control_plane::config::Config;
use codex_control_plane::plugins::types::{
    ActionKind, ActionRequest, Decision, InputSummary, SandboxMode, TurnSettings,
};
use codex_control_plane::plugins::PluginHost;

/// Calls per timed round of the call benchmarks.
const N_CALLS_FRESH: u32 = 5_000;
/// Calls per timed round of the warm benchmark.
const N_CALLS_WARM: u32 = 200_000;
/// Rounds of the load benchmarks.
const N_LOADS: u32 = 10;

fn main() {
    if let Err(error) = run() {
        eprintln!("benchmark failed: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let root = scratch_dir()?;
    let config = Config::for_tests(&root);
    std::fs::create_dir_all(&config.projects_root).map_err(|e| e.to_string())?;

    // Cold load, cache miss: a fresh cache directory every round.
    let mut miss = Vec::new();
    for round in 0..N_LOADS.min(5) {
        let mut config = config.clone();
        config.plugins.cache_dir = Some(root.join(format!("cache-miss-{round}")));
        let started = Instant::now();
        let host = first_call(&config)?;
        miss.push(started.elapsed());
        check_loaded(&host, "miss")?;
    }

    // Cold load, cache hit: the same cache directory every round (filled by a first load).
    let mut hit = Vec::new();
    first_call(&config)?;
    for _ in 0..N_LOADS {
        let started = Instant::now();
        let host = first_call(&config)?;
        hit.push(started.elapsed());
        check_loaded(&host, "hit")?;
    }

    let host = PluginHost::load(&config).map_err(|e| e.to_string())?;
    let request = request(&host);

    // Fresh instance per call (what `PluginHost::check_action_with` does).
    for _ in 0..500 {
        host.check_action_with("default-policy", &request)
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    for _ in 0..N_CALLS_FRESH {
        let decision = host
            .check_action_with("default-policy", &request)
            .map_err(|e| e.to_string())?;
        std::hint::black_box(decision);
    }
    let fresh = started.elapsed() / N_CALLS_FRESH;

    // The whole policy chain (one policy today) through `check_action`.
    let started = Instant::now();
    for _ in 0..N_CALLS_FRESH {
        let decision = host.check_action(&request).map_err(|e| e.to_string())?;
        std::hint::black_box(decision);
    }
    let chain = started.elapsed() / N_CALLS_FRESH;

    // Warm: one instance reused.
    let plugin = host.plugin("default-policy").map_err(|e| e.to_string())?;
    let mut warm = plugin.warm_policy().map_err(|e| e.to_string())?;
    for _ in 0..10_000 {
        warm.check_action(&request).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    for _ in 0..N_CALLS_WARM {
        let decision = warm.check_action(&request).map_err(|e| e.to_string())?;
        std::hint::black_box(decision);
    }
    let warm_call = started.elapsed() / N_CALLS_WARM;

    // Warm, minimal request: no cwd, model or ids, one empty root; shows the fixed cost of a
    // call apart from lowering strings into the guest.
    let mut minimal = request.clone();
    minimal.kind = ActionKind::InterruptTurn;
    minimal.operation_id = None;
    minimal.thread_id = None;
    minimal.settings = TurnSettings {
        cwd: None,
        sandbox: None,
        approval_policy: None,
        model: None,
        effort: None,
        collaboration_mode: None,
    };
    let started = Instant::now();
    for _ in 0..N_CALLS_WARM {
        let decision = warm.check_action(&minimal).map_err(|e| e.to_string())?;
        std::hint::black_box(decision);
    }
    let warm_minimal = started.elapsed() / N_CALLS_WARM;
    if warm.check_action(&request).map_err(|e| e.to_string())? != Decision::Allow {
        return Err("the default policy should allow the benchmark request".to_string());
    }

    println!("plugin dispatch benchmark (default-policy, embedded)");
    println!(
        "  cold load, cache miss (compile):  best {:>9.3} ms  mean {:>9.3} ms",
        ms(best(&miss)),
        ms(mean(&miss))
    );
    println!(
        "  cold load, cache hit (deserialize): best {:>7.3} ms  mean {:>9.3} ms",
        ms(best(&hit)),
        ms(mean(&hit))
    );
    println!("  call, fresh instance:             {:>9.2} us", us(fresh));
    println!("  call, policy chain (check_action): {:>8.2} us", us(chain));
    println!(
        "  call, warm instance:              {:>9.3} us",
        us(warm_call)
    );
    println!(
        "  call, warm instance, minimal request: {:>5.3} us",
        us(warm_minimal)
    );
    // Best effort: the scratch directory is only benchmark output.
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// Loads the plugins and calls the default policy once: default plugins link on their first call, so a
/// cold load is the load plus that call.
fn first_call(config: &Config) -> Result<PluginHost, String> {
    let host = PluginHost::load(config).map_err(|e| e.to_string())?;
    host.check_action_with("default-policy", &request(&host))
        .map_err(|e| e.to_string())?;
    Ok(host)
}

/// Fails unless the default policy loaded with the expected cache outcome.
fn check_loaded(host: &PluginHost, expected: &str) -> Result<(), String> {
    let info = host
        .plugins()
        .into_iter()
        .find(|info| info.id == "default-policy")
        .ok_or("default-policy missing")?;
    if info.cache != Some(expected) {
        return Err(format!(
            "expected cache {expected}, got {:?} ({:?})",
            info.cache, info.error
        ));
    }
    Ok(())
}

/// A typical request: start a turn inside the allowed root.
fn request(host: &PluginHost) -> ActionRequest {
    let context = host.policy_context();
    ActionRequest {
        action_id: "bench".to_string(),
        kind: ActionKind::StartTurn,
        operation_id: Some("op-bench".to_string()),
        thread_id: Some("thread-bench".to_string()),
        settings: TurnSettings {
            cwd: Some(format!("{}/project", context.allowed_roots[0])),
            sandbox: Some(SandboxMode::WorkspaceWrite),
            approval_policy: None,
            model: Some("gpt-5-codex".to_string()),
            effort: None,
            collaboration_mode: None,
        },
        input: InputSummary {
            text_bytes: 120,
            image_count: 0,
        },
        context,
    }
}

/// A unique scratch directory under the system temp dir.
fn scratch_dir() -> Result<PathBuf, String> {
    let path = std::env::temp_dir().join(format!("ccp-plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok(path)
}

/// Shortest duration.
fn best(samples: &[Duration]) -> Duration {
    samples.iter().copied().min().unwrap_or_default()
}

/// Mean duration.
fn mean(samples: &[Duration]) -> Duration {
    let n_samples = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
    samples.iter().sum::<Duration>() / n_samples
}

/// Milliseconds as a float.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Microseconds as a float.
fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
