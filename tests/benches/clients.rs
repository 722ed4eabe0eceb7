//! Many clients at once: ten MCP stdio sessions (ten server processes, as ten agents' clients would spawn) on
//! one state database, first all polling `codex_get_operation_status`, then all submitting
//! `codex_submit_task`, each for a fixed time. Prints the aggregate rate and the latency p50 / p99 of each
//! series, for our release binary and, with `SEED_MCP_COMMAND` set, for the seed in the same run.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench clients`
//! (seed side by side: `SEED_MCP_COMMAND=/path/to/venv/bin/codex-control-plane-mcp cargo bench ...`)
//!
//! Then the same two series with ten sessions over one server process: `serve --http 127.0.0.1:0` (streamable
//! HTTP), each client its own MCP session, one POST per call on a fresh connection (as the test client does; a
//! client that keeps its connection alive would only do better).
//!
//! Our database is prefilled (through the library's `Store`, before the servers start) with 1 000 queued
//! operations, and the servers run in `client` execution mode with no worker: nothing is dispatched, so the
//! polls read queued operations and the submits only insert, which is what a fleet of agents does to the
//! shared database while one worker is busy. The seed cannot be prefilled from here: each of its sessions
//! first submits 100 operations (untimed) and polls those.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context;
use codex_control_plane::store::{operations, NewOperation, Store};
use serde_json::{json, Value};
use support::bench::{percentile, report};
use support::http_client::{read_token, HttpServer, McpHttpClient};
use support::mcp_client::{isolated_env, server_binary, McpClient, TempDir};

/// Concurrent sessions.
const CLIENTS: usize = 10;
/// Queued operations in our database before the servers start.
const QUEUED: usize = 1_000;
/// Operations each seed session submits before its polls.
const SEED_OWN_OPS: usize = 100;
/// How long each series runs.
const SERIES: Duration = Duration::from_secs(5);

/// A prompt no other prompt of the run resembles: mostly tokens unique to it, so the duplicate-prompt guard
/// (token similarity, 0.90) never refuses one.
fn prompt(client: usize, idx: usize, salt: &str) -> String {
    let mut state = ((client as u64) << 32 | idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut words = vec![
        format!("{salt}{client}x{idx}"),
        "please".to_string(),
        "summarise".to_string(),
    ];
    for _ in 0..7 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        words.push(format!("w{:x}", state % 0xFFFF_FFFF));
    }
    words.join(" ")
}

fn prefill(db: &Path, projects: &[String]) -> anyhow::Result<Vec<String>> {
    let store = Store::open(db)?;
    let projects = projects.to_vec();
    Ok(store.write_blocking(move |tx| {
        let now = codex_control_plane::time::now_ms();
        let mut ids = Vec::with_capacity(QUEUED);
        for idx in 0..QUEUED {
            let cwd = projects[idx % projects.len()].clone();
            let text = prompt(99, idx, "queued");
            let mut new = NewOperation::new(
                "start_chat",
                json!({"operationType": "start_chat", "message": text, "cwd": cwd}),
            );
            new.client_request_id = Some(format!("queued-{idx}"));
            new.project_path_key = cwd.clone();
            new.cwd = Some(cwd);
            new.message = Some(text);
            new.dedup_policy = "idempotency_only".into();
            ids.push(
                operations::insert(tx, &new, now)?
                    .operation()
                    .operation_id
                    .clone(),
            );
        }
        Ok(ids)
    })?)
}

fn ok_payload(result: &Value) -> anyhow::Result<Value> {
    let payload = match result.get("structuredContent") {
        Some(structured) => structured.clone(),
        None => serde_json::from_str(
            result
                .pointer("/content/0/text")
                .and_then(Value::as_str)
                .context("no content")?,
        )?,
    };
    anyhow::ensure!(payload["ok"] == json!(true), "call failed: {payload}");
    Ok(payload)
}

