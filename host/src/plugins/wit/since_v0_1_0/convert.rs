//! Conversions between the 0.1 types of the changed interfaces and the latest ones: what the host sends a 0.1
//! plugin goes down (`latest -> 0.1`), what the plugin answers comes up (`0.1 -> latest`). Identical records
//! are copied field by field; the changes of 0.2 get the 0.1 meaning:
//!
//! - a 0.1 `deny(reason)` / `narrow(settings)` names no rule: the rule is `""` (the host then names only the
//!   plugin);
//! - a 0.1 answer is an `auto-answer` with the rule `""`;
//! - a 0.1 `start-review` names no target: `target: none`, which the host reads as 0.1 did (the workflow
//!   input's `target`);
//! - a 0.1 repair plan has no `run-procedure` step, so nothing maps onto it.

use super::exports::codex_control_plane::plugin::{
    policy_plugin as old_policy, repair_plugin as old_repair, workflow_plugin as old_workflow,
};
use crate::plugins::wit::latest::exports::codex_control_plane::plugin::{
    policy_plugin as policy, repair_plugin as repair, workflow_plugin as workflow,
};

/// `From<$from> for $to` for records whose fields have the same types in both versions.
macro_rules! same_record {
    ($from:path => $to:ident { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> $to {
                $to { $($field: value.$field),* }
            }
        }
    };
}

// Policy, down.
use old_policy::{
    ActionKind as OldActionKind, ActionRequest as OldActionRequest,
    InputSummary as OldInputSummary, Interaction as OldInteraction,
    PolicyContext as OldPolicyContext,
};

impl From<policy::ActionKind> for OldActionKind {
    fn from(kind: policy::ActionKind) -> OldActionKind {
        use policy::ActionKind as K;
        match kind {
            K::StartThread => OldActionKind::StartThread,
            K::StartTurn => OldActionKind::StartTurn,
            K::SteerTurn => OldActionKind::SteerTurn,
            K::InterruptTurn => OldActionKind::InterruptTurn,
            K::SetGoal => OldActionKind::SetGoal,
            K::StartReview => OldActionKind::StartReview,
            K::CompactThread => OldActionKind::CompactThread,
            K::ArchiveThread => OldActionKind::ArchiveThread,
            K::ForkThread => OldActionKind::ForkThread,
        }
    }
}

same_record!(policy::PolicyContext => OldPolicyContext { allowed_roots, default_sandbox, default_approval_policy });
same_record!(policy::InputSummary => OldInputSummary { text_bytes, image_count });

impl From<policy::ActionRequest> for OldActionRequest {
    fn from(request: policy::ActionRequest) -> OldActionRequest {
        OldActionRequest {
            action_id: request.action_id,
            kind: request.kind.into(),
            operation_id: request.operation_id,
            thread_id: request.thread_id,
            settings: request.settings,
            input: request.input.into(),
            context: request.context.into(),
        }
    }
}

impl From<policy::Interaction> for OldInteraction {
    fn from(interaction: policy::Interaction) -> OldInteraction {
        OldInteraction {
            interaction_id: interaction.interaction_id,
            kind: interaction.kind,
            thread_id: interaction.thread_id,
            cwd: interaction.cwd,
            command: interaction.command,
            payload: interaction.payload,
            context: interaction.context.into(),
        }
    }
}

// Policy, up.
impl From<old_policy::Decision> for policy::Decision {
    fn from(decision: old_policy::Decision) -> policy::Decision {
        match decision {
            old_policy::Decision::Allow => policy::Decision::Allow,
            old_policy::Decision::Deny(reason) => policy::Decision::Deny(policy::Denial {
                rule: String::new(),
                reason,
            }),
            old_policy::Decision::Narrow(settings) => policy::Decision::Narrow(policy::Narrowing {
                rule: String::new(),
                settings,
            }),
        }
    }
}

