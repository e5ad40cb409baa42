//! The ids a plan's `requirement_refs` point at: the requirements, success criteria and user
//! stories of a spec. [`SpecRef`] is the small input traceability needs; it is filled from the
//! spec's Markdown by [`refs_from_markdown`].

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What a spec id names. Requirements and criteria must be covered by the plan; stories may be
/// referenced but need not be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Requirement,
    Criterion,
    Story,
}

impl RefKind {
    /// Must some work package cover it?
    pub fn must_cover(self) -> bool {
        matches!(self, RefKind::Requirement | RefKind::Criterion)
    }

    pub fn name(self) -> &'static str {
        match self {
            RefKind::Requirement => "requirement",
            RefKind::Criterion => "success criterion",
            RefKind::Story => "user story",
        }
    }
}

/// One requirement, success criterion or user story of a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    pub id: String,
    pub kind: RefKind,
    /// Its text, on one line, at most 200 characters.
    pub text: String,
    /// 1-based line of its definition.
    pub line: usize,
}

/// The most ids read from one spec.
const MAX_REFS: usize = 500;

/// A definition: a line that starts (after a list marker, a checkbox, emphasis) with an id
/// like `FR-001`, `NFR-2`, `SC-003`, `REQ-4`, `AC-5`.
static DEFINITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\[[ xX]\]\s+)?(?:\*\*|__)?\b((?:FR|NFR|SC|REQ|AC)-[0-9]{1,5}[a-z]?)\b(?:\*\*|__)?\s*[:.)-]?\s*(.*)$",
    )
    .expect("a valid regex")
});

/// A Spec Kit user story heading: `### User Story 2 - Title (Priority: P1)`.
static STORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^#{2,6}\s+User Story\s+([0-9]{1,4})\b\s*[-–—:]?\s*(.*)$").expect("a valid regex")
});

/// A Markdown heading.
static HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(#{1,6})\s+(.*?)\s*#*\s*$").expect("a valid regex"));

/// A list item.
static ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.+)$").expect("a valid regex")
});

fn one_line(text: &str) -> String {
    let text = text.trim().trim_matches('*').trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn kind_of(id: &str) -> RefKind {
    if id.starts_with("SC-") || id.starts_with("AC-") {
        RefKind::Criterion
    } else {
        RefKind::Requirement
    }
}

/// The requirement, success-criterion and user-story ids a Markdown spec defines.
///
/// Explicit ids win: `FR-###`, `NFR-###`, `REQ-###` are requirements, `SC-###` and `AC-###`
/// success criteria (at the start of a line or list item, optionally in bold), and Spec Kit's
/// `### User Story N` headings are stories `US<N>`. A spec without any explicit requirement or
/// criterion id gets positional ids instead: the list items under a heading that says
/// "requirements" are `R1`, `R2`…, those under one that says "acceptance" or "success
/// criteria" are `AC1`, `AC2`…. The first definition of an id wins.
pub fn refs_from_markdown(text: &str) -> Vec<SpecRef> {
    let mut refs = Vec::new();
    let mut seen = HashSet::new();
    let mut fence = false;
    for (n, line) in text.lines().enumerate() {
        if refs.len() >= MAX_REFS {
            break;
        }
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(c) = STORY.captures(line) {
            let id = format!("US{}", &c[1]);
            if seen.insert(id.clone()) {
                refs.push(SpecRef {
                    id,
                    kind: RefKind::Story,
                    text: one_line(&c[2]),
                    line: n + 1,
                });
            }
            continue;
        }
        if let Some(c) = DEFINITION.captures(line) {
            let id = c[1].to_string();
            if seen.insert(id.clone()) {
                refs.push(SpecRef {
                    kind: kind_of(&id),
                    id,
                    text: one_line(&c[2]),
                    line: n + 1,
                });
            }
        }
    }
    if refs.iter().any(|r| r.kind.must_cover()) {
        return refs;
    }
    refs.extend(positional(text));
    refs
}

/// Positional ids for a free-form spec (see [`refs_from_markdown`]).
fn positional(text: &str) -> Vec<SpecRef> {
    let mut refs = Vec::new();
    let mut section: Option<RefKind> = None;
    let (mut requirements, mut criteria) = (0, 0);
    let mut fence = false;
    for (n, line) in text.lines().enumerate() {
        if refs.len() >= MAX_REFS {
            break;
        }
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(c) = HEADING.captures(line) {
            let title = c[2].to_lowercase();
            section = if title.contains("acceptance") || title.contains("success criteria") {
                Some(RefKind::Criterion)
            } else if title.contains("requirement") {
                Some(RefKind::Requirement)
            } else {
                None
            };
            continue;
        }
        // Top-level items only: nested items belong to their parent.
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let (Some(kind), Some(c)) = (section, ITEM.captures(line)) else {
            continue;
        };
        let id = match kind {
            RefKind::Criterion => {
                criteria += 1;
                format!("AC{criteria}")
            }
            _ => {
                requirements += 1;
                format!("R{requirements}")
            }
        };
        refs.push(SpecRef {
            id,
            kind,
            text: one_line(&c[1]),
            line: n + 1,
        });
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(String, RefKind)> {
        refs_from_markdown(text)
            .into_iter()
            .map(|r| (r.id, r.kind))
            .collect()
    }

    #[test]
    fn spec_kit_ids_are_read_with_their_kind_and_line() {
        let spec = "# Feature\n\n### User Story 1 - Sign in (Priority: P1)\n\n\
                    - **FR-001**: System MUST let users sign in\n\
                    - **FR-002**: System MUST lock after 5 failures, see FR-001\n\
                    * **SC-001**: 95% of sign-ins take under 2 s\n\
                    - **FR-001**: a duplicate is not a second definition\n";
        let refs = refs_from_markdown(spec);
        assert_eq!(
            ids(spec),
            vec![
                ("US1".into(), RefKind::Story),
                ("FR-001".into(), RefKind::Requirement),
                ("FR-002".into(), RefKind::Requirement),
                ("SC-001".into(), RefKind::Criterion),
            ]
        );
        assert_eq!(refs[1].line, 5);
        assert_eq!(refs[1].text, "System MUST let users sign in");
    }

    #[test]
    fn a_mention_inside_a_sentence_is_not_a_definition() {
        assert!(ids("We keep FR-001 in mind.\n").is_empty());
    }

    #[test]
    fn ids_in_code_fences_are_ignored() {
        assert!(ids("```\n- FR-001: example\n```\n").is_empty());
    }

    #[test]
    fn a_free_form_spec_gets_positional_ids() {
        let spec = "# Greetings\n\n## Requirements\n\n- Say hello.\n  - nested detail\n- Say bye.\n\n\
                    ## Acceptance Criteria\n\n- [ ] hello works\n\n## Notes\n\n- not a requirement\n";
        assert_eq!(
            ids(spec),
            vec![
                ("R1".into(), RefKind::Requirement),
                ("R2".into(), RefKind::Requirement),
                ("AC1".into(), RefKind::Criterion),
            ]
        );
    }
}
