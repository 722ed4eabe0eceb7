//! The server serves whatever its client hands it as stdin and stdout: pipes (every other test), a Unix socket
//! pair (the reactor path for sockets), and a regular file as stdout (the blocking fallback).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp_client::{isolated_env, line_channel, server_binary, wait_or_kill, TempDir};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"stdio-kinds","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
const HEALTH: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"codex_health_summary","arguments":{}}}"#;

fn server(dir: &TempDir) -> Command {
    let mut command = Command::new(server_binary().expect("server binary"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(isolated_env(dir.path()))
        .stderr(Stdio::inherit());
    command
}

/// The reply with `id` among the next lines, within 60 s (a debug server on a loaded machine starts slowly).
fn reply(lines: &Receiver<String>, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no reply to request {id}"));
        let message: Value = serde_json::from_str(&line).expect("a JSON line");
        if message["id"] == json!(id) {
            return message;
        }
    }
}

fn check_replies(lines: &Receiver<String>) {
    assert_eq!(
        reply(lines, 1)["result"]["serverInfo"]["name"],
        json!("codex-control-plane-mcp")
    );
    let tools = reply(lines, 2);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"codex_submit_task"), "{names:?}");
    let health = reply(lines, 3);
    assert_eq!(health["result"]["structuredContent"]["ok"], json!(true));
}

#[test]
fn a_unix_socket_pair_serves_requests_and_its_close_ends_the_server() {
    let dir = TempDir::new("stdio-socket");
    let (mut ours, theirs) = UnixStream::pair().expect("socket pair");
    let their_out = theirs.try_clone().expect("dup");
    let mut child = server(&dir)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(their_out)))
        .spawn()
        .expect("spawn");
    let lines = line_channel(ours.try_clone().expect("dup"));
    for line in [INITIALIZE, INITIALIZED, TOOLS_LIST, HEALTH] {
        writeln!(ours, "{line}").expect("write");
    }
    check_replies(&lines);
    // Closing our write side is the end of the session, as with a pipe.
    ours.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let status = wait_or_kill(&mut child, Duration::from_secs(15)).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "server did not exit cleanly: {status:?}"
    );
}

#[test]
fn a_regular_file_as_stdout_gets_every_reply() {
    let dir = TempDir::new("stdio-file");
    let out_path = dir.path().join("replies.jsonl");
    let out = std::fs::File::create(&out_path).expect("create");
    let mut child = server(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    for line in [INITIALIZE, INITIALIZED, TOOLS_LIST, HEALTH] {
        writeln!(stdin, "{line}").expect("write");
    }
    let lines = line_channel(tail(out_path));
    check_replies(&lines);
    drop(stdin);
    let status = wait_or_kill(&mut child, Duration::from_secs(15)).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "server did not exit cleanly: {status:?}"
    );
}

/// A reader that follows a file as it grows, for up to five minutes (then it reports the end, so its reader thread
/// ends even when a test fails).
fn tail(path: std::path::PathBuf) -> impl std::io::Read + Send + 'static {
    struct Tail(std::fs::File, Instant);
    impl std::io::Read for Tail {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.1.elapsed() < Duration::from_secs(300) {
                let n = self.0.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(0)
        }
    }
    Tail(
        std::fs::File::open(path).expect("open replies"),
        Instant::now(),
    )
}
