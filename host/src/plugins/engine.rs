//! The one wasmtime `Engine`, its epoch ticker, and the on-disk cache of compiled components.
//!
//! Compiling a component takes tens of milliseconds; deserializing a cached artifact takes a
//! fraction of one. Artifacts are keyed by a SHA-256 over the host version, the engine's
//! compatibility hash (wasmtime version and every setting that affects code generation) and the
//! component bytes, so a changed plugin, engine setting or wasmtime upgrade never reuses a stale
//! artifact.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::PluginError;

/// Period of the epoch ticker. A call's wall-clock deadline is enforced to within one tick, and
/// the ticker thread wakes this often while a plugin call runs; 5 ms keeps both small.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How often an idle ticker checks whether its engine is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Plugin calls in flight in this process. The ticker only ticks while there are some: an idle
/// server must not wake 200 times a second for deadlines nobody has set.
static RUNNING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Tickers sleeping on [`TICKER_WAKE`] for want of calls (one per engine; tests make several): only
/// then does a call have to wake them. A call that finds them ticking costs two atomic operations, no
/// lock and no system call (a condition variable's notify is a futex system call whether or not
/// anyone waits).
static TICKERS_PARKED: AtomicUsize = AtomicUsize::new(0);

/// Where the ticker sleeps while no call runs.
static TICKER_WAKE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// Held for the duration of a plugin call (instantiation included): keeps the epoch ticking.
pub struct Ticking(());

/// Starts the epoch ticking for one call; it stops when the last [`Ticking`] is dropped.
pub fn ticking() -> Ticking {
    // SeqCst on both sides: either the ticker sees this call before it parks, or this call sees it parked
    // and wakes it under the lock the ticker holds from its check until it sleeps.
    if RUNNING_CALLS.fetch_add(1, Ordering::SeqCst) == 0
        && TICKERS_PARKED.load(Ordering::SeqCst) > 0
    {
        let (lock, wake) = &TICKER_WAKE;
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        wake.notify_all();
    }
    Ticking(())
}

impl Drop for Ticking {
    fn drop(&mut self) {
        RUNNING_CALLS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Extension of cached artifacts.
const ARTIFACT_EXTENSION: &str = "cwasm";

/// Most plugin instances alive at once (calls in flight plus warm instances). Instances come from
/// a pool of pre-reserved slots, which makes instantiation cheaper than mapping fresh memory for
/// every call; a call beyond this fails to instantiate (a typed error) instead of waiting. Calls
/// last microseconds and the server bounds its own concurrency far below this.
pub const MAX_LIVE_INSTANCES: u32 = 32;

/// Linear memory kept mapped in a pool slot between instances, in bytes: small plugins then reuse
/// warm pages (reset with a memset) instead of faulting in fresh ones on every call.
const KEEP_RESIDENT_BYTES: usize = 1024 * 1024;

/// Pool slots kept warm while unused, beyond the ones calls hold: past this, a call for a module without a warm
/// slot of its own takes over the least recently used warm slot instead of a cold one. Every slot a plugin has
/// used keeps [`KEEP_RESIDENT_BYTES`] resident, and with wasmtime's default (100) each module that ever ran kept
/// one: the MCP bench's 100k-row session ended with two to five such slots, 2-5 MB of its resident set, varying
/// with which plugins had run. Calls of one plugin still find their own slot warm.
const WARM_SPARE_SLOTS: u32 = 1;

/// Builds the engine: component model, fuel metering (a deterministic instruction budget), epoch
/// interruption (a wall-clock deadline, which also bounds time spent in host calls that fuel does
/// not count) and the pooling allocator sized for `max_memory_bytes` per memory. If the pool
/// cannot be reserved (e.g. a tight virtual memory limit), falls back to on-demand allocation.
/// Starts the ticker thread, which holds only a weak handle and so ends when the engine is
/// dropped, and ticks only while a call runs ([`ticking`]).
pub fn new_engine(max_memory_bytes: u64) -> Result<Engine, PluginError> {
    let engine = match Engine::new(&engine_config(Some(max_memory_bytes))) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "plugin instance pool unavailable; using on-demand allocation");
            Engine::new(&engine_config(None)).map_err(|e| PluginError::Engine {
                message: format!("{e:#}"),
            })?
        }
    };
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

