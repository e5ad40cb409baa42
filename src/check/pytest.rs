//! pytest's terminal report, in every `--tb` style. Under `= FAILURES =` and `= ERRORS =`,
//! one section a test (`____ test_add ____`, `____ ERROR at setup of test_x ____`, `____ ERROR
//! collecting tests/test_x.py ____`): the traceback, whose `E   ` lines are the error and whose
//! last place in a file of the project (`calc.py:6: ZeroDivisionError`; a library's only when
//! there is none, a `SyntaxError`'s `File "…", line 3` first) is where it was raised. With
//! `--tb=line` a failure has no title: its `E` lines, then `path:line: message`. Then the short
//! test summary (`FAILED tests/test_calc.py::test_add - assert 5 == 4`, `ERROR
//! tests/test_db.py::test_query`, parametrized ids with spaces: `test_parse[1, x-expected1]`),
//! which names each test by its node id, relative to where pytest ran; its message may be cut
//! to the terminal's width, so the section's `E` lines are preferred.

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
static SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(FAILED|ERROR) (\S+?(?:\[.*?\])?)(?: - (.*))?$").expect("regex")
});
static EXCEPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.]*$").expect("regex"));
/// A `SyntaxError`'s place, in the `E` lines of a collection error.
static RAISED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Warning|Exit|Interrupt)):")
        .expect("regex")
});
static E_FILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^File "(.+\.py)", line (\d+)"#).expect("regex"));

/// The most `E` lines kept of a section.
const E_LINES: usize = 20;

#[derive(Default)]
struct Section<'a> {
    /// The section's title (`test_add`, `ERROR at setup of test_x`); empty for a failure of
    /// `--tb=line`, which has none.
    name: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    code: Option<&'a str>,
    /// The last place in a file of the project, preferred to a library's.
    own: Option<(&'a str, Option<u32>, Option<&'a str>)>,
    lines: Vec<&'a str>,
    /// The message of a `--tb=line` failure: what follows its place.
    said: Option<&'a str>,
    used: bool,
}

impl<'a> Section<'a> {
    fn place(&self) -> (Option<&'a str>, Option<u32>, Option<&'a str>) {
        match self.own {
            Some((file, line, code)) => (Some(file), line, code.or(self.code)),
            None => (self.file, self.line, self.code),
        }
    }

    fn message(&self) -> String {
        if self.lines.is_empty() {
            return self.said.unwrap_or_default().to_string();
        }
        // A `SyntaxError` starts with its `File "…", line 3` and its source: the exception first.
        if self.lines[0].starts_with("File \"") {
            if let Some(i) = self.lines.iter().rposition(|l| RAISED.is_match(l)) {
                let mut lines = vec![self.lines[i]];
                lines.extend(
                    self.lines
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, l)| *l),
                );
                return lines.join("\n");
            }
        }
        self.lines.join("\n")
    }

    /// The exception type: from the place line, else from the `E` lines (`--tb=short`).
    fn code(&self, code: Option<&'a str>) -> Option<&'a str> {
        code.or_else(|| {
            self.lines.iter().rev().find_map(|l| {
                RAISED
                    .captures(l)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str())
            })
        })
    }
}

