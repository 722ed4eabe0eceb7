//! MCP over streamable HTTP (`serve --http ADDR`): rmcp's streamable HTTP service at `/mcp`, behind a
//! [`guard::Guard`] (Host, Origin, bearer token), on a hyper HTTP/1.1 server.
//!
//! **Invariant:** no request reaches MCP without passing the guard, and a socket that is not loopback is only
//! bound when `http.allow_non_loopback` is set and the token is the operator's own (`http.token`).

pub mod guard;
pub mod token;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::guard::{Guard, Rejection};
use self::token::TokenSource;
use super::McpServer;
use crate::config::{Config, HTTP_ALLOW_NON_LOOPBACK_ENV, HTTP_TOKEN_ENV};

/// The path MCP is served at; every other path is a 404.
pub const MCP_PATH: &str = "/mcp";

/// Most connections served at once: far above what the MCP clients of one host open, low enough that a runaway
/// client cannot exhaust file descriptors. Further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// A client has this long to send its request headers, so a stalled one does not hold a connection slot.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// On shutdown, open connections get this long to finish their current response before they are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the HTTP transport could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A non-loopback address without `http.allow_non_loopback`.
    #[error(
        "refusing to serve HTTP on {addr}, which is not a loopback address: set http.allow_non_loopback = true \
         ({allow_env}) and http.token ({token_env}) to allow it",
        allow_env = HTTP_ALLOW_NON_LOOPBACK_ENV,
        token_env = HTTP_TOKEN_ENV
    )]
    NonLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// A non-loopback address with the test-only conformance fixtures on, which drop the token.
    #[error(
        "refusing to serve HTTP on {addr}: the conformance fixtures ({env}) take requests without a token, \
         so they are served on a loopback address only",
        env = crate::config::CONFORMANCE_FIXTURES_ENV
    )]
    FixturesOffLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// A non-loopback address allowed, but with a generated token only.
    #[error(
        "refusing to serve HTTP on {addr} with a generated token: a non-loopback address needs http.token \
         ({token_env}) set explicitly",
        token_env = HTTP_TOKEN_ENV
    )]
    NonLoopbackWithoutToken {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file could not be read or written.
    #[error("cannot use the HTTP token file {path}: {source}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file exists but must not be used as it is.
    #[error("the HTTP token file {path} {problem}")]
    BadTokenFile {
        /// The token file.
        path: PathBuf,
        /// What is wrong with it and what to do.
        problem: String,
    },
    /// The OS had no randomness for a new token.
    #[error("cannot generate an HTTP token: {0}")]
    Random(String),
}

/// A bound socket with its access rules, ready to serve.
pub struct HttpEndpoint {
    /// The listening socket.
    listener: TcpListener,
    /// The rules every request passes.
    guard: Guard,
    /// The address actually bound (the port is the OS's choice when 0 was asked for).
    local_addr: SocketAddr,
    /// Where the token came from, for the start-up message.
    token_source: TokenSource,
}

