//! mypy: `app/core.py:10: error: Incompatible return value type (got "str", expected "int")
//! [return-value]` (`file:line[:col]: error|warning|note: message  [code]`). With `--pretty`
//! (or `pretty = True` in its configuration) a long message wraps onto lines of its own, which
//! are joined back, and the code and a caret follow, indented, which are not read.

use std::sync::LazyLock;

use regex::Regex;

use super::{number, Found, Sink};

static LOCATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\S.*?\.pyi?):(\d+):(?:(\d+):)? (error|warning|note): (.*)$").expect("regex")
});
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*?)\s+\[([a-z][a-z0-9-]*)\]$").expect("regex"));

/// A line only mypy prints.
pub(super) fn looks_like_mypy(line: &str) -> bool {
    (line.starts_with("Found ") && line.contains(" error") && line.contains("(checked "))
        || line.starts_with("Success: no issues found")
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<String> = super::plain_lines(text);
    let mut i = 0;
    while i < lines.len() {
        let Some(c) = LOCATED.captures(&lines[i]) else {
            i += 1;
            continue;
        };
        i += 1;
        let mut message = c[5].to_string();
        // `--pretty`: the message goes on, unindented, until its code.
        while i < lines.len()
            && !CODE.is_match(&message)
            && !lines[i].is_empty()
            && !lines[i].starts_with(char::is_whitespace)
            && !LOCATED.is_match(&lines[i])
            && !lines[i].starts_with("Found ")
        {
            message.push(' ');
            message.push_str(lines[i].trim());
            i += 1;
        }
        let (message, code) = match CODE.captures(&message) {
            Some(k) => (k[1].to_string(), Some(k[2].to_string())),
            None => (message.clone(), None),
        };
        let severity = super::severity_word(&c[4]);
        sink.add(Found {
            file: Some(&c[1]),
            line: number(&c[2]),
            column: c.get(3).and_then(|m| number(m.as_str())),
            severity: Some(severity),
            code: code.as_deref(),
            message: &message,
            test: None,
        });
    }
}
