//! `codex_get_agent_contract`: the machine-readable guide for agents (the seed's `codexMcpGuide`), built from
//! `agent_guide.json` and the catalog this build serves, so a flow or a capability never names a tool that
//! `tools/list` does not have.

use serde_json::{json, Map, Value};

use crate::app::App;
use crate::domain::rules::canonical::{canonical_json, sha256_hex};
use crate::mcp::args::Args;
use crate::mcp::catalog::{
    Catalog, CONTRACT_VERSION, GUIDE_VERSION, RECOMMENDED_PRIMARY_WRITE_TOOL,
    RECOMMENDED_STARTUP_TOOL,
};
use crate::mcp::error::{ErrorCode, ToolError};

/// The guide's text: rules, flows, groups, examples. Tool names in it are filtered against the catalog.
const GUIDE: &str = include_str!("../agent_guide.json");

/// Handler of `codex_get_agent_contract`.
pub async fn agent_contract(app: &App, args: &Args) -> Result<Value, ToolError> {
    let catalog = Catalog::get();
    let mut guide: Value = serde_json::from_str(GUIDE).map_err(|e| {
        ToolError::new(ErrorCode::Internal, format!("agent guide is not JSON: {e}"))
    })?;
    let mut unserved = Vec::new();
    let mut served = |name: &str| {
        let known = catalog.find(name).is_some();
        if !known && !unserved.iter().any(|n| n == name) {
            unserved.push(name.to_string());
        }
        known
    };
    let capability_map = filter_capabilities(take(&mut guide, "capabilityMap"), &mut served);
    let flows = filter_lists(take(&mut guide, "usageFlows"), "steps", &mut served);
    let groups = filter_lists(
        take(&mut guide, "toolGroups"),
        "preferredTools",
        &mut served,
    );
    let examples = match take(&mut guide, "examples") {
        Value::Array(examples) => examples
            .into_iter()
            .filter(|e| served(e.get("tool").and_then(Value::as_str).unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    unserved.sort();

    let limits = &app.config.limits;
    let mut runtime_limits = take(&mut guide, "runtimeLimits");
    runtime_limits["workerSlots"] = json!({
        "global": limits.global, "perProject": limits.per_project, "perAgent": limits.per_agent,
        "perThread": limits.per_thread, "writePerProject": limits.write_per_project,
    });
    let detail = args.str("detail").unwrap_or("compact");
    let mut contract = json!({
        "version": GUIDE_VERSION,
        "contractVersion": CONTRACT_VERSION,
        "toolSurfaceHash": catalog.tool_surface_hash(),
        "clientType": args.str("client_type").unwrap_or("generic-agent"),
        "recommendedStartupTool": RECOMMENDED_STARTUP_TOOL,
        "recommendedPrimaryWriteTool": RECOMMENDED_PRIMARY_WRITE_TOOL,
        "recommendedStartupFlow": "startup",
        "capabilityMap": capability_map,
        "usageFlows": flows,
        "globalRules": take(&mut guide, "globalRules"),
        "runtimeLimits": runtime_limits,
        "toolGroups": groups,
        "unservedSeedTools": unserved,
        "detail": detail,
    });
    if detail == "full" {
        let tools: Vec<Value> = catalog
            .tools
            .iter()
            .map(|t| {
                json!({"name": t.name, "contractGroup": t.group.as_str(), "description": t.description,
                       "codexMcp": t.codex_mcp})
            })
            .collect();
        contract["tools"] = json!(tools);
    }
    if args.bool("include_examples") {
        contract["examples"] = json!(examples);
    }
    let guide_hash = sha256_hex(canonical_json(&contract));
    contract["guideHash"] = json!(guide_hash);
    Ok(json!({
        "agentContract": contract,
        "guideVersion": GUIDE_VERSION,
        "guideHash": guide_hash,
    }))
}

fn take(guide: &mut Value, key: &str) -> Value {
    guide
        .as_object_mut()
        .and_then(|g| g.remove(key))
        .unwrap_or(Value::Null)
}

/// Keeps the `*Tool` entries naming served tools; a capability left with no tool is dropped.
fn filter_capabilities(map: Value, served: &mut impl FnMut(&str) -> bool) -> Value {
    let Value::Object(map) = map else {
        return json!({});
    };
    let mut kept = Map::new();
    for (name, capability) in map {
        let Value::Object(fields) = capability else {
            continue;
        };
        let mut fields_kept = Map::new();
        let mut tools = 0;
        for (key, value) in fields {
            if key.ends_with("Tool") {
                if !served(value.as_str().unwrap_or("")) {
                    continue;
                }
                tools += 1;
            }
            fields_kept.insert(key, value);
        }
        if tools > 0 {
            kept.insert(name, Value::Object(fields_kept));
        }
    }
    Value::Object(kept)
}

/// Keeps the served tools of each entry's `key` list; an entry left with none is dropped.
fn filter_lists(entries: Value, key: &str, served: &mut impl FnMut(&str) -> bool) -> Value {
    let Value::Array(entries) = entries else {
        return json!([]);
    };
    let kept: Vec<Value> = entries
        .into_iter()
        .filter_map(|mut entry| {
            let tools: Vec<Value> = entry
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|t| served(t.as_str().unwrap_or("")))
                .cloned()
                .collect();
            if tools.is_empty() {
                return None;
            }
            entry[key] = json!(tools);
            Some(entry)
        })
        .collect();
    json!(kept)
}
