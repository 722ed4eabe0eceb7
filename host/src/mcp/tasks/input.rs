//! What a task waits for, as the extension's `inputRequests` (form elicitations), and the tool call an answer
//! in `tasks/update` becomes.
//!
//! A pending interaction is keyed by its interaction id and a plan waiting for approval by `approve_plan:` and
//! its plan hash: both are unique over the task's lifetime, as the extension requires, and both can be
//! re-derived from the status snapshot at any time, so nothing about an outstanding request is kept anywhere
//! but in the durable rows.

use rmcp::model::{InputRequest, InputRequests};
use serde_json::{json, Map, Value};

/// The longest plan text an approval request shows; the full plan is in the workflow status.
const MAX_PLAN_CHARS: usize = 4000;

/// One input the work waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Needed {
    /// The `inputRequests` key.
    pub key: String,
    /// The `elicitation/create` request shown to the client.
    pub request: Value,
    /// What an answer to it does.
    answer: Answer,
}

/// How an answer is applied.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// `codex_answer_pending_interaction` for this interaction.
    Interaction {
        interaction_id: String,
        kind: String,
        decisions: Vec<String>,
        params: Value,
    },
    /// `codex_approve_plan` for this workflow.
    ApprovePlan { workflow_id: String },
}

/// The inputs a status payload (operation or workflow) shows as outstanding.
pub fn needed(payload: &Value) -> Vec<Needed> {
    let mut out: Vec<Needed> = payload
        .get("pendingInteractions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("status").and_then(Value::as_str) == Some("pending"))
        .filter_map(interaction)
        .collect();
    if let Some(plan) = plan_approval(payload) {
        out.push(plan);
    }
    out
}

/// The `inputRequests` map of `needed`; a request rmcp cannot represent is left out (and logged).
pub fn input_requests(needed: &[Needed]) -> InputRequests {
    needed
        .iter()
        .filter_map(
            |n| match serde_json::from_value::<InputRequest>(n.request.clone()) {
                Ok(request) => Some((n.key.clone(), request)),
                Err(error) => {
                    tracing::warn!(key = %n.key, %error, "input request not representable; left out");
                    None
                }
            },
        )
        .collect()
}

/// The tool and arguments that apply `response` (an `ElicitResult`) to `needed`, or `None` when the answer
/// asks for nothing to be done (a declined plan approval leaves the plan waiting).
pub fn answer_call(
    needed: &Needed,
    response: &Value,
) -> Option<(&'static str, Map<String, Value>)> {
    let action = response
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("cancel");
    let content = response
        .get("content")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match &needed.answer {
        Answer::ApprovePlan { workflow_id } => (action == "accept").then(|| {
            let mut args = Map::new();
            args.insert("workflow_id".into(), json!(workflow_id));
            ("codex_approve_plan", args)
        }),
        Answer::Interaction {
            interaction_id,
            kind,
            decisions,
            params,
        } => {
            let mut args = Map::new();
            args.insert("interaction_id".into(), json!(interaction_id));
            match kind.as_str() {
                "approval" => {
                    let offered =
                        |d: &str| decisions.is_empty() || decisions.iter().any(|o| o == d);
                    let decision = match action {
                        "accept" => content
                            .get("decision")
                            .and_then(Value::as_str)
                            .unwrap_or("accept")
                            .to_string(),
                        // A refusal the app-server does not offer becomes the other one it does.
                        "decline" if offered("decline") => "decline".into(),
                        "decline" => "cancel".into(),
                        _ if offered("cancel") => "cancel".into(),
                        _ => "decline".into(),
                    };
                    args.insert("decision".into(), json!(decision));
                }
                "user_input" => {
                    let answers = if action == "accept" {
                        content
                    } else {
                        Map::new()
                    };
                    args.insert("answers".into(), Value::Object(answers));
                }
                "permissions" => {
                    // Accepting grants what was asked for; anything else grants nothing.
                    let granted = if action == "accept" {
                        params.get("permissions").cloned().unwrap_or(json!({}))
                    } else {
                        json!({})
                    };
                    args.insert("permissions".into(), granted);
                    if let Some(scope) = content.get("scope").and_then(Value::as_str) {
                        args.insert("scope".into(), json!(scope));
                    }
                }
                _ => {
                    args.insert("action".into(), json!(action));
                    args.insert("content".into(), Value::Object(content));
                }
            }
            Some(("codex_answer_pending_interaction", args))
        }
    }
}

fn interaction(item: &Value) -> Option<Needed> {
    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
    let interaction_id = text("interactionId").to_string();
    if interaction_id.is_empty() {
        return None;
    }
    let kind = text("kind").to_string();
    let params = item.get("params").cloned().unwrap_or(Value::Null);
    let decisions: Vec<String> = item
        .get("availableDecisions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let what = [text("riskSummary"), text("method")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("Codex asks for input")
        .to_string();
    let (message, schema) = match kind.as_str() {
        "approval" => {
            let choices = if decisions.is_empty() {
                vec!["accept".to_string(), "decline".to_string()]
            } else {
                decisions.clone()
            };
            (
                format!("Codex asks for approval: {what}"),
                json!({"type": "object",
                       "properties": {"decision": {"type": "string", "title": "Decision", "enum": choices}},
                       "required": ["decision"]}),
            )
        }
        "user_input" => (format!("Codex asks: {what}"), questions_schema(item)),
        "permissions" => (
            format!("Codex asks for permissions: {what}"),
            json!({"type": "object",
                   "properties": {"scope": {"type": "string", "title": "Scope", "enum": ["turn", "session"]}}}),
        ),
        _ => {
            // An MCP elicitation from a server Codex uses: its own message and form, when it has one.
            let message = params
                .get("message")
                .and_then(Value::as_str)
                .map_or(what, str::to_string);
            let schema = params
                .get("requestedSchema")
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            (message, schema)
        }
    };
    Some(Needed {
        key: interaction_id.clone(),
        request: elicitation(&message, schema),
        answer: Answer::Interaction {
            interaction_id,
            kind,
            decisions,
            params,
        },
    })
}

/// One string field per question (`questions[].id`), its options as the enum when it has some.
fn questions_schema(item: &Value) -> Value {
    let mut properties = Map::new();
    for question in item
        .get("questions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = question.get("id").and_then(Value::as_str) else {
            continue;
        };
        let mut field = json!({"type": "string"});
        if let Some(header) = question.get("header").and_then(Value::as_str) {
            field["title"] = json!(header);
        }
        if let Some(text) = question.get("question").and_then(Value::as_str) {
            field["description"] = json!(text);
        }
        let labels: Vec<&str> = question
            .get("options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("label").and_then(Value::as_str))
            .collect();
        if !labels.is_empty() {
            field["enum"] = json!(labels);
        }
        properties.insert(id.to_string(), field);
    }
    json!({"type": "object", "properties": properties})
}

/// A workflow whose valid plan waits for `codex_approve_plan`.
fn plan_approval(payload: &Value) -> Option<Needed> {
    if payload.get("phase").and_then(Value::as_str) != Some("plan_ready") {
        return None;
    }
    let workflow_id = payload.get("workflowId").and_then(Value::as_str)?;
    let plan = payload.get("latestPlan")?;
    let hash = plan
        .get("planHash")
        .and_then(Value::as_str)
        .unwrap_or("plan");
    let text: String = plan
        .get("plan")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(MAX_PLAN_CHARS)
        .collect();
    let message = format!(
        "Approve this plan to start its execution (accept approves; decline leaves it waiting):\n\n{text}"
    );
    Some(Needed {
        key: format!("approve_plan:{hash}"),
        request: elicitation(&message, json!({"type": "object", "properties": {}})),
        answer: Answer::ApprovePlan {
            workflow_id: workflow_id.to_string(),
        },
    })
}

fn elicitation(message: &str, schema: Value) -> Value {
    json!({"method": "elicitation/create",
           "params": {"mode": "form", "message": message, "requestedSchema": schema}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Value {
        json!({"pendingInteractions": [{
            "interactionId": "int_1", "kind": "approval", "status": "pending",
            "method": "item/commandExecution/requestApproval", "riskSummary": "run `ls`",
            "availableDecisions": ["accept", "acceptForSession", "cancel"], "params": {}
        }, {
            "interactionId": "int_0", "kind": "approval", "status": "answered", "params": {}
        }]})
    }

    // A pending approval becomes one form elicitation rmcp accepts, keyed by the interaction id; an answered
    // one is not outstanding.
    #[test]
    fn a_pending_approval_is_one_elicitation() {
        let needed = needed(&approval());
        assert_eq!(needed.len(), 1);
        assert_eq!(needed[0].key, "int_1");
        let requests = input_requests(&needed);
        let wire = serde_json::to_value(&requests).expect("serialise");
        assert_eq!(wire["int_1"]["method"], "elicitation/create");
        assert_eq!(
            wire["int_1"]["params"]["requestedSchema"]["properties"]["decision"]["enum"],
            json!(["accept", "acceptForSession", "cancel"])
        );
    }

    // Accept carries the chosen decision; a decline the app-server does not offer becomes `cancel`.
    #[test]
    fn approval_answers_become_decisions() {
        let needed = &needed(&approval())[0];
        let (tool, args) = answer_call(
            needed,
            &json!({"action": "accept", "content": {"decision": "acceptForSession"}}),
        )
        .expect("a call");
        assert_eq!(tool, "codex_answer_pending_interaction");
        assert_eq!(args["decision"], "acceptForSession");
        let (_, args) = answer_call(needed, &json!({"action": "decline"})).expect("a call");
        assert_eq!(args["decision"], "cancel");
    }

    // A valid plan waiting for approval is an input request; accepting it approves, declining does nothing.
    #[test]
    fn a_ready_plan_asks_for_approval() {
        let payload = json!({"workflowId": "wf_1", "phase": "plan_ready",
                             "latestPlan": {"plan": "1. do it", "planHash": "abc"}});
        let needed = needed(&payload);
        assert_eq!(needed.len(), 1);
        assert_eq!(needed[0].key, "approve_plan:abc");
        assert_eq!(input_requests(&needed).len(), 1);
        let (tool, args) = answer_call(&needed[0], &json!({"action": "accept"})).expect("call");
        assert_eq!(
            (tool, &args["workflow_id"]),
            ("codex_approve_plan", &json!("wf_1"))
        );
        assert!(answer_call(&needed[0], &json!({"action": "decline"})).is_none());
    }

    // Questions become string fields, their options an enum; the answer is the form's content.
    #[test]
    fn user_input_questions_become_fields() {
        let payload = json!({"pendingInteractions": [{
            "interactionId": "int_2", "kind": "user_input", "status": "pending",
            "questions": [{"id": "q1", "header": "Pick", "question": "Which one?",
                           "options": [{"label": "A"}, {"label": "B"}]}]
        }]});
        let needed = needed(&payload);
        let wire = serde_json::to_value(input_requests(&needed)).expect("serialise");
        assert_eq!(
            wire["int_2"]["params"]["requestedSchema"]["properties"]["q1"]["enum"],
            json!(["A", "B"])
        );
        let (_, args) = answer_call(
            &needed[0],
            &json!({"action": "accept", "content": {"q1": "B"}}),
        )
        .expect("call");
        assert_eq!(args["answers"], json!({"q1": "B"}));
    }
}
