//! [`SubmitRequest`]: a `codex_submit_task` call turned into a typed, validated request.
//!
//! Everything a request needs from the outside world (project registry, allowed roots, image files) is checked
//! here, before anything is written, so a queued operation can't fail later for a reason the caller could
//! have been told at once.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::domain::operation::OperationKind;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{ApprovalPolicy, Config, SandboxMode};
use crate::projects::{Project, ProjectError, ProjectRegistry};

/// Why a request was refused before anything was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// An argument is missing, malformed or not allowed; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The argument at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The project reference does not resolve.
    #[error(transparent)]
    Project(#[from] ProjectError),
}

fn invalid(field: &str, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// One validated image input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum InputItem {
    /// An image by http(s) URL.
    Image {
        /// The URL, passed to Codex as is (never shown in status output).
        url: String,
        /// `auto`, `low`, `high` or `original`.
        detail: Option<String>,
    },
    /// An image file inside the allowed roots.
    LocalImage {
        /// Canonical path (never shown in status output).
        path: PathBuf,
        /// `auto`, `low`, `high` or `original`.
        detail: Option<String>,
        /// File size in bytes, checked against the configured limit.
        size: u64,
    },
}

impl InputItem {
    /// What status output may show: type, detail, size, extension and hashes, never the URL, bytes or path.
    pub fn safe_metadata(&self) -> Value {
        match self {
            InputItem::Image { url, detail } => json!({
                "type": "image",
                "detail": detail,
                "scheme": url.split(':').next().unwrap_or(""),
                "urlHash": short_hash(url.as_bytes()),
            }),
            InputItem::LocalImage { path, detail, size } => json!({
                "type": "localImage",
                "detail": detail,
                "sizeBytes": size,
                "extension": path.extension().map(|e| e.to_string_lossy().to_lowercase()),
                "pathHash": short_hash(path.to_string_lossy().as_bytes()),
            }),
        }
    }

    /// The app-server `UserInput` for this item.
    pub fn to_app_server_input(&self) -> Value {
        match self {
            InputItem::Image { url, .. } => json!({"type": "image", "url": url}),
            InputItem::LocalImage { path, .. } => {
                json!({"type": "localImage", "path": path.to_string_lossy()})
            }
        }
    }
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_string()
}

/// Image file extensions Codex accepts.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "gif"];
/// Longest image URL accepted (the seed's bound).
pub const MAX_IMAGE_URL_CHARS: usize = 8192;

/// Sandbox and approval policy requested and in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePolicy {
    /// What the caller asked for (or the config default).
    pub requested_sandbox: String,
    /// What the caller asked for (or the config default).
    pub requested_approval_policy: String,
    /// What Codex is given; `None` keeps the thread's existing setting (`respect_existing`).
    pub effective_sandbox: Option<String>,
    /// What Codex is given; `None` keeps the thread's existing setting (`respect_existing`).
    pub effective_approval_policy: Option<String>,
    /// True when a floor or a policy plugin changed the request.
    pub runtime_policy_adjusted: bool,
    /// Why it was changed.
    pub adjustment_reason: Option<String>,
}

