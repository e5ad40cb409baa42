//! The builder of one pass: the open sections, the item the next lines continue, and what
//! each line becomes (a requirement, a criterion, a story, a scenario, a listed item or prose).

use super::*;

/// The level of a bold label read as a heading: below every Markdown heading.
pub(super) const LABEL_LEVEL: u8 = 7;

/// An item that opens with a range of ids: `FR-021 to FR-027`, `FR-1–FR-4`, `SC-001..SC-003`.
static ID_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[?[A-Z][A-Z0-9]{0,11}(?:-[A-Z]{2,12})?-?\d{1,9}[A-Za-z]?(?:\s+(?:to|through|thru|-)\s+|\s*(?:–|—|\.\.|~)\s*)[A-Z][A-Z0-9]{0,11}(?:-[A-Z]{2,12})?-?\d{1,9}\b")
        .expect("valid regex")
});

pub(super) static BOLD_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\*\*|__)(?P<label>[^*_:]{2,60}?)[ \t]*:?(?:\*\*|__)[ \t]*:?[ \t]*$")
        .expect("valid regex")
});

#[derive(Clone, Copy, Debug)]
pub(super) enum Last {
    None,
    Requirement(usize),
    Criterion(usize),
    Item(usize),
    Edge(usize),
}

pub(super) struct Open {
    pub(super) level: u8,
    pub(super) role: Role,
    pub(super) title: String,
    /// The document's title (its first heading): its role is its own items', never passed
    /// on to the sections below it (`# imaprest — Requirements` makes no section a list of
    /// requirements).
    pub(super) is_title: bool,
}

pub(super) struct Builder<'a> {
    pub(super) path: &'a str,
    pub(super) spec: Spec,
    pub(super) diagnostics: Vec<Diagnostic>,
    pub(super) stack: Vec<Open>,
    pub(super) story: Option<(u8, usize)>,
    pub(super) kiro: Option<(u8, usize)>,
    pub(super) paragraph: Option<(Location, String, String)>,
    /// Prose lines for the requirement fallback: outside code, tables, quotes and the
    /// sections that only give context.
    pub(super) prose: Vec<ProseLine>,
    /// The number of the paragraph prose lines are added to.
    pub(super) paragraph_no: u32,
    pub(super) last: Last,
    pub(super) scenario_seq: u32,
    /// The indentation of the list item the current list hangs from: deeper items are
    /// details of it, not items of their own.
    pub(super) list_indent: Option<usize>,
    /// Lines already read as the continuation of a list item.
    pub(super) consumed: u32,
    /// The line of the last listed open question (its marker is not a second question).
    pub(super) question_line: Option<u32>,
    /// Questions and the index of the requirement each sits in.
    pub(super) question_of: Vec<(usize, usize)>,
}

impl<'a> Builder<'a> {
    pub(super) fn section(&self) -> String {
        self.stack
            .last()
            .map(|o| o.title.clone())
            .unwrap_or_default()
    }

    pub(super) fn role(&self) -> Role {
        if self.stack.iter().any(|o| o.role == Role::Guidance) {
            return Role::Guidance;
        }
        for (i, open) in self.stack.iter().enumerate().rev() {
            let own = i + 1 == self.stack.len();
            if open.role != Role::Unknown && (own || !open.is_title) {
                return open.role;
            }
        }
        Role::Unknown
    }

    pub(super) fn flush_paragraph(&mut self) {
        self.paragraph_no += 1;
        if let Some((location, section, text)) = self.paragraph.take() {
            self.spec.paragraphs.push(Paragraph {
                text,
                section,
                location,
            });
        }
    }

    /// A line of prose; `statement` when it may state a requirement (not code, a table or a
    /// quote, nor in a section that only gives context).
    pub(super) fn add_prose(&mut self, no: u32, line: &str, text: &str, statement: bool) {
        let c = col(line, offset_in(line, text));
        // The nearest heading that says decides: Goals under Motivation (a KEP's) ask.
        let context = self
            .stack
            .iter()
            .rev()
            .find_map(|o| {
                let t = o.title.to_lowercase();
                if t.contains("goal") && !t.contains("non-goal") && !t.contains("non goal") {
                    Some(false)
                } else {
                    context_only(&o.title).then_some(true)
                }
            })
            .unwrap_or(false)
            || self.role() == Role::Guidance;
        let t = text.trim_start();
        if statement && !context && !t.starts_with('|') && !t.starts_with('>') {
            self.prose.push(ProseLine {
                no,
                col: c,
                text: text.to_string(),
                paragraph: self.paragraph_no,
            });
        }
        match &mut self.paragraph {
            Some((_, _, body)) => {
                body.push('\n');
                body.push_str(text);
            }
            None => {
                self.paragraph = Some((
                    Location::new(no, c, chars(text)),
                    self.section(),
                    text.to_string(),
                ))
            }
        }
    }

