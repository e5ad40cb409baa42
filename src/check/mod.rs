//! The project's checks, read back: error parsers for what compilers, linters and test runners
//! print (`builtin/check`), the `errors.json` document they fill (its JSON Schema is published:
//! `spectacular schema errors`), its Markdown summary and GitHub annotations (`render.rs`), and
//! the validator's `verdicts.json` (`verdicts.rs`, `spectacular schema verdicts`).
//!
//! One file per parser family:
//!
//! - `cargo.rs`: `cargo --message-format=json` (compiler messages) and libtest's report
//!   (panics, `should_panic` tests that did not panic, tests that returned `Err`), as cargo
//!   test prints it or cargo-nextest does;
//! - `compiler.rs`: rustc's human output, and gcc's and clang's `file:line:col: severity:`;
//! - `pytest.rs`: pytest's report in every `--tb` style, and unittest's;
//! - `gotest.rs`: `go test`, plain and `-json` (test2json events, build output, panics);
//! - `tsc.rs`: TypeScript's `file(line,col): error TS…` and its pretty form;
//! - `eslint.rs`: the default `stylish` formatter and `eslint -f json`;
//! - `jest.rs`: Jest's and Vitest's default reporters, `jest --json` and Vitest's `json`
//!   reporter (the same shape);
//! - `mocha.rs`: Mocha's default `spec` reporter;
//! - `ruff.rs`: Ruff's `full` (default) and `concise` formats, `ruff format --check`;
//! - `mypy.rs`: mypy, `--pretty` included;
//! - `generic.rs`: any `file:line[:col]: message`, the fallback when no other parser found
//!   anything in a command's output.
//!
//! `outcome.rs` tells how a command ended from its exit status and output ([`classify`]:
//! passed, failed, ran no tests, cannot run) and where it runs ([`command_dir`]).
//!
//! [`detect`] picks the parsers from the command and from the output's shape; [`Errors`]
//! collects what they find: paths normalised relative to the check's working directory (a
//! relative one placed where the command runs), messages cleaned (no terminal escapes) and
//! bounded, duplicates dropped (a failing test by its name and place), at most
//! [`MAX_ERRORS`] kept (the rest counted).
//!
//! **Invariant:** pure. No file, process, clock or environment access: the builtin runs the
//! commands and reads their output (bounded), this module only reads text it is given. Hostile
//! output (any size, any bytes, deep JSON) gives errors or nothing, never a panic, in memory
//! bounded by the input. A path in an error is text to show: nothing ever writes to it.

mod cargo;
mod compiler;
mod eslint;
mod generic;
mod gotest;
mod jest;
mod mocha;
mod mypy;
mod outcome;
mod pytest;
pub mod render;
mod ruff;
mod tsc;
pub mod verdicts;

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use outcome::{classify, command_dir, Outcome};
pub use render::{annotations, summary_markdown};

/// The most errors kept from one check; the rest are counted in [`Report::dropped`].
pub const MAX_ERRORS: usize = 1000;
/// The longest message kept, in bytes (longer ones are cut with `…`).
pub const MAX_MESSAGE: usize = 4096;
/// The most bytes of each output stream parsed (the process runner caps what it captures at
/// the same size).
pub const MAX_INPUT: usize = 8 * 1024 * 1024;
/// The longest file path kept, in bytes.
const MAX_PATH: usize = 1024;
/// The longest tool, code or test name kept, in bytes.
const MAX_NAME: usize = 512;

