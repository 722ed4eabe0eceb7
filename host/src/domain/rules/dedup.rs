//! The active duplicate-prompt guard (seed §f "Dedup") over candidate rows the store has already loaded.

use serde::Serialize;

use super::similarity::SimilarityProbe;
use super::status::{is_active, is_startable, DEDUP_TYPES};

/// Similarity at or above which two prompts in one scope count as the same request.
pub const SIMILARITY_THRESHOLD: f64 = 0.90;
/// How many recent rows of the scope the similarity pass looks at.
pub const SIMILARITY_WINDOW: usize = 200;
/// How many same-hash rows are considered.
pub const SAME_HASH_LIMIT: usize = 50;

/// Whether the guard runs for this request: only for start_chat, send_message and execute_plan, not with
/// `dedup_policy = idempotency_only`, and not when the caller forces it.
/// `allow_parallel_with_resource_keys` behaves like the default `active_prompt_guard` (resource keys already
/// exempt disjoint work).
pub fn guard_applies(operation_type: &str, dedup_policy: &str, force: bool) -> bool {
    DEDUP_TYPES.contains(&operation_type) && dedup_policy != "idempotency_only" && !force
}

/// The status that decides whether a submission is still in flight: the turn's, else the operation's, else the
/// submission's own.
pub fn effective_status<'a>(
    turn: Option<&'a str>,
    operation: Option<&'a str>,
    submission: &'a str,
) -> &'a str {
    turn.or(operation).unwrap_or(submission)
}

/// The incoming request as the guard sees it.
#[derive(Debug, Clone)]
pub struct DedupProbe<'a> {
    /// Normalised basis text.
    pub normalized: &'a str,
    /// Its hash.
    pub hash: &'a str,
    /// The similarity pass is skipped when the request carries input items.
    pub has_input_items: bool,
    /// Resource keys of the request.
    pub resource_keys: &'a [String],
}

/// One earlier submission of the same scope, most recent first, borrowed from what the store holds (a submit
/// compares up to a few hundred; copying each one's strings cost more than comparing most of them).
#[derive(Debug, Clone, Copy)]
pub struct DedupCandidate<'a> {
    /// `sub_<hex>`.
    pub submission_id: &'a str,
    /// The operation it belongs to.
    pub operation_id: &'a str,
    /// Thread, when known.
    pub thread_id: Option<&'a str>,
    /// Turn, when known.
    pub turn_id: Option<&'a str>,
    /// Effective status (see [`effective_status`]).
    pub status: &'a str,
    /// Normalised basis text.
    pub normalized: &'a str,
    /// Its hash.
    pub hash: &'a str,
    /// Resource keys it was submitted with.
    pub resource_keys: &'a [String],
}

/// What `CODEX_DUPLICATE_PROMPT_ACTIVE` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateMatch {
    /// The operation already doing this work.
    pub existing_operation_id: String,
    /// Its chat (= thread) id.
    pub existing_chat_id: Option<String>,
    /// Its thread id.
    pub existing_thread_id: Option<String>,
    /// Its turn id.
    pub existing_turn_id: Option<String>,
    /// Its effective status.
    pub existing_status: String,
    /// The earlier submission matched.
    pub duplicate_of_submission_id: String,
    /// 1.0 for the same normalised text, else the similarity that matched.
    pub similarity: f64,
    /// Always `blocked_active_duplicate`.
    pub dedup_decision: String,
    /// Always `poll_existing_turn`.
    pub next_recommended_action: String,
}

fn disjoint_resource_keys(a: &[String], b: &[String]) -> bool {
    !a.is_empty() && !b.is_empty() && !a.iter().any(|key| b.contains(key))
}

