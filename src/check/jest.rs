//! Jest's and Vitest's default reporters (below), and `jest --json` and Vitest's `json`
//! reporter (the same shape): one JSON object,
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
    #[serde(rename = "ancestorTitles", default)]
    ancestor_titles: Vec<String>,
    #[serde(default)]
    title: Option<String>,
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
                // Jest's matchers fail with `Error: expect(…)`, shown without the `Error: `.
                let message = match message.strip_prefix("Error: ") {
                    Some(rest) if rest.starts_with("expect(") => rest.to_string(),
                    _ => message,
                };
                let name = test_name(assertion, sink.tool);
                sink.add(Found {
                    file: Some(&file.name),
                    line,
                    column,
                    message: &message,
                    test: Some(&name),
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

/// A test's name as the default reporters show it: its `describe` blocks and its title joined
/// by ` › ` (Jest) or ` > ` (Vitest), so that the JSON and the human report name it alike.
fn test_name(assertion: &Assertion, tool: &str) -> String {
    let Some(title) = &assertion.title else {
        return assertion.full_name.clone();
    };
    let separator = if tool == "vitest" { " > " } else { " › " };
    let mut parts: Vec<&str> = assertion
        .ancestor_titles
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    parts.push(title);
    parts.join(separator)
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

/// Jest's `FAIL <file>` and Vitest's ` FAIL  <file> > <test>` lines, and Jest's `●` titles.
pub(super) fn looks_like_human(line: &str) -> bool {
    (line.starts_with("FAIL ") && !line.contains('\t'))
        || line.starts_with("● ")
        || line.starts_with("Test Suites: ")
        || line.starts_with("❯ ") && line.contains(".test.")
}

static JEST_FILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:FAIL|PASS) +(\S.*?)(?: \(.*\))?$").expect("regex"));
static CODE_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:>\s*)?\d+ \||^\s+\|").expect("regex"));

/// Jest's default reporter (on stderr): `FAIL src/sum.test.js`, then for each failed test
/// `  ● sum › adds 1 + 2`, its message, a code frame and its stack (`at Object.toBe
/// (src/sum.test.js:5:23)`); a test file that did not run is `● Test suite failed to run`.
/// A test is placed at the first frame in its own file, else in another file of the project.
pub(super) fn parse_jest(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<String> = super::plain_lines(text);
    let mut file: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if let Some(c) = JEST_FILE.captures(line) {
            file = Some(c[1].to_string());
            continue;
        }
        let Some(title) = line.trim_start().strip_prefix("● ") else {
            continue;
        };
        if title == "Console" || line.len() - line.trim_start().len() > 4 {
            continue;
        }
        let title = title.trim();
        // The block: up to the next title, file or summary.
        let start = i;
        while i < lines.len()
            && !lines[i].trim_start().starts_with("● ")
            && !JEST_FILE.is_match(&lines[i])
            && !lines[i].starts_with("Test Suites:")
            && !lines[i].starts_with("Summary of all failing tests")
        {
            i += 1;
        }
        let block = &lines[start..i];
        let message: Vec<&str> = block
            .iter()
            .map(|l| l.trim())
            .take_while(|l| !l.starts_with("at ") && !CODE_FRAME.is_match(l))
            .filter(|l| !l.is_empty())
            .take(MESSAGE_LINES)
            .collect();
        let message = if message.is_empty() {
            "failed".to_string()
        } else {
            message.join("\n")
        };
        let own = file.as_deref().and_then(|f| sink.normalise(f));
        let stack = block.join("\n");
        let place = frame_in(&stack, own.as_deref(), sink)
            .map(|(l, c)| (file.clone().unwrap_or_default(), l, c))
            .or_else(|| project_frame(&stack, sink));
        let suite = title == "Test suite failed to run";
        let (at, line, column) = match place {
            Some((f, l, c)) => (Some(f), Some(l), Some(c)),
            None => (file.clone(), None, None),
        };
        sink.add(Found {
            file: at.as_deref(),
            line,
            column,
            message: &message,
            test: Some(title).filter(|_| !suite),
            ..Found::default()
        });
    }
}

