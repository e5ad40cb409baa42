//! Clarification: the numbered questions a too-ambiguous spec asks before planning, and the
//! answers written back into the spec the way Spec Kit's `/clarify` does (a
//! `## Clarifications` section, a `### Session YYYY-MM-DD` per day, one
//! `- Q: … → A: …` line per answer), each `[NEEDS CLARIFICATION: …]` marker it answers
//! replaced by its answer.
//!
//! Pure: text in, text out. `builtin/clarify` (in `execute/`) reads and writes the file.

use super::analysis::Analysis;
use super::checks::{vague_terms, VAGUE_TERMS};
use crate::record::limits::{one_line, ANSWER_MAX};

pub use crate::config::project::ClarifyConfig;

/// The questions to ask about an analysed spec, marker questions first, then those a
/// clarifier proposed, then (when the ambiguity reaches the threshold) those about vague terms
/// and requirements no criterion checks;
/// `None` when the spec need not ask (no marker remains and the ambiguity is under the
/// threshold), or when it has nothing to ask.
pub fn questions(
    analysis: &Analysis,
    proposed: &[String],
    config: &ClarifyConfig,
) -> Option<Vec<String>> {
    let markers = !analysis.questions.is_empty();
    let ambiguous = analysis.ambiguity >= config.ambiguity;
    if !markers && !ambiguous {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut push = |q: String| {
        let mut q = q;
        one_line(&mut q, ANSWER_MAX);
        if !q.is_empty() && !out.contains(&q) {
            out.push(q);
        }
    };
    for q in &analysis.questions {
        push(match &q.requirement {
            Some(r) => format!("{r}: {}", q.question),
            None => q.question.clone(),
        });
    }
    for q in proposed {
        push(q.clone());
    }
    for r in analysis.requirements.iter().filter(|_| ambiguous) {
        for (term, start, len) in vague_terms(&r.text) {
            if inside_marker(&r.text, start) {
                // The marker asks about it already.
                continue;
            }
            let (word, suggestion) = VAGUE_TERMS[term];
            let found = &r.text[start..start + len];
            let what = if word == "etc" {
                "which cases exactly?".to_string()
            } else {
                format!("what does it mean, measurably ({suggestion})?")
            };
            push(format!("{} says `{found}`: {what}", r.id));
        }
    }
    if !ambiguous {
        // Markers alone: ask what the author left open, nothing more.
    } else if analysis.criteria.is_empty() && !analysis.requirements.is_empty() {
        push("The spec has no acceptance criteria: how will we know it is done?".into());
    } else {
        for r in analysis
            .requirements
            .iter()
            .filter(|r| r.covered_by.is_empty())
        {
            push(format!(
                "How is {} checked? No acceptance criterion covers it.",
                r.id
            ));
        }
    }
    out.truncate(config.max_questions.max(1));
    (!out.is_empty()).then_some(out)
}

/// Is byte `at` of `text` inside a `[NEEDS CLARIFICATION: …]` marker?
fn inside_marker(text: &str, at: usize) -> bool {
    let before = &text[..at];
    before.rfind('[').is_some_and(|open| {
        let marker = &before[open..];
        !marker.contains(']') && marker.to_lowercase().contains("needs clarification")
    })
}

/// The questions a clarifier agent proposed: a JSON array of strings, or the items of a
/// Markdown list (`- …`, `* …`, `1. …`), else each non-empty line. Bounded.
pub fn proposed(text: &str) -> Vec<String> {
    const MAX: usize = crate::record::limits::QUESTIONS_MAX;
    let mut out: Vec<String> = if let Ok(list) = serde_json::from_str::<Vec<String>>(text.trim()) {
        list
    } else {
        let items: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter_map(|l| {
                l.strip_prefix("- ")
                    .or_else(|| l.strip_prefix("* "))
                    .or_else(|| {
                        let digits = l.find(|c: char| !c.is_ascii_digit())?;
                        (digits > 0)
                            .then(|| l[digits..].strip_prefix(". "))
                            .flatten()
                    })
            })
            .collect();
        if !items.is_empty() {
            items.into_iter().map(str::to_string).collect()
        } else {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        }
    };
    out.truncate(MAX);
    for q in &mut out {
        one_line(q, ANSWER_MAX);
    }
    out.retain(|q| !q.is_empty());
    out
}

/// An answer as it may be written into a spec: one line, bounded, and never a clarification
/// marker of its own.
pub fn clean(answer: &str) -> String {
    let mut s = answer.to_string();
    one_line(&mut s, ANSWER_MAX);
    let lower = s.to_lowercase();
    if lower.contains("needs clarification") {
        // An answer that asks again would never let the spec settle.
        s = s.replace('[', "(").replace(']', ")");
    }
    s
}

/// A question asked and its answer, for [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    pub question: String,
    pub answer: String,
    /// `YYYY-MM-DD`, the session the answer belongs to.
    pub date: String,
}