/// The best active duplicate among `candidates` (highest similarity; ties go to the most recent), if any.
pub fn find_active_duplicate(
    probe: &DedupProbe<'_>,
    candidates: &[DedupCandidate<'_>],
) -> Option<DuplicateMatch> {
    let mut best: Option<(&DedupCandidate<'_>, f64)> = None;
    // Prepared on the first candidate that needs a similarity, then shared by all of them.
    let mut similarity: Option<SimilarityProbe<'_>> = None;
    for candidate in candidates {
        // Nothing scores above 1.0 and ties keep the earlier (more recent) candidate: the rest cannot win.
        if best.is_some_and(|(_, top)| top >= 1.0) {
            break;
        }
        if !(is_active(candidate.status) || is_startable(candidate.status)) {
            continue;
        }
        if disjoint_resource_keys(probe.resource_keys, candidate.resource_keys) {
            continue;
        }
        let score = if candidate.hash == probe.hash {
            Some(1.0)
        } else if probe.has_input_items {
            None
        } else {
            similarity
                .get_or_insert_with(|| SimilarityProbe::new(probe.normalized))
                .at_least(candidate.normalized, SIMILARITY_THRESHOLD)
        };
        if let Some(score) = score {
            if best.is_none_or(|(_, top)| score > top) {
                best = Some((candidate, score));
            }
        }
    }
    best.map(|(candidate, similarity)| DuplicateMatch {
        existing_operation_id: candidate.operation_id.to_string(),
        existing_chat_id: candidate.thread_id.map(str::to_string),
        existing_thread_id: candidate.thread_id.map(str::to_string),
        existing_turn_id: candidate.turn_id.map(str::to_string),
        existing_status: candidate.status.to_string(),
        duplicate_of_submission_id: candidate.submission_id.to_string(),
        similarity,
        dedup_decision: "blocked_active_duplicate".to_string(),
        next_recommended_action: "poll_existing_turn".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::prompt::{normalize_prompt, prompt_hash};

    const BASE: &str = "Please refactor the storage layer to use WAL mode and add tests";
    const NEAR: &str = "Please refactor the storage layer to use WAL mode and add unit tests";

    /// What a candidate borrows from: (submission, operation, thread, status, normalized, hash, keys).
    type Owned = (String, String, String, String, String, String, Vec<String>);

    fn candidate(id: &str, text: &str, status: &str, keys: &[&str]) -> Owned {
        let normalized = normalize_prompt(text);
        (
            format!("sub_{id}"),
            format!("op_{id}"),
            format!("thr_{id}"),
            status.to_string(),
            prompt_hash(&normalized),
            normalized,
            keys.iter().map(|k| k.to_string()).collect(),
        )
    }

    fn borrowed(owned: &Owned) -> DedupCandidate<'_> {
        DedupCandidate {
            submission_id: &owned.0,
            operation_id: &owned.1,
            thread_id: Some(&owned.2),
            turn_id: None,
            status: &owned.3,
            hash: &owned.4,
            normalized: &owned.5,
            resource_keys: &owned.6,
        }
    }

    fn probe_for(text: &str, items: bool, keys: &[&str]) -> Option<String> {
        let normalized = normalize_prompt(text);
        let hash = prompt_hash(&normalized);
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let owned = [
            candidate("done", BASE, "completed", &[]),
            candidate("run", NEAR, "running", &["db"]),
            candidate(
                "queued",
                "Write a haiku about the sea and the sky at night, please",
                "queued",
                &[],
            ),
        ];
        let candidates: Vec<DedupCandidate<'_>> = owned.iter().map(borrowed).collect();
        let probe = DedupProbe {
            normalized: &normalized,
            hash: &hash,
            has_input_items: items,
            resource_keys: &keys,
        };
        find_active_duplicate(&probe, &candidates).map(|m| m.existing_operation_id)
    }

    #[test]
    fn guard_scope() {
        assert!(guard_applies("start_chat", "active_prompt_guard", false));
        assert!(guard_applies(
            "execute_plan",
            "allow_parallel_with_resource_keys",
            false
        ));
        assert!(!guard_applies("send_message", "idempotency_only", false));
        assert!(!guard_applies("steer_turn", "active_prompt_guard", false));
        assert!(!guard_applies("fork_thread", "active_prompt_guard", false));
        assert!(!guard_applies("start_chat", "active_prompt_guard", true));
        assert_eq!(
            effective_status(Some("running"), Some("queued"), "queued"),
            "running"
        );
        assert_eq!(
            effective_status(None, Some("completed"), "queued"),
            "completed"
        );
        assert_eq!(effective_status(None, None, "queued"), "queued");
    }

    #[test]
    fn decisions() {
        // The same text as a completed op and similar to a running one: the running one is the duplicate.
        assert_eq!(probe_for(BASE, false, &[]).as_deref(), Some("op_run"));
        // Case and whitespace do not matter for the same-hash pass.
        assert_eq!(
            probe_for(&format!("  {}  ", NEAR.to_uppercase()), true, &[]).as_deref(),
            Some("op_run")
        );
        // With input items only exact hashes count, and BASE only equals the completed one.
        assert_eq!(probe_for(BASE, true, &[]), None);
        // Disjoint non-empty resource keys on both sides: ignored.
        assert_eq!(probe_for(BASE, false, &["docs"]), None);
        // Overlapping keys still collide.
        assert_eq!(
            probe_for(BASE, false, &["docs", "db"]).as_deref(),
            Some("op_run")
        );
        // Short or unrelated prompts don't match; queued (startable) rows are active too.
        assert_eq!(probe_for("add tests", false, &[]), None);
        assert_eq!(
            probe_for(
                "write a haiku about the sea and the sky at night, please",
                false,
                &[]
            )
            .as_deref(),
            Some("op_queued")
        );
    }
}
