//! User-facing diagnostics: a stable code, a location (file:line:col plus the YAML path), a
//! message, a label under the offending text and a `help:` line. Collected, sorted, rendered.
//!
//! This module never decides *what* is wrong; the stages that find problems build
//! [`Diagnostic`]s and push them into a [`Diagnostics`] collection.

mod codes;
mod render;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use codes::{Code, CodeInfo, ALL_CODES};
pub use render::{render_json, render_text, RenderOptions};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A region of a source file. Lines and columns are 1-based; `len` is in characters and at
/// least 1 so that a caret can always be drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Span {
    pub fn new(line: u32, col: u32, len: u32) -> Span {
        Span {
            line,
            col,
            len: len.max(1),
        }
    }
}

/// A source file known to the diagnostics, so that the renderer can quote its lines.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown to users (a path relative to the working directory, or
    /// `builtin:missions/<name>/mission.yaml` for missions compiled into the binary).
    pub name: String,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The text of 1-based line `line`, without its line terminator.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let line = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text.lines().nth(line)
    }
}

/// One problem found in user input.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The file's display name; empty when the problem is not tied to a file.
    pub file: String,
    pub span: Option<Span>,
    /// The YAML path of the offending key or value, like `phases.review.needs[0]`.
    pub path: String,
    /// A short note drawn under the offending text.
    pub label: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.info().severity,
            message: message.into(),
            file: String::new(),
            span: None,
            path: String::new(),
            label: None,
            help: None,
        }
    }

    pub fn at(mut self, file: &str, span: Option<Span>, path: impl Into<String>) -> Diagnostic {
        self.file = file.to_string();
        self.span = span;
        self.path = path.into();
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every diagnostic found in one go, plus the sources they point into.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    sources: Vec<SourceFile>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        if !self.items.contains(&diagnostic) {
            self.items.push(diagnostic);
        }
    }

    pub fn add_source(&mut self, source: SourceFile) {
        if !self.sources.iter().any(|s| s.name == source.name) {
            self.sources.push(source);
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceFile> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for source in other.sources {
            self.add_source(source);
        }
        for item in other.items {
            self.push(item);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics in reading order: by file, then position, then code.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by(|a, b| {
            (&a.file, a.span.unwrap_or_default(), a.code, &a.message).cmp(&(
                &b.file,
                b.span.unwrap_or_default(),
                b.code,
                &b.message,
            ))
        });
        items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
}

/// `help: did you mean `x`?` for the closest candidate, if any is close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(wrong, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate most similar to `wrong`, when it is similar enough to be a likely typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != wrong)
        .map(|c| (strsim::jaro_winkler(&wrong_lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A list of names for a message: "`a`, `b` or `c`".
pub fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
