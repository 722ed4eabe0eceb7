//! The protocol a `codex` binary speaks, from its own `app-server generate-json-schema`: the client request
//! methods it supports, its version and a hash of the schema, computed once per binary (path, size, mtime).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::process::Command;

use super::AppServerError;
use crate::domain::rules::canonical::sha256_hex;

/// How long generating the schema (or asking the version) may take before it counts as failed.
const GENERATE_TIMEOUT: Duration = Duration::from_secs(15);

/// What `generate-json-schema` says about one binary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolSchema {
    /// How the list was obtained.
    pub source: &'static str,
    /// `codex --version` of the binary (`codex-cli 0.169.0`).
    pub codex_version: Option<String>,
    /// sha256 over the generated files (relative path and bytes, sorted by path).
    pub schema_hash: String,
    /// Client-to-server request methods, sorted.
    pub methods: Vec<String>,
}

impl ProtocolSchema {
    /// True when the binary's protocol has `method`.
    pub fn supports(&self, method: &str) -> bool {
        self.methods
            .binary_search_by(|m| m.as_str().cmp(method))
            .is_ok()
    }
}

/// The identity of a binary file: a rebuilt or upgraded binary has another size or mtime.
type BinaryKey = (PathBuf, u64, Option<SystemTime>);

fn cache() -> &'static Mutex<HashMap<BinaryKey, Arc<ProtocolSchema>>> {
    static CACHE: OnceLock<Mutex<HashMap<BinaryKey, Arc<ProtocolSchema>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The protocol of `binary`, generated on the first call for this file and cached for the process's life.
pub async fn protocol_schema(binary: &Path) -> Result<Arc<ProtocolSchema>, AppServerError> {
    let meta = std::fs::metadata(binary).map_err(|err| AppServerError::Unavailable {
        reason: format!("cannot read {}: {err}", binary.display()),
    })?;
    let key = (binary.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(hit) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let schema = Arc::new(generate(binary).await?);
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, schema.clone());
    Ok(schema)
}

fn schema_error(message: String) -> AppServerError {
    AppServerError::BadReply {
        method: "generate-json-schema".into(),
        message,
    }
}

async fn run(binary: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, AppServerError> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(GENERATE_TIMEOUT, command.output())
        .await
        .map_err(|_| AppServerError::Timeout {
            method: "generate-json-schema".into(),
            timeout_ms: GENERATE_TIMEOUT.as_millis() as u64,
        })?
        .map_err(|err| AppServerError::Unavailable {
            reason: format!("failed to run {}: {err}", binary.display()),
        })?;
    if !output.status.success() {
        return Err(schema_error(format!("exited with {}", output.status)));
    }
    Ok(output.stdout)
}

async fn generate(binary: &Path) -> Result<ProtocolSchema, AppServerError> {
    let dir = tempfile::tempdir().map_err(|err| AppServerError::Io(err.to_string()))?;
    run(
        binary,
        &[
            "app-server".as_ref(),
            "generate-json-schema".as_ref(),
            "--out".as_ref(),
            dir.path().as_os_str(),
        ],
    )
    .await?;
    let request = std::fs::read(dir.path().join("ClientRequest.json"))
        .map_err(|err| schema_error(format!("no ClientRequest.json: {err}")))?;
    let request: Value = serde_json::from_slice(&request)
        .map_err(|err| schema_error(format!("ClientRequest.json: {err}")))?;
    let mut methods = request_methods(&request);
    methods.sort_unstable();
    methods.dedup();
    let schema_hash = hash_tree(dir.path())?;
    // The version is informative only: a binary that cannot print it still has a usable schema.
    let codex_version = run(binary, &["--version".as_ref()])
        .await
        .ok()
        .map(|out| String::from_utf8_lossy(&out).trim().to_string())
        .filter(|v| !v.is_empty());
    Ok(ProtocolSchema {
        source: "generate-json-schema",
        codex_version,
        schema_hash,
        methods,
    })
}

/// The `method` enum values of every variant of `ClientRequest`.
fn request_methods(request: &Value) -> Vec<String> {
    request
        .get("oneOf")
        .and_then(Value::as_array)
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v.pointer("/properties/method/enum"))
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// sha256 over every file under `root`: relative path, NUL, length, bytes, in path order.
fn hash_tree(root: &Path) -> Result<String, AppServerError> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|err| AppServerError::Io(err.to_string()))?;
        for entry in entries {
            let path = entry
                .map_err(|err| AppServerError::Io(err.to_string()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut bytes = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap_or(&file);
        bytes.extend_from_slice(relative.to_string_lossy().as_bytes());
        bytes.push(0);
        let content = std::fs::read(&file).map_err(|err| AppServerError::Io(err.to_string()))?;
        bytes.extend_from_slice(&(content.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&content);
    }
    Ok(sha256_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_request_variants() {
        let request = serde_json::json!({"oneOf": [
            {"properties": {"method": {"enum": ["model/list"]}}},
            {"properties": {"method": {"enum": ["account/read"]}}},
            {"properties": {}}
        ]});
        assert_eq!(request_methods(&request), ["model/list", "account/read"]);
    }
}