/// A client session the series can time tool calls on.
trait Session: Send {
    /// The tool's `tools/call` result.
    fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value>;

    /// Calls `name` and returns how long it took and its `ok:true` payload.
    fn timed(&mut self, name: &str, arguments: Value) -> anyhow::Result<(Duration, Value)> {
        let started = Instant::now();
        let result = self.call_tool(name, arguments)?;
        let elapsed = started.elapsed();
        Ok((elapsed, ok_payload(&result)?))
    }
}

impl Session for McpClient {
    fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value> {
        self.call_tool_raw(name, arguments)
    }
}

impl Session for McpHttpClient {
    fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }
}

/// Runs `work(client_index, client)` on every client at once for [`SERIES`]; returns every latency and the
/// wall time.
fn concurrently<C: Send>(
    clients: &mut [C],
    work: impl Fn(usize, usize, &mut C) -> anyhow::Result<Duration> + Sync,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let barrier = Arc::new(Barrier::new(clients.len()));
    let started = Instant::now();
    let samples = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(i, client)| {
                let barrier = barrier.clone();
                let work = &work;
                scope.spawn(move || -> anyhow::Result<Vec<Duration>> {
                    barrier.wait();
                    let deadline = Instant::now() + SERIES;
                    let mut out = Vec::new();
                    let mut n = 0;
                    while Instant::now() < deadline {
                        out.push(work(i, n, client)?);
                        n += 1;
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("client thread panicked"))??,
            );
        }
        anyhow::Ok(all)
    })?;
    Ok((samples, started.elapsed()))
}

fn rate(label: &str, samples: &[Duration], wall: Duration) -> (f64, Duration, Duration) {
    let per_second = samples.len() as f64 / wall.as_secs_f64();
    let mut sorted = samples.to_vec();
    sorted.sort();
    report(label, sorted.clone());
    println!(
        "  {label:<62} {per_second:>8.0} calls/s aggregate ({} clients)",
        CLIENTS
    );
    (
        per_second,
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
    )
}

struct Figures {
    polls: (f64, Duration, Duration),
    submits: (f64, Duration, Duration),
}

/// The poll series (client `i` polls the operations `ids[i]`), then the submit series (client `i` into
/// `projects[CLIENTS + i]`), reported as `who`.
fn poll_and_submit<C: Session>(
    who: &str,
    clients: &mut [C],
    ids: &[Vec<String>],
    projects: &[String],
) -> anyhow::Result<Figures> {
    let (samples, wall) = concurrently(clients, |i, n, client| {
        let list = &ids[i];
        let id = &list[(n * 37 + i * 101) % list.len()];
        Ok(client
            .timed("codex_get_operation_status", json!({"operation_id": id}))?
            .0)
    })?;
    let polls = rate(&format!("{who}: status polls"), &samples, wall);
    let (samples, wall) = concurrently(clients, |i, n, client| {
        let project = &projects[CLIENTS + i];
        Ok(client
            .timed(
                "codex_submit_task",
                json!({"operation_type": "start_chat",
                "message": prompt(i, n, "timed"), "project_id": project}),
            )?
            .0)
    })?;
    let submits = rate(&format!("{who}: submits"), &samples, wall);
    Ok(Figures { polls, submits })
}

/// A server's environment variables.
type Env = Vec<(String, String)>;

