//! The end of a log file written by `tracing`'s formatter (no colours), parsed back into lines.
//!
//! A formatted line is `<RFC 3339 time> <LEVEL> <target>: <message and fields>`, with spans (when any) between
//! the level and the target. A physical line that does not start with a time continues the previous one (a
//! message with a newline in it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{LogLine, Origin, Severity};

/// Bytes read from the end of a file: enough for thousands of lines, small enough to answer in milliseconds
/// however large the file grew.
pub const MAX_TAIL_BYTES: u64 = 1024 * 1024;

/// Longest line returned from a file (continuations included).
const MAX_LINE_CHARS: usize = 8_000;

/// The last lines of `path` (at most [`MAX_TAIL_BYTES`] of it), oldest first. A missing file has no lines.
pub fn read_tail(path: &Path, origin: Origin) -> std::io::Result<Vec<LogLine>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(MAX_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.take(MAX_TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    // A read that starts mid-file starts mid-line: the first partial line is dropped.
    let text = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    Ok(parse(text, origin))
}

/// Parses formatted lines; text before the first parsable line is dropped.
pub fn parse(text: &str, origin: Origin) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = Vec::new();
    for raw in text.lines() {
        match parse_line(raw, origin) {
            Some(line) => lines.push(line),
            None => {
                if let Some(last) = lines.last_mut() {
                    if last.text.chars().count() < MAX_LINE_CHARS && !raw.trim().is_empty() {
                        last.text.push('\n');
                        last.text.push_str(raw);
                    }
                }
            }
        }
    }
    for line in &mut lines {
        if let Some((idx, _)) = line.text.char_indices().nth(MAX_LINE_CHARS) {
            line.text.truncate(idx);
        }
    }
    lines
}

/// One formatted line, or `None` when it does not start with a time and a level.
fn parse_line(raw: &str, origin: Origin) -> Option<LogLine> {
    let mut words = raw.splitn(2, char::is_whitespace);
    let stamp = words.next()?;
    let at_ms = crate::time::parse_iso8601_ms(stamp)?;
    let rest = words.next()?.trim_start();
    let (level, rest) = rest.split_once(char::is_whitespace)?;
    let severity = Severity::from_level_name(level)?;
    let mut rest = rest.trim_start();
    // `target: message`; spans, when present, come first as `name{fields}:`, so they are skipped.
    let (target, message) = loop {
        match rest.find(": ") {
            Some(idx) if rest[..idx].ends_with('}') => rest = &rest[idx + 2..],
            Some(idx) => break (&rest[..idx], &rest[idx + 2..]),
            None => break ("", rest),
        }
    };
    Some(LogLine {
        at_ms,
        severity,
        target: target.to_string(),
        text: message.to_string(),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_lines_parse_and_continuations_join_the_previous_line() {
        let text = "\
2026-11-26T08:11:47.123456Z  WARN codex_control_plane::engine::tracker: app-server exited; its turns end unknown generation=1 turns=1
second line of the same message
2026-11-26T08:11:48.000001Z DEBUG codex_app_server: stderr text generation=1
garbage that starts nothing
2026-11-26T08:11:49Z ERROR run{id=3}: codex_control_plane::server: failed error=boom
";
        let lines = parse(text, Origin::WorkerLogFile);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].severity, Severity::Warning);
        assert_eq!(lines[0].target, "codex_control_plane::engine::tracker");
        assert_eq!(
            lines[0].text,
            "app-server exited; its turns end unknown generation=1 turns=1\nsecond line of the same message"
        );
        assert_eq!(
            lines[0].at_ms,
            crate::time::parse_iso8601_ms("2026-11-26T08:11:47.123Z").unwrap_or(0)
        );
        assert_eq!(lines[1].severity, Severity::Debug);
        assert_eq!(lines[1].target, "codex_app_server");
        assert_eq!(lines[2].severity, Severity::Error);
        assert_eq!(lines[2].text, "failed error=boom");
        assert_eq!(lines[2].origin, Origin::WorkerLogFile);
    }

    #[test]
    fn a_missing_file_has_no_lines_and_a_long_file_is_read_from_a_line_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.log");
        assert!(read_tail(&path, Origin::ServerLogFile)
            .expect("missing is fine")
            .is_empty());
        let line = "2026-11-26T08:11:47Z  WARN t: x\n";
        let n_lines = usize::try_from(MAX_TAIL_BYTES).unwrap_or(0) / line.len() + 10;
        std::fs::write(&path, line.repeat(n_lines)).expect("write");
        let lines = read_tail(&path, Origin::ServerLogFile).expect("read");
        assert!(
            lines.len() < n_lines && lines.len() > 1000,
            "{}",
            lines.len()
        );
        assert!(lines.iter().all(|l| l.text == "x" && l.target == "t"));
    }
}
