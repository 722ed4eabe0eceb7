//! The checks every HTTP request passes before MCP sees it, in this order: `Host` (DNS rebinding), `Origin`
//! (cross-site requests from a browser), then the bearer token.
//!
//! Host and Origin come first so a page on a foreign site learns nothing, not even whether a token is wanted.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::{HostPattern, HttpConfig, OriginPattern};

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 403: the `Host` header is missing or names a host this server does not serve.
    BadHost,
    /// 403: the `Origin` header names a site that may not call this server.
    BadOrigin,
    /// 401: no `Authorization: Bearer` header.
    MissingToken,
    /// 401: a bearer token that is not ours.
    WrongToken,
}

impl Rejection {
    /// The HTTP status to answer with.
    pub fn status(self) -> http::StatusCode {
        match self {
            Rejection::BadHost | Rejection::BadOrigin => http::StatusCode::FORBIDDEN,
            Rejection::MissingToken | Rejection::WrongToken => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// The plain-text body of the answer.
    pub fn message(self) -> &'static str {
        match self {
            Rejection::BadHost => "Forbidden: Host header is not allowed",
            Rejection::BadOrigin => "Forbidden: Origin header is not allowed",
            Rejection::MissingToken => "Unauthorized: a bearer token is required",
            Rejection::WrongToken => "Unauthorized: invalid bearer token",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750) for a 401, `None` for a 403.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            Rejection::MissingToken => Some("Bearer realm=\"codex-control-plane-mcp\""),
            Rejection::WrongToken => {
                Some("Bearer realm=\"codex-control-plane-mcp\", error=\"invalid_token\"")
            }
            Rejection::BadHost | Rejection::BadOrigin => None,
        }
    }
}

/// The access rules of one listening socket.
#[derive(Debug, Clone)]
pub struct Guard {
    /// SHA-256 of the token, so the comparison runs over equal lengths whatever a client sends; `None` only
    /// for the conformance fixtures' loopback socket (see [`Guard::without_token`]).
    token_digest: Option<[u8; 32]>,
    /// The address the socket is bound to; loopback `Host` values must carry its port.
    bound: SocketAddr,
    /// Extra `Host` values from `http.allowed_hosts`.
    allowed_hosts: Vec<HostPattern>,
    /// Extra `Origin` values from `http.allowed_origins`.
    allowed_origins: Vec<OriginPattern>,
}

impl Guard {
    /// Rules for a socket bound to `bound` that accepts `token`.
    pub fn new(token: &str, bound: SocketAddr, config: &HttpConfig) -> Guard {
        Guard {
            token_digest: Some(Sha256::digest(token.as_bytes()).into()),
            bound,
            allowed_hosts: config.allowed_hosts.clone(),
            allowed_origins: config.allowed_origins.clone(),
        }
    }

    /// Rules without a token, for the conformance suite (which cannot send one) on a loopback socket; Host and
    /// Origin are still checked.
    pub fn without_token(bound: SocketAddr, config: &HttpConfig) -> Guard {
        Guard {
            token_digest: None,
            ..Guard::new("", bound, config)
        }
    }

    /// True when `http.allowed_hosts` adds hosts to the loopback names and the bound address.
    pub fn widens_hosts(&self) -> bool {
        !self.allowed_hosts.is_empty()
    }

    /// Lets a request through or says why not.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        self.check_host(headers)?;
        self.check_origin(headers)?;
        self.check_token(headers)
    }

    fn check_host(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let (host, port) = headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .and_then(HostPattern::parse)
            .map(|pattern| (pattern.host, pattern.port))
            .ok_or(Rejection::BadHost)?;
        // A name is what DNS rebinding exploits; loopback names are safe only on our own port, an IP literal of
        // the bound address is safe as it is (no name was resolved).
        let ours = port == Some(self.bound.port())
            && (is_loopback_host(&host) || host.parse::<IpAddr>().ok() == Some(self.bound.ip()));
        if ours
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.matches(&host, port))
        {
            Ok(())
        } else {
            Err(Rejection::BadHost)
        }
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        // Clients that are not browsers send no Origin; only a browser can be tricked into calling us.
        let Some(value) = headers.get(http::header::ORIGIN) else {
            return Ok(());
        };
        let origin = value
            .to_str()
            .ok()
            .and_then(OriginPattern::parse)
            // A wildcard port is a pattern, never a real origin.
            .filter(|origin| origin.port.is_some())
            .ok_or(Rejection::BadOrigin)?;
        let loopback =
            matches!(origin.scheme.as_str(), "http" | "https") && is_loopback_host(&origin.host);
        if loopback
            || self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.matches(&origin))
        {
            Ok(())
        } else {
            Err(Rejection::BadOrigin)
        }
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        let value = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(Rejection::MissingToken)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or(Rejection::MissingToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Rejection::MissingToken);
        }
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        if constant_time_eq(&digest, expected) {
            Ok(())
        } else {
            Err(Rejection::WrongToken)
        }
    }
}

