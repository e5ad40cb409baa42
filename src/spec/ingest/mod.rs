//! Markdown text to the [`Spec`] model: one pass over the lines, with the heading each line
//! sits under deciding what its list items are. Unknown structure degrades to free form and
//! nothing is dropped: a line that is no requirement, criterion, story, scenario or listed
//! item lands in a paragraph. HTML comments (template guidance) are the one thing skipped.
//!
//! The pass itself and the format detection are here; [`roles`] reads headings, [`builder`]
//! turns lines into the model, [`statements`] reads EARS and markers, [`fallback`] finds the
//! requirements of specs that list none, and [`ids`] names what the spec left unnamed.

mod builder;
mod fallback;
mod ids;
mod roles;
mod statements;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use regex::Regex;

use super::model::*;
use super::text::{chars, clip, col, offset_in, plain, word_count};
use super::MAX_LINE_BYTES;
use crate::diag::{Code, Diagnostic};

use builder::*;
use fallback::*;
use ids::*;
use roles::*;
use statements::*;

static HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$").expect("valid regex"));
static LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([ \t]*)(?:[-*+]|\d{1,9}(?:\.\d{1,9})*[.)])[ \t]+(?:\[([ xX])\][ \t]+)?(.*)$")
        .expect("valid regex")
});
/// An id at the start of an item: `**FR-001**:`, `FR-001:`, `[NFR-2]`, `SC-003 -`, kept as
/// written: `FR-12345`, and the letter suffixes Spec Kit's clarify adds (`FR-011a`, `SC-006A`).
static LEADING_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\*\*|__)?\[?(?P<id>[A-Z]{1,6}(?:-[A-Z]{2,12})?-?\d{1,9}[A-Za-z]?(?:\.\d{1,3})*)\b\]?(?:\*\*|__)?(?P<sep>[ \t]*[:.)–—-]?[ \t]*(?:\*\*|__)?[ \t]*)",
    )
    .expect("valid regex")
});
static STORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^user\s+story\s+(\d{1,4})\s*[-–—:]?\s*(.*?)\s*(?:\(\s*priority\s*:\s*(P\d+)\s*\))?\s*(?:🎯.*)?$")
        .expect("valid regex")
});
static KIRO_REQUIREMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:requirement\s+|要件\s*|需求\s*)(\d{1,4})\s*(?:[:.\-–—：]\s*(.*))?$")
        .expect("valid regex")
});
static GWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bgiven\b[\s*_]*(?P<given>.*?),?[\s*_]*\bwhen\b[\s*_]*(?P<when>.*?),?[\s*_]*\bthen\b[\s*_]*(?P<then>.*)$")
        .expect("valid regex")
});
static EARS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?P<kw>when|while|if|where)\b(?P<cond>.*?)(?:,\s*|\s+)(?:then\s+)?(?P<resp>(?:the\s+)?\S+(?:\s+\S+)?\s+shall\b.*)$")
        .expect("valid regex")
});
static CLARIFY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[\s*needs\s+clarification\s*:?\s*(?P<text>[^\]]*)\]").expect("valid regex")
});
/// `line` with its first clarification marker whose text is `marker` replaced by `answer`.
pub(crate) fn replace_marker(line: &str, marker: &str, answer: &str) -> String {
    let mut done = false;
    CLARIFY
        .replace_all(line, |c: &regex::Captures<'_>| {
            let text = c.name("text").map_or("", |m| m.as_str()).trim();
            if !done && text == marker {
                done = true;
                answer.to_string()
            } else {
                c[0].to_string()
            }
        })
        .into_owned()
}

static MODAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(must|shall|should|needs? to|has to|have to|is required to|are required to)\b",
    )
    .expect("valid regex")
});

