//! Mocha's default reporter (`spec`): after the `N passing` and `N failing` lines, one block
//! per failure:
//!
//! ```text
//!   1) greet
//!        greets by name:
//!
//!       AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:
//!       …
//!       at Context.<anonymous> (test/greet.test.js:6:12)
//! ```
//!
//! The numbered line and the indented lines under it up to the one ending in `:` are the test's
//! suites and title (joined by spaces, as Mocha's `fullTitle`); the first line after them is the
//! message. The failure is placed at the test's own frame (`at Context.<anonymous> (…)`: the
//! function Mocha called), else at the first frame in the project (not in `node_modules`, not
//! Node's own `node:` modules).

use std::sync::LazyLock;

use regex::Regex;

use super::{strip_ansi, Found, Sink};

static FAILING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*\d+ failing\s*$").expect("regex"));
static HEADER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^  (\d+)\) (.*)$").expect("regex"));
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*at (?:(.*?) \()?((?:file://)?[^\s()]+?):(\d+):(\d+)\)?$").expect("regex")
});

/// Does `line` look like Mocha's count of failures (`2 failing`)?
pub(super) fn looks_like_mocha(line: &str) -> bool {
    FAILING.is_match(line)
}

/// One failure block: its title lines and the lines after them.
struct Block {
    title: Vec<String>,
    titled: bool,
    body: Vec<String>,
}

pub(super) fn parse(text: &str, sink: &mut Sink<'_>) {
    let text = strip_ansi(text);
    let mut lines = text.lines();
    if !lines.by_ref().any(|l| FAILING.is_match(l)) {
        return;
    }
    let mut blocks: Vec<Block> = Vec::new();
    for line in lines {
        if let Some(header) = HEADER.captures(line) {
            let first = header.get(2).map_or("", |m| m.as_str()).trim().to_string();
            let titled = first.ends_with(':');
            blocks.push(Block {
                title: vec![first.trim_end_matches(':').to_string()],
                titled,
                body: Vec::new(),
            });
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        if !block.titled {
            let part = line.trim();
            if part.is_empty() {
                continue;
            }
            block.titled = part.ends_with(':');
            block.title.push(part.trim_end_matches(':').to_string());
        } else {
            block.body.push(line.to_string());
        }
    }
    for block in &blocks {
        add(block, sink);
    }
}

fn add(block: &Block, sink: &mut Sink<'_>) {
    let name = block.title.join(" ");
    let message = block
        .body
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !FRAME.is_match(l))
        .unwrap_or("the test failed");
    let mut place: Option<(String, u32, u32)> = None;
    for line in &block.body {
        let Some(frame) = FRAME.captures(line) else {
            continue;
        };
        let function = frame.get(1).map_or("", |m| m.as_str());
        let file = frame.get(2).map_or("", |m| m.as_str());
        if file.starts_with("node:") || file.contains("node_modules/") {
            continue;
        }
        let number = |i: usize| frame.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let (Some(line), Some(column)) = (number(3), number(4)) else {
            continue;
        };
        let own = function.starts_with("Context.");
        if own || place.is_none() {
            place = Some((file.to_string(), line, column));
        }
        if own {
            break;
        }
    }
    let (file, line, column) = match &place {
        Some((file, line, column)) => (Some(file.as_str()), Some(*line), Some(*column)),
        None => (None, None, None),
    };
    sink.add(Found {
        file,
        line,
        column,
        message,
        test: Some(&name),
        ..Found::default()
    });
}
