//! Compilers' human output. rustc: a header `error[E0308]: mismatched types` (or
//! `warning: …`), then ` --> file:line:col` and a snippet; a lint's name is in a
//! `= note: #[warn(unused_variables)]` line. gcc and clang: `file:line:col: error: message`
//! (also `fatal error`, `warning`, `note`; the column may be missing), a warning's flag in
//! brackets at the end (`[-Wunused-variable]`); the linker's `undefined reference to`.

use std::sync::LazyLock;

use regex::Regex;

use super::cargo::is_summary;
use super::{number, Found, Severity, Sink};

static RUSTC_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(error|warning)(?:\[([A-Za-z0-9_]+)\])?: (.+)$").expect("regex")
});
static RUSTC_AT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*--> (.+?):(\d+):(\d+)$").expect("regex"));
static RUSTC_LINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"#\[(?:warn|deny|forbid)\(([A-Za-z0-9_:]+)\)\]").expect("regex"));

/// How far below its header a diagnostic's parts are looked for.
const LOOKAHEAD: usize = 40;

pub(super) fn parse_rustc(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = RUSTC_HEADER.captures(line) else {
            continue;
        };
        let message = &c[3];
        if is_summary(message) || message.starts_with('`') && message.contains("generated") {
            continue;
        }
        let severity = if &c[1] == "error" {
            Severity::Error
        } else {
            Severity::Warning
        };
        let mut at = None;
        let mut lint = None;
        for next in lines.iter().skip(i + 1).take(LOOKAHEAD) {
            if next.is_empty() || RUSTC_HEADER.is_match(next) {
                break;
            }
            if at.is_none() {
                at = RUSTC_AT.captures(next);
            }
            if lint.is_none() {
                lint = RUSTC_LINT
                    .captures(next)
                    .and_then(|l| l.get(1))
                    .map(|m| m.as_str());
            }
        }
        sink.add(Found {
            file: at.as_ref().and_then(|a| a.get(1)).map(|m| m.as_str()),
            line: at.as_ref().and_then(|a| number(&a[2])),
            column: at.as_ref().and_then(|a| number(&a[3])),
            severity: Some(severity),
            code: c.get(2).map(|m| m.as_str()).or(lint),
            message,
            test: None,
        });
    }
}

static GCC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([^\s:][^:]*?):(\d+):(?:(\d+):)? (fatal error|error|warning|note|remark): (.+?)(?: \[(-W[^\]\s]+)\])?$",
    )
    .expect("regex")
});

static GCC_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^\s:][^:]*?:\d+:\d+: (?:fatal error|error|warning): ").expect("regex")
});

/// Does this line look like a gcc or clang diagnostic? (With a column: `file:line: error:`
/// alone is many tools' form, left to the generic parser.)
pub(super) fn looks_like_gcc(line: &str) -> bool {
    GCC_SHAPE.is_match(line)
}

/// The linker's `main.c:(.text+0xa): undefined reference to `helper'`: the object's source is
/// named without its directory, so it is told in the message, not as the file.
static UNDEFINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(\S+?):\(\.[^)]*\): )?(undefined reference to .+)$").expect("regex")
});

pub(super) fn parse_gcc(text: &str, sink: &mut Sink<'_>) {
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(c) = UNDEFINED.captures(line) {
            let message = match c.get(1) {
                Some(object) => format!("{} (in {})", &c[2], object.as_str()),
                None => c[2].to_string(),
            };
            sink.add(Found {
                severity: Some(Severity::Error),
                code: Some("ld"),
                message: &message,
                ..Found::default()
            });
            continue;
        }
        let Some(c) = GCC.captures(line) else {
            continue;
        };
        let severity = super::severity_word(&c[4]);
        sink.add(Found {
            file: Some(&c[1]),
            line: number(&c[2]),
            column: c.get(3).and_then(|m| number(m.as_str())),
            severity: Some(severity),
            code: c.get(6).map(|m| m.as_str()),
            message: &c[5],
            test: None,
        });
    }
}
