//! When a spec lists no requirements: its Goals' items, else the sentences of its prose
//! that ask for something (`must`, `shall`, an imperative).

use super::*;

/// When the spec lists no requirements, the items of its Goals (a KEP's, a design's) are
/// what it asks.
pub(super) fn goal_requirements(spec: &mut Spec) {
    let (taken, kept): (Vec<Item>, Vec<Item>) = std::mem::take(&mut spec.items)
        .into_iter()
        .partition(|i| crate::spec::text::is_goals(&i.section));
    spec.items = kept;
    for item in taken {
        spec.requirements.push(Requirement {
            id: String::new(),
            explicit_id: false,
            text: item.text,
            kind: RequirementKind::Functional,
            location: item.location,
            section: item.section,
            priority: None,
        });
    }
}

/// When the spec lists no requirement and no goal but tells user stories (a Spec Kit spec
/// without its Requirements section), each story is a requirement, checked by its own
/// scenarios. Returns the requirement each story became, to link its scenarios once ids are
/// given.
pub(super) fn story_requirements(spec: &mut Spec) -> Vec<(usize, usize)> {
    let mut made = Vec::new();
    for (s, story) in spec.stories.iter().enumerate() {
        made.push((spec.requirements.len(), s));
        spec.requirements.push(Requirement {
            id: String::new(),
            explicit_id: false,
            text: story.title.clone(),
            kind: RequirementKind::Functional,
            location: story.location,
            section: section_at(&spec.sections, story.location.line),
            priority: story.priority.clone(),
        });
    }
    made
}

/// Each story's scenarios cover the requirement the story became.
pub(super) fn link_story_scenarios(spec: &mut Spec, made: &[(usize, usize)]) {
    for &(r, s) in made {
        let id = spec.requirements[r].id.clone();
        let scenarios = spec.stories[s].scenarios.clone();
        for c in spec
            .criteria
            .iter_mut()
            .filter(|c| scenarios.contains(&c.id))
        {
            if !c.covers.contains(&id) {
                c.covers.push(id.clone());
            }
        }
    }
}

/// A line of prose kept for the requirement fallback.
pub(super) struct ProseLine {
    pub(super) no: u32,
    pub(super) col: u32,
    pub(super) text: String,
    pub(super) paragraph: u32,
}

/// Sections that give context and ask nothing: their sentences are never requirements.
pub(super) fn context_only(title: &str) -> bool {
    const CONTEXT: &[&str] = &[
        "motivation",
        "background",
        "context",
        "drawback",
        "alternative",
        "rationale",
        "prior art",
        "reference",
        "history",
        "risk",
        "non-goal",
        "non goal",
        "out of scope",
        "glossary",
        "table of contents",
        "files to",
        "implementation hint",
        "dependencies",
        "verification",
        "testing strategy",
        "test plan",
        "future possibilit",
        "appendix",
        "assumption",
        "notes",
    ];
    let t = title.to_lowercase();
    CONTEXT.iter().any(|c| t.contains(c))
}

/// Verbs that open an imperative sentence: the ask of an issue or a proposal ("Add rate
/// limiting to the login endpoint.").
pub(super) const IMPERATIVES: &[&str] = &[
    "add",
    "allow",
    "build",
    "change",
    "convert",
    "create",
    "define",
    "delete",
    "deprecate",
    "disable",
    "display",
    "document",
    "drop",
    "emit",
    "enable",
    "ensure",
    "expose",
    "extend",
    "extract",
    "fix",
    "implement",
    "introduce",
    "keep",
    "limit",
    "log",
    "make",
    "mark",
    "migrate",
    "move",
    "prevent",
    "provide",
    "refactor",
    "reject",
    "remove",
    "rename",
    "replace",
    "report",
    "return",
    "rewrite",
    "send",
    "show",
    "stabilise",
    "stabilize",
    "store",
    "support",
    "update",
    "use",
    "validate",
    "write",
];

