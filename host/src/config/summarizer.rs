//! The `[summarizer]` section: the optional remote chat summarizer behind `codex_get_chat`'s `history_summary`
//! (off by default), any OpenAI-compatible `POST {base_url}/chat/completions` endpoint. The seed's `DEEPSEEK_*`
//! variables (and `ROLLING_SUMMARY_ENABLED`) override the file keys, as everywhere else. Like the seed, those
//! variables may also come from a dotenv file (`DEEPSEEK_ENV_PATH`, `summarizer.env_file`), below the process
//! environment; unlike the seed, no file is read unless one is named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::dotenv::read_env_file;
use super::file::expand_home;
use super::http::Secret;
use super::ConfigError;

/// The seed's endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.deepseek.com";
/// The seed's model.
pub const DEFAULT_MODEL: &str = "deepseek-v4-flash";
/// The variable holding the API key unless `summarizer.api_key_env` names another.
pub const DEFAULT_API_KEY_ENV: &str = "DEEPSEEK_API_KEY";

/// The summarizer, resolved and validated. `Debug` never shows the API key ([`Secret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SummarizerConfig {
    /// Whether `codex_get_chat` asks the endpoint for a summary at all (`summarizer.enabled`).
    pub enabled: bool,
    /// Whether a failed summary fails `codex_get_chat` with `CODEX_SUMMARY_FAILED` (`summarizer.required`).
    pub required: bool,
    /// The endpoint's base URL; requests go to `{base_url}/chat/completions`. https, or http to a loopback host.
    pub base_url: String,
    /// The model named in each request.
    pub model: String,
    /// The variable the API key was read from (for messages; never the key itself).
    pub api_key_env: String,
    /// The API key; `None` when the variable is unset (then a remote endpoint fails with `no_api_key`).
    pub api_key: Option<Secret>,
    /// Time one request may take, already bounded by `timeout_cap_seconds`.
    pub timeout: Duration,
    /// Retries of a failed request (5xx, 429, network), already bounded by `max_retries_cap`.
    pub max_retries: u32,
    /// Time a whole summary (every chunk, retries included) may take: `timeout_cap_seconds`.
    pub total_timeout: Duration,
    /// Largest input, in characters, sent in one request; a longer history is summarized chunk by chunk.
    pub max_input_chars_per_chunk: usize,
    /// Most messages summarized (the newest before the latest prompt).
    pub recent_messages_limit: usize,
    /// A history of at most this many messages is not summarized.
    pub small_history_message_limit: usize,
    /// A history of at most this many rendered characters is not summarized.
    pub small_history_chars: usize,
    /// `max_tokens` of each request.
    pub max_summary_tokens: u32,
    /// `temperature` of each request.
    pub temperature: f64,
    /// Whether a new summary builds on the previous one (previous summary + the messages since).
    pub rolling: bool,
}

impl Default for SummarizerConfig {
    fn default() -> Self {
        SummarizerConfig {
            enabled: false,
            required: false,
            base_url: DEFAULT_BASE_URL.to_string(),
            model: DEFAULT_MODEL.to_string(),
            api_key_env: DEFAULT_API_KEY_ENV.to_string(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_retries: 1,
            total_timeout: Duration::from_secs(45),
            max_input_chars_per_chunk: 60_000,
            recent_messages_limit: 60,
            small_history_message_limit: 5,
            small_history_chars: 4_000,
            max_summary_tokens: 2_000,
            temperature: 0.1,
            rolling: true,
        }
    }
}

/// The `[summarizer]` keys of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSummarizer {
    env_file: Option<PathBuf>,
    enabled: Option<bool>,
    required: Option<bool>,
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    timeout_seconds: Option<i64>,
    max_retries: Option<i64>,
    timeout_cap_seconds: Option<i64>,
    max_retries_cap: Option<i64>,
    max_input_chars_per_chunk: Option<i64>,
    recent_messages_limit: Option<i64>,
    small_history_message_limit: Option<i64>,
    small_history_chars: Option<i64>,
    max_summary_tokens: Option<i64>,
    temperature: Option<f64>,
    rolling_summary_enabled: Option<bool>,
}

/// Where a value came from: the variable or the file key, for the error message.
struct Source<'a> {
    env: &'a dyn Fn(&'static str) -> Option<(&'static str, String)>,
}

