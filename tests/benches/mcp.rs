//! MCP surface benchmark against the built release binary over real stdio, measured the way the seed was: a
//! small client timing each request from the write of the request line to the read of the reply line.
//!
//! Run: `cargo bench -p codex-control-plane-tests --bench mcp`
//! (with the seed side by side: `SEED_MCP_COMMAND=/path/to/venv/bin/codex-control-plane-mcp cargo bench ...`)
//!
//! One run prints:
//!
//! - cold start: spawn -> `initialize` -> `tools/list` answered (plugin artifact cache and page cache warm, as
//!   on a user's second start), no codex binary configured;
//! - `ping` (the floor: stdio both ways and the JSON-RPC dispatch; the seed has no `ping`), `tools/list` and
//!   `codex_health_summary` on a running server;
//! - the pipe floor: a line as long as our `tools/list` reply, written by a thread of this process through a
//!   pipe as wide as the server's and read the same way (what the kernel and the client cost without a server),
//!   once copied into the pipe (`write`) and once handed over by reference (`vmsplice`, as the server does), and
//!   once written into a Unix socket pair (what Node-based clients spawn servers with);
//! - with 1k and with 100k operations already in the database (prefilled through the library's `Store` before
//!   the server starts): `codex_submit_task` (`start_chat`) -> `operationId`, once round-robin over 20 projects
//!   (the duplicate-prompt guard compares each prompt with the live prompts of its scope) and once with a new
//!   project per submit (nothing live in scope); then `codex_get_operation_status` polls of queued operations,
//!   of completed operations with a turn, messages and a final report, and of random prefilled rows;
//! - in the same sessions, `codex_start_plan_workflow` (every other one with a thread goal) and
//!   `codex_get_workflow_status` polls of those workflows (their plan turn stays queued behind the hanging
//!   app-server, so each poll reads a workflow with its actions, history, pending goal and operation);
//! - the server's VmRSS at the end of each session, and again after 12 s idle (with `MCP_BENCH_SMAPS=DIR`, a
//!   copy of its `/proc/PID/smaps` at each of those points goes to `DIR`);
//! - with `MCP_BENCH_SURFACE_ONLY=1`, only the cold start, `ping`, `tools/list`, health and the floors (about a
//!   minute: enough to compare two builds, alternating, where the full run takes a quarter of an hour);
//! - with `SEED_MCP_COMMAND` set, the same series against the seed (its database holds only what the series
//!   submit: it cannot be prefilled from here) and a side-by-side table with ratios. Unset, that part is skipped.
//!
//! During the timed submit and poll series the server's app-server is the scripted `fake-app-server` in `hang`
//! mode: the dispatcher claims up to the global limit of operations, their `thread/start` never returns, and
//! every other operation stays queued, so nothing but the calls themselves (and the claim attempts each submit
//! wakes) runs in the background. The completed operations polled come from an earlier, untimed session on the
//! same database that ran them through the real `codex app-server` and the fake model (127.0.0.1 only).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use codex_control_plane::store::{operations, NewOperation, Store};
use serde_json::{json, Value};
use support::fake_model::{FakeModel, Reply};
use support::mcp_client::{isolated_env, workspace_binary, TempDir};
use support::peer::CodexHome;

/// Cold starts measured (after one untimed warm-up start).
const COLD_STARTS: usize = 20;
/// Samples of `tools/list` and `codex_health_summary`.
const SURFACE_SAMPLES: usize = 200;
/// Timed `codex_submit_task` calls per database size.
const SUBMITS: usize = 300;
/// Projects the submits go to, round-robin: each new prompt meets at most `SUBMITS / PROJECTS` live prompts
/// of its scope in the duplicate-prompt guard.
const PROJECTS: usize = 20;
/// Timed `codex_get_operation_status` polls per series.
const POLLS: usize = 1_000;
/// Operations run to completion through the real peer before the timed session (polled as "completed").
const COMPLETED_OPS: usize = 8;
/// Timed `codex_start_plan_workflow` calls per database size.
const WORKFLOWS: usize = 100;
/// Untimed calls before each timed series.
const WARMUP: usize = 20;
const CLOSE_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
    min: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Results of one server, in print order.
#[derive(Default)]
struct Results {
    rows: Vec<(String, Stats)>,
    rss_kb: Vec<(String, u64)>,
}

