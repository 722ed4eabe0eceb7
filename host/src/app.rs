//! [`App`]: the state every tool handler shares, built once at start-up and owned by `Arc`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use serde_json::{json, Value};

use crate::appserver::{AppServer, AppServerEvent, AppServerSettings};
use crate::config::Config;
use crate::engine::plugin_state::StorePluginState;
use crate::engine::worker_link::WorkerLink;
use crate::engine::{config_fingerprint, Engine, EngineRole, EngineSettings};
use crate::mcp::error::ToolError;
use crate::mcp::tools::plugin_views::StoreViews;
use crate::plugins::{PluginHost, PluginRuntime};
use crate::projects::ProjectRegistry;
use crate::store::{NewAppServerEvent, Store};

pub use crate::appserver::RECURSION_MARKER_ENV;

/// How many app-server events `codex_get_app_server_status` can show.
const RECENT_EVENTS: usize = 50;
/// The journal is written at least this often while frames arrive.
const JOURNAL_FLUSH: std::time::Duration = std::time::Duration::from_millis(250);
/// ... or once this many frames wait.
const JOURNAL_BATCH: usize = 64;

/// The thread and turn an app-server frame names (`threadId`; `turn.id` or `turnId`).
fn thread_and_turn(params: &Value) -> (Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    (
        text(params.get("threadId")),
        text(params.pointer("/turn/id").or_else(|| params.get("turnId"))),
    )
}

/// Shared server state.
pub struct App {
    /// The resolved configuration.
    pub config: Config,
    /// When this process started serving (monotonic).
    pub started_at: Instant,
    /// When this process started serving (wall clock).
    pub started_at_wall: SystemTime,
    /// The loaded plugins (default and third-party).
    pub plugins: Arc<PluginHost>,
    /// Project references to roots.
    pub projects: ProjectRegistry,
    /// The `codex app-server` supervisor (started lazily).
    pub appserver: AppServer,
    /// The durable dispatcher over the SQLite store.
    pub engine: Arc<Engine>,
    /// How this process reaches the background worker (client processes only).
    pub worker_link: Option<WorkerLink>,
    recent_events: std::sync::Mutex<std::collections::VecDeque<Value>>,
    recursion_guard: bool,
}

impl App {
    /// Builds the application state from a validated configuration, for a process in `role`.
    pub fn new(config: Config, role: EngineRole) -> anyhow::Result<App> {
        let recursion_guard = std::env::var_os(RECURSION_MARKER_ENV).is_some_and(|v| !v.is_empty());
        if recursion_guard {
            tracing::warn!(
                "started inside a Codex session spawned by codex-control-plane-mcp; write tools are refused"
            );
        }
        // The plugin engine needs nothing from the database: it is made while the database opens (each takes
        // about a millisecond of a cold start).
        let max_memory = config.plugins.default_memory_bytes;
        let (store, runtime) = std::thread::scope(|scope| {
            let runtime = std::thread::Builder::new()
                .name("plugin-runtime".to_string())
                .spawn_scoped(scope, move || PluginRuntime::prepare(max_memory));
            let store = Store::open(&config.state_db_path);
            let runtime = match runtime {
                Ok(handle) => handle.join().ok(),
                Err(err) => {
                    tracing::debug!(error = %err, "the plugin engine is made after the database opens");
                    None
                }
            };
            (store, runtime)
        });
        let store = store.with_context(|| {
            format!(
                "cannot open the state database {}",
                config.state_db_path.display()
            )
        })?;
        // Plugins keep their key/value state in the database and see operations and workflows through the
        // status tools' snapshots; both are handed in, so `plugins` never names `store`.
        let views = Arc::new(StoreViews::new(store.clone()));
        let mut builder = PluginHost::builder(&config)
            .state_store(Arc::new(StorePluginState::new(store.clone())))
            .views(views.clone());
        // A failed or panicked preparation is made again (and reported) by the load itself.
        if let Some(Ok(runtime)) = runtime {
            builder = builder.runtime(runtime);
        }
        let plugins = builder
            .load()
            .map_err(|err| anyhow::anyhow!("{err}"))
            .context("failed to start the plugin runtime")?;
        for info in plugins.infos() {
            tracing::info!(
                plugin = %info.id,
                version = %info.version,
                status = ?info.status,
                cache = ?info.cache,
                load_micros = info.load_micros,
                error = ?info.error,
                "plugin"
            );
        }
        plugins
            .check_required(&config.plugins.required)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let appserver = AppServer::new(AppServerSettings::from_config(&config));
        let plugins = Arc::new(plugins);
        let engine = Engine::new(
            store,
            appserver.clone(),
            plugins.clone(),
            EngineSettings::from_config(&config).with_role(role),
            config_fingerprint(&config),
        );
        views.set_owner(&engine.worker.owner_id);
        let worker_link =
            (!role.dispatches()).then(|| WorkerLink::new(&config.state_db_path, &config));
        Ok(App {
            appserver,
            engine,
            worker_link,
            recent_events: std::sync::Mutex::new(std::collections::VecDeque::new()),
            projects: ProjectRegistry::new(&config),
            plugins,
            config,
            started_at: Instant::now(),
            started_at_wall: SystemTime::now(),
            recursion_guard,
        })
    }

