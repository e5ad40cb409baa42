//! pytest's terminal report. Under `= FAILURES =` and `= ERRORS =`, one section a test
//! (`____ test_add ____`, `____ ERROR at setup of test_x ____`, `____ ERROR collecting
//! tests/test_x.py ____`): the traceback, whose `E   ` lines are the error and whose last
//! location line (`tests/test_calc.py:5: AssertionError`) is where it was raised. Then the
//! short test summary (`FAILED tests/test_calc.py::test_add - assert 5 == 4`,
//! `ERROR tests/test_parse.py::test_empty`), which names each test by its node id; its message
//! may be cut to the terminal's width, so the section's `E` lines are preferred.

use std::sync::LazyLock;

use regex::Regex;

use super::{number, Found, Sink};

static AREA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^=+ (.+?) =+$").expect("regex"));
static SECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^_{3,} (.+?) _{3,}$").expect("regex"));
static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S[^:]*?\.py):(\d+)(?::\s*(.*))?$").expect("regex"));
static FILE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^file (.+\.py), line (\d+)$").expect("regex"));
static SUMMARY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$").expect("regex"));
static EXCEPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.]*$").expect("regex"));

/// The most `E` lines kept of a section.
const E_LINES: usize = 20;

#[derive(Default)]
struct Section<'a> {
    name: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    code: Option<&'a str>,
    lines: Vec<&'a str>,
    used: bool,
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut summary: Vec<(&str, &str, Option<&str>)> = Vec::new();
    #[derive(PartialEq)]
    enum Area {
        None,
        Reports,
        Summary,
    }
    let mut area = Area::None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(c) = AREA.captures(line) {
            let title = c.get(1).map_or("", |m| m.as_str());
            area = match title {
                "FAILURES" | "ERRORS" => Area::Reports,
                "short test summary info" => Area::Summary,
                _ => Area::None,
            };
            continue;
        }
        match area {
            Area::None => {}
            Area::Summary => {
                if let Some(c) = SUMMARY.captures(line) {
                    let kind = c.get(1).map_or("", |m| m.as_str());
                    let id = c.get(2).map_or("", |m| m.as_str());
                    summary.push((kind, id, c.get(3).map(|m| m.as_str())));
                }
            }
            Area::Reports => {
                if let Some(c) = SECTION.captures(line) {
                    sections.push(Section {
                        name: c.get(1).map_or("", |m| m.as_str()),
                        ..Section::default()
                    });
                    continue;
                }
                let Some(section) = sections.last_mut() else {
                    continue;
                };
                if let Some(rest) = line.strip_prefix('E') {
                    if rest.starts_with(char::is_whitespace) && section.lines.len() < E_LINES {
                        section.lines.push(rest.trim());
                    }
                } else if let Some(c) = LOCATION.captures(line) {
                    section.file = c.get(1).map(|m| m.as_str());
                    section.line = number(&c[2]);
                    section.code = c
                        .get(3)
                        .map(|m| m.as_str().trim())
                        .filter(|r| EXCEPTION.is_match(r));
                } else if let Some(c) = FILE_LINE.captures(line) {
                    if section.file.is_none() {
                        section.file = c.get(1).map(|m| m.as_str());
                        section.line = number(&c[2]);
                    }
                }
            }
        }
    }
    for (kind, id, message) in summary {
        let (file, test) = match id.split_once("::") {
            Some((file, test)) => (file, Some(test)),
            None => (id, None),
        };
        let key = test.map(|t| t.replace("::", "."));
        let section = sections.iter_mut().find(|s| {
            !s.used
                && match &key {
                    Some(key) => {
                        s.name == key
                            || s.name.strip_prefix("ERROR at setup of ") == Some(key)
                            || s.name.strip_prefix("ERROR at teardown of ") == Some(key)
                    }
                    None => s.name.strip_prefix("ERROR collecting ") == Some(file),
                }
        });
        let fallback = message.unwrap_or(if kind == "ERROR" { "error" } else { "failed" });
        match section {
            Some(section) => {
                section.used = true;
                let joined = section.lines.join("\n");
                let message = if joined.is_empty() { fallback } else { &joined };
                sink.add(Found {
                    file: section.file.or(Some(file)),
                    line: section.line,
                    code: section.code,
                    message,
                    test: Some(id),
                    ..Found::default()
                });
            }
            None => sink.add(Found {
                file: Some(file),
                message: fallback,
                test: Some(id),
                ..Found::default()
            }),
        }
    }
    // Sections the summary did not name (`-r` without `f` or `E`).
    for section in sections.iter().filter(|s| !s.used) {
        let joined = section.lines.join("\n");
        let message = if joined.is_empty() { "failed" } else { &joined };
        sink.add(Found {
            file: section.file,
            line: section.line,
            code: section.code,
            message,
            test: Some(section.name),
            ..Found::default()
        });
    }
}