/// The sentences of `text`: cut after `.`, `!`, `?` or `;` followed by a space or the end,
/// never inside a code span, after an abbreviation (`e.g.`) or between digits (`1.10`).
/// Returns byte ranges.
pub(super) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut code = false;
    let bytes = text.as_bytes();
    for (i, ch) in text.char_indices() {
        if ch == '`' {
            code = !code;
            continue;
        }
        if code || !matches!(ch, '.' | '!' | '?' | ';') {
            continue;
        }
        let end = i + 1;
        let at_end = end >= text.len() || bytes[end].is_ascii_whitespace();
        if !at_end {
            continue;
        }
        let before = text[..i]
            .rsplit(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        let abbreviation = ch == '.'
            && matches!(
                before.to_lowercase().as_str(),
                "e.g" | "i.e" | "etc" | "vs" | "cf" | "eg" | "ie"
            );
        if abbreviation {
            continue;
        }
        out.push((start, end));
        start = end;
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Whether a sentence says `must`, `shall`, `should`, `needs to`…, not as a need denied
/// (`lambdas … when they do not need to capture`, `callers don't have to`).
pub(super) fn asks(sentence: &str) -> bool {
    MODAL.find_iter(sentence).any(|m| {
        let word = m.as_str().to_lowercase();
        let denied = ["not ", "n't ", "never ", "no "].iter().any(|n| {
            sentence[..m.start()]
                .to_lowercase()
                .trim_end_matches(' ')
                .ends_with(n.trim_end())
        });
        !(denied && (word.starts_with("need") || word.starts_with("ha")))
    })
}

/// When the spec lists no requirements, the sentences of its prose that say `must`, `shall`,
/// `should`, `needs to`…, or that open with an imperative (`Add …`, `Support …`), are its
/// requirements: whole sentences, across the lines a paragraph is wrapped over, never code.
pub(super) fn prose_requirements(b: &mut Builder<'_>) {
    let prose = std::mem::take(&mut b.prose);
    let mut i = 0;
    while i < prose.len() {
        let mut j = i;
        // A paragraph: its lines joined, with where each line starts.
        let mut text = String::new();
        let mut starts: Vec<(usize, usize)> = Vec::new();
        while j < prose.len() && prose[j].paragraph == prose[i].paragraph {
            if !text.is_empty() {
                text.push(' ');
            }
            starts.push((text.len(), j));
            text.push_str(prose[j].text.trim());
            j += 1;
        }
        for (start, end) in sentences(&text) {
            let sentence = &text[start..end];
            let lead = sentence.len() - sentence.trim_start().len();
            let s = sentence.trim();
            if s.len() <= 8 || s.ends_with('?') {
                continue;
            }
            let first = s
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("")
                .to_lowercase();
            let imperative = IMPERATIVES.contains(&first.as_str());
            if !(asks(s) || imperative) {
                continue;
            }
            let at = start + lead;
            let &(line_start, k) = starts
                .iter()
                .rev()
                .find(|(o, _)| *o <= at)
                .unwrap_or(&starts[0]);
            let line = &prose[k];
            let c = line.col + text[line_start..at].chars().count() as u32;
            let on_line = chars(s).min(chars(
                &text[at..line_start + line.text.trim().len().max(at - line_start)],
            ));
            b.spec.requirements.push(Requirement {
                id: String::new(),
                explicit_id: false,
                text: plain(s),
                kind: RequirementKind::Functional,
                location: Location::new(line.no, c, on_line),
                section: String::new(),
                priority: None,
            });
        }
        i = j;
    }
    for r in b.spec.requirements.iter_mut() {
        if r.section.is_empty() {
            r.section = section_at(&b.spec.sections, r.location.line);
        }
    }
}

pub(super) fn section_at(sections: &[Section], line: u32) -> String {
    sections
        .iter()
        .rev()
        .find(|s| s.location.line <= line)
        .map(|s| s.title.clone())
        .unwrap_or_default()
}
