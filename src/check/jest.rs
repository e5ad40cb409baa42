//! `jest --json` and Vitest's `json` reporter (the same shape): one JSON object,
//! `testResults` with one entry a test file (`name`, its absolute path; `status`; `message`)
//! and its `assertionResults` (`fullName`, `status`, `failureMessages`, and `location` with
//! `--testLocationInResults` or `includeTaskLocation`). A failed test is placed at the first
//! stack frame of its failure in its own file (`at Object.toBe (/…/sum.test.js:5:23)`), else
//! at its `location`. A file that failed without a failed test (it did not run: a missing
//! module, a syntax error) is one error with its `message`.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{number, strip_ansi, Found, Sink};

#[derive(Deserialize)]
struct Report {
    #[serde(rename = "testResults", default)]
    test_results: Vec<FileResult>,
}

#[derive(Deserialize)]
struct FileResult {
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(rename = "assertionResults", default)]
    assertion_results: Vec<Assertion>,
}

#[derive(Deserialize)]
struct Assertion {
    #[serde(rename = "fullName", default)]
    full_name: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "failureMessages", default)]
    failure_messages: Vec<String>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Location {
    line: u32,
    column: u32,
}

static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*at (?:.*? \()?((?:file://)?[^\s()]+?):(\d+):(\d+)\)?$").expect("regex")
});

/// The most lines of a failure message kept (its stack is dropped).
const MESSAGE_LINES: usize = 20;

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let trimmed = text.trim();
    let candidates = std::iter::once(trimmed).chain(
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with('{') && l.contains("\"testResults\"")),
    );
    for candidate in candidates {
        if !candidate.starts_with('{') {
            continue;
        }
        let Ok(report) = serde_json::from_str::<Report>(candidate) else {
            continue;
        };
        for file in &report.test_results {
            let own = sink.normalise(&file.name);
            let mut failed = 0;
            for assertion in file
                .assertion_results
                .iter()
                .filter(|a| a.status == "failed")
            {
                failed += 1;
                let failure = assertion
                    .failure_messages
                    .first()
                    .map(|m| strip_ansi(m).into_owned())
                    .unwrap_or_default();
                let (line, column) = frame_in(&failure, own.as_deref(), sink)
                    .or(assertion.location.as_ref().map(|l| (l.line, l.column)))
                    .unzip();
                let message = message_of(&failure, &assertion.full_name);
                sink.add(Found {
                    file: Some(&file.name),
                    line,
                    column,
                    message: &message,
                    test: Some(&assertion.full_name),
                    ..Found::default()
                });
            }
            if failed == 0 && file.status == "failed" {
                let text = strip_ansi(&file.message).into_owned();
                let (line, column) = frame_in(&text, own.as_deref(), sink).unzip();
                let message = message_of(&text, "the test file failed to run");
                sink.add(Found {
                    file: Some(&file.name),
                    line,
                    column,
                    message: &message,
                    ..Found::default()
                });
            }
        }
        return;
    }
}

/// The line and column of the first stack frame in `file`.
fn frame_in(text: &str, file: Option<&str>, sink: &Sink<'_>) -> Option<(u32, u32)> {
    let file = file?;
    text.lines().find_map(|line| {
        let c = FRAME.captures(line)?;
        (sink.normalise(&c[1]).as_deref() == Some(file))
            .then(|| Some((number(&c[2])?, number(&c[3])?)))?
    })
}

/// A failure's message: its lines up to the stack (`at …`) and the code frame, without the
/// `●` heading, at most [`MESSAGE_LINES`].
fn message_of(text: &str, fallback: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("at "))
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('●')
                && !l.starts_with('>')
                && !l.starts_with('|')
                && l.split_once(" |")
                    .is_none_or(|(n, _)| n.trim().parse::<u32>().is_err())
        })
        .take(MESSAGE_LINES)
        .collect();
    if lines.is_empty() {
        fallback.to_string()
    } else {
        lines.join("\n")
    }
}