/// A `codex_submit_task` request after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitRequest {
    /// What to do.
    pub operation_type: OperationKind,
    /// Idempotency key.
    pub client_request_id: Option<String>,
    /// Submitting agent, for per-agent limits.
    pub agent_id: Option<String>,
    /// Write-scope keys; disjoint keys may run in parallel.
    pub resource_keys: Vec<String>,
    /// `low`, `normal` or `high`.
    pub priority: String,
    /// `light`, `normal` or `heavy`.
    pub estimated_cost_class: String,
    /// `new_thread`, `continue_thread` or `auto`.
    pub thread_mode: String,
    /// `idempotency_only`, `active_prompt_guard` or `allow_parallel_with_resource_keys`.
    pub dedup_policy: String,
    /// Whether a completed similar chat may be continued instead of starting a new one.
    pub allow_historical_continuation: bool,
    /// The resolved project, when one is known.
    pub project: Option<Project>,
    /// Working directory (inside the allowed roots).
    pub cwd: PathBuf,
    /// Target thread (send, steer, execute) — `chat_id` is accepted as its alias.
    pub thread_id: Option<String>,
    /// Thread to fork.
    pub source_thread_id: Option<String>,
    /// Active turn a steer must land in.
    pub expected_turn_id: Option<String>,
    /// Owning workflow.
    pub workflow_id: Option<String>,
    /// The prompt.
    pub message: Option<String>,
    /// Validated image inputs.
    pub input_items: Vec<InputItem>,
    /// Thread title for new threads.
    pub title: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// Extra `config` for `thread/fork`.
    pub fork_config: Option<Value>,
    /// Fork without writing session files.
    pub ephemeral: bool,
    /// JSON Schema for the final message.
    pub output_schema: Option<Value>,
    /// `default` or `plan`.
    pub collaboration_mode: Option<String>,
    /// Requested and effective sandbox and approval policy.
    pub runtime_policy: RuntimePolicy,
    /// Skip soft guards the caller knowingly overrides.
    pub force: bool,
    /// Seconds the caller is willing to wait for the first message (informational for durable ops).
    pub timeout_seconds: i64,
    /// Largest message excerpt in status output.
    pub first_message_max_chars: i64,
}

/// The raw arguments of a submit call, as the MCP layer hands them over.
pub trait RawArgs {
    /// A non-blank string argument.
    fn str(&self, key: &str) -> Option<&str>;
    /// A boolean argument.
    fn bool(&self, key: &str) -> bool;
    /// An integer argument.
    fn int(&self, key: &str) -> Option<i64>;
    /// Any non-null argument.
    fn value(&self, key: &str) -> Option<&Value>;
}

impl RawArgs for Map<String, Value> {
    fn str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }
    fn bool(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
    fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }
    fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).filter(|v| !v.is_null())
    }
}

