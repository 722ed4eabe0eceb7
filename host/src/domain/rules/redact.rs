//! Secret redaction for every payload the store journals or a tool returns (app-server frames, interaction
//! params and answers, progress details).
//!
//! Two layers, both replacing the secret with [`REDACTED`]:
//! - **keys**: the value of an object key that names a secret (`apiKey`, `X-Api-Key`, `refresh_token`, ...);
//! - **text**: secrets inside string values, wherever they sit: `sk-…` style API keys, `Bearer …` / `Basic …`
//!   credentials, URLs with a user part, e-mail addresses, `--password=…` / `--token …` flags, `key=value` and
//!   `Header: value` pairs whose name is secret-looking, and JSON embedded in a string (redacted as JSON).
//!
//! The seed's redactor masks e-mails and tokens in everything it shows; this is at least as strong, and it errs on
//! the side of masking: a journal line with one word too many redacted is harmless, a leaked key is not.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

/// The replacement for a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Secret words as they appear in key names once case and separators are dropped (`X-Api-Key` -> `xapikey`).
const SECRET_KEY_MARKERS: [&str; 12] = [
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
    "accesskey",
    "sessionkey",
    "signature",
];

/// A secret-looking name inside text (a flag, a query parameter, a header, an assignment): a secret word that
/// ends a name segment, so `accessToken`, `api-key` and `X-Auth-Token` match and `maxTokens`, `author` do not.
const SECRET_NAME: &str = r"(?:[a-z0-9]+[-_.])*[a-z0-9]*(?:token|secret|password|passwd|api[-_]?key|auth|authorization|cookie|credentials?|private[-_]?key|access[-_]?key|session[-_]?(?:id|key)|signature)";

/// A value in text: quoted, or an optional auth scheme and one run of non-separator characters.
const SECRET_VALUE: &str =
    r#"(?:"[^"]*"|'[^']*'|(?:(?:bearer|basic|token)[ \t]+)?[^\s,;"'&<>()\[\]{}]+)"#;

/// Well-known credential formats, masked wherever they appear.
static KNOWN_FORMATS: LazyLock<Regex> = LazyLock::new(|| {
    compile(concat!(
        r"\bsk-[A-Za-z0-9_-]{16,}",
        r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",
        r"|\bgithub_pat_[A-Za-z0-9_]{20,}",
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\bAIza[0-9A-Za-z_-]{35}",
        r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ))
});

/// `scheme://user:pass@host` (or a bare token as the user): the user part goes.
static URL_USERINFO: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@"));

/// `Bearer <token>` and `Basic <base64>` credentials.
static AUTH_SCHEME: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)\b(bearer|basic)([ \t]+)([A-Za-z0-9._~+/-]{8,}=*)"));

/// `--password=x`, `--api-key x`, `-token 'x'`.
static SECRET_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)(^|[\s'\x22(])(--?{SECRET_NAME}(?:[-_][a-z0-9]+)*)(=|[ \t]+)({SECRET_VALUE})"
    ))
});

/// `PASSWORD=x`, `access_token=x` (query strings too), `X-Api-Key: x`, `"password": "x"`.
static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r#"(?i)\b({SECRET_NAME}(?:[-_][a-z0-9]+)*)("?[ \t]*[:=][ \t]*)({SECRET_VALUE})"#
    ))
});

/// E-mail addresses.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
});

/// Compiles one of the constant patterns above.
fn compile(pattern: &str) -> Regex {
    // The patterns are constants covered by the tests below; a typo fails every test, not a request.
    Regex::new(pattern).expect("redaction pattern compiles")
}

/// Whether an object key names a secret.
fn is_secret_key(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // Token *counts* (tokenUsage, inputTokens, max_output_tokens) are not secrets.
    if folded.ends_with("tokens") || folded.contains("tokenusage") || folded.contains("tokencount")
    {
        return false;
    }
    folded == "auth" || SECRET_KEY_MARKERS.iter().any(|m| folded.contains(m))
}