/// True for `localhost` and loopback IPs (`127.0.0.0/8`, `::1`), the names that cannot lead off this machine.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.to_canonical().is_loopback())
}

/// Compares without an early exit, so the time taken says nothing about how much of a guess was right.
fn constant_time_eq(left: &[u8; 32], right: &[u8; 32]) -> bool {
    let difference = left
        .iter()
        .zip(right.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    // `black_box` keeps the optimiser from turning the fold back into a short-circuiting compare.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn guard(config: HttpConfig) -> Guard {
        Guard::new(TOKEN, "127.0.0.1:4000".parse().expect("addr"), &config)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn bearer() -> String {
        format!("Bearer {TOKEN}")
    }

    #[test]
    fn loopback_hosts_pass_only_with_the_bound_port() {
        let guard = guard(HttpConfig::default());
        for host in [
            "127.0.0.1:4000",
            "localhost:4000",
            "[::1]:4000",
            "LOCALHOST:4000",
        ] {
            let auth = bearer();
            assert_eq!(
                guard.check(&headers(&[("host", host), ("authorization", &auth)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "127.0.0.1:4001",
            "localhost",
            "evil.example:4000",
            "127.0.0.1.nip.io:4000",
        ] {
            assert_eq!(
                guard.check(&headers(&[("host", host)])),
                Err(Rejection::BadHost),
                "{host}"
            );
        }
        assert_eq!(guard.check(&headers(&[])), Err(Rejection::BadHost));
    }

    #[test]
    fn configured_hosts_and_origins_are_added() {
        let config = HttpConfig {
            allowed_hosts: vec![HostPattern::parse("mcp.example").expect("host")],
            allowed_origins: vec![OriginPattern::parse("https://app.example").expect("origin")],
            ..HttpConfig::default()
        };
        let guard = guard(config);
        let auth = bearer();
        let ok = headers(&[
            ("host", "mcp.example:8443"),
            ("origin", "https://app.example"),
            ("authorization", &auth),
        ]);
        assert_eq!(guard.check(&ok), Ok(()));
        let wrong_port = headers(&[
            ("host", "localhost:4000"),
            ("origin", "https://app.example:444"),
        ]);
        assert_eq!(guard.check(&wrong_port), Err(Rejection::BadOrigin));
    }

    #[test]
    fn origins_must_be_loopback_when_present() {
        let guard = guard(HttpConfig::default());
        let auth = bearer();
        for origin in [
            "http://localhost:5173",
            "http://127.0.0.1:4000",
            "https://[::1]",
        ] {
            let request = headers(&[
                ("host", "localhost:4000"),
                ("origin", origin),
                ("authorization", &auth),
            ]);
            assert_eq!(guard.check(&request), Ok(()), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://localhost:*",
            "file://",
        ] {
            let request = headers(&[
                ("host", "localhost:4000"),
                ("origin", origin),
                ("authorization", &auth),
            ]);
            assert_eq!(guard.check(&request), Err(Rejection::BadOrigin), "{origin}");
        }
    }

    #[test]
    fn the_token_is_required_and_compared() {
        let guard = guard(HttpConfig::default());
        let host = ("host", "127.0.0.1:4000");
        assert_eq!(guard.check(&headers(&[host])), Err(Rejection::MissingToken));
        assert_eq!(
            guard.check(&headers(&[host, ("authorization", "Basic dXNlcjpwYXNz")])),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            guard.check(&headers(&[host, ("authorization", "Bearer nope")])),
            Err(Rejection::WrongToken)
        );
        let lower = format!("bearer {TOKEN}");
        assert_eq!(
            guard.check(&headers(&[host, ("authorization", &lower)])),
            Ok(())
        );
        assert_eq!(
            Rejection::WrongToken.status(),
            http::StatusCode::UNAUTHORIZED
        );
        assert!(Rejection::MissingToken.challenge().is_some());
        assert!(Rejection::BadHost.challenge().is_none());
    }
}