/// How serious an error is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// It fails the check (a compile error, a failed test, a lint at error level).
    Error,
    /// Reported, but it does not fail the check by itself.
    Warning,
    /// Context for another error (a note, a help, a remark).
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One problem a check reported, whatever the tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Check error")]
pub struct Error {
    /// What reported it: `cargo`, `rustc`, `rust-test`, `gcc`, `clang`, `pytest`, `go`, `tsc`,
    /// `eslint`, `jest`, `vitest` or `generic`.
    pub tool: String,
    /// The file, relative to the check's working directory (`/`-separated, no `./`). A file
    /// outside it keeps the absolute path the tool printed. Absent when the tool named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub line: Option<u32>,
    /// The column, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub column: Option<u32>,
    pub severity: Severity,
    /// The tool's code for the problem: `E0308`, `unused_variables`, `TS2322`, `no-unused-vars`,
    /// `-Wunused-variable`, an exception type (`AssertionError`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What is wrong, without terminal colours, at most 4 KiB.
    pub message: String,
    /// The failing test, for test runners (`tests::it_adds`, `tests/test_calc.py::test_add`,
    /// `TestAdd`, `sum adds 1 + 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
}

/// One command of a check, as it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    /// The command, as run with `sh -c`.
    pub command: String,
    /// Did it pass: exit with status 0, having run tests if it is a test runner?
    pub passed: bool,
    /// How it ended: `passed`, `failed`, `no_tests` (it ran no test: nothing was checked),
    /// `cannot_run` (the command is wrong, not the work) or `timed_out`.
    pub outcome: Outcome,
    /// The line of its output that says why it ran no test or cannot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its exit status; absent when it was killed by a signal or did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The parsers that read its output.
    pub parsers: Vec<String>,
    /// How many of [`Report::errors`] came from it, by severity.
    pub errors: usize,
    pub warnings: usize,
    /// Its captured output, relative to the attempt directory.
    pub stdout: String,
    pub stderr: String,
}

/// `errors.json`: what a check ran and every problem its tools reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Did every command pass? (Errors can be listed even then: warnings, or a tool that
    /// prints errors and still exits with 0.)
    pub passed: bool,
    /// How the check ended: the worst outcome of its commands (`timed_out`, `cannot_run`,
    /// `failed`, `no_tests`, `passed`, in that order).
    pub outcome: Outcome,
    /// Where the commands ran, relative to the project root (`.` for the root itself); the
    /// files of `errors` are relative to it.
    pub workdir: String,
    /// The commands, in the order they ran.
    pub commands: Vec<CommandResult>,
    /// The problems, in the order the tools reported them (at most 1,000).
    pub errors: Vec<Error>,
    /// Problems found beyond the 1,000 kept, and left out.
    pub dropped: usize,
}

impl Report {
    /// The distinct files the errors name, in first-seen order: those of `error` severity,
    /// else (when none names a file) those of any severity. Only files inside the working
    /// directory (relative, without `..`), joined to `workdir` so that they are relative to the
    /// project root.
    pub fn files(&self) -> Vec<String> {
        let of = |only_errors: bool| -> Vec<String> {
            let mut seen = HashSet::new();
            self.errors
                .iter()
                .filter(|e| !only_errors || e.severity == Severity::Error)
                .filter_map(|e| e.file.as_deref())
                .filter(|f| is_project_path(f))
                .map(|f| match self.workdir.as_str() {
                    "" | "." => f.to_string(),
                    dir => format!("{}/{f}", dir.trim_end_matches('/')),
                })
                .filter(|f| seen.insert(f.clone()))
                .collect()
        };
        let files = of(true);
        if files.is_empty() {
            of(false)
        } else {
            files
        }
    }

    /// Counts by severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.errors
            .iter()
            .filter(|e| e.severity == severity)
            .count()
    }
}

/// A relative path without `..`, `.` or empty segments: a file of the project.
pub fn is_project_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.starts_with('<')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// The errors JSON Schema's `$id`.
pub const ERRORS_SCHEMA_ID: &str = "https://spectacular.dev/schemas/errors.schema.json";

