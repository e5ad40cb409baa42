//! `go test -json`: test2json events, one JSON object a line (`Action`, `Package`, `Test`,
//! `Output`; `ImportPath` on build events). A failing test (`"Action": "fail"` with a `Test`)
//! is reported through the lines it printed: `    add_test.go:12: message` (a file of its
//! package's directory, indented continuation lines after it). A test failing without such a
//! line (and without a failing subtest) gives one error without a file. Build errors come as
//! `build-output` events (Go 1.24 and later) or, before, as package output:
//! `parse/parse_test.go:9:2: undefined: Tokens`, relative to where `go` ran.
//!
//! And plain `go test` (`parse_plain`): `--- FAIL: TestAdd (0.00s)` then the test's indented
//! `calc_test.go:7: message` lines, its package named after them by `FAIL example.com/calc`;
//! build errors (`# example.com/calc/parse` then `parse/parse.go:4:2: …`, on stderr, also
//! with `-json` before Go 1.24). A test that panicked (`panic: runtime error: …`, then the
//! goroutine's frames) is placed at the first frame in a file of the project, which is where
//! it panicked.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{number, Found, Sink};

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Package", default)]
    package: Option<String>,
    #[serde(rename = "Test", default)]
    test: Option<String>,
    #[serde(rename = "Output", default)]
    output: Option<String>,
}

static TEST_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s+)([\w.\-]+\.go):(\d+): (.*)$").expect("regex"));
static BUILD_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S+?\.go):(\d+):(?:(\d+):)? (.+)$").expect("regex"));

/// The most lines of a test's output kept (the rest is not looked at).
const TEST_OUTPUT_LINES: usize = 200;
/// The most continuation lines of a message.
const CONTINUATION: usize = 10;

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    // (package, test) → its output lines, bounded.
    let mut outputs: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        let package = event.package.clone().unwrap_or_default();
        match (event.action.as_str(), &event.test) {
            ("output", Some(test)) => {
                let lines = outputs.entry((package, test.clone())).or_default();
                if lines.len() < TEST_OUTPUT_LINES {
                    if let Some(output) = event.output {
                        lines.push(output.trim_end_matches('\n').to_string());
                    }
                }
            }
            ("fail", Some(test)) => failed.push((package, test.clone())),
            ("build-output", _) | ("output", None) => {
                if let Some(c) = event
                    .output
                    .as_deref()
                    .and_then(|o| BUILD_LINE.captures(o.trim_end()))
                {
                    sink.add(Found {
                        file: Some(&c[1]),
                        line: number(&c[2]),
                        column: c.get(3).and_then(|m| number(m.as_str())),
                        message: &c[4],
                        ..Found::default()
                    });
                }
            }
            _ => {}
        }
    }
    for (package, test) in &failed {
        let lines = outputs
            .get(&(package.clone(), test.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut reported = false;
        let mut i = 0;
        while i < lines.len() {
            let Some(c) = TEST_LINE.captures(&lines[i]) else {
                i += 1;
                continue;
            };
            let indent = c[1].len();
            let mut message = c[4].to_string();
            i += 1;
            let mut more = 0;
            while i < lines.len() && more < CONTINUATION {
                let next = &lines[i];
                let deeper = next.len() - next.trim_start().len() > indent;
                if !deeper || TEST_LINE.is_match(next) {
                    break;
                }
                message.push('\n');
                message.push_str(next.trim());
                i += 1;
                more += 1;
            }
            let file = place(&c[2], package, sink.go_module());
            sink.add(Found {
                file: Some(&file),
                line: number(&c[3]),
                message: &message,
                test: Some(test),
                ..Found::default()
            });
            reported = true;
        }
        let subtest_failed = failed
            .iter()
            .any(|(p, t)| p == package && t.starts_with(&format!("{test}/")));
        if !reported && !subtest_failed {
            match panic_of(lines, sink) {
                Some((message, file, line)) => sink.add(Found {
                    file: file.as_deref(),
                    line,
                    message: &message,
                    test: Some(test),
                    ..Found::default()
                }),
                None => sink.add(Found {
                    message: &format!("{test} failed"),
                    test: Some(test),
                    ..Found::default()
                }),
            }
        }
    }
}

/// A file `go test` names (relative to its package's directory) relative to the module root,
/// when the package is in `module`.
fn place(file: &str, package: &str, module: Option<&str>) -> String {
    match module {
        Some(module) if package == module => file.to_string(),
        Some(module) => match package
            .strip_prefix(module)
            .and_then(|d| d.strip_prefix('/'))
        {
            Some(dir) if !dir.is_empty() => format!("{dir}/{file}"),
            _ => file.to_string(),
        },
        None => file.to_string(),
    }
}

static FAIL_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s*)--- FAIL: (\S+) \(").expect("regex"));
static PACKAGE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:FAIL|ok)\s+(\S+)(?:\s+(?:[\d.]+s|\(cached\)|\[.*\])).*$").expect("regex")
});
static FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?$").expect("regex"));

