//! `eslint -f json`: an array with one result a file (`filePath`, absolute), each with its
//! `messages` (`ruleId`, `severity` 1 for a warning and 2 for an error, `message`, `line`,
//! `column`; `fatal` for a parsing error). `-f json-with-metadata` wraps the same array in
//! `{"results": […], "metadata": …}`. The JSON is one line; other lines (a package manager's
//! banner) are skipped. And the default `stylish` formatter: a file's path on a line of its
//! own (absolute), then one indented line a problem, `  4:7  error  'unused' is assigned a
//! value but never used  no-unused-vars` (the rule after two spaces or more; none for a
//! parsing error), up to a blank line.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{number, strip_ansi, Found, Severity, Sink};

#[derive(Deserialize)]
struct FileResult {
    #[serde(rename = "filePath", default)]
    file_path: String,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "ruleId", default)]
    rule_id: Option<String>,
    #[serde(default)]
    severity: u8,
    #[serde(default)]
    message: String,
    #[serde(default)]
    line: Option<u32>,
    #[serde(default)]
    column: Option<u32>,
    #[serde(default)]
    fatal: Option<bool>,
}

#[derive(Deserialize)]
struct WithMetadata {
    results: Vec<FileResult>,
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let trimmed = text.trim();
    let candidates = std::iter::once(trimmed).chain(
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("[{") || l.starts_with("{\"results\"")),
    );
    for candidate in candidates {
        let results = match candidate.chars().next() {
            Some('[') => serde_json::from_str::<Vec<FileResult>>(candidate).ok(),
            Some('{') => serde_json::from_str::<WithMetadata>(candidate)
                .ok()
                .map(|w| w.results),
            _ => None,
        };
        let Some(results) = results else {
            continue;
        };
        for result in &results {
            for message in &result.messages {
                let severity = if message.fatal == Some(true) || message.severity >= 2 {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                sink.add(Found {
                    file: Some(&result.file_path),
                    line: message.line,
                    column: message.column,
                    severity: Some(severity),
                    code: message.rule_id.as_deref(),
                    message: &message.message,
                    test: None,
                });
            }
        }
        return;
    }
}

static STYLISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+(\d+):(\d+)\s+(error|warning)\s{2,}(.+?)(?:\s{2,}(\S+))?$").expect("regex")
});

/// A problem line of the `stylish` formatter (trimmed).
pub(super) fn looks_like_stylish(line: &str) -> bool {
    STYLISH.is_match(&format!(" {line}")) || line.starts_with("✖ ") && line.contains(" problem")
}

pub(super) fn parse_stylish(text: &str, sink: &mut Sink<'_>) {
    let mut file: Option<String> = None;
    for line in text.lines() {
        let line = strip_ansi(line);
        let line = line.trim_end();
        if line.is_empty() {
            file = None;
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            file = (!line.starts_with('✖') && !line.starts_with('>') && !line.contains("  "))
                .then(|| line.to_string());
            continue;
        }
        let (Some(path), Some(c)) = (&file, STYLISH.captures(line)) else {
            continue;
        };
        let severity = if &c[3] == "error" {
            Severity::Error
        } else {
            Severity::Warning
        };
        sink.add(Found {
            file: Some(path),
            line: number(&c[1]),
            column: number(&c[2]),
            severity: Some(severity),
            code: c.get(5).map(|m| m.as_str()),
            message: &c[4],
            test: None,
        });
    }
}
