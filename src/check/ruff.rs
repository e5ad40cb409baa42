//! Ruff's `check`: the default `full` format, a header `F401 [*] `os` imported but unused`
//! (or `invalid-syntax: …`) then ` --> app/core.py:1:8` and a snippet; the `concise` format,
//! `app/core.py:1:8: F401 [*] `os` imported but unused`; and `ruff format --check`'s
//! `Would reformat: app/core.py`. The `[*]` (a fix is available) is dropped from the message.

use std::sync::LazyLock;

use regex::Regex;

use super::{number, Found, Sink};

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:([A-Z]{1,4}[0-9]{1,5}) |([a-z]+(?:-[a-z]+)*): )(?:\[\*\] )?(.+)$")
        .expect("regex")
});
static AT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*--> (.+?):(\d+):(\d+)$").expect("regex"));
static CONCISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\S.*?):(\d+):(\d+): (?:([A-Z]{1,4}[0-9]{1,5}) |([a-z]+(?:-[a-z]+)*): )(?:\[\*\] )?(.+)$",
    )
    .expect("regex")
});
static REFORMAT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Would reformat: (.+)$").expect("regex"));

/// A line only Ruff prints.
pub(super) fn looks_like_ruff(line: &str) -> bool {
    line.starts_with("Would reformat: ")
        || (line.starts_with("[*] ") && line.contains(" fixable with"))
        || CONCISE.is_match(line) && line.contains(" [*] ")
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<String> = super::plain_lines(text);
    for (i, line) in lines.iter().enumerate() {
        if let Some(c) = CONCISE.captures(line) {
            sink.add(Found {
                file: Some(&c[1]),
                line: number(&c[2]),
                column: number(&c[3]),
                code: c.get(4).or(c.get(5)).map(|m| m.as_str()),
                message: &c[6],
                ..Found::default()
            });
        } else if let Some(c) = REFORMAT.captures(line) {
            sink.add(Found {
                file: Some(&c[1]),
                code: Some("format"),
                message: "would be reformatted by `ruff format`",
                ..Found::default()
            });
        } else if let Some(h) = HEADER.captures(line) {
            let Some(at) = lines.get(i + 1).and_then(|next| AT.captures(next)) else {
                continue;
            };
            sink.add(Found {
                file: Some(&at[1]),
                line: number(&at[2]),
                column: number(&at[3]),
                code: h.get(1).or(h.get(2)).map(|m| m.as_str()),
                message: &h[3],
                ..Found::default()
            });
        }
    }
}
