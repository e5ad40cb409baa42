//! The checks of a read spec: duplicate ids, which criteria cover which requirements (and
//! the requirements none covers), a spec without criteria or requirements, vague terms, and
//! clarification markers. Each finding is a located diagnostic.
//!
//! The coverage rule: a criterion covers a requirement when
//! - it belongs to it (Kiro: the acceptance criteria under `Requirement N` cover `RN`), or
//! - it names the requirement's id (`… as FR-003 requires`), or
//! - outside Kiro's own criteria, it shares at least two content stems with the requirement's
//!   text (one when the requirement has a single one): content words of 4 letters or more,
//!   without filler (`must`, `system`, `user`…), cut to their first 5 letters.
//!
//! Constraints are not expected to be covered (they limit how, not what), so they are never
//! reported as uncovered.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use super::model::*;
use super::text::{chars, col, stems, whole_word};
use crate::diag::{Code, Diagnostic, Span};

/// Terms that cannot be checked, and how to make each checkable.
pub(crate) const VAGUE_TERMS: &[(&str, &str)] = &[
    ("fast", "state a time or a rate, e.g. `p95 under 200 ms`"),
    ("quickly", "state a time, e.g. `within 2 seconds`"),
    ("quick", "state a time, e.g. `within 2 seconds`"),
    (
        "performant",
        "state a time or a rate, e.g. `500 requests/s on one core`",
    ),
    (
        "efficient",
        "state the budget: time, memory or cost, with a number",
    ),
    (
        "responsive",
        "state a time, e.g. `the page reacts within 100 ms`",
    ),
    (
        "user-friendly",
        "name an observable behaviour, e.g. `a new user finishes sign-up in under 2 minutes`",
    ),
    (
        "user friendly",
        "name an observable behaviour, e.g. `a new user finishes sign-up in under 2 minutes`",
    ),
    (
        "easy to use",
        "name an observable behaviour, e.g. `done in 3 clicks or fewer`",
    ),
    (
        "intuitive",
        "name an observable behaviour, e.g. `90 % of testers finish the task unaided`",
    ),
    (
        "seamless",
        "say what the user must not notice, e.g. `no re-login after the upgrade`",
    ),
    (
        "etc",
        "list every case; `etc.` leaves the rest to guesswork",
    ),
    ("and so on", "list every case"),
    ("as needed", "say when: the condition that triggers it"),
    (
        "as appropriate",
        "say what is appropriate: the rule that decides",
    ),
    ("if necessary", "say when it is necessary: the condition"),
    (
        "where possible",
        "say where it is required, and what happens elsewhere",
    ),
    ("when needed", "say when: the condition that triggers it"),
    (
        "robust",
        "state the failure it must survive, e.g. `a restart loses no accepted order`",
    ),
    (
        "reliable",
        "state a target, e.g. `99.9 % of requests succeed per month`",
    ),
    (
        "scalable",
        "state the load, e.g. `10,000 concurrent users at p95 under 300 ms`",
    ),
    (
        "flexible",
        "name the change it must allow without code changes",
    ),
    ("extensible", "name the extension it must allow"),
    (
        "secure",
        "name the threat or the control, e.g. `passwords hashed with argon2id`",
    ),
    ("high performance", "state a time or a rate with a number"),
    (
        "state of the art",
        "name the technique or the measure it must reach",
    ),
    (
        "best practices",
        "name the practices, or link the guideline",
    ),
    ("reasonable", "give the number or the rule"),
    (
        "appropriate",
        "say what is appropriate: the rule that decides",
    ),
    ("optimal", "state what is optimised, and the target"),
    ("several", "give a number"),
    ("various", "list them"),
    ("many", "give a number or a range"),
    ("a few", "give a number"),
    (
        "tbd",
        "decide it, or mark it `[NEEDS CLARIFICATION: …]` so it becomes a question",
    ),
    ("minimal", "give the limit with a number"),
];

static VAGUE: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(VAGUE_TERMS.iter().map(|(t, _)| *t))
        .expect("valid patterns")
});