/// The spec's text with the answers written in: each marker whose question was answered is
/// replaced by the answer, and a `- Q: … → A: …` line per answer goes under
/// `## Clarifications` → `### Session <date>` (both created when missing). A line that is
/// there already is not written twice, so applying the same answers again changes nothing.
pub fn apply(name: &str, text: &str, answered: &[Answered]) -> String {
    if answered.is_empty() {
        return text.to_string();
    }
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    let trailing = text.ends_with('\n');
    if trailing {
        lines.pop();
    }
    // Markers first: replacing text inside a line keeps every line number.
    let (spec, _) = super::parse_all(name, text);
    for a in answered {
        let answer = clean(&a.answer);
        for c in &spec.clarifications {
            let asked = match &c.requirement {
                Some(r) => format!("{r}: {}", c.question),
                None => c.question.clone(),
            };
            let mut asked = asked;
            one_line(&mut asked, ANSWER_MAX);
            if asked != a.question {
                continue;
            }
            if let Some(line) = lines.get_mut(c.location.line as usize - 1) {
                *line = super::ingest::replace_marker(line, &c.marker, &answer);
            }
        }
    }
    // Then the Clarifications section.
    let mut dates: Vec<&str> = answered.iter().map(|a| a.date.as_str()).collect();
    dates.dedup();
    for date in dates {
        let bullets: Vec<String> = answered
            .iter()
            .filter(|a| a.date == date)
            .map(|a| {
                let mut q = a.question.clone();
                one_line(&mut q, ANSWER_MAX);
                format!("- Q: {q} → A: {}", clean(&a.answer))
            })
            .filter(|b| !lines.iter().any(|l| l.trim_end() == b))
            .collect();
        if bullets.is_empty() {
            continue;
        }
        write_session(&mut lines, date, bullets);
    }
    let mut out = lines.join(newline);
    if trailing {
        out.push_str(newline);
    }
    out
}

/// The level of a Markdown heading line (`## x` → 2), outside code fences.
fn heading(line: &str) -> Option<(usize, &str)> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let rest = &line[hashes..];
    rest.starts_with(' ').then(|| (hashes, rest.trim()))
}

/// Headings of `lines` outside code fences: (index, level, title).
fn headings(lines: &[String]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (i, line) in super::outside_fences(lines.iter().map(String::as_str)) {
        if let Some((level, title)) = heading(line) {
            out.push((i, level, title.to_string()));
        }
    }
    out
}

