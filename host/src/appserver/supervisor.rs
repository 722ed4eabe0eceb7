//! The [`AppServer`] handle: one generation at a time, started lazily, restarted and stopped under one
//! lifecycle lock; requests go to the live generation's connection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::connection::{call, read_loop, Connection};
use super::process::{self, Spawned};
use super::protocol::{self, ClientInfo, ClientRequest, Initialize, InitializeCapabilities};
use super::{
    find_codex_binary, AppServerError, AppServerEvent, AppServerSettings, AppServerStatus,
    RestartMode, EVENT_CAPACITY, SHUTDOWN_GRACE,
};

struct Inner {
    settings: AppServerSettings,
    /// Serialises start, restart and shutdown.
    lifecycle: tokio::sync::Mutex<()>,
    current: Mutex<Option<Arc<Connection>>>,
    last_generation: AtomicU64,
    last_exit: Mutex<Option<Value>>,
    events: broadcast::Sender<Arc<AppServerEvent>>,
    shutting_down: AtomicBool,
}

/// A subscription to app-server events. The channel holds each event once, behind an `Arc`, so a slot of
/// its [`EVENT_CAPACITY`] is a pointer; `recv` hands each subscriber its own copy, as a channel of events did.
pub struct EventReceiver(broadcast::Receiver<Arc<AppServerEvent>>);

impl EventReceiver {
    /// The next event; `Lagged` when this subscriber fell more than [`EVENT_CAPACITY`] events behind.
    pub async fn recv(&mut self) -> Result<AppServerEvent, broadcast::error::RecvError> {
        self.0
            .recv()
            .await
            .map(|event| AppServerEvent::clone(&event))
    }
}

/// Cheap, cloneable handle to the supervisor.
#[derive(Clone)]
pub struct AppServer {
    inner: Arc<Inner>,
}

impl AppServer {
    /// A supervisor that starts nothing until the first request (lazy start).
    pub fn new(settings: AppServerSettings) -> AppServer {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        AppServer {
            inner: Arc::new(Inner {
                settings,
                lifecycle: tokio::sync::Mutex::new(()),
                current: Mutex::new(None),
                last_generation: AtomicU64::new(0),
                last_exit: Mutex::new(None),
                events,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Subscribes to every event from now on.
    pub fn subscribe(&self) -> EventReceiver {
        EventReceiver(self.inner.events.subscribe())
    }

    fn live(&self) -> Option<Arc<Connection>> {
        let current = self.inner.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|p| p.alive.load(Ordering::Acquire))
            .cloned()
    }

    /// Generation of the live process, if any.
    pub fn generation(&self) -> Option<u64> {
        self.live().map(|p| p.generation)
    }

    /// Starts the process if none is alive; returns its generation.
    pub async fn ensure_started(&self) -> Result<u64, AppServerError> {
        if let Some(process) = self.live() {
            return Ok(process.generation);
        }
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            return Ok(process.generation);
        }
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(AppServerError::Unavailable {
                reason: "server is shutting down".into(),
            });
        }
        self.spawn().await
    }

    async fn spawn(&self) -> Result<u64, AppServerError> {
        let settings = &self.inner.settings;
        let init = protocol::encode(&Initialize {
            client_info: ClientInfo {
                name: "codex-control-plane-mcp".into(),
                title: "codex-control-plane-mcp".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            capabilities: InitializeCapabilities {
                experimental_api: settings.experimental_api,
            },
        })?;
        let generation = self.inner.last_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let Spawned {
            child,
            pid,
            stdin,
            stdout,
            binary,
        } = process::spawn(settings, generation)?;
        let process = Arc::new(Connection::new(generation, pid, stdin, child));
        let inner = self.inner.clone();
        let reading = process.clone();
        tokio::spawn(async move {
            let generation = reading.generation;
            let exit = read_loop(inner.events.clone(), reading, stdout).await;
            *inner.last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(json!({
                "generation": generation,
                "code": exit.code,
                "activeTurns": exit.active_turns.len(),
                "at": crate::time::iso8601_now(),
            }));
            let _ = inner.events.send(Arc::new(AppServerEvent::Exited {
                generation,
                code: exit.code,
                active_turns: exit.active_turns,
            }));
        });

        if let Err(err) = call(
            &process,
            Initialize::METHOD,
            init,
            settings.initialize_timeout,
        )
        .await
        {
            process::kill(&process);
            return Err(AppServerError::Unavailable {
                reason: format!("initialize failed: {err}"),
            });
        }
        process
            .write_line(&json!({"method": "initialized"}).to_string())
            .await?;
        *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(process.clone());
        tracing::info!(generation, pid, binary = %binary.display(), "codex app-server started");
        let _ = self
            .inner
            .events
            .send(Arc::new(AppServerEvent::Started { generation, pid }));
        Ok(generation)
    }

    /// Sends a typed request with the default timeout, starting the process if needed.
    pub async fn send<R: ClientRequest>(&self, request: &R) -> Result<R::Reply, AppServerError> {
        let result = self.request(R::METHOD, protocol::encode(request)?).await?;
        protocol::decode::<R>(result)
    }

    /// Sends a typed request with an explicit timeout.
    pub async fn send_with_timeout<R: ClientRequest>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Reply, AppServerError> {
        let params = protocol::encode(request)?;
        let result = self
            .request_with_timeout(R::METHOD, params, timeout)
            .await?;
        protocol::decode::<R>(result)
    }

    /// How long a request waits for its reply unless told otherwise.
    pub fn request_timeout(&self) -> Duration {
        self.inner.settings.request_timeout
    }

    /// Sends a typed request and also returns the generation that served it.
    pub async fn send_on<R: ClientRequest>(
        &self,
        request: &R,
    ) -> Result<(u64, R::Reply), AppServerError> {
        self.send_on_with_timeout(request, self.inner.settings.request_timeout)
            .await
    }

    /// [`AppServer::send_on`] with an explicit timeout.
    pub async fn send_on_with_timeout<R: ClientRequest>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<(u64, R::Reply), AppServerError> {
        let (generation, result) = self
            .request_on_with_timeout(R::METHOD, protocol::encode(request)?, timeout)
            .await?;
        Ok((generation, protocol::decode::<R>(result)?))
    }

    /// Sends a request with the default timeout, starting the process if needed.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, AppServerError> {
        self.request_with_timeout(method, params, self.inner.settings.request_timeout)
            .await
    }

    /// Sends a request with an explicit timeout, starting the process if needed.
    pub async fn request_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, AppServerError> {
        let (_, reply) = self
            .request_on_with_timeout(method, params, timeout)
            .await?;
        Ok(reply)
    }

    /// Like [`AppServer::request`] but also returns the generation that served it.
    pub async fn request_on(
        &self,
        method: &str,
        params: Value,
    ) -> Result<(u64, Value), AppServerError> {
        self.request_on_with_timeout(method, params, self.inner.settings.request_timeout)
            .await
    }

    /// [`AppServer::request_on`] with an explicit timeout.
    pub async fn request_on_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<(u64, Value), AppServerError> {
        self.ensure_started().await?;
        let process = self.live().ok_or_else(|| AppServerError::Unavailable {
            reason: "app-server exited during start".into(),
        })?;
        let reply = call(&process, method, params, timeout).await?;
        Ok((process.generation, reply))
    }

    /// Answers a server-to-client request of `generation`.
    pub async fn respond(
        &self,
        generation: u64,
        id: &Value,
        result: Result<Value, (i64, String)>,
    ) -> Result<(), AppServerError> {
        let process = self
            .live()
            .filter(|p| p.generation == generation)
            .ok_or_else(|| AppServerError::StaleGeneration {
                requested: generation,
                current: self.generation(),
            })?;
        let message = match result {
            Ok(result) => json!({"id": id, "result": result}),
            Err((code, message)) => json!({"id": id, "error": {"code": code, "message": message}}),
        };
        process.write_line(&message.to_string()).await?;
        process
            .open_server_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id.to_string());
        Ok(())
    }

