//! What the remote chat summarizer is given: the messages before the chat's latest prompt (the seed's
//! `before_latest_user` mode: the latest exchange is read verbatim, what came before is summarized), the newest
//! `recent_messages_limit` of them, rendered with secrets, e-mails and absolute paths redacted
//! ([`agent_safe_text`]), cut into chunks of at most `max_input_chars_per_chunk` characters, and the prompts
//! that ask for a summary of one chunk or merge partial summaries.

use serde_json::json;

use super::agent_safe::agent_safe_text;
use super::canonical::sha256_hex;

/// Longest single message sent, in characters; a longer one is cut (the seed's limit).
pub const MAX_MESSAGE_CHARS: usize = 12_000;

/// Most chunks one summary sends (plus one merge request): bounds the calls and the time of one summary.
pub const MAX_CHUNKS: usize = 4;

/// Version of the rendering and prompts below; part of the cache key, so changing them re-summarizes.
pub const PROMPT_VERSION: &str = "summary/v1";

/// One history message as the summarizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryMessage<'a> {
    /// The history entry's id (rolling summaries resume after it).
    pub id: i64,
    /// `user` or `assistant` (or `system` for a hook's compaction summary).
    pub role: &'a str,
    /// The stored text (redacted again when rendered).
    pub text: &'a str,
}

/// The messages a summary covers: the non-empty ones before the latest user message (all of them when there is
/// none).
pub fn before_latest_prompt<'a>(messages: &[SummaryMessage<'a>]) -> Vec<SummaryMessage<'a>> {
    let meaningful: Vec<SummaryMessage<'a>> = messages
        .iter()
        .copied()
        .filter(|m| !m.text.trim().is_empty())
        .collect();
    match meaningful.iter().rposition(|m| m.role == "user") {
        Some(latest) => meaningful[..latest].to_vec(),
        None => meaningful,
    }
}

/// The newest `limit` messages, then the oldest dropped until the rendering fits `max_total_chars`.
pub fn recent<'a>(
    messages: &[SummaryMessage<'a>],
    limit: usize,
    max_total_chars: usize,
) -> Vec<SummaryMessage<'a>> {
    let mut kept: Vec<SummaryMessage<'a>> =
        messages[messages.len().saturating_sub(limit.max(1))..].to_vec();
    let mut total: usize = kept.iter().map(rendered_len).sum();
    while total > max_total_chars && kept.len() > 1 {
        total -= rendered_len(&kept[0]);
        kept.remove(0);
    }
    kept
}

fn rendered_len(message: &SummaryMessage<'_>) -> usize {
    message.text.chars().count().min(MAX_MESSAGE_CHARS) + 32
}

