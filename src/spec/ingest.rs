//! Markdown text to the [`Spec`] model: one pass over the lines, with the heading each line
//! sits under deciding what its list items are. Unknown structure degrades to free form and
//! nothing is dropped: a line that is no requirement, criterion, story, scenario or listed
//! item lands in a paragraph. HTML comments (template guidance) are the one thing skipped.

use std::sync::LazyLock;

use regex::Regex;

use super::model::*;
use super::text::{chars, clip, col, offset_in, plain, word_count};
use super::MAX_LINE_BYTES;
use crate::diag::{Code, Diagnostic};

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

/// What the items of a section are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A heading we do not know: its items are read as its parent's.
    Unknown,
    /// A heading we know holds no requirements (overview, assumptions, entities…).
    Neutral,
    Requirements {
        non_functional: bool,
    },
    Constraints,
    Acceptance,
    Success,
    EdgeCases,
    Tasks,
    Questions,
    /// User stories listed one per item ("As a …, I want …", a KEP's "User Stories").
    Stories,
    /// A template's guidance to its author (Spec Kit's older "Quick Guidelines", "Review &
    /// Acceptance Checklist", "Execution Status"): nothing under it is part of the spec.
    Guidance,
}

fn role_of(title: &str) -> Role {
    let role = english_role(title);
    if role != Role::Unknown {
        return role;
    }
    cjk_role(title)
}

/// The roles of Japanese and Chinese headings (Kiro and Spec Kit write them so in those
/// languages).
fn cjk_role(title: &str) -> Role {
    let has = |w: &str| title.contains(w);
    if has("非機能") || has("非功能") {
        return Role::Requirements {
            non_functional: true,
        };
    }
    if has("受け入れ") || has("受入") || has("验收") || has("驗收") {
        return Role::Acceptance;
    }
    if has("成功基準") || has("成功标准") || has("成功指标") || has("成功標準") {
        return Role::Success;
    }
    if has("要件") || has("需求") || has("要求") {
        return Role::Requirements {
            non_functional: false,
        };
    }
    if has("制約") || has("约束") || has("制约") || has("限制") {
        return Role::Constraints;
    }
    if has("エッジケース") || has("边界") || has("邊界") || has("边缘") {
        return Role::EdgeCases;
    }
    if has("未解決") || has("未决") || has("待定") || has("開放課題") || has("未解决")
    {
        return Role::Questions;
    }
    const NEUTRAL: &[&str] = &[
        "導入",
        "概要",
        "背景",
        "前提",
        "用語",
        "範囲外",
        "概述",
        "背景",
        "假设",
        "术语",
        "范围",
        "用户场景",
        "ユーザーシナリオ",
        "主要实体",
        "エンティティ",
        "澄清",
        "明確化",
    ];
    if NEUTRAL.iter().any(|n| has(n)) {
        return Role::Neutral;
    }
    Role::Unknown
}

fn english_role(title: &str) -> Role {
    let mut t = title.to_lowercase();
    // `*(mandatory)*`, `(optional)`, trailing colons and emphasis say nothing about the role.
    if let Some(i) = t.find('(') {
        t.truncate(i);
    }
    let t: String = t
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '-')
        .collect();
    let t = t.trim();
    let has = |w: &str| t.contains(w);
    // A template's guidance to its author, not part of the spec.
    if has("quick guidelines")
        || has("review  acceptance checklist")
        || has("review checklist")
        || has("execution status")
        || has("execution flow")
        || t == "for ai generation"
        || has("constitution check")
        || has("constitutional compliance")
        || t == "section requirements"
    {
        return Role::Guidance;
    }
    // A KEP's "Implementation Details/Notes/Constraints" describes the design.
    if has("implementation detail") {
        return Role::Neutral;
    }
    if has("user stories") && !has("requirement") {
        return Role::Stories;
    }
    if has("graduation criteria") {
        return Role::Acceptance;
    }
    if has("non-functional")
        || has("nonfunctional")
        || has("non functional")
        || has("quality") && !has("code quality")
        || has("performance requirement")
    {
        return Role::Requirements {
            non_functional: true,
        };
    }
    if has("acceptance") || has("definition of done") {
        return Role::Acceptance;
    }
    if has("success criteria") || has("measurable outcome") || has("success metric") {
        return Role::Success;
    }
    if has("requirement") && !has("implementation requirement") && !has("technical requirement") {
        return Role::Requirements {
            non_functional: false,
        };
    }
    if has("constraint")
        || has("limitation")
        || has("implementation requirement")
        || has("technical requirement")
        || has("tech stack")
    {
        return Role::Constraints;
    }
    if has("edge case") {
        return Role::EdgeCases;
    }
    if t == "tasks"
        || t.starts_with("task")
        || has("task list")
        || t == "todo"
        || t == "to do"
        || has("checklist")
    {
        return Role::Tasks;
    }
    if has("open question") || t == "questions" || has("unresolved") {
        return Role::Questions;
    }
    const NEUTRAL: &[&str] = &[
        "overview",
        "summary",
        "background",
        "context",
        "assumption",
        "entities",
        "entity",
        "out of scope",
        "non-goals",
        "non goals",
        "notes",
        "clarifications",
        "glossary",
        "references",
        "introduction",
        "description",
        "motivation",
        "problem",
        "goals",
        "user scenarios",
        "review",
        "execution",
        "risks",
        "dependencies",
        "alternatives",
        "design",
    ];
    if NEUTRAL.iter().any(|n| has(n)) {
        return Role::Neutral;
    }
    Role::Unknown
}

