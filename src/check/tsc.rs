//! TypeScript's `tsc`: `src/index.ts(2,9): error TS2322: message` (`--pretty false`, and
//! whenever the output is not a terminal), indented lines after it continuing the message;
//! or, pretty, `src/index.ts:2:9 - error TS2322: message` in colours with a code frame. A
//! problem without a file is `error TS5083: message`.

use std::sync::LazyLock;

use regex::Regex;

use super::{number, Found, Severity, Sink};

static PLAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+?)\((\d+),(\d+)\): (error|warning|message) (TS\d+): (.*)$").expect("regex")
});
static PRETTY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+?):(\d+):(\d+) - (error|warning|message) (TS\d+): (.*)$").expect("regex")
});
static GLOBAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(error|warning) (TS\d+): (.*)$").expect("regex"));

/// The most continuation lines of a message.
const CONTINUATION: usize = 10;

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let lines: Vec<String> = super::plain_lines(text);
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        let (c, plain) = match PLAIN.captures(line) {
            Some(c) => (c, true),
            None => match PRETTY.captures(line) {
                Some(c) => (c, false),
                None => {
                    if let Some(g) = GLOBAL.captures(line) {
                        sink.add(Found {
                            severity: Some(severity(&g[1])),
                            code: Some(&g[2]),
                            message: &g[3],
                            ..Found::default()
                        });
                    }
                    continue;
                }
            },
        };
        let mut message = c[6].to_string();
        if plain {
            let mut more = 0;
            while i < lines.len() && more < CONTINUATION && lines[i].starts_with("  ") {
                message.push('\n');
                message.push_str(lines[i].trim());
                i += 1;
                more += 1;
            }
        }
        sink.add(Found {
            file: Some(&c[1]),
            line: number(&c[2]),
            column: number(&c[3]),
            severity: Some(severity(&c[4])),
            code: Some(&c[5]),
            message: &message,
            test: None,
        });
    }
}

fn severity(word: &str) -> Severity {
    super::severity_word(word)
}