/// The first stack frame in a file of the project (not a dependency's), as `(file, line, col)`.
fn project_frame(text: &str, sink: &Sink<'_>) -> Option<(String, u32, u32)> {
    text.lines().find_map(|line| {
        let c = FRAME.captures(line)?;
        let file = sink.normalise(&c[1])?;
        (super::is_project_path(&file) && !file.contains("node_modules/"))
            .then(|| Some((c[1].to_string(), number(&c[2])?, number(&c[3])?)))?
    })
}

static VITEST_FAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*FAIL {2}(\S+?)(?: > (.+?))?(?: \[ .+ \])?$").expect("regex"));
static VITEST_UNHANDLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^⎯+ (?:Uncaught Exception|Unhandled Rejection|Unhandled Error) ⎯+$")
        .expect("regex")
});
static VITEST_ORIGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^This error originated in "(.+?)" test file"#).expect("regex"));
static VITEST_AT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*❯ (?:\S+ )?((?:file://)?[^\s()]+?):(\d+):(\d+)$").expect("regex")
});

/// Vitest's default reporter (on stderr): after `Failed Tests 3` (or `Failed Suites 1`),
/// ` FAIL  src/sum.test.js > sum > adds 1 + 2`, the error (`AssertionError: expected 4 to be
/// 3`), a diff, and the places (` ❯ src/sum.test.js:6:23`, ` ❯ parse src/sum.js:6:26`), each
/// block ending with `⎯⎯⎯[1/4]⎯`. A test is placed at the first place in its own file, else
/// the first of the project. An error thrown outside a test (`⎯⎯ Uncaught Exception ⎯⎯`,
/// `Unhandled Rejection`) fails the run although every test passed: it is placed where it
/// was thrown (else in the test file Vitest names), without a test.
pub(super) fn parse_vitest(text: &str, sink: &mut Sink<'_>) {
    let mut sink = Sink {
        tool: "vitest",
        found: &mut *sink.found,
        ctx: sink.ctx,
    };
    let lines: Vec<String> = super::plain_lines(text);
    let mut i = 0;
    while i < lines.len() {
        let (file, test) = if let Some(c) = VITEST_FAIL.captures(&lines[i]) {
            (
                Some(c[1].to_string()),
                c.get(2).map(|m| m.as_str().to_string()),
            )
        } else if VITEST_UNHANDLED.is_match(lines[i].trim()) {
            (None, None)
        } else {
            i += 1;
            continue;
        };
        i += 1;
        let start = i;
        while i < lines.len()
            && !VITEST_FAIL.is_match(&lines[i])
            && !lines[i].trim_start().starts_with('⎯')
        {
            i += 1;
        }
        let block = &lines[start..i];
        let message: Vec<&str> = block
            .iter()
            .map(|l| l.trim())
            .take_while(|l| !l.starts_with('❯') && !l.starts_with("- Expected"))
            .filter(|l| !l.is_empty())
            .take(MESSAGE_LINES)
            .collect();
        let message = if message.is_empty() {
            "failed".to_string()
        } else {
            message.join("\n")
        };
        // An unhandled error names its test file and the test that was running.
        let (file, test) = match file {
            Some(file) => (file, test),
            None => {
                let said = |re: &Regex| {
                    block
                        .iter()
                        .find_map(|l| re.captures(l).map(|c| c[1].to_string()))
                };
                // The test Vitest names passed: it is only the latest that ran.
                (said(&VITEST_ORIGIN).unwrap_or_default(), None)
            }
        };
        let own = sink.normalise(&file);
        let places: Vec<(String, u32, u32)> = block
            .iter()
            .filter_map(|l| {
                let c = VITEST_AT.captures(l)?;
                Some((c[1].to_string(), number(&c[2])?, number(&c[3])?))
            })
            .collect();
        let place = places
            .iter()
            .find(|(f, _, _)| sink.normalise(f) == own)
            .or_else(|| places.iter().find(|(f, _, _)| sink.in_project(f)));
        sink.add(Found {
            file: Some(place.map_or(file.as_str(), |p| p.0.as_str())).filter(|f| !f.is_empty()),
            line: place.map(|p| p.1),
            column: place.map(|p| p.2),
            message: &message,
            test: test.as_deref(),
            ..Found::default()
        });
    }
}