fn write_session(lines: &mut Vec<String>, date: &str, bullets: Vec<String>) {
    let found = headings(lines);
    let section = found
        .iter()
        .find(|(_, level, title)| *level == 2 && title.eq_ignore_ascii_case("clarifications"));
    let session_title = format!("Session {date}");
    match section {
        Some(&(start, _, _)) => {
            let end = found
                .iter()
                .find(|(i, level, _)| *i > start && *level <= 2)
                .map_or(lines.len(), |(i, _, _)| *i);
            let session = found.iter().find(|(i, level, title)| {
                *i > start && *i < end && *level == 3 && *title == session_title
            });
            match session {
                Some(&(s, _, _)) => {
                    let s_end = found
                        .iter()
                        .find(|(i, level, _)| *i > s && *level <= 3)
                        .map_or(lines.len(), |(i, _, _)| *i)
                        .min(end);
                    // After the session's last non-empty line.
                    let mut at = s_end;
                    while at > s + 1 && lines[at - 1].trim().is_empty() {
                        at -= 1;
                    }
                    splice(lines, at, bullets, at < lines.len());
                }
                None => {
                    let mut at = end;
                    while at > start + 1 && lines[at - 1].trim().is_empty() {
                        at -= 1;
                    }
                    let mut block =
                        vec![String::new(), format!("### {session_title}"), String::new()];
                    block.extend(bullets);
                    splice(lines, at, block, at < lines.len());
                }
            }
        }
        None => {
            // Spec Kit puts the section after the overview: before the first level-2
            // heading that follows an overview-like one, else before the first level-2
            // heading, else at the end.
            let overview = [
                "overview",
                "summary",
                "context",
                "background",
                "introduction",
            ];
            let level2: Vec<&(usize, usize, String)> =
                found.iter().filter(|(_, level, _)| *level == 2).collect();
            let after_overview = level2
                .iter()
                .position(|(_, _, t)| overview.iter().any(|o| t.to_lowercase().starts_with(o)))
                .and_then(|p| level2.get(p + 1))
                .map(|(i, _, _)| *i);
            let at = after_overview
                .or_else(|| level2.first().map(|(i, _, _)| *i))
                .unwrap_or(lines.len());
            let mut block = vec![
                "## Clarifications".to_string(),
                String::new(),
                format!("### {session_title}"),
                String::new(),
            ];
            block.extend(bullets);
            if at < lines.len() {
                block.push(String::new());
                lines.splice(at..at, block);
            } else {
                while lines.last().is_some_and(|l| l.trim().is_empty()) {
                    lines.pop();
                }
                lines.push(String::new());
                lines.extend(block);
            }
        }
    }
}

