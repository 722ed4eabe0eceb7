//! The `[http]` section: who may talk to `serve --http` (bearer token, allowed `Host` and `Origin` values) and
//! whether a non-loopback bind is allowed at all.

use std::fmt;

use super::ConfigError;

/// Environment variable holding the bearer token (`http.token`).
pub const HTTP_TOKEN_ENV: &str = "CODEX_CONTROL_PLANE_MCP_HTTP_TOKEN";
/// Environment variable for `http.allow_non_loopback`.
pub const HTTP_ALLOW_NON_LOOPBACK_ENV: &str = "CODEX_CONTROL_PLANE_MCP_HTTP_ALLOW_NON_LOOPBACK";
/// Environment variable for `http.allowed_hosts` (comma-separated).
pub const HTTP_ALLOWED_HOSTS_ENV: &str = "CODEX_CONTROL_PLANE_MCP_HTTP_ALLOWED_HOSTS";
/// Environment variable for `http.allowed_origins` (comma-separated).
pub const HTTP_ALLOWED_ORIGINS_ENV: &str = "CODEX_CONTROL_PLANE_MCP_HTTP_ALLOWED_ORIGINS";
/// Test-only switch (`1`): serve the MCP conformance suite's fixture tools, resources and prompts, and take
/// requests on a loopback socket without a token (the suite cannot send one). No file key: a test sets it for
/// the one server it starts.
pub const CONFORMANCE_FIXTURES_ENV: &str = "CODEX_CONTROL_PLANE_MCP_CONFORMANCE_FIXTURES";

/// Shortest bearer token accepted from the configuration: a floor against short typed passwords, not a target
/// (a generated token is 64 hex characters, 32 random bytes).
pub const MIN_TOKEN_CHARS: usize = 32;

/// The HTTP transport's access rules, resolved and validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// The bearer token (`http.token`); `None` means a generated one kept in `<db>.http-token`.
    pub token: Option<Secret>,
    /// Whether `serve --http` may bind an address that is not loopback (`http.allow_non_loopback`).
    pub allow_non_loopback: bool,
    /// `Host` values accepted besides the loopback names with the bound port (`http.allowed_hosts`).
    pub allowed_hosts: Vec<HostPattern>,
    /// `Origin` values accepted besides loopback origins (`http.allowed_origins`).
    pub allowed_origins: Vec<OriginPattern>,
    /// Test-only ([`CONFORMANCE_FIXTURES_ENV`]): conformance fixtures on, no token on loopback.
    pub conformance_fixtures: bool,
}

/// A secret string whose `Debug` output is redacted, so a logged configuration never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from the configuration.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself; call only where it is compared or sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An allowed `Host`: a name or IP, with a port or without one (then any port matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase host name or IP, IPv6 without brackets.
    pub host: String,
    /// The required port; `None` accepts any.
    pub port: Option<u16>,
}

/// An allowed `Origin`: `scheme://host[:port]` (the scheme's default port when none is given) or
/// `scheme://host:*` (any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// Lowercase scheme (`http`, `https`).
    pub scheme: String,
    /// Lowercase host name or IP, IPv6 without brackets.
    pub host: String,
    /// The required port; `None` accepts any (`:*`).
    pub port: Option<u16>,
}

impl HostPattern {
    /// Parses `host` or `host:port` (IPv6 in brackets); `None` when it is no valid authority.
    pub fn parse(text: &str) -> Option<HostPattern> {
        let (host, port) = split_authority(text.trim())?;
        Some(HostPattern { host, port })
    }

    /// True when a request's `Host` (already split and normalised) matches.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && self.port.is_none_or(|wanted| port == Some(wanted))
    }
}

impl OriginPattern {
    /// Parses `scheme://host[:port]` or `scheme://host:*`; `None` when it is no such origin.
    pub fn parse(text: &str) -> Option<OriginPattern> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return None;
        }
        if let Some(host) = rest.strip_suffix(":*") {
            let (host, port) = split_authority(host)?;
            return port.is_none().then_some(OriginPattern {
                scheme,
                host,
                port: None,
            });
        }
        let (host, port) = split_authority(rest)?;
        let port = port.or_else(|| default_port(&scheme))?;
        Some(OriginPattern {
            scheme,
            host,
            port: Some(port),
        })
    }

    /// True when a request's `Origin` (already parsed) matches.
    pub fn matches(&self, origin: &OriginPattern) -> bool {
        self.scheme == origin.scheme
            && self.host == origin.host
            && (self.port.is_none() || self.port == origin.port)
    }
}

/// The port an origin without one means (RFC 6454).
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into a lowercase host without brackets and the port. Anything with a
/// path, user info or an empty host is refused.
pub fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            // A second colon means an IPv6 address without brackets, which a `Host` header never carries.
            Some((host, _)) if host.contains(':') => return None,
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(port) => Some(port.parse::<u16>().ok()?),
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The `[http]` table of the file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHttp {
    token: Option<String>,
    allow_non_loopback: Option<bool>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
}