/// The level of a bold label read as a heading: below every Markdown heading.
const LABEL_LEVEL: u8 = 7;

static BOLD_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\*\*|__)(?P<label>[^*_:]{2,60}?)[ \t]*:?(?:\*\*|__)[ \t]*:?[ \t]*$")
        .expect("valid regex")
});

#[derive(Clone, Copy, Debug)]
enum Last {
    None,
    Requirement(usize),
    Criterion(usize),
    Item(usize),
    Edge(usize),
}

struct Open {
    level: u8,
    role: Role,
    title: String,
    /// The document's title (its first heading): its role is its own items', never passed
    /// on to the sections below it (`# imaprest — Requirements` makes no section a list of
    /// requirements).
    is_title: bool,
}

struct Builder<'a> {
    path: &'a str,
    spec: Spec,
    diagnostics: Vec<Diagnostic>,
    stack: Vec<Open>,
    story: Option<(u8, usize)>,
    kiro: Option<(u8, usize)>,
    paragraph: Option<(Location, String, String)>,
    /// Prose lines for the requirement fallback: outside code, tables, quotes and the
    /// sections that only give context.
    prose: Vec<ProseLine>,
    /// The number of the paragraph prose lines are added to.
    paragraph_no: u32,
    last: Last,
    scenario_seq: u32,
    /// The indentation of the list item the current list hangs from: deeper items are
    /// details of it, not items of their own.
    list_indent: Option<usize>,
    /// Lines already read as the continuation of a list item.
    consumed: u32,
    /// The line of the last listed open question (its marker is not a second question).
    question_line: Option<u32>,
    /// Questions and the index of the requirement each sits in.
    question_of: Vec<(usize, usize)>,
}

impl<'a> Builder<'a> {
    fn section(&self) -> String {
        self.stack
            .last()
            .map(|o| o.title.clone())
            .unwrap_or_default()
    }