impl Source<'_> {
    /// The environment's value (trimmed, non-empty) as `(key, text)`, else the file's.
    fn pick<T: ToString>(
        &self,
        var: &'static str,
        key: &'static str,
        file: Option<T>,
    ) -> Option<(&'static str, String)> {
        (self.env)(var).or_else(|| file.map(|v| (key, v.to_string())))
    }

    fn bool(
        &self,
        var: &'static str,
        key: &'static str,
        file: Option<bool>,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match self.pick(var, key, file) {
            None => Ok(default),
            Some((key, text)) => match text.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::value(
                    key,
                    format!("expected true or false, got {text:?}"),
                )),
            },
        }
    }

    /// An integer of at least `min`.
    fn int(
        &self,
        var: &'static str,
        key: &'static str,
        file: Option<i64>,
        default: u64,
        min: i64,
    ) -> Result<u64, ConfigError> {
        match self.pick(var, key, file) {
            None => Ok(default),
            Some((key, text)) => match text.parse::<i64>() {
                Ok(n) if n >= min => Ok(n as u64),
                Ok(n) => Err(ConfigError::value(
                    key,
                    format!("must be at least {min}, got {n}"),
                )),
                Err(_) => Err(ConfigError::value(
                    key,
                    format!("expected an integer, got {text:?}"),
                )),
            },
        }
    }

    fn text(
        &self,
        var: &'static str,
        key: &'static str,
        file: Option<String>,
        default: &str,
    ) -> Result<(&'static str, String), ConfigError> {
        match self.pick(var, key, file) {
            None => Ok((key, default.to_string())),
            Some((key, text)) if text.trim().is_empty() => {
                Err(ConfigError::value(key, "must not be empty"))
            }
            Some((key, text)) => Ok((key, text.trim().to_string())),
        }
    }
}

/// Resolves the section: `env` answers a variable name with its trimmed, non-empty value; `vars` is the whole
/// environment (the API key may live in any variable `api_key_env` names).
pub(super) fn resolve(
    raw: FileSummarizer,
    process_env: impl Fn(&'static str) -> Option<(&'static str, String)>,
    vars: &BTreeMap<String, String>,
) -> Result<SummarizerConfig, ConfigError> {
    let dotenv = match process_env("DEEPSEEK_ENV_PATH") {
        Some((key, path)) => read_env_file(key, &expand_home(Path::new(&path), vars))?,
        None => match &raw.env_file {
            Some(path) => read_env_file("summarizer.env_file", &expand_home(path, vars))?,
            None => BTreeMap::new(),
        },
    };
    let env = |name: &'static str| {
        process_env(name).or_else(|| {
            dotenv
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| (name, v.clone()))
        })
    };
    let source = Source { env: &env };
    let defaults = SummarizerConfig::default();
    let (url_key, base_url) = source.text(
        "DEEPSEEK_BASE_URL",
        "summarizer.base_url",
        raw.base_url,
        DEFAULT_BASE_URL,
    )?;
    check_base_url(url_key, &base_url)?;
    let (_, model) = source.text(
        "DEEPSEEK_SUMMARY_MODEL",
        "summarizer.model",
        raw.model,
        DEFAULT_MODEL,
    )?;
    let api_key_env = match raw.api_key_env {
        Some(name) if name.trim().is_empty() => {
            return Err(ConfigError::value(
                "summarizer.api_key_env",
                "must name an environment variable",
            ))
        }
        Some(name) => name.trim().to_string(),
        None => DEFAULT_API_KEY_ENV.to_string(),
    };
    let api_key = vars
        .get(&api_key_env)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .or_else(|| dotenv.get(&api_key_env).map(String::as_str))
        .filter(|v| !v.is_empty())
        .map(|v| Secret::new(v.to_string()));
    let timeout_cap = source.int(
        "DEEPSEEK_SUMMARY_TIMEOUT_CAP_SECONDS",
        "summarizer.timeout_cap_seconds",
        raw.timeout_cap_seconds,
        defaults.total_timeout.as_secs(),
        1,
    )?;
    let timeout = source.int(
        "DEEPSEEK_TIMEOUT_SECONDS",
        "summarizer.timeout_seconds",
        raw.timeout_seconds,
        defaults.timeout.as_secs(),
        1,
    )?;
    let retries_cap = source.int(
        "DEEPSEEK_SUMMARY_MAX_RETRIES_CAP",
        "summarizer.max_retries_cap",
        raw.max_retries_cap,
        1,
        0,
    )?;
    let retries = source.int(
        "DEEPSEEK_MAX_RETRIES",
        "summarizer.max_retries",
        raw.max_retries,
        u64::from(defaults.max_retries),
        0,
    )?;
    let size = |var, key, file, default: usize, min| {
        source
            .int(var, key, file, default as u64, min)
            .and_then(|v| {
                usize::try_from(v).map_err(|_| ConfigError::value(key, format!("{v} is too large")))
            })
    };
    let max_summary_tokens = source.int(
        "DEEPSEEK_MAX_SUMMARY_TOKENS",
        "summarizer.max_summary_tokens",
        raw.max_summary_tokens,
        u64::from(defaults.max_summary_tokens),
        1,
    )?;
    let temperature = match source.pick(
        "DEEPSEEK_TEMPERATURE",
        "summarizer.temperature",
        raw.temperature,
    ) {
        None => defaults.temperature,
        Some((key, text)) => match text.parse::<f64>() {
            // The range OpenAI-compatible endpoints accept.
            Ok(t) if (0.0..=2.0).contains(&t) => t,
            _ => {
                return Err(ConfigError::value(
                    key,
                    format!("expected a number from 0 to 2, got {text:?}"),
                ))
            }
        },
    };
    Ok(SummarizerConfig {
        enabled: source.bool(
            "DEEPSEEK_SUMMARY_ENABLED",
            "summarizer.enabled",
            raw.enabled,
            defaults.enabled,
        )?,
        required: source.bool(
            "DEEPSEEK_SUMMARY_REQUIRED",
            "summarizer.required",
            raw.required,
            defaults.required,
        )?,
        base_url,
        model,
        api_key_env,
        api_key,
        // The caps bound what the plain settings ask for, as in the seed.
        timeout: Duration::from_secs(timeout.min(timeout_cap)),
        max_retries: u32::try_from(retries.min(retries_cap)).unwrap_or(u32::MAX),
        total_timeout: Duration::from_secs(timeout_cap),
        max_input_chars_per_chunk: size(
            "DEEPSEEK_MAX_INPUT_CHARS_PER_CHUNK",
            "summarizer.max_input_chars_per_chunk",
            raw.max_input_chars_per_chunk,
            defaults.max_input_chars_per_chunk,
            1_000,
        )?,
        recent_messages_limit: size(
            "DEEPSEEK_RECENT_MESSAGES_LIMIT",
            "summarizer.recent_messages_limit",
            raw.recent_messages_limit,
            defaults.recent_messages_limit,
            1,
        )?,
        // Zero is meaningful here: summarize every history, however small.
        small_history_message_limit: size(
            "DEEPSEEK_SMALL_HISTORY_MESSAGE_LIMIT",
            "summarizer.small_history_message_limit",
            raw.small_history_message_limit,
            defaults.small_history_message_limit,
            0,
        )?,
        small_history_chars: size(
            "DEEPSEEK_SMALL_HISTORY_CHARS",
            "summarizer.small_history_chars",
            raw.small_history_chars,
            defaults.small_history_chars,
            0,
        )?,
        max_summary_tokens: u32::try_from(max_summary_tokens).map_err(|_| {
            ConfigError::value(
                "summarizer.max_summary_tokens",
                format!("{max_summary_tokens} is too large"),
            )
        })?,
        temperature,
        rolling: source.bool(
            "ROLLING_SUMMARY_ENABLED",
            "summarizer.rolling_summary_enabled",
            raw.rolling_summary_enabled,
            defaults.rolling,
        )?,
    })
}