fn detect(lines: &[(u32, &str)]) -> Format {
    let (mut speckit, mut kiro, mut headings, mut known, mut tasks) = (0, 0, 0, 0, 0);
    for (_, line) in lines {
        let t = line.trim_start();
        if let Some(c) = HEADING.captures(line) {
            headings += 1;
            let title = plain(c.get(2).map_or("", |m| m.as_str()));
            if STORY.is_match(&title) {
                speckit += 2;
            }
            if KIRO_REQUIREMENT.is_match(&title) {
                kiro += 2;
            }
            if title.to_lowercase().starts_with("feature specification") {
                speckit += 3;
            }
            if role_of(&title) != Role::Unknown {
                known += 1;
            }
            continue;
        }
        if t.contains("**FR-") || t.contains("**SC-") {
            speckit += 1;
        }
        if t.contains("**Given**") {
            speckit += 1;
        }
        let upper = t.to_uppercase();
        if upper.contains(" SHALL ") && (upper.contains("WHEN ") || upper.contains("IF ")) {
            kiro += 1;
        }
        if LIST_ITEM.captures(line).is_some_and(|c| c.get(2).is_some()) {
            tasks += 1;
        }
    }
    if speckit >= 2 && speckit >= kiro {
        Format::SpecKit
    } else if kiro >= 2 {
        Format::Kiro
    } else if known == 0 && headings <= 1 && (tasks > 0 || headings == 0) {
        Format::Issue
    } else {
        Format::FreeForm
    }
}

/// Read `text` into the model. Never fails; the diagnostics are those of the text itself
/// (empty, lines too long). `checks` adds the rest.
/// Whether a heading is one the reader knows the role of (`Acceptance Criteria`, `Overview`…)
/// rather than a topic of the spec's own (`Pod to Pod pid isolation`).
pub(super) fn known_heading(title: &str) -> bool {
    role_of(title) != Role::Unknown
}

