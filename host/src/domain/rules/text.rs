//! The seed's Python `str` text rules, exact: `str.casefold`, `re`'s `\s` (`str.isspace`) and `\w`
//! (`str.isalnum() or "_"`).
//!
//! Rust's `to_lowercase`, `is_whitespace` and `is_alphanumeric` are different properties (for example `ß`
//! lowercases to itself but casefolds to `ss`, U+001C is space to Python only, and Devanagari vowel signs are
//! alphabetic to Rust but not `\w` to Python), so the dedup guard would disagree with the seed on which prompts
//! are the same. The tables are generated from CPython by `gen_text_tables.py` and follow the Unicode version
//! named in [`UNICODE_VERSION`].

pub use super::text_tables::UNICODE_VERSION;
use super::text_tables::{CASEFOLD, SPACE, WORD};

/// Python's `str.casefold` (full case folding, no context).
pub fn casefold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch.to_ascii_lowercase());
            continue;
        }
        match CASEFOLD.binary_search_by_key(&ch, |(from, _)| *from) {
            Ok(index) => out.push_str(CASEFOLD[index].1),
            Err(_) => out.push(ch),
        }
    }
    out
}

/// Whether `ch` is in one of the inclusive ranges.
fn in_ranges(ranges: &[(char, char)], ch: char) -> bool {
    ranges
        .binary_search_by(|(lo, hi)| {
            if *hi < ch {
                std::cmp::Ordering::Less
            } else if *lo > ch {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Python's `ch.isspace()`: what `re`'s `\s` and `str.strip()` treat as whitespace.
pub fn is_space(ch: char) -> bool {
    if ch.is_ascii() {
        // Python counts the ASCII separators U+001C..U+001F as whitespace too.
        return matches!(ch, '\t'..='\r' | '\x1c'..='\x1f' | ' ');
    }
    in_ranges(SPACE, ch)
}

/// Python's `re` `\w` on `str`: `ch.isalnum() or ch == "_"`.
pub fn is_word_char(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_alphanumeric() || ch == '_';
    }
    in_ranges(WORD, ch)
}

/// Python's `re.findall(r"\w+", text)`.
pub fn word_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::prompt::normalize_prompt;
    use crate::domain::rules::similarity::similarity;
    use serde_json::Value;

    /// Vectors computed by `gen_text_tables.py` with CPython.
    const VECTORS: &str = include_str!("text_vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("text_vectors.json is JSON")
    }

    fn text_of(value: &Value) -> &str {
        value.as_str().expect("a string field")
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(CASEFOLD.windows(2).all(|w| w[0].0 < w[1].0));
        for table in [WORD, SPACE] {
            assert!(table.iter().all(|(lo, hi)| lo <= hi));
            assert!(table.windows(2).all(|w| w[0].1 < w[1].0));
        }
    }

    #[test]
    fn casefold_tokens_and_normalisation_match_cpython() {
        let vectors = vectors();
        assert_eq!(vectors["unicode"], UNICODE_VERSION);
        let texts = vectors["texts"].as_array().expect("texts");
        assert!(texts.len() > 300);
        for vector in texts {
            let input = text_of(&vector["input"]);
            assert_eq!(
                casefold(input),
                text_of(&vector["casefold"]),
                "casefold of {input:?}"
            );
            assert_eq!(
                normalize_prompt(input),
                text_of(&vector["normalized"]),
                "normalisation of {input:?}"
            );
            let expected: Vec<&str> = vector["tokens"]
                .as_array()
                .expect("tokens")
                .iter()
                .map(text_of)
                .collect();
            assert_eq!(
                word_tokens(input).collect::<Vec<_>>(),
                expected,
                "tokens of {input:?}"
            );
        }
    }

    #[test]
    fn similarity_matches_cpython() {
        let vectors = vectors();
        for pair in vectors["pairs"].as_array().expect("pairs") {
            let (a, b) = (text_of(&pair["a"]), text_of(&pair["b"]));
            let expected = pair["similarity"].as_f64().expect("similarity");
            assert!(
                (similarity(a, b) - expected).abs() < 1e-12,
                "similarity of {a:?} / {b:?}: {} != {expected}",
                similarity(a, b)
            );
        }
    }

    #[test]
    fn the_seed_folds_what_lowercase_keeps_apart() {
        assert_eq!(normalize_prompt("Straße"), normalize_prompt("STRASSE"));
        // A Devanagari vowel sign is alphabetic to Rust but not `\w` to Python: it splits the word.
        assert_eq!(word_tokens("नमस्ते").collect::<Vec<_>>(), ["नमस", "त"]);
        assert!(is_space('\x1c') && !'\x1c'.is_whitespace());
    }
}
