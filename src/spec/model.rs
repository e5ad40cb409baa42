//! The typed model every spec format is read into. Each item keeps its location in the
//! source, so that diagnostics and traceability can point at it. These types are the contract
//! with the planning checks: fields are added, never renamed or removed.

use serde::Serialize;

use crate::diag::Span;

/// Where an item starts in the spec: 1-based line and column (in characters), and the length
/// of the text it names (in characters, at least 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Location {
    pub fn new(line: u32, col: u32, len: u32) -> Location {
        Location {
            line,
            col,
            len: len.max(1),
        }
    }

    /// The same place as a diagnostics span.
    pub fn span(self) -> Span {
        Span::new(self.line, self.col, self.len)
    }
}

/// The structure a spec was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// GitHub Spec Kit: user stories with priorities, Given/When/Then scenarios, `FR-###`,
    /// `SC-###`.
    SpecKit,
    /// Kiro's `requirements.md`: numbered requirements whose acceptance criteria are EARS
    /// statements (`WHEN … THE SYSTEM SHALL …`).
    Kiro,
    /// Headed sections (Overview, Requirements, Constraints, Acceptance Criteria); also what
    /// any unrecognised structure degrades to.
    FreeForm,
    /// Plain issue text: a title, a body and task lists.
    Issue,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::SpecKit => "spec-kit",
            Format::Kiro => "kiro",
            Format::FreeForm => "free-form",
            Format::Issue => "issue",
        }
    }
}

/// What kind of statement a requirement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequirementKind {
    /// A functional requirement (`FR-001`, a bullet under "Requirements").
    Functional,
    /// A quality requirement: performance, security, availability… (`NFR-001`, a bullet under
    /// "Non-functional requirements").
    NonFunctional,
    /// A numbered Kiro requirement (its user story; its EARS statements are its criteria).
    Ears,
    /// A limit the solution must respect (a bullet under "Constraints").
    Constraint,
    /// An item of an issue's task list.
    Task,
}

/// One requirement of the spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Requirement {
    /// As written (`FR-001`, `NFR-2`, `R1` for Kiro's "Requirement 1"), or generated in reading
    /// order (`REQ-001`, `TASK-001`, `CON-001`) when the spec gives none.
    pub id: String,
    /// Whether `id` was written in the spec (false: generated).
    pub explicit_id: bool,
    /// The statement, without its id and list marker.
    pub text: String,
    pub kind: RequirementKind,
    pub location: Location,
    /// The heading of the section it was found in.
    pub section: String,
    /// `P1`… when the spec gives a priority (Spec Kit stories pass theirs on).
    pub priority: Option<String>,
}

/// What kind of check a criterion is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriterionKind {
    /// A measurable outcome (`SC-001`).
    Success,
    /// An acceptance criterion (a checkbox under "Acceptance Criteria", a Kiro EARS
    /// statement).
    Acceptance,
    /// A Given/When/Then acceptance scenario of a user story.
    Scenario,
}

/// One way to check that the spec was met.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuccessCriterion {
    /// As written (`SC-001`), Kiro's `R1.2` (criterion 2 of requirement 1), a scenario's
    /// `US1.2`, or generated (`AC-001`).
    pub id: String,
    pub explicit_id: bool,
    pub text: String,
    pub kind: CriterionKind,
    pub location: Location,
    pub section: String,
    /// The requirements this criterion covers (see `spec::coverage` for the rule of each
    /// format).
    pub covers: Vec<String>,
    /// For EARS statements and scenarios, their parts.
    pub ears: Option<Ears>,
}

/// An EARS statement split into its clauses (`WHEN <trigger> THE SYSTEM SHALL <response>`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ears {
    /// `ubiquitous`, `event` (WHEN), `state` (WHILE), `unwanted` (IF … THEN), `optional`
    /// (WHERE).
    pub pattern: String,
    pub condition: Option<String>,
    pub response: String,
}

/// A Spec Kit user story (`### User Story 1 - Title (Priority: P1)`), a Kiro "User Story:"
/// line, or an "As a …, I want …" sentence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserStory {
    /// `US1`, `US2`… (the number written in the heading when there is one).
    pub id: String,
    pub title: String,
    pub priority: Option<String>,
    pub location: Location,
    /// The ids of its acceptance scenarios (criteria of kind `scenario`).
    pub scenarios: Vec<String>,
}