pub(super) fn ingest(path: &str, text: &str) -> (Spec, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut spec = Spec::empty(path);
    if text.trim().is_empty() {
        diagnostics.push(
            Diagnostic::new(Code::SpecEmpty, "the spec is empty")
                .at(path, None, "")
                .help("write the requirements, one per bullet, and how to check them"),
        );
        return (spec, diagnostics);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = split_lines(path, text, &mut diagnostics);
    spec.lines = lines.len() as u32;
    spec.words = word_count(text);
    spec.format = detect(&lines);

    let mut b = Builder {
        path,
        spec,
        diagnostics: Vec::new(),
        stack: Vec::new(),
        story: None,
        kiro: None,
        paragraph: None,
        prose: Vec::new(),
        paragraph_no: 0,
        last: Last::None,
        scenario_seq: 0,
        list_indent: None,
        consumed: 0,
        question_line: None,
        question_of: Vec::new(),
    };
    read_body(&mut b, &lines);
    finish(b, diagnostics)
}

/// The lines of `text` with their 1-based numbers: `\r`s dropped, each line clipped
/// to [`MAX_LINE_BYTES`] (with a diagnostic), the empty line after a final newline left out.
fn split_lines<'t>(
    path: &str,
    text: &'t str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(u32, &'t str)> {
    let mut lines: Vec<(u32, &str)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = if line.len() > MAX_LINE_BYTES {
            diagnostics.push(
                Diagnostic::new(
                    Code::LineTooLong,
                    format!(
                        "line {no} is {} bytes long; only its first {MAX_LINE_BYTES} bytes are analysed",
                        line.len()
                    ),
                )
                // No span: the renderer would quote the whole line.
                .at(path, None, "")
                .help("break the line, or move the blob into a file the spec links to"),
            );
            clip(line, MAX_LINE_BYTES)
        } else {
            line
        };
        lines.push((no, line));
    }
    if lines.last().is_some_and(|(_, l)| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// The pass over the lines: code fences and comments, headings, bold labels, list items and
/// paragraphs, each handed to the builder.
fn read_body(b: &mut Builder<'_>, lines: &[(u32, &str)]) {
    let mut fence: Option<&str> = None;
    let mut in_comment = false;
    let mut issue_title_pending = b.spec.format == Format::Issue;
    for (index, &(no, line)) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if b.consumed > 0 && fence.is_none() && !in_comment {
            b.consumed -= 1;
            b.clarifications(no, line);
            continue;
        }
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            b.add_prose(no, line, line, false);
            continue;
        }
        if in_comment {
            if trimmed.contains("-->") {
                in_comment = false;
            }
            continue;
        }
        if trimmed.starts_with("<!--") {
            in_comment = !trimmed.contains("-->");
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            // A fence indented under a list item belongs to it: the list goes on after it.
            if !(line.starts_with(' ') || line.starts_with('\t')) {
                b.last = Last::None;
                b.list_indent = None;
            }
            b.add_prose(no, line, line, false);
            continue;
        }
        if trimmed.is_empty() {
            b.flush_paragraph();
            continue;
        }
        if let Some(c) = HEADING.captures(line) {
            let level = c.get(1).map_or(1, |m| m.as_str().len()) as u8;
            let title = c.get(2).map_or("", |m| m.as_str());
            if !title.is_empty() {
                issue_title_pending = false;
                b.heading(no, line, level, title);
                b.clarifications(no, line);
                continue;
            }
        }
        if issue_title_pending {
            issue_title_pending = false;
            b.spec.title = Some(plain(trimmed));
            let at = Location::new(no, col(line, offset_in(line, trimmed)), chars(trimmed));
            b.spec.sections.push(Section {
                title: plain(trimmed),
                level: 1,
                location: at,
                end_line: no,
            });
            b.clarifications(no, line);
            continue;
        }
        if trimmed == "---" || trimmed == "***" || trimmed == "___" {
            b.flush_paragraph();
            b.last = Last::None;
            b.list_indent = None;
            continue;
        }
        if let Some(label) = BOLD_LABEL.captures(trimmed) {
            let label = plain(label.name("label").map_or("", |m| m.as_str()));
            let at = Location::new(no, col(line, offset_in(line, trimmed)), chars(trimmed));
            if b.label(label.trim(), &plain(trimmed), at) {
                continue;
            }
        }
        if let Some(c) = LIST_ITEM.captures(line) {
            let body = c.get(3).map_or("", |m| m.as_str());
            if !body.trim().is_empty() {
                let indent = indent_width(c.get(1).map_or("", |m| m.as_str()));
                // A hard-wrapped item: its indented lines are part of it.
                let (joined, taken) = wrapped(body, &lines[index + 1..], indent);
                b.consumed = taken;
                let nested =
                    b.list_indent.is_some_and(|p| indent > p) && !matches!(b.last, Last::None);
                if nested {
                    // A sub-bullet details the item it hangs from.
                    b.continuation(&joined);
                } else {
                    b.list_indent = Some(indent);
                    b.list_item(no, line, c.get(2).map(|m| m.as_str()), body, &joined);
                }
                b.clarifications(no, line);
                continue;
            }
        }
        // `**FR-001**: …` written as a paragraph of its own, not as a list item.
        if trimmed.starts_with("**")
            && LEADING_ID
                .captures(trimmed)
                .is_some_and(|c| c.name("id").is_some_and(|m| m.as_str().contains('-')))
        {
            let (joined, taken) = wrapped(trimmed, &lines[index + 1..], 0);
            b.consumed = taken;
            b.list_indent = None;
            b.list_item(no, line, None, trimmed, &joined);
            b.clarifications(no, line);
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented && b.paragraph.is_none() && b.continuation(trimmed) {
            b.clarifications(no, line);
            continue;
        }
        // A scenario or a Kiro user story written as a paragraph.
        if story_paragraph(b, no, line, trimmed) {
            continue;
        }
        b.last = Last::None;
        if !indented {
            b.list_indent = None;
        }
        b.add_prose(no, line, trimmed, true);
        b.clarifications(no, line);
    }
}