impl HttpEndpoint {
    /// Checks the bind policy, settles the token and binds `addr`. Nothing is started yet.
    pub async fn bind(config: &Config, addr: SocketAddr) -> Result<HttpEndpoint, HttpError> {
        if !addr.ip().is_loopback() {
            if config.http.conformance_fixtures {
                return Err(HttpError::FixturesOffLoopback { addr });
            }
            if !config.http.allow_non_loopback {
                return Err(HttpError::NonLoopback { addr });
            }
            if config.http.token.is_none() {
                return Err(HttpError::NonLoopbackWithoutToken { addr });
            }
            tracing::warn!(%addr, "serving HTTP on a non-loopback address (http.allow_non_loopback)");
        }
        let (token, token_source) = token::resolve(config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { addr, source })?;
        let guard = if config.http.conformance_fixtures {
            tracing::warn!(%local_addr, "conformance fixtures on: requests need no token on this loopback socket");
            Guard::without_token(local_addr, &config.http)
        } else {
            Guard::new(&token, local_addr, &config.http)
        };
        Ok(HttpEndpoint {
            listener,
            guard,
            local_addr,
            token_source,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the token came from.
    pub fn token_source(&self) -> &TokenSource {
        &self.token_source
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.local_addr)
    }

    /// Serves `server` until `shutdown` resolves, then ends every MCP session and closes the connections.
    pub async fn serve(self, server: McpServer, shutdown: impl std::future::Future<Output = ()>) {
        let HttpEndpoint {
            listener,
            guard,
            local_addr,
            ..
        } = self;
        let stop = CancellationToken::new();
        // Our guard already checked Host and Origin; rmcp's own checks stay on as a second line, fed the same
        // loopback names, and are switched off only where the operator widened ours.
        let mut rmcp_config = StreamableHttpServerConfig::default()
            .with_cancellation_token(stop.child_token())
            .with_allowed_hosts(rmcp_allowed_hosts(local_addr));
        if guard.widens_hosts() {
            rmcp_config = rmcp_config.disable_allowed_hosts();
        }
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            rmcp_config,
        );
        let guard = Arc::new(guard);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // The slot is taken before accepting, so a full server leaves new clients in the kernel's backlog.
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors or a connection reset before accept: wait a little, never spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handler = Handler {
                guard: guard.clone(),
                service: service.clone(),
            };
            let stop = stop.clone();
            connections.spawn(async move {
                serve_connection(stream, handler, stop).await;
                tracing::debug!(%peer, "connection closed");
                // The slot goes back only when the connection is over.
                drop(permit);
            });
            // Reap what has finished so the set does not grow with every connection ever served.
            while connections.try_join_next().is_some() {}
        }
        tracing::info!("HTTP transport stopping");
        // Closing the listener first: no new connection while the open ones drain.
        drop(listener);
        stop.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("HTTP connections still open after the drain timeout; closing them");
            connections.shutdown().await;
        }
    }
}

/// The `Host` values our guard accepts without `http.allowed_hosts`, in rmcp's syntax.
fn rmcp_allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("{}", SocketAddr::new(addr.ip(), port)),
    ]
}

/// What one connection needs to answer requests.
#[derive(Clone)]
struct Handler {
    /// The access rules.
    guard: Arc<Guard>,
    /// rmcp's streamable HTTP service (sessions are shared across connections).
    service: StreamableHttpService<McpServer, LocalSessionManager>,
}

type Response = http::Response<BoxBody<Bytes, Infallible>>;

impl Handler {
    async fn handle(self, request: http::Request<Incoming>) -> Result<Response, Infallible> {
        if let Err(rejection) = self.guard.check(request.headers()) {
            tracing::info!(
                reason = ?rejection,
                method = %request.method(),
                path = request.uri().path(),
                "HTTP request refused"
            );
            return Ok(rejected(rejection));
        }
        if request.uri().path() != MCP_PATH {
            return Ok(plain(
                http::StatusCode::NOT_FOUND,
                "Not Found: MCP is served at /mcp",
            ));
        }
        Ok(self.service.handle(request).await)
    }
}

/// Serves one connection until it closes or `stop` fires, then lets the response in flight finish.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    handler: Handler,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request| handler.clone().handle(request));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
            return;
        }
        _ = stop.cancelled() => {}
    }
    // Finish the response being written, then close instead of waiting for the next request.
    connection.as_mut().graceful_shutdown();
    if let Err(err) = connection.await {
        tracing::debug!(error = %err, "HTTP connection ended with an error during shutdown");
    }
}

fn rejected(rejection: Rejection) -> Response {
    let mut response = plain(rejection.status(), rejection.message());
    if let Some(challenge) = rejection.challenge() {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(challenge),
        );
    }
    response
}

fn plain(status: http::StatusCode, message: &'static str) -> Response {
    let mut response =
        http::Response::new(Full::new(Bytes::from_static(message.as_bytes())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