    pub(super) fn heading(&mut self, no: u32, line: &str, level: u8, title: &str) {
        self.flush_paragraph();
        self.last = Last::None;
        self.list_indent = None;
        let location = Location::new(no, col(line, offset_in(line, title)), chars(title));
        if let Some(last) = self.spec.sections.last_mut() {
            last.end_line = no.saturating_sub(1).max(last.location.line);
        }
        let clean = plain(title);
        self.spec.sections.push(Section {
            title: clean.clone(),
            level,
            location,
            end_line: no,
        });
        // The first heading is the title unless it is a section's name (an RFC opens with
        // `## Summary`, not with its name).
        let is_title = self.spec.title.is_none()
            && (level == 1 || role_of(&clean) == Role::Unknown && !context_only(&clean));
        if is_title {
            self.spec.title = Some(clean.clone());
        }
        while self.stack.last().is_some_and(|o| o.level >= level) {
            self.stack.pop();
        }
        if self.story.is_some_and(|(l, _)| l >= level) {
            self.story = None;
        }
        if self.kiro.is_some_and(|(l, _)| l >= level) {
            self.kiro = None;
        }
        let mut role = role_of(&clean);
        if let Some(c) = STORY.captures(&clean) {
            let n = c.get(1).map_or("", |m| m.as_str());
            let story_title = c.get(2).map_or("", |m| m.as_str()).trim();
            self.spec.stories.push(UserStory {
                id: format!("US{n}"),
                title: story_title.to_string(),
                priority: c.get(3).map(|m| m.as_str().to_uppercase()),
                location,
                scenarios: Vec::new(),
            });
            self.story = Some((level, self.spec.stories.len() - 1));
            role = Role::Neutral;
        } else if let Some(c) = KIRO_REQUIREMENT.captures(&clean) {
            let n = c.get(1).map_or("", |m| m.as_str());
            let text = c.get(2).map_or("", |m| m.as_str()).trim();
            self.spec.requirements.push(Requirement {
                id: format!("R{n}"),
                explicit_id: true,
                text: if text.is_empty() {
                    clean.clone()
                } else {
                    text.to_string()
                },
                kind: RequirementKind::Ears,
                location,
                section: clean.clone(),
                priority: None,
            });
            self.kiro = Some((level, self.spec.requirements.len() - 1));
            role = Role::Neutral;
        }
        self.stack.push(Open {
            level,
            role,
            title: clean,
            is_title,
        });
    }

    /// A line that is only a bold label (`**Acceptance Criteria:**`, `**Tasks**:`) with a
    /// role: a sub-heading of the current section until the next heading or label.
    pub(super) fn label(&mut self, title: &str, shown: &str, at: Location) -> bool {
        let role = role_of(title);
        if role == Role::Unknown || role == Role::Neutral && title.len() > 40 {
            return false;
        }
        self.flush_paragraph();
        // Kept as a paragraph of its own: nothing of the spec is dropped.
        self.spec.paragraphs.push(Paragraph {
            text: shown.to_string(),
            section: self.section(),
            location: at,
        });
        self.last = Last::None;
        self.list_indent = None;
        if self.stack.last().is_some_and(|o| o.level == LABEL_LEVEL) {
            self.stack.pop();
        }
        self.stack.push(Open {
            level: LABEL_LEVEL,
            role,
            title: title.to_string(),
            is_title: false,
        });
        true
    }

    pub(super) fn requirement(
        &mut self,
        id: Option<&str>,
        text: &str,
        kind: RequirementKind,
        at: Location,
    ) {
        let priority = self
            .story
            .and_then(|(_, s)| self.spec.stories[s].priority.clone());
        self.spec.requirements.push(Requirement {
            id: id.unwrap_or_default().to_string(),
            explicit_id: id.is_some(),
            text: text.to_string(),
            kind,
            location: at,
            section: self.section(),
            priority,
        });
        self.last = Last::Requirement(self.spec.requirements.len() - 1);
    }

    pub(super) fn criterion(
        &mut self,
        id: Option<String>,
        text: &str,
        kind: CriterionKind,
        at: Location,
        covers: Vec<String>,
        ears: Option<Ears>,
    ) {
        self.spec.criteria.push(SuccessCriterion {
            explicit_id: id.is_some(),
            id: id.unwrap_or_default(),
            text: text.to_string(),
            kind,
            location: at,
            section: self.section(),
            covers,
            ears,
        });
        self.last = Last::Criterion(self.spec.criteria.len() - 1);
    }

