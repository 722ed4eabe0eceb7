//! App-server client benchmark: our supervisor (`codex_control_plane::appserver::AppServer`) against the real
//! `codex app-server` (pinned npm package) and the fake model on 127.0.0.1, side by side with a raw minimal
//! line client (std::process, BufRead, one JSON value per line) doing the same steps on the same binary, with
//! the same arguments and environment.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench appserver`
//!
//! Each round starts a fresh process per client and times:
//!
//! - spawn -> `initialize` answered and `initialized` sent;
//! - `config/read` round trips (a cheap request: what is left is transport and client cost);
//! - `thread/start` round trips;
//! - `turn/start` round trip (request to reply);
//! - one text turn end to end: `turn/start` sent -> `turn/completed` received (the fake model streams a short
//!   text reply).
//!
//! Rounds alternate which client goes first, so load drift hits both alike; the first round of each client is
//! a warm-up and is not counted. Our overhead per request is our median minus the raw client's median.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use codex_control_plane::appserver::{
    protocol::{self, Created, InputItem},
    self_disable_overrides, AppServer, AppServerEvent, AppServerSettings, RECURSION_MARKER_ENV,
};
use serde_json::{json, Value};
use support::fake_model::FakeModel;
use support::peer::CodexHome;

/// Counted rounds per client (plus one warm-up round each).
const ROUNDS: usize = 10;
/// `config/read` calls per round (a cheap request: the closest to pure transport and client cost).
const READS_PER_ROUND: usize = 20;
/// `thread/start` calls per round.
const THREADS_PER_ROUND: usize = 10;
/// Text turns per round (all on the last thread started).
const TURNS_PER_ROUND: usize = 10;
const WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Samples {
    spawn: Vec<Duration>,
    config_read: Vec<Duration>,
    thread_start: Vec<Duration>,
    turn_start: Vec<Duration>,
    turn: Vec<Duration>,
}