impl SubmitRequest {
    /// Validates raw (schema-checked) arguments against the config and the project registry.
    pub fn from_args(
        args: &dyn RawArgs,
        config: &Config,
        projects: &ProjectRegistry,
    ) -> Result<SubmitRequest, RequestError> {
        let operation_type = args
            .str("operation_type")
            .and_then(OperationKind::parse)
            .filter(|kind| kind.is_submittable())
            .ok_or_else(|| invalid("operation_type", "is required"))?;
        let message = args.str("message").map(str::to_string);
        let thread_id = args
            .str("thread_id")
            .or_else(|| args.str("chat_id"))
            .map(str::to_string);
        if let (Some(thread), Some(chat)) = (args.str("thread_id"), args.str("chat_id")) {
            if thread != chat {
                return Err(invalid(
                    "chat_id",
                    "differs from thread_id; pass one of them",
                ));
            }
        }
        match operation_type {
            OperationKind::StartChat => {
                if message.is_none() {
                    return Err(invalid("message", "is required for start_chat"));
                }
                if args.str("project_id").is_none() && args.str("cwd").is_none() {
                    return Err(invalid("project_id", "start_chat needs project_id or cwd"));
                }
            }
            OperationKind::SendMessage => {
                if message.is_none() {
                    return Err(invalid("message", "is required for send_message"));
                }
                if thread_id.is_none() {
                    return Err(invalid(
                        "chat_id",
                        "send_message needs chat_id or thread_id",
                    ));
                }
            }
            OperationKind::ExecutePlan => {
                if thread_id.is_none() && args.str("workflow_id").is_none() {
                    return Err(invalid(
                        "workflow_id",
                        "execute_plan needs workflow_id, chat_id or thread_id",
                    ));
                }
            }
            OperationKind::SteerTurn => {
                if message.is_none() {
                    return Err(invalid("message", "is required for steer_turn"));
                }
                if thread_id.is_none() {
                    return Err(invalid("thread_id", "is required for steer_turn"));
                }
                if args.str("expected_turn_id").is_none() {
                    return Err(invalid("expected_turn_id", "is required for steer_turn"));
                }
            }
            OperationKind::ForkThread => {
                if args.str("source_thread_id").is_none() && thread_id.is_none() {
                    return Err(invalid("source_thread_id", "is required for fork_thread"));
                }
            }
            // Filtered out above: reviews start through the review workflow.
            OperationKind::ReviewStart => return Err(invalid("operation_type", "is internal")),
        }

        let project = match args.str("project_id") {
            Some(reference) => Some(projects.resolve(reference)?),
            None => None,
        };
        let cwd = match args.str("cwd") {
            Some(cwd) => {
                let path = Path::new(cwd);
                if !path.is_absolute() {
                    return Err(invalid("cwd", "must be an absolute path"));
                }
                if !projects.is_allowed(path) {
                    return Err(invalid("cwd", "is outside the allowed roots"));
                }
                crate::config::normalize_path(path)
            }
            None => match &project {
                Some(project) => project.root_path.clone(),
                None => crate::config::normalize_path(&config.projects_root),
            },
        };
        let project = match project {
            Some(project) => Some(project),
            None if args.str("cwd").is_some() => Some(projects.for_cwd(&cwd)?),
            None => None,
        };

        let starts_turn = match operation_type {
            OperationKind::SteerTurn => false,
            OperationKind::ForkThread => message.is_some(),
            _ => true,
        };
        let input_items =
            parse_input_items(args.value("input_items"), starts_turn, config, projects)?;

        let output_schema = args.value("output_schema").cloned();
        if output_schema.is_some() && !starts_turn {
            return Err(invalid(
                "output_schema",
                "applies only to operations that start a turn",
            ));
        }

        let runtime_policy = runtime_policy(args, config, operation_type)?;
        let thread_mode = args
            .str("thread_mode")
            .map(str::to_string)
            .unwrap_or_else(|| {
                match operation_type {
                    OperationKind::StartChat => "new_thread",
                    OperationKind::ForkThread => "auto",
                    _ => "continue_thread",
                }
                .to_string()
            });
        let resource_keys = match args.value("resource_keys") {
            Some(Value::Array(keys)) => keys
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };

        Ok(SubmitRequest {
            operation_type,
            client_request_id: args.str("client_request_id").map(str::to_string),
            agent_id: args.str("agent_id").map(str::to_string),
            resource_keys,
            priority: args.str("priority").unwrap_or("normal").to_string(),
            estimated_cost_class: args
                .str("estimated_cost_class")
                .unwrap_or("normal")
                .to_string(),
            thread_mode,
            dedup_policy: args
                .str("dedup_policy")
                .unwrap_or("active_prompt_guard")
                .to_string(),
            allow_historical_continuation: args.bool("allow_historical_continuation"),
            project,
            cwd,
            source_thread_id: args
                .str("source_thread_id")
                .map(str::to_string)
                .or_else(|| {
                    (operation_type == OperationKind::ForkThread)
                        .then(|| thread_id.clone())
                        .flatten()
                }),
            thread_id: if operation_type == OperationKind::ForkThread {
                None
            } else {
                thread_id
            },
            expected_turn_id: args.str("expected_turn_id").map(str::to_string),
            workflow_id: args.str("workflow_id").map(str::to_string),
            message,
            input_items,
            title: args.str("title").map(str::to_string),
            model: args
                .str("model")
                .map(str::to_string)
                .or_else(|| config.default_model.clone()),
            fork_config: args.value("fork_config").cloned(),
            ephemeral: args.bool("ephemeral"),
            output_schema,
            collaboration_mode: args.str("collaboration_mode").map(str::to_string),
            runtime_policy,
            force: args.bool("force"),
            timeout_seconds: args.int("timeout_seconds").unwrap_or(300),
            first_message_max_chars: args.int("first_message_max_chars").unwrap_or(8000),
        })
    }