/// The `errors.json` JSON Schema (draft 2020-12) as a value.
pub fn errors_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut value = generator.into_root_schema_for::<Report>().to_value();
    crate::model::schema::strip_null(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(ERRORS_SCHEMA_ID.into()));
        map.insert("title".into(), Value::String("errors.json".into()));
        map.insert(
            "description".into(),
            Value::String("What `builtin/check` ran and every problem its tools reported.".into()),
        );
    }
    value
}

/// The errors JSON Schema as pretty JSON with a trailing newline.
pub fn errors_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&errors_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// A parser of one tool family's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parser {
    Cargo,
    RustTest,
    Rustc,
    Gcc,
    Pytest,
    GoTest,
    Tsc,
    Eslint,
    Jest,
    Mocha,
    Ruff,
    Mypy,
    Generic,
}

impl Parser {
    pub fn name(self) -> &'static str {
        match self {
            Parser::Cargo => "cargo",
            Parser::RustTest => "rust-test",
            Parser::Rustc => "rustc",
            Parser::Gcc => "gcc",
            Parser::Pytest => "pytest",
            Parser::GoTest => "go",
            Parser::Tsc => "tsc",
            Parser::Eslint => "eslint",
            Parser::Jest => "jest",
            Parser::Mocha => "mocha",
            Parser::Ruff => "ruff",
            Parser::Mypy => "mypy",
            Parser::Generic => "generic",
        }
    }

    fn run(self, text: &str, tool: &str, found: &mut Errors, ctx: &Context) {
        let mut sink = Sink { tool, found, ctx };
        match self {
            Parser::Cargo => cargo::parse_json(text, &mut sink),
            Parser::RustTest => cargo::parse_tests(text, &mut sink),
            Parser::Rustc => compiler::parse_rustc(text, &mut sink),
            Parser::Gcc => compiler::parse_gcc(text, &mut sink),
            Parser::Pytest => {
                pytest::parse(text, &mut sink);
                pytest::parse_unittest(text, &mut sink);
            }
            Parser::GoTest => {
                gotest::parse(text, &mut sink);
                gotest::parse_plain(text, &mut sink);
            }
            Parser::Tsc => tsc::parse(text, &mut sink),
            Parser::Eslint => {
                eslint::parse(text, &mut sink);
                eslint::parse_stylish(text, &mut sink);
            }
            Parser::Jest => {
                jest::parse(text, &mut sink);
                jest::parse_jest(text, &mut sink);
                jest::parse_vitest(text, &mut sink);
            }
            Parser::Mocha => mocha::parse(text, &mut sink),
            Parser::Ruff => ruff::parse(text, &mut sink),
            Parser::Mypy => mypy::parse(text, &mut sink),
            Parser::Generic => generic::parse(text, &mut sink),
        }
    }
}

/// What the parsers need to know besides the text.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The check's working directory (absolute): absolute paths under it become relative.
    /// Give both the path as configured and its canonical form when they differ.
    pub workdirs: Vec<PathBuf>,
    /// The Go module path (`module` of the `go.mod` where the command runs), to place the
    /// files `go test` names relative to their package.
    pub go_module: Option<String>,
    /// Where the command runs, relative to the working directory, when it is not the working
    /// directory itself (`cd web && npm test`: `web`; see [`command_dir`]): the relative paths
    /// its tools print are relative to it.
    pub base: Option<String>,
}

/// The output of one command.
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    pub command: &'a str,
    pub stdout: &'a str,
    pub stderr: &'a str,
}

/// The errors found so far, across commands: bounded and de-duplicated.
#[derive(Debug, Default)]
pub struct Errors {
    pub list: Vec<Error>,
    /// Found beyond [`MAX_ERRORS`].
    pub dropped: usize,
    seen: HashSet<Place>,
}

/// What makes two errors the same: a failing test and its place (a test is one error however
/// many parsers or streams report it, and two tests are two errors even when their messages
/// are the same), else the place and the message.
type Place = (
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u32>,
    String,
);

