//! Trusted native plugins: shared libraries loaded with `libloading`, only when the operator sets
//! `plugins.allow_native = true`.
//!
//! A native plugin runs in the server's process with the server's rights: no fuel, deadline or
//! memory cap applies, and a crash in it is a crash of the server. It is the exception for
//! operators who trust the code; the default is WASM only.
//!
//! # ABI (version 1)
//!
//! The library exports three C functions:
//!
//! ```c
//! uint32_t ccp_plugin_abi_version(void);                 /* returns 1 */
//! int32_t  ccp_plugin_call(const uint8_t *method, size_t method_len,
//!                          const uint8_t *input, size_t input_len,
//!                          uint8_t **output, size_t *output_len);
//! void     ccp_plugin_free(uint8_t *output, size_t output_len);
//! ```
//!
//! `method` is the WIT function name (`check-action`, `on-interaction`, `describe`, `start`,
//! `on-event`, `analyze`, `plan`). `input` is a JSON array of the arguments and `output` the JSON
//! result, both in the serde encoding of the types in `codex_control_plane::plugins::types`
//! (e.g. `"Allow"`, `{"Deny":{"rule":"r","reason":"why"}}`), or of the 0.1 types when the manifest
//! declares `wit = "0.1.x"` (`{"Deny":"reason"}`; `plugins::loaded` converts them like a 0.1
//! component's). `ccp_plugin_call` returns 0 on success; otherwise
//! `output` holds a UTF-8 error message. The host hands every `output` back to `ccp_plugin_free`.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{CallErrorKind, PluginError};
use super::limits::MAX_OUTPUT_BYTES;

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

/// `ccp_plugin_abi_version`.
type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `ccp_plugin_call`.
type CallFn = unsafe extern "C" fn(
    method: *const u8,
    method_len: usize,
    input: *const u8,
    input_len: usize,
    output: *mut *mut u8,
    output_len: *mut usize,
) -> i32;
/// `ccp_plugin_free`.
type FreeFn = unsafe extern "C" fn(output: *mut u8, output_len: usize);

/// A loaded native plugin.
pub struct NativePlugin {
    /// Plugin id.
    id: String,
    /// Plugin version.
    version: String,
    /// `ccp_plugin_call`, valid while `_library` is loaded.
    call: CallFn,
    /// `ccp_plugin_free`, valid while `_library` is loaded.
    free: FreeFn,
    /// Keeps the library mapped; declared last so the function pointers are never used after.
    _library: libloading::Library,
}

impl NativePlugin {
    /// Loads the library at `path` and checks its ABI version.
    pub fn load(path: &Path, id: &str, version: &str) -> Result<NativePlugin, PluginError> {
        let refused = |message: String| PluginError::Native {
            plugin: id.to_string(),
            message,
        };
        // SAFETY: loading a library runs its initialisers with the server's rights. This is only
        // reached when the operator set `plugins.allow_native = true`, declaring the libraries
        // in `plugins.dirs` trusted; that trust is the contract of native plugins.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| refused(format!("loading {}: {e}", path.display())))?;
        // SAFETY: the symbol types are those of the documented ABI; a library exporting these names
        // with other signatures breaks the trust contract above.
        let (abi_version, call, free) = unsafe {
            let abi_version = *library
                .get::<AbiVersionFn>(b"ccp_plugin_abi_version\0")
                .map_err(|e| refused(format!("missing ccp_plugin_abi_version: {e}")))?;
            let call = *library
                .get::<CallFn>(b"ccp_plugin_call\0")
                .map_err(|e| refused(format!("missing ccp_plugin_call: {e}")))?;
            let free = *library
                .get::<FreeFn>(b"ccp_plugin_free\0")
                .map_err(|e| refused(format!("missing ccp_plugin_free: {e}")))?;
            (abi_version, call, free)
        };
        // SAFETY: as above; the function takes no arguments.
        let found = unsafe { abi_version() };
        if found != ABI_VERSION {
            return Err(refused(format!(
                "native ABI version {found}, but this host speaks {ABI_VERSION}"
            )));
        }
        Ok(NativePlugin {
            id: id.to_string(),
            version: version.to_string(),
            call,
            free,
            _library: library,
        })
    }

    /// Calls `method` with `args` (a tuple, encoded as a JSON array) and decodes the result.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, PluginError> {
        let input = serde_json::to_vec(args).map_err(|e| {
            self.error(CallErrorKind::InvalidOutput {
                message: format!("encoding arguments: {e}"),
            })
        })?;
        let mut output: *mut u8 = std::ptr::null_mut();
        let mut output_len: usize = 0;
        // SAFETY: the pointers and lengths describe live buffers for the duration of the call;
        // the ABI requires the library to set `output`/`output_len` to a buffer it owns.
        let status = unsafe {
            (self.call)(
                method.as_ptr(),
                method.len(),
                input.as_ptr(),
                input.len(),
                &mut output,
                &mut output_len,
            )
        };
        let bytes = if output.is_null() {
            Vec::new()
        } else {
            // SAFETY: per the ABI, `output` points to `output_len` initialised bytes owned by the
            // library until handed back to `ccp_plugin_free`, which happens right after the copy.
            let copy = unsafe { std::slice::from_raw_parts(output, output_len) }.to_vec();
            // SAFETY: returning the library's own buffer, once, with its length.
            unsafe { (self.free)(output, output_len) };
            copy
        };
        if status != 0 {
            return Err(self.error(CallErrorKind::Trap {
                message: format!(
                    "native call {method} failed ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }));
        }
        if bytes.len() as u64 > MAX_OUTPUT_BYTES {
            return Err(self.error(CallErrorKind::OutputTooLarge {
                size_bytes: bytes.len() as u64,
                limit_bytes: MAX_OUTPUT_BYTES,
            }));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            self.error(CallErrorKind::InvalidOutput {
                message: format!("native call {method} returned invalid JSON: {e}"),
            })
        })
    }

    /// A call error tagged with this plugin.
    fn error(&self, kind: CallErrorKind) -> PluginError {
        let error = PluginError::Call {
            plugin: self.id.clone(),
            version: self.version.clone(),
            kind,
        };
        tracing::warn!(%error, "native plugin call failed");
        error
    }
}