impl From<old_policy::Answer> for policy::AutoAnswer {
    fn from(answer: old_policy::Answer) -> policy::AutoAnswer {
        let answer = match answer {
            old_policy::Answer::Accept => policy::Answer::Accept,
            old_policy::Answer::AcceptForSession => policy::Answer::AcceptForSession,
            old_policy::Answer::Decline => policy::Answer::Decline,
            old_policy::Answer::Cancel => policy::Answer::Cancel,
            old_policy::Answer::Respond(json) => policy::Answer::Respond(json),
        };
        policy::AutoAnswer {
            answer,
            rule: String::new(),
        }
    }
}

// Workflow, down.
use old_workflow::{
    ActionFailure as OldActionFailure, ActionOutput as OldActionOutput, Adoption as OldAdoption,
    AppServerExit as OldAppServerExit, Approval as OldApproval,
    InteractionAnswer as OldInteractionAnswer, InteractionInfo as OldInteractionInfo,
    OperationStatus as OldOperationStatus, PlanItem as OldPlanItem,
};

same_record!(workflow::OperationStatus => OldOperationStatus { operation_id, status });
same_record!(workflow::PlanItem => OldPlanItem { step, status });
same_record!(workflow::InteractionInfo => OldInteractionInfo { interaction_id, kind, thread_id, payload });
same_record!(workflow::InteractionAnswer => OldInteractionAnswer { interaction_id, answer });
same_record!(workflow::AppServerExit => OldAppServerExit { generation, code });
same_record!(workflow::Approval => OldApproval { action_id, approved, comment });
same_record!(workflow::Adoption => OldAdoption { thread_id, details });
same_record!(workflow::ActionOutput => OldActionOutput { action_id, output });
same_record!(workflow::ActionFailure => OldActionFailure { action_id, code, message });

