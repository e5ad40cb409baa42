//! How a check's command ended, read from its exit status and what it printed: it passed, it
//! failed (the work is wrong), it ran no test at all, or it could not run (the command, not
//! the work, is wrong: a missing manifest, a program that is not installed, no such script).
//! And where a command runs ([`command_dir`]: `cd web && npm test` runs in `web`), so that
//! the relative paths its tools print are placed in the project.

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{is_project_path, strip_ansi, Error, Severity};

/// How a command of a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It exited with 0 (and ran tests, if it is a test runner).
    Passed,
    /// It exited with another status: the work is wrong.
    Failed,
    /// It ran no test (`no tests ran`, pytest's exit 5, `0 passed`, `[no test files]`, Jest's
    /// `No tests found`): nothing was checked. It does not fail the check, and is not a pass.
    NoTests,
    /// It could not run at all: the command is wrong, not the work (`could not find
    /// Cargo.toml`, `command not found`, exit 126 or 127, a missing script or configuration).
    CannotRun,
    /// It ran past the phase's timeout and was stopped.
    TimedOut,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::NoTests => "no tests",
            Outcome::CannotRun => "cannot run",
            Outcome::TimedOut => "timed out",
        }
    }

    /// The outcome of a check of several commands: the worst of theirs.
    pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        let rank = |o: Outcome| match o {
            Outcome::Passed => 0,
            Outcome::NoTests => 1,
            Outcome::Failed => 2,
            Outcome::CannotRun => 3,
            Outcome::TimedOut => 4,
        };
        outcomes
            .into_iter()
            .max_by_key(|o| rank(*o))
            .unwrap_or(Outcome::Passed)
    }
}

/// Lines that say the command itself cannot run (not that the work is wrong).
static CANNOT_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^(?:",
        r"error: could not find `Cargo\.toml`",
        r"|error: manifest path `[^`]*` does not exist",
        r"|.*: command not found$",
        r"|(?:sh|bash|dash|zsh): (?:\d+: |line \d+: )?.*: not found$",
        r"|(?:sh|bash|dash|zsh): (?:\d+: |line \d+: )?.*: Permission denied$",
        r"|npm (?:ERR!|error) Missing script:",
        r"|Error: no test specified$",
        r"|npm (?:ERR!|error) (?:code ENOENT|enoent)",
        r"|.*ERR_PNPM_NO_SCRIPT",
        r"|.*ERR_PNPM_NO_IMPORTER_MANIFEST_FOUND",
        r#"|error Command "[^"]*" not found"#,
        r"|npm (?:ERR!|error) could not determine executable to run",
        r"|go: go\.mod file not found",
        r"|go: cannot find main module",
        r"|pattern .*: directory prefix .* does not contain main module",
        r"|.*: No module named '?pytest'?$",
        r"|.*: can't open file .*No such file or directory",
        r"|ERROR: file or directory not found: ",
        r"|ERROR: usage: ",
        r"|.*: error: unrecognized arguments: ",
        r"|ESLint couldn't find (?:an eslint\.config|a configuration file)",
        r"|error TS5\d\d\d: ",
        r"|make: \*\*\* No rule to make target '[^']*'\.\s+Stop\.",
        r"|make: \*\*\* No targets specified and no makefile found",
        r"|Error: Cannot find module '[^']*/(?:jest|vitest|eslint|typescript)[^']*'",
        r")"
    ))
    .expect("regex")
});

/// Lines that say no test ran.
static NO_TESTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?:^=* ?no tests ran\b",
        r"|^collected 0 items",
        r"|^Ran 0 tests\b",
        r"|^NO TESTS RAN",
        r"|^No tests found, exiting with code",
        r"|^No test files found, exiting with code",
        r"|\[no test files\]$",
        r"|\[no tests to run\]$",
        r"|^testing: warning: no tests to run",
        r"|^running 0 tests$",
        r"|^\s*0 passing\b",
        r"|^\W*0 passed\b",
        r"|^no tests to run\b",
        r"|^error: no tests to run$",
        r")"
    ))
    .expect("regex")
});

/// Counts that say tests ran (when one is not 0): `3 passed`, `1 failed`, `Ran 4 tests`.
static COUNTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:(\d+) (?:passed|passing|failed|failing|errors?)\b|Ran (\d+) tests?\b)")
        .expect("regex")
});

/// Go's lines for a package whose tests ran (`ok  example.com/x  0.01s`, `--- PASS`).
static GO_RAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:ok\s+\S+\s+(?:\(cached\)|[\d.]+s)|--- (?:PASS|FAIL): |\{.*"Action":"(?:pass|fail)".*"Test":)"#)
        .expect("regex")
});