    /// Restarts the process. `Idle` refuses while turns are active.
    pub async fn restart(&self, mode: RestartMode) -> Result<u64, AppServerError> {
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            let active = process.active_turn_count();
            if mode == RestartMode::Idle && active > 0 {
                return Err(AppServerError::Busy {
                    active_turns: active,
                });
            }
            process::stop(&process, SHUTDOWN_GRACE).await;
        }
        self.spawn().await
    }

    /// Stops the live process, if any (close stdin, wait, then kill by pid); the next request starts a new one.
    /// Returns the stopped generation.
    pub async fn stop(&self, mode: RestartMode) -> Result<Option<u64>, AppServerError> {
        let _guard = self.inner.lifecycle.lock().await;
        let Some(process) = self.live() else {
            return Ok(None);
        };
        let active = process.active_turn_count();
        if mode == RestartMode::Idle && active > 0 {
            return Err(AppServerError::Busy {
                active_turns: active,
            });
        }
        process::stop(&process, SHUTDOWN_GRACE).await;
        Ok(Some(process.generation))
    }

    /// Stops the process (close stdin, wait, then kill by pid) and refuses further starts.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            process::stop(&process, SHUTDOWN_GRACE).await;
        }
    }

    /// Turns the live process reports as active, as `(thread_id, turn_id)`.
    pub fn active_turns(&self) -> Vec<(String, String)> {
        self.live()
            .map(|p| {
                p.active_turns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(turn, thread)| (thread.clone(), turn.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `codex` binary a start would use, if one is found.
    pub fn binary(&self) -> Option<PathBuf> {
        find_codex_binary(self.inner.settings.binary.as_deref())
    }

    /// A snapshot for status tools; never starts anything.
    pub fn status(&self) -> AppServerStatus {
        let binary = self.binary();
        let live = self.live();
        let last_generation = self.inner.last_generation.load(Ordering::Acquire);
        AppServerStatus {
            running: live.is_some(),
            pid: live.as_ref().map(|p| p.pid),
            process_generation: live
                .as_ref()
                .map(|p| p.generation)
                .or((last_generation > 0).then_some(last_generation)),
            pending_requests: live
                .as_ref()
                .map(|p| p.pending.lock().unwrap_or_else(|e| e.into_inner()).len())
                .unwrap_or(0),
            active_turns: live.as_ref().map(|p| p.active_turn_count()).unwrap_or(0),
            codex_binary_exists: binary.is_some(),
            codex_binary_path: binary.or_else(|| self.inner.settings.binary.clone()),
            uptime_seconds: live.as_ref().map(|p| p.started_at.elapsed().as_secs_f64()),
            last_exit: self
                .inner
                .last_exit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}