/// The environment of a server in `client` execution mode under `dir`, and the projects the clients use.
fn setting(dir: &TempDir) -> anyhow::Result<(Env, Vec<String>)> {
    let mut env = isolated_env(dir.path());
    env.retain(|(k, _)| k != "CODEX_MCP_EXECUTION_MODE");
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), "client".into()));
    let projects: Vec<String> = (0..CLIENTS * 2)
        .map(|i| {
            let path = dir.path().join("projects").join(format!("p{i:02}"));
            std::fs::create_dir_all(&path)?;
            Ok(path.display().to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((env, projects))
}

/// The database of the environment `env`.
fn database(env: &[(String, String)]) -> anyhow::Result<PathBuf> {
    env.iter()
        .find(|(k, _)| k == "CODEX_MCP_STATE_DB")
        .map(|(_, v)| PathBuf::from(v))
        .context("db")
}

/// Our two series with every client in its own session of one server process over streamable HTTP.
fn http_series() -> anyhow::Result<Figures> {
    let dir = TempDir::new("bench-clients-http");
    let (env, projects) = setting(&dir)?;
    let ids = prefill(&database(&env)?, &projects)?;
    let server = HttpServer::start(&env)?;
    let token = read_token(dir.path())?;
    let mut clients = (0..CLIENTS)
        .map(|_| {
            let mut client = server.client(&token);
            client.initialize("2025-06-18")?;
            Ok(client)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ids: Vec<Vec<String>> = (0..CLIENTS).map(|_| ids.clone()).collect();
    let figures = poll_and_submit(
        &format!("ours over HTTP, {CLIENTS} sessions"),
        &mut clients,
        &ids,
        &projects,
    )?;
    server.terminate(Duration::from_secs(20))?;
    Ok(figures)
}

fn series(binary: &Path, seed: bool) -> anyhow::Result<Figures> {
    let dir = TempDir::new(if seed {
        "bench-clients-seed"
    } else {
        "bench-clients"
    });
    let (env, projects) = setting(&dir)?;
    let mut clients = (0..CLIENTS)
        .map(|_| {
            let mut client = McpClient::spawn_program(binary, &env, &[])?;
            client.initialize("2025-06-18")?;
            Ok(client)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let ids: Vec<Vec<String>> = if seed {
        let mut own = Vec::new();
        for (i, client) in clients.iter_mut().enumerate() {
            let mut mine = Vec::new();
            for n in 0..SEED_OWN_OPS {
                let (_, payload) = client.timed(
                    "codex_submit_task",
                    json!({"operation_type": "start_chat",
                    "message": prompt(i, n, "own"), "project_id": projects[i]}),
                )?;
                mine.push(
                    payload["operationId"]
                        .as_str()
                        .context("operationId")?
                        .to_string(),
                );
            }
            own.push(mine);
        }
        own
    } else {
        let all = prefill(&database(&env)?, &projects)?;
        (0..CLIENTS).map(|_| all.clone()).collect()
    };
    let who = if seed { "seed" } else { "ours" };
    let figures = poll_and_submit(
        &format!("{who}, {CLIENTS} clients"),
        &mut clients,
        &ids,
        &projects,
    )?;
    for client in clients {
        let _ = client.close(Duration::from_secs(15));
    }
    Ok(figures)
}

fn main() -> anyhow::Result<()> {
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let ours = series(&server_binary()?, false)?;
    let http = http_series()?;
    let seed = match std::env::var_os("SEED_MCP_COMMAND") {
        Some(binary) => Some(series(Path::new(&binary), true)?),
        None => {
            println!("== seed skipped (set SEED_MCP_COMMAND to the seed's server executable)");
            None
        }
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (name, o) in [("status polls", http.polls), ("submits", http.submits)] {
        println!(
            "  {name:<14} ours, one process over HTTP {:>7.0}/s p50 {:.2} p99 {:.2} ms",
            o.0,
            ms(o.1),
            ms(o.2)
        );
    }
    if let Some(seed) = seed {
        for (name, o, s) in [
            ("status polls", ours.polls, seed.polls),
            ("submits", ours.submits, seed.submits),
        ] {
            println!(
                "  {name:<14} ours {:>7.0}/s p50 {:.2} p99 {:.2} ms | seed {:>6.0}/s p50 {:.2} p99 {:.2} ms | x{:.1}",
                o.0, ms(o.1), ms(o.2), s.0, ms(s.1), ms(s.2), o.0 / s.0
            );
        }
    }
    Ok(())
}