/// `base_url` must be `https://host[:port][/path]`, or `http://` to a loopback host (a local endpoint, tests):
/// the chat history, redacted or not, never crosses a network in clear text.
fn check_base_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::value(key, format!("{url:?} is not a URL")))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ConfigError::value(key, format!("{url:?} names no host")))?;
    if uri.query().is_some() || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(ConfigError::value(
            key,
            "must not carry a query or credentials (the key goes in api_key_env)",
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback_host(host) => Ok(()),
        Some("http") => Err(ConfigError::value(
            key,
            format!("plain http is allowed only to a loopback host, got {host:?}; use https"),
        )),
        _ => Err(ConfigError::value(
            key,
            format!("{url:?} is neither https:// nor http:// to a loopback host"),
        )),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1 (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(
        file: FileSummarizer,
        vars: &[(&str, &str)],
    ) -> Result<SummarizerConfig, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &'static str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        };
        resolve(file, lookup, &vars)
    }

    #[test]
    fn defaults_are_the_seeds_and_off() {
        let config = resolve_with(FileSummarizer::default(), &[]).expect("defaults");
        assert_eq!(config, SummarizerConfig::default());
        assert!(!config.enabled && !config.required && config.rolling);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.model, "deepseek-v4-flash");
    }

    #[test]
    fn environment_wins_and_caps_bound_timeout_and_retries() {
        let file = FileSummarizer {
            enabled: Some(false),
            model: Some("file-model".into()),
            timeout_seconds: Some(10),
            ..FileSummarizer::default()
        };
        let config = resolve_with(
            file,
            &[
                ("DEEPSEEK_SUMMARY_ENABLED", "true"),
                ("DEEPSEEK_SUMMARY_MODEL", "env-model"),
                ("DEEPSEEK_TIMEOUT_SECONDS", "120"),
                ("DEEPSEEK_MAX_RETRIES", "5"),
                ("DEEPSEEK_SUMMARY_TIMEOUT_CAP_SECONDS", "20"),
                ("DEEPSEEK_API_KEY", " sk-test-key "),
                ("ROLLING_SUMMARY_ENABLED", "0"),
                ("DEEPSEEK_SMALL_HISTORY_MESSAGE_LIMIT", "0"),
            ],
        )
        .expect("valid");
        assert!(config.enabled && !config.rolling);
        assert_eq!(config.model, "env-model");
        assert_eq!(config.timeout, Duration::from_secs(20), "capped");
        assert_eq!(config.max_retries, 1, "capped");
        assert_eq!(config.total_timeout, Duration::from_secs(20));
        assert_eq!(config.small_history_message_limit, 0);
        assert_eq!(
            config.api_key.as_ref().map(Secret::expose),
            Some("sk-test-key")
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-test-key"), "{shown}");
    }

    #[test]
    fn the_key_variable_can_be_renamed() {
        let file = FileSummarizer {
            api_key_env: Some("LOCAL_LLM_KEY".into()),
            ..FileSummarizer::default()
        };
        let config = resolve_with(
            file,
            &[("LOCAL_LLM_KEY", "abc"), ("DEEPSEEK_API_KEY", "other")],
        )
        .expect("valid");
        assert_eq!(config.api_key.as_ref().map(Secret::expose), Some("abc"));
        assert_eq!(config.api_key_env, "LOCAL_LLM_KEY");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (
                &[("DEEPSEEK_SUMMARY_ENABLED", "maybe")],
                "DEEPSEEK_SUMMARY_ENABLED",
            ),
            (
                &[("DEEPSEEK_TIMEOUT_SECONDS", "0")],
                "DEEPSEEK_TIMEOUT_SECONDS",
            ),
            (&[("DEEPSEEK_MAX_RETRIES", "-1")], "DEEPSEEK_MAX_RETRIES"),
            (&[("DEEPSEEK_TEMPERATURE", "hot")], "DEEPSEEK_TEMPERATURE"),
            (&[("DEEPSEEK_TEMPERATURE", "3")], "DEEPSEEK_TEMPERATURE"),
            (
                &[("DEEPSEEK_BASE_URL", "http://api.example.com")],
                "DEEPSEEK_BASE_URL",
            ),
            (
                &[("DEEPSEEK_MAX_INPUT_CHARS_PER_CHUNK", "10")],
                "DEEPSEEK_MAX_INPUT_CHARS_PER_CHUNK",
            ),
        ];
        for (vars, key) in cases {
            let err = resolve_with(FileSummarizer::default(), vars).expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
        let file = FileSummarizer {
            base_url: Some("ftp://host".into()),
            ..FileSummarizer::default()
        };
        let err = resolve_with(file, &[]).expect_err("scheme");
        assert!(err.to_string().contains("summarizer.base_url"), "{err}");
    }

    #[test]
    fn a_dotenv_file_fills_in_below_the_environment() {
        let dir = std::env::temp_dir().join(format!("ccp-dotenv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(".env");
        std::fs::write(
            &path,
            "# DeepSeek\nexport DEEPSEEK_API_KEY=\"from-file\"\nDEEPSEEK_SUMMARY_ENABLED=true\n\nDEEPSEEK_SUMMARY_MODEL=file-model\n",
        )
        .expect("write");
        let path_text = path.display().to_string();
        let config = resolve_with(
            FileSummarizer::default(),
            &[
                ("DEEPSEEK_ENV_PATH", path_text.as_str()),
                ("DEEPSEEK_SUMMARY_MODEL", "env-model"),
            ],
        )
        .expect("valid");
        assert!(config.enabled);
        assert_eq!(config.model, "env-model", "the environment wins");
        assert_eq!(
            config.api_key.as_ref().map(Secret::expose),
            Some("from-file")
        );
        std::fs::write(&path, "not a pair\n").expect("write");
        let err = resolve_with(
            FileSummarizer::default(),
            &[("DEEPSEEK_ENV_PATH", path_text.as_str())],
        )
        .expect_err("bad line");
        assert!(err.to_string().contains("DEEPSEEK_ENV_PATH"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        let missing = FileSummarizer {
            env_file: Some(dir.join("missing")),
            ..FileSummarizer::default()
        };
        let err = resolve_with(missing, &[]).expect_err("missing file");
        assert!(err.to_string().contains("summarizer.env_file"), "{err}");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:11434",
            "http://[::1]:9000",
            "https://api.deepseek.com",
            "https://llm.example.com/openai/v1/",
        ] {
            check_base_url("k", url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for url in [
            "http://10.0.0.5/v1",
            "http://api.example.com",
            "https://user:pw@api.example.com",
            "https://api.example.com/v1?key=x",
            "api.example.com",
        ] {
            assert!(check_base_url("k", url).is_err(), "{url}");
        }
    }
}