/// Resolves `[http]` from the file and the environment (which wins).
pub(super) fn resolve(
    raw: FileHttp,
    env_value: impl Fn(&'static str) -> Option<(&'static str, String)>,
    env_bool: Option<bool>,
    conformance_fixtures: bool,
) -> Result<HttpConfig, ConfigError> {
    let token = match env_value(HTTP_TOKEN_ENV) {
        Some((name, value)) => Some(token(name, value)?),
        None => match raw.token {
            Some(value) => Some(token("http.token", value)?),
            None => None,
        },
    };
    let list =
        |env_name: &'static str, key: &'static str, file: Option<Vec<String>>| match env_value(
            env_name,
        ) {
            Some((name, value)) => (
                name,
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            None => (key, file.unwrap_or_default()),
        };
    let (hosts_key, hosts) = list(
        HTTP_ALLOWED_HOSTS_ENV,
        "http.allowed_hosts",
        raw.allowed_hosts,
    );
    let allowed_hosts = hosts
        .iter()
        .map(|item| {
            HostPattern::parse(item).ok_or_else(|| {
                ConfigError::value(hosts_key, format!("{item:?} is not a host or host:port"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (origins_key, origins) = list(
        HTTP_ALLOWED_ORIGINS_ENV,
        "http.allowed_origins",
        raw.allowed_origins,
    );
    let allowed_origins = origins
        .iter()
        .map(|item| {
            OriginPattern::parse(item).ok_or_else(|| {
                ConfigError::value(
                    origins_key,
                    format!("{item:?} is not an origin (scheme://host[:port] or scheme://host:*)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpConfig {
        token,
        allow_non_loopback: env_bool.or(raw.allow_non_loopback).unwrap_or(false),
        allowed_hosts,
        allowed_origins,
        conformance_fixtures,
    })
}

/// A configured token must be long and a valid header value, or every request would fail later, far from the
/// typo.
fn token(key: &str, value: String) -> Result<Secret, ConfigError> {
    let value = value.trim().to_string();
    if value.chars().count() < MIN_TOKEN_CHARS {
        return Err(ConfigError::value(
            key,
            format!("a bearer token needs at least {MIN_TOKEN_CHARS} characters"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::value(
            key,
            "a bearer token may hold only visible ASCII characters",
        ));
    }
    Ok(Secret(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_parse_names_ips_and_ports() {
        assert_eq!(
            HostPattern::parse("Example.COM:8080"),
            Some(HostPattern {
                host: "example.com".into(),
                port: Some(8080)
            })
        );
        assert_eq!(
            HostPattern::parse("[::1]:9"),
            Some(HostPattern {
                host: "::1".into(),
                port: Some(9)
            })
        );
        assert_eq!(
            HostPattern::parse("10.0.0.2"),
            Some(HostPattern {
                host: "10.0.0.2".into(),
                port: None
            })
        );
        // Paths, user info, bare IPv6 and bad ports are no hosts.
        for bad in ["a/b", "u@h", "::1", "h:99999", "h:", ""] {
            assert_eq!(HostPattern::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn origin_patterns_default_the_port_or_take_any() {
        let exact = OriginPattern::parse("https://app.example").expect("origin");
        assert_eq!(exact.port, Some(443));
        let any = OriginPattern::parse("http://localhost:*").expect("origin");
        assert_eq!(any.port, None);
        let seen = OriginPattern::parse("http://localhost:5173").expect("origin");
        assert!(any.matches(&seen));
        assert!(!exact.matches(&seen));
        assert_eq!(OriginPattern::parse("localhost:3000"), None);
        assert_eq!(OriginPattern::parse("http://h:1:*"), None);
    }

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(token("http.token", "short".into()).is_err());
        assert!(token("http.token", format!("{} x", "a".repeat(40))).is_err());
        let secret = token("http.token", "b".repeat(32)).expect("long enough");
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    fn load(file: &str, vars: &[(&str, &str)]) -> Result<crate::config::Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("ccp-http-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.toml");
        std::fs::write(&path, file).expect("write config");
        let mut env: std::collections::BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("HOME".into(), "/home/u".into());
        let result = crate::config::Config::from_sources(Some(&path), &env);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn environment_overrides_the_http_table() {
        let file = format!(
            "[http]\ntoken = \"{}\"\nallowed_hosts = [\"a.example\"]\n",
            "f".repeat(40)
        );
        let config = load(&file, &[]).expect("valid");
        assert_eq!(
            config.http.token.as_ref().map(Secret::expose),
            Some(&*"f".repeat(40))
        );
        assert!(!config.http.allow_non_loopback);
        let env_token = "e".repeat(33);
        let config = load(
            &file,
            &[
                (HTTP_TOKEN_ENV, env_token.as_str()),
                (HTTP_ALLOW_NON_LOOPBACK_ENV, "true"),
                (HTTP_ALLOWED_HOSTS_ENV, "b.example:9, c.example"),
            ],
        )
        .expect("valid");
        assert_eq!(
            config.http.token.as_ref().map(Secret::expose),
            Some(env_token.as_str())
        );
        assert!(config.http.allow_non_loopback);
        assert_eq!(config.http.allowed_hosts.len(), 2);
    }

    #[test]
    fn bad_http_values_name_their_key() {
        let err = load("[http]\ntoken = \"short\"\n", &[]).expect_err("short token");
        assert!(err.to_string().contains("http.token"), "{err}");
        let err = load("", &[(HTTP_ALLOWED_ORIGINS_ENV, "localhost")]).expect_err("bad origin");
        assert!(err.to_string().contains(HTTP_ALLOWED_ORIGINS_ENV), "{err}");
        let err = load("[http]\nallowed_hosts = [\"a/b\"]\n", &[]).expect_err("bad host");
        assert!(err.to_string().contains("http.allowed_hosts"), "{err}");
        let err = load("[http]\nallow_remote = true\n", &[]).expect_err("unknown key");
        assert!(err.to_string().contains("allow_remote"), "{err}");
    }
}
