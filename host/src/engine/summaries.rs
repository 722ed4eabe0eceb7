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
