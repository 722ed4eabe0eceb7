//! Versioned migrations. `PRAGMA user_version` is the number of migrations applied; each migration runs once,
//! in its own `BEGIN IMMEDIATE` transaction together with the version bump, so two processes opening a fresh file
//! at once apply it exactly once.
//!
//! **API Boundary:** the tables below are read by every server process sharing the file. Never edit a released
//! migration; append a new one.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The migrations, in order. Index `i` moves the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14];

/// The schema version this binary writes.
pub fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The `user_version` of an open connection.
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies every pending migration; refuses a file newer than this binary.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = known_version();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write lock: another process may have migrated since we looked.
        let found = current_version(&tx)?;
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        if found == known {
            tx.commit()?;
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[found as usize])?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::info!(version = found + 1, "applied store migration");
    }
}

/// Version 1: operations, submissions, workers and leases, intents, turns, interactions, the event journal.
const V1: &str = r#"
CREATE TABLE codex_workers (
    owner_id            TEXT PRIMARY KEY,            -- mcp:<pid>:<uuid hex>
    pid                 INTEGER NOT NULL,
    host_key            TEXT NOT NULL,               -- hostname + boot id: pids are comparable only on one boot
    pid_start_ticks     INTEGER,                     -- /proc/<pid>/stat starttime: detects pid reuse
    status              TEXT NOT NULL DEFAULT 'running',
    config_fingerprint  TEXT,
    version             TEXT,
    process_generation  INTEGER NOT NULL DEFAULT 0,
    started_at          INTEGER NOT NULL,
    last_heartbeat_at   INTEGER NOT NULL,
    stopped_at          INTEGER
);