impl Errors {
    fn add(&mut self, error: Error) {
        let key = match &error.test {
            Some(test) => (
                Some(test.clone()),
                error.file.clone(),
                error.line,
                error.column,
                String::new(),
            ),
            None => (
                None,
                error.file.clone(),
                error.line,
                error.column,
                error.message.clone(),
            ),
        };
        if self.seen.contains(&key) {
            return;
        }
        if self.list.len() >= MAX_ERRORS {
            self.dropped += 1;
            return;
        }
        self.seen.insert(key);
        self.list.push(error);
    }
}

/// Parse one command's output into `found`; returns the names of the parsers that read it.
pub fn parse(output: &Output<'_>, ctx: &Context, found: &mut Errors) -> Vec<&'static str> {
    let stdout = bounded(output.stdout);
    let stderr = bounded(output.stderr);
    let with_base;
    let ctx = match (&ctx.base, command_dir(output.command)) {
        (None, Some(dir)) => {
            with_base = Context {
                base: Some(dir),
                ..ctx.clone()
            };
            &with_base
        }
        _ => ctx,
    };
    let parsers = detect(output.command, stdout, stderr);
    let tool = |parser: Parser| -> &'static str {
        let command = output.command.to_ascii_lowercase();
        match parser {
            Parser::Jest if command.contains("vitest") => "vitest",
            Parser::Gcc if command.contains("clang") => "clang",
            other => other.name(),
        }
    };
    let mut added = 0;
    for &parser in &parsers {
        for text in [stdout, stderr] {
            let before = found.list.len() + found.dropped;
            parser.run(text, tool(parser), found, ctx);
            added += found.list.len() + found.dropped - before;
        }
    }
    let mut names: Vec<&'static str> = parsers.iter().map(|p| p.name()).collect();
    if added == 0 {
        for text in [stdout, stderr] {
            Parser::Generic.run(text, "generic", found, ctx);
        }
        names.push(Parser::Generic.name());
    }
    names
}

