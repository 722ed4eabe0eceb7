//! Asking the repair plugins for a plan: every loaded plugin of the `repair` world, in chain order, on the
//! blocking pool, until one returns a non-empty plan. A plugin that fails (a trap, its fuel, deadline or
//! memory) is reported and the next one is asked. Steps come back as plain values so callers above the engine
//! need no plugin types; the host decides whether each step is allowed.

use std::time::Instant;

use super::analyzers::failure_kind;
use super::{Engine, EngineError};
use crate::plugins::types::{Finding, RepairAction, RepairContext, Severity};
use crate::plugins::World;

/// What a repair plugin asked to be done (WIT `repair-action`, as a plain value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    /// Mark an operation failed: (operation id, reason).
    FailOperation(String, String),
    /// Cancel an operation.
    CancelOperation(String),
    /// Release an operation's lease.
    ReleaseLease(String),
    /// Expire a pending interaction.
    ExpireInteraction(String),
    /// Archive a thread.
    ArchiveThread(String),
    /// Restart app-server.
    RestartAppServer,
    /// Run the host procedure of a repair action on a candidate: (action, target) (WIT 0.2).
    RunProcedure(String, String),
}

impl StepAction {
    /// The WIT variant name (`fail-operation`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::FailOperation(..) => "fail-operation",
            StepAction::CancelOperation(_) => "cancel-operation",
            StepAction::ReleaseLease(_) => "release-lease",
            StepAction::ExpireInteraction(_) => "expire-interaction",
            StepAction::ArchiveThread(_) => "archive-thread",
            StepAction::RestartAppServer => "restart-app-server",
            StepAction::RunProcedure(..) => "run-procedure",
        }
    }

    /// The id the step acts on (`None` for a restart).
    pub fn target(&self) -> Option<&str> {
        match self {
            StepAction::FailOperation(id, _)
            | StepAction::CancelOperation(id)
            | StepAction::ReleaseLease(id)
            | StepAction::ExpireInteraction(id)
            | StepAction::ArchiveThread(id)
            | StepAction::RunProcedure(_, id) => Some(id),
            StepAction::RestartAppServer => None,
        }
    }
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// Plugin-chosen id.
    pub id: String,
    /// What it does, in the plugin's words.
    pub description: String,
    /// The action.
    pub action: StepAction,
}

/// The finding a repair is planned from.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairFinding {
    /// The canonical repair action (WIT `code`).
    pub code: String,
    /// What it is about ("" when global).
    pub subject: String,
    /// The explanation.
    pub message: String,
    /// The `repair-request/v1` details document.
    pub details: String,
}

/// Which plugin planned, what it planned, and the plugins that failed on the way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepairPlan {
    /// The plugin whose plan is used (`None` when no plugin planned anything).
    pub plugin: Option<String>,
    /// Its steps.
    pub steps: Vec<PlannedStep>,
    /// Plugins that failed: (plugin, kind, message).
    pub failures: Vec<(String, &'static str, String)>,
    /// How long planning took, in milliseconds.
    pub elapsed_ms: u64,
}

impl Engine {
    /// Asks the repair plugins, in chain order, for the plan of `finding`; the first non-empty plan wins.
    pub async fn plan_repair(
        &self,
        finding: RepairFinding,
        dry_run: bool,
        snapshot: String,
    ) -> Result<RepairPlan, EngineError> {
        self.with_plugins(move |plugins| {
            let started = Instant::now();
            let wit_finding = Finding {
                code: finding.code,
                severity: Severity::Warning,
                subject: finding.subject,
                message: finding.message,
                details: Some(finding.details),
            };
            let context = RepairContext { dry_run, snapshot };
            let mut plan = RepairPlan::default();
            for plugin in plugins.plugins_with(World::Repair) {
                match plugins.plan_repair(&plugin, &wit_finding, &context) {
                    Ok(steps) if steps.is_empty() => {}
                    Ok(steps) => {
                        plan.plugin = Some(plugin);
                        plan.steps = steps.into_iter().map(plain).collect();
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%plugin, %error, "repair plugin failed; the next one is asked");
                        plan.failures.push((plugin, failure_kind(&error), error.to_string()));
                    }
                }
            }
            plan.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            plan
        })
        .await
    }
}

/// A WIT step as a plain value.
fn plain(step: crate::plugins::types::RepairStep) -> PlannedStep {
    PlannedStep {
        id: step.id,
        description: step.description,
        action: match step.action {
            RepairAction::FailOperation((id, reason)) => StepAction::FailOperation(id, reason),
            RepairAction::CancelOperation(id) => StepAction::CancelOperation(id),
            RepairAction::ReleaseLease(id) => StepAction::ReleaseLease(id),
            RepairAction::ExpireInteraction(id) => StepAction::ExpireInteraction(id),
            RepairAction::ArchiveThread(id) => StepAction::ArchiveThread(id),
            RepairAction::RestartAppServer => StepAction::RestartAppServer,
            RepairAction::RunProcedure(procedure) => {
                StepAction::RunProcedure(procedure.action, procedure.target)
            }
        },
    }
}