/// `value` with secrets replaced by [`REDACTED`], recursively: values of secret-looking keys, and secrets inside
/// every string (see the module docs).
pub fn redact_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                let redacted = if is_secret_key(key) {
                    Value::String(REDACTED.to_string())
                } else {
                    redact_secrets(child)
                };
                out.insert(key.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact_secrets).collect()),
        Value::String(text) => Value::String(redact_text(text).into_owned()),
        other => other.clone(),
    }
}

/// `text` with the secrets inside it replaced by [`REDACTED`]; borrowed when there was nothing to mask.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    if let Some(redacted) = redact_embedded_json(text) {
        return Cow::Owned(redacted);
    }
    // URL credentials go before e-mails: `user:pass@host.com` would otherwise half-match as an address.
    let mut out = replace(Cow::Borrowed(text), &URL_USERINFO, |c| {
        format!("{}{REDACTED}@", &c[1])
    });
    out = replace(out, &KNOWN_FORMATS, |_| REDACTED.to_string());
    out = replace(out, &SECRET_FLAG, |c| {
        format!("{}{}{}{REDACTED}", &c[1], &c[2], &c[3])
    });
    out = replace(out, &SECRET_ASSIGNMENT, |c| {
        format!("{}{}{REDACTED}", &c[1], &c[2])
    });
    // After assignments: `Authorization: Bearer x` is masked whole there, a bare `Bearer x` here.
    out = replace(out, &AUTH_SCHEME, |c| {
        if c[1].eq_ignore_ascii_case("basic") && !is_basic_credential(&c[3]) {
            c[0].to_string()
        } else {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        }
    });
    replace(out, &EMAIL, |_| REDACTED.to_string())
}

/// Applies one rule, keeping the text borrowed when the rule finds nothing.
fn replace<'a>(
    text: Cow<'a, str>,
    rule: &Regex,
    with: impl Fn(&Captures<'_>) -> String,
) -> Cow<'a, str> {
    if !rule.is_match(&text) {
        return text;
    }
    Cow::Owned(
        rule.replace_all(&text, |c: &Captures<'_>| with(c))
            .into_owned(),
    )
}

/// A string that is a JSON object or array, redacted as JSON (keys included) and serialised again; `None` when it
/// is not JSON or holds nothing to mask (the text is then kept verbatim).
fn redact_embedded_json(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let looks_like_json = (trimmed.starts_with('{') && trimmed.ends_with('}'))
        || (trimmed.starts_with('[') && trimmed.ends_with(']'));
    if !looks_like_json {
        return None;
    }
    let parsed: Value = serde_json::from_str(trimmed).ok()?;
    let redacted = redact_secrets(&parsed);
    (redacted != parsed).then(|| redacted.to_string())
}

/// Whether `token` decodes (standard base64) to `user:password`, which is what a Basic credential is; keeps
/// prose such as "basic authentication" readable.
fn is_basic_credential(token: &str) -> bool {
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    let mut decoded = Vec::with_capacity(token.len() * 3 / 4);
    for byte in token.trim_end_matches('=').bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(sextet);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            decoded.push((bits >> n_bits) as u8);
            bits &= (1 << n_bits) - 1;
        }
    }
    std::str::from_utf8(&decoded).is_ok_and(|s| s.contains(':') && !s.chars().any(char::is_control))
}

#[cfg(test)]
#[path = "redact_corpus.rs"]
mod corpus;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_go_counts_stay() {
        let input = json!({"params": {"apiKey": "sk-1", "headers": [{"Authorization": "Bearer x"}],
                           "tokenUsage": {"inputTokens": 5}, "refresh_token": "r", "text": "hello"}});
        let out = redact_secrets(&input);
        assert_eq!(out["params"]["apiKey"], REDACTED);
        assert_eq!(out["params"]["headers"][0]["Authorization"], REDACTED);
        assert_eq!(out["params"]["refresh_token"], REDACTED);
        assert_eq!(out["params"]["tokenUsage"]["inputTokens"], 5);
        assert_eq!(out["params"]["text"], "hello");
    }

    #[test]
    fn basic_needs_a_user_and_password() {
        assert!(is_basic_credential("dXNlcjpwYXNz"));
        assert!(is_basic_credential("YWxhZGRpbjpvcGVuc2VzYW1l"));
        assert!(!is_basic_credential("authentication"));
    }
}
