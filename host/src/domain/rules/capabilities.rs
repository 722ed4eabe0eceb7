//! Runtime capabilities: app-server's inventory replies turned into the compact, redacted summary agents see,
//! each method's outcome, and the snapshot's overall status.
//!
//! What app-server reports about the account is personal: the summaries keep kinds, flags and coarse bands and
//! drop e-mails, user and account ids, balances, exact spend and exact token counts, whatever the reply holds.

use serde_json::{json, Map, Value};

use super::status::token_band;

/// The inventory methods, in the order `methodResults` lists them.
pub const INVENTORY_METHODS: [&str; 8] = [
    "model/list",
    "permissionProfile/list",
    "hooks/list",
    "skills/list",
    "modelProvider/capabilities/read",
    "account/read",
    "account/usage/read",
    "account/rateLimits/read",
];

/// The `runtimeCapabilities` key each inventory method fills.
pub fn field_of(method: &str) -> &'static str {
    match method {
        "model/list" => "models",
        "permissionProfile/list" => "permissionProfiles",
        "hooks/list" => "hooks",
        "skills/list" => "skills",
        "modelProvider/capabilities/read" => "modelProviderCapabilities",
        "account/read" => "accountStatus",
        "account/usage/read" => "accountUsage",
        "account/rateLimits/read" => "rateLimits",
        _ => "unknown",
    }
}

/// How one inventory call ended (`methodResults[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodStatus {
    /// Answered; its summary is in the snapshot.
    Ok,
    /// Not asked: the caller excluded it (`include_models=false`...).
    Skipped,
    /// Answered with an error.
    Error,
    /// No answer within the call's timeout.
    Timeout,
    /// The running app-server does not know the method.
    Unsupported,
    /// App-server could not be reached at all.
    Unavailable,
    /// The method needs a signed-in ChatGPT account and there is none: nothing is broken.
    NotSignedIn,
}

impl MethodStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodStatus::Ok => "ok",
            MethodStatus::Skipped => "skipped",
            MethodStatus::Error => "error",
            MethodStatus::Timeout => "timeout",
            MethodStatus::Unsupported => "unsupported",
            MethodStatus::Unavailable => "unavailable",
            MethodStatus::NotSignedIn => "not_signed_in",
        }
    }

    /// True when the outcome makes the snapshot `partial`.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            MethodStatus::Ok | MethodStatus::Skipped | MethodStatus::NotSignedIn
        )
    }
}

/// The snapshot's status: `ok` when every asked method answered, `unavailable` when none could, else `partial`.
pub fn overall_status(statuses: &[MethodStatus]) -> &'static str {
    let asked: Vec<MethodStatus> = statuses
        .iter()
        .copied()
        .filter(|s| *s != MethodStatus::Skipped)
        .collect();
    if asked.iter().all(|s| !s.is_failure()) {
        "ok"
    } else if asked.iter().all(|s| s.is_failure()) {
        "unavailable"
    } else {
        "partial"
    }
}

/// The redacted summary of one method's reply.
pub fn summarise(method: &str, reply: &Value) -> Value {
    match method {
        "model/list" => models(reply),
        "permissionProfile/list" => permission_profiles(reply),
        "hooks/list" => hooks(reply),
        "skills/list" => skills(reply),
        "modelProvider/capabilities/read" => provider_capabilities(reply),
        "account/read" => account_status(reply),
        "account/usage/read" => account_usage(reply),
        "account/rateLimits/read" => rate_limits(reply),
        _ => Value::Null,
    }
}

/// True when `account/read` says nobody is signed in (so usage and rate limits cannot be read, by design).
pub fn signed_out(account_reply: &Value) -> bool {
    account_reply.get("account").is_none_or(Value::is_null)
}

fn data(reply: &Value) -> &[Value] {
    reply
        .get("data")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn text(value: &Value, key: &str) -> Value {
    value
        .get(key)
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| json!(s))
}

fn flag(value: &Value, key: &str) -> Value {
    value
        .get(key)
        .and_then(Value::as_bool)
        .map_or(Value::Null, Value::Bool)
}

fn models(reply: &Value) -> Value {
    let items: Vec<Value> = data(reply)
        .iter()
        .map(|m| {
            let efforts: Vec<Value> = m
                .get("supportedReasoningEfforts")
                .and_then(Value::as_array)
                .map(|efforts| {
                    efforts
                        .iter()
                        .filter_map(|e| e.get("reasoningEffort").cloned())
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "id": text(m, "id"),
                "displayName": text(m, "displayName"),
                "isDefault": m.get("isDefault").and_then(Value::as_bool).unwrap_or(false),
                "hidden": m.get("hidden").and_then(Value::as_bool).unwrap_or(false),
                "defaultReasoningEffort": text(m, "defaultReasoningEffort"),
                "reasoningEfforts": efforts,
                "inputModalities": m.get("inputModalities").cloned().unwrap_or(json!([])),
            })
        })
        .collect();
    let default = items
        .iter()
        .find(|m| m["isDefault"] == json!(true))
        .map_or(Value::Null, |m| m["id"].clone());
    json!({"count": items.len(), "defaultModel": default, "items": items})
}