/// A Kiro user story (`User Story:`, `Objective:`…) written as a paragraph under a
/// requirement: it becomes the requirement's story. Whether the line was one.
fn story_paragraph(b: &mut Builder<'_>, no: u32, line: &str, trimmed: &str) -> bool {
    // A scenario or a Kiro user story written as a paragraph.
    let shown = plain(trimmed);
    // Kiro's `User Story:`, cc-sdd's `Objective:`, and the same in Japanese and Chinese.
    let story_line = [
        "User Story:",
        "User story:",
        "Objective:",
        "ユーザーストーリー:",
        "ユーザーストーリー：",
        "用户故事:",
        "用户故事：",
    ]
    .iter()
    .find_map(|p| shown.strip_prefix(p));
    if let Some(rest) = story_line {
        if let Some((_, k)) = b.kiro {
            let rest = rest.trim().to_string();
            let n = b.spec.requirements[k]
                .id
                .trim_start_matches('R')
                .to_string();
            let at = Location::new(no, col(line, offset_in(line, trimmed)), chars(trimmed));
            b.spec.stories.push(UserStory {
                id: format!("US{n}"),
                title: rest.clone(),
                priority: None,
                location: at,
                scenarios: Vec::new(),
            });
            let req = &mut b.spec.requirements[k];
            req.text = format!("{}: {rest}", req.text);
            b.flush_paragraph();
            b.last = Last::Requirement(k);
            return true;
        }
    }
    // A KEP's `#### Story 1` tells its story as a paragraph: `As a user, I would like …`.
    let lower = shown.to_lowercase();
    if b.role() == Role::Stories
        && b.paragraph.is_none()
        && (lower.starts_with("as a ") || lower.starts_with("as an "))
    {
        let n = b.spec.stories.len() + 1;
        let at = Location::new(no, col(line, offset_in(line, trimmed)), chars(trimmed));
        b.spec.stories.push(UserStory {
            id: format!("US{n}"),
            title: shown,
            priority: None,
            location: at,
            scenarios: Vec::new(),
        });
    }
    false
}

/// After the pass: the last paragraph, the end of the last section, the fallback requirements,
/// the ids, and which requirement each question is about.
fn finish(mut b: Builder<'_>, mut diagnostics: Vec<Diagnostic>) -> (Spec, Vec<Diagnostic>) {
    b.flush_paragraph();
    if let Some(last) = b.spec.sections.last_mut() {
        last.end_line = b.spec.lines.max(last.location.line);
    }
    let none = |spec: &Spec| {
        spec.requirements
            .iter()
            .all(|r| r.kind == RequirementKind::Constraint)
    };
    if none(&b.spec) {
        goal_requirements(&mut b.spec);
    }
    let stories = if none(&b.spec) {
        story_requirements(&mut b.spec)
    } else {
        Vec::new()
    };
    if none(&b.spec) {
        prose_requirements(&mut b);
    }
    assign_ids(&mut b.spec);
    link_story_scenarios(&mut b.spec, &stories);
    for &(q, r) in &b.question_of {
        let id = b.spec.requirements.get(r).map(|r| r.id.clone());
        if let Some(q) = b.spec.clarifications.get_mut(q) {
            q.requirement = id.filter(|id| !id.is_empty());
        }
    }
    let _ = b.path;
    diagnostics.append(&mut b.diagnostics);
    (b.spec, diagnostics)
}

/// The width of a list item's indentation (a tab is four columns).
fn indent_width(indent: &str) -> usize {
    indent.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

/// A list item's text with the lines that continue it (indented deeper than its marker, up
/// to a blank line, a list item, a heading or a fence), and how many lines those are.
fn wrapped(body: &str, rest: &[(u32, &str)], indent: usize) -> (String, u32) {
    let mut text = body.trim_end().to_string();
    let mut taken = 0;
    for &(_, line) in rest {
        let t = line.trim();
        let deeper = indent_width(&line[..line.len() - line.trim_start().len()]) > indent;
        if t.is_empty()
            || !deeper
            || LIST_ITEM.is_match(line)
            || HEADING.is_match(line)
            || t.starts_with("```")
            || t.starts_with("~~~")
            || t.starts_with("<!--")
            || t.starts_with('|')
        {
            break;
        }
        text.push(' ');
        text.push_str(t);
        taken += 1;
    }
    (text, taken)
}
