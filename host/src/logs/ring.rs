//! The in-memory ring of this process's WARN and ERROR lines, filled by a `tracing` layer.
//!
//! Only WARN and above are kept: they are what a diagnosis needs, and they are rare enough that a small ring
//! covers hours. The layer does its own formatting (message first, then `key=value` fields), so it does not
//! depend on the formatter's settings.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::{LogLine, Origin, Severity};

/// Lines kept; at most [`MAX_LINE_CHARS`] each, so the ring stays under a few megabytes.
pub const MAX_RING_LINES: usize = 1_000;
/// Longest line kept; a warning that carries a whole frame is cut (the frame is in the event journal).
pub const MAX_LINE_CHARS: usize = 4_000;

static RING: LazyLock<Mutex<VecDeque<LogLine>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(64)));

/// The `tracing` layer that copies WARN and ERROR events into the ring.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingLayer;

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        // tracing orders levels by verbosity: ERROR < WARN < INFO.
        if level > Level::WARN {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let severity = if level == Level::ERROR {
            Severity::Error
        } else {
            Severity::Warning
        };
        push(LogLine {
            at_ms: crate::time::now_ms(),
            severity,
            target: event.metadata().target().to_string(),
            text: visitor.finish(),
            origin: Origin::ThisProcess,
        });
    }
}

/// Adds a line, dropping the oldest past [`MAX_RING_LINES`].
pub fn push(mut line: LogLine) {
    if let Some((idx, _)) = line.text.char_indices().nth(MAX_LINE_CHARS) {
        line.text.truncate(idx);
    }
    let mut ring = RING.lock().unwrap_or_else(|p| p.into_inner());
    if ring.len() >= MAX_RING_LINES {
        ring.pop_front();
    }
    ring.push_back(line);
}

/// The lines kept, oldest first.
pub fn snapshot() -> Vec<LogLine> {
    RING.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.rest.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.rest,
            (false, false) => format!("{} {}", self.message, self.rest),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
        let _ = write!(self.rest, "{}={value:?}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_and_errors_are_kept_with_their_fields_and_info_is_not() {
        let subscriber = tracing_subscriber::registry().with(RingLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("ring-test: not kept");
            tracing::warn!(generation = 7, "ring-test: app-server exited");
            tracing::error!(error = "boom", "ring-test: failed");
        });
        let lines: Vec<LogLine> = snapshot()
            .into_iter()
            .filter(|l| l.text.starts_with("ring-test"))
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].severity, Severity::Warning);
        assert_eq!(lines[0].text, "ring-test: app-server exited generation=7");
        assert_eq!(lines[1].severity, Severity::Error);
        assert_eq!(lines[1].text, "ring-test: failed error=\"boom\"");
        assert_eq!(lines[1].origin, Origin::ThisProcess);
    }
}