fn permission_profiles(reply: &Value) -> Value {
    let items: Vec<Value> = data(reply)
        .iter()
        .map(|p| json!({"id": text(p, "id"), "allowed": flag(p, "allowed")}))
        .collect();
    json!({"count": items.len(), "items": items})
}

fn hooks(reply: &Value) -> Value {
    let (mut count, mut enabled, mut warnings, mut errors) = (0usize, 0usize, 0usize, 0usize);
    let mut by_event = Map::new();
    for entry in data(reply) {
        let len = |key: &str| entry.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        warnings += len("warnings");
        errors += len("errors");
        // Commands and paths stay out: a hook command line may carry a secret or a private path.
        for hook in entry
            .get("hooks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            count += 1;
            if hook.get("enabled").and_then(Value::as_bool).unwrap_or(true) {
                enabled += 1;
            }
            let event = hook
                .get("eventName")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let n = by_event.get(event).and_then(Value::as_u64).unwrap_or(0);
            by_event.insert(event.to_string(), json!(n + 1));
        }
    }
    json!({"count": count, "enabled": enabled, "byEvent": by_event, "warnings": warnings, "errors": errors})
}

fn skills(reply: &Value) -> Value {
    let mut items = Vec::new();
    let mut errors = 0usize;
    for entry in data(reply) {
        errors += entry
            .get("errors")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for skill in entry
            .get("skills")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            items.push(json!({
                "name": text(skill, "name"),
                "scope": text(skill, "scope"),
                "enabled": flag(skill, "enabled"),
            }));
        }
    }
    json!({"count": items.len(), "errors": errors, "items": items})
}

fn provider_capabilities(reply: &Value) -> Value {
    // Only flags: the reply is a set of booleans today, and anything else is not needed to plan work.
    let flags: Map<String, Value> = reply
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(_, v)| v.is_boolean())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(flags)
}

fn account_status(reply: &Value) -> Value {
    let account = reply.get("account").filter(|a| !a.is_null());
    json!({
        "signedIn": account.is_some(),
        "accountType": account.map_or(json!("none"), |a| text(a, "type")),
        "planType": account.map_or(Value::Null, |a| text(a, "planType")),
        "hasEmail": account.is_some_and(|a| a.get("email").is_some_and(Value::is_string)),
        "hasWorkspace": account.is_some_and(|a| a.get("workspaceName").is_some_and(Value::is_string)),
        "requiresOpenaiAuth": flag(reply, "requiresOpenaiAuth"),
    })
}

fn band_of(value: Option<&Value>) -> Value {
    value
        .and_then(Value::as_i64)
        .map_or(Value::Null, |n| json!(token_band(n)))
}

fn account_usage(reply: &Value) -> Value {
    let summary = reply.get("summary");
    let field = |key: &str| summary.and_then(|s| s.get(key));
    json!({
        "lifetimeTokensBand": band_of(field("lifetimeTokens")),
        "peakDailyTokensBand": band_of(field("peakDailyTokens")),
        "dailyBuckets": reply.get("dailyUsageBuckets").and_then(Value::as_array).map_or(0, Vec::len),
    })
}

/// Coarse band of a used percentage: `<25%`, `25-50%`, `50-75%`, `75-90%`, `90-99%`, `100%`.
pub fn percent_band(used: i64) -> &'static str {
    match used {
        i64::MIN..=24 => "<25%",
        25..=49 => "25-50%",
        50..=74 => "50-75%",
        75..=89 => "75-90%",
        90..=99 => "90-99%",
        _ => "100%",
    }
}

fn window(window: Option<&Value>) -> Value {
    let Some(window) = window.filter(|w| !w.is_null()) else {
        return Value::Null;
    };
    json!({
        "usedPercentBand": window.get("usedPercent").and_then(Value::as_i64).map(percent_band),
        "windowDurationMins": window.get("windowDurationMins").and_then(Value::as_i64),
    })
}

fn limit_snapshot(snapshot: &Value) -> Value {
    let credits = snapshot.get("credits").filter(|c| !c.is_null());
    let individual = snapshot.get("individualLimit").filter(|c| !c.is_null());
    json!({
        "limitId": text(snapshot, "limitId"),
        "limitName": text(snapshot, "limitName"),
        "planType": text(snapshot, "planType"),
        "primary": window(snapshot.get("primary")),
        "secondary": window(snapshot.get("secondary")),
        "rateLimitReachedType": text(snapshot, "rateLimitReachedType"),
        // A balance and exact spend are private; whether credits exist is what decides if work can run.
        "credits": credits.map(|c| json!({"hasCredits": flag(c, "hasCredits"), "unlimited": flag(c, "unlimited")})),
        "individualLimitUsedBand": individual
            .and_then(|i| i.get("remainingPercent"))
            .and_then(Value::as_i64)
            .map(|remaining| percent_band(100 - remaining)),
    })
}