/// At most [`MAX_INPUT`] bytes of `text`, cut on a character boundary.
fn bounded(text: &str) -> &str {
    if text.len() <= MAX_INPUT {
        return text;
    }
    let mut end = MAX_INPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The parsers for a command's output: by the command's words, and by the output's shape.
pub fn detect(command: &str, stdout: &str, stderr: &str) -> Vec<Parser> {
    let mut parsers = Vec::new();
    let mut add = |p: Parser| {
        if !parsers.contains(&p) {
            parsers.push(p);
        }
    };
    let lower = command.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '/'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if has("cargo") {
        if lower.contains("message-format=json") || lower.contains("message-format json") {
            add(Parser::Cargo);
        }
        add(Parser::Rustc);
        add(Parser::RustTest);
    }
    if has("rustc") {
        add(Parser::Rustc);
    }
    if [
        "gcc", "g++", "cc", "c++", "clang", "clang++", "make", "cmake", "ninja",
    ]
    .iter()
    .any(|w| has(w))
    {
        add(Parser::Gcc);
    }
    if has("pytest") || lower.contains("-m pytest") || has("unittest") || has("manage.py") {
        add(Parser::Pytest);
    }
    if has("go") && (has("test") || has("vet") || has("build")) {
        add(Parser::GoTest);
    }
    if has("tsc") {
        add(Parser::Tsc);
    }
    if has("eslint") {
        add(Parser::Eslint);
    }
    if has("jest") || has("vitest") {
        add(Parser::Jest);
    }
    if has("mocha") {
        add(Parser::Mocha);
    }
    if has("ruff") {
        add(Parser::Ruff);
    }
    if has("mypy") || has("dmypy") {
        add(Parser::Mypy);
    }
    for text in [stdout, stderr] {
        for parser in shape(text) {
            add(parser);
        }
    }
    parsers
}

/// The parsers whose output `text` looks like (a look at its first lines).
fn shape(text: &str) -> Vec<Parser> {
    let mut found = Vec::new();
    let head = {
        let mut end = text.len().min(256 * 1024);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    };
    let trimmed = head.trim_start();
    for line in head.lines().take(5000) {
        let line = strip_ansi(line);
        let line = line.trim_start();
        let mark = |p: Parser, found: &mut Vec<Parser>| {
            if !found.contains(&p) {
                found.push(p);
            }
        };
        if line.starts_with("{\"reason\":") {
            mark(Parser::Cargo, &mut found);
        } else if line.starts_with('{')
            && (line.contains("\"Action\":") || line.starts_with("{\"ImportPath\":"))
        {
            mark(Parser::GoTest, &mut found);
        } else if line.starts_with('[') && line.contains("\"filePath\"") {
            mark(Parser::Eslint, &mut found);
        } else if line.starts_with('{') && line.contains("\"testResults\"") {
            mark(Parser::Jest, &mut found);
        } else if line.starts_with("error[E") || line.starts_with("--> ") {
            mark(Parser::Rustc, &mut found);
        } else if line.starts_with("thread '") && line.contains("panicked at") {
            mark(Parser::RustTest, &mut found);
        } else if line.contains(" short test summary info ")
            || (line.starts_with("FAIL: ") || line.starts_with("ERROR: ")) && line.ends_with(')')
            || line.starts_with("=== FAILURES ===")
            || line.contains(" test session starts ")
        {
            mark(Parser::Pytest, &mut found);
        } else if line.contains("): error TS") || line.contains(" - error TS") {
            mark(Parser::Tsc, &mut found);
        } else if compiler::looks_like_gcc(line) {
            mark(Parser::Gcc, &mut found);
        } else if mocha::looks_like_mocha(line) {
            mark(Parser::Mocha, &mut found);
        } else if jest::looks_like_human(line) {
            mark(Parser::Jest, &mut found);
        } else if eslint::looks_like_stylish(line) {
            mark(Parser::Eslint, &mut found);
        } else if ruff::looks_like_ruff(line) {
            mark(Parser::Ruff, &mut found);
        } else if mypy::looks_like_mypy(line) {
            mark(Parser::Mypy, &mut found);
        } else if gotest::looks_like_plain(line) {
            mark(Parser::GoTest, &mut found);
        } else if line.starts_with("---- ") && line.ends_with(" stdout ----")
            || line.starts_with("{ \"type\": \"test\"")
            || line.starts_with("{ \"type\": \"suite\"")
            || line.starts_with("test result: ")
        {
            mark(Parser::RustTest, &mut found);
        }
    }
    if trimmed.starts_with('[') && head.contains("\"filePath\"") && !found.contains(&Parser::Eslint)
    {
        found.push(Parser::Eslint);
    }
    if trimmed.starts_with('{')
        && head.contains("\"testResults\"")
        && !found.contains(&Parser::Jest)
    {
        found.push(Parser::Jest);
    }
    found
}

/// Where a parser puts what it finds: it normalises paths and cleans messages.
pub(crate) struct Sink<'a> {
    tool: &'a str,
    found: &'a mut Errors,
    ctx: &'a Context,
}

/// One error as a parser sees it.
#[derive(Default)]
pub(crate) struct Found<'a> {
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub severity: Option<Severity>,
    pub code: Option<&'a str>,
    pub message: &'a str,
    pub test: Option<&'a str>,
}

