//! MCP over streamable HTTP against the built binary on 127.0.0.1: the guard (token, Host, Origin), the same
//! tools as stdio, the generated token file, and the refusal of a non-loopback bind.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::{json, Value};
use support::http_client::{read_token, run_to_exit, send, token_file, HttpServer, McpHttpClient};
use support::mcp_client::{isolated_env, McpClient, TempDir};

/// A configured token for the tests that do not want a file.
const CONFIGURED_TOKEN: &str = "configured-token-0123456789abcdef0123456789";

fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "e2e-http-client", "version": "1.0.0"}
        }
    })
    .to_string()
}

fn stop(server: HttpServer) {
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("exit after SIGTERM");
    assert!(status.success(), "server exit status {status}");
}

#[test]
fn requests_without_the_token_or_from_foreign_sites_are_refused() {
    let dir = TempDir::new("http-guard");
    let server = HttpServer::start(&isolated_env(dir.path())).expect("start");
    let token = read_token(dir.path()).expect("token file");
    let addr = server.addr;
    let body = initialize_body();
    let json_headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let post = |extra: &[(&str, &str)]| {
        let mut headers = json_headers.to_vec();
        headers.extend_from_slice(extra);
        send(addr, "POST", "/mcp", &headers, &body).expect("exchange")
    };

    // No token, then a wrong one: 401 with a Bearer challenge.
    let response = post(&[]);
    assert_eq!(response.status, 401);
    let challenge = response.header("www-authenticate").expect("challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let response = post(&[("Authorization", "Bearer not-the-token")]);
    assert_eq!(response.status, 401);
    assert!(response
        .header("www-authenticate")
        .is_some_and(|c| c.contains("invalid_token")));
    let wrong_scheme = format!("Basic {token}");
    assert_eq!(post(&[("Authorization", &wrong_scheme)]).status, 401);

    // The right token from a foreign page, or under a name that is not ours: 403.
    let bearer = format!("Bearer {token}");
    let response = post(&[
        ("Authorization", &bearer),
        ("Origin", "https://evil.example"),
    ]);
    assert_eq!(response.status, 403);
    let foreign_host = format!("evil.example:{}", addr.port());
    assert_eq!(
        post(&[("Authorization", &bearer), ("Host", &foreign_host)]).status,
        403
    );
    let other_port = format!("localhost:{}", addr.port().wrapping_add(1).max(1));
    assert_eq!(
        post(&[("Authorization", &bearer), ("Host", &other_port)]).status,
        403
    );
    // Host and Origin are checked before the token, so a foreign page learns nothing.
    assert_eq!(post(&[("Host", &foreign_host)]).status, 403);

    // With the token, from a loopback page, under a loopback name: accepted.
    let local_host = format!("localhost:{}", addr.port());
    let response = post(&[
        ("Authorization", &bearer),
        ("Origin", "http://localhost:5173"),
        ("Host", &local_host),
    ]);
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    // Other paths do not exist.
    let response = send(addr, "GET", "/", &[("Authorization", &bearer)], "").expect("exchange");
    assert_eq!(response.status, 404);
    stop(server);
}

#[test]
fn an_authorized_client_gets_the_same_tools_as_stdio() {
    let dir = TempDir::new("http-tools");
    let server = HttpServer::start(&isolated_env(dir.path())).expect("start");
    let mut client = server.client(&read_token(dir.path()).expect("token file"));
    let result = client.initialize("2025-11-25").expect("initialize");
    assert_eq!(result["protocolVersion"], json!("2025-11-25"));
    assert_eq!(
        result["serverInfo"]["name"],
        json!("codex-control-plane-mcp")
    );
    client.request("ping", json!({})).expect("ping");
    let list = client.request("tools/list", json!({})).expect("tools/list");
    let http_tools = tool_names(&list);

    let stdio_dir = TempDir::new("http-tools-stdio");
    let mut stdio = McpClient::start(&isolated_env(stdio_dir.path())).expect("stdio start");
    let stdio_list = stdio.request("tools/list", json!({})).expect("tools/list");
    assert_eq!(http_tools, tool_names(&stdio_list));
    // The same tools: stdio writes the catalog serialised at start-up, HTTP serialises them per call.
    assert_eq!(list["tools"], stdio_list["tools"]);
    stdio.close(Duration::from_secs(10)).expect("stdio exit");

    let health = client
        .call_tool("codex_health_summary", json!({}))
        .expect("health");
    assert_eq!(health["ok"], json!(true), "{health}");
    assert_eq!(
        health["statusContract"]["surface"],
        json!("codex_health_summary")
    );
    // A second client gets its own session on the same server and state.
    let mut second = McpHttpClient::new(server.addr, &read_token(dir.path()).expect("token file"));
    second.initialize("2025-06-18").expect("second initialize");
    let again = second
        .call_tool("codex_health_summary", json!({}))
        .expect("health");
    assert_eq!(
        again["version"]["toolSurfaceHash"],
        health["version"]["toolSurfaceHash"]
    );
    stop(server);
}

fn tool_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .filter_map(|tool| tool["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    names
}

#[test]
fn the_generated_token_file_is_private_and_reused() {
    let dir = TempDir::new("http-token");
    let env = isolated_env(dir.path());
    let server = HttpServer::start(&env).expect("first start");
    let path = token_file(dir.path());
    assert!(
        server.banner.contains(&path.display().to_string()),
        "the start-up line names the token file: {}",
        server.banner
    );
    let metadata = std::fs::metadata(&path).expect("token file");
    assert_eq!(metadata.mode() & 0o777, 0o600);
    let first = read_token(dir.path()).expect("token file");
    assert!(first.len() >= 64, "{first}");
    stop(server);

    let server = HttpServer::start(&env).expect("second start");
    assert_eq!(read_token(dir.path()).expect("token file"), first);
    server
        .client(&first)
        .initialize("2025-06-18")
        .expect("the old token still works");
    stop(server);

    // A configured token wins over the file and is the only one accepted.
    let mut configured = env.clone();
    configured.push((
        "CODEX_CONTROL_PLANE_MCP_HTTP_TOKEN".into(),
        CONFIGURED_TOKEN.into(),
    ));
    let server = HttpServer::start(&configured).expect("start with a configured token");
    assert!(
        !server.banner.contains(&path.display().to_string()),
        "{}",
        server.banner
    );
    server
        .client(CONFIGURED_TOKEN)
        .initialize("2025-06-18")
        .expect("configured token");
    let refused = server.client(&first).initialize("2025-06-18");
    assert!(refused.is_err(), "the file's token is not accepted then");
    stop(server);
}

#[test]
fn a_non_loopback_bind_is_refused_unless_allowed_with_a_token() {
    let dir = TempDir::new("http-bind");
    let env = isolated_env(dir.path());
    let args = ["serve", "--http", "0.0.0.0:0"];
    let (status, stderr) = run_to_exit(&env, &args, Duration::from_secs(30)).expect("run");
    assert!(!status.success(), "{status}");
    assert!(stderr.contains("http.allow_non_loopback"), "{stderr}");
    // The refusal comes before anything starts: no database, no token file.
    assert!(!dir.path().join("state").join("state.sqlite3").exists());
    assert!(!token_file(dir.path()).exists());

    let mut allowed = env.clone();
    allowed.push((
        "CODEX_CONTROL_PLANE_MCP_HTTP_ALLOW_NON_LOOPBACK".into(),
        "true".into(),
    ));
    let (status, stderr) = run_to_exit(&allowed, &args, Duration::from_secs(30)).expect("run");
    assert!(!status.success(), "{status}");
    assert!(stderr.contains("http.token"), "{stderr}");
}
