//! What the dispatcher last found in the queue, so a submit that cannot change it does not wake the dispatcher.
//!
//! Every submit used to wake the dispatcher, which read the queue (a plan on a pooled reader, two thread hand-offs
//! and a page cache refilled after the insert) only to find what it found before: every slot taken, the new row
//! behind the head. That read was a tenth of a submit's cost under a full queue. The gate keeps that finding and
//! lets a submit skip the wake when its row lands behind the head: same slot holders, same head, nothing a claim
//! would do differently.
//!
//! Invariant: every event of this process that may free a slot or change the head (an operation ending or
//! repaired, a lease released, a workflow queuing work, the worker's doorbell) goes through `Engine::wake`, which
//! calls [`QueueGate::forget`], and a finding is kept only if no such event happened while the dispatcher was
//! reading. What this process does not see (another process freeing a slot, a lease expiring, a retry's backoff
//! ending) is found by the dispatcher's poll within its interval, as it was whenever no submit happened to come.

use std::sync::Mutex;

/// The dispatcher's last finding, shared with the submit path.
#[derive(Debug, Default)]
pub struct QueueGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// Bumped by every [`QueueGate::forget`]; a finding read before the latest bump is not kept.
    generation: u64,
    /// Every slot taken and the head waiting at this priority rank, as of the dispatcher's last read.
    slots_full_at: Option<i64>,
}

/// A ticket for one look at the queue: which generation it started in.
#[derive(Debug, Clone, Copy)]
pub struct Look(u64);

impl QueueGate {
    /// Drops the finding: something may have freed a slot or queued work ahead of the head.
    pub fn forget(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.slots_full_at = None;
    }

    /// Starts a look at the queue; pass the ticket to [`QueueGate::found`] with what the look found.
    pub fn look(&self) -> Look {
        Look(self.lock().generation)
    }

    /// Keeps what a look found, unless something happened since it started (the dispatcher is then woken again
    /// anyway, and its next look decides).
    pub fn found(&self, look: Look, slots_full_at: Option<i64>) {
        let mut state = self.lock();
        if state.generation == look.0 {
            state.slots_full_at = slots_full_at;
        }
    }

    /// True when a new operation (`takes_slot`, at priority rank `priority`) cannot change what a claim would
    /// do: every slot is taken and it lands behind the head.
    pub fn holds(&self, takes_slot: bool, priority: i64) -> bool {
        takes_slot
            && self
                .lock()
                .slots_full_at
                .is_some_and(|head| priority <= head)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // The state is two integers, consistent after any panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_holds_only_what_lands_behind_its_head() {
        let gate = QueueGate::default();
        assert!(!gate.holds(true, 0), "nothing known yet");
        let look = gate.look();
        gate.found(look, Some(1));
        assert!(gate.holds(true, 1), "same priority as the head");
        assert!(gate.holds(true, 0), "lower priority");
        assert!(!gate.holds(true, 2), "a higher priority becomes the head");
        assert!(!gate.holds(false, 0), "needs no slot: may start now");
        gate.found(gate.look(), None);
        assert!(!gate.holds(true, 0), "a free slot");
    }

    #[test]
    fn a_finding_older_than_an_event_is_not_kept() {
        let gate = QueueGate::default();
        gate.found(gate.look(), Some(1));
        gate.forget();
        assert!(!gate.holds(true, 0), "forgotten");
        let look = gate.look();
        // A slot frees while the dispatcher reads: what it read is stale.
        gate.forget();
        gate.found(look, Some(1));
        assert!(!gate.holds(true, 0));
        let look = gate.look();
        gate.found(look, Some(1));
        assert!(gate.holds(true, 0));
    }
}