/// A Given/When/Then acceptance scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub id: String,
    pub story: Option<String>,
    pub given: String,
    pub when: String,
    pub then: String,
    pub location: Location,
}

/// A `[NEEDS CLARIFICATION: …]` marker (or an open question of the spec), as a question for
/// the author.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clarification {
    /// `Q1`, `Q2`… in reading order.
    pub id: String,
    /// The marker's text, as written.
    pub marker: String,
    /// The question to ask.
    pub question: String,
    /// The requirement the marker sits in, if any.
    pub requirement: Option<String>,
    pub location: Location,
}

/// A list item of a section that holds neither requirements nor criteria (edge cases,
/// assumptions, key entities, out of scope…).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    pub text: String,
    pub section: String,
    pub location: Location,
}

/// A heading and what is under it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    /// 1 for `#`, 2 for `##`…; 0 for the text before the first heading.
    pub level: u8,
    pub location: Location,
    /// The last line of the section (inclusive).
    pub end_line: u32,
}

/// A block of prose (consecutive non-list lines), so that nothing of the spec is dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Paragraph {
    pub text: String,
    pub section: String,
    pub location: Location,
}

/// A spec, whatever its format.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    /// The display name of the file.
    pub source: String,
    pub format: Format,
    /// The first heading (or an issue's first line).
    pub title: Option<String>,
    pub sections: Vec<Section>,
    pub requirements: Vec<Requirement>,
    pub criteria: Vec<SuccessCriterion>,
    pub stories: Vec<UserStory>,
    pub scenarios: Vec<Scenario>,
    pub clarifications: Vec<Clarification>,
    pub edge_cases: Vec<Item>,
    /// List items of other sections (assumptions, entities, out of scope, notes…).
    pub items: Vec<Item>,
    pub paragraphs: Vec<Paragraph>,
    pub lines: u32,
    pub words: u32,
}

impl Spec {
    pub fn empty(source: &str) -> Spec {
        Spec {
            source: source.to_string(),
            format: Format::FreeForm,
            title: None,
            sections: Vec::new(),
            requirements: Vec::new(),
            criteria: Vec::new(),
            stories: Vec::new(),
            scenarios: Vec::new(),
            clarifications: Vec::new(),
            edge_cases: Vec::new(),
            items: Vec::new(),
            paragraphs: Vec::new(),
            lines: 0,
            words: 0,
        }
    }

    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements.iter().find(|r| r.id == id)
    }

    /// The requirements no criterion covers.
    pub fn uncovered(&self) -> impl Iterator<Item = &Requirement> {
        let covered: std::collections::HashSet<&str> = self
            .criteria
            .iter()
            .flat_map(|c| c.covers.iter().map(String::as_str))
            .collect();
        self.requirements
            .iter()
            .filter(move |r| !covered.contains(r.id.as_str()))
    }

    /// The requirements a criterion is expected to cover: constraints limit how, an issue's
    /// task-list items are the work its acceptance criteria check as a whole, and so are the
    /// goals a spec that lists no requirement is read by (a KEP's, a design's): aims broader
    /// than any one criterion, checked in other words than theirs.
    pub fn expects_cover(r: &Requirement) -> bool {
        let goal = r.kind == RequirementKind::Functional
            && !r.explicit_id
            && super::text::names_goals(&r.section);
        !goal && !matches!(r.kind, RequirementKind::Constraint | RequirementKind::Task)
    }

    /// The ids of the criteria that cover each requirement, by requirement id.
    pub fn covered_by(&self) -> std::collections::HashMap<&str, Vec<&str>> {
        let mut map: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
        for c in &self.criteria {
            for r in &c.covers {
                map.entry(r.as_str()).or_default().push(c.id.as_str());
            }
        }
        map
    }

    /// Everything a plan must trace: requirement ids, then success-criterion ids (`SC-…`).
    pub fn traceable_ids(&self) -> Vec<&str> {
        self.requirements
            .iter()
            .map(|r| r.id.as_str())
            .chain(
                self.criteria
                    .iter()
                    .filter(|c| c.kind == CriterionKind::Success)
                    .map(|c| c.id.as_str()),
            )
            .collect()
    }
}
