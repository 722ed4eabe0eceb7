//! The chat summary of `codex_get_chat`: which messages (`domain::rules::summary`), the cache and the rolling
//! summary (`store::summaries`), the remote call (`summarizer`). It runs in the caller's task, after the history
//! was read and outside any store call, so a slow endpoint holds neither a pooled reader nor the writer; the
//! whole summary, every chunk and retry included, is bounded by `total_timeout`.

use crate::config::SummarizerConfig;
use crate::domain::rules::summary::{
    before_latest_prompt, chunk, input_hash, is_small, merge_request, previous_summary_block,
    recent, render, summarize_request, SummaryMessage, MAX_CHUNKS,
};
use crate::store::history::HistoryEntry;
use crate::store::summaries::StoredSummary;
use crate::store::{Store, StoreError, Timestamp};
use crate::summarizer::{ChatCompletions, SummarizerError};
use crate::time::now_ms;

/// What became of a chat's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryOutcome {
    /// The summarizer is off (the default): nothing was sent.
    Disabled,
    /// Nothing worth summarizing (`small_history`, `no_history_before_latest_prompt`): nothing was sent.
    Skipped(&'static str),
    /// A stored summary of exactly this input: nothing was sent.
    Cached(StoredSummary),
    /// A summary just made (and stored).
    Fresh(StoredSummary),
    /// The endpoint failed: a short reason and the message.
    Failed {
        /// Machine-readable (`http_status_500`, `timeout`, `no_api_key`, ...).
        reason: String,
        /// Human-readable, redacted.
        message: String,
    },
}

