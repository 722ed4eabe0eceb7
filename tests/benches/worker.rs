//! Background worker benchmark (`execution_mode = "auto"`) against the built release binary over real stdio.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench worker`
//!
//! One run prints:
//!
//! - the first `codex_submit_task` of a session with no worker running (it starts the worker and waits for its
//!   first heartbeat);
//! - `codex_submit_task` (`start_chat`) -> `operationId` in `auto` mode with the worker running, and the same
//!   in `inline` mode for comparison;
//! - submit -> `thread/start` read by app-server from its stdin, written by the worker (auto) or by the server
//!   itself (inline): the wake-up path (doorbell, claim, dispatch). Each submit waits for the previous operation
//!   to complete, so no queueing is measured;
//! - `codex_answer_pending_interaction` in `auto` mode: the worker command round trip (queue, doorbell, the
//!   worker runs the answer and delivers it to app-server, the client reads the result);
//! - the worker's CPU time over 10 idle seconds.
//!
//! The app-server is the scripted `fake-app-server` (`normal` mode: a turn completes 50 ms after `turn/start`;
//! `approval` mode for the answer series), which timestamps every line it reads. Calls are timed around the
//! client's `tools/call` (write of the request line to the parsed reply). Nothing leaves 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use support::bench::{cpu_ticks, project, read_at, report, timestamped_env, unix_micros};
use support::mcp_client::{worker_pid, McpClient, TempDir};

/// Timed submits per mode.
const SUBMITS: usize = 100;
/// Timed answers.
const ANSWERS: usize = 40;
/// Idle period over which the worker's CPU time is measured.
const IDLE: Duration = Duration::from_secs(10);

fn wait<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f()? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn status(client: &mut McpClient, id: &str) -> anyhow::Result<Value> {
    client.call_tool("codex_get_operation_status", json!({"operation_id": id}))
}

/// Sequential submits: (submit -> operationId, submit -> thread/start at app-server).
fn submit_series(
    client: &mut McpClient,
    dir: &Path,
    log: &Path,
    salt: &str,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut acks, mut starts) = (Vec::new(), Vec::new());
    for idx in 0..SUBMITS + 5 {
        let cwd = project(dir, idx)?;
        let sent_at = unix_micros();
        let began = Instant::now();
        let payload = client.call_tool(
            "codex_submit_task",
            json!({"operation_type": "start_chat", "project_id": cwd,
                   "message": format!("{salt} task number {idx}")}),
        )?;
        let ack = began.elapsed();
        let id = payload["operationId"]
            .as_str()
            .with_context(|| format!("no operationId: {payload}"))?
            .to_string();
        let at = wait("thread/start", Duration::from_secs(20), || {
            Ok(read_at(log, "thread/start", &cwd))
        })?;
        wait("completion", Duration::from_secs(20), || {
            let s = status(client, &id)?;
            Ok((s["terminal"] == json!(true)).then_some(()))
        })?;
        // The first few warm the worker's and the server's caches.
        if idx >= 5 {
            acks.push(ack);
            starts.push(Duration::from_micros(at.saturating_sub(sent_at) as u64));
        }
    }
    Ok((acks, starts))
}

fn main() -> anyhow::Result<()> {
    println!("worker benchmark (release binary, fake app-server, 127.0.0.1 only)");

    // Auto mode: the first submit starts the worker.
    let dir = TempDir::new("bench-worker-auto");
    let log = dir.path().join("fake.log");
    let db: PathBuf = dir.path().join("state").join("state.sqlite3");
    let mut client = McpClient::start(&timestamped_env(dir.path(), "auto", "normal", &log)?)?;
    let cwd = project(dir.path(), 10_000)?;
    let began = Instant::now();
    client.call_tool(
        "codex_submit_task",
        json!({"operation_type": "start_chat", "project_id": cwd, "message": "first of the session"}),
    )?;
    report(
        "auto: first submit (starts the worker)",
        vec![began.elapsed()],
    );
    let (acks, starts) = submit_series(&mut client, dir.path(), &log, "auto")?;
    report("auto: codex_submit_task -> operationId", acks);
    report(
        "auto: submit -> thread/start read by app-server (worker)",
        starts,
    );

    let pid = worker_pid(&db).context("no worker")?;
    let before = cpu_ticks(pid)?;
    std::thread::sleep(IDLE);
    let used = cpu_ticks(pid)? - before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    println!(
        "  {:<62} {:.3} s CPU over {} s idle ({:.2} %)",
        "auto: worker idle CPU",
        used as f64 / hz,
        IDLE.as_secs(),
        100.0 * used as f64 / hz / IDLE.as_secs_f64()
    );
    client.close(Duration::from_secs(15))?;
    drop(dir);

    // Inline mode, same series.
    let dir = TempDir::new("bench-worker-inline");
    let log = dir.path().join("fake.log");
    let mut client = McpClient::start(&timestamped_env(dir.path(), "inline", "normal", &log)?)?;
    let (acks, starts) = submit_series(&mut client, dir.path(), &log, "inline")?;
    report("inline: codex_submit_task -> operationId", acks);
    report("inline: submit -> thread/start read by app-server", starts);
    client.close(Duration::from_secs(15))?;
    drop(dir);

    // Auto mode: answering an approval is a worker command round trip.
    let dir = TempDir::new("bench-worker-answer");
    let log = dir.path().join("fake.log");
    let mut client = McpClient::start(&timestamped_env(dir.path(), "auto", "approval", &log)?)?;
    let mut answers = Vec::new();
    for idx in 0..ANSWERS + 3 {
        let cwd = project(dir.path(), idx)?;
        let payload = client.call_tool(
            "codex_submit_task",
            json!({"operation_type": "start_chat", "project_id": cwd, "message": format!("approval {idx}")}),
        )?;
        let id = payload["operationId"]
            .as_str()
            .context("operationId")?
            .to_string();
        let interaction = wait("an approval", Duration::from_secs(20), || {
            let listed = client.call_tool(
                "codex_list_pending_interactions",
                json!({"operation_id": id}),
            )?;
            Ok(listed["interactions"][0]["interactionId"]
                .as_str()
                .map(str::to_string))
        })?;
        let began = Instant::now();
        let answered = client.call_tool(
            "codex_answer_pending_interaction",
            json!({"interaction_id": interaction, "decision": "accept"}),
        )?;
        let elapsed = began.elapsed();
        if answered["answered"] != json!(true) {
            bail!("answer failed: {answered}");
        }
        wait("completion", Duration::from_secs(20), || {
            let s = status(&mut client, &id)?;
            Ok((s["terminal"] == json!(true)).then_some(()))
        })?;
        if idx >= 3 {
            answers.push(elapsed);
        }
    }
    report(
        "auto: codex_answer_pending_interaction (worker command)",
        answers,
    );
    client.close(Duration::from_secs(15))?;
    drop(dir);
    Ok(())
}
