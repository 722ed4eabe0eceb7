//! A native policy plugin for tests: denies when the request's model is `native-deny`, fails when
//! it is `native-fail`, allows otherwise. Speaks ABI version 1 of `plugins::native`.

use serde_json::Value;

/// The ABI version this library implements.
#[unsafe(no_mangle)]
pub extern "C" fn ccp_plugin_abi_version() -> u32 {
    1
}

/// Dispatches one call; see the host's `plugins::native` module for the contract.
///
/// # Safety
/// `method`/`input` must point to `*_len` readable bytes and `output`/`output_len` must be
/// writable, as the host guarantees.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ccp_plugin_call(
    method: *const u8,
    method_len: usize,
    input: *const u8,
    input_len: usize,
    output: *mut *mut u8,
    output_len: *mut usize,
) -> i32 {
    // SAFETY: the host passes valid buffers for the duration of the call.
    let (method, input) = unsafe {
        (
            std::slice::from_raw_parts(method, method_len),
            std::slice::from_raw_parts(input, input_len),
        )
    };
    let (status, text) = match handle(method, input) {
        Ok(json) => (0, json),
        Err(message) => (1, message),
    };
    let bytes: Box<[u8]> = text.into_bytes().into_boxed_slice();
    // SAFETY: the host provides writable out-pointers; it hands the buffer back to
    // `ccp_plugin_free` with this length.
    unsafe {
        *output_len = bytes.len();
        *output = Box::into_raw(bytes).cast::<u8>();
    }
    status
}

/// Frees a buffer returned by `ccp_plugin_call`.
///
/// # Safety
/// `output`/`output_len` must come from one `ccp_plugin_call`, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ccp_plugin_free(output: *mut u8, output_len: usize) {
    if !output.is_null() {
        // SAFETY: rebuilds the boxed slice created in `ccp_plugin_call`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(output, output_len)) });
    }
}

/// The plugin's logic on decoded JSON.
fn handle(method: &[u8], input: &[u8]) -> Result<String, String> {
    let args: Value = serde_json::from_slice(input).map_err(|e| e.to_string())?;
    match method {
        b"check-action" => {
            let model = args[0]["settings"]["model"].as_str().unwrap_or("");
            match model {
                "native-deny" => Ok(r#"{"Deny":"native says no"}"#.to_string()),
                "native-fail" => Err("native plugin failed on purpose".to_string()),
                _ => Ok(r#""Allow""#.to_string()),
            }
        }
        b"on-interaction" => Ok("null".to_string()),
        other => Err(format!(
            "unsupported method {}",
            String::from_utf8_lossy(other)
        )),
    }
}