CREATE TABLE codex_operations (
    operation_id                  TEXT PRIMARY KEY,
    client_request_id             TEXT NOT NULL UNIQUE,
    operation_type                TEXT NOT NULL,
    status                        TEXT NOT NULL,
    project_id                    TEXT,
    project_path_key              TEXT NOT NULL DEFAULT '',
    cwd                           TEXT,
    thread_id                     TEXT,
    source_thread_id              TEXT,
    expected_turn_id              TEXT,
    turn_id                       TEXT,
    workflow_id                   TEXT,
    agent_id                      TEXT,
    has_message                   INTEGER NOT NULL DEFAULT 0,
    takes_slot                    INTEGER NOT NULL DEFAULT 1,
    priority                      INTEGER NOT NULL DEFAULT 1,   -- 0 low, 1 normal, 2 high
    estimated_cost_class          TEXT NOT NULL DEFAULT 'normal',
    resource_keys_json            TEXT NOT NULL DEFAULT '[]',
    queue_status                  TEXT NOT NULL DEFAULT 'queued',
    queued_reason                 TEXT,
    request_json                  TEXT NOT NULL,
    request_fingerprint           TEXT NOT NULL,
    result_json                   TEXT,
    final_report_json             TEXT,
    latest_report_hash            TEXT,
    last_error_json               TEXT,
    attempt_count                 INTEGER NOT NULL DEFAULT 0,
    max_attempts                  INTEGER NOT NULL DEFAULT 3,
    next_attempt_at               INTEGER NOT NULL,
    lease_owner                   TEXT REFERENCES codex_workers(owner_id) ON DELETE SET NULL,
    lease_expires_at              INTEGER,
    last_heartbeat_at             INTEGER,
    worker_id                     TEXT,
    submitter_config_fingerprint  TEXT,
    worker_config_fingerprint     TEXT,
    created_at                    INTEGER NOT NULL,
    updated_at                    INTEGER NOT NULL,
    started_at                    INTEGER,
    completed_at                  INTEGER
);
CREATE INDEX idx_codex_operations_status_updated ON codex_operations(status, updated_at);
CREATE INDEX idx_codex_operations_queue ON codex_operations(queue_status, priority, updated_at);
-- The duplicate guard's live rows of one scope.
CREATE INDEX idx_codex_operations_scope_status ON codex_operations(project_path_key, status);
CREATE INDEX idx_codex_operations_turn ON codex_operations(turn_id) WHERE turn_id IS NOT NULL;
CREATE INDEX idx_codex_operations_thread ON codex_operations(thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX idx_codex_operations_workflow ON codex_operations(workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX idx_codex_operations_lease_owner ON codex_operations(lease_owner) WHERE lease_owner IS NOT NULL;
-- The claim scan: only startable rows are indexed, so it stays small however many completed rows exist.
CREATE INDEX idx_codex_operations_claim ON codex_operations(priority DESC, created_at)
    WHERE status IN ('queued', 'starting_app_server', 'starting_thread', 'starting_review', 'starting_turn');

CREATE TABLE codex_prompt_submissions (
    submission_id               TEXT PRIMARY KEY,
    operation_id                TEXT NOT NULL REFERENCES codex_operations(operation_id) ON DELETE CASCADE,
    operation_type              TEXT NOT NULL,
    project_path_key            TEXT NOT NULL,
    prompt_hash                 TEXT NOT NULL,
    prompt_normalized           TEXT NOT NULL,
    has_input_items             INTEGER NOT NULL DEFAULT 0,
    resource_keys_json          TEXT NOT NULL DEFAULT '[]',
    status                      TEXT NOT NULL,
    duplicate_of_submission_id  TEXT,
    similarity                  REAL,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
);
CREATE INDEX idx_codex_prompt_submissions_hash ON codex_prompt_submissions(project_path_key, prompt_hash, created_at);
CREATE INDEX idx_codex_prompt_submissions_recent ON codex_prompt_submissions(project_path_key, created_at);
CREATE INDEX idx_codex_prompt_submissions_operation ON codex_prompt_submissions(operation_id);

CREATE TABLE codex_intents (
    intent_id           TEXT PRIMARY KEY,               -- itn_<hex>
    operation_id        TEXT NOT NULL REFERENCES codex_operations(operation_id) ON DELETE CASCADE,
    owner_id            TEXT NOT NULL,
    method              TEXT NOT NULL,                  -- thread/start, turn/start, thread/fork, turn/steer, review/start
    params_hash         TEXT,
    process_generation  INTEGER,
    state               TEXT NOT NULL DEFAULT 'pending', -- pending, confirmed, failed, not_found
    result_id           TEXT,
    error               TEXT,
    created_at          INTEGER NOT NULL,
    resolved_at         INTEGER
);
CREATE INDEX idx_codex_intents_operation ON codex_intents(operation_id, created_at);
CREATE INDEX idx_codex_intents_pending ON codex_intents(created_at) WHERE state = 'pending';

CREATE TABLE tracked_turns (
    turn_id                 TEXT PRIMARY KEY,
    thread_id               TEXT NOT NULL,
    operation_id            TEXT REFERENCES codex_operations(operation_id) ON DELETE SET NULL,
    status                  TEXT NOT NULL,
    final_message           TEXT,
    last_assistant_message  TEXT,
    terminal_source         TEXT,
    owner_id                TEXT,
    process_generation      INTEGER,
    input_tokens            INTEGER,
    cached_input_tokens     INTEGER,
    output_tokens           INTEGER,
    total_tokens            INTEGER,
    started_at              INTEGER,
    completed_at            INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX idx_tracked_turns_thread ON tracked_turns(thread_id, created_at);
CREATE INDEX idx_tracked_turns_status ON tracked_turns(status);
CREATE INDEX idx_tracked_turns_operation ON tracked_turns(operation_id) WHERE operation_id IS NOT NULL;
CREATE INDEX idx_tracked_turns_generation ON tracked_turns(owner_id, process_generation);

CREATE TABLE tracked_turn_messages (
    message_id  INTEGER PRIMARY KEY,
    turn_id     TEXT NOT NULL REFERENCES tracked_turns(turn_id) ON DELETE CASCADE,
    thread_id   TEXT,
    item_id     TEXT,
    role        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    event_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX idx_tracked_turn_messages_turn ON tracked_turn_messages(turn_id, message_id);

CREATE TABLE tracked_turn_progress_events (
    event_id      INTEGER PRIMARY KEY,
    turn_id       TEXT NOT NULL REFERENCES tracked_turns(turn_id) ON DELETE CASCADE,
    thread_id     TEXT,
    method        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    item_id       TEXT,
    summary       TEXT,
    payload_json  TEXT,
    event_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL
);
CREATE INDEX idx_tracked_turn_progress_turn ON tracked_turn_progress_events(turn_id, event_id);

CREATE TABLE pending_interactions (
    interaction_id            TEXT PRIMARY KEY,          -- int_<hex>
    operation_id              TEXT REFERENCES codex_operations(operation_id) ON DELETE SET NULL,
    workflow_id               TEXT,
    thread_id                 TEXT,
    turn_id                   TEXT,
    kind                      TEXT NOT NULL,
    method                    TEXT NOT NULL,
    jsonrpc_id                TEXT NOT NULL,              -- the app-server request id to answer
    status                    TEXT NOT NULL DEFAULT 'pending',
    params_json               TEXT NOT NULL,              -- redacted
    available_decisions_json  TEXT NOT NULL DEFAULT '[]',
    questions_json            TEXT,
    answer_schema_json        TEXT,
    risk_summary              TEXT,
    owner_id                  TEXT NOT NULL,              -- the process whose app-server asked; it delivers
    process_generation        INTEGER NOT NULL,
    expires_at                INTEGER NOT NULL,
    response_json             TEXT,
    answered_by               TEXT,
    answered_at               INTEGER,
    delivery_state            TEXT,                       -- NULL, requested, delivered, failed
    delivered_at              INTEGER,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);
CREATE INDEX idx_pending_interactions_status ON pending_interactions(status, expires_at);
CREATE INDEX idx_pending_interactions_thread ON pending_interactions(thread_id, status);
CREATE INDEX idx_pending_interactions_turn ON pending_interactions(turn_id, status);
CREATE INDEX idx_pending_interactions_operation ON pending_interactions(operation_id, status);
CREATE INDEX idx_pending_interactions_owner ON pending_interactions(owner_id, process_generation, status);
CREATE INDEX idx_pending_interactions_delivery ON pending_interactions(owner_id) WHERE delivery_state = 'requested';

CREATE TABLE pending_interaction_events (
    event_id        INTEGER PRIMARY KEY,
    interaction_id  TEXT NOT NULL REFERENCES pending_interactions(interaction_id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    details_json    TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX idx_pending_interaction_events_interaction ON pending_interaction_events(interaction_id, event_id);

CREATE TABLE app_server_events (
    event_id            INTEGER PRIMARY KEY,
    owner_id            TEXT,
    process_generation  INTEGER,
    direction           TEXT NOT NULL,                    -- in, out
    jsonrpc_id          TEXT,
    method              TEXT,
    thread_id           TEXT,
    turn_id             TEXT,
    payload_json        TEXT,                             -- redacted, truncated
    payload_truncated   INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL
);
CREATE INDEX idx_app_server_events_turn ON app_server_events(turn_id, event_id) WHERE turn_id IS NOT NULL;
CREATE INDEX idx_app_server_events_thread ON app_server_events(thread_id, event_id) WHERE thread_id IS NOT NULL;
CREATE INDEX idx_app_server_events_generation ON app_server_events(owner_id, process_generation, event_id);
"#;

/// Version 2: workflows (plugin-driven state machines), their action journal and history; thread lifecycle
/// actions.
const V2: &str = r#"
CREATE TABLE codex_workflows (
    workflow_id         TEXT PRIMARY KEY,                -- wf_<32 hex>
    client_request_id   TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL,                   -- plan_then_execute, code_review, ...
    plugin_id           TEXT NOT NULL,
    plugin_version      TEXT NOT NULL,
    input_json          TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    state_json          TEXT NOT NULL,                   -- opaque plugin state
    phase               TEXT NOT NULL,
    status              TEXT NOT NULL,
    thread_id           TEXT,
    runtime_policy_json TEXT,
    final_report_json   TEXT,
    error_json          TEXT,
    owner_id            TEXT,                            -- the process driving it
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    completed_at        INTEGER
);
CREATE INDEX idx_codex_workflows_active ON codex_workflows (completed_at, updated_at);
CREATE INDEX idx_codex_workflows_thread ON codex_workflows (thread_id);

-- Every action a plugin returned, in order. `state` says how far the host got: pending -> performed
-- (an operation or app-server call exists) -> started (its thread/turn ids were reported to the plugin)
-- -> reported (its end was reported). A replay after a crash resumes from the stored state and never
-- performs an action twice: performing is idempotent through `workflow:<wf>:<action id>` operation keys.
CREATE TABLE codex_workflow_actions (
    workflow_id     TEXT NOT NULL REFERENCES codex_workflows (workflow_id),
    action_id       TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    action_json     TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    operation_id    TEXT,
    output_json     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, action_id)
);
CREATE INDEX idx_codex_workflow_actions_state ON codex_workflow_actions (state, workflow_id);

CREATE TABLE codex_workflow_events (
    event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id     TEXT NOT NULL REFERENCES codex_workflows (workflow_id),
    event           TEXT NOT NULL,
    phase           TEXT NOT NULL,
    details_json    TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX idx_codex_workflow_events_wf ON codex_workflow_events (workflow_id, event_id);

-- Audited thread lifecycle actions (archive, unarchive, compact): tla_<32 hex>.
CREATE TABLE codex_thread_lifecycle_actions (
    action_id           TEXT PRIMARY KEY,
    action_type         TEXT NOT NULL,                   -- archive, unarchive, compact
    thread_id           TEXT NOT NULL,
    status              TEXT NOT NULL,                   -- starting, running, completed, failed, unknown_after_app_server_exit
    owner_id            TEXT NOT NULL,
    process_generation  INTEGER,
    target_turn_id      TEXT,
    result_json         TEXT,
    error_json          TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    completed_at        INTEGER
);
CREATE INDEX idx_codex_lifecycle_thread ON codex_thread_lifecycle_actions (thread_id, status);
"#;

/// Version 3: thread goals that workflows mirror into app-server (`goal` of `codex_start_plan_workflow`).
const V3: &str = r#"
-- One goal per workflow: what the client asked for, how far the host got mirroring it onto the workflow's
-- thread, and what app-server last said about it. `settled_at` is set once the completion action (clear,
-- set_complete, leave) was performed after the workflow ended.
CREATE TABLE codex_workflow_goals (
    workflow_id             TEXT PRIMARY KEY REFERENCES codex_workflows (workflow_id),
    objective               TEXT NOT NULL,
    token_budget            INTEGER,
    completion_action       TEXT NOT NULL,              -- clear, set_complete, leave
    completion_objective    TEXT,
    sync_state              TEXT NOT NULL,              -- pending_thread, active, complete, cleared, left, external_override, unsupported, error
    thread_id               TEXT,                       -- set once mirrored
    app_server_status       TEXT,                       -- active, paused, blocked, usageLimited, budgetLimited, complete
    observed_json           TEXT,                       -- the goal as app-server last reported it
    continuation_turns_json TEXT,                       -- turns app-server started by itself for the goal
    reason                  TEXT,
    error_json              TEXT,
    set_at                  INTEGER,
    settling_at             INTEGER,                    -- the completion action is under way
    settled_at              INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX idx_codex_workflow_goals_thread ON codex_workflow_goals (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX idx_codex_workflow_goals_unsettled ON codex_workflow_goals (settled_at);
"#;

/// The background worker: its role in the worker row, and the commands clients queue for it.
const V4: &str = r#"
ALTER TABLE codex_workers ADD COLUMN role TEXT NOT NULL DEFAULT 'inline';   -- inline | worker

-- The turn's sandbox can write: it takes a write lock of its project (store::admission).
ALTER TABLE codex_operations ADD COLUMN writes INTEGER NOT NULL DEFAULT 0;

-- A control action that needs the app-server, asked by a client process and performed by the worker that owns
-- app-server. `payload_json` is the tool and its validated arguments; the result is what the tool returned.
CREATE TABLE codex_worker_commands (
    command_id      TEXT PRIMARY KEY,                 -- cmd_<32 hex>
    command_type    TEXT NOT NULL,                    -- answer_pending_interaction, interrupt_turn, ...
    payload_json    TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',   -- queued, running, completed, failed, timed_out
    requested_by    TEXT,
    claimed_by      TEXT,
    result_json     TEXT,
    error_json      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    completed_at    INTEGER,
    expires_at      INTEGER NOT NULL                  -- a command still queued then is timed_out, never run
);
CREATE INDEX idx_codex_worker_commands_status ON codex_worker_commands (status, created_at);
"#;

/// Version 5: the mirrored chat history of the turns this server ran, and its full-text index.
const V5: &str = r#"
-- One row per message of a chat: the user prompt of an operation and the assistant messages of its turn,
-- redacted. Append-only; `source_key` (`op:<operation id>`, `msg:<message id>`) makes mirroring idempotent.
-- Entries of a chat are ordered by (turn_created_at, turn_id, position): the prompt is position 0.
CREATE TABLE chat_history (
    entry_id         INTEGER PRIMARY KEY,
    thread_id        TEXT NOT NULL,
    turn_id          TEXT NOT NULL,
    operation_id     TEXT,
    project_id       TEXT,
    role             TEXT NOT NULL,                   -- user, assistant
    kind             TEXT NOT NULL,                   -- prompt, commentary, final_answer
    text             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    source_key       TEXT NOT NULL UNIQUE,
    turn_created_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX idx_chat_history_thread ON chat_history (thread_id, turn_created_at, turn_id, position);
CREATE INDEX idx_chat_history_turn ON chat_history (turn_id);
CREATE INDEX idx_chat_history_project ON chat_history (project_id, thread_id);

-- External-content FTS5 index over chat_history.text, kept in step by triggers.
CREATE VIRTUAL TABLE chat_history_fts USING fts5 (
    text, content = 'chat_history', content_rowid = 'entry_id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER chat_history_fts_insert AFTER INSERT ON chat_history BEGIN
    INSERT INTO chat_history_fts (rowid, text) VALUES (new.entry_id, new.text);
END;
CREATE TRIGGER chat_history_fts_delete AFTER DELETE ON chat_history BEGIN
    INSERT INTO chat_history_fts (chat_history_fts, rowid, text) VALUES ('delete', old.entry_id, old.text);
END;

-- How far mirroring got: `messages` is the last tracked_turn_messages.message_id mirrored.
CREATE TABLE chat_history_state (
    name        TEXT PRIMARY KEY,
    value       INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
"#;

/// Version 6: the last runtime capabilities snapshot per working directory and inventory flags, the cache of
/// `codex_get_runtime_capabilities` and what `codex_health_summary` reports without starting app-server.
const V6: &str = r#"
CREATE TABLE codex_runtime_capabilities (
    cache_key      TEXT PRIMARY KEY,                  -- sha256 of the cwd and the include_* flags
    status         TEXT NOT NULL,                     -- ok, partial, unavailable
    snapshot_json  TEXT NOT NULL,                     -- redacted runtimeCapabilities + methodResults
    captured_at    INTEGER NOT NULL
);
CREATE INDEX idx_codex_runtime_capabilities_captured ON codex_runtime_capabilities (captured_at);
"#;

/// Diagnoses `codex_analyze_issue` recorded (`record=true`), for a later repair to name by id.
const V7: &str = r#"
CREATE TABLE codex_diagnoses (
    diagnosis_id       TEXT PRIMARY KEY,              -- diag_<32 hex>
    scope_json         TEXT NOT NULL,                 -- the ids the analysis was scoped to
    problem_text       TEXT,                          -- the caller's words, redacted
    likely_root_cause  TEXT,                          -- the top finding's category; NULL when nothing was found
    confidence         REAL,                          -- the top finding's confidence
    findings_json      TEXT NOT NULL,                 -- the merged, redacted findings
    result_json        TEXT NOT NULL,                 -- the whole answer as the tool returned it
    created_at         INTEGER NOT NULL
);
CREATE INDEX idx_codex_diagnoses_created ON codex_diagnoses (created_at);
"#;

/// The audit trail of `codex_repair_issue`: every run, dry or not, with its plan and before/after; the loop
/// guard counts the real runs of one guard key.
const V8: &str = r#"
CREATE TABLE codex_repair_runs (
    repair_run_id      TEXT PRIMARY KEY,              -- repair_<32 hex>
    action             TEXT NOT NULL,                 -- the canonical action (aliases resolved)
    requested_action   TEXT NOT NULL,                 -- the action as the caller named it
    guard_key          TEXT NOT NULL,                 -- sha256 of {category, scope, action, target}
    diagnosis_id       TEXT,                          -- the diagnosis the repair acts on
    dry_run            INTEGER NOT NULL,              -- 1: shown only, never counted by the loop guard
    force              INTEGER NOT NULL,
    status             TEXT NOT NULL,                 -- planned / completed / failed / refused / blocked
    plugin             TEXT,                          -- the repair plugin whose plan was used
    steps_json         TEXT NOT NULL,                 -- the plan, each step with its allowlist verdict
    before_json        TEXT NOT NULL,
    after_json         TEXT NOT NULL,
    result_json        TEXT NOT NULL,                 -- the whole answer as the tool returned it
    created_at         INTEGER NOT NULL
);
CREATE INDEX idx_codex_repair_runs_guard ON codex_repair_runs (guard_key, created_at);
"#;

/// Plugin key/value state (WIT `state-get` / `state-set` / `state-delete`), one row per plugin and key. The
/// caps (256-byte keys, 64 KiB values, 1024 keys per plugin) are the plugin runtime's; the store enforces the
/// key count in the transaction that inserts a key.
const V9: &str = r#"
CREATE TABLE codex_plugin_state (
    plugin_id   TEXT NOT NULL,                        -- the plugin's manifest id
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, key)
) WITHOUT ROWID;
"#;

/// Version 10: the chat summaries of `codex_get_chat` (`store::summaries`), kept per chat and input hash so an
/// unchanged chat is never summarized twice, and the newest one a rolling summary starts from.
const V10: &str = r#"
CREATE TABLE chat_summaries (
    thread_id            TEXT NOT NULL,
    input_hash           TEXT NOT NULL,               -- sha256 of the summarized messages and the settings
    summary_text         TEXT NOT NULL,               -- what the endpoint answered (its input was redacted)
    model                TEXT NOT NULL,
    last_entry_id        INTEGER NOT NULL,            -- newest chat_history entry covered; rolling resumes after it
    messages_summarized  INTEGER NOT NULL,
    messages_omitted     INTEGER NOT NULL,            -- older messages left out by the recent-messages limit
    chunks               INTEGER NOT NULL,
    rolling              INTEGER NOT NULL,            -- 1: built on the previous summary
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (thread_id, input_hash)
);
CREATE INDEX idx_chat_summaries_thread ON chat_summaries (thread_id, created_at);
"#;

/// Version 11: the policy rule that answered an interaction automatically (WIT 0.2 policies name their rules),
/// next to `answered_by` (`policy:<plugin>`); NULL for every other answer and for 0.1 policies.
const V11: &str = r#"
ALTER TABLE pending_interactions ADD COLUMN answered_rule TEXT;
"#;

/// The duplicate guard's indexes cover what it reads to find the live rows of a scope: the scope index an
/// operation's id, thread, turn and status, the submissions' operation index the submission id. A submit in a
/// scope with a long queue reads a few index pages instead of two table rows (often two pages) per live
/// operation, and the scan for live turns no longer reads the row of every ended operation of the scope.
const V12: &str = r#"
DROP INDEX idx_codex_operations_scope_status;
CREATE INDEX idx_codex_operations_scope_status
    ON codex_operations(project_path_key, status, operation_id, thread_id, turn_id);
DROP INDEX idx_codex_prompt_submissions_operation;
CREATE INDEX idx_codex_prompt_submissions_operation ON codex_prompt_submissions(operation_id, submission_id);
"#;

/// A version per duplicate-guard scope (`project_path_key`), bumped by triggers whenever anything the guard reads
/// of that scope changes: an operation of the scope is added, removed or changes status, thread or turn; a
/// submission of the scope is added, removed or rewritten; a turn an operation of the scope tracks is added,
/// removed or changes status. An insert runs the guard on a read snapshot before it takes the write lock and, under
/// the lock, reuses that answer only if the scope's version has not moved since (`store::submissions::judge`).
const V13: &str = r#"
CREATE TABLE codex_dedup_scopes (
    project_path_key  TEXT PRIMARY KEY,
    version           INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER codex_dedup_scopes_operation_insert AFTER INSERT ON codex_operations BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version) VALUES (NEW.project_path_key, 1)
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_operation_update
    AFTER UPDATE OF project_path_key, status, thread_id, turn_id ON codex_operations
    WHEN OLD.project_path_key IS NOT NEW.project_path_key OR OLD.status IS NOT NEW.status
        OR OLD.thread_id IS NOT NEW.thread_id OR OLD.turn_id IS NOT NEW.turn_id
BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version) VALUES (NEW.project_path_key, 1)
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT OLD.project_path_key, 1 WHERE OLD.project_path_key IS NOT NEW.project_path_key
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_operation_delete AFTER DELETE ON codex_operations BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version) VALUES (OLD.project_path_key, 1)
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER codex_dedup_scopes_submission_insert AFTER INSERT ON codex_prompt_submissions BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT NEW.project_path_key, 1
        UNION SELECT project_path_key, 1 FROM codex_operations WHERE operation_id = NEW.operation_id
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_submission_update
    AFTER UPDATE OF operation_id, project_path_key, prompt_hash, prompt_normalized, resource_keys_json, created_at
    ON codex_prompt_submissions
BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT NEW.project_path_key, 1 UNION SELECT OLD.project_path_key, 1
        UNION SELECT project_path_key, 1 FROM codex_operations
            WHERE operation_id IN (NEW.operation_id, OLD.operation_id)
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_submission_delete AFTER DELETE ON codex_prompt_submissions BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT OLD.project_path_key, 1
        UNION SELECT project_path_key, 1 FROM codex_operations WHERE operation_id = OLD.operation_id
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER codex_dedup_scopes_turn_insert AFTER INSERT ON tracked_turns BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT DISTINCT project_path_key, 1 FROM codex_operations WHERE turn_id = NEW.turn_id
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_turn_update AFTER UPDATE OF turn_id, status ON tracked_turns
    WHEN OLD.turn_id IS NOT NEW.turn_id OR OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT DISTINCT project_path_key, 1 FROM codex_operations WHERE turn_id IN (NEW.turn_id, OLD.turn_id)
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER codex_dedup_scopes_turn_delete AFTER DELETE ON tracked_turns BEGIN
    INSERT INTO codex_dedup_scopes (project_path_key, version)
        SELECT DISTINCT project_path_key, 1 FROM codex_operations WHERE turn_id = OLD.turn_id
        ON CONFLICT (project_path_key) DO UPDATE SET version = version + 1;
END;
"#;

/// Slot holders by status and lease: admission (`store::admission::slot_holders`, run by every claim and so after
/// every submit) looks for active rows and for startable rows that hold a live lease. With only the status index
/// it read the table row of every queued operation to see its lease, so each submit cost grew with the queue
/// (about 0.6 ms per claim at 1 500 queued rows); this index answers the lease test from index pages.
const V14: &str = r#"
CREATE INDEX idx_codex_operations_status_lease ON codex_operations(status, lease_owner, lease_expires_at);
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError};

    #[test]
    fn migrations_run_once_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state.sqlite3");
        drop(Store::open(&path).expect("first open"));
        let conn = Connection::open(&path).expect("raw open");
        assert_eq!(current_version(&conn).expect("version"), known_version());
        let n_tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        drop(conn);
        // Re-opening applies nothing: same version, same tables, no error from re-creating them.
        drop(Store::open(&path).expect("second open"));
        let conn = Connection::open(&path).expect("raw open");
        assert_eq!(current_version(&conn).expect("version"), known_version());
        let again: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n_tables, again);
        // Foreign keys are declared, not just switched on.
        let n_fks: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_foreign_key_list('codex_prompt_submissions')",
                [],
                |r| r.get(0),
            )
            .expect("fks");
        assert_eq!(n_fks, 1);
    }

    /// Every agent's client starts its own server, so on a fresh install several processes open a database
    /// that does not exist yet at the same moment (separate connections lock as separate processes do).
    #[test]
    fn concurrent_first_opens_of_a_new_file_all_succeed() {
        const OPENERS: usize = 8;
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("state.sqlite3");
            let start = std::sync::Barrier::new(OPENERS);
            let failures: Vec<String> = std::thread::scope(|scope| {
                let openers: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            Store::open(&path).map(drop).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                openers
                    .into_iter()
                    .filter_map(|opener| opener.join().expect("opener thread").err())
                    .collect()
            });
            assert!(failures.is_empty(), "round {round}: {failures:?}");
            let conn = Connection::open(&path).expect("raw open");
            assert_eq!(current_version(&conn).expect("version"), known_version());
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.sqlite3");
        drop(Store::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", known_version() + 5)
            .expect("bump");
        drop(conn);
        match Store::open(&path) {
            Err(StoreError::SchemaTooNew { found, known }) => {
                assert_eq!((found, known), (known_version() + 5, known_version()));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