    pub(super) fn scenario(&mut self, c: &regex::Captures<'_>, text: &str, at: Location) {
        self.scenario_seq += 1;
        let part = |name: &str| {
            c.name(name)
                .map_or("", |m| m.as_str())
                .trim_matches(|ch: char| ch == '*' || ch == '_' || ch == ',' || ch.is_whitespace())
                .to_string()
        };
        let story = self.story.map(|(_, s)| s);
        let id = match story {
            Some(s) => {
                let story = &mut self.spec.stories[s];
                let id = format!("{}.{}", story.id, story.scenarios.len() + 1);
                story.scenarios.push(id.clone());
                id
            }
            None => format!("AS-{}", self.scenario_seq),
        };
        self.spec.scenarios.push(Scenario {
            id: id.clone(),
            story: story.map(|s| self.spec.stories[s].id.clone()),
            given: part("given"),
            when: part("when"),
            then: part("then"),
            location: at,
        });
        let ears = Ears {
            pattern: "scenario".into(),
            condition: Some(format!("given {}, when {}", part("given"), part("when"))),
            response: part("then"),
        };
        self.criterion(
            Some(id),
            text,
            CriterionKind::Scenario,
            at,
            Vec::new(),
            Some(ears),
        );
    }

    /// One list item: `body` is its text on the line, `full` the same with the lines that
    /// continue it.
    pub(super) fn list_item(
        &mut self,
        no: u32,
        line: &str,
        mark: Option<&str>,
        body: &str,
        full: &str,
    ) {
        let checkbox = mark.is_some();
        let checkbox_done = mark.is_some_and(|m| m.eq_ignore_ascii_case("x"));
        self.flush_paragraph();
        let role = self.role();
        let on_line = body;
        let body = full;
        let (id, text) = match LEADING_ID.captures(body) {
            Some(c) => {
                let id = c.name("id").map_or("", |m| m.as_str());
                let sep = c.name("sep").map_or("", |m| m.as_str());
                let decorated = body.starts_with("**")
                    || body.starts_with("__")
                    || body.starts_with('[')
                    || sep.contains(':');
                let rest = &body[c.get(0).map_or(0, |m| m.end())..];
                if (id.contains('-') || decorated) && !rest.trim().is_empty() {
                    (Some(id.to_string()), rest)
                } else {
                    (None, body)
                }
            }
            None => (None, body),
        };
        let text = text.trim();
        let shown = plain(text);
        let start = offset_in(line, on_line) + offset_in(body, text);
        let first = line.get(start.min(line.len())..).unwrap_or("");
        let at = Location::new(no, col(line, start), chars(text).min(chars(first)));
        let prefix = id
            .as_deref()
            .and_then(|i| i.split(|c: char| c == '-' || c.is_ascii_digit()).next())
            .unwrap_or("");
        let gwt = GWT.captures(&shown);
        let shall = shown.to_lowercase().contains("shall");
        // A Spec Kit spec numbers its requirements; what an unknown sub-section of its
        // Requirements (a data flow, an architecture note) lists without ids describes them.
        let inherited = self.stack.last().is_some_and(|o| o.role == Role::Unknown);
        let described = self.spec.format == Format::SpecKit
            && inherited
            && id.is_none()
            && matches!(role, Role::Requirements { .. });
        // `see testing:` introduces what follows; it states nothing itself.
        let lead_in = shown.ends_with(':') && id.is_none();
        // `FR-021 to FR-027: …` (a change log's summary) refers to requirements stated
        // elsewhere; it states none of its own.
        let range = id.is_some() && ID_RANGE.is_match(&plain(body));
        if role == Role::Guidance || described || lead_in || range {
            return self.item(shown, at);
        }
        // Explicit ids decide first: `SC-` is a success criterion and `AC-` an acceptance
        // criterion wherever they are; `FR-`, `NFR-`… are requirements.
        match prefix {
            "SC" => {
                return self.criterion(id, &shown, CriterionKind::Success, at, Vec::new(), None)
            }
            "AC" => {
                return self.criterion(id, &shown, CriterionKind::Acceptance, at, Vec::new(), None)
            }
            "FR" | "REQ" | "R" | "F" if !matches!(role, Role::Acceptance | Role::Success) => {
                return self.requirement(id.as_deref(), &shown, RequirementKind::Functional, at);
            }
            "NFR" | "QR" | "PR" | "SR" => {
                return self.requirement(id.as_deref(), &shown, RequirementKind::NonFunctional, at)
            }
            "C" | "CON" | "CONST" => {
                return self.requirement(id.as_deref(), &shown, RequirementKind::Constraint, at)
            }
            _ => {}
        }
        if let Some((_, k)) = self.kiro {
            if shall || role == Role::Acceptance {
                let req_id = self.spec.requirements[k].id.clone();
                let n = self
                    .spec
                    .criteria
                    .iter()
                    .filter(|c| c.covers.first() == Some(&req_id))
                    .count();
                let ears = ears(&shown);
                return self.criterion(
                    Some(format!("{req_id}.{}", n + 1)),
                    &shown,
                    CriterionKind::Acceptance,
                    at,
                    vec![req_id],
                    ears,
                );
            }
        }
        if let Some(c) = &gwt {
            if !matches!(role, Role::Requirements { .. }) || self.story.is_some() {
                return self.scenario(c, &shown, at);
            }
        }
        match role {
            Role::Requirements { non_functional } => {
                let kind = if non_functional {
                    RequirementKind::NonFunctional
                } else {
                    RequirementKind::Functional
                };
                self.requirement(id.as_deref(), &shown, kind, at)
            }
            Role::Constraints => {
                self.requirement(id.as_deref(), &shown, RequirementKind::Constraint, at)
            }
            Role::Acceptance => {
                let ears = ears(&shown);
                self.criterion(id, &shown, CriterionKind::Acceptance, at, Vec::new(), ears)
            }
            Role::Success => {
                self.criterion(id, &shown, CriterionKind::Success, at, Vec::new(), None)
            }
            Role::EdgeCases => {
                self.spec.edge_cases.push(Item {
                    text: shown,
                    section: self.section(),
                    location: at,
                });
                self.last = Last::Edge(self.spec.edge_cases.len() - 1);
            }
            Role::Questions if resolved(checkbox_done, &shown) => self.item(shown, at),
            Role::Questions => {
                self.question_line = Some(no);
                let question = if shown.ends_with('?') {
                    shown.clone()
                } else {
                    format!("{shown}?")
                };
                self.spec.clarifications.push(Clarification {
                    id: String::new(),
                    marker: shown.clone(),
                    question,
                    requirement: None,
                    location: at,
                });
                self.item(shown, at);
            }
            Role::Tasks => self.requirement(id.as_deref(), &shown, RequirementKind::Task, at),
            Role::Guidance => self.item(shown, at),
            Role::Stories => {
                let n = self.spec.stories.len() + 1;
                self.spec.stories.push(UserStory {
                    id: format!("US{n}"),
                    title: shown.clone(),
                    priority: None,
                    location: at,
                    scenarios: Vec::new(),
                });
                self.item(shown, at)
            }
            Role::Unknown | Role::Neutral => {
                if checkbox && role == Role::Unknown {
                    self.requirement(id.as_deref(), &shown, RequirementKind::Task, at)
                } else if shall && role == Role::Unknown {
                    self.requirement(id.as_deref(), &shown, RequirementKind::Functional, at)
                } else {
                    self.item(shown, at)
                }
            }
        }
    }