/// How a command ended, and the line of its output that tells when it did not simply pass or
/// fail. `errors` are those its output gave; `exit_code` is `None` when it was killed.
pub fn classify(
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
    errors: &[Error],
) -> (Outcome, Option<String>) {
    let Some(code) = exit_code else {
        return (Outcome::Failed, None);
    };
    let failing = errors.iter().any(|e| e.severity == Severity::Error);
    let placed = errors
        .iter()
        .any(|e| e.severity == Severity::Error && e.file.as_deref().is_some_and(is_project_path));
    let lines = || {
        stderr
            .lines()
            .chain(stdout.lines())
            .take(20_000)
            .map(|l| strip_ansi(l).trim().to_string())
    };
    if code != 0 && !placed {
        if let Some(line) = lines().find(|l| CANNOT_RUN.is_match(l)) {
            return (Outcome::CannotRun, Some(super::cut(&line, 500)));
        }
        if code == 126 || code == 127 {
            let line = lines()
                .find(|l| !l.is_empty())
                .unwrap_or_else(|| format!("exit {code}: the shell could not run the command"));
            return (Outcome::CannotRun, Some(super::cut(&line, 500)));
        }
    }
    if !failing {
        let mut marker = None;
        let mut ran = false;
        let mut says_exit = false;
        for line in lines() {
            if GO_RAN.is_match(&line) && !line.contains("[no tests to run]") {
                ran = true;
            }
            for c in COUNTS.captures_iter(&line) {
                let n = c.get(1).or(c.get(2)).map_or("0", |m| m.as_str());
                if n.parse::<u64>().unwrap_or(0) > 0 {
                    ran = true;
                }
            }
            if NO_TESTS.is_match(&line) {
                // The last one says it best (pytest's `collected 0 items`, then `no tests ran`).
                // cargo-nextest ends with exit 4 when its filters left no test.
                says_exit |=
                    line.contains("exiting with code") || line.starts_with("error: no tests");
                marker = Some(line);
            }
        }
        if let (Some(line), false) = (marker, ran) {
            if code == 0 || code == 5 || says_exit {
                return (Outcome::NoTests, Some(super::cut(&line, 500)));
            }
        }
    }
    if code == 0 {
        (Outcome::Passed, None)
    } else {
        (Outcome::Failed, None)
    }
}

/// Where a command runs, relative to the check's working directory, when it says so: a
/// leading `cd <dir> &&` (or `;`), `make -C <dir>`, `cargo … --manifest-path <dir>/Cargo.toml`,
/// `npm --prefix <dir>`, `pnpm -C <dir>` / `--dir <dir>`, `yarn --cwd <dir>`, `go -C <dir>`.
/// Only a directory inside the working directory (relative, without `..`) counts.
pub fn command_dir(command: &str) -> Option<String> {
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect();
    let clean = |dir: &str| -> Option<String> {
        let dir = dir.trim_end_matches('/');
        let dir = dir.strip_prefix("./").unwrap_or(dir);
        (dir != "." && is_project_path(dir)).then(|| dir.to_string())
    };
    let mut dir: Option<String> = None;
    if words.first().map(String::as_str) == Some("cd") {
        if let Some(target) = words.get(1) {
            let target = target.trim_end_matches(';');
            let next = words.get(2).map(String::as_str);
            if target.len() < words[1].len() || matches!(next, Some("&&") | Some(";")) {
                dir = clean(target);
            }
        }
    }
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        let found = match (word, next) {
            ("-C" | "--directory" | "--prefix" | "--dir" | "--cwd", Some(d)) => Some(d.to_string()),
            ("--manifest-path", Some(p)) => Some(
                p.strip_suffix("Cargo.toml")
                    .unwrap_or(p)
                    .trim_end_matches('/')
                    .to_string(),
            ),
            _ => [
                "--manifest-path=",
                "--prefix=",
                "--dir=",
                "--cwd=",
                "--directory=",
            ]
            .iter()
            .find_map(|flag| word.strip_prefix(flag))
            .map(|v| {
                v.strip_suffix("Cargo.toml")
                    .unwrap_or(v)
                    .trim_end_matches('/')
                    .to_string()
            }),
        };
        if let Some(found) = found.and_then(|d| clean(&d)) {
            dir = Some(match dir {
                Some(outer) => format!("{outer}/{found}"),
                None => found,
            });
            break;
        }
        i += 1;
    }
    dir
}