    /// Keeps a short, redacted history of app-server events (method, generation, ids, time) for status
    /// tools, and journals every frame but streaming deltas into the store's redacted `app_server_events`
    /// (batched: one write per [`JOURNAL_FLUSH`] or [`JOURNAL_BATCH`] frames); runs until the event channel
    /// closes or shutdown, and flushes what it holds before it returns.
    pub async fn record_app_server_events(
        self: Arc<Self>,
        mut shutdown: crate::shutdown::Shutdown,
    ) {
        let mut events = self.appserver.subscribe();
        let mut journal: Vec<NewAppServerEvent> = Vec::new();
        let mut flush_at = tokio::time::Instant::now() + JOURNAL_FLUSH;
        loop {
            let event = tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep_until(flush_at), if !journal.is_empty() => {
                    self.flush_journal(&mut journal).await;
                    continue;
                }
                event = events.recv() => event,
            };
            let owner = Some(self.engine.worker.owner_id.clone());
            let generation_of = |g: u64| i64::try_from(g).ok();
            let (summary, frame) = match event {
                Ok(AppServerEvent::Started { generation, pid }) => (
                    json!({"event": "started", "processGeneration": generation, "pid": pid}),
                    NewAppServerEvent {
                        owner_id: owner,
                        process_generation: generation_of(generation),
                        direction: "in".into(),
                        method: Some("process/started".into()),
                        payload: Some(json!({"pid": pid})),
                        ..Default::default()
                    },
                ),
                Ok(AppServerEvent::Notification {
                    generation,
                    method,
                    params,
                }) => {
                    if method.ends_with("/delta") {
                        continue;
                    }
                    let (thread, turn) = thread_and_turn(&params);
                    (
                        json!({"event": "notification", "method": method, "processGeneration": generation,
                               "threadId": thread, "turnId": turn}),
                        NewAppServerEvent {
                            owner_id: owner,
                            process_generation: generation_of(generation),
                            direction: "in".into(),
                            method: Some(method),
                            thread_id: thread,
                            turn_id: turn,
                            payload: Some(params),
                            ..Default::default()
                        },
                    )
                }
                Ok(AppServerEvent::ServerRequest {
                    generation,
                    method,
                    params,
                    id,
                    ..
                }) => {
                    let (thread, turn) = thread_and_turn(&params);
                    (
                        json!({"event": "server_request", "method": method, "processGeneration": generation,
                               "threadId": thread, "turnId": turn}),
                        NewAppServerEvent {
                            owner_id: owner,
                            process_generation: generation_of(generation),
                            direction: "in".into(),
                            jsonrpc_id: Some(id.to_string()),
                            method: Some(method),
                            thread_id: thread,
                            turn_id: turn,
                            payload: Some(params),
                        },
                    )
                }
                Ok(AppServerEvent::Exited {
                    generation,
                    code,
                    active_turns,
                }) => (
                    json!({"event": "exited", "processGeneration": generation, "code": code,
                           "activeTurns": active_turns.len()}),
                    NewAppServerEvent {
                        owner_id: owner,
                        process_generation: generation_of(generation),
                        direction: "in".into(),
                        method: Some("process/exited".into()),
                        payload: Some(json!({"code": code, "activeTurns": active_turns.len()})),
                        ..Default::default()
                    },
                ),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => (
                    json!({"event": "lagged", "missed": n}),
                    NewAppServerEvent {
                        owner_id: owner,
                        direction: "in".into(),
                        method: Some("journal/lagged".into()),
                        payload: Some(json!({"missed": n})),
                        ..Default::default()
                    },
                ),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if journal.is_empty() {
                flush_at = tokio::time::Instant::now() + JOURNAL_FLUSH;
            }
            journal.push(frame);
            if journal.len() >= JOURNAL_BATCH {
                self.flush_journal(&mut journal).await;
            }
            let mut recent = self.recent_events.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() >= RECENT_EVENTS {
                recent.pop_front();
            }
            let mut summary = summary;
            summary["at"] = json!(crate::time::iso8601_now());
            recent.push_back(summary);
        }
        self.flush_journal(&mut journal).await;
    }

    async fn flush_journal(&self, journal: &mut Vec<NewAppServerEvent>) {
        if journal.is_empty() {
            return;
        }
        let batch = std::mem::take(journal);
        if let Err(error) = self.engine.store.append_app_server_events(batch).await {
            tracing::warn!(%error, "journaling app-server events failed");
        }
    }

    /// The most recent app-server events this process saw, oldest first.
    pub fn recent_app_server_events(&self) -> Vec<Value> {
        self.recent_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Interactions waiting for an answer, across every process sharing the database.
    pub async fn pending_interaction_count(&self) -> Result<i64, ToolError> {
        Ok(self.engine.store.pending_interaction_count().await?)
    }

    /// The engine (every process has one; a client's runs no tasks).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The worker link when this process leaves dispatching to the background worker.
    pub fn delegates_to_worker(&self) -> Option<&WorkerLink> {
        self.worker_link.as_ref()
    }

    /// True when this process must refuse write tools (see [`RECURSION_MARKER_ENV`]).
    pub fn recursion_guard_active(&self) -> bool {
        self.recursion_guard
    }

    /// The plugins this process knows, as the health summary shows them.
    pub fn plugin_infos(&self) -> Vec<Value> {
        self.plugins
            .plugins()
            .iter()
            .map(|info| {
                json!({
                    "name": info.id,
                    "displayName": info.name,
                    "version": info.version,
                    "kind": info.kind,
                    "worlds": info.worlds,
                    "witVersion": info.wit_version,
                    "capabilities": info.capabilities,
                    "grantedCapabilities": info.granted,
                    "status": info.status,
                    "builtin": info.source == "embedded",
                    "source": info.source,
                    "error": info.error,
                    "cache": info.cache,
                    "linked": info.linked,
                    "loadMicros": info.load_micros,
                })
            })
            .collect()
    }
}