#[derive(PartialEq)]
enum Area {
    None,
    Reports,
    Summary,
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut summary: Vec<(&str, &str, Option<&str>)> = Vec::new();
    let mut area = Area::None;
    // In `--tb=line`, a failure is its `E` lines then its place: a new one starts after a place.
    let mut closed = true;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(c) = AREA.captures(line) {
            let title = c.get(1).map_or("", |m| m.as_str());
            area = match title {
                "FAILURES" | "ERRORS" => Area::Reports,
                "short test summary info" => Area::Summary,
                _ => Area::None,
            };
            closed = true;
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
            Area::Reports => report_line(line, &mut sections, &mut closed, sink),
        }
    }
    let mut anonymous = sections.iter().filter(|s| s.name.is_empty()).count();
    for (kind, id, message) in summary {
        let (file, test) = match id.split_once("::") {
            Some((file, test)) => (file, Some(test)),
            None => (id, None),
        };
        let key = test.map(|t| t.replace("::", "."));
        let mut found = sections.iter().position(|s| {
            !s.used
                && match &key {
                    Some(key) => {
                        s.name == key
                            || s.name.strip_prefix("ERROR at setup of ") == Some(key)
                            || s.name.strip_prefix("ERROR at teardown of ") == Some(key)
                    }
                    None => s
                        .name
                        .strip_prefix("ERROR collecting ")
                        .is_some_and(|f| f == file || file.ends_with(&format!("/{f}"))),
                }
        });
        if found.is_none() && kind == "FAILED" && anonymous > 0 {
            // `--tb=line`: the failures in the order the summary lists them.
            found = sections.iter().position(|s| !s.used && s.name.is_empty());
            anonymous -= 1;
        }
        // `ERROR tests/test_x.py` alone (`--tb=no`, `-q`): the module did not even collect.
        let collecting = format!("error collecting {id}");
        let fallback = message.unwrap_or(match kind {
            "ERROR" if !id.contains("::") => &collecting,
            "ERROR" => "error",
            _ => "failed",
        });
        match found.map(|i| &mut sections[i]) {
            Some(section) => {
                section.used = true;
                let (at, line, code) = section.place();
                let code = section.code(code);
                let joined = section.message();
                let message = if joined.is_empty() { fallback } else { &joined };
                sink.add(Found {
                    file: at.or(Some(file)),
                    line,
                    code,
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
        let joined = section.message();
        let message = if joined.is_empty() { "failed" } else { &joined };
        let (file, line, code) = section.place();
        let code = section.code(code);
        sink.add(Found {
            file,
            line,
            code,
            message,
            test: Some(section.name).filter(|n| !n.is_empty()),
            ..Found::default()
        });
    }
}

/// One line of the `FAILURES` or `ERRORS` area.
fn report_line<'a>(
    line: &'a str,
    sections: &mut Vec<Section<'a>>,
    closed: &mut bool,
    sink: &Sink<'_>,
) {
    if let Some(c) = SECTION.captures(line) {
        sections.push(Section {
            name: c.get(1).map_or("", |m| m.as_str()),
            ..Section::default()
        });
        *closed = false;
        return;
    }
    let is_e = line
        .strip_prefix('E')
        .is_some_and(|rest| rest.starts_with(char::is_whitespace));
    if is_e && *closed {
        // `--tb=line`: a failure without a title.
        sections.push(Section::default());
        *closed = false;
    }
    let Some(section) = sections.last_mut() else {
        return;
    };
    if is_e {
        let rest = line[1..].trim();
        if section.lines.len() < E_LINES {
            section.lines.push(rest);
        }
        if let Some(c) = E_FILE.captures(rest) {
            let file = c.get(1).map_or("", |m| m.as_str());
            if sink.in_project(file) {
                section.own = Some((file, number(&c[2]), None));
            }
        }
    } else if let Some(c) = LOCATION.captures(line) {
        let file = c.get(1).map_or("", |m| m.as_str());
        let rest = c.get(3).map_or("", |m| m.as_str().trim());
        let code = if EXCEPTION.is_match(rest) {
            Some(rest)
        } else {
            rest.split_once(": ")
                .map(|(kind, _)| kind)
                .filter(|k| EXCEPTION.is_match(k) && k.ends_with("Error"))
        };
        section.file = Some(file);
        section.line = number(&c[2]);
        section.code = code;
        if sink.in_project(file) {
            section.own = Some((file, number(&c[2]), code));
        }
        if section.name.is_empty() && !rest.starts_with("in ") && !rest.is_empty() {
            // `--tb=line`'s `path:line: message` ends the failure.
            section.said = Some(rest);
            *closed = true;
        }
    } else if let Some(c) = FILE_LINE.captures(line) {
        if section.file.is_none() {
            section.file = c.get(1).map(|m| m.as_str());
            section.line = number(&c[2]);
        }
    }
}

static UNITTEST_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)").expect("regex"));
static UNITTEST_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*File "(.+?)", line (\d+)"#).expect("regex"));

/// unittest's report (`python -m unittest`, Django's test runner): `FAIL: test_add
/// (tests.test_math.TestMath.test_add)` (before Python 3.11 the class without the method), a
/// traceback whose last frame in the project is the place, then the exception line.
pub(super) fn parse_unittest(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(c) = UNITTEST_HEADER.captures(lines[i]) else {
            i += 1;
            continue;
        };
        i += 1;
        let (method, owner) = (&c[2], &c[3]);
        let test = if owner.ends_with(&format!(".{method}")) {
            owner.to_string()
        } else {
            format!("{owner}.{method}")
        };
        let mut place: Option<(&str, Option<u32>)> = None;
        let mut message: Option<&str> = None;
        if lines.get(i).is_some_and(|l| l.starts_with("-----")) {
            i += 1;
        }
        while i < lines.len() && !lines[i].starts_with("=====") && !lines[i].starts_with("-----") {
            let line = lines[i];
            i += 1;
            if line.is_empty() {
                continue;
            }
            if let Some(f) = UNITTEST_FRAME.captures(line) {
                let file = f.get(1).map_or("", |m| m.as_str());
                if sink.in_project(file) {
                    place = Some((file, number(&f[2])));
                }
            } else if !line.starts_with(char::is_whitespace) && !line.starts_with("Traceback ") {
                message = message.or(Some(line));
            }
        }
        let message = message.unwrap_or(if &c[1] == "ERROR" { "error" } else { "failed" });
        let code = RAISED
            .captures(message)
            .and_then(|k| k.get(1))
            .map(|m| m.as_str());
        sink.add(Found {
            file: place.map(|p| p.0),
            line: place.and_then(|p| p.1),
            code,
            message,
            test: Some(&test),
            ..Found::default()
        });
    }
}
