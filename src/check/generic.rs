//! Any `file:line:col: message` or `file:line: message` line (mypy, Ruff, flake8,
//! `go vet`, custom scripts…): the fallback, run on a command's output when no other parser
//! found anything in it. A leading `error:`, `warning:` or `note:` in the message sets the
//! severity (else `error`); a trailing `[code]` without spaces, or a leading `F401`-like
//! code, is the code.

use std::sync::LazyLock;

use regex::Regex;

use super::{number, Found, Severity, Sink};

static LOCATED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^\s:][^\s:]*):(\d+)(?::(\d+))?:\s+(.+)$").expect("regex"));
static SEVERITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(fatal error|error|warning|warn|note|info|hint)\s*:\s*(.*)$").expect("regex")
});
static LEADING_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Z]{1,4}[0-9]{2,5})\s+(.+)$").expect("regex"));
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*?)\s+\[([^\s\[\]]+)\]$").expect("regex"));

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    for line in text.lines() {
        let line = line.trim_end();
        let Some(c) = LOCATED.captures(line) else {
            continue;
        };
        let file = &c[1];
        // `12:30:01: started` is a time, not a place.
        if !file.chars().any(|ch| ch.is_ascii_alphabetic()) || file.contains("://") {
            continue;
        }
        let mut message = &c[4];
        let mut severity = Severity::Error;
        if let Some(s) = SEVERITY.captures(message) {
            severity = match s[1].to_ascii_lowercase().as_str() {
                "warning" | "warn" => Severity::Warning,
                "note" | "info" | "hint" => Severity::Note,
                _ => Severity::Error,
            };
            message = s.get(2).map_or("", |m| m.as_str());
        }
        let mut code = None;
        if let Some(k) = CODE.captures(message) {
            code = k.get(2).map(|m| m.as_str());
            message = k.get(1).map_or("", |m| m.as_str());
        } else if let Some(k) = LEADING_CODE.captures(message) {
            code = k.get(1).map(|m| m.as_str());
            message = k.get(2).map_or("", |m| m.as_str());
        }
        sink.add(Found {
            file: Some(file),
            line: number(&c[2]),
            column: c.get(3).and_then(|m| number(m.as_str())),
            severity: Some(severity),
            code,
            message,
            test: None,
        });
    }
}