fn rate_limits(reply: &Value) -> Value {
    let mut limits = Vec::new();
    if let Some(by_id) = reply.get("rateLimitsByLimitId").and_then(Value::as_object) {
        limits.extend(by_id.values().map(limit_snapshot));
    } else if let Some(single) = reply.get("rateLimits").filter(|r| !r.is_null()) {
        limits.push(limit_snapshot(single));
    }
    json!({
        "ordinaryUsageAllowed": flag(reply, "ordinaryUsageAllowed"),
        "resetCreditsAvailable": reply
            .pointer("/rateLimitResetCredits/availableCount")
            .and_then(Value::as_i64)
            .map(|n| n > 0),
        "limits": limits,
    })
}

/// The subset of a snapshot `codex_health_summary` shows: status, when, counts and the account's state.
pub fn health_subset(capabilities: &Value, captured_at: &str) -> Value {
    let count = |key: &str| capabilities.pointer(&format!("/{key}/count")).cloned();
    json!({
        "status": capabilities.get("status").cloned().unwrap_or(json!("unknown")),
        "capturedAt": captured_at,
        "defaultModel": capabilities.pointer("/models/defaultModel").cloned(),
        "modelCount": count("models"),
        "permissionProfileCount": count("permissionProfiles"),
        "hookCount": count("hooks"),
        "skillCount": count("skills"),
        "accountSignedIn": capabilities.pointer("/accountStatus/signedIn").cloned(),
        "sandboxReadiness": capabilities.pointer("/sandboxReadiness/status").cloned(),
        "codexVersion": capabilities.pointer("/schemaMethods/codexVersion").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_partial_only_when_some_asked_method_failed() {
        use MethodStatus::*;
        assert_eq!(overall_status(&[Ok, Skipped, NotSignedIn]), "ok");
        assert_eq!(overall_status(&[Ok, Timeout, Skipped]), "partial");
        assert_eq!(overall_status(&[Unsupported, Ok]), "partial");
        assert_eq!(
            overall_status(&[Unavailable, Unavailable, Skipped]),
            "unavailable"
        );
    }

    #[test]
    fn account_data_keeps_no_identity_balance_or_exact_count() {
        let account = json!({"account": {"type": "chatgpt", "email": "ada@example.com", "planType": "pro",
                              "workspaceName": "Acme"}, "userId": "user-123", "requiresOpenaiAuth": true,
                              "workspaceRouting": {"chatgptAccountId": "acct-9", "backendOrigin": "x",
                                                   "accountRoutingOverride": "us"}});
        let usage = json!({"summary": {"lifetimeTokens": 123_456_789, "peakDailyTokens": 4_321}});
        let limits = json!({"accountId": "acct-9", "rateLimits": {"primary": {"usedPercent": 93,
                            "windowDurationMins": 300, "resetsAt": 1_700_000_000},
                            "credits": {"balance": "41.17", "hasCredits": true, "unlimited": false},
                            "individualLimit": {"limit": "100", "used": "37.5", "remainingPercent": 62,
                                                "resetsAt": 1}}});
        let out = json!([
            summarise("account/read", &account),
            summarise("account/usage/read", &usage),
            summarise("account/rateLimits/read", &limits)
        ])
        .to_string();
        for secret in [
            "ada@",
            "example.com",
            "user-123",
            "acct-9",
            "Acme",
            "41.17",
            "37.5",
            "123456789",
            "4321",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(
            out.contains("\"planType\":\"pro\"") && out.contains("1m+") && out.contains("90-99%")
        );
        assert!(
            out.contains("\"individualLimitUsedBand\":\"25-50%\""),
            "{out}"
        );
    }

    #[test]
    fn models_and_hooks_are_compact() {
        let models = summarise(
            "model/list",
            &json!({"data": [{"id": "m1", "displayName": "M1", "isDefault": true, "hidden": false,
                   "supportedReasoningEfforts": [{"reasoningEffort": "low", "description": "d"}],
                   "description": "long text"}]}),
        );
        assert_eq!(models["defaultModel"], json!("m1"));
        assert_eq!(models["items"][0]["reasoningEfforts"], json!(["low"]));
        assert!(models["items"][0].get("description").is_none());
        let hooks = summarise(
            "hooks/list",
            &json!({"data": [{"cwd": "/p", "hooks": [{"eventName": "stop", "command": "secret-cmd"}],
                   "warnings": [], "errors": [{"message": "m", "path": "/x"}]}]}),
        );
        assert_eq!(hooks["count"], json!(1));
        assert_eq!(hooks["errors"], json!(1));
        assert!(!hooks.to_string().contains("secret-cmd"));
    }
}