/// The summary of `entries` (one chat, in conversation order): cached unless `force`, else asked for.
pub async fn chat_summary(
    store: &Store,
    config: &SummarizerConfig,
    thread_id: &str,
    entries: &[HistoryEntry],
    force: bool,
) -> Result<SummaryOutcome, StoreError> {
    if !config.enabled {
        return Ok(SummaryOutcome::Disabled);
    }
    let messages: Vec<SummaryMessage<'_>> = entries
        .iter()
        .map(|e| SummaryMessage {
            id: e.entry_id,
            role: &e.role,
            text: &e.text,
        })
        .collect();
    let upper = before_latest_prompt(&messages);
    let Some(last) = upper.last() else {
        return Ok(SummaryOutcome::Skipped("no_history_before_latest_prompt"));
    };
    let hash = input_hash(
        &upper,
        &config.model,
        config.recent_messages_limit,
        config.max_input_chars_per_chunk,
    );
    if !force {
        if let Some(hit) = store.cached_summary(thread_id, &hash).await? {
            return Ok(SummaryOutcome::Cached(hit));
        }
    }
    let max_total = config.max_input_chars_per_chunk.saturating_mul(MAX_CHUNKS);
    let limited = recent(&upper, config.recent_messages_limit, max_total);
    let rendered = render(&limited);
    if is_small(
        limited.len(),
        rendered.chars().count(),
        config.small_history_message_limit,
        config.small_history_chars,
    ) {
        return Ok(SummaryOutcome::Skipped("small_history"));
    }
    // Rolling: the previous summary stands for the messages it covered, only the newer ones are sent. A forced
    // refresh starts over from the messages themselves.
    let previous = match config.rolling && !force {
        true => store.latest_summary(thread_id).await?,
        false => None,
    };
    let rolled = previous.and_then(|prev| {
        let at = upper.iter().position(|m| m.id == prev.last_entry_id)?;
        let newer = &upper[at + 1..];
        (!newer.is_empty()).then(|| {
            let kept = recent(newer, config.recent_messages_limit, max_total);
            let input = format!(
                "{}\n\n{}",
                previous_summary_block(&prev.text),
                render(&kept)
            );
            (input, kept.len(), newer.len() - kept.len())
        })
    });
    let rolling = rolled.is_some();
    let (input, summarized, omitted) =
        rolled.unwrap_or_else(|| (rendered, limited.len(), upper.len() - limited.len()));
    let client = ChatCompletions::new(config);
    let started = std::time::Instant::now();
    let asked = tokio::time::timeout(config.total_timeout, summarize(&client, &input, config));
    let result = match asked.await {
        Ok(result) => result,
        Err(_) => Err(SummarizerError::Timeout(config.total_timeout)),
    };
    let (completion, chunks) = match result {
        Ok(done) => done,
        Err(err) => {
            tracing::warn!(
                thread_id,
                reason = %err.reason(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "chat summary failed"
            );
            return Ok(SummaryOutcome::Failed {
                reason: err.reason(),
                message: crate::domain::rules::agent_safe::agent_safe_text(&err.to_string()),
            });
        }
    };
    let summary = StoredSummary {
        thread_id: thread_id.to_string(),
        input_hash: hash,
        text: completion.text,
        model: completion.model,
        last_entry_id: last.id,
        messages_summarized: summarized as i64,
        messages_omitted: omitted as i64,
        chunks: chunks as i64,
        rolling,
        created_at: Timestamp(now_ms()),
    };
    tracing::info!(
        thread_id,
        chunks,
        rolling,
        messages = summarized,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "chat summarized"
    );
    store.put_summary(summary.clone()).await?;
    Ok(SummaryOutcome::Fresh(summary))
}

/// One request for a chunk of input, or one per chunk (the newest [`MAX_CHUNKS`]) and one to merge them.
async fn summarize(
    client: &ChatCompletions,
    input: &str,
    config: &SummarizerConfig,
) -> Result<(crate::summarizer::Completion, usize), SummarizerError> {
    let mut chunks = chunk(input, config.max_input_chars_per_chunk);
    if chunks.len() > MAX_CHUNKS {
        chunks.drain(..chunks.len() - MAX_CHUNKS);
    }
    if chunks.len() <= 1 {
        let only = chunks.pop().unwrap_or_default();
        return Ok((client.complete(&summarize_request(&only, 1, 1)).await?, 1));
    }
    let mut partials = Vec::with_capacity(chunks.len());
    for (i, piece) in chunks.iter().enumerate() {
        let part = client
            .complete(&summarize_request(piece, i + 1, chunks.len()))
            .await?;
        partials.push(part.text);
    }
    let merged = client.complete(&merge_request(&partials)).await?;
    Ok((merged, chunks.len()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::store::test_support::temp_store;

    /// A chat-completions endpoint on 127.0.0.1 that answers `summary <n>` to its n-th request and records
    /// the bodies; it ends with the test's runtime.
    async fn endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                // Headers, then as many body bytes as Content-Length says.
                let body = loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            break Some(
                                String::from_utf8_lossy(&data[end + 4..end + 4 + length])
                                    .to_string(),
                            );
                        }
                    }
                };
                let Some(body) = body else { continue };
                let n = {
                    let mut all = seen.lock().expect("bodies");
                    all.push(body);
                    all.len()
                };
                let reply = serde_json::json!({"model": "m", "choices": [{"message": {"content": format!("summary {n}")}}]})
                    .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (format!("http://{addr}/v1"), bodies)
    }

    fn entry(id: i64, role: &str, text: String) -> HistoryEntry {
        HistoryEntry {
            entry_id: id,
            thread_id: "th".into(),
            turn_id: format!("tu{}", (id + 1) / 2),
            operation_id: None,
            project_id: None,
            role: role.into(),
            kind: if role == "user" {
                "prompt"
            } else {
                "final_answer"
            }
            .into(),
            text,
            created_at: Timestamp(id),
        }
    }

    /// `exchanges` prompt/answer pairs of about 600 characters each, then the latest prompt.
    fn chat(exchanges: i64) -> Vec<HistoryEntry> {
        let mut entries = Vec::new();
        for i in 0..exchanges {
            entries.push(entry(
                2 * i + 1,
                "user",
                format!("question {i} {}", "q".repeat(600)),
            ));
            entries.push(entry(
                2 * i + 2,
                "assistant",
                format!("answer {i} {}", "a".repeat(600)),
            ));
        }
        entries.push(entry(2 * exchanges + 1, "user", "latest question".into()));
        entries
    }

    #[tokio::test]
    async fn long_histories_are_chunked_merged_cached_and_rolled() {
        let (base_url, bodies) = endpoint().await;
        let (_dir, store) = temp_store();
        let config = SummarizerConfig {
            enabled: true,
            base_url,
            max_input_chars_per_chunk: 1_000,
            small_history_message_limit: 2,
            small_history_chars: 100,
            timeout: Duration::from_secs(5),
            ..SummarizerConfig::default()
        };
        let run = |entries: Vec<HistoryEntry>, force| {
            let (store, config) = (store.clone(), config.clone());
            async move {
                chat_summary(&store, &config, "th", &entries, force)
                    .await
                    .expect("store")
            }
        };
        // 3 exchanges = 6 messages of ~650 rendered characters: 4 chunks (the limit), then a merge.
        let SummaryOutcome::Fresh(first) = run(chat(3), false).await else {
            panic!("fresh")
        };
        assert_eq!((first.chunks, first.messages_summarized), (4, 6));
        assert_eq!(first.text, "summary 5", "the merge answers last");
        {
            let bodies = bodies.lock().expect("bodies");
            assert_eq!(bodies.len(), 5);
            assert!(bodies[0].contains("part 1 of 4") && bodies[4].contains("Partial summary 4"));
            assert!(bodies.iter().all(|b| !b.contains("latest question")));
        }
        // Unchanged: cached; forced: asked again.
        assert!(
            matches!(run(chat(3), false).await, SummaryOutcome::Cached(ref s) if s.text == "summary 5")
        );
        assert_eq!(bodies.lock().expect("bodies").len(), 5);
        // A small history is not summarized.
        assert_eq!(
            run(chat(1), false).await,
            SummaryOutcome::Skipped("small_history")
        );
        // One more exchange: the previous summary and the two new messages (two chunks and a merge here).
        let sent = bodies.lock().expect("bodies").len();
        let SummaryOutcome::Fresh(rolled) = run(chat(4), false).await else {
            panic!("rolled")
        };
        assert!(
            rolled.rolling && rolled.messages_summarized == 2,
            "{rolled:?}"
        );
        let new: String = bodies.lock().expect("bodies")[sent..].concat();
        assert!(
            new.contains("previous summary") && new.contains("summary 5"),
            "{new}"
        );
        assert!(
            new.contains("question 3") && !new.contains("question 2"),
            "{new}"
        );
        // Forced: from the messages themselves, not rolled.
        let SummaryOutcome::Fresh(forced) = run(chat(4), true).await else {
            panic!("forced")
        };
        assert!(!forced.rolling);
        // Off: nothing is sent.
        let before = bodies.lock().expect("bodies").len();
        let off = SummarizerConfig {
            enabled: false,
            ..config.clone()
        };
        assert_eq!(
            chat_summary(&store, &off, "th", &chat(4), true)
                .await
                .expect("store"),
            SummaryOutcome::Disabled
        );
        assert_eq!(bodies.lock().expect("bodies").len(), before);
    }
}