    /// The request as canonical JSON (what idempotency compares); paths are canonical, ids as given.
    pub fn canonical_request(&self) -> Value {
        json!({
            "operationType": self.operation_type.as_str(),
            "agentId": self.agent_id,
            "resourceKeys": self.resource_keys,
            "priority": self.priority,
            "estimatedCostClass": self.estimated_cost_class,
            "threadMode": self.thread_mode,
            "dedupPolicy": self.dedup_policy,
            "allowHistoricalContinuation": self.allow_historical_continuation,
            "projectId": self.project.as_ref().map(|p| p.project_id.clone()),
            "cwd": self.cwd.to_string_lossy(),
            "threadId": self.thread_id,
            "sourceThreadId": self.source_thread_id,
            "expectedTurnId": self.expected_turn_id,
            "workflowId": self.workflow_id,
            "message": self.message,
            "inputItems": self.input_items.iter().map(InputItem::to_app_server_input).collect::<Vec<_>>(),
            "title": self.title,
            "model": self.model,
            "forkConfig": self.fork_config,
            "ephemeral": self.ephemeral,
            "outputSchema": self.output_schema,
            "collaborationMode": self.collaboration_mode,
            "sandbox": self.runtime_policy.requested_sandbox,
            "approvalPolicy": self.runtime_policy.requested_approval_policy,
            "runtimePolicy": self.runtime_policy,
            "force": self.force,
        })
    }
}

fn runtime_policy(
    args: &dyn RawArgs,
    config: &Config,
    operation_type: OperationKind,
) -> Result<RuntimePolicy, RequestError> {
    let requested_sandbox = args
        .str("sandbox")
        .unwrap_or(config.default_sandbox.as_str())
        .to_string();
    let requested_approval = args
        .str("approval_policy")
        .unwrap_or(config.default_approval_policy.as_str())
        .to_string();
    let effective_sandbox = match requested_sandbox.as_str() {
        "respect_existing" => None,
        other => Some(
            SandboxMode::parse(other)
                .ok_or_else(|| invalid("sandbox", format!("unknown sandbox {other:?}")))?
                .as_str()
                .to_string(),
        ),
    };
    // `ask_openclaw` and `never_auto_approve` both mean "approvals go to the orchestrator as pending
    // interactions"; for Codex that is `on-request`.
    let effective_approval = match requested_approval.as_str() {
        "respect_existing" => None,
        "ask_openclaw" | "never_auto_approve" => {
            Some(ApprovalPolicy::OnRequest.as_str().to_string())
        }
        other => Some(
            ApprovalPolicy::parse(other)
                .ok_or_else(|| invalid("approval_policy", format!("unknown policy {other:?}")))?
                .as_str()
                .to_string(),
        ),
    };
    let _ = operation_type;
    Ok(RuntimePolicy {
        runtime_policy_adjusted: false,
        adjustment_reason: None,
        requested_sandbox,
        requested_approval_policy: requested_approval,
        effective_sandbox,
        effective_approval_policy: effective_approval,
    })
}

