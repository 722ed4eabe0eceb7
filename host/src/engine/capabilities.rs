//! Runtime capabilities (`codex_get_runtime_capabilities`): what the running Codex offers, asked of app-server
//! with its inventory methods, all at once and each with its own short timeout. A method that fails is a
//! `partial` entry of the snapshot, never a failure of the whole call. Snapshots are stored (redacted) per
//! working directory and inventory flags, and reused for [`CACHE_TTL`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::appserver::sandbox::sandbox_readiness;
use crate::appserver::schema::{protocol_schema, ProtocolSchema};
use crate::appserver::AppServerError;
use crate::domain::rules::canonical::{canonical_json, sha256_hex};
use crate::domain::rules::capabilities::{
    field_of, overall_status, signed_out, summarise, MethodStatus, INVENTORY_METHODS,
};
use crate::domain::rules::redact::redact_text;
use crate::store::Timestamp;

/// How long a snapshot is reused before app-server is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// What the caller asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityRequest {
    /// The working directory hooks, skills and permission profiles are resolved for.
    pub cwd: PathBuf,
    /// Per-method timeout.
    pub timeout: Duration,
    /// Ask `model/list`.
    pub include_models: bool,
    /// Ask `hooks/list`.
    pub include_hooks: bool,
    /// Ask `skills/list`.
    pub include_skills: bool,
    /// Ask the account methods.
    pub include_account: bool,
}

impl CapabilityRequest {
    /// The snapshot's cache key: sha256 of the working directory and the flags (not the timeout: a snapshot
    /// answers the same question however long its calls were allowed to take).
    pub fn cache_key(&self) -> String {
        sha256_hex(canonical_json(&json!({
            "cwd": self.cwd.display().to_string(),
            "includeModels": self.include_models,
            "includeHooks": self.include_hooks,
            "includeSkills": self.include_skills,
            "includeAccount": self.include_account,
        })))
    }

    fn asks(&self, method: &str) -> bool {
        match method {
            "model/list" => self.include_models,
            "hooks/list" => self.include_hooks,
            "skills/list" => self.include_skills,
            m if m.starts_with("account/") => self.include_account,
            _ => true,
        }
    }

    fn params(&self, method: &str) -> Value {
        let cwd = self.cwd.display().to_string();
        match method {
            "permissionProfile/list" => json!({"cwd": cwd}),
            "hooks/list" | "skills/list" => json!({"cwds": [cwd]}),
            "account/read" => json!({"refreshToken": false}),
            // Both take nullable params; null asks for the account as a whole.
            "account/usage/read" | "account/rateLimits/read" => Value::Null,
            _ => json!({}),
        }
    }
}

/// A snapshot and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// `{runtimeCapabilities, methodResults, warnings}`, redacted.
    pub snapshot: Value,
    /// When app-server was asked.
    pub captured_at: Timestamp,
    /// True when the snapshot came from the store, not from app-server now.
    pub cached: bool,
}

/// One inventory call's outcome.
struct Outcome {
    method: &'static str,
    status: MethodStatus,
    reply: Option<Value>,
    error: Option<(Option<i64>, String)>,
    elapsed: Duration,
}

fn classify(error: &AppServerError) -> MethodStatus {
    match error {
        AppServerError::Timeout { .. } => MethodStatus::Timeout,
        AppServerError::Rpc { code, message, .. }
            if *code == METHOD_NOT_FOUND || message.contains("unknown variant") =>
        {
            MethodStatus::Unsupported
        }
        AppServerError::Unavailable { .. }
        | AppServerError::ProcessExited { .. }
        | AppServerError::Io(_) => MethodStatus::Unavailable,
        _ => MethodStatus::Error,
    }
}

impl Engine {
    /// The stored snapshot for `request` when it is younger than [`CACHE_TTL`].
    pub async fn cached_capabilities(
        &self,
        request: &CapabilityRequest,
    ) -> Result<Option<Capabilities>, EngineError> {
        let Some(row) = self
            .store
            .runtime_capabilities(&request.cache_key())
            .await?
        else {
            return Ok(None);
        };
        let age = crate::time::now_ms().saturating_sub(row.captured_at.ms());
        let fresh = (0..CACHE_TTL.as_millis() as i64).contains(&age) && row.snapshot.is_object();
        Ok(fresh.then_some(Capabilities {
            snapshot: row.snapshot,
            captured_at: row.captured_at,
            cached: true,
        }))
    }

    /// The cached snapshot unless `refresh`, else a new one from app-server (started if needed), stored.
    pub async fn runtime_capabilities(
        &self,
        request: &CapabilityRequest,
        refresh: bool,
    ) -> Result<Capabilities, EngineError> {
        if !refresh {
            if let Some(hit) = self.cached_capabilities(request).await? {
                return Ok(hit);
            }
        }
        let snapshot = self.ask_capabilities(request).await;
        let status = snapshot
            .pointer("/runtimeCapabilities/status")
            .and_then(Value::as_str)
            .unwrap_or("unavailable")
            .to_string();
        let captured_at = self
            .store
            .save_runtime_capabilities(&request.cache_key(), &status, &snapshot)
            .await?;
        Ok(Capabilities {
            snapshot,
            captured_at,
            cached: false,
        })
    }