/// The messages as text blocks (`[#n role=...]` then the redacted text), separated by blank lines.
pub fn render(messages: &[SummaryMessage<'_>]) -> String {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let safe = agent_safe_text(m.text);
            let text = match safe.char_indices().nth(MAX_MESSAGE_CHARS) {
                Some((cut, _)) => format!("{}\n[message cut before summarization]", &safe[..cut]),
                None => safe,
            };
            format!("[#{} role={}]\n{}", i + 1, m.role, text.trim())
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The block a rolling summary starts with: the previous summary, redacted again.
pub fn previous_summary_block(previous: &str) -> String {
    format!(
        "[previous summary of the earlier messages]\n{}",
        agent_safe_text(previous).trim()
    )
}

/// True when the history is too small to be worth a remote call (the seed's rule: few messages or few
/// characters).
pub fn is_small(
    messages: usize,
    rendered_chars: usize,
    max_messages: usize,
    max_chars: usize,
) -> bool {
    messages <= max_messages || rendered_chars <= max_chars
}

/// `text` cut into chunks of at most `max_chars` characters, at block boundaries (blank lines) where possible;
/// a block longer than a chunk is cut at character boundaries.
pub fn chunk(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for block in text.split("\n\n") {
        let block_len = block.chars().count();
        let joined_len = current_len + if current.is_empty() { 0 } else { 2 } + block_len;
        if !current.is_empty() && joined_len > max_chars {
            chunks.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if block_len > max_chars {
            let chars: Vec<char> = block.chars().collect();
            for piece in chars.chunks(max_chars) {
                chunks.push(piece.iter().collect());
            }
            continue;
        }
        if !current.is_empty() {
            current.push_str("\n\n");
            current_len += 2;
        }
        current.push_str(block);
        current_len += block_len;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// The cache key of a summary: the messages it covers and every setting that changes its input or prompts.
pub fn input_hash(
    messages: &[SummaryMessage<'_>],
    model: &str,
    recent_messages_limit: usize,
    max_input_chars_per_chunk: usize,
) -> String {
    let material = json!({
        "version": PROMPT_VERSION,
        "model": model,
        "recent": recent_messages_limit,
        "chunk": max_input_chars_per_chunk,
        "messages": messages.iter().map(|m| json!([m.id, m.role, m.text])).collect::<Vec<_>>(),
    });
    sha256_hex(material.to_string().as_bytes())
}

const SYSTEM_SUMMARIZE: &str = "You condense the earlier part of a Codex coding chat for an agent that will continue \
it. Be brief and factual. Keep decisions, errors, commands, changed files, statuses, open questions and the context \
of the current task. Invent nothing. Never include secrets, tokens, API keys or passwords.";

const SYSTEM_MERGE: &str =
    "You merge partial summaries of one Codex coding chat into one. Be brief and factual, \
without repetition; keep only facts and context still useful. Never include secrets.";

/// The chat-completion messages (role, content) asking for a summary of `chunk`, the `part`-th of `parts`.
pub fn summarize_request(chunk: &str, part: usize, parts: usize) -> Vec<(&'static str, String)> {
    let label = if parts > 1 {
        format!(" This is part {part} of {parts} of the history.")
    } else {
        String::new()
    };
    vec![
        ("system", SYSTEM_SUMMARIZE.to_string()),
        (
            "user",
            format!(
                "Summarize this chat history in 5 to 12 bullet points or short paragraphs.{label}\n\n{chunk}"
            ),
        ),
    ]
}

/// The chat-completion messages asking to merge `partials` into one summary.
pub fn merge_request(partials: &[String]) -> Vec<(&'static str, String)> {
    let joined = partials
        .iter()
        .enumerate()
        .map(|(i, text)| format!("Partial summary {}:\n{}", i + 1, text.trim()))
        .collect::<Vec<_>>()
        .join("\n\n---\n\n");
    vec![
        ("system", SYSTEM_MERGE.to_string()),
        (
            "user",
            format!("Merge these partial summaries into one short summary:\n\n{joined}"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: &'static str, text: &'static str) -> SummaryMessage<'static> {
        SummaryMessage { id, role, text }
    }

    #[test]
    fn the_latest_exchange_is_not_summarized() {
        let history = [
            msg(1, "user", "first question"),
            msg(2, "assistant", "first answer"),
            msg(3, "assistant", "  "),
            msg(4, "user", "latest question"),
            msg(5, "assistant", "latest answer"),
        ];
        let upper = before_latest_prompt(&history);
        assert_eq!(upper.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2]);
        let no_prompt = [msg(1, "assistant", "a"), msg(2, "assistant", "b")];
        assert_eq!(before_latest_prompt(&no_prompt).len(), 2);
    }

    #[test]
    fn recent_keeps_the_newest_within_both_limits() {
        let long = "x".repeat(500);
        let long: &'static str = Box::leak(long.into_boxed_str());
        let history: Vec<SummaryMessage<'static>> =
            (1..=10).map(|i| msg(i, "assistant", long)).collect();
        let kept = recent(&history, 4, usize::MAX);
        assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), [7, 8, 9, 10]);
        let kept = recent(&history, 10, 1_200);
        assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), [9, 10]);
        assert_eq!(recent(&history, 10, 1).len(), 1, "the newest always stays");
    }

    #[test]
    fn rendering_redacts_secrets_e_mails_and_absolute_paths() {
        let text = render(&[msg(
            1,
            "user",
            "key sk-abcdefghijklmnopqrstuvwx, mail alice@example.com, file /home/alice/notes.txt",
        )]);
        assert!(text.starts_with("[#1 role=user]\n"), "{text}");
        for secret in ["sk-abcdefghij", "alice@example.com", "/home/alice"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("[redacted-path:notes.txt:"), "{text}");
        let huge: &'static str = Box::leak("y".repeat(MAX_MESSAGE_CHARS + 10).into_boxed_str());
        let text = render(&[msg(1, "assistant", huge)]);
        assert!(text.ends_with("[message cut before summarization]"));
    }

    #[test]
    fn chunks_respect_the_limit_and_block_boundaries() {
        let text = ["a".repeat(40), "b".repeat(40), "c".repeat(40)].join("\n\n");
        assert_eq!(chunk(&text, 1_000), vec![text.clone()]);
        let parts = chunk(&text, 90);
        assert_eq!(
            parts,
            [
                format!("{}\n\n{}", "a".repeat(40), "b".repeat(40)),
                "c".repeat(40)
            ]
        );
        let parts = chunk(&"é".repeat(25), 10);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert!(chunk("", 10).is_empty());
        for part in chunk(&text, 30) {
            assert!(part.chars().count() <= 30, "{part}");
        }
    }

    #[test]
    fn the_cache_key_follows_the_input_and_the_settings() {
        let a = [msg(1, "user", "q"), msg(2, "assistant", "a")];
        let b = [msg(1, "user", "q"), msg(2, "assistant", "a!")];
        let key = input_hash(&a, "m", 60, 60_000);
        assert_eq!(key, input_hash(&a, "m", 60, 60_000));
        assert_ne!(key, input_hash(&b, "m", 60, 60_000));
        assert_ne!(key, input_hash(&a, "other", 60, 60_000));
        assert_ne!(key, input_hash(&a, "m", 10, 60_000));
        assert!(is_small(5, 100_000, 5, 4_000) && is_small(50, 4_000, 5, 4_000));
        assert!(!is_small(6, 4_001, 5, 4_000));
        assert_eq!(summarize_request("h", 2, 3)[1].0, "user");
        assert!(summarize_request("h", 2, 3)[1].1.contains("part 2 of 3"));
        assert!(merge_request(&["x".into(), "y".into()])[1]
            .1
            .contains("Partial summary 2:\ny"));
    }
}