fn parse_input_items(
    raw: Option<&Value>,
    starts_turn: bool,
    config: &Config,
    projects: &ProjectRegistry,
) -> Result<Vec<InputItem>, RequestError> {
    let Some(Value::Array(items)) = raw else {
        return Ok(Vec::new());
    };
    if items.is_empty() {
        return Ok(Vec::new());
    }
    if !starts_turn {
        return Err(invalid(
            "input_items",
            "images apply only to operations that start a turn",
        ));
    }
    if items.len() > config.max_image_input_items {
        return Err(invalid(
            "input_items",
            format!(
                "at most {} image items are allowed, got {}",
                config.max_image_input_items,
                items.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (idx, item) in items.iter().enumerate() {
        let field = format!("input_items[{idx}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let detail = item
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_string);
        match kind {
            "image" => {
                let url = item.get("url").and_then(Value::as_str).unwrap_or("");
                let lower = url.to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Err(invalid(&format!("{field}.url"), "must be an http(s) URL"));
                }
                if url.chars().count() > MAX_IMAGE_URL_CHARS {
                    return Err(invalid(
                        &format!("{field}.url"),
                        format!("is longer than {MAX_IMAGE_URL_CHARS} characters"),
                    ));
                }
                out.push(InputItem::Image {
                    url: url.to_string(),
                    detail,
                });
            }
            "localImage" => {
                let raw_path = item.get("path").and_then(Value::as_str).unwrap_or("");
                let path = Path::new(raw_path);
                if !path.is_absolute() {
                    return Err(invalid(
                        &format!("{field}.path"),
                        "must be an absolute path",
                    ));
                }
                if !projects.is_allowed(path) {
                    return Err(invalid(
                        &format!("{field}.path"),
                        "is outside the allowed roots",
                    ));
                }
                let canonical = crate::config::normalize_path(path);
                let extension = canonical
                    .extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                if !IMAGE_EXTENSIONS.contains(&extension.as_str()) {
                    return Err(invalid(
                        &format!("{field}.path"),
                        format!("must be one of {}", IMAGE_EXTENSIONS.join(", ")),
                    ));
                }
                let metadata = std::fs::metadata(&canonical).map_err(|_| {
                    invalid(
                        &format!("{field}.path"),
                        "does not exist or is not readable",
                    )
                })?;
                if !metadata.is_file() {
                    return Err(invalid(&format!("{field}.path"), "is not a file"));
                }
                if metadata.len() > config.max_image_input_bytes {
                    return Err(invalid(
                        &format!("{field}.path"),
                        format!(
                            "is {} bytes; the limit is {}",
                            metadata.len(),
                            config.max_image_input_bytes
                        ),
                    ));
                }
                out.push(InputItem::LocalImage {
                    path: canonical,
                    detail,
                    size: metadata.len(),
                });
            }
            other => {
                return Err(invalid(
                    &format!("{field}.type"),
                    format!("unknown input item type {other:?}"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        root: PathBuf,
        config: Config,
        projects: ProjectRegistry,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn fixture() -> Fixture {
        let root = std::env::temp_dir().join(format!("ccp-request-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("projects/app")).expect("mkdir");
        std::fs::create_dir_all(root.join("outside")).expect("mkdir");
        std::fs::write(root.join("projects/app/shot.png"), [0u8; 16]).expect("png");
        std::fs::write(root.join("outside/shot.png"), [0u8; 16]).expect("png");
        std::fs::write(root.join("projects/app/notes.txt"), "x").expect("txt");
        let config = Config::for_tests(&root);
        let projects = ProjectRegistry::new(&config);
        Fixture {
            root,
            config,
            projects,
        }
    }

    fn parse(fx: &Fixture, args: Value) -> Result<SubmitRequest, RequestError> {
        let map = args.as_object().cloned().unwrap_or_default();
        SubmitRequest::from_args(&map, &fx.config, &fx.projects)
    }

    #[track_caller]
    fn refused(fx: &Fixture, args: Value, field: &str) {
        match parse(fx, args) {
            Err(RequestError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a refusal on {field}, got {other:?}"),
        }
    }

    #[test]
    fn start_chat_resolves_the_project_and_defaults_cwd() {
        let fx = fixture();
        let path = fx.root.join("projects/app");
        let request = parse(
            &fx,
            json!({"operation_type": "start_chat", "project_id": path.to_string_lossy(), "message": "hi"}),
        )
        .expect("valid");
        assert_eq!(request.cwd, crate::config::normalize_path(&path));
        assert_eq!(request.thread_mode, "new_thread");
        assert_eq!(
            request.runtime_policy.effective_sandbox.as_deref(),
            Some("read-only")
        );
        assert_eq!(
            request.runtime_policy.effective_approval_policy.as_deref(),
            Some("on-request")
        );
    }

    #[test]
    fn required_arguments_per_type_are_named() {
        let fx = fixture();
        refused(
            &fx,
            json!({"operation_type": "start_chat", "cwd": "/x"}),
            "message",
        );
        refused(
            &fx,
            json!({"operation_type": "send_message", "message": "m"}),
            "chat_id",
        );
        refused(
            &fx,
            json!({"operation_type": "steer_turn", "message": "m", "thread_id": "t"}),
            "expected_turn_id",
        );
        refused(
            &fx,
            json!({"operation_type": "fork_thread"}),
            "source_thread_id",
        );
    }

    #[test]
    fn unknown_project_and_outside_cwd_are_refused() {
        let fx = fixture();
        assert!(matches!(
            parse(
                &fx,
                json!({"operation_type": "start_chat", "project_id": "nope", "message": "m"})
            ),
            Err(RequestError::Project(ProjectError::NotFound { .. }))
        ));
        let outside = fx.root.join("outside");
        refused(
            &fx,
            json!({"operation_type": "start_chat", "cwd": outside.to_string_lossy(), "message": "m"}),
            "cwd",
        );
    }

    #[test]
    fn local_images_are_checked_and_never_shown() {
        let fx = fixture();
        let cwd = fx.root.join("projects/app");
        let ok = parse(
            &fx,
            json!({"operation_type": "start_chat", "cwd": cwd.to_string_lossy(), "message": "m",
                   "input_items": [{"type": "localImage", "path": cwd.join("shot.png").to_string_lossy()},
                                   {"type": "image", "url": "https://example.invalid/a.png"}]}),
        )
        .expect("valid images");
        let shown = serde_json::to_string(
            &ok.input_items
                .iter()
                .map(InputItem::safe_metadata)
                .collect::<Vec<_>>(),
        )
        .expect("json");
        assert!(
            !shown.contains("shot.png") && !shown.contains("example.invalid"),
            "{shown}"
        );
        let outside = fx.root.join("outside/shot.png");
        refused(
            &fx,
            json!({"operation_type": "start_chat", "cwd": cwd.to_string_lossy(), "message": "m",
                   "input_items": [{"type": "localImage", "path": outside.to_string_lossy()}]}),
            "input_items[0].path",
        );
        refused(
            &fx,
            json!({"operation_type": "start_chat", "cwd": cwd.to_string_lossy(), "message": "m",
                   "input_items": [{"type": "localImage", "path": cwd.join("notes.txt").to_string_lossy()}]}),
            "input_items[0].path",
        );
        refused(
            &fx,
            json!({"operation_type": "start_chat", "cwd": cwd.to_string_lossy(), "message": "m",
                   "input_items": [{"type": "image", "url": "file:///etc/passwd"}]}),
            "input_items[0].url",
        );
        refused(
            &fx,
            json!({"operation_type": "steer_turn", "thread_id": "t", "expected_turn_id": "u", "message": "m",
                   "input_items": [{"type": "image", "url": "https://example.invalid/a.png"}]}),
            "input_items",
        );
    }

    #[test]
    fn respect_existing_and_orchestrator_policies_map_for_codex() {
        let fx = fixture();
        let request = parse(
            &fx,
            json!({"operation_type": "send_message", "chat_id": "t", "message": "m",
                   "sandbox": "respect_existing", "approval_policy": "ask_openclaw"}),
        )
        .expect("valid");
        assert_eq!(request.runtime_policy.effective_sandbox, None);
        assert_eq!(
            request.runtime_policy.effective_approval_policy.as_deref(),
            Some("on-request")
        );
        assert_eq!(request.thread_id.as_deref(), Some("t"));
    }
}