    fn role(&self) -> Role {
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

    fn flush_paragraph(&mut self) {
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
    fn add_prose(&mut self, no: u32, line: &str, text: &str, statement: bool) {
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

    fn heading(&mut self, no: u32, line: &str, level: u8, title: &str) {
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
    fn label(&mut self, title: &str, shown: &str, at: Location) -> bool {
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

    fn requirement(&mut self, id: Option<&str>, text: &str, kind: RequirementKind, at: Location) {
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

    fn criterion(
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

    fn scenario(&mut self, c: &regex::Captures<'_>, text: &str, at: Location) {
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
    fn list_item(&mut self, no: u32, line: &str, mark: Option<&str>, body: &str, full: &str) {
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
        if role == Role::Guidance || described || lead_in {
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

    fn item(&mut self, text: String, at: Location) {
        self.spec.items.push(Item {
            text,
            section: self.section(),
            location: at,
        });
        self.last = Last::Item(self.spec.items.len() - 1);
    }

    /// An indented line right after a list item continues it.
    fn continuation(&mut self, text: &str) -> bool {
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

    fn clarifications(&mut self, no: u32, line: &str) {
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

/// An open question marked as settled: ticked, struck through, or answered in place.
fn resolved(ticked: bool, text: &str) -> bool {
    let lower = text.to_lowercase();
    ticked
        || text.starts_with("~~")
        || text.contains('✅')
        || lower.starts_with("resolved")
        || lower.contains("(resolved")
        || lower.contains("→ a:")
        || lower.contains("answer:")
}

/// The EARS parts of a statement, when it is one.
fn ears(text: &str) -> Option<Ears> {
    let lower = text.to_lowercase();
    if !lower.contains("shall") {
        return cjk_ears(text);
    }
    if let Some(c) = EARS.captures(text) {
        let kw = c.name("kw").map_or("", |m| m.as_str()).to_lowercase();
        let pattern = match kw.as_str() {
            "when" => "event",
            "while" => "state",
            "if" => "unwanted",
            _ => "optional",
        };
        return Some(Ears {
            pattern: pattern.into(),
            condition: c.name("cond").map(|m| m.as_str().trim().to_string()),
            response: c.name("resp").map_or("", |m| m.as_str()).trim().to_string(),
        });
    }
    Some(Ears {
        pattern: "ubiquitous".into(),
        condition: None,
        response: text.trim().to_string(),
    })
}

/// EARS written in Japanese or Chinese: the English keywords (`WHEN … THEN`, `IF`, `WHILE`,
/// `WHERE`) around a response that says it must (`しなければならない`, `必须`…).
fn cjk_ears(text: &str) -> Option<Ears> {
    const MODALS: &[&str] = &[
        "なければならない",
        "ものとする",
        "必须",
        "应当",
        "應當",
        "必須",
    ];
    let t = text.trim();
    let mut said = t.trim_end_matches(['。', '.']);
    // A closing aside (`…取得すること（k値は設定可能）`) is not the statement's end.
    if said.ends_with('）') {
        if let Some(open) = said.rfind('（') {
            said = said[..open].trim_end();
        }
    }
    if !MODALS.iter().any(|m| t.contains(m)) && !said.ends_with("こと") {
        return None;
    }
    let upper = t.to_uppercase();
    let pattern = ["WHEN", "WHILE", "IF", "WHERE"]
        .iter()
        .find(|k| upper.starts_with(*k))
        .map(|k| match *k {
            "WHEN" => "event",
            "WHILE" => "state",
            "IF" => "unwanted",
            _ => "optional",
        });
    let Some(pattern) = pattern else {
        // Japanese EARS without the English keywords: `…時、` (event), `…場合、` (unwanted),
        // `…間、` (state).
        for (mark, pattern) in [
            ("時、", "event"),
            ("とき、", "event"),
            ("場合、", "unwanted"),
            ("間、", "state"),
        ] {
            if let Some(at) = t.find(mark) {
                return Some(Ears {
                    pattern: pattern.into(),
                    condition: Some(t[..at].to_string()),
                    response: t[at + mark.len()..].trim().to_string(),
                });
            }
        }
        return Some(Ears {
            pattern: "ubiquitous".into(),
            condition: None,
            response: t.to_string(),
        });
    };
    let start = t.find(char::is_whitespace).unwrap_or(t.len());
    let (condition, response) = match upper.find("THEN").or_else(|| upper.find("THE ")) {
        Some(at) if at >= start && t.is_char_boundary(at) => {
            let cond = t[start..at].trim();
            let resp = t[at..]
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .trim();
            (Some(cond.to_string()), resp.to_string())
        }
        _ => (None, t[start..].trim().to_string()),
    };
    Some(Ears {
        pattern: pattern.into(),
        condition,
        response,
    })
}

/// A clarification marker's text as a question for the author.
pub(crate) fn question(marker: &str) -> String {
    static UNSAID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?P<subject>.*?)\s+(?:is\s+|are\s+)?(?:not\s+specified|unspecified|not\s+defined|undefined|unclear|unknown|tbd|to\s+be\s+decided)\s*(?:[-–—:,]\s*(?P<options>.*))?$")
            .expect("valid regex")
    });
    let marker = marker.trim().trim_end_matches('.');
    if marker.is_empty() {
        return "What is meant here?".into();
    }
    if let Some(c) = UNSAID.captures(marker) {
        let subject = c.name("subject").map_or("", |m| m.as_str()).trim();
        let options = c
            .name("options")
            .map_or("", |m| m.as_str())
            .trim()
            .trim_end_matches('?')
            .trim();
        if !subject.is_empty() {
            let subject = subject.strip_prefix("the ").unwrap_or(subject);
            return if options.is_empty() {
                format!("What is the {subject}?")
            } else {
                format!("What is the {subject} ({options})?")
            };
        }
    }
    let mut q = String::new();
    let mut chars = marker.chars();
    if let Some(first) = chars.next() {
        q.extend(first.to_uppercase());
        q.push_str(chars.as_str());
    }
    if q.ends_with('?') {
        q
    } else {
        format!("Please clarify: {q}?")
    }
}

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
                continue;
            }
        }
        b.last = Last::None;
        if !indented {
            b.list_indent = None;
        }
        b.add_prose(no, line, trimmed, true);
        b.clarifications(no, line);
    }
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
    if none(&b.spec) {
        prose_requirements(&mut b);
    }
    assign_ids(&mut b.spec);
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

/// When the spec lists no requirements, the items of its Goals (a KEP's, a design's) are
/// what it asks.
fn goal_requirements(spec: &mut Spec) {
    let goals = |section: &str| {
        let t = section.to_lowercase();
        t.contains("goal") && !t.contains("non-goal") && !t.contains("non goal")
    };
    let (taken, kept): (Vec<Item>, Vec<Item>) = std::mem::take(&mut spec.items)
        .into_iter()
        .partition(|i| goals(&i.section));
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

/// A line of prose kept for the requirement fallback.
struct ProseLine {
    no: u32,
    col: u32,
    text: String,
    paragraph: u32,
}

/// Sections that give context and ask nothing: their sentences are never requirements.
fn context_only(title: &str) -> bool {
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
const IMPERATIVES: &[&str] = &[
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
fn sentences(text: &str) -> Vec<(usize, usize)> {
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

/// When the spec lists no requirements, the sentences of its prose that say `must`, `shall`,
/// `should`, `needs to`…, or that open with an imperative (`Add …`, `Support …`), are its
/// requirements: whole sentences, across the lines a paragraph is wrapped over, never code.
fn prose_requirements(b: &mut Builder<'_>) {
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
            if !(MODAL.is_match(s) || imperative) {
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

fn section_at(sections: &[Section], line: u32) -> String {
    sections
        .iter()
        .rev()
        .find(|s| s.location.line <= line)
        .map(|s| s.title.clone())
        .unwrap_or_default()
}

/// Ids for what the spec did not name, in reading order, never one the spec uses.
fn assign_ids(spec: &mut Spec) {
    let mut used: std::collections::HashSet<String> = spec
        .requirements
        .iter()
        .filter(|r| r.explicit_id)
        .map(|r| r.id.clone())
        .chain(
            spec.criteria
                .iter()
                .filter(|c| c.explicit_id)
                .map(|c| c.id.clone()),
        )
        .collect();
    let next = |prefix: &str, used: &mut std::collections::HashSet<String>| {
        let mut n = 1;
        loop {
            let id = format!("{prefix}-{n:03}");
            if used.insert(id.clone()) {
                return id;
            }
            n += 1;
        }
    };
    for r in spec.requirements.iter_mut().filter(|r| !r.explicit_id) {
        let prefix = match r.kind {
            RequirementKind::Constraint => "CON",
            RequirementKind::Task => "TASK",
            RequirementKind::NonFunctional => "NFR",
            _ => "REQ",
        };
        r.id = next(prefix, &mut used);
    }
    for c in spec.criteria.iter_mut().filter(|c| !c.explicit_id) {
        let prefix = match c.kind {
            CriterionKind::Success => "SC",
            _ => "AC",
        };
        c.id = next(prefix, &mut used);
    }
    for (i, q) in spec.clarifications.iter_mut().enumerate() {
        q.id = format!("Q{}", i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_questions() {
        assert_eq!(
            question("auth method not specified - email/password, SSO, OAuth?"),
            "What is the auth method (email/password, SSO, OAuth)?"
        );
        assert_eq!(
            question("retention period not specified"),
            "What is the retention period?"
        );
        assert_eq!(
            question("which regions must be supported?"),
            "Which regions must be supported?"
        );
        assert_eq!(question("export format"), "Please clarify: Export format?");
    }

    #[test]
    fn ears_statements_are_split() {
        let e = ears("WHEN a user submits the form THE SYSTEM SHALL save the draft").unwrap();
        assert_eq!(e.pattern, "event");
        assert_eq!(e.condition.as_deref(), Some("a user submits the form"));
        assert_eq!(e.response, "THE SYSTEM SHALL save the draft");
        let e = ears("IF the token expired, THEN the system shall ask for a login").unwrap();
        assert_eq!(e.pattern, "unwanted");
        assert_eq!(e.condition.as_deref(), Some("the token expired"));
        assert_eq!(
            ears("The system shall log every request").unwrap().pattern,
            "ubiquitous"
        );
        assert!(ears("Users can log in").is_none());
    }
}