impl Results {
    fn record(&mut self, name: &str, mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let stats = Stats {
            n: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            min: samples[0],
        };
        println!(
            "  {name:<58} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms  min={:>8.3} ms",
            stats.n,
            ms(stats.p50),
            ms(stats.p99),
            ms(stats.min)
        );
        self.rows.push((name.to_string(), stats));
        stats
    }

    fn rss(&mut self, name: &str, pid: u32) {
        if let Some(kb) = vm_rss_kb(pid) {
            println!("  {name:<58} {:.1} MB", kb as f64 / 1024.0);
            self.rss_kb.push((name.to_string(), kb));
        }
        keep_smaps(name, pid);
    }

    fn get(&self, name: &str) -> Option<Stats> {
        self.rows.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }
}

/// With `MCP_BENCH_SMAPS=DIR`, copies the server's `/proc/PID/smaps` at each memory point into `DIR` (one file
/// per point, named after it), so where the resident set lies can be read afterwards.
fn keep_smaps(name: &str, pid: u32) {
    let Some(dir) = std::env::var_os("MCP_BENCH_SMAPS").map(PathBuf::from) else {
        return;
    };
    let file: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let copied = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::copy(
            format!("/proc/{pid}/smaps"),
            dir.join(format!("{pid}-{file}.smaps")),
        )
    });
    if let Err(error) = copied {
        eprintln!("smaps of {pid} not kept: {error}");
    }
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The tool payload of a `tools/call` result: `structuredContent`, or the JSON text block (the seed sends only
/// the text block).
fn payload(result: &Value) -> anyhow::Result<Value> {
    if let Some(structured) = result.get("structuredContent") {
        return Ok(structured.clone());
    }
    let text = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .context("tool result without structuredContent or text")?;
    serde_json::from_str(text).context("text block is not JSON")
}

/// One timed `tools/call` (write of the request line to read of the reply line); returns the payload too.
fn timed_call(
    client: &mut Client,
    name: &str,
    arguments: Value,
) -> anyhow::Result<(Duration, Value)> {
    let (elapsed, result) =
        client.request("tools/call", json!({"name": name, "arguments": arguments}))?;
    let payload = payload(&result)?;
    if payload.get("ok") == Some(&json!(false)) {
        bail!("{name} failed: {payload}");
    }
    Ok((elapsed, payload))
}

/// A minimal MCP stdio client that times each request the way the seed was measured: from the write of the
/// request line to the read of its reply line, on the calling thread (no reader thread, no channel hop), and
/// parses the reply only after the clock stops.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
    /// When the child was spawned, and when the last reply line was read.
    spawned: Instant,
    replied_at: Instant,
}

impl Client {
    /// Spawns `binary` with exactly `env` (plus PATH); its stderr goes to ours.
    fn spawn(binary: &Path, env: &[(String, String)]) -> anyhow::Result<Client> {
        let spawned = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("failed to spawn {}", binary.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(Client {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            next_id: 1,
            line: String::new(),
            spawned,
            replied_at: spawned,
        })
    }

    fn write_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(line.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Sends a request; returns the time to its reply line and the reply's `result`.
    fn request(&mut self, method: &str, params: Value) -> anyhow::Result<(Duration, Value)> {
        let id = self.next_id;
        self.next_id += 1;
        let line = format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        );
        let started = Instant::now();
        self.write_line(&line)?;
        loop {
            self.line.clear();
            if self.stdout.read_line(&mut self.line)? == 0 {
                bail!("server closed stdout before replying to {method}");
            }
            self.replied_at = Instant::now();
            let elapsed = self.replied_at.duration_since(started);
            let message: Value = serde_json::from_str(&self.line)
                .with_context(|| format!("non-JSON line on stdout: {:?}", self.line))?;
            if message.get("method").is_none() && message.get("id") == Some(&json!(id)) {
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {error}");
                }
                let result = message.get("result").cloned();
                return Ok((elapsed, result.context("reply without result")?));
            }
        }
    }

