//! The loop guard (seed §g): a repair keyed by sha256 of {category, scope, action, target} may run for real a
//! few times per window (`actions::guard_limit`); after a failed run the next waits a cooldown of 5 minutes,
//! then 15, then the full window. Dry runs are never counted; a run the guard blocked is audited but not
//! counted either.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::actions::guard_limit;
use crate::store::repairs::CountedRun;

/// Cooldowns after 1 and 2 consecutive failed runs; from the third, the whole window.
const COOLDOWNS_MS: [i64; 2] = [5 * 60_000, 15 * 60_000];

/// The guard key of a repair.
pub fn key(category: &str, scope: &str, action: &str, target: &str) -> String {
    let document =
        json!({"action": action, "category": category, "scope": scope, "target": target});
    hex::encode(Sha256::digest(document.to_string().as_bytes()))
}

/// The guard's verdict on one more real run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether a real run may go ahead.
    pub allowed: bool,
    /// `limit_reached` or `cooldown` when not allowed.
    pub blocked_reason: Option<&'static str>,
    /// Real runs counted in the window.
    pub attempts: usize,
    /// Real runs allowed in the window.
    pub limit: usize,
    /// The window, in ms.
    pub window_ms: i64,
    /// When the next real run will be allowed (ms), when blocked.
    pub retry_after_ms: Option<i64>,
}

impl Verdict {
    /// The `loopGuard` object of the answer.
    pub fn to_json(&self, key: &str, dry_run: bool) -> Value {
        json!({
            "key": key,
            "allowed": self.allowed,
            "blockedReason": self.blocked_reason,
            "attempts": self.attempts,
            "limit": self.limit,
            "windowMinutes": self.window_ms / 60_000,
            "retryAfter": self.retry_after_ms.map(|ms| crate::store::Timestamp(ms).iso()),
            "counted": !dry_run && self.allowed,
        })
    }
}

/// Judges one more real run of `action` given its counted runs in the window (newest first) at `now`.
pub fn judge(action: &str, runs: &[CountedRun], now: i64) -> Verdict {
    let (limit, window_ms) = guard_limit(action);
    let mut verdict = Verdict {
        allowed: true,
        blocked_reason: None,
        attempts: runs.len(),
        limit,
        window_ms,
        retry_after_ms: None,
    };
    if runs.len() >= limit {
        let oldest = runs.iter().map(|r| r.created_at).min().unwrap_or(now);
        verdict.allowed = false;
        verdict.blocked_reason = Some("limit_reached");
        verdict.retry_after_ms = Some(oldest + window_ms);
        return verdict;
    }
    let failures = runs.iter().take_while(|r| r.status == "failed").count();
    if let Some(newest) = runs.first().filter(|_| failures > 0) {
        let cooldown = COOLDOWNS_MS.get(failures - 1).copied().unwrap_or(window_ms);
        if now < newest.created_at + cooldown {
            verdict.allowed = false;
            verdict.blocked_reason = Some("cooldown");
            verdict.retry_after_ms = Some(newest.created_at + cooldown);
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(created_at: i64, status: &str) -> CountedRun {
        CountedRun {
            created_at,
            status: status.into(),
        }
    }

    #[test]
    fn the_limit_blocks_and_failures_cool_down() {
        let now = 10_000_000;
        assert!(judge("recover_stale_operations", &[], now).allowed);
        let two = [run(now - 1000, "completed"), run(now - 2000, "completed")];
        let blocked = judge("recover_stale_operations", &two, now);
        assert_eq!(blocked.blocked_reason, Some("limit_reached"));
        assert_eq!(blocked.retry_after_ms, Some(now - 2000 + 120 * 60_000));
        assert!(!judge("force_restart_app_server", &two[..1], now).allowed);
        let failed = judge(
            "recover_stale_operations",
            &[run(now - 1000, "failed")],
            now,
        );
        assert_eq!(failed.blocked_reason, Some("cooldown"));
        assert_eq!(failed.retry_after_ms, Some(now - 1000 + 5 * 60_000));
        assert!(
            judge(
                "recover_stale_operations",
                &[run(now - 6 * 60_000, "failed")],
                now
            )
            .allowed
        );
        assert_ne!(key("c", "s", "a", "t"), key("c", "s", "a", "u"));
    }
}