impl Sink<'_> {
    pub(crate) fn add(&mut self, found: Found<'_>) {
        let message = clean_message(found.message);
        if message.is_empty() {
            return;
        }
        let error = Error {
            tool: cut(self.tool, MAX_NAME),
            file: found.file.and_then(|f| self.normalise(f)),
            line: found.line.filter(|&l| l > 0),
            column: found.column.filter(|&c| c > 0),
            severity: found.severity.unwrap_or(Severity::Error),
            code: found
                .code
                .map(|c| cut(&strip_ansi(c), MAX_NAME))
                .filter(|c| !c.trim().is_empty()),
            message,
            test: found
                .test
                .map(|t| cut(&strip_ansi(t), MAX_NAME))
                .filter(|t| !t.trim().is_empty()),
        };
        self.found.add(error);
    }

    /// The normalised form of a path a tool printed (see [`Error::file`]).
    pub(crate) fn normalise(&self, raw: &str) -> Option<String> {
        normalise_in(raw, &self.ctx.workdirs, self.ctx.base.as_deref())
    }

    /// Is this path, as a tool printed it, a file of the project?
    pub(crate) fn in_project(&self, raw: &str) -> bool {
        self.normalise(raw).is_some_and(|f| is_project_path(&f))
    }

    pub(crate) fn go_module(&self) -> Option<&str> {
        self.ctx.go_module.as_deref()
    }
}

/// A path a tool printed, relative to the first of `workdirs` it is under; a relative path
/// without `.` segments; anything else as written. Control characters make it no path.
pub fn normalise(raw: &str, workdirs: &[PathBuf]) -> Option<String> {
    normalise_in(raw, workdirs, None)
}

/// [`normalise`] for a command that runs in `base` (relative to the working directory): a
/// relative path is joined to it first (`..` going up from it, never above the working
/// directory).
pub fn normalise_in(raw: &str, workdirs: &[PathBuf], base: Option<&str>) -> Option<String> {
    let Some(base) = base.filter(|b| !b.is_empty() && *b != ".") else {
        return normalise_plain(raw, workdirs);
    };
    let plain = normalise_plain(raw, workdirs)?;
    let printed = strip_ansi(raw);
    let printed = printed.trim();
    let printed = printed.strip_prefix("file://").unwrap_or(printed);
    if Path::new(printed).is_absolute() || plain.starts_with('/') {
        // Absolute: already placed relative to the working directory, or outside it.
        return Some(plain);
    }
    let mut parts: Vec<&str> = base
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in plain.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Some(plain);
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Some(plain);
    }
    Some(parts.join("/"))
}

fn normalise_plain(raw: &str, workdirs: &[PathBuf]) -> Option<String> {
    let raw = strip_ansi(raw);
    let raw = raw.trim();
    let raw = raw.strip_prefix("file://").unwrap_or(raw);
    if raw.is_empty() || raw.len() > MAX_PATH || raw.chars().any(char::is_control) {
        return None;
    }
    let path = Path::new(raw);
    if path.is_absolute() {
        for root in workdirs {
            if let Ok(rest) = path.strip_prefix(root) {
                if let Some(clean) = clean_relative(rest) {
                    return Some(clean);
                }
            }
        }
        return Some(raw.to_string());
    }
    Some(clean_relative(path).unwrap_or_else(|| raw.to_string()))
}

/// `path` without `.` segments, `/`-separated; `None` when it has `..` or nothing is left.
fn clean_relative(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// The lines of a tool's output without colour codes or trailing white space.
pub(crate) fn plain_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| strip_ansi(l).trim_end().to_string())
        .collect()
}

/// A severity as compilers and type checkers write it: `error` (and gcc's `fatal error`),
/// `warning`, else a note.
pub(crate) fn severity_word(word: &str) -> Severity {
    match word {
        "fatal error" | "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Note,
    }
}

/// Terminal escape sequences (colours, cursor moves, hyperlinks) removed.
pub(crate) fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\u{1b}') && !text.contains('\u{9b}') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters and intermediates, then one final byte.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    // OSC: up to BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message as recorded: no terminal escapes or control characters but newlines and tabs,
/// trimmed, at most [`MAX_MESSAGE`] bytes.
fn clean_message(text: &str) -> String {
    let text = strip_ansi(text);
    let cleaned: String = text
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect();
    cut(cleaned.trim(), MAX_MESSAGE)
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A number a tool printed, if it fits.
pub(crate) fn number(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod real;