impl From<workflow::TurnCompleted> for old_workflow::TurnCompleted {
    fn from(turn: workflow::TurnCompleted) -> old_workflow::TurnCompleted {
        old_workflow::TurnCompleted {
            action_id: turn.action_id,
            thread_id: turn.thread_id,
            turn_id: turn.turn_id,
            status: turn.status,
            final_message: turn.final_message,
            plan_items: turn.plan_items.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<workflow::Event> for old_workflow::Event {
    fn from(event: workflow::Event) -> old_workflow::Event {
        use old_workflow::Event as Old;
        use workflow::Event as E;
        match event {
            E::Started(input) => Old::Started(input),
            E::OperationStatusChanged(e) => Old::OperationStatusChanged(e.into()),
            E::TurnCompleted(e) => Old::TurnCompleted(e.into()),
            E::InteractionPending(e) => Old::InteractionPending(e.into()),
            E::InteractionAnswered(e) => Old::InteractionAnswered(e.into()),
            E::AppServerExited(e) => Old::AppServerExited(e.into()),
            E::Approved(e) => Old::Approved(e.into()),
            E::Adopted(e) => Old::Adopted(e.into()),
            E::ActionCompleted(e) => Old::ActionCompleted(e.into()),
            E::ActionFailed(e) => Old::ActionFailed(e.into()),
        }
    }
}

// Workflow, up.
use workflow::{
    CompleteAction, FailAction, SetGoalAction, StartThreadAction, StartTurnAction, SteerTurnAction,
    ThreadAction, WaitForApprovalAction, WorkflowInfo,
};

same_record!(old_workflow::WorkflowInfo => WorkflowInfo { name, description, input_schema });
same_record!(old_workflow::StartThreadAction => StartThreadAction { id, settings });
same_record!(old_workflow::StartTurnAction => StartTurnAction { id, thread, message, settings, output_schema });
same_record!(old_workflow::SteerTurnAction => SteerTurnAction { id, thread, message });
same_record!(old_workflow::ThreadAction => ThreadAction { id, thread });
same_record!(old_workflow::SetGoalAction => SetGoalAction { id, thread, goal });
same_record!(old_workflow::WaitForApprovalAction => WaitForApprovalAction { id, summary, details });
same_record!(old_workflow::CompleteAction => CompleteAction { id, report, structured });
same_record!(old_workflow::FailAction => FailAction { id, code, message });

impl From<old_workflow::StartReviewAction> for workflow::StartReviewAction {
    fn from(review: old_workflow::StartReviewAction) -> workflow::StartReviewAction {
        workflow::StartReviewAction {
            id: review.id,
            thread: review.thread,
            instructions: review.instructions,
            settings: review.settings,
            // 0.1: the host reviews the workflow input's target.
            target: None,
        }
    }
}

impl From<old_workflow::Action> for workflow::Action {
    fn from(action: old_workflow::Action) -> workflow::Action {
        use old_workflow::Action as Old;
        use workflow::Action as A;
        match action {
            Old::StartThread(a) => A::StartThread(a.into()),
            Old::StartTurn(a) => A::StartTurn(a.into()),
            Old::SteerTurn(a) => A::SteerTurn(a.into()),
            Old::InterruptTurn(a) => A::InterruptTurn(a.into()),
            Old::SetGoal(a) => A::SetGoal(a.into()),
            Old::ClearGoal(a) => A::ClearGoal(a.into()),
            Old::StartReview(a) => A::StartReview(a.into()),
            Old::CompactThread(a) => A::CompactThread(a.into()),
            Old::ArchiveThread(a) => A::ArchiveThread(a.into()),
            Old::WaitForApproval(a) => A::WaitForApproval(a.into()),
            Old::Complete(a) => A::Complete(a.into()),
            Old::Fail(a) => A::Fail(a.into()),
        }
    }
}

impl From<old_workflow::Step> for workflow::Step {
    fn from(step: old_workflow::Step) -> workflow::Step {
        workflow::Step {
            state: step.state,
            actions: step.actions.into_iter().map(Into::into).collect(),
        }
    }
}

// Repair, down and up.
same_record!(repair::RepairContext => OldRepairContext { dry_run, snapshot });
use old_repair::RepairContext as OldRepairContext;

impl From<old_repair::RepairStep> for repair::RepairStep {
    fn from(step: old_repair::RepairStep) -> repair::RepairStep {
        use old_repair::RepairAction as Old;
        use repair::RepairAction as A;
        repair::RepairStep {
            id: step.id,
            description: step.description,
            action: match step.action {
                Old::FailOperation(pair) => A::FailOperation(pair),
                Old::CancelOperation(id) => A::CancelOperation(id),
                Old::ReleaseLease(id) => A::ReleaseLease(id),
                Old::ExpireInteraction(id) => A::ExpireInteraction(id),
                Old::ArchiveThread(id) => A::ArchiveThread(id),
                Old::RestartAppServer => A::RestartAppServer,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::types::TurnSettings;

    fn no_settings() -> TurnSettings {
        TurnSettings {
            cwd: None,
            sandbox: None,
            approval_policy: None,
            model: Some("m".into()),
            effort: None,
            collaboration_mode: None,
        }
    }

    #[test]
    fn old_verdicts_name_no_rule() {
        // A 0.1 denial keeps its reason and names no rule; a narrowing keeps its settings.
        let deny: policy::Decision = old_policy::Decision::Deny("no".into()).into();
        assert_eq!(
            deny,
            policy::Decision::Deny(policy::Denial {
                rule: String::new(),
                reason: "no".into()
            })
        );
        let narrow: policy::Decision = old_policy::Decision::Narrow(no_settings()).into();
        assert!(
            matches!(narrow, policy::Decision::Narrow(n) if n.rule.is_empty() && n.settings == no_settings())
        );
        let answer: policy::AutoAnswer = old_policy::Answer::Decline.into();
        assert_eq!(answer.answer, policy::Answer::Decline);
        assert!(answer.rule.is_empty());
    }

    #[test]
    fn an_old_review_has_no_target_of_its_own() {
        // `target: none` is the host's cue to review the workflow input's target, as 0.1 did.
        let old = old_workflow::Action::StartReview(old_workflow::StartReviewAction {
            id: "r".into(),
            thread: crate::plugins::types::ThreadRef::Action("t".into()),
            instructions: Some("look".into()),
            settings: no_settings(),
        });
        match workflow::Action::from(old) {
            workflow::Action::StartReview(review) => {
                assert_eq!(review.target, None);
                assert_eq!(review.instructions.as_deref(), Some("look"));
            }
            other => panic!("not a review: {other:?}"),
        }
    }
}
