//! The ids a plan's `requirement_refs` point at, taken from the typed spec model
//! ([`crate::spec::Spec`]): what must be covered (the spec's traceable ids: every requirement
//! and every success criterion) and what may be referenced (user stories, acceptance criteria,
//! scenarios). [`SpecRef`] is the small input traceability needs.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::spec::{CriterionKind, Spec};

/// What a spec id names. Requirements and success criteria must be covered by the plan; the
/// rest may be referenced but need not be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Requirement,
    Criterion,
    /// An acceptance criterion or scenario: coverable, not required.
    Acceptance,
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
            RefKind::Acceptance => "acceptance criterion",
            RefKind::Story => "user story",
        }
    }
}

/// The user story an acceptance scenario belongs to: `US1` of `US1.2`.
pub fn story_of(acceptance: &str) -> Option<&str> {
    acceptance
        .rsplit_once('.')
        .map(|(story, _)| story)
        .filter(|s| !s.is_empty())
}

/// One requirement, criterion or user story of a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    pub id: String,
    pub kind: RefKind,
    /// Its text, on one line, at most 200 characters.
    pub text: String,
    /// 1-based line of its definition.
    pub line: usize,
    /// For a user story: the requirements and criteria its acceptance scenarios cover, which
    /// a package that delivers the story delivers too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
}

/// The most ids taken from one spec.
const MAX_REFS: usize = 500;

fn one_line(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// The ids of a spec, in the order requirements, criteria, stories; the first of an id wins.
/// The spec's traceable ids ([`Spec::traceable_ids`]: every requirement and every success
/// criterion) must be covered.
pub fn refs_from_spec(spec: &Spec) -> Vec<SpecRef> {
    let must: HashSet<&str> = spec.traceable_ids().into_iter().collect();
    let mut seen = HashSet::new();
    let mut refs = Vec::new();
    let mut push = |id: &str, kind: RefKind, text: &str, line: u32, covers: Vec<String>| {
        if refs.len() < MAX_REFS && seen.insert(id.to_string()) {
            refs.push(SpecRef {
                id: id.to_string(),
                kind,
                text: one_line(text),
                line: line as usize,
                covers,
            });
        }
    };
    for r in &spec.requirements {
        push(
            &r.id,
            RefKind::Requirement,
            &r.text,
            r.location.line,
            Vec::new(),
        );
    }
    for c in &spec.criteria {
        let kind = if must.contains(c.id.as_str()) || c.kind == CriterionKind::Success {
            RefKind::Criterion
        } else {
            RefKind::Acceptance
        };
        push(&c.id, kind, &c.text, c.location.line, Vec::new());
    }
    for s in &spec.stories {
        // What the story's scenarios cover (the scenarios themselves included).
        let mut covers: Vec<String> = Vec::new();
        for c in spec.criteria.iter().filter(|c| s.scenarios.contains(&c.id)) {
            for id in std::iter::once(&c.id).chain(&c.covers) {
                if !covers.contains(id) {
                    covers.push(id.clone());
                }
            }
        }
        push(&s.id, RefKind::Story, &s.title, s.location.line, covers);
    }
    refs
}

/// [`refs_from_spec`] of a Markdown spec's text (read with [`crate::spec::parse`]).
pub fn refs_from_markdown(text: &str) -> Vec<SpecRef> {
    let (spec, _) = crate::spec::parse("spec.md", text);
    refs_from_spec(&spec)
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
        let spec = "# Feature Specification: Sign-in\n\n## User Scenarios & Testing\n\n\
                    ### User Story 1 - Sign in (Priority: P1)\n\nA user signs in.\n\n\
                    ## Requirements\n\n### Functional Requirements\n\n\
                    - **FR-001**: System MUST let users sign in\n\
                    - **FR-002**: System MUST lock after 5 failures\n\n\
                    ## Success Criteria\n\n### Measurable Outcomes\n\n\
                    - **SC-001**: 95% of sign-ins take under 2 s\n";
        let refs = refs_from_markdown(spec);
        let got = ids(spec);
        for expected in [
            ("FR-001".to_string(), RefKind::Requirement),
            ("FR-002".to_string(), RefKind::Requirement),
            ("SC-001".to_string(), RefKind::Criterion),
            ("US1".to_string(), RefKind::Story),
        ] {
            assert!(got.contains(&expected), "{expected:?} in {got:?}");
        }
        let fr1 = refs.iter().find(|r| r.id == "FR-001").expect("FR-001");
        assert_eq!(fr1.line, 13);
        assert_eq!(fr1.text, "System MUST let users sign in");
    }

    #[test]
    fn every_traceable_id_of_the_spec_must_be_covered() {
        let spec = "# Greetings\n\n## Requirements\n\n- Say hello.\n- Say bye.\n\n\
                    ## Acceptance Criteria\n\n- [ ] hello works\n";
        let (model, _) = crate::spec::parse("spec.md", spec);
        let must: Vec<String> = refs_from_spec(&model)
            .into_iter()
            .filter(|r| r.kind.must_cover())
            .map(|r| r.id)
            .collect();
        let traceable: Vec<String> = model
            .traceable_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(must, traceable);
        assert!(must.len() >= 2, "{must:?}");
    }
}
