//! The `pattern` keyword: ECMA-262 patterns (what JSON Schema specifies) run on the `regex` crate.
//!
//! Patterns are unanchored (`"ab"` matches `"xaby"`), as JSON Schema says. Where the two dialects read the same
//! text differently, the pattern is rewritten to the ECMA-262 meaning before compiling: `\d` and `\w` (and
//! `\D`, `\W`) are ASCII-only, `.` does not match line terminators (`\n`, `\r`, U+2028, U+2029), and `[`, `&`,
//! `~` and a doubled `-` inside a class are literals rather than nested classes or set operations. Constructs
//! the `regex` crate lacks (lookaround, backreferences) fail to compile, which the catalog test turns into a
//! build failure instead of a silently different check.
//!
//! Each pattern is compiled once per process and cached; the cache only ever holds the patterns of the
//! built-in tool specs, so it stays small.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use regex::Regex;

/// A `pattern` the `regex` crate cannot compile, even after the ECMA-262 rewrite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written in the schema.
    pub pattern: String,
    /// Why it does not compile.
    pub reason: String,
}

/// True when `text` contains a match of `pattern` (unanchored, ECMA-262 meaning).
pub fn is_match(pattern: &str, text: &str) -> Result<bool, PatternError> {
    Ok(compiled(pattern)?.is_match(text))
}

/// The compiled form of `pattern`, from the process-wide cache.
pub fn compiled(pattern: &str) -> Result<Arc<Regex>, PatternError> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked while holding it; the map is still consistent
    // (entries are inserted whole), so keep using it rather than failing every later call.
    if let Some(regex) = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return Ok(Arc::clone(regex));
    }
    let regex = Regex::new(&to_rust_syntax(pattern)).map_err(|err| PatternError {
        pattern: pattern.to_string(),
        reason: err.to_string(),
    })?;
    let mut map = cache.write().unwrap_or_else(PoisonError::into_inner);
    Ok(Arc::clone(
        map.entry(pattern.to_string())
            .or_insert_with(|| Arc::new(regex)),
    ))
}

/// Rewrites the constructs whose meaning differs between ECMA-262 and the `regex` crate (see the module docs).
fn to_rust_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut previous = None;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some(escaped) => {
                    out.push('\\');
                    out.push(escaped);
                }
                // A trailing backslash is invalid in both dialects; keep it so compiling reports it.
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                previous = Some('[');
                continue;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && previous == Some('-') => out.push_str("\\-"),
            '.' if !in_class => out.push_str("[^\\n\\r\\x{2028}\\x{2029}]"),
            _ => out.push(c),
        }
        previous = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn matches(pattern: &str, text: &str) -> bool {
        match is_match(pattern, text) {
            Ok(matched) => matched,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn patterns_are_unanchored() {
        assert!(matches("ab", "xaby"));
        assert!(!matches("^ab$", "xaby"));
    }

    #[test]
    fn class_escapes_and_dot_keep_their_ecma_meaning() {
        assert!(matches(r"^\d+$", "0123"));
        assert!(
            !matches(r"^\d+$", "٣"),
            "Arabic-Indic digits are not \\d in ECMA-262"
        );
        assert!(!matches(r"^\w+$", "é"));
        assert!(matches(r"^\W$", "é"));
        assert!(matches(r"^[\d\w]+$", "a1_"));
        assert!(!matches("^a.b$", "a\nb"));
        assert!(!matches("^a.b$", "a\u{2028}b"));
        assert!(matches("^a.b$", "a-b"));
        assert!(matches("^[.]$", "."));
        assert!(!matches("^[.]$", "x"));
    }

    #[test]
    fn class_punctuation_is_literal() {
        assert!(matches("^[a[]+$", "a[a"));
        assert!(matches("^[a&&b]+$", "a&b"));
        assert!(matches("^[~~]$", "~"));
        assert!(
            matches("^[+--]$", ","),
            "a range from + to -, not a set difference"
        );
        assert!(matches(r"^\[x\]$", "[x]"));
    }

    #[test]
    fn unsupported_constructs_are_errors_not_different_checks() {
        assert!(is_match("a(?=b)", "ab").is_err());
        assert!(is_match(r"(a)\1", "aa").is_err());
        assert!(is_match("(", "").is_err());
    }
}