/// A vague term found in a line: its index in [`VAGUE_TERMS`], byte offset and length.
pub(crate) fn vague_terms(line: &str) -> Vec<(usize, usize, usize)> {
    let lower = line.to_ascii_lowercase();
    let hay = lower.as_bytes();
    // Byte ranges of code spans: a name in code (`fast-check`) is not prose.
    let mut code: Vec<(usize, usize)> = Vec::new();
    let mut open = None;
    for (i, b) in hay.iter().enumerate() {
        if *b == b'`' {
            match open.take() {
                Some(s) => code.push((s, i)),
                None => open = Some(i),
            }
        }
    }
    let quantified = QUANTITY.is_match(&lower);
    VAGUE
        .find_iter(hay)
        .filter(|m| whole_word(hay, m.start(), m.len()))
        .filter(|m| !code.iter().any(|&(a, b)| a < m.start() && m.start() < b))
        .filter(|m| {
            // A compound (`fail-fast`, `fast-forward`) or a term of art (`fail fast`).
            let before = hay[..m.start()].last().copied();
            let after = hay.get(m.end()).copied();
            let term = &lower[m.start()..m.end()];
            before != Some(b'-')
                && after != Some(b'-')
                && !lower[..m.start()].ends_with("fail ")
                && !(quantified && SPEED_TERMS.contains(&term))
                && !(RULE_TERMS.contains(&term) && states_rule(&lower[m.end()..]))
        })
        .map(|m| (m.pattern().as_usize(), m.start(), m.len()))
        .collect()
}

/// Terms whose fix is to name the rule that decides (`appropriate`, `reasonable`).
const RULE_TERMS: &[&str] = &["appropriate", "as appropriate", "reasonable", "optimal"];

/// Whether what follows a term names the rule that decides it: `the appropriate workflow
/// based on the work item state`, `according to the mapping`.
fn states_rule(rest: &str) -> bool {
    const RULE: &[&str] = &[
        " based on ",
        " according to ",
        " as defined in ",
        " as configured ",
        " defined by ",
    ];
    RULE.iter().any(|r| rest.contains(r))
}

/// Terms about speed or size that a number on the same line quantifies (`fast: under 200
/// ms`, `tests run in under 30 seconds to keep feedback fast`).
const SPEED_TERMS: &[&str] = &[
    "fast",
    "quick",
    "quickly",
    "responsive",
    "performant",
    "efficient",
    "scalable",
    "high performance",
    "minimal",
];

/// A number with a unit of time, size, rate or share.
static QUANTITY: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"\d\s*(?:ms|s|sec|secs|seconds?|minutes?|mins?|hours?|%|kb|mb|gb|rps|qps|requests|users|/s)\b|\d\s*%")
        .expect("valid regex")
});

/// Vague terms the spec uses as names: `fast mode`, `quick start`, `minimal profile`.
fn named_terms(text: &str) -> Vec<&'static str> {
    const NOUNS: &[&str] = &[
        "mode", "modes", "path", "lane", "tier", "profile", "preset", "option", "flag", "start",
        "check", "track",
    ];
    let lower = text.to_ascii_lowercase();
    VAGUE_TERMS
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| {
            NOUNS.iter().any(|n| {
                let phrase = format!("{t} {n}");
                lower
                    .match_indices(&phrase)
                    .any(|(i, _)| whole_word(lower.as_bytes(), i, phrase.len()))
            })
        })
        .collect()
}

