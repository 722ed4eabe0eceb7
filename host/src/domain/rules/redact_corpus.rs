//! The redaction corpus: keys, headers, command lines, URLs with credentials and JSON inside strings, each with
//! the text that must come out, and the prose that must stay readable.

use super::*;
use serde_json::json;

/// (input, expected output) for text found inside string values.
const TEXT: &[(&str, &str)] = &[
    // API keys in well-known formats.
    (
        "export OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUv",
        "export OPENAI_API_KEY=[redacted]",
    ),
    (
        "use key sk-AbCdEfGhIjKlMnOpQrStUvWx now",
        "use key [redacted] now",
    ),
    (
        "git push https://ghp_0123456789abcdefghijABCDEFGHIJ@github.com/o/r",
        "git push https://[redacted]@github.com/o/r",
    ),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [redacted]"),
    // Authorization schemes and headers.
    (
        "curl -H 'Authorization: Bearer abc.def-ghi_jkl' https://api.example.com",
        "curl -H 'Authorization: [redacted]' https://api.example.com",
    ),
    ("Bearer eyJhbGciOiJIUzI1NiJ9", "Bearer [redacted]"),
    (
        "Authorization: Basic dXNlcjpwYXNz",
        "Authorization: [redacted]",
    ),
    (
        "header Basic dXNlcjpwYXNz sent",
        "header Basic [redacted] sent",
    ),
    (
        "curl -H \"X-Api-Key: 12345abcde\" https://x.test",
        "curl -H \"X-Api-Key: [redacted]\" https://x.test",
    ),
    (
        "Cookie: session=abc123; theme=dark",
        "Cookie: [redacted]; theme=dark",
    ),
    // Command-line flags.
    (
        "mysql --user=root --password=hunter2 db",
        "mysql --user=root --password=[redacted] db",
    ),
    (
        "deploy --token abc123 --force",
        "deploy --token [redacted] --force",
    ),
    (
        "tool --api-key 'two words' --verbose",
        "tool --api-key [redacted] --verbose",
    ),
    (
        "psql --db-password=\"p a s s\" -h localhost",
        "psql --db-password=[redacted] -h localhost",
    ),
    // URLs with credentials and secrets in the query.
    (
        "clone https://user:pa55@git.example.com/repo.git",
        "clone https://[redacted]@git.example.com/repo.git",
    ),
    (
        "postgres://admin:s3cr3t@db:5432/app",
        "postgres://[redacted]@db:5432/app",
    ),
    (
        "GET https://api.test/v1?access_token=abc123&page=2",
        "GET https://api.test/v1?access_token=[redacted]&page=2",
    ),
    // Assignments and JSON-ish fragments that are not whole JSON documents.
    ("PASSWORD=hunter2 ./run.sh", "PASSWORD=[redacted] ./run.sh"),
    ("accessToken: abc123", "accessToken: [redacted]"),
    (
        "payload {\"password\": \"hunter2\", \"user\": \"bob\"} sent",
        "payload {\"password\": [redacted], \"user\": \"bob\"} sent",
    ),
    // E-mail addresses.
    (
        "git commit --author 'Jane <jane.doe@example.com>'",
        "git commit --author 'Jane <[redacted]>'",
    ),
    ("mail ops+alerts@corp.example.co.uk", "mail [redacted]"),
    // Prose and counters stay as they are.
    (
        "use basic authentication and a bearer token",
        "use basic authentication and a bearer token",
    ),
    (
        "maxTokens: 4096 inputTokens=5",
        "maxTokens: 4096 inputTokens=5",
    ),
    ("the author wrote 3 tokens", "the author wrote 3 tokens"),
    ("cargo test -p codex --lib", "cargo test -p codex --lib"),
    ("see https://example.com/a@b", "see https://example.com/a@b"),
];

#[test]
fn text_corpus_is_masked() {
    for (input, expected) in TEXT {
        assert_eq!(redact_text(input), *expected, "input {input:?}");
        // Masking is stable: redacting twice changes nothing more.
        assert_eq!(redact_text(expected), *expected, "again {expected:?}");
    }
}

#[test]
fn key_names_in_every_spelling_are_masked() {
    let input = json!({
        "X-Api-Key": "k1", "x_api_key": "k2", "API-KEY": "k3", "clientSecret": "k4", "Set-Cookie": "k5",
        "private-key": "k6", "AWS_ACCESS_KEY_ID": "k7", "auth": {"user": "u"}, "sessionKey": "k8",
        "author": "Jane", "max_output_tokens": 10, "tokenCount": 3, "id": "x"
    });
    let out = redact_secrets(&input);
    for key in [
        "X-Api-Key",
        "x_api_key",
        "API-KEY",
        "clientSecret",
        "Set-Cookie",
        "private-key",
        "AWS_ACCESS_KEY_ID",
        "auth",
        "sessionKey",
    ] {
        assert_eq!(out[key], REDACTED, "{key}");
    }
    assert_eq!(out["author"], "Jane");
    assert_eq!(out["max_output_tokens"], 10);
    assert_eq!(out["tokenCount"], 3);
    assert_eq!(out["id"], "x");
}

#[test]
fn approval_requests_and_embedded_json_are_masked() {
    let params = json!({
        "threadId": "t1",
        "command": ["bash", "-lc", "curl -u bob:pw https://bob:pw@api.test -H 'Authorization: Bearer abcdefgh1234' --token=zzz"],
        "reason": "notify jane@example.com",
        "env": "{\"GITHUB_TOKEN\":\"ghp_0123456789abcdefghijABCDEFGHIJ\",\"HOME\":\"/root\"}",
        "list": "[{\"password\":\"x\"}]",
        "plain": "{not json, token=abc}"
    });
    let out = redact_secrets(&params);
    let command = out["command"][2].as_str().unwrap_or_default();
    for secret in ["pw@", "abcdefgh1234", "zzz"] {
        assert!(!command.contains(secret), "{secret} in {command}");
    }
    assert_eq!(out["reason"], "notify [redacted]");
    assert_eq!(
        out["env"],
        "{\"GITHUB_TOKEN\":\"[redacted]\",\"HOME\":\"/root\"}"
    );
    assert_eq!(out["list"], "[{\"password\":\"[redacted]\"}]");
    assert_eq!(out["plain"], "{not json, token=[redacted]}");
    assert_eq!(out["threadId"], "t1");
    // JSON inside a string with nothing to mask is kept byte for byte.
    let verbatim = json!({"text": "{ \"a\" : 1 }"});
    assert_eq!(redact_secrets(&verbatim), verbatim);
}
