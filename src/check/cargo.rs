//! `cargo … --message-format=json`: one JSON object a line; those with
//! `"reason": "compiler-message"` carry a rustc diagnostic (`message`: `level`, `message`,
//! `code.code`, `spans` with `file_name`, `line_start`, `column_start`, `is_primary`, `label`
//! and, inside macros, `expansion.span`). And libtest's panics, which `cargo test` prints
//! as text whatever the message format: `thread '<test>' panicked at <file>:<line>:<col>:`
//! followed by the message (Rust 1.73 and later), or
//! `thread '<test>' panicked at '<message>', <file>:<line>:<col>` before; a `#[should_panic]`
//! test that did not panic and a test that returned `Err`, in their `---- <test> stdout ----`
//! sections; libtest's own JSON (`--format json`), whose failed tests carry the same text.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{number, Found, Severity, Sink};

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<Code>,
    #[serde(default)]
    level: String,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Code {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct Span {
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    line_start: u32,
    #[serde(default)]
    column_start: u32,
    #[serde(default)]
    is_primary: bool,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    expansion: Option<Box<Expansion>>,
}

#[derive(Deserialize)]
struct Expansion {
    span: Span,
}

pub(super) fn parse_json(text: &str, sink: &mut Sink<'_>) {
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with("{\"reason\":") {
            continue;
        }
        let Ok(Line {
            reason: Some(reason),
            message: Some(diagnostic),
        }) = serde_json::from_str::<Line>(line)
        else {
            continue;
        };
        if reason != "compiler-message" {
            continue;
        }
        add_diagnostic(&diagnostic, sink);
    }
}

fn add_diagnostic(diagnostic: &Diagnostic, sink: &mut Sink<'_>) {
    let severity = match diagnostic.level.as_str() {
        "error" | "error: internal compiler error" => Severity::Error,
        "warning" => Severity::Warning,
        "note" | "help" => Severity::Note,
        // `failure-note` ("For more information about this error…") and unknown levels.
        _ => return,
    };
    if diagnostic.spans.is_empty() && is_summary(&diagnostic.message) {
        return;
    }
    let primary = diagnostic
        .spans
        .iter()
        .find(|s| s.is_primary)
        .or(diagnostic.spans.first());
    // Inside a macro of another crate, the call site is the place to look.
    let mut span = primary;
    let mut depth = 0;
    while let Some(s) = span {
        let outside = s.file_name.starts_with('<')
            || sink
                .normalise(&s.file_name)
                .is_none_or(|f| f.starts_with('/'));
        match &s.expansion {
            Some(expansion) if outside && depth < 8 => {
                span = Some(&expansion.span);
                depth += 1;
            }
            _ => break,
        }
    }
    let label = primary.and_then(|s| s.label.as_deref()).unwrap_or("");
    let message = if label.is_empty() {
        diagnostic.message.clone()
    } else {
        format!("{}: {label}", diagnostic.message)
    };
    sink.add(Found {
        file: span
            .map(|s| s.file_name.as_str())
            .filter(|f| !f.starts_with('<')),
        line: span.map(|s| s.line_start),
        column: span.map(|s| s.column_start),
        severity: Some(severity),
        code: diagnostic.code.as_ref().map(|c| c.code.as_str()),
        message: &message,
        test: None,
    });
}

/// rustc's, cargo's and cargo-nextest's closing lines, which are not problems of their own
/// (nextest's `no tests to run` is the check's outcome, not an error).
pub(super) fn is_summary(message: &str) -> bool {
    let m = message.trim();
    m == "test run failed"
        || m == "no tests to run"
        || m.contains(" tests were not run due to test failure")
        || m.contains(" test was not run due to test failure")
        || m.starts_with("aborting due to")
        || m.starts_with("could not compile")
        || m.starts_with("build failed")
        || m.starts_with("test failed, to rerun")
        || (m.ends_with(" targets failed:") || m.ends_with(" target failed:"))
        || m.starts_with("Some errors have detailed explanations")
        || m.starts_with("For more information about")
        || (m.contains(" warning") && (m.ends_with(" emitted") || m.contains(" generated ")))
}

static PANIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^thread '([^']*)'(?: \(\d+\))? panicked at (.+?):(\d+):(\d+):$").expect("regex")
});
static OLD_PANIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^thread '([^']*)'(?: \(\d+\))? panicked at '(.*)', (.+?):(\d+):(\d+)$")
        .expect("regex")
});

/// The most message lines kept after a panic's location.
const PANIC_LINES: usize = 20;

