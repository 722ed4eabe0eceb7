//! Pending interactions: `codex_list_pending_interactions` and `codex_answer_pending_interaction`.
//!
//! Both work from any server process sharing the database: an answer is stored, and the process that owns the
//! app-server generation delivers it (at once when that is this process).

use serde_json::{json, Map, Value};

use super::operations::interaction_json;
use crate::app::App;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::{InteractionFilter, PendingInteraction};

/// Handler of `codex_list_pending_interactions`.
pub async fn list(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let filter = InteractionFilter {
        thread_id: args.string("thread_id"),
        turn_id: args.string("turn_id"),
        operation_id: args.string("operation_id"),
        workflow_id: args.string("workflow_id"),
        status: Some(
            args.string("status")
                .unwrap_or_else(|| "pending".to_string()),
        ),
    };
    let limit = usize::try_from(args.int_or("limit", 50)).unwrap_or(50);
    let interactions = engine.store.list_interactions(filter, limit).await?;
    Ok(json!({
        "interactions": interactions.iter().map(interaction_json).collect::<Vec<_>>(),
        "returnedCount": interactions.len(),
    }))
}

/// The JSON-RPC result for an answer, per the interaction's kind (the seed's reply shapes; `raw_response`
/// overrides).
fn build_response(interaction: &PendingInteraction, args: &Args) -> Result<Value, ToolError> {
    if let Some(raw) = args.value("raw_response").filter(|v| !v.is_null()) {
        return Ok(raw.clone());
    }
    match interaction.kind.as_str() {
        "approval" => {
            let decision = args
                .str("decision")
                .or_else(|| args.str("action"))
                .ok_or_else(|| {
                    ToolError::invalid_argument("decision", "an approval needs a decision")
                        .with_detail("availableDecisions", json!(interaction.available_decisions))
                })?;
            // `decline` works although app-server does not list it; anything else must be offered.
            let offered = interaction.available_decisions.is_empty()
                || decision == "decline"
                || interaction
                    .available_decisions
                    .iter()
                    .any(|d| d == decision);
            if !offered {
                return Err(ToolError::invalid_argument(
                    "decision",
                    format!("{decision} is not offered by this interaction"),
                )
                .with_detail("availableDecisions", json!(interaction.available_decisions)));
            }
            let mut response = json!({"decision": decision});
            if let Some(payload) = args.value("decision_payload").and_then(Value::as_object) {
                // A structured decision such as `acceptWithExecpolicyAmendment` is sent as given.
                response = json!({"decision": {decision: Value::Object(payload.clone())}});
            }
            Ok(response)
        }
        "permissions" => {
            let mut response = Map::new();
            response.insert(
                "permissions".into(),
                args.value("permissions").cloned().unwrap_or(json!({})),
            );
            response.insert("scope".into(), json!(args.str("scope").unwrap_or("turn")));
            if let Some(strict) = args.value("strict_auto_review").filter(|v| !v.is_null()) {
                response.insert("strictAutoReview".into(), strict.clone());
            }
            Ok(Value::Object(response))
        }
        "user_input" => {
            let answers = args
                .value("answers")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ToolError::invalid_argument("answers", "user input needs answers")
                })?;
            // Accept both `{qid: "text"}`, `{qid: ["a", "b"]}` and the wire form `{qid: {answers: [...]}}`.
            let wire: Map<String, Value> = answers
                .iter()
                .map(|(id, answer)| {
                    let list = match answer {
                        Value::String(s) => json!([s]),
                        Value::Array(_) => answer.clone(),
                        Value::Object(map) if map.contains_key("answers") => map["answers"].clone(),
                        other => json!([other.to_string()]),
                    };
                    (id.clone(), json!({"answers": list}))
                })
                .collect();
            Ok(json!({"answers": wire}))
        }
        _ => {
            let action = args
                .str("action")
                .or_else(|| args.str("decision"))
                .unwrap_or("decline");
            Ok(
                json!({"action": action, "content": args.value("content").cloned().unwrap_or(Value::Null), "_meta": null}),
            )
        }
    }
}

/// Handler of `codex_answer_pending_interaction`.
pub async fn answer(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let interaction_id = args.required_str("interaction_id")?;
    let interaction = engine
        .store
        .get_interaction(interaction_id)
        .await?
        .ok_or_else(|| {
            ToolError::new(
                ErrorCode::PendingInteractionNotFound,
                format!("unknown interaction {interaction_id}"),
            )
            .with_detail("interactionId", json!(interaction_id))
        })?;
    // An interaction of an app-server generation this process owns but no longer runs can never be delivered.
    if interaction.status == "pending"
        && interaction.owner_id == engine.worker.owner_id
        && engine.appserver.generation() != u64::try_from(interaction.process_generation).ok()
    {
        return Err(ToolError::new(
            ErrorCode::PendingInteractionUnavailable,
            format!(
                "interaction {interaction_id} belongs to app-server generation {}, which is gone",
                interaction.process_generation
            ),
        )
        .with_detail("interactionId", json!(interaction_id))
        .with_detail("processGeneration", json!(interaction.process_generation)));
    }
    let response = build_response(&interaction, args)?;
    let answered = engine
        .store
        .answer_interaction(interaction_id, response.clone(), Some("mcp_client"))
        .await?;
    let local = answered.owner_id == engine.worker.owner_id;
    if local {
        engine.wake_courier();
    }
    Ok(json!({
        "answered": true,
        "interaction": interaction_json(&answered),
        "response": crate::domain::rules::redact::redact_secrets(&response),
        "responseRedacted": true,
        "delivery": if local { "delivered" } else { "queued_for_owner" },
    }))
}