    /// `initialize` and the `initialized` notification; returns the time from spawn to the `initialize` reply.
    fn initialize(&mut self) -> anyhow::Result<Duration> {
        self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench-client", "version": "1.0.0"}
            }),
        )?;
        let since_spawn = self.replied_at.duration_since(self.spawned);
        self.write_line(
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\",\"params\":{}}\n",
        )?;
        Ok(since_spawn)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes stdin (the MCP stdio goodbye) and waits for the exit; kills after [`CLOSE_WAIT`].
    fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CLOSE_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!(
            "server {} did not exit after stdin closed; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A prompt of ten words drawn from the index and the salt: no two prompts of the run reach the duplicate
/// guard's 0.90 similarity (the closest pairs in one scope are about 0.78).
fn message(idx: usize, salt: &str) -> String {
    const WORDS: [&str; 32] = [
        "refactor", "storage", "parser", "network", "cache", "render", "queue", "schema", "auth",
        "logging", "index", "retry", "config", "metrics", "tests", "docs", "layout", "shader",
        "billing", "search", "upload", "session", "router", "worker", "export", "import", "locale",
        "theme", "plugin", "backup", "audit", "quota",
    ];
    let mut state = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in salt.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut words = Vec::with_capacity(10);
    for _ in 0..10 {
        state ^= state >> 29;
        state = state.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        words.push(WORDS[(state >> 59) as usize % WORDS.len()]);
    }
    format!("{salt} task {idx}: {} then report", words.join(" "))
}

fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cores} cores, load average {} at start",
        load_average()
    );
    let ours_binary = support::mcp_client::server_binary()?;
    let seed_binary = std::env::var_os("SEED_MCP_COMMAND").map(PathBuf::from);
    let surface_only = std::env::var_os("MCP_BENCH_SURFACE_ONLY").is_some_and(|v| v == "1");

    let mut ours = Results::default();
    println!("== codex-control-plane-mcp ({})", ours_binary.display());
    let list_bytes = surface(&ours_binary, &mut ours)?;
    ours.record(
        "pipe floor: a tools/list-sized line written by a thread",
        pipe_floor(list_bytes, Handover::Copied)?,
    );
    ours.record(
        "pipe floor: the same line vmspliced by a thread",
        pipe_floor(list_bytes, Handover::ByReference)?,
    );
    ours.record(
        "socket pair floor: the same line written by a thread",
        pipe_floor(list_bytes, Handover::SocketPair)?,
    );
    if !surface_only {
        for n in [1_000usize, 100_000] {
            durable(&ours_binary, n, &mut ours)?;
        }
    }

    let mut seed = Results::default();
    if let Some(binary) = &seed_binary {
        println!(
            "== seed: codex-control-plane-mcp 0.2.1, Python ({})",
            binary.display()
        );
        surface(binary, &mut seed)?;
        if !surface_only {
            seed_durable(binary, &mut seed)?;
        }
    } else {
        println!("== seed skipped (set SEED_MCP_COMMAND to the seed's server executable)");
    }
    println!("load average {} at end", load_average());

    if seed_binary.is_some() {
        summary(&ours, &seed);
    }
    Ok(())
}

/// Cold start, `tools/list`, `codex_health_summary`, in an isolated environment with no codex binary; returns
/// the length of the `tools/list` reply line.
fn surface(binary: &Path, results: &mut Results) -> anyhow::Result<usize> {
    let dir = TempDir::new("bench-mcp");
    let env = isolated_env(dir.path());
    // Warm the plugin artifact cache, the database file and the page cache once.
    let mut warm = Client::spawn(binary, &env)?;
    warm.initialize()?;
    warm.request("tools/list", json!({}))?;
    warm.close();

    let mut cold = Vec::with_capacity(COLD_STARTS);
    let mut initialized = Vec::with_capacity(COLD_STARTS);
    for _ in 0..COLD_STARTS {
        let started = Instant::now();
        let mut client = Client::spawn(binary, &env)?;
        initialized.push(client.initialize()?);
        let asked = started.elapsed();
        let (answered, _) = client.request("tools/list", json!({}))?;
        cold.push(asked + answered);
        client.close();
    }
    results.record("cold start: spawn -> initialize reply", initialized);
    results.record("cold start: spawn -> tools/list reply", cold);

    let mut client = Client::spawn(binary, &env)?;
    client.initialize()?;
    // The floor of any request: stdio both ways and the JSON-RPC dispatch (the seed has no `ping`).
    if client.request("ping", json!({})).is_ok() {
        let mut ping = Vec::with_capacity(SURFACE_SAMPLES);
        for _ in 0..SURFACE_SAMPLES {
            ping.push(client.request("ping", json!({}))?.0);
        }
        results.record("ping", ping);
    }
    for _ in 0..WARMUP {
        client.request("tools/list", json!({}))?;
    }
    let mut list = Vec::with_capacity(SURFACE_SAMPLES);
    for _ in 0..SURFACE_SAMPLES {
        list.push(client.request("tools/list", json!({}))?.0);
    }
    results.record("tools/list", list);
    let list_bytes = client.line.len();

    for _ in 0..WARMUP {
        timed_call(&mut client, "codex_health_summary", json!({}))?;
    }
    let mut health = Vec::with_capacity(SURFACE_SAMPLES);
    for _ in 0..SURFACE_SAMPLES {
        health.push(timed_call(&mut client, "codex_health_summary", json!({}))?.0);
    }
    results.record("codex_health_summary", health);
    results.rss("VmRSS after tools/list + health series", client.pid());
    client.close();
    Ok(list_bytes)
}

