//! One HTTP/1.1 `POST` with a JSON body, over TLS (rustls with the `ring` provider and Mozilla's roots from
//! `webpki-roots`, so no system certificate store is needed) or, to a loopback host only, plain TCP. One
//! connection per request: the summarizer makes a handful of calls per summary, so a pool would buy nothing.
//! The caller bounds the time (`tokio::time::timeout`); dropping the future closes the connection.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::config::{is_loopback_host, Secret};

/// Largest response body read; a chat completion is a few KiB.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Failures below the HTTP status: the URL, the connection, TLS, the protocol.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The endpoint URL is unusable.
    #[error("bad endpoint URL: {0}")]
    Url(String),
    /// The TCP connection failed (DNS included).
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// Host name.
        host: String,
        /// The I/O error rustls reported.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection closed, malformed response).
    #[error("HTTP exchange failed: {0}")]
    Protocol(#[from] hyper::Error),
    /// The response body could not be read, or was too large.
    #[error("cannot read the response body: {0}")]
    Body(String),
}

/// Where requests go: `{base_url}/chat/completions`, split for the connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
    authority: String,
    path: String,
}

impl Endpoint {
    /// The endpoint `path` below `base_url`. Plain http is refused unless the host is a loopback one (the
    /// configuration checks the same; this keeps the rule where the bytes leave).
    pub fn new(base_url: &str, path: &str) -> Result<Endpoint, HttpError> {
        let full = format!(
            "{}/{}",
            base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let uri: Uri = full
            .parse()
            .map_err(|_| HttpError::Url(format!("{full:?} is not a URL")))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(HttpError::Url("the scheme must be https or http".into())),
        };
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| HttpError::Url("no host".into()))?;
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| HttpError::Url("no host".into()))?;
        if !tls && !is_loopback_host(&host) {
            return Err(HttpError::Url(format!(
                "plain http to {host} refused: only loopback hosts may be reached without TLS"
            )));
        }
        Ok(Endpoint {
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
            host,
            tls,
            authority,
        })
    }

    /// `scheme://authority/path`, for logs (no credential is ever part of it).
    pub fn display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }
}

/// Aborts the connection task when the request is done or abandoned (a timeout drops the request future).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `body` as JSON to `endpoint` with `Authorization: Bearer <key>` when a key is given; returns the
/// status and the body.
pub async fn post_json(
    endpoint: &Endpoint,
    api_key: Option<&Secret>,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), HttpError> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|source| HttpError::Connect {
            host: endpoint.host.clone(),
            port: endpoint.port,
            source,
        })?;
    // Small request, one response: no reason to wait for Nagle.
    let _ = tcp.set_nodelay(true);
    if !endpoint.tls {
        return exchange(TokioIo::new(tcp), endpoint, api_key, body).await;
    }
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|_| HttpError::Url(format!("{} is not a valid TLS server name", endpoint.host)))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(|source| HttpError::Tls {
            host: endpoint.host.clone(),
            source,
        })?;
    exchange(TokioIo::new(tls), endpoint, api_key, body).await
}

/// The client TLS configuration: TLS 1.2 and 1.3 with `ring`, Mozilla's root certificates.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| HttpError::Url(format!("TLS setup: {err}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn exchange<IO>(
    io: IO,
    endpoint: &Endpoint,
    api_key: Option<&Secret>,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), HttpError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "summarizer connection ended with an error");
        }
    }));
    let mut request = Request::post(endpoint.path.as_str())
        .header(HOST, endpoint.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .header(
            USER_AGENT,
            concat!("codex-control-plane-mcp/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(key) = api_key {
        request = request.header(AUTHORIZATION, format!("Bearer {}", key.expose()));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| HttpError::Url(format!("cannot build the request: {err}")))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|err| HttpError::Body(err.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_the_url_and_refuse_plain_http_off_loopback() {
        let e = Endpoint::new("https://api.deepseek.com/", "/chat/completions").expect("https");
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("api.deepseek.com", 443, true)
        );
        assert_eq!(e.path, "/chat/completions");
        assert_eq!(e.display(), "https://api.deepseek.com/chat/completions");
        let e = Endpoint::new("http://127.0.0.1:8080/v1", "chat/completions").expect("loopback");
        assert_eq!(
            (e.port, e.tls, e.path.as_str()),
            (8080, false, "/v1/chat/completions")
        );
        assert_eq!(e.authority, "127.0.0.1:8080");
        let e = Endpoint::new("http://[::1]:9/v1", "x").expect("ipv6 loopback");
        assert_eq!(e.host, "::1");
        assert!(Endpoint::new("http://api.example.com/v1", "x").is_err());
        assert!(Endpoint::new("ftp://127.0.0.1", "x").is_err());
        assert!(tls_config().is_ok());
    }
}
