//! The optional remote chat summarizer behind `codex_get_chat`'s `history_summary`, against a fake
//! OpenAI-compatible endpoint on 127.0.0.1, over chats the real codex app-server ran with the fake model: what
//! leaves the machine is redacted, an unchanged chat is answered from the cache, `force_refresh_summary` asks
//! again, a failing or slow endpoint is reported (or fails the call when required), a rolling summary builds on
//! the previous one, and the summarizer is off by default.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_summarizer::{FakeSummarizer, SummaryReply};

use crate::catalog::turn;
use crate::harness::Harness;

const KEY: &str = "sk-fake-summarizer-key-0123456789";
const SECRETS: [&str; 5] = [
    "sk-live-abcdefghijklmnopqrstuvwx",
    "alice@example.com",
    "/home/alice/private",
    "/srv/secret-project",
    KEY,
];

fn env(fake: &FakeSummarizer, required: bool) -> Vec<(String, String)> {
    [
        ("DEEPSEEK_SUMMARY_ENABLED", "true"),
        (
            "DEEPSEEK_SUMMARY_REQUIRED",
            if required { "true" } else { "false" },
        ),
        ("DEEPSEEK_BASE_URL", fake.base_url().as_str()),
        ("DEEPSEEK_API_KEY", KEY),
        // Every history is worth a summary here, however small.
        ("DEEPSEEK_SMALL_HISTORY_MESSAGE_LIMIT", "0"),
        ("DEEPSEEK_SMALL_HISTORY_CHARS", "0"),
        ("DEEPSEEK_TIMEOUT_SECONDS", "1"),
        ("DEEPSEEK_MAX_RETRIES", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn get_chat(h: &mut Harness, chat: &str, force: bool) -> Value {
    h.call(
        "codex_get_chat",
        json!({"chat_id": chat, "force_refresh_summary": force}),
    )
}

#[test]
fn get_chat_summarizes_redacted_history_through_an_openai_compatible_endpoint() {
    let fake = FakeSummarizer::start(SummaryReply::Text(
        "The user asked about otters; the assistant explained them.".into(),
    ));
    let vars = env(&fake, false);
    let mut h = Harness::start_with("summaries", &pairs(&vars));
    let chat = turn(
        &mut h,
        None,
        "Otters",
        "tell me about otters; my key is sk-live-abcdefghijklmnopqrstuvwx, mail alice@example.com, \
         notes in /home/alice/private/otters.txt",
        "Otters live in rivers. I read /srv/secret-project/data.csv for this.",
    );
    turn(
        &mut h,
        Some(&chat),
        "",
        "and what about beavers?",
        "Beavers build dams.",
    );

    // A fresh summary from the endpoint; only the exchanges before the latest prompt were sent, redacted.
    let first = get_chat(&mut h, &chat, false);
    assert_eq!(first["ok"], json!(true), "{first}");
    assert_eq!(first["summaryState"]["status"], json!("fresh"), "{first}");
    let summary = &first["history_summary"];
    assert_eq!(
        summary["text"],
        json!("The user asked about otters; the assistant explained them.")
    );
    assert_eq!(summary["model"], json!("fake-summary-model"));
    assert_eq!(summary["cache_hit"], json!(false));
    assert_eq!(summary["messages_summarized"], json!(2), "{summary}");
    assert_eq!(
        first["messages"].as_array().map(Vec::len),
        Some(4),
        "{first}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.body["model"], json!("deepseek-v4-flash"));
    assert_eq!(request.body["max_tokens"], json!(2000));
    assert!(
        request.raw_body.contains("tell me about otters"),
        "{}",
        request.raw_body
    );
    assert!(
        request.raw_body.contains("Otters live in rivers"),
        "{}",
        request.raw_body
    );
    assert!(
        !request.raw_body.contains("what about beavers"),
        "the latest exchange is read verbatim, not summarized: {}",
        request.raw_body
    );
    for secret in SECRETS {
        assert!(
            !request.raw_body.contains(secret),
            "{secret} left the machine: {}",
            request.raw_body
        );
    }

    // Unchanged chat: the cache answers, nothing is sent.
    let again = get_chat(&mut h, &chat, false);
    assert_eq!(again["summaryState"]["status"], json!("cached"), "{again}");
    assert_eq!(again["history_summary"]["cache_hit"], json!(true));
    assert_eq!(again["history_summary"]["text"], summary["text"]);
    assert_eq!(fake.requests().len(), 1, "a cache hit sends nothing");
    let status = h.call("codex_get_chat_status", json!({"chat_id": chat}));
    assert_eq!(status["summary_cache_available"], json!(true), "{status}");

    // force_refresh_summary asks again.
    let forced = get_chat(&mut h, &chat, true);
    assert_eq!(forced["summaryState"]["status"], json!("fresh"), "{forced}");
    assert_eq!(fake.requests().len(), 2);

    // A failing endpoint (retried once) is reported; the chat is still returned.
    fake.set_reply(SummaryReply::Status(500));
    let failed = get_chat(&mut h, &chat, true);
    assert_eq!(failed["ok"], json!(true), "{failed}");
    assert_eq!(
        failed["summaryState"]["status"],
        json!("failed"),
        "{failed}"
    );
    assert_eq!(failed["summaryState"]["reason"], json!("http_status_500"));
    assert_eq!(failed["history_summary"], Value::Null);
    assert_eq!(failed["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(fake.requests().len(), 4, "one try and one retry");

    // A silent endpoint is given up on within the timeout (1 s per try, one retry).
    fake.set_reply(SummaryReply::Slow(Duration::from_secs(20)));
    let started = Instant::now();
    let slow = get_chat(&mut h, &chat, true);
    let elapsed = started.elapsed();
    assert_eq!(slow["summaryState"]["status"], json!("failed"), "{slow}");
    assert_eq!(slow["summaryState"]["reason"], json!("timeout"), "{slow}");
    assert!(
        elapsed < Duration::from_secs(10),
        "bounded by the timeout: {elapsed:?}"
    );

    // Required: a failed summary fails the call, retryably.
    let vars = env(&fake, true);
    h.reconnect(&pairs(&vars));
    fake.set_reply(SummaryReply::Status(503));
    let refused = get_chat(&mut h, &chat, true);
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(
        refused["error"]["code"],
        json!("CODEX_SUMMARY_FAILED"),
        "{refused}"
    );
    assert_eq!(refused["error"]["retryable"], json!(true), "{refused}");
    assert_eq!(
        refused["error"]["details"]["reason"],
        json!("http_status_503")
    );

    // Rolling: a new exchange is summarized as the previous summary plus the messages since.
    fake.set_reply(SummaryReply::Text("Otters, then beavers.".into()));
    turn(
        &mut h,
        Some(&chat),
        "",
        "and seals?",
        "Seals swim in the sea.",
    );
    let before = fake.requests().len();
    let rolled = get_chat(&mut h, &chat, false);
    assert_eq!(rolled["summaryState"]["status"], json!("fresh"), "{rolled}");
    assert_eq!(
        rolled["history_summary"]["rolling_summary_used"],
        json!(true),
        "{rolled}"
    );
    assert_eq!(
        rolled["history_summary"]["text"],
        json!("Otters, then beavers.")
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), before + 1);
    let body = &requests[before].raw_body;
    assert!(body.contains("previous summary"), "{body}");
    assert!(body.contains("The user asked about otters"), "{body}");
    assert!(
        body.contains("what about beavers") && body.contains("Beavers build dams"),
        "{body}"
    );
    assert!(
        !body.contains("tell me about otters"),
        "covered by the previous summary: {body}"
    );
    assert!(
        !body.contains("and seals"),
        "the latest prompt is not summarized: {body}"
    );

    // Off by default: nothing is sent, and the state says why.
    h.reconnect(&[]);
    let off = get_chat(&mut h, &chat, true);
    assert_eq!(off["ok"], json!(true), "{off}");
    assert_eq!(off["summaryState"]["status"], json!("disabled"), "{off}");
    assert_eq!(off["history_summary"], Value::Null);
    assert_eq!(
        fake.requests().len(),
        before + 1,
        "a disabled summarizer sends nothing"
    );
}
