//! Which threads the live app-server has loaded, with the model each runs on, and how a thread gets loaded.
//!
//! A turn can only start on a thread loaded by the app-server generation that runs it: one it started or forked,
//! or one it resumed with `thread/resume`. The model matters because a plan-mode turn names one
//! (`collaborationMode.settings.model`): codex records that name as the thread's model, so an empty name would
//! leave a thread that no later app-server can resume ("No models are available").
//!
//! Threads already left that way (by an older version, or by another client) are repaired on resume: when codex
//! refuses for want of a model, the model codex is configured with (`config/read` for the thread's directory)
//! is named explicitly, once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::Engine;
use crate::appserver::protocol::{ConfigRead, ThreadResume};
use crate::appserver::AppServerError;

/// What app-server says when a thread's recorded model is empty and nothing names one.
const NO_MODEL: &str = "No models are available";

/// `(generation, thread id)` → the thread's model, for threads loaded in the live app-server.
#[derive(Debug, Default)]
pub(super) struct LoadedThreads(Mutex<HashMap<(u64, String), Option<String>>>);

impl LoadedThreads {
    /// Records that `generation` has `thread_id` loaded, running on `model` when known.
    pub(super) fn note(&self, generation: u64, thread_id: &str, model: Option<String>) {
        let mut loaded = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = loaded
            .entry((generation, thread_id.to_string()))
            .or_default();
        if model.is_some() {
            *entry = model;
        }
    }

    /// True when `generation` has `thread_id` loaded.
    pub(super) fn contains(&self, generation: u64, thread_id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&(generation, thread_id.to_string()))
    }

    /// The model a thread loaded in `generation` runs on, as app-server reported it.
    pub(super) fn model(&self, generation: u64, thread_id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(generation, thread_id.to_string()))
            .cloned()
            .flatten()
    }

    /// Forgets every thread of a generation that exited.
    pub(super) fn forget_generation(&self, generation: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(g, _), _| *g != generation);
    }
}

/// True when app-server refused to resume a thread because no model is recorded or configured for it.
fn is_missing_model(error: &AppServerError) -> bool {
    matches!(error, AppServerError::Rpc { message, .. } if message.contains(NO_MODEL))
}

impl Engine {
    /// Loads `thread_id` into the live app-server with `thread/resume` and notes it; returns the generation
    /// that loaded it. A thread whose history records no model is resumed on codex's configured model.
    pub(super) async fn resume_thread(
        &self,
        thread_id: &str,
        cwd: Option<String>,
        timeout: Duration,
    ) -> Result<u64, AppServerError> {
        let mut resume = ThreadResume {
            thread_id: thread_id.to_string(),
            cwd,
            model: None,
        };
        let (generation, reply) = match self.appserver.send_on_with_timeout(&resume, timeout).await
        {
            Err(error) if is_missing_model(&error) => {
                let config = ConfigRead {
                    cwd: resume.cwd.clone(),
                };
                // The refusal is what the caller must see if the repair cannot be made (a codex without
                // `config/read`, or no model configured either).
                let configured = match self.appserver.send_with_timeout(&config, timeout).await {
                    Ok(reply) => reply.config.model.filter(|model| !model.is_empty()),
                    Err(read_error) => {
                        tracing::warn!(thread = %thread_id, error = %read_error, "config/read failed; cannot name a model for the thread");
                        None
                    }
                };
                let Some(model) = configured else {
                    return Err(error);
                };
                tracing::warn!(thread = %thread_id, %model, "thread records no model; resuming it on the configured one");
                resume.model = Some(model);
                self.appserver
                    .send_on_with_timeout(&resume, timeout)
                    .await?
            }
            other => other?,
        };
        self.loaded_threads.note(generation, thread_id, reply.model);
        Ok(generation)
    }

    /// The model of a thread the live app-server has loaded, if it reported one.
    pub(super) fn loaded_thread_model(&self, thread_id: &str) -> Option<String> {
        let generation = self.appserver.generation()?;
        self.loaded_threads.model(generation, thread_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_remembers_its_threads_models_until_it_exits() {
        let loaded = LoadedThreads::default();
        loaded.note(1, "t", Some("m".into()));
        // A later note without a model (a fork's reply read elsewhere) keeps what is known.
        loaded.note(1, "t", None);
        assert!(loaded.contains(1, "t"));
        assert_eq!(loaded.model(1, "t").as_deref(), Some("m"));
        assert!(!loaded.contains(2, "t"));
        loaded.forget_generation(1);
        assert!(!loaded.contains(1, "t"));
    }

    #[test]
    fn only_the_missing_model_refusal_is_repaired() {
        let refusal = |message: &str| AppServerError::Rpc {
            method: "thread/resume".into(),
            code: -32600,
            message: message.into(),
            data: None,
        };
        assert!(is_missing_model(&refusal(
            "No models are available. Set `model` explicitly or check your model catalog configuration."
        )));
        assert!(!is_missing_model(&refusal(
            "thread t already has an active writer"
        )));
    }
}