/// Insert `block` at `at`, followed by an empty line when more text follows right there.
fn splice(lines: &mut Vec<String>, at: usize, mut block: Vec<String>, more: bool) {
    if more && !lines[at].trim().is_empty() {
        block.push(String::new());
    }
    lines.splice(at..at, block);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(q: &str, a: &str) -> Answered {
        Answered {
            question: q.into(),
            answer: a.into(),
            date: "2026-11-30".into(),
        }
    }

    const SPEC: &str = "# Feature Specification: Login\n\n## User Scenarios & Testing\n\nPeople log in.\n\n## Requirements\n\n- **FR-001**: System MUST authenticate users via [NEEDS CLARIFICATION: auth method not specified - email/password, SSO, OAuth?]\n- **FR-002**: Sessions MUST expire.\n";

    #[test]
    fn answers_replace_their_marker_and_go_under_a_dated_session() {
        let (spec, _) = super::super::parse_all("spec.md", SPEC);
        let c = &spec.clarifications[0];
        let q = format!("{}: {}", c.requirement.as_deref().unwrap(), c.question);
        let out = apply(
            "spec.md",
            SPEC,
            &[answered(&q, "email and\npassword\u{1b}[2J")],
        );
        assert!(
            out.contains(
                "- **FR-001**: System MUST authenticate users via email and password [2J\n"
            ),
            "{out}"
        );
        assert!(!out.contains("NEEDS CLARIFICATION"), "{out}");
        let expected = format!(
            "# Feature Specification: Login\n\n## Clarifications\n\n### Session 2026-11-30\n\n- Q: {q} → A: email and password [2J\n\n## User Scenarios & Testing\n"
        );
        assert!(out.starts_with(&expected), "{out}");
        // Applying again writes nothing more.
        assert_eq!(
            apply("spec.md", &out, &[answered(&q, "email and password [2J")]),
            out
        );
    }

    #[test]
    fn a_later_session_is_added_under_the_existing_section() {
        let first = apply(
            "spec.md",
            SPEC,
            &[answered("How long do sessions last?", "24 h")],
        );
        let second = apply(
            "spec.md",
            &first,
            &[Answered {
                date: "2026-12-01".into(),
                ..answered("Who may log in?", "staff")
            }],
        );
        let section: Vec<&str> = second
            .lines()
            .skip_while(|l| *l != "## Clarifications")
            .take_while(|l| !l.starts_with("## User"))
            .collect();
        assert_eq!(
            section,
            [
                "## Clarifications",
                "",
                "### Session 2026-11-30",
                "",
                "- Q: How long do sessions last? → A: 24 h",
                "",
                "### Session 2026-12-01",
                "",
                "- Q: Who may log in? → A: staff",
                "",
            ]
        );
    }

    #[test]
    fn a_spec_over_the_threshold_asks_about_its_vague_terms_and_unchecked_requirements() {
        let text = "# Search\n\n## Requirements\n\n- **FR-001**: Search MUST be fast.\n- **FR-002**: Results MUST be sorted by date.\n\n## Acceptance Criteria\n\n- [ ] Results of FR-002 come newest first.\n";
        let analysis = super::super::analyse(
            "spec.md",
            text,
            None,
            &super::super::AnalysisConfig::default(),
        );
        assert!(analysis.questions.is_empty());
        let never = ClarifyConfig {
            ambiguity: 1.01,
            max_questions: 5,
        };
        assert_eq!(questions(&analysis, &[], &never), None);
        let always = ClarifyConfig {
            ambiguity: 0.0,
            max_questions: 5,
        };
        let asked = questions(&analysis, &["Which index?".into()], &always).expect("asks");
        assert_eq!(asked[0], "Which index?");
        assert!(
            asked[1].starts_with("FR-001 says `fast`: what does it mean, measurably ("),
            "{asked:?}"
        );
        assert_eq!(
            asked[2],
            "How is FR-001 checked? No acceptance criterion covers it."
        );
        assert_eq!(asked.len(), 3, "{asked:?}");
        // A marker alone asks its own question, not the others, under the threshold.
        let marked = text.replace(
            "sorted by date",
            "sorted [NEEDS CLARIFICATION: by date or by name?]",
        );
        let analysis = super::super::analyse(
            "spec.md",
            &marked,
            None,
            &super::super::AnalysisConfig::default(),
        );
        let asked = questions(&analysis, &[], &never).expect("the marker asks");
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].starts_with("FR-002: "), "{asked:?}");
        // A vague word inside a marker is the marker's question, not one of its own.
        assert!(inside_marker(
            "keep [NEEDS CLARIFICATION: how many days?]",
            32
        ));
        assert!(!inside_marker("keep many [NEEDS CLARIFICATION: days?]", 5));
        let one = ClarifyConfig {
            ambiguity: 0.0,
            max_questions: 1,
        };
        assert_eq!(questions(&analysis, &[], &one).map(|q| q.len()), Some(1));
    }

    #[test]
    fn proposed_questions_are_read_from_json_or_a_list() {
        assert_eq!(proposed(r#"["a?", "b?"]"#), ["a?", "b?"]);
        assert_eq!(proposed("# Questions\n\n- a?\n1. b?\n"), ["a?", "b?"]);
        assert_eq!(proposed("a?\n\nb?"), ["a?", "b?"]);
        assert!(proposed(&"- q\n".repeat(100)).len() <= crate::record::limits::QUESTIONS_MAX);
    }

    #[test]
    fn answers_are_one_bounded_line_that_asks_nothing_again() {
        assert_eq!(clean("  a\tb\r\nc  "), "a b c");
        assert_eq!(clean(&"x".repeat(5000)).chars().count(), ANSWER_MAX);
        assert_eq!(
            clean("[NEEDS CLARIFICATION: again]"),
            "(NEEDS CLARIFICATION: again)"
        );
    }
}
