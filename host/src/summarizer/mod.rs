//! The outbound adapter of the optional chat summarizer: an OpenAI-compatible chat-completions client
//! (`POST {base_url}/chat/completions`), each request bounded by the configured timeout and retried at most
//! `max_retries` times when the failure may pass (network, timeout, 429, 5xx). It knows nothing of chats, MCP or
//! SQLite: `engine::summaries` decides what to send and keeps the results.

pub mod http;

use std::time::Duration;

use serde_json::{json, Value};

use self::http::{post_json, Endpoint, HttpError};
use crate::config::{is_loopback_host, SummarizerConfig};

/// Pause before a retry (times the attempt number): long enough for a rate limit to ease, short against the
/// caller's total budget.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Why a completion failed; [`reason`](SummarizerError::reason) is what `summaryState` shows.
#[derive(Debug, thiserror::Error)]
pub enum SummarizerError {
    /// A remote endpoint needs a key and the variable holding it is unset.
    #[error("no API key: set {var}")]
    NoApiKey {
        /// The variable that should hold it.
        var: String,
    },
    /// The connection or the exchange failed.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The endpoint answered with an error status.
    #[error("the endpoint answered HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body (the endpoint's error message).
        body: String,
    },
    /// A request took longer than the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer is not a chat completion.
    #[error("not a chat completion: {0}")]
    BadResponse(String),
    /// The completion has no text.
    #[error("the endpoint returned an empty summary")]
    Empty,
}

impl SummarizerError {
    /// Whether the same request may succeed if sent again.
    pub fn retryable(&self) -> bool {
        match self {
            SummarizerError::Http(HttpError::Url(_)) => false,
            SummarizerError::Http(_) | SummarizerError::Timeout(_) => true,
            SummarizerError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A short machine-readable reason (`http_status_500`, `timeout`, ...).
    pub fn reason(&self) -> String {
        match self {
            SummarizerError::NoApiKey { .. } => "no_api_key".into(),
            SummarizerError::Http(HttpError::Url(_)) => "bad_endpoint".into(),
            SummarizerError::Http(HttpError::Tls { .. }) => "tls_failed".into(),
            SummarizerError::Http(HttpError::Connect { .. }) => "connect_failed".into(),
            SummarizerError::Http(_) => "http_failed".into(),
            SummarizerError::Status { status, .. } => format!("http_status_{status}"),
            SummarizerError::Timeout(_) => "timeout".into(),
            SummarizerError::BadResponse(_) => "bad_response".into(),
            SummarizerError::Empty => "empty_summary".into(),
        }
    }
}

/// One completion: its text and the model that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The assistant message, trimmed.
    pub text: String,
    /// The model the endpoint names (else the one asked for).
    pub model: String,
}

/// The chat-completions client of one configuration.
#[derive(Debug, Clone)]
pub struct ChatCompletions {
    config: SummarizerConfig,
}

impl ChatCompletions {
    /// A client for `config` (nothing is connected until a request).
    pub fn new(config: &SummarizerConfig) -> ChatCompletions {
        ChatCompletions {
            config: config.clone(),
        }
    }

    /// Asks for a completion of `messages` (role, content), retrying what may pass.
    pub async fn complete(
        &self,
        messages: &[(&str, String)],
    ) -> Result<Completion, SummarizerError> {
        let endpoint = Endpoint::new(&self.config.base_url, "chat/completions")?;
        let key = self.config.api_key.as_ref();
        // A local endpoint may need no key; a remote one always does, and failing here spares a 401 round trip.
        if key.is_none() && !is_loopback_host(&endpoint_host(&self.config.base_url)) {
            return Err(SummarizerError::NoApiKey {
                var: self.config.api_key_env.clone(),
            });
        }
        let body = json!({
            "model": self.config.model,
            "messages": messages
                .iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect::<Vec<_>>(),
            "max_tokens": self.config.max_summary_tokens,
            "temperature": self.config.temperature,
            "stream": false,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|err| SummarizerError::BadResponse(format!("cannot encode: {err}")))?;
        let mut attempt = 0;
        loop {
            let result = self.attempt(&endpoint, body.clone()).await;
            match result {
                Err(err) if err.retryable() && attempt < self.config.max_retries => {
                    attempt += 1;
                    tracing::warn!(
                        endpoint = %endpoint.display(),
                        attempt,
                        reason = %err.reason(),
                        "chat summary request failed; retrying"
                    );
                    tokio::time::sleep(RETRY_PAUSE * attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        endpoint: &Endpoint,
        body: Vec<u8>,
    ) -> Result<Completion, SummarizerError> {
        let exchange = post_json(endpoint, self.config.api_key.as_ref(), body);
        let (status, bytes) = tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| SummarizerError::Timeout(self.config.timeout))??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let body: String = crate::domain::rules::agent_safe::agent_safe_text(&text)
                .chars()
                .take(300)
                .collect();
            return Err(SummarizerError::Status {
                status: status.as_u16(),
                body,
            });
        }
        parse_completion(&bytes, &self.config.model)
    }
}

fn endpoint_host(base_url: &str) -> String {
    base_url
        .parse::<::http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_string))
        .unwrap_or_default()
}

/// The text of `choices[0].message.content` and the model of a chat-completion response.
fn parse_completion(bytes: &[u8], asked_model: &str) -> Result<Completion, SummarizerError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| SummarizerError::BadResponse(format!("not JSON: {err}")))?;
    let content = value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| SummarizerError::BadResponse("no choices[0].message.content".into()))?;
    let text = content.trim();
    if text.is_empty() {
        return Err(SummarizerError::Empty);
    }
    Ok(Completion {
        text: text.to_string(),
        model: value
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(asked_model)
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_parse_and_errors_classify() {
        let ok =
            br#"{"model":"m1","choices":[{"message":{"role":"assistant","content":"  sum  "}}]}"#;
        assert_eq!(
            parse_completion(ok, "asked").expect("ok"),
            Completion {
                text: "sum".into(),
                model: "m1".into()
            }
        );
        let empty = br#"{"choices":[{"message":{"content":" "}}]}"#;
        assert!(matches!(
            parse_completion(empty, "m"),
            Err(SummarizerError::Empty)
        ));
        assert!(matches!(
            parse_completion(b"<html>", "m"),
            Err(SummarizerError::BadResponse(_))
        ));
        let status = |status| SummarizerError::Status {
            status,
            body: String::new(),
        };
        assert!(status(500).retryable() && status(429).retryable());
        assert!(!status(401).retryable());
        assert_eq!(status(503).reason(), "http_status_503");
        assert!(SummarizerError::Timeout(Duration::from_secs(1)).retryable());
    }

    #[tokio::test]
    async fn a_remote_endpoint_without_a_key_is_refused_before_any_request() {
        let config = SummarizerConfig {
            enabled: true,
            ..SummarizerConfig::default()
        };
        let err = ChatCompletions::new(&config)
            .complete(&[("user", "hi".into())])
            .await
            .expect_err("no key");
        assert_eq!(err.reason(), "no_api_key");
        assert!(err.to_string().contains("DEEPSEEK_API_KEY"), "{err}");
    }
}