/// How the floor's writer puts its reply into the client's stream.
#[derive(Clone, Copy)]
enum Handover {
    /// `write` into a pipe: the kernel copies the bytes into fresh pipe pages.
    Copied,
    /// `vmsplice` into a pipe: the pipe takes the pages of the (constant) reply, as the server does with its tools
    /// array.
    ByReference,
    /// `write` into a Unix socket pair, what Node's `child_process` gives a server for its stdio.
    SocketPair,
}

/// The floor writer's end of the client's stream, and how it writes there.
enum Answer {
    Copied(std::io::PipeWriter),
    ByReference(std::io::PipeWriter),
    Socket(std::os::unix::net::UnixStream),
}

/// What moving a reply of `bytes` costs with no server at all: a thread answers each request line with a
/// prebuilt line of that size, `handover`'s way (a pipe is widened like the server's, 512 KiB), and this thread
/// reads it the way [`Client::request`] does. The kernel's copies, the wake-ups and the client's reading are all that is left,
/// so no server can answer `tools/list` faster than this on the same machine (with [`Handover::ByReference`]).
fn pipe_floor(bytes: usize, handover: Handover) -> anyhow::Result<Vec<Duration>> {
    use std::os::fd::AsRawFd;
    let (requests, mut ask) = std::io::pipe()?;
    let (answers, answer): (Box<dyn std::io::Read + Send>, Answer) = match handover {
        Handover::SocketPair => {
            let (answers, answer) = std::os::unix::net::UnixStream::pair()?;
            (Box::new(answers), Answer::Socket(answer))
        }
        Handover::Copied | Handover::ByReference => {
            let (answers, answer) = std::io::pipe()?;
            // SAFETY: `answer` is an open pipe descriptor; F_SETPIPE_SZ takes an int argument.
            unsafe { libc::fcntl(answer.as_raw_fd(), libc::F_SETPIPE_SZ, 512 << 10) };
            let answer = match handover {
                Handover::ByReference => Answer::ByReference(answer),
                _ => Answer::Copied(answer),
            };
            (Box::new(answers), answer)
        }
    };
    let mut reply = vec![b'x'; bytes.max(1)];
    if let Some(last) = reply.last_mut() {
        *last = b'\n';
    }
    // Never freed or written again, so the pipe may hold its pages for as long as it likes.
    let reply: &'static [u8] = Box::leak(reply.into_boxed_slice());
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let mut requests = BufReader::new(requests);
        let mut answer = answer;
        let mut line = String::new();
        loop {
            line.clear();
            if requests.read_line(&mut line)? == 0 {
                return Ok(());
            }
            match &mut answer {
                Answer::Copied(pipe) => pipe.write_all(reply)?,
                Answer::ByReference(pipe) => splice_all(pipe, reply)?,
                Answer::Socket(socket) => socket.write_all(reply)?,
            }
        }
    });
    let mut answers = BufReader::new(answers);
    let mut line = String::new();
    let mut samples = Vec::with_capacity(SURFACE_SAMPLES);
    for round in 0..WARMUP + SURFACE_SAMPLES {
        line.clear();
        let started = Instant::now();
        ask.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n")?;
        ask.flush()?;
        if answers.read_line(&mut line)? == 0 {
            bail!("the floor's writer stopped");
        }
        if round >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    drop(ask);
    match server.join() {
        Ok(result) => result?,
        Err(_) => bail!("the floor's writer panicked"),
    }
    Ok(samples)
}

/// Hands all of `bytes` to the pipe `to` by reference (blocking).
fn splice_all(to: &std::io::PipeWriter, mut bytes: &'static [u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        let iovec = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        // SAFETY: `to` is an open pipe descriptor and `iovec` describes `bytes`, which is never freed or written.
        let taken = unsafe { libc::vmsplice(to.as_raw_fd(), &iovec, 1, 0) };
        if taken < 0 {
            return Err(std::io::Error::last_os_error());
        }
        bytes = &bytes[taken as usize..];
    }
    Ok(())
}

