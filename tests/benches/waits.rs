//! Waiting benchmark: `codex_wait` and `wait_seconds` against the built release binary over real stdio.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench waits`
//!
//! One run prints:
//!
//! - change -> `codex_wait` return: a `codex_wait` is pending on an operation whose turn the scripted app-server
//!   completes exactly 50 ms after it read `turn/start` (it timestamps every line it reads); the figure is the
//!   reply's arrival minus that completion instant. It covers our reading of `turn/completed`, the commit, the
//!   waiter's wake-up, the snapshot and the reply. Same process: `inline` mode (the server records the turn
//!   itself). Cross process: `auto` mode (the background worker records it, the server waits on the file);
//! - the server's CPU time during a 10 s `codex_wait` on a turn that never ends, next to 10 idle seconds;
//! - a quick task's total time to its answer: one `codex_submit_task` with `wait_seconds`, next to a submit
//!   followed by a status poll every 2 s (what an agent without waits does).
//!
//! Nothing leaves 127.0.0.1.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use support::bench::{cpu_ticks, project, read_at, report, timestamped_env, unix_micros};
use support::mcp_client::{McpClient, TempDir};

/// Timed waits per mode.
const WAITS: usize = 60;
/// How long the scripted app-server's `normal` turn runs after `turn/start`.
const TURN_MS: u128 = 50;

fn submit(client: &mut McpClient, cwd: &str, message: &str, extra: Value) -> anyhow::Result<Value> {
    let mut args = json!({"operation_type": "start_chat", "project_id": cwd, "message": message});
    if let (Some(args), Value::Object(extra)) = (args.as_object_mut(), extra) {
        args.extend(extra);
    }
    let payload = client.call_tool("codex_submit_task", args)?;
    if payload["ok"] != json!(true) {
        bail!("submit failed: {payload}");
    }
    Ok(payload)
}

fn op_id(payload: &Value) -> anyhow::Result<String> {
    Ok(payload["operationId"]
        .as_str()
        .context("operationId")?
        .to_string())
}

/// Change -> return of a `codex_wait` pending on each of a series of quick turns.
fn wait_series(mode: &str) -> anyhow::Result<Vec<Duration>> {
    let dir = TempDir::new(&format!("bench-wait-{mode}"));
    let log = dir.path().join("fake.log");
    let mut client = McpClient::start(&timestamped_env(dir.path(), mode, "normal", &log)?)?;
    let mut samples = Vec::new();
    for idx in 0..WAITS + 5 {
        let cwd = project(dir.path(), idx)?;
        let id = op_id(&submit(
            &mut client,
            &cwd,
            &format!("wait {idx}"),
            json!({}),
        )?)?;
        let waited = client.call_tool(
            "codex_wait",
            json!({"operation_ids": [id], "timeout_seconds": 20}),
        )?;
        let returned = unix_micros();
        if waited["reason"] != json!("terminal") {
            bail!("wait did not see the end: {waited}");
        }
        let started = read_at(&log, "turn/start", &cwd).context("turn/start not logged")?;
        // Waits whose call began after the turn had already ended measure nothing.
        if idx >= 5 && waited["changed"] == json!(true) {
            samples.push(Duration::from_micros(
                returned.saturating_sub(started + TURN_MS * 1000) as u64,
            ));
        }
    }
    client.close(Duration::from_secs(15))?;
    Ok(samples)
}

fn main() -> anyhow::Result<()> {
    println!("waits benchmark (release binary, scripted app-server)");
    report(
        "change -> codex_wait return, same process (inline)",
        wait_series("inline")?,
    );
    report(
        "change -> codex_wait return, cross process (auto: worker)",
        wait_series("auto")?,
    );

    // CPU of a wait that never ends, next to the same seconds idle.
    let dir = TempDir::new("bench-wait-cpu");
    let log = dir.path().join("fake.log");
    let mut client = McpClient::start(&timestamped_env(dir.path(), "inline", "hang_turn", &log)?)?;
    let cwd = project(dir.path(), 0)?;
    let id = op_id(&submit(&mut client, &cwd, "hang", json!({}))?)?;
    std::thread::sleep(Duration::from_secs(2));
    let hz = 100.0;
    let idle_before = cpu_ticks(client.pid())?;
    std::thread::sleep(Duration::from_secs(10));
    let idle = cpu_ticks(client.pid())? - idle_before;
    let waiting_before = cpu_ticks(client.pid())?;
    let waited = client.call_tool(
        "codex_wait",
        json!({"operation_ids": [id], "timeout_seconds": 10}),
    )?;
    let waiting = cpu_ticks(client.pid())? - waiting_before;
    if waited["reason"] != json!("timeout") {
        bail!("expected a timeout: {waited}");
    }
    println!(
        "  server CPU over 10 s: idle {:.3} s, during one codex_wait {:.3} s",
        idle as f64 / hz,
        waiting as f64 / hz
    );
    client.close(Duration::from_secs(15))?;
    drop(dir);

    // A quick task's answer: one call with wait_seconds, or submit + a poll every 2 s.
    let dir = TempDir::new("bench-wait-quick");
    let log = dir.path().join("fake.log");
    let mut client = McpClient::start(&timestamped_env(dir.path(), "inline", "normal", &log)?)?;
    let (mut inline, mut polled) = (Vec::new(), Vec::new());
    for idx in 0..8 {
        let cwd = project(dir.path(), idx)?;
        let began = Instant::now();
        let done = submit(
            &mut client,
            &cwd,
            &format!("quick {idx}"),
            json!({"wait_seconds": 20}),
        )?;
        if done["terminal"] != json!(true) {
            bail!("not answered inline: {done}");
        }
        inline.push(began.elapsed());

        let cwd = project(dir.path(), 100 + idx)?;
        let began = Instant::now();
        let id = op_id(&submit(
            &mut client,
            &cwd,
            &format!("polled {idx}"),
            json!({}),
        )?)?;
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let status =
                client.call_tool("codex_get_operation_status", json!({"operation_id": id}))?;
            if status["terminal"] == json!(true) {
                break;
            }
        }
        polled.push(began.elapsed());
    }
    report("quick task: submit with wait_seconds (one call)", inline);
    report("quick task: submit, then a status poll every 2 s", polled);
    client.close(Duration::from_secs(15))?;
    Ok(())
}
