//! Specs: a Markdown spec (Spec Kit, Kiro `requirements.md`, free form, issue text) read into
//! one typed model ([`Spec`]), checked into located diagnostics, and scored for complexity in
//! five weighted dimensions, looking at the repository it is about.
//!
//! `parse` never fails and never panics: whatever it cannot place becomes a paragraph, and
//! every problem is a diagnostic. `analyse` adds the checks, the complexity and the questions.
//! The only I/O is reading the spec, the project's `analysis:` config and walking the
//! repository (bounded).

mod analysis;
mod checks;
pub mod clarify;
pub mod complexity;
pub mod config;
mod ingest;
pub mod model;
pub mod repo;
mod text;

pub(crate) use text::outside_fences;

use std::path::Path;

use crate::diag::{Code, Diagnostic, Diagnostics, SourceFile, Span};

pub use analysis::{
    analyse, analyse_file, Analysis, CriterionRow, Question, RepoSummary, RequirementRow, Summary,
};
pub use complexity::{Complexity, Dimension, Tier};
pub use config::AnalysisConfig;
pub use model::{
    Clarification, CriterionKind, Ears, Format, Item, Location, Paragraph, Requirement,
    RequirementKind, Scenario, Section, Spec, SuccessCriterion, UserStory,
};

/// The largest spec read, in bytes (4 MiB). Larger files are refused with a diagnostic.
pub const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;

/// Lines longer than this (in bytes) are analysed only up to it, with a warning.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Read a spec's text into the model, with the diagnostics of reading it (format problems,
/// duplicate ids, coverage, vague terms, clarification markers). `path` is the display name
/// used in locations.
///
/// At most 100 diagnostics of one code are returned, plus one that counts the rest.
pub fn parse(path: &str, text: &str) -> (Spec, Vec<Diagnostic>) {
    let (spec, mut diagnostics) = parse_all(path, text);
    checks::cap(path, &mut diagnostics);
    (spec, diagnostics)
}

/// [`parse`] without the cap on diagnostics.
fn parse_all(path: &str, text: &str) -> (Spec, Vec<Diagnostic>) {
    let (mut spec, mut diagnostics) = ingest::ingest(path, text);
    checks::check(text, &mut spec, &mut diagnostics);
    (spec, diagnostics)
}

/// [`parse`] for raw bytes: refuses files over [`MAX_SPEC_BYTES`], text that is not UTF-8,
/// and empty specs, each with a diagnostic (and an empty model).
pub fn parse_bytes(path: &str, bytes: &[u8]) -> (Spec, Vec<Diagnostic>) {
    let (spec, mut diagnostics) = parse_bytes_all(path, bytes);
    checks::cap(path, &mut diagnostics);
    (spec, diagnostics)
}

fn parse_bytes_all(path: &str, bytes: &[u8]) -> (Spec, Vec<Diagnostic>) {
    if bytes.len() > MAX_SPEC_BYTES {
        let d = Diagnostic::new(
            Code::SpecTooLarge,
            format!(
                "the spec is {} bytes, more than the {} bytes a spec may have",
                bytes.len(),
                MAX_SPEC_BYTES
            ),
        )
        .at(path, None, "")
        .help("split the spec into one spec per feature");
        return (Spec::empty(path), vec![d]);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_all(path, text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The text before the bad byte is valid UTF-8, so this cannot fail.
            let before = std::str::from_utf8(valid).unwrap_or("");
            let line = before.matches('\n').count() as u32 + 1;
            let col = before
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count())
                .unwrap_or(0) as u32
                + 1;
            let d = Diagnostic::new(
                Code::SpecNotUtf8,
                format!("the spec is not UTF-8 text (byte {})", e.valid_up_to()),
            )
            .at(path, Some(Span::new(line, col, 1)), "")
            .label("invalid UTF-8 here")
            .help("save the spec as UTF-8");
            (Spec::empty(path), vec![d])
        }
    }
}

/// Diagnostics of one spec, with its text as the source the renderer quotes.
pub fn collect(path: &str, text: &str, items: Vec<Diagnostic>) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    diagnostics.add_source(SourceFile::new(path, text));
    for d in items {
        diagnostics.push(d);
    }
    diagnostics
}

/// The display name of `path` seen from `base` (relative when it is under it).
pub fn display_name(path: &Path, base: &Path) -> String {
    crate::project::display_path(path, base)
}