    async fn ask_capabilities(&self, request: &CapabilityRequest) -> Value {
        let mut warnings = Vec::new();
        let schema = match self.appserver.binary() {
            Some(binary) => match protocol_schema(&binary).await {
                Ok(schema) => Some(schema),
                Err(error) => {
                    warnings.push(format!("protocol schema unavailable: {error}"));
                    None
                }
            },
            None => None,
        };
        let started = self.appserver.ensure_started().await;
        let calls = INVENTORY_METHODS.iter().map(|&method| {
            let started = started.clone();
            let schema = schema.as_deref();
            async move {
                let begin = Instant::now();
                let (status, reply, error) = if !request.asks(method) {
                    (MethodStatus::Skipped, None, None)
                } else if let Err(error) = started {
                    (
                        MethodStatus::Unavailable,
                        None,
                        Some((None, error.to_string())),
                    )
                } else if schema.is_some_and(|s| !s.supports(method)) {
                    let message =
                        "the running app-server's protocol has no such method".to_string();
                    (MethodStatus::Unsupported, None, Some((None, message)))
                } else {
                    match self
                        .appserver
                        .request_with_timeout(method, request.params(method), request.timeout)
                        .await
                    {
                        Ok(reply) => (MethodStatus::Ok, Some(reply), None),
                        Err(error) => {
                            let code = match &error {
                                AppServerError::Rpc { code, .. } => Some(*code),
                                _ => None,
                            };
                            (classify(&error), None, Some((code, error.to_string())))
                        }
                    }
                };
                Outcome {
                    method,
                    status,
                    reply,
                    error,
                    elapsed: begin.elapsed(),
                }
            }
        });
        let mut outcomes = futures::future::join_all(calls).await;
        // Without a signed-in account, usage and rate limits cannot exist: that is a state, not a fault.
        let no_account = outcomes
            .iter()
            .find(|o| o.method == "account/read")
            .and_then(|o| o.reply.as_ref())
            .is_some_and(signed_out);
        for outcome in &mut outcomes {
            let account_bound = matches!(
                outcome.method,
                "account/usage/read" | "account/rateLimits/read"
            );
            if no_account && account_bound && outcome.status == MethodStatus::Error {
                outcome.status = MethodStatus::NotSignedIn;
            }
        }
        assemble(request, &outcomes, schema.as_deref(), warnings)
    }
}

fn assemble(
    request: &CapabilityRequest,
    outcomes: &[Outcome],
    schema: Option<&ProtocolSchema>,
    mut warnings: Vec<String>,
) -> Value {
    let statuses: Vec<MethodStatus> = outcomes.iter().map(|o| o.status).collect();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("status".into(), json!(overall_status(&statuses)));
    capabilities.insert(
        "schemaMethods".into(),
        match schema {
            Some(schema) => json!({
                "status": "ok",
                "source": schema.source,
                "codexVersion": schema.codex_version,
                "schemaHash": schema.schema_hash,
                "methodCount": schema.methods.len(),
                "methods": schema.methods,
            }),
            None => json!({"status": "unavailable", "source": "generate-json-schema"}),
        },
    );
    capabilities.insert(
        "sandboxReadiness".into(),
        serde_json::to_value(sandbox_readiness()).unwrap_or(Value::Null),
    );
    let mut results = Vec::new();
    for outcome in outcomes {
        let field = field_of(outcome.method);
        capabilities.insert(
            field.into(),
            outcome
                .reply
                .as_ref()
                .map_or(Value::Null, |reply| summarise(outcome.method, reply)),
        );
        let (code, message) = match &outcome.error {
            Some((code, message)) => (*code, Some(redact_text(message).into_owned())),
            None => (None, None),
        };
        if outcome.status.is_failure() {
            warnings.push(format!(
                "{} {}: {}",
                outcome.method,
                outcome.status.as_str(),
                message.as_deref().unwrap_or("")
            ));
        }
        results.push(json!({
            "method": outcome.method,
            "field": field,
            "status": outcome.status.as_str(),
            "errorCode": code,
            "message": message,
            "durationMs": outcome.elapsed.as_millis() as u64,
        }));
    }
    json!({
        "runtimeCapabilities": capabilities,
        "methodResults": results,
        "warnings": warnings,
        "request": {
            "cwd": request.cwd.display().to_string(),
            "timeoutSeconds": request.timeout.as_secs(),
            "includeModels": request.include_models,
            "includeHooks": request.include_hooks,
            "includeSkills": request.include_skills,
            "includeAccount": request.include_account,
        },
    })
}
