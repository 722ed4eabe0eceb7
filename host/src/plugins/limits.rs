//! Per-call budgets: fuel, wall-clock deadline, memory cap and output cap.

use std::fmt::{self, Debug, Write as _};

use wasmtime::ResourceLimiter;

use super::manifest::ManifestLimits;
use crate::config::PluginsConfig;

/// Largest result a plugin call may return, in bytes (measured as the length of its `Debug`
/// rendering, a slight over-estimate of the payload). Results are decisions, steps and findings:
/// far smaller than this. Lifting the result already copied it into host memory, which the guest's
/// own memory cap bounds; this cap keeps the host from storing or forwarding something that large.
pub const MAX_OUTPUT_BYTES: u64 = 1024 * 1024;

/// Most table elements an instance may have. Rust components use a few hundred; the cap stops a
/// guest from growing tables as a way around the memory cap.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The budgets of one plugin's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Fuel per call (instantiation included).
    pub fuel: u64,
    /// Wall-clock deadline per call, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory cap, in bytes, summed over the instance's memories.
    pub memory_bytes: u64,
}

impl CallLimits {
    /// The manifest's requests, each capped by the host configuration (a manifest may ask for
    /// less than the configured budget, never more).
    pub fn resolve(config: &PluginsConfig, requested: &ManifestLimits) -> CallLimits {
        let pick = |asked: Option<u64>, ceiling: u64| asked.map_or(ceiling, |v| v.min(ceiling));
        CallLimits {
            fuel: pick(requested.fuel, config.default_fuel),
            timeout_ms: pick(requested.timeout_ms, config.default_timeout_ms),
            memory_bytes: pick(requested.memory_bytes, config.default_memory_bytes),
        }
    }
}

/// Resource limiter of one store: caps total linear memory and table sizes, and remembers
/// whether the memory cap was hit so the resulting trap can be reported as a memory error.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// The cap, in bytes.
    limit_bytes: u64,
    /// Bytes currently reserved by all memories of the store.
    used_bytes: u64,
    /// Set when a growth was refused.
    hit: bool,
}

impl MemoryLimiter {
    /// A limiter with this cap.
    pub fn new(limit_bytes: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit_bytes,
            used_bytes: 0,
            hit: false,
        }
    }

    /// Whether a growth was refused.
    pub fn hit(&self) -> bool {
        self.hit
    }

    /// The cap, in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let total = self.used_bytes.saturating_add(growth);
        if total > self.limit_bytes {
            self.hit = true;
            // Trap rather than return -1 from memory.grow: Rust guests abort on allocation failure
            // anyway, and a trap is reported at the point of the offence.
            wasmtime::bail!(
                "memory cap of {} bytes exceeded (wanted {total})",
                self.limit_bytes
            );
        }
        self.used_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// `Some(size)` when `value` renders to more than `limit` bytes. Nothing is allocated, and
/// rendering stops at the first piece that goes past the limit, so `size` is a lower bound.
pub fn oversized<T: Debug>(value: &T, limit: u64) -> Option<u64> {
    let mut counter = ByteCounter { count: 0, limit };
    match write!(counter, "{value:?}") {
        Ok(()) => None,
        Err(fmt::Error) => Some(counter.count),
    }
}

/// A `fmt::Write` that only counts, failing once past its limit.
struct ByteCounter {
    /// Bytes seen so far.
    count: u64,
    /// Where counting stops.
    limit: u64,
}

impl fmt::Write for ByteCounter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.count = self.count.saturating_add(text.len() as u64);
        if self.count > self.limit {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_limits_are_capped_by_config() {
        // A manifest may lower a budget but never raise it.
        let config = PluginsConfig::default();
        let asked = ManifestLimits {
            fuel: Some(config.default_fuel * 10),
            timeout_ms: Some(10),
            memory_bytes: None,
        };
        let limits = CallLimits::resolve(&config, &asked);
        assert_eq!(limits.fuel, config.default_fuel);
        assert_eq!(limits.timeout_ms, 10);
        assert_eq!(limits.memory_bytes, config.default_memory_bytes);
    }

    #[test]
    fn memory_limiter_counts_all_growth() {
        // Two growths that fit separately but not together: the second is refused.
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).expect("fits"));
        assert!(limiter.memory_growing(0, 60, None).is_err());
        assert!(limiter.hit());
    }

    #[test]
    fn oversized_stops_early() {
        // Small values pass; a large one is reported, and rendering stops after the piece that
        // crossed the limit (the second string is never rendered).
        assert_eq!(oversized(&"abc", 10), None);
        let big = vec!["x".repeat(1000), "y".repeat(1000)];
        let size = oversized(&big, 10).expect("too large");
        assert!(size > 10 && size < 2000, "{size}");
    }
}
