//! Prompt normalisation and the dedup basis text (seed §f "Dedup").

use unicode_normalization::UnicodeNormalization;

use super::text::{casefold, is_space};

/// Normalises a prompt for hashing and comparison exactly as the seed does: NFKC, then CRLF/CR to LF, then every
/// run of Python whitespace (`re` `\s+`) to one space, then strip, then Python's `str.casefold`.
pub fn normalize_prompt(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    let lf = nfkc.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(lf.len());
    let mut pending_space = false;
    for ch in lf.chars() {
        if is_space(ch) {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(ch);
    }
    casefold(&out)
}

pub use super::canonical::sha256_hex;

/// The hash stored for a normalised prompt.
pub fn prompt_hash(normalized: &str) -> String {
    sha256_hex(normalized)
}

/// What the dedup guard compares for one request, before normalisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasisInput<'a> {
    /// The prompt.
    pub message: &'a str,
    /// For execute_plan: the latest completed plan, when the caller knows it.
    pub latest_plan: Option<&'a str>,
    /// Hash of the output schema, when present.
    pub output_schema_hash: Option<&'a str>,
    /// Hash of the input items, when present.
    pub input_items_hash: Option<&'a str>,
}

/// The seed's basis text: message, `\n\n[latest completed plan]\n<plan>` for execute_plan, then
/// `\noutput_schema:<hash>` and `\ninput_items:<hash>` when present.
pub fn basis_text(input: &BasisInput<'_>) -> String {
    let mut out = input.message.to_string();
    if let Some(plan) = input.latest_plan {
        out.push_str("\n\n[latest completed plan]\n");
        out.push_str(plan);
    }
    if let Some(hash) = input.output_schema_hash {
        out.push_str("\noutput_schema:");
        out.push_str(hash);
    }
    if let Some(hash) = input.input_items_hash {
        out.push_str("\ninput_items:");
        out.push_str(hash);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_steps_apply_in_order() {
        let cases: &[(&str, &str)] = &[
            // Whitespace runs (including CRLF and tabs) collapse to one space; ends are trimmed.
            ("  Hello\r\n\tWorld  ", "hello world"),
            // NFKC folds compatibility forms: full-width letters and the "ﬁ" ligature.
            ("ＡＢＣ ﬁle", "abc file"),
            // Python's casefold, including non-Latin scripts and full folds such as ß -> ss.
            ("ПРИВЕТ Мир", "привет мир"),
            ("Straße", "strasse"),
            // U+001C..U+001F are whitespace to Python.
            ("a\x1cb", "a b"),
            // A lone CR is a line break too.
            ("a\rb", "a b"),
            // Non-breaking and ideographic spaces are whitespace after NFKC.
            ("a\u{00a0}\u{3000}b", "a b"),
            ("", ""),
            ("   ", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_prompt(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn hash_is_sha256_hex_of_the_normalised_text() {
        assert_eq!(
            prompt_hash(&normalize_prompt("  ABC ")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn basis_text_appends_plan_and_hashes() {
        let text = basis_text(&BasisInput {
            message: "Implement the plan.",
            latest_plan: Some("1. do it"),
            output_schema_hash: Some("abc"),
            input_items_hash: Some("def"),
        });
        assert_eq!(
            text,
            "Implement the plan.\n\n[latest completed plan]\n1. do it\noutput_schema:abc\ninput_items:def"
        );
        assert_eq!(
            basis_text(&BasisInput {
                message: "m",
                ..Default::default()
            }),
            "m"
        );
    }
}