/// The engine configuration, with a pool sized for `pool_memory_bytes` per memory when given.
fn engine_config(pool_memory_bytes: Option<u64>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    if let Some(memory_bytes) = pool_memory_bytes {
        let mut pool = PoolingAllocationConfig::new();
        // A Rust component has a handful of core instances, one or two memories and a few tables.
        pool.total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * 8)
            .total_memories(MAX_LIVE_INSTANCES * 2)
            .total_tables(MAX_LIVE_INSTANCES * 8)
            // Fiber stacks are only used by async calls, which the host does not make; the
            // default (1000 stacks) would cost milliseconds of start-up to reserve.
            .total_stacks(MAX_LIVE_INSTANCES)
            .max_memory_size(usize::try_from(memory_bytes).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .max_unused_warm_slots(WARM_SPARE_SLOTS)
            .table_keep_resident(64 * 1024);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Number of epoch ticks that covers `timeout_ms` (at least one full tick beyond it, because the
/// first tick may come at any moment after the deadline is set).
pub fn epoch_ticks(timeout_ms: u64) -> u64 {
    let tick_ms = EPOCH_TICK.as_millis().max(1) as u64;
    timeout_ms.div_ceil(tick_ms).saturating_add(1)
}

/// Spawns the ticker thread for `engine`.
fn start_epoch_ticker(engine: &Engine) -> Result<(), PluginError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".to_string())
        .spawn(move || loop {
            if RUNNING_CALLS.load(Ordering::SeqCst) == 0 {
                let (lock, wake) = &TICKER_WAKE;
                let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                TICKERS_PARKED.fetch_add(1, Ordering::SeqCst);
                while RUNNING_CALLS.load(Ordering::SeqCst) == 0 {
                    guard = match wake.wait_timeout(guard, IDLE_CHECK) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                    if weak.upgrade().is_none() {
                        TICKERS_PARKED.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
                TICKERS_PARKED.fetch_sub(1, Ordering::SeqCst);
            }
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine {
            message: format!("starting the epoch ticker: {e}"),
        })
}

/// Where a component came from on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from a cached artifact.
    Hit,
    /// Compiled, and the artifact written for next time.
    Miss,
    /// Compiled; the cache is unavailable (not writable), so nothing was stored.
    Uncached,
}

impl CacheOutcome {
    /// `"hit"`, `"miss"` or `"uncached"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Uncached => "uncached",
        }
    }
}

/// The on-disk artifact cache.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    /// Directory holding `<plugin id>-<key>.cwasm` files; created on first write.
    dir: PathBuf,
}

impl ArtifactCache {
    /// A cache in `dir`.
    pub fn new(dir: PathBuf) -> ArtifactCache {
        ArtifactCache { dir }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the component for `wasm`: from the cache when an artifact for exactly these bytes and
    /// this engine exists, otherwise by compiling (and then storing the artifact).
    pub fn load(
        &self,
        engine: &Engine,
        plugin_id: &str,
        plugin_version: &str,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), PluginError> {
        let path = self.artifact_path(engine, plugin_id, wasm);
        if path.is_file() {
            // SAFETY: `deserialize_file` trusts its input to be an artifact produced by
            // `Component::serialize` of a compatible engine, because it maps it as executable code.
            // The only files read here are ones this cache wrote: the name is derived from the
            // SHA-256 of the component bytes and the engine's compatibility hash, files are
            // written to a temporary name and renamed into place (so a crash never leaves a
            // truncated artifact under a valid name), and the directory belongs to the operator,
            // with the same trust as the binary itself. Wasmtime additionally checks the
            // artifact's header against this engine and rejects mismatches with an error.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    plugin = plugin_id,
                    path = %path.display(),
                    error = %format!("{e:#}"),
                    "cached plugin artifact unusable; recompiling"
                ),
            }
        }
        let component = Component::new(engine, wasm).map_err(|e| PluginError::Compile {
            plugin: plugin_id.to_string(),
            version: plugin_version.to_string(),
            message: format!("{e:#}"),
        })?;
        let outcome = match self.store(&path, &component) {
            Ok(()) => CacheOutcome::Miss,
            Err(message) => {
                tracing::warn!(
                    plugin = plugin_id,
                    path = %path.display(),
                    error = %message,
                    "could not cache compiled plugin; it will be compiled again next start"
                );
                CacheOutcome::Uncached
            }
        };
        Ok((component, outcome))
    }

    /// The artifact path for these bytes under this engine.
    fn artifact_path(&self, engine: &Engine, plugin_id: &str, wasm: &[u8]) -> PathBuf {
        let key = artifact_key(engine, wasm);
        self.dir
            .join(format!("{plugin_id}-{}.{ARTIFACT_EXTENSION}", &key[..32]))
    }

    /// Writes an artifact atomically (temporary file, then rename).
    fn store(&self, path: &Path, component: &Component) -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let temporary =
            path.with_extension(format!("{ARTIFACT_EXTENSION}.tmp{}", std::process::id()));
        std::fs::write(&temporary, &bytes)
            .map_err(|e| format!("writing {}: {e}", temporary.display()))?;
        std::fs::rename(&temporary, path).map_err(|e| {
            // Best effort: a leftover temporary file is harmless but untidy.
            let _ = std::fs::remove_file(&temporary);
            format!("renaming into {}: {e}", path.display())
        })
    }
}

/// Hex SHA-256 over (host version, engine compatibility hash, component bytes).
fn artifact_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.0.update([0]);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update([0]);
    hasher.0.update(ENGINE_FINGERPRINT);
    hasher.0.update(wasm);
    hex::encode(hasher.0.finalize())
}

/// Settings of ours that change the generated code (fuel and epoch instrumentation), spelled out
/// even though the compatibility hash covers them, so the key changes if `new_engine` does.
const ENGINE_FINGERPRINT: &[u8] = b"component-model;consume-fuel;epoch-interruption";

/// Adapts SHA-256 to `std::hash::Hasher` so wasmtime's `impl Hash` can feed it.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        // Only the SHA-256 digest is used; `finish` is required by the trait but never called.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ticks_cover_the_timeout() {
        // One extra tick because the first tick can come right after the deadline is set.
        assert_eq!(epoch_ticks(0), 1);
        assert_eq!(epoch_ticks(5), 2);
        assert_eq!(epoch_ticks(6), 3);
        assert_eq!(epoch_ticks(100), 21);
    }
}
