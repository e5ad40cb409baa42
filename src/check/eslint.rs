//! `eslint -f json`: an array with one result a file (`filePath`, absolute), each with its
//! `messages` (`ruleId`, `severity` 1 for a warning and 2 for an error, `message`, `line`,
//! `column`; `fatal` for a parsing error). `-f json-with-metadata` wraps the same array in
//! `{"results": […], "metadata": …}`. The JSON is one line; other lines (a package manager's
//! banner) are skipped.

use serde::Deserialize;

use super::{Found, Severity, Sink};

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
