//! Quoting for POSIX shells: the hook command Codex runs and the `claude mcp add` line `admin` prints.

/// `text` as one shell word: as is when it holds only characters no shell treats specially, else in single
/// quotes (an embedded `'` closed, escaped and reopened). Empty text is `''`.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_the_rest_is_single_quoted() {
        assert_eq!(shell_quote("/opt/bin/x"), "/opt/bin/x");
        assert_eq!(shell_quote("K=/a b"), "'K=/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
