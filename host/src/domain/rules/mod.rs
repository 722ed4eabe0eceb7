//! Pure domain rules the store and the tools share: no I/O, no clock, no SQL.
//!
//! - [`prompt`]: prompt normalisation, hashing and the dedup basis text.
//! - [`lcs`]: bit-parallel longest common subsequence, the similarity pass's tight upper bound.
//! - [`similarity`]: a faithful port of Python's `difflib.SequenceMatcher.ratio` and the seed's similarity.
//! - [`text`]: Python's `str.casefold`, `\s` and `\w`, exact, from tables generated with CPython.
//! - [`dedup`]: the active duplicate-prompt guard over candidate rows.
//! - [`output_schema`]: strict `output_schema` validation and its hash.
//! - [`status`]: status sets, allowed transitions, next actions, poll hints, retry backoff, token bands.
//! - [`canonical`]: canonical JSON, request fingerprints and the fields that differ between two requests.
//! - [`interactions`]: pending-interaction kinds and their default (auto-decline) replies.
//! - [`redact`]: secret redaction (keys and text) for everything journaled or returned.
//! - [`agent_safe`]: the diagnostics redaction: secrets plus absolute paths (`[redacted-path:<name>:<hash10>]`).
//! - [`capabilities`]: runtime capabilities: redacted summaries of app-server's inventory, method outcomes.
//! - [`repairs`]: the seed's repair action names, their aliases and which need `force`.
//! - [`summary`]: the remote chat summarizer's input: which messages, redacted and chunked, and its prompts.

pub mod agent_safe;
pub mod canonical;
pub mod capabilities;
pub mod dedup;
pub mod interactions;
pub mod lcs;
pub mod output_schema;
pub mod prompt;
pub mod redact;
pub mod repairs;
pub mod shell;
pub mod similarity;
pub mod status;
pub mod summary;
pub mod text;
mod text_tables;