pub(super) fn check(text: &str, spec: &mut Spec, out: &mut Vec<Diagnostic>) {
    if spec.lines == 0 {
        return;
    }
    let path = spec.source.clone();
    if let Some(d) = unfilled_template(&path, spec) {
        out.push(d);
        return;
    }
    duplicates(text, &path, spec, out);
    cover(spec);
    let at = |l: Location| Some(l.span());
    let countable = spec
        .requirements
        .iter()
        .filter(|r| r.kind != RequirementKind::Constraint)
        .count();
    if spec.requirements.is_empty() {
        out.push(
            Diagnostic::new(Code::NoRequirements, "the spec states no requirements")
                .at(&path, Some(Span::new(1, 1, 1)), "")
                .label("no requirement list, task list or `must` sentence in this spec")
                .help("list the requirements under a `## Requirements` heading, one per bullet"),
        );
    } else if spec.criteria.is_empty() && countable > 0 {
        let first = spec
            .requirements
            .iter()
            .find(|r| r.kind != RequirementKind::Constraint)
            .map(|r| r.location)
            .unwrap_or_default();
        out.push(
            Diagnostic::new(
                Code::NoAcceptanceCriteria,
                format!(
                    "the spec has {} but no acceptance criteria",
                    super::text::plural(countable, "requirement", "requirements")
                ),
            )
            .at(&path, at(first), "")
            .label("nothing says how to check this and the others")
            .help(
                "add an `## Acceptance Criteria` section with one checkbox per check \
                 (`- [ ] …`), `SC-###` success criteria, or Given/When/Then scenarios",
            ),
        );
    } else {
        for r in spec.uncovered() {
            if !Spec::expects_cover(r) {
                continue;
            }
            out.push(
                Diagnostic::new(
                    Code::UncoveredRequirement,
                    format!("no criterion covers requirement `{}`", r.id),
                )
                .at(&path, at(r.location), "")
                .label("not covered by any criterion")
                .help(format!(
                    "add an acceptance criterion or scenario that checks this, or name `{}` in one",
                    r.id
                )),
            );
        }
    }
    vague(text, &path, spec, out);
    for q in &spec.clarifications {
        let message = match &q.requirement {
            Some(r) => format!("`{r}` needs clarification: {}", q.marker),
            None => format!("the spec needs clarification: {}", q.marker),
        };
        out.push(
            Diagnostic::new(Code::NeedsClarification, message)
                .at(&path, at(q.location), "")
                .label(format!("question {}", q.id))
                .help(format!(
                    "answer \"{}\" in the spec and remove the marker",
                    q.question
                )),
        );
    }
}

/// At most this many diagnostics of one code are kept; the rest are counted in one more.
pub(crate) const MAX_PER_CODE: usize = 100;

/// Keep the first [`MAX_PER_CODE`] diagnostics of each code and say how many more there were,
/// so that a hostile spec cannot flood the output (or the collection).
pub(crate) fn cap(path: &str, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<crate::diag::Code, usize> = HashMap::new();
    out.retain(|d| {
        let n = seen.entry(d.code).or_default();
        *n += 1;
        *n <= MAX_PER_CODE
    });
    let mut extra: Vec<(crate::diag::Code, usize)> = seen
        .into_iter()
        .filter(|(_, n)| *n > MAX_PER_CODE)
        .map(|(code, n)| (code, n - MAX_PER_CODE))
        .collect();
    extra.sort();
    for (code, more) in extra {
        out.push(
            Diagnostic::new(
                code,
                format!("{more} more `{}` findings are not shown", code.info().name),
            )
            .at(path, None, "")
            .help(format!(
                "the first {MAX_PER_CODE} are shown; fix those and analyse again"
            )),
        );
    }
}

fn duplicates(text: &str, path: &str, spec: &Spec, out: &mut Vec<Diagnostic>) {
    // Point at the id itself when the line shows it (Kiro's ids come from headings).
    let lines: Vec<&str> = text.split('\n').collect();
    let id_span = |id: &str, location: Location| {
        let line = lines.get(location.line.saturating_sub(1) as usize)?;
        let at = line.find(id)?;
        Some(Span::new(location.line, col(line, at), chars(id)))
    };
    let mut seen: HashMap<&str, Location> = HashMap::new();
    let ids = spec
        .requirements
        .iter()
        .filter(|r| r.explicit_id)
        .map(|r| (r.id.as_str(), r.location))
        .chain(
            spec.criteria
                .iter()
                .filter(|c| c.explicit_id)
                .map(|c| (c.id.as_str(), c.location)),
        );
    for (id, location) in ids {
        match seen.get(id) {
            Some(first) => out.push(
                Diagnostic::new(
                    Code::DuplicateRequirementId,
                    format!("id `{id}` is used twice"),
                )
                .at(
                    path,
                    Some(id_span(id, location).unwrap_or(location.span())),
                    "",
                )
                .label("second use")
                .help(format!(
                    "`{id}` is first used at line {}; give this one its own id",
                    first.line
                )),
            ),
            None => {
                seen.insert(id, location);
            }
        }
    }
}