/// A test's section of libtest's report: `---- tests::it_adds stdout ----`.
static SECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^---- (.+?) stdout ----$").expect("regex"));
/// A `#[should_panic]` test that did not panic (its place since Rust 1.80 or so).
static NO_PANIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^note: test did not panic as expected(?: at (.+?):(\d+):(\d+))?$").expect("regex")
});

/// libtest's report: each panic (`thread '<test>' panicked at <place>:` and its message), a
/// `#[should_panic]` test that did not panic (`note: test did not panic as expected at
/// src/lib.rs:30:8`) and a test returning `Err` (`Error: ParseIntError { … }` in its section,
/// without a place).
pub(super) fn parse_tests(text: &str, sink: &mut Sink<'_>) {
    parse_libtest_json(text, sink);
    parse_human(text, sink);
}

/// cargo-nextest's line for a test that ended: `FAIL [   0.012s] (1/4) calc tests::adds`
/// (the binary, then the test).
static NEXTEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:FAIL|PASS|SIGSEGV|SIGABRT|TIMEOUT|LEAK|ABORT) \[\s*[\d.]+s\] (?:\(\d+/\d+\) )?\S+ (\S+)$")
        .expect("regex")
});

/// libtest's human report (see [`parse_tests`]), as cargo test prints it or as cargo-nextest
/// does (each test's output indented under the line that names it).
fn parse_human(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut section: Option<&str> = None;
    // The test nextest last named: its output follows.
    let mut nextest: Option<&str> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(c) = NEXTEST.captures(line) {
            nextest = c.get(1).map(|m| m.as_str());
            section = None;
            continue;
        }
        if let Some(c) = SECTION.captures(line) {
            section = c.get(1).map(|m| m.as_str());
            continue;
        }
        if line == "failures:" || line.starts_with("test result: ") {
            section = None;
            continue;
        }
        if let Some(c) = NO_PANIC.captures(line) {
            sink.add(Found {
                file: c.get(1).map(|m| m.as_str()),
                line: c.get(2).and_then(|m| number(m.as_str())),
                column: c.get(3).and_then(|m| number(m.as_str())),
                message: "test did not panic as expected",
                test: section.or(nextest),
                ..Found::default()
            });
            continue;
        }
        if let (Some(test), Some(error)) = (section.or(nextest), line.strip_prefix("Error: ")) {
            sink.add(Found {
                message: &format!("returned Err: {error}"),
                test: Some(test),
                ..Found::default()
            });
            continue;
        }
        if !line.starts_with("thread '") {
            continue;
        }
        if let Some(c) = PANIC.captures(line) {
            let mut message = Vec::new();
            while i < lines.len() && message.len() < PANIC_LINES {
                let next = lines[i].trim_end();
                let bare = next.trim_start();
                if bare.is_empty()
                    || bare.starts_with("note: ")
                    || bare.starts_with("stack backtrace:")
                    || bare.starts_with("thread '")
                {
                    break;
                }
                message.push(next);
                i += 1;
            }
            let message = if message.is_empty() {
                "panicked".to_string()
            } else {
                message.join("\n")
            };
            sink.add(Found {
                file: Some(&c[2]),
                line: number(&c[3]),
                column: number(&c[4]),
                message: &message,
                test: Some(&c[1]).filter(|t| *t != "main"),
                ..Found::default()
            });
        } else if let Some(c) = OLD_PANIC.captures(line) {
            sink.add(Found {
                file: Some(&c[3]),
                line: number(&c[4]),
                column: number(&c[5]),
                message: &c[2],
                test: Some(&c[1]).filter(|t| *t != "main"),
                ..Found::default()
            });
        }
    }
}

#[derive(Deserialize)]
struct TestEvent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// libtest's JSON (`cargo test -- -Z unstable-options --format json`): a `failed` test event
/// carries what the test printed (`stdout`: its panic, or `Error: …`) or a `message` (a
/// `#[should_panic]` test that did not panic), read as the human report would be.
fn parse_libtest_json(text: &str, sink: &mut Sink<'_>) {
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('{') || !line.contains("\"type\"") {
            continue;
        }
        let Ok(event) = serde_json::from_str::<TestEvent>(line) else {
            continue;
        };
        if event.kind != "test" || event.event != "failed" || event.name.contains('\n') {
            continue;
        }
        let before = sink.found.list.len() + sink.found.dropped;
        let mut report = format!("---- {} stdout ----\n", event.name);
        if let Some(message) = &event.message {
            report.push_str(&format!("note: {message}\n"));
        }
        if let Some(stdout) = &event.stdout {
            report.push_str(stdout);
        }
        parse_human(&report, sink);
        if sink.found.list.len() + sink.found.dropped == before {
            sink.add(Found {
                message: event.message.as_deref().unwrap_or("failed"),
                test: Some(&event.name),
                ..Found::default()
            });
        }
    }
}