/// Lines only plain `go test` prints.
pub(super) fn looks_like_plain(line: &str) -> bool {
    line.starts_with("--- FAIL: ")
        || line.starts_with("FAIL\t")
        || line.starts_with("ok  \t")
        || line.starts_with("=== RUN ")
        || line.starts_with("?   \t")
}

/// The message of a panic in a test's output and the first frame in a file of the project.
fn panic_of<S: AsRef<str>>(
    lines: &[S],
    sink: &Sink<'_>,
) -> Option<(String, Option<String>, Option<u32>)> {
    let start = lines
        .iter()
        .position(|l| l.as_ref().starts_with("panic: "))?;
    let message = lines[start]
        .as_ref()
        .trim_end_matches(" [recovered]")
        .to_string();
    let place = lines[start + 1..].iter().take(200).find_map(|l| {
        let c = FRAME.captures(l.as_ref())?;
        sink.in_project(&c[1])
            .then(|| (c[1].to_string(), number(&c[2])))
    });
    Some((
        message,
        place.as_ref().map(|p| p.0.clone()),
        place.and_then(|p| p.1),
    ))
}

/// Plain `go test` output (see the module's documentation).
pub(super) fn parse_plain(text: &str, sink: &mut Sink<'_>) {
    // The errors of the package being read: (file relative to its directory, line, message, test).
    let mut pending: Vec<(String, Option<u32>, String, String)> = Vec::new();
    let mut test: Option<String> = None;
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut i = 0;
    let flush = |pending: &mut Vec<(String, Option<u32>, String, String)>,
                 package: &str,
                 sink: &mut Sink<'_>| {
        for (file, line, message, test) in pending.drain(..) {
            let file = place(&file, package, sink.go_module());
            sink.add(Found {
                file: Some(&file),
                line,
                message: &message,
                test: Some(&test),
                ..Found::default()
            });
        }
    };
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.starts_with('{') {
            continue;
        }
        if let Some(c) = FAIL_HEADER.captures(line) {
            test = Some(c[2].to_string());
            continue;
        }
        if let Some(c) = PACKAGE_END.captures(line) {
            flush(&mut pending, &c[1], sink);
            test = None;
            continue;
        }
        if line.starts_with("panic: ") {
            let rest = &lines[i - 1..];
            if let Some((message, file, at)) = panic_of(rest, sink) {
                sink.add(Found {
                    file: file.as_deref(),
                    line: at,
                    message: &message,
                    test: test.as_deref(),
                    ..Found::default()
                });
            }
            // The goroutine dump: up to the package's end.
            while i < lines.len() && !PACKAGE_END.is_match(lines[i]) {
                i += 1;
            }
            continue;
        }
        if let (Some(current), Some(c)) = (&test, TEST_LINE.captures(line)) {
            let indent = c[1].len();
            let mut message = c[4].to_string();
            let mut more = 0;
            while i < lines.len() && more < CONTINUATION {
                let next = lines[i];
                let deeper = next.len() - next.trim_start().len() > indent;
                if !deeper || TEST_LINE.is_match(next) || FAIL_HEADER.is_match(next) {
                    break;
                }
                message.push('\n');
                message.push_str(next.trim());
                i += 1;
                more += 1;
            }
            if pending.len() < TEST_OUTPUT_LINES {
                pending.push((c[2].to_string(), number(&c[3]), message, current.clone()));
            }
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some(c) = BUILD_LINE.captures(line) {
                sink.add(Found {
                    file: Some(&c[1]),
                    line: number(&c[2]),
                    column: c.get(3).and_then(|m| number(m.as_str())),
                    message: &c[4],
                    ..Found::default()
                });
            }
        }
    }
    flush(&mut pending, "", sink);
}