/// A template's placeholder: `[FEATURE NAME]`, `[###-feature-name]`, `[specific capability]`,
/// `[Brief Title]`; never a link (`[text](url)`), a checkbox or a Spec Kit marker.
static PLACEHOLDER: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"\[(?:[A-Z][A-Z0-9 _#/-]{2,}|#{2,}[^\]]*|(?:specific|brief|describe|e\.g\.|entity|outcome|key|primary|number|date|link|feature|user|measurable|metric|action|state|initial|expected|boundary|error|what|how|system|area|role|type|another)[^\]]{0,60})\](?:[^(]|$)")
        .expect("valid regex")
});

/// The spec is a template never filled in (its title, or most of its requirements, are
/// placeholders): analysing it would report the template's own examples as the feature.
fn unfilled_template(path: &str, spec: &Spec) -> Option<Diagnostic> {
    let placeholder =
        |t: &str| PLACEHOLDER.is_match(&format!("{t} ")) && !t.contains("NEEDS CLARIFICATION");
    let title = spec.sections.first().filter(|s| placeholder(&s.title));
    let listed = spec.requirements.len() + spec.criteria.len();
    let unfilled = spec
        .requirements
        .iter()
        .map(|r| r.text.as_str())
        .chain(spec.criteria.iter().map(|c| c.text.as_str()))
        .filter(|t| placeholder(t))
        .count();
    let at = match title {
        Some(s) => s.location,
        None if listed > 0 && unfilled * 2 > listed => spec
            .requirements
            .iter()
            .map(|r| r.location)
            .chain(spec.criteria.iter().map(|c| c.location))
            .min()
            .unwrap_or_default(),
        None => return None,
    };
    Some(
        Diagnostic::new(
            Code::UnfilledTemplate,
            "the spec is an unfilled template: its placeholders were never replaced",
        )
        .at(path, Some(at.span()), "")
        .label("a placeholder, not the feature's own text")
        .help("write the feature's title, requirements and criteria in place of the bracketed placeholders"),
    )
}

/// Above this many requirement × criterion pairs only ownership and named ids decide
/// coverage (the stem overlap is skipped), so that a hostile spec stays linear.
pub(crate) const MAX_OVERLAP_PAIRS: usize = 2_000_000;

/// An id named in a criterion's text, as a whole token (`NFR-001` is not `FR-001`, `R1.2` is
/// not `R1`).
static ID_TOKEN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"\b[A-Z][A-Z0-9]{0,5}(?:-[A-Z]{2,12})?-?\d{1,9}[A-Za-z]?(?:\.\d{1,3})*\b")
        .expect("valid regex")
});