/// Fills the database at `path` with `n` completed `start_chat` operations (1 000 rows per transaction).
fn prefill(path: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let store = Store::open(path)?;
    let mut ids = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + 1_000).min(n);
        let batch = store.write_blocking(move |tx| {
            let now = codex_control_plane::time::now_ms();
            let mut out = Vec::with_capacity(end - start);
            for idx in start..end {
                let scope = format!("/bench/scope-{}", idx % 1_000);
                let text = message(idx, "prefilled");
                let mut new = NewOperation::new(
                    "start_chat",
                    json!({"operationType": "start_chat", "message": text, "cwd": scope}),
                );
                new.client_request_id = Some(format!("prefill-{idx}"));
                new.project_path_key = scope.clone();
                new.cwd = Some(scope);
                new.message = Some(text);
                new.dedup_policy = "idempotency_only".into();
                let outcome = operations::insert(tx, &new, now)?;
                out.push(outcome.operation().operation_id.clone());
            }
            tx.execute(
                "UPDATE codex_operations SET status = 'completed', queue_status = 'completed' \
                 WHERE status = 'queued'",
                [],
            )?;
            Ok(out)
        })?;
        ids.extend(batch);
        start = end;
    }
    Ok(ids)
}

fn projects(root: &Path, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    (0..count)
        .map(|i| {
            let project = root.join("projects").join(format!("{prefix}-{i:03}"));
            std::fs::create_dir_all(&project)?;
            Ok(project.display().to_string())
        })
        .collect()
}

fn submit_args(idx: usize, projects: &[String], salt: &str) -> Value {
    json!({
        "operation_type": "start_chat",
        "message": message(idx, salt),
        "project_id": projects[idx % projects.len()],
    })
}

fn operation_id(payload: &Value) -> anyhow::Result<String> {
    payload
        .get("operationId")
        .or_else(|| payload.get("operation_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no operationId in {payload}"))
}