    pub(super) fn item(&mut self, text: String, at: Location) {
        self.spec.items.push(Item {
            text,
            section: self.section(),
            location: at,
        });
        self.last = Last::Item(self.spec.items.len() - 1);
    }

    /// An indented line right after a list item continues it.
    pub(super) fn continuation(&mut self, text: &str) -> bool {
        let text = plain(text);
        let target = match self.last {
            Last::None => return false,
            Last::Requirement(i) => &mut self.spec.requirements[i].text,
            Last::Criterion(i) => &mut self.spec.criteria[i].text,
            Last::Item(i) => &mut self.spec.items[i].text,
            Last::Edge(i) => &mut self.spec.edge_cases[i].text,
        };
        target.push(' ');
        target.push_str(&text);
        true
    }

    pub(super) fn clarifications(&mut self, no: u32, line: &str) {
        if self.role() == Role::Guidance {
            return;
        }
        for c in CLARIFY.captures_iter(line) {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let marker = c.name("text").map_or("", |m| m.as_str()).trim().to_string();
            // `[NEEDS CLARIFICATION]` alone names the convention, it asks nothing.
            if marker.is_empty() {
                continue;
            }
            if self.question_line == Some(no) {
                // The line is a listed open question already: its marker is the same one.
                continue;
            }
            let requirement = match self.last {
                Last::Requirement(i) if self.spec.requirements[i].location.line <= no => {
                    // Generated ids are given at the end: tie the question to the index.
                    self.question_of.push((self.spec.clarifications.len(), i));
                    None
                }
                _ => None,
            };
            let at = Location::new(no, col(line, offset_in(line, whole)), chars(whole));
            self.spec.clarifications.push(Clarification {
                id: String::new(),
                question: question(&marker),
                marker,
                requirement,
                location: at,
            });
        }
    }
}