/// Fill `covers` of every criterion by the rule in the module docs.
fn cover(spec: &mut Spec) {
    let requirements = &spec.requirements;
    let by_id: HashMap<&str, usize> = requirements
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let overlap = requirements.len().saturating_mul(spec.criteria.len()) <= MAX_OVERLAP_PAIRS;
    let req_stems: Vec<Vec<String>> = if overlap {
        requirements.iter().map(|r| stems(&r.text)).collect()
    } else {
        Vec::new()
    };
    // How many requirements use each stem, for its weight: ln(1 + n / uses).
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for own in &req_stems {
        for s in own {
            *uses.entry(s.as_str()).or_default() += 1;
        }
    }
    let n = req_stems.len().max(1) as f64;
    let weight = |s: &str| (1.0 + n / uses.get(s).copied().unwrap_or(1) as f64).ln();
    // Each requirement's words, to find the one a criterion's heading names.
    let phrases: Vec<String> = if overlap {
        requirements.iter().map(|r| phrase(&r.text)).collect()
    } else {
        Vec::new()
    };
    let mut named_by_heading: HashMap<String, Option<usize>> = HashMap::new();
    // The one thing a spec asks is what its criteria check (an issue's single ask).
    let single = (requirements.len() == 1).then(|| requirements[0].id.clone());
    for c in spec.criteria.iter_mut() {
        if let Some(id) = &single {
            if !c.covers.contains(id) {
                c.covers.push(id.clone());
            }
            continue;
        }
        let owned = !c.covers.is_empty();
        let mut covered: std::collections::HashSet<usize> = c
            .covers
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        for token in ID_TOKEN.find_iter(&c.text) {
            if let Some(&i) = by_id.get(token.as_str()) {
                if covered.insert(i) {
                    c.covers.push(requirements[i].id.clone());
                }
            }
        }
        if owned || !overlap {
            continue;
        }
        let named = named_by_heading
            .entry(c.section.clone())
            .or_insert_with(|| named_by(&c.section, &phrases));
        if let Some(i) = *named {
            if covered.insert(i) {
                c.covers.push(requirements[i].id.clone());
            }
        }
        let criterion_stems = stems(&c.text);
        // Each requirement this criterion shares enough with, by the weight of what is
        // shared: a stem most requirements use (`group` in a spec about groups) says little.
        let mut scored: Vec<(f64, usize)> = Vec::new();
        for (i, _) in requirements.iter().enumerate() {
            let own = &req_stems[i];
            let needed = own.len().min(2);
            if needed == 0 || covered.contains(&i) {
                continue;
            }
            let shared: Vec<&String> = own.iter().filter(|s| criterion_stems.contains(s)).collect();
            if shared.len() < needed {
                continue;
            }
            let total: f64 = own.iter().map(|s| weight(s)).sum();
            let part: f64 = shared.iter().map(|s| weight(s)).sum();
            if total > 0.0 {
                scored.push((part / total, i));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let best = scored.first().map_or(0.0, |s| s.0);
        for &(score, i) in scored.iter().take(MAX_OVERLAP_LINKS) {
            if score < best * 0.5 || score < 0.2 {
                break;
            }
            covered.insert(i);
            c.covers.push(requirements[i].id.clone());
        }
    }
}

/// `text`'s words, lowercase, each between single spaces (` pod to pod pid isolation `),
/// for matching a phrase as whole words.
fn phrase(text: &str) -> String {
    let mut out = String::from(" ");
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

/// The one requirement whose text holds a heading's words, in order (criteria grouped under
/// `### Pod to Pod pid isolation` check the goal `provide pod-to-pod pid isolation`). The
/// heading must be a topic of the spec's own, not one the reader knows (`Acceptance
/// Criteria`), with at least two words one of which says something; a heading held by
/// several requirements names none.
fn named_by(heading: &str, phrases: &[String]) -> Option<usize> {
    if super::ingest::known_heading(heading) || stems(heading).is_empty() {
        return None;
    }
    // Without its numbering (`1.2`).
    let all = phrase(heading);
    let words: Vec<&str> = all
        .split_whitespace()
        .skip_while(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    if words.len() < 2 {
        return None;
    }
    let words = format!(" {} ", words.join(" "));
    let mut found = phrases
        .iter()
        .enumerate()
        .filter(|(_, p)| p.contains(&words));
    match (found.next(), found.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The most requirements one criterion covers by shared words (named ids are not limited).
const MAX_OVERLAP_LINKS: usize = 4;

/// Whether `text` names `id` as a whole token.
#[cfg(test)]
fn mentions(text: &str, id: &str) -> bool {
    ID_TOKEN.find_iter(text).any(|m| m.as_str() == id)
}

/// A list item that names a chosen thing and then describes it: `- **Fastify** — TypeScript-
/// native, minimal, built-in JSON schema validation`.
static CHOICE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(?:\*\*[^*]+\*\*|`[^`]+`)\s*(?:—|–|-|:)?\s")
        .expect("valid regex")
});

/// Whether the vague term at `start..start + len` of a constraint's line is one of the bare
/// attributes (a whole comma-separated part) of the thing the constraint chooses: it says
/// why that library or tool was picked, it asks nothing of the work (`**Fastify** —
/// TypeScript-native, minimal, …`). `**Docker-first** — minimal image` still asks.
fn describes_choice(line: &str, start: usize, len: usize) -> bool {
    let Some(label) = CHOICE.find(line) else {
        return false;
    };
    if start < label.end() {
        return false;
    }
    let description = &line[label.end()..];
    let at = start - label.end();
    let from = description[..at]
        .rfind([',', ';', '(', ')'])
        .map_or(0, |i| i + 1);
    let to = description[at + len..]
        .find([',', ';', '(', ')'])
        .map_or(description.len(), |i| at + len + i);
    description[from..to]
        .trim()
        .trim_end_matches('.')
        .eq_ignore_ascii_case(&description[at..at + len])
}

/// A warning for each vague term on the lines of requirements and criteria.
fn vague(text: &str, path: &str, spec: &Spec, out: &mut Vec<Diagnostic>) {
    let mut lines: Vec<u32> = spec
        .requirements
        .iter()
        .map(|r| r.location.line)
        .chain(spec.criteria.iter().map(|c| c.location.line))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    if lines.is_empty() {
        return;
    }
    let constraints: Vec<u32> = spec
        .requirements
        .iter()
        .filter(|r| r.kind == RequirementKind::Constraint)
        .map(|r| r.location.line)
        .collect();
    let names = named_terms(text);
    let mut wanted = lines.iter().peekable();
    for (i, line) in text.split('\n').enumerate() {
        let no = i as u32 + 1;
        match wanted.peek() {
            Some(&&w) if w == no => {
                wanted.next();
            }
            Some(_) => continue,
            None => break,
        }
        let line = super::text::clip(
            line.strip_suffix('\r').unwrap_or(line),
            super::MAX_LINE_BYTES,
        );
        for (term, start, len) in vague_terms(line) {
            let (word, suggestion) = VAGUE_TERMS[term];
            if names.contains(&word)
                || (constraints.contains(&no) && describes_choice(line, start, len))
            {
                continue;
            }
            // `etc.` with its dot.
            let len = if word == "etc" && line[start + len..].starts_with('.') {
                len + 1
            } else {
                len
            };
            let found = &line[start..start + len];
            out.push(
                Diagnostic::new(Code::VagueTerm, format!("`{found}` cannot be checked"))
                    .at(
                        path,
                        Some(Span::new(no, col(line, start), chars(found))),
                        "",
                    )
                    .label(if word == "etc" {
                        "which other cases?".to_string()
                    } else {
                        "vague".to_string()
                    })
                    .help(format!("quantify it: {suggestion}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vague_terms_are_whole_words() {
        let found: Vec<&str> = vague_terms("Breakfast must be fast, robust etc.")
            .into_iter()
            .map(|(t, _, _)| VAGUE_TERMS[t].0)
            .collect();
        assert_eq!(found, vec!["fast", "robust", "etc"]);
    }

    #[test]
    fn an_appropriate_choice_by_a_stated_rule_is_checkable() {
        let found = |line: &str| vague_terms(line).len();
        assert_eq!(
            found("THE router SHALL pick the appropriate workflow based on the item state"),
            0
        );
        assert_eq!(found("The router SHALL pick the appropriate workflow"), 1);
    }

    #[test]
    fn a_bare_attribute_of_a_chosen_library_is_no_ask() {
        let line = "- **Fastify** — TypeScript-native, minimal, built-in JSON schema validation";
        let at = line.find("minimal").unwrap();
        assert!(describes_choice(line, at, 7));
        let line = "- **Docker-first** — official `Dockerfile`, minimal image";
        let at = line.find("minimal").unwrap();
        assert!(
            !describes_choice(line, at, 7),
            "`minimal image` asks for a size"
        );
        let line = "- **Minimal** — only add a dependency when it pays";
        assert!(!describes_choice(line, 4, 7), "the label itself");
    }

    #[test]
    fn a_heading_names_the_one_requirement_holding_its_words() {
        let phrases: Vec<String> = [
            "enable administrator control to provide pod-to-pod pid isolation",
            "enable administrator control to provide node-to-pod pid isolation",
        ]
        .iter()
        .map(|t| phrase(t))
        .collect();
        assert_eq!(named_by("Pod to Pod pid isolation", &phrases), Some(0));
        assert_eq!(named_by("2. Node to Pod pid isolation", &phrases), Some(1));
        assert_eq!(named_by("pid isolation", &phrases), None, "both hold it");
        assert_eq!(named_by("Acceptance Criteria", &phrases), None);
    }

    #[test]
    fn ids_are_named_as_whole_words() {
        assert!(mentions("as FR-001 says", "FR-001"));
        assert!(!mentions("see FR-0012", "FR-001"));
        assert!(!mentions("NFR-001", "FR-001"));
        assert!(!mentions("R1.2 holds", "R1"));
    }
}