/// Runs `count` operations to completion through the real codex app-server and the fake model (untimed), so
/// the timed session can poll completed operations that have a turn, messages and a final report.
fn complete_through_real_peer(
    binary: &Path,
    dir: &TempDir,
    projects: &[String],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let model = FakeModel::start();
    model.push((0..count).map(|i| Reply::text(&format!("Done with task {i}: all checks pass."))));
    let home = CodexHome::new(&model);
    let env = support::peer::server_env(dir, &home);
    let mut client = Client::spawn(binary, &env)?;
    client.initialize()?;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let (_, payload) = timed_call(
            &mut client,
            "codex_submit_task",
            submit_args(i, projects, "completed"),
        )?;
        ids.push(operation_id(&payload)?);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        loop {
            let (_, status) = timed_call(
                &mut client,
                "codex_get_operation_status",
                json!({"operation_id": id}),
            )?;
            if status["terminal"] == json!(true) {
                if status["status"] != json!("completed") {
                    bail!("operation through the real peer did not complete: {status}");
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("operation through the real peer still running: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    client.close();
    Ok(ids)
}

/// Times `POLLS` status polls cycling over `ids` (after a warm-up).
fn poll_series(
    client: &mut Client,
    results: &mut Results,
    name: &str,
    ids: &[String],
) -> anyhow::Result<()> {
    let pick = |i: usize| &ids[(i * 7_919) % ids.len()];
    for i in 0..WARMUP {
        timed_call(
            client,
            "codex_get_operation_status",
            json!({"operation_id": pick(i + POLLS)}),
        )?;
    }
    let mut polls = Vec::with_capacity(POLLS);
    for i in 0..POLLS {
        let (elapsed, _) = timed_call(
            client,
            "codex_get_operation_status",
            json!({"operation_id": pick(i)}),
        )?;
        polls.push(elapsed);
    }
    results.record(name, polls);
    Ok(())
}

/// Warm-up, then the two timed submit series: [`SUBMITS`] prompts round-robin over [`PROJECTS`] projects (the
/// duplicate guard compares each with the live prompts of its scope), then [`SUBMITS`] prompts each to a project
/// of its own (nothing live in scope). Returns the operation ids of the first series.
fn submit_series(
    client: &mut Client,
    results: &mut Results,
    root: &Path,
    suffix: &str,
) -> anyhow::Result<Vec<String>> {
    let shared = projects(root, "project", PROJECTS)?;
    let solo = projects(root, "solo", SUBMITS)?;
    for i in 0..WARMUP {
        timed_call(
            client,
            "codex_submit_task",
            submit_args(i, &shared, "warmup"),
        )?;
    }
    let mut submitted = Vec::with_capacity(SUBMITS);
    for (name, projects) in [(SUBMIT_SHARED, &shared), (SUBMIT_SOLO, &solo)] {
        let mut submits = Vec::with_capacity(SUBMITS);
        for i in 0..SUBMITS {
            let (elapsed, payload) =
                timed_call(client, "codex_submit_task", submit_args(i, projects, name))?;
            submits.push(elapsed);
            if name == SUBMIT_SHARED {
                submitted.push(operation_id(&payload)?);
            }
        }
        results.record(&format!("{name} ({suffix})"), submits);
    }
    Ok(submitted)
}

const SUBMIT_SHARED: &str = "submit, 20 projects round-robin";
const SUBMIT_SOLO: &str = "submit, a new project each";
const POLL_QUEUED: &str = "status poll, queued op";
const POLL_COMPLETED: &str = "status poll, completed op with turn";
const POLL_PREFILLED: &str = "status poll, random prefilled op";

/// Submits and polls with `n` operations already in the database.
fn durable(binary: &Path, n: usize, results: &mut Results) -> anyhow::Result<()> {
    let dir = TempDir::new("bench-mcp-ops");
    let env = isolated_env(dir.path());
    let db: PathBuf = env
        .iter()
        .find(|(k, _)| k == "CODEX_MCP_STATE_DB")
        .map(|(_, v)| PathBuf::from(v))
        .context("no state db in the isolated environment")?;

    let started = Instant::now();
    let prefilled = prefill(&db, n)?;
    let completed = complete_through_real_peer(
        binary,
        &dir,
        &projects(dir.path(), "done", COMPLETED_OPS)?,
        COMPLETED_OPS,
    )?;
    println!(
        "  -- {n} operations prefilled, {COMPLETED_OPS} run through the real peer ({:.1} s, untimed)",
        started.elapsed().as_secs_f64()
    );

    let mut env = env;
    env.push((
        "CODEX_BINARY_PATH".into(),
        workspace_binary("codex-control-plane-tests", "fake-app-server")?
            .display()
            .to_string(),
    ));
    env.push(("FAKE_APP_SERVER_MODE".into(), "hang".into()));
    env.push((
        "CODEX_MCP_APP_SERVER_REQUEST_TIMEOUT_MS".into(),
        "600000".into(),
    ));
    let mut client = Client::spawn(binary, &env)?;
    client.initialize()?;

    let suffix = format!("{} ops in db", db_label(n));
    let submitted = submit_series(&mut client, results, dir.path(), &suffix)?;
    for (name, ids) in [
        (POLL_QUEUED, &submitted),
        (POLL_COMPLETED, &completed),
        (POLL_PREFILLED, &prefilled),
    ] {
        poll_series(&mut client, results, &format!("{name} ({suffix})"), ids)?;
    }
    workflow_series(&mut client, results, dir.path(), &suffix)?;
    results.rss(&format!("VmRSS after the {suffix} series"), client.pid());
    // What the server keeps once left alone: the heap trimmer (`memory.rs`) runs every 5 s.
    std::thread::sleep(Duration::from_secs(12));
    results.rss(
        &format!("VmRSS after the {suffix} series and 12 s idle"),
        client.pid(),
    );
    client.close();
    Ok(())
}

const WORKFLOW_START: &str = "start_plan_workflow";
const WORKFLOW_POLL: &str = "workflow status poll";

/// Times [`WORKFLOWS`] plan-workflow starts in one project (every other one with a goal), then [`POLLS`]
/// workflow status polls cycling over them.
fn workflow_series(
    client: &mut Client,
    results: &mut Results,
    root: &Path,
    suffix: &str,
) -> anyhow::Result<()> {
    let project = projects(root, "workflow", 1)?.remove(0);
    let args = |i: usize, salt: &str| {
        let mut args = json!({"project_id": project, "message": message(i, salt)});
        if i.is_multiple_of(2) {
            args["goal"] = json!(format!("ship task {i}"));
        }
        args
    };
    for i in 0..WARMUP {
        timed_call(client, "codex_start_plan_workflow", args(i, "wf-warmup"))?;
    }
    let mut starts = Vec::with_capacity(WORKFLOWS);
    let mut ids = Vec::with_capacity(WORKFLOWS);
    for i in 0..WORKFLOWS {
        let (elapsed, payload) = timed_call(client, "codex_start_plan_workflow", args(i, "wf"))?;
        starts.push(elapsed);
        ids.push(
            payload["workflowId"]
                .as_str()
                .with_context(|| format!("no workflowId in {payload}"))?
                .to_string(),
        );
    }
    results.record(&format!("{WORKFLOW_START} ({suffix})"), starts);
    let pick = |i: usize| &ids[(i * 7_919) % ids.len()];
    for i in 0..WARMUP {
        timed_call(
            client,
            "codex_get_workflow_status",
            json!({"workflow_id": pick(i + POLLS)}),
        )?;
    }
    let mut polls = Vec::with_capacity(POLLS);
    for i in 0..POLLS {
        let (elapsed, _) = timed_call(
            client,
            "codex_get_workflow_status",
            json!({"workflow_id": pick(i)}),
        )?;
        polls.push(elapsed);
    }
    results.record(&format!("{WORKFLOW_POLL} ({suffix})"), polls);
    Ok(())
}

fn db_label(n: usize) -> String {
    if n >= 1_000 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// The seed's submit and poll series. Its database cannot be prefilled from here (another schema), so it holds
/// only the operations these series submit; nothing runs them (no codex binary), so they stay queued.
fn seed_durable(binary: &Path, results: &mut Results) -> anyhow::Result<()> {
    let dir = TempDir::new("bench-mcp-seed-ops");
    let env = isolated_env(dir.path());
    let mut client = Client::spawn(binary, &env)?;
    client.initialize()?;
    let submitted = submit_series(&mut client, results, dir.path(), SEED_SUFFIX)?;
    poll_series(
        &mut client,
        results,
        &format!("{POLL_QUEUED} ({SEED_SUFFIX})"),
        &submitted,
    )?;
    results.rss("VmRSS after the submit + poll series", client.pid());
    client.close();
    Ok(())
}

/// The seed's database holds only what its series submit (at most 620 operations).
const SEED_SUFFIX: &str = "<= 620 ops in db";

/// Side by side where both servers have the same call.
fn summary(ours: &Results, seed: &Results) {
    let same = |name: &str| (name.to_string(), name.to_string(), name.to_string());
    let ours_vs_seed = |name: &str, n: &str| {
        (
            format!("{name} (ours {n})"),
            format!("{name} ({n} ops in db)"),
            format!("{name} ({SEED_SUFFIX})"),
        )
    };
    let pairs = [
        same("cold start: spawn -> tools/list reply"),
        same("tools/list"),
        same("codex_health_summary"),
        ours_vs_seed(SUBMIT_SHARED, "1k"),
        ours_vs_seed(SUBMIT_SHARED, "100k"),
        ours_vs_seed(SUBMIT_SOLO, "1k"),
        ours_vs_seed(SUBMIT_SOLO, "100k"),
        ours_vs_seed(POLL_QUEUED, "1k"),
        ours_vs_seed(POLL_QUEUED, "100k"),
    ];
    println!("== side by side (p50 / p99, ms; ratio = seed / ours)");
    for (label, ours_name, seed_name) in pairs {
        let (Some(a), Some(b)) = (ours.get(&ours_name), seed.get(&seed_name)) else {
            continue;
        };
        println!(
            "  {label:<46} ours {:>7.3} / {:>7.3}   seed {:>7.3} / {:>7.3}   p50 x{:.1}  p99 x{:.1}",
            ms(a.p50),
            ms(a.p99),
            ms(b.p50),
            ms(b.p99),
            ms(b.p50) / ms(a.p50),
            ms(b.p99) / ms(a.p99),
        );
    }
    let ours_rss = ours.rss_kb.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    let seed_rss = seed.rss_kb.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    if ours_rss > 0 && seed_rss > 0 {
        println!(
            "  {:<46} ours {:>7.1} MB        seed {:>7.1} MB        x{:.1}",
            "VmRSS (max of the sessions)",
            ours_rss as f64 / 1024.0,
            seed_rss as f64 / 1024.0,
            seed_rss as f64 / ours_rss as f64
        );
    }
}