impl Samples {
    fn extend(&mut self, other: Samples) {
        self.spawn.extend(other.spawn);
        self.config_read.extend(other.config_read);
        self.thread_start.extend(other.thread_start);
        self.turn_start.extend(other.turn_start);
        self.turn.extend(other.turn);
    }
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Settings exactly as the integration tests build them for the real peer.
fn real_settings(home: &CodexHome) -> AppServerSettings {
    support::peer::app_server_settings(home)
}

fn initialize_params(experimental_api: bool) -> Value {
    json!({
        "clientInfo": {
            "name": "codex-control-plane-mcp",
            "title": "codex-control-plane-mcp",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "capabilities": {"experimentalApi": experimental_api},
    })
}

fn thread_start_params(cwd: &PathBuf) -> Value {
    json!({"cwd": cwd, "approvalPolicy": "never", "sandbox": "read-only"})
}

fn turn_start_params(thread: &str, i: usize) -> Value {
    json!({"threadId": thread, "input": [InputItem::text(format!("say hello {i}"))]})
}

fn thread_id(reply: Value) -> anyhow::Result<String> {
    Ok(protocol::decode::<protocol::ThreadStart>(reply)?.created_id())
}

fn turn_id(reply: Value) -> anyhow::Result<String> {
    Ok(protocol::decode::<protocol::TurnStart>(reply)?.created_id())
}

fn main() -> anyhow::Result<()> {
    println!(
        "machine: {} cores, load average {} at start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let model = FakeModel::start();
    let home = CodexHome::new(&model);
    let settings = real_settings(&home);
    println!(
        "peer: {} (fake model at {})",
        settings
            .binary
            .as_ref()
            .map(|b| b.display().to_string())
            .unwrap_or_default(),
        model.base_url()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let mut ours = Samples::default();
    let mut raw = Samples::default();
    for round in 0..=ROUNDS {
        let ours_first = round % 2 == 0;
        let run_ours = || runtime.block_on(ours_round(settings.clone()));
        let (a, b) = if ours_first {
            let a = run_ours()?;
            (a, raw_round(&settings)?)
        } else {
            let b = raw_round(&settings)?;
            (run_ours()?, b)
        };
        if round > 0 {
            ours.extend(a);
            raw.extend(b);
        }
    }
    let calls = model.n_model_calls();
    println!(
        "model calls: {calls} (expected {})",
        2 * (ROUNDS + 1) * TURNS_PER_ROUND
    );

    println!(
        "{:<44} {:>6} {:>22} {:>22} {:>14}",
        "step (n per client)", "n", "ours p50 / p99 ms", "raw p50 / p99 ms", "overhead p50"
    );
    let rows: [(&str, &Vec<Duration>, &Vec<Duration>); 5] = [
        ("spawn -> initialized", &ours.spawn, &raw.spawn),
        (
            "config/read round trip",
            &ours.config_read,
            &raw.config_read,
        ),
        (
            "thread/start round trip",
            &ours.thread_start,
            &raw.thread_start,
        ),
        ("turn/start round trip", &ours.turn_start, &raw.turn_start),
        (
            "text turn: turn/start -> turn/completed",
            &ours.turn,
            &raw.turn,
        ),
    ];
    for (name, a, b) in rows {
        let (a50, a99) = (percentile(a, 50.0), percentile(a, 99.0));
        let (b50, b99) = (percentile(b, 50.0), percentile(b, 99.0));
        println!(
            "{name:<44} {:>6} {:>10.3} / {:>9.3} {:>10.3} / {:>9.3} {:>+11.3} ms",
            a.len(),
            ms(a50),
            ms(a99),
            ms(b50),
            ms(b99),
            ms(a50) - ms(b50)
        );
    }
    println!("load average {} at end", load_average());
    Ok(())
}

/// One round through our supervisor.
async fn ours_round(settings: AppServerSettings) -> anyhow::Result<Samples> {
    let cwd = settings.cwd.clone();
    let server = AppServer::new(settings);
    let mut samples = Samples::default();

    let started = Instant::now();
    server.ensure_started().await?;
    samples.spawn.push(started.elapsed());

    for _ in 0..READS_PER_ROUND {
        let started = Instant::now();
        server.request("config/read", json!({})).await?;
        samples.config_read.push(started.elapsed());
    }

    let mut thread = String::new();
    for _ in 0..THREADS_PER_ROUND {
        let started = Instant::now();
        let reply = server
            .request("thread/start", thread_start_params(&cwd))
            .await?;
        samples.thread_start.push(started.elapsed());
        thread = thread_id(reply)?;
    }

    for i in 0..TURNS_PER_ROUND {
        let mut events = server.subscribe();
        let started = Instant::now();
        let reply = server
            .request("turn/start", turn_start_params(&thread, i))
            .await?;
        samples.turn_start.push(started.elapsed());
        let turn = turn_id(reply)?;
        let deadline = tokio::time::Instant::now() + WAIT;
        let completed = loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .context("turn/completed did not arrive")??;
            if let AppServerEvent::Notification { method, params, .. } = event {
                if method == "turn/completed"
                    && params.pointer("/turn/id").and_then(Value::as_str) == Some(turn.as_str())
                {
                    break params;
                }
            }
        };
        samples.turn.push(started.elapsed());
        if completed.pointer("/turn/status") != Some(&json!("completed")) {
            bail!("turn did not complete: {completed}");
        }
    }
    server.shutdown().await;
    Ok(samples)
}

/// A raw minimal JSON-lines client over the child's stdio.
struct RawClient {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
    /// Turns whose `turn/completed` arrived while waiting for a reply.
    completed: Vec<(String, Value)>,
}

impl RawClient {
    fn spawn(settings: &AppServerSettings) -> anyhow::Result<RawClient> {
        let binary = settings.binary.clone().context("no codex binary")?;
        let mut command = Command::new(binary);
        command.arg("app-server");
        for (flag, value) in
            self_disable_overrides(&settings.codex_home, &settings.self_mcp_server_name)
        {
            command.arg(flag).arg(value);
        }
        command
            .args(&settings.extra_args)
            .env("CODEX_HOME", &settings.codex_home)
            .env(RECURSION_MARKER_ENV, std::process::id().to_string())
            .envs(settings.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&settings.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().context("spawn codex app-server")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(RawClient {
            child,
            stdin: Some(BufWriter::new(stdin)),
            stdout: BufReader::new(stdout),
            next_id: 1,
            line: String::new(),
            completed: Vec::new(),
        })
    }

    fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        serde_json::to_writer(&mut *stdin, message)?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    fn read(&mut self) -> anyhow::Result<Value> {
        self.line.clear();
        if self.stdout.read_line(&mut self.line)? == 0 {
            bail!("app-server closed stdout");
        }
        Ok(serde_json::from_str(&self.line)?)
    }

    /// Sends a request and reads lines until its reply; returns the result.
    fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"id": id, "method": method, "params": params}))?;
        loop {
            let message = self.read()?;
            if let Some(method) = message.get("method") {
                if message.get("id").is_some() {
                    bail!("unexpected server request: {message}");
                }
                if method == "turn/completed" {
                    let turn = message.pointer("/params/turn/id").and_then(Value::as_str);
                    let turn = turn.unwrap_or_default().to_string();
                    self.completed.push((turn, message["params"].clone()));
                }
                continue;
            }
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {error}");
                }
                return message
                    .get("result")
                    .cloned()
                    .context("reply without result");
            }
        }
    }

    /// Reads lines until `turn/completed` for `turn`.
    fn wait_turn_completed(&mut self, turn: &str) -> anyhow::Result<Value> {
        if let Some(at) = self.completed.iter().position(|(t, _)| t == turn) {
            return Ok(self.completed.swap_remove(at).1);
        }
        loop {
            let message = self.read()?;
            if message.get("method").and_then(Value::as_str) == Some("turn/completed")
                && message.pointer("/params/turn/id").and_then(Value::as_str) == Some(turn)
            {
                return Ok(message["params"].clone());
            }
            if message.get("method").is_some() && message.get("id").is_some() {
                bail!("unexpected server request: {message}");
            }
        }
    }

    fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One round through the raw line client.
fn raw_round(settings: &AppServerSettings) -> anyhow::Result<Samples> {
    let mut samples = Samples::default();

    let started = Instant::now();
    let mut client = RawClient::spawn(settings)?;
    client.request("initialize", initialize_params(settings.experimental_api))?;
    client.send(&json!({"method": "initialized"}))?;
    samples.spawn.push(started.elapsed());

    for _ in 0..READS_PER_ROUND {
        let started = Instant::now();
        client.request("config/read", json!({}))?;
        samples.config_read.push(started.elapsed());
    }

    let mut thread = String::new();
    for _ in 0..THREADS_PER_ROUND {
        let started = Instant::now();
        let reply = client.request("thread/start", thread_start_params(&settings.cwd))?;
        samples.thread_start.push(started.elapsed());
        thread = thread_id(reply)?;
    }

    for i in 0..TURNS_PER_ROUND {
        let started = Instant::now();
        let reply = client.request("turn/start", turn_start_params(&thread, i))?;
        samples.turn_start.push(started.elapsed());
        let turn = turn_id(reply)?;
        let completed = client.wait_turn_completed(&turn)?;
        samples.turn.push(started.elapsed());
        if completed.pointer("/turn/status") != Some(&json!("completed")) {
            bail!("turn did not complete: {completed}");
        }
    }
    client.close();
    Ok(samples)
}
