//! The role of a section, from its heading (English, Japanese and Chinese): what its list
//! items are.

/// What the items of a section are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
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

pub(super) fn role_of(title: &str) -> Role {
    let role = english_role(title);
    if role != Role::Unknown {
        return role;
    }
    cjk_role(title)
}

/// The roles of Japanese and Chinese headings (Kiro and Spec Kit write them so in those
/// languages).
pub(super) fn cjk_role(title: &str) -> Role {
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

pub(super) fn english_role(title: &str) -> Role {
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
        // A KEP template's process: the release team's checklist and the production
        // readiness questionnaire (its "Monitoring Requirements" ask the reviewers' questions).
        || has("signoff checklist")
        || has("sign-off checklist")
        || has("production readiness review questionnaire")
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
