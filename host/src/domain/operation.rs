//! What an operation is and where it stands: its kind and its status, as enums. The wire and the database
//! carry the seed's snake_case names; everything in between names the variants.

use std::fmt;

/// Where an operation stands (seed §c). Three groups: startable (a worker may start or restart it), active
/// (its turn exists and is live) and terminal (final but for the reconcile rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationStatus {
    /// Committed, waiting for a worker.
    Queued,
    /// A worker is starting app-server for it.
    StartingAppServer,
    /// A worker is starting or resuming its thread.
    StartingThread,
    /// A worker is starting its review.
    StartingReview,
    /// A worker is starting its turn.
    StartingTurn,
    /// App-server accepted it.
    Accepted,
    /// Its turn started.
    Started,
    /// Its turn runs.
    Running,
    /// Its turn produced its first message.
    FirstMessageReceived,
    /// Its turn waits for an approval.
    WaitingForApproval,
    /// Its turn waits for the user's input.
    WaitingForUserInput,
    /// Its turn completed.
    Completed,
    /// It failed.
    Failed,
    /// Its turn was aborted.
    Aborted,
    /// It was cancelled before it ran.
    Cancelled,
    /// It was cancelled (the app-server's spelling).
    Canceled,
    /// Its turn was interrupted.
    Interrupted,
    /// Its owner disappeared.
    Orphaned,
    /// App-server exited while its turn ran: never reported as success.
    UnknownAfterAppServerExit,
}

impl OperationStatus {
    /// Statuses from which a worker may (re)start an operation.
    pub const STARTABLE: [OperationStatus; 5] = [
        OperationStatus::Queued,
        OperationStatus::StartingAppServer,
        OperationStatus::StartingThread,
        OperationStatus::StartingReview,
        OperationStatus::StartingTurn,
    ];

    /// Statuses of an operation whose turn is live.
    pub const ACTIVE: [OperationStatus; 6] = [
        OperationStatus::Accepted,
        OperationStatus::Started,
        OperationStatus::Running,
        OperationStatus::FirstMessageReceived,
        OperationStatus::WaitingForApproval,
        OperationStatus::WaitingForUserInput,
    ];

    /// Final statuses.
    pub const TERMINAL: [OperationStatus; 8] = [
        OperationStatus::Completed,
        OperationStatus::Failed,
        OperationStatus::Aborted,
        OperationStatus::Cancelled,
        OperationStatus::Canceled,
        OperationStatus::Interrupted,
        OperationStatus::Orphaned,
        OperationStatus::UnknownAfterAppServerExit,
    ];

    /// The seed's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Queued => "queued",
            OperationStatus::StartingAppServer => "starting_app_server",
            OperationStatus::StartingThread => "starting_thread",
            OperationStatus::StartingReview => "starting_review",
            OperationStatus::StartingTurn => "starting_turn",
            OperationStatus::Accepted => "accepted",
            OperationStatus::Started => "started",
            OperationStatus::Running => "running",
            OperationStatus::FirstMessageReceived => "first_message_received",
            OperationStatus::WaitingForApproval => "waiting_for_approval",
            OperationStatus::WaitingForUserInput => "waiting_for_user_input",
            OperationStatus::Completed => "completed",
            OperationStatus::Failed => "failed",
            OperationStatus::Aborted => "aborted",
            OperationStatus::Cancelled => "cancelled",
            OperationStatus::Canceled => "canceled",
            OperationStatus::Interrupted => "interrupted",
            OperationStatus::Orphaned => "orphaned",
            OperationStatus::UnknownAfterAppServerExit => "unknown_after_app_server_exit",
        }
    }

    /// Parses the seed's name.
    pub fn parse(text: &str) -> Option<OperationStatus> {
        Self::STARTABLE
            .into_iter()
            .chain(Self::ACTIVE)
            .chain(Self::TERMINAL)
            .find(|status| status.as_str() == text)
    }

    /// A worker may (re)start it.
    pub const fn is_startable(self) -> bool {
        matches!(
            self,
            OperationStatus::Queued
                | OperationStatus::StartingAppServer
                | OperationStatus::StartingThread
                | OperationStatus::StartingReview
                | OperationStatus::StartingTurn
        )
    }

    /// Its turn is live.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            OperationStatus::Accepted
                | OperationStatus::Started
                | OperationStatus::Running
                | OperationStatus::FirstMessageReceived
                | OperationStatus::WaitingForApproval
                | OperationStatus::WaitingForUserInput
        )
    }

    /// It is final.
    pub const fn is_terminal(self) -> bool {
        !self.is_startable() && !self.is_active()
    }
}

impl serde::Serialize for OperationStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for OperationStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of operation the store keeps: the five a client submits and the internal `review_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// A new thread and its first turn.
    StartChat,
    /// A new turn on an existing thread.
    SendMessage,
    /// A turn that implements a previously approved plan.
    ExecutePlan,
    /// Extra input for the thread's active turn.
    SteerTurn,
    /// A copy of a thread, optionally with a first turn.
    ForkThread,
    /// A review turn started by the review workflow.
    ReviewStart,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 6] = [
        OperationKind::StartChat,
        OperationKind::SendMessage,
        OperationKind::ExecutePlan,
        OperationKind::SteerTurn,
        OperationKind::ForkThread,
        OperationKind::ReviewStart,
    ];

    /// The seed's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationKind::StartChat => "start_chat",
            OperationKind::SendMessage => "send_message",
            OperationKind::ExecutePlan => "execute_plan",
            OperationKind::SteerTurn => "steer_turn",
            OperationKind::ForkThread => "fork_thread",
            OperationKind::ReviewStart => "review_start",
        }
    }

    /// Parses the seed's name.
    pub fn parse(text: &str) -> Option<OperationKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// A client may submit it through `codex_submit_task` (everything but the internal `review_start`).
    pub const fn is_submittable(self) -> bool {
        !matches!(self, OperationKind::ReviewStart)
    }

    /// The duplicate-prompt guard applies to it (a kind that carries a new prompt).
    pub const fn is_deduplicated(self) -> bool {
        matches!(
            self,
            OperationKind::StartChat | OperationKind::SendMessage | OperationKind::ExecutePlan
        )
    }
}

impl serde::Serialize for OperationKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of `statuses`, for SQL lists and the wire (evaluated at compile time).
pub const fn status_names<const N: usize>(statuses: [OperationStatus; N]) -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = statuses[i].as_str();
        i += 1;
    }
    names
}

/// The names of `kinds`.
pub const fn kind_names<const N: usize>(kinds: [OperationKind; N]) -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = kinds[i].as_str();
        i += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_belongs_to_exactly_one_group() {
        let all: Vec<OperationStatus> = OperationStatus::STARTABLE
            .into_iter()
            .chain(OperationStatus::ACTIVE)
            .chain(OperationStatus::TERMINAL)
            .collect();
        assert_eq!(all.len(), 19);
        for status in all {
            assert_eq!(OperationStatus::parse(status.as_str()), Some(status));
            let groups = [
                status.is_startable(),
                status.is_active(),
                status.is_terminal(),
            ];
            assert_eq!(groups.iter().filter(|g| **g).count(), 1, "{status}");
        }
        assert_eq!(OperationStatus::parse("Running"), None);
        for kind in OperationKind::ALL {
            assert_eq!(OperationKind::parse(kind.as_str()), Some(kind));
        }
    }
}
